"""Forward proxies: a real proxy.py subprocess between logdrain and real collectors.

Proof that a request went through the proxy: for plain HTTP, proxy.py's
``Via`` header at the collector; for HTTPS (CONNECT), the tunnel line in
proxy.py's access log. Proof that it did not: delivery works although the
proxy it would have used is a port with nothing listening.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import logdrain
from logdrain.config import resolve
from logdrain.errors import PermanentError
from logdrain.testing import Collector
from logdrain.transport import Transport
from logdrain.trust import _bypass, select_proxy

from . import proxy_helpers as helpers
from .proxy_helpers import ForwardProxy, TestCA, dead_port, via_proxy

FAST: dict[str, Any] = {**helpers.FAST, "name": "px"}
USER, PASSWORD, WRONG = "alice", "s3cr3t-pw", "wr0ng-pw-9f2"


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    """A trustme CA with a 127.0.0.1 server certificate (ca.pem on disk)."""
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def open_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForwardProxy]:
    """proxy.py without authentication, shared by the module."""
    with ForwardProxy(tmp_path_factory.mktemp("proxy-open")) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def auth_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForwardProxy]:
    """proxy.py demanding Basic credentials alice:s3cr3t-pw, shared by the module."""
    with ForwardProxy(
        tmp_path_factory.mktemp("proxy-auth"), basic_auth=f"{USER}:{PASSWORD}"
    ) as proxy:
        yield proxy


@pytest.fixture
def https_collector(test_ca: TestCA) -> Iterator[Collector]:
    """A live HTTPS collector whose certificate test_ca vouches for."""
    with test_ca.collector() as collector:
        yield collector


@pytest.fixture(params=["http", "https"])
def any_collector(
    request: pytest.FixtureRequest, collector: Collector, https_collector: Collector
) -> Collector:
    """The HTTP and the HTTPS collector in turn."""
    return collector if request.param == "http" else https_collector


def ship(url: str, n: int = 3, **options: Any) -> logdrain.DrainStats:
    """helpers.ship with this file's drain name."""
    return helpers.ship(url, n, **{"name": "px", **options})


def assert_tunnelled(proxy: ForwardProxy, collector: Collector) -> None:
    """The proxy logged a CONNECT tunnel to this collector (written when it closes)."""
    assert proxy.wait_for_log(f"CONNECT 127.0.0.1:{collector.port}"), proxy.log()


def assert_through(proxy: ForwardProxy, collector: Collector) -> None:
    """Every request reached the collector through this proxy."""
    assert collector.requests
    if collector.url.startswith("https"):
        assert_tunnelled(proxy, collector)
    else:
        assert all(via_proxy(r.headers) for r in collector.requests), collector.requests


def logdrain_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("logdrain[")]


# -- explicit proxy= -----------------------------------------------------------------


def test_explicit_proxy_is_the_route_for_http(tmp_path: Path, collector: Collector) -> None:
    """proxy= carries HTTP batches (Via header); with the proxy stopped, delivery fails."""
    with ForwardProxy(tmp_path) as proxy:
        drain = logdrain.Drain(collector.url, proxy=proxy.url(), **FAST)
        with drain:
            for i in range(3):
                drain.submit({"message": f"m{i}"})
            assert drain.flush(timeout=30)
            assert collector.wait_for_count(3)
            assert all(via_proxy(r.headers) for r in collector.requests)

            proxy.stop()
            drain.submit({"message": "after the proxy went away"})
            assert drain.flush(timeout=30)
            stats = drain.stats()
            assert (stats.delivered, stats.failed, stats.retries) == (3, 1, 2)
    assert collector.count == 3
    assert ship(collector.url, n=1).delivered == 1  # the collector itself was up all along


def test_https_collector_through_connect(
    open_proxy: ForwardProxy, https_collector: Collector, test_ca: TestCA
) -> None:
    """An HTTPS collector is reached through a CONNECT tunnel, verified with ca_bundle."""
    stats = ship(https_collector.url, proxy=open_proxy.url(), ca_bundle=test_ca.pem)
    assert stats.delivered == 3
    assert https_collector.wait_for_count(3)
    assert not any(via_proxy(r.headers) for r in https_collector.requests)  # end-to-end TLS
    assert_tunnelled(open_proxy, https_collector)


# -- proxy credentials ---------------------------------------------------------------------


def test_proxy_basic_auth_delivers(
    auth_proxy: ForwardProxy, any_collector: Collector, test_ca: TestCA
) -> None:
    """proxy='http://user:pass@host:port' authenticates to the proxy (plain and CONNECT)."""
    stats = ship(any_collector.url, proxy=auth_proxy.url(USER, PASSWORD), ca_bundle=test_ca.pem)
    assert (stats.delivered, stats.rejected, stats.retries) == (3, 0, 0)
    assert any_collector.wait_for_count(3)
    assert_through(auth_proxy, any_collector)


def test_wrong_proxy_credentials_are_permanent(
    auth_proxy: ForwardProxy,
    any_collector: Collector,
    test_ca: TestCA,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A 407 (CONNECT: ProxyError; HTTP: response status) is rejected once, password masked."""
    proxy_url = auth_proxy.url(USER, WRONG)
    with logdrain.Drain(any_collector.url, proxy=proxy_url, ca_bundle=test_ca.pem, **FAST) as d:
        d.submit({"message": "m"})
        assert d.flush(timeout=30)
        stats = d.stats()
        shown = [repr(d), repr(d.settings), str(stats)]
    assert (stats.rejected, stats.retries, stats.failed, stats.delivered) == (1, 0, 0, 0)
    assert stats.balanced
    assert any_collector.requests == []

    lines = [line for line in logdrain_lines(capfd.readouterr().err) if "rejected," in line]
    assert len(lines) == 1, lines
    assert f"{USER}:***@{auth_proxy.address}" in lines[0]
    assert "407" in lines[0]

    # The exception a direct delivery raises (and its whole chain) is clean too.
    with pytest.raises(PermanentError) as caught:
        transport = Transport(d.settings, content_type="application/json")
        try:
            transport.post_once(b'[{"message": "m"}]', "batch-1")
        finally:
            transport.close()
    assert caught.value.status in (None, 407)
    chain: list[BaseException] = []
    exc: BaseException | None = caught.value
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    shown += [str(e) for e in chain] + [repr(e) for e in chain]
    shown += lines
    assert not [text for text in shown if WRONG in text]


def test_missing_proxy_credentials_are_permanent(
    auth_proxy: ForwardProxy, collector: Collector, capfd: pytest.CaptureFixture[str]
) -> None:
    """A proxy that wants credentials and gets none: rejected, the line says 407."""
    stats = ship(collector.url, n=2, proxy=auth_proxy.url())
    assert (stats.rejected, stats.retries) == (2, 0)
    lines = logdrain_lines(capfd.readouterr().err)
    assert any("407" in line and auth_proxy.address in line for line in lines), lines


# -- proxy down ------------------------------------------------------------------------------


def test_proxy_down_is_transient(
    any_collector: Collector, test_ca: TestCA, capfd: pytest.CaptureFixture[str]
) -> None:
    """Nothing on the proxy port: retried up to max_attempts, then failed (not rejected)."""
    port = dead_port(containing="407")  # a "407" in a port number is no proxy refusal
    stats = ship(
        any_collector.url,
        n=1,
        proxy=f"http://{USER}:{PASSWORD}@127.0.0.1:{port}",
        ca_bundle=test_ca.pem,
        max_attempts=3,
    )
    assert (stats.failed, stats.retries, stats.rejected, stats.delivered) == (1, 2, 0, 0)
    assert any_collector.requests == []
    lines = [line for line in logdrain_lines(capfd.readouterr().err) if "gave up" in line]
    assert len(lines) == 1, lines
    assert f"{USER}:***@127.0.0.1:{port}" in lines[0]
    assert PASSWORD not in lines[0]


# -- the environment -------------------------------------------------------------------------


def test_env_http_proxy_is_used(
    open_proxy: ForwardProxy, collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY in the environment (trust_env default) carries HTTP batches."""
    monkeypatch.setenv("HTTP_PROXY", open_proxy.url())
    assert ship(collector.url).delivered == 3
    assert_through(open_proxy, collector)


def test_env_https_proxy_is_used(
    open_proxy: ForwardProxy,
    https_collector: Collector,
    test_ca: TestCA,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HTTPS_PROXY in the environment carries HTTPS batches through a CONNECT tunnel."""
    monkeypatch.setenv("HTTPS_PROXY", open_proxy.url())
    assert ship(https_collector.url, ca_bundle=test_ca.pem).delivered == 3
    assert_tunnelled(open_proxy, https_collector)


def test_trust_env_false_ignores_env_proxy(
    any_collector: Collector, test_ca: TestCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    """trust_env=False: a dead HTTP(S)_PROXY is ignored and delivery goes direct."""
    dead = f"http://127.0.0.1:{dead_port()}"
    monkeypatch.setenv("HTTP_PROXY", dead)
    monkeypatch.setenv("HTTPS_PROXY", dead)
    stats = ship(any_collector.url, trust_env=False, ca_bundle=test_ca.pem, max_attempts=1)
    assert stats.delivered == 3
    assert not any(via_proxy(r.headers) for r in any_collector.requests)


def test_env_proxy_is_really_consulted(
    any_collector: Collector, test_ca: TestCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control for the bypass tests: the same dead env proxy with trust_env on fails."""
    dead = f"http://127.0.0.1:{dead_port()}"
    monkeypatch.setenv("HTTP_PROXY", dead)
    monkeypatch.setenv("HTTPS_PROXY", dead)
    stats = ship(any_collector.url, n=1, ca_bundle=test_ca.pem, max_attempts=1)
    assert (stats.delivered, stats.failed) == (0, 1)
    assert any_collector.requests == []


def test_explicit_proxy_beats_env(
    open_proxy: ForwardProxy,
    any_collector: Collector,
    test_ca: TestCA,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """proxy= wins over HTTP(S)_PROXY pointing at a dead port (requests' own env trap)."""
    dead = f"http://127.0.0.1:{dead_port()}"
    monkeypatch.setenv("HTTP_PROXY", dead)
    monkeypatch.setenv("HTTPS_PROXY", dead)
    monkeypatch.setenv("ALL_PROXY", dead)
    stats = ship(any_collector.url, proxy=open_proxy.url(), ca_bundle=test_ca.pem)
    assert (stats.delivered, stats.retries) == (3, 0)
    assert_through(open_proxy, any_collector)


def test_env_no_proxy_bypasses_env_proxy(
    any_collector: Collector, test_ca: TestCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NO_PROXY=127.0.0.1 skips the (dead) environment proxy."""
    dead = f"http://127.0.0.1:{dead_port()}"
    monkeypatch.setenv("HTTP_PROXY", dead)
    monkeypatch.setenv("HTTPS_PROXY", dead)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    stats = ship(any_collector.url, ca_bundle=test_ca.pem, max_attempts=1)
    assert stats.delivered == 3
    assert not any(via_proxy(r.headers) for r in any_collector.requests)


def test_no_proxy_setting_bypasses_explicit_proxy(
    any_collector: Collector, test_ca: TestCA
) -> None:
    """no_proxy= skips the (dead) explicit proxy for a matching collector."""
    dead = f"http://127.0.0.1:{dead_port()}"
    stats = ship(
        any_collector.url, proxy=dead, no_proxy="127.0.0.0/8", ca_bundle=test_ca.pem, max_attempts=1
    )
    assert stats.delivered == 3


def test_env_no_proxy_does_not_bypass_explicit_proxy(
    open_proxy: ForwardProxy, collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NO_PROXY in the environment does not apply to proxy= (only no_proxy= does)."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert ship(collector.url, proxy=open_proxy.url()).delivered == 3
    assert_through(open_proxy, collector)


# -- select_proxy / _bypass ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "bypass"),
    [
        ("logs.corp.example", 443, ".corp.example", True),
        ("corp.example", 443, ".corp.example", True),
        ("a.b.corp.example", 443, ".corp.example", True),
        ("notcorp.example", 443, ".corp.example", False),
        ("logs.corp.example", 443, "corp.example", True),
        ("corp.example", 443, "corp.example", True),
        ("notcorp.example", 443, "corp.example", False),
        ("LOGS.Corp.Example", 443, "corp.EXAMPLE", True),
        ("corp.example.org", 443, "corp.example", False),
        ("anything.example", 443, "*", True),
        ("10.1.2.3", 8080, "*", True),
        ("logs.corp.example", 8443, "logs.corp.example:8443", True),
        ("logs.corp.example", 443, "logs.corp.example:8443", False),
        ("127.0.0.1", 8080, "127.0.0.1:8080", True),
        ("127.0.0.1", 9090, "127.0.0.1:8080", False),
        ("127.0.0.1", 9090, "127.0.0.0/8", True),
        ("127.200.3.4", 443, "127.0.0.0/8", True),
        ("10.0.0.1", 443, "127.0.0.0/8", False),
        ("localhost", 443, "127.0.0.0/8", False),
        ("logs.corp.example", 443, "other.example, .corp.example", True),
        ("logs.corp.example", 443, "other.example,,", False),
        ("logs.corp.example", 443, "", False),
    ],
)
def test_bypass(host: str, port: int, no_proxy: str, bypass: bool) -> None:
    """NO_PROXY matching: suffixes with and without a dot, '*', host:port, CIDR."""
    assert _bypass(host, port, no_proxy) is bypass


PROXY = "http://proxy.corp.example:3128"
ENV_PROXY = "http://env-proxy.corp.example:8080"


@pytest.mark.parametrize(
    ("url", "options", "environ", "expected"),
    [
        ("https://logs.corp.example/i", {"proxy": PROXY}, {}, PROXY),
        ("https://logs.corp.example/i", {"proxy": PROXY, "no_proxy": ".corp.example"}, {}, None),
        ("https://logs.corp.example/i", {"proxy": PROXY}, {"NO_PROXY": "*"}, PROXY),
        ("https://logs.corp.example/i", {"proxy": PROXY}, {"HTTPS_PROXY": ENV_PROXY}, PROXY),
        ("https://logs.corp.example/i", {}, {"HTTPS_PROXY": ENV_PROXY}, ENV_PROXY),
        ("https://logs.corp.example/i", {}, {"https_proxy": ENV_PROXY}, ENV_PROXY),
        ("https://logs.corp.example/i", {}, {"HTTP_PROXY": ENV_PROXY}, None),
        ("http://logs.corp.example/i", {}, {"HTTP_PROXY": ENV_PROXY}, ENV_PROXY),
        ("http://logs.corp.example/i", {}, {"ALL_PROXY": ENV_PROXY}, ENV_PROXY),
        ("https://logs.corp.example/i", {"trust_env": False}, {"HTTPS_PROXY": ENV_PROXY}, None),
        (
            "https://logs.corp.example/i",
            {},
            {"HTTPS_PROXY": ENV_PROXY, "NO_PROXY": "corp.example"},
            None,
        ),
        (
            "https://logs.corp.example/i",
            {"no_proxy": "other.example"},
            {"HTTPS_PROXY": ENV_PROXY, "NO_PROXY": "corp.example"},
            ENV_PROXY,
        ),
        # A port in NO_PROXY is compared with the URL's effective (default) port.
        (
            "https://logs.corp.example/i",
            {"proxy": PROXY, "no_proxy": "logs.corp.example:8443"},
            {},
            PROXY,
        ),
        (
            "https://logs.corp.example/i",
            {"proxy": PROXY, "no_proxy": "logs.corp.example:443"},
            {},
            None,
        ),
        (
            "http://logs.corp.example/i",
            {"proxy": PROXY, "no_proxy": "logs.corp.example:80"},
            {},
            None,
        ),
        (
            "https://logs.corp.example:8443/i",
            {"proxy": PROXY, "no_proxy": "logs.corp.example:8443"},
            {},
            None,
        ),
        ("http://127.0.0.1:5000/i", {"proxy": PROXY, "no_proxy": "127.0.0.0/8"}, {}, None),
    ],
)
def test_select_proxy(
    url: str, options: dict[str, Any], environ: dict[str, str], expected: str | None
) -> None:
    """Explicit proxy (+ no_proxy) first, then the environment when trust_env is on."""
    settings = resolve({"url": url, **options}, environ={})
    assert select_proxy(settings, environ=environ) == expected
