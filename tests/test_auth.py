"""Collector authentication (token, gateway headers, Basic auth, token_provider with
refresh on 401) and the promise that no secret is ever shown."""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests.auth

import logdrain
from logdrain.testing import BATCH_ID_HEADER, Collector

from . import proxy_helpers as helpers
from .proxy_helpers import ForwardProxy, via_proxy

FAST: dict[str, Any] = {**helpers.FAST, "name": "auth"}
TOKEN = "tok-9Q7fZx-static"
GATEWAY_KEY = "k-123-gateway"
PROXY_USER, PROXY_PASSWORD = "alice", "pr0xy-Pa55-xyz"
AUTH_PASSWORD = "basic-pw-5150"


class Provider:
    """A token provider handing out tok-A, tok-B, ... and counting its calls."""

    def __init__(self, prefix: str = "prov-tok-") -> None:
        self.prefix = prefix
        self.calls = 0
        self._lock = threading.Lock()

    def token(self, n: int) -> str:
        return f"{self.prefix}{'ABCDEFGH'[n]}"

    def __call__(self) -> str:
        with self._lock:
            self.calls += 1
            return self.token(self.calls - 1)


@pytest.fixture(scope="module")
def auth_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForwardProxy]:
    """proxy.py demanding Basic credentials, shared by the module."""
    with ForwardProxy(
        tmp_path_factory.mktemp("proxy"), basic_auth=f"{PROXY_USER}:{PROXY_PASSWORD}"
    ) as proxy:
        yield proxy


def ship(url: str, n: int = 1, **options: Any) -> logdrain.DrainStats:
    """helpers.ship with this file's drain name."""
    return helpers.ship(url, n, **{"name": "auth", **options})


def authorization(collector: Collector) -> list[str | None]:
    """The Authorization header of every request, as received."""
    return [r.headers.get("Authorization") for r in collector.requests]


def logdrain_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("logdrain[")]


# -- what goes on the wire -------------------------------------------------------------


def test_token_sends_bearer(collector: Collector) -> None:
    """token= is sent as 'Authorization: Bearer <token>' on every request."""
    assert ship(collector.url, n=3, token=TOKEN, batch_size=1).delivered == 3
    assert authorization(collector) == [f"Bearer {TOKEN}"] * 3


def test_token_from_environment(collector: Collector, monkeypatch: pytest.MonkeyPatch) -> None:
    """LOGDRAIN_TOKEN is used when no token= is given."""
    monkeypatch.setenv("LOGDRAIN_TOKEN", "env-tok-4711")
    assert ship(collector.url).delivered == 1
    assert authorization(collector) == ["Bearer env-tok-4711"]


def test_explicit_token_beats_environment(
    collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """token= wins over LOGDRAIN_TOKEN."""
    monkeypatch.setenv("LOGDRAIN_TOKEN", "env-tok-4711")
    assert ship(collector.url, token=TOKEN).delivered == 1
    assert authorization(collector) == [f"Bearer {TOKEN}"]


def test_gateway_headers_on_every_request(collector: Collector) -> None:
    """headers= (a gateway key) is sent on every request, under the name given."""
    stats = ship(collector.url, n=3, headers={"X-Api-Key": GATEWAY_KEY}, batch_size=1)
    assert stats.delivered == 3
    assert len(collector.requests) == 3
    assert [r.headers.get("X-Api-Key") for r in collector.requests] == [GATEWAY_KEY] * 3
    assert authorization(collector) == [None] * 3


def test_headers_from_environment(collector: Collector, monkeypatch: pytest.MonkeyPatch) -> None:
    """LOGDRAIN_HEADERS (a JSON object) supplies headers= when not given."""
    monkeypatch.setenv("LOGDRAIN_HEADERS", f'{{"X-Api-Key": "{GATEWAY_KEY}"}}')
    assert ship(collector.url).delivered == 1
    assert collector.requests[0].headers.get("X-Api-Key") == GATEWAY_KEY


@pytest.mark.parametrize(
    "auth",
    [("user", AUTH_PASSWORD), requests.auth.HTTPBasicAuth("user", AUTH_PASSWORD)],
    ids=["tuple", "HTTPBasicAuth"],
)
def test_basic_auth(collector: Collector, auth: Any) -> None:
    """auth=(user, password) and a requests auth object both send HTTP Basic."""
    assert ship(collector.url, n=2, auth=auth, batch_size=1).delivered == 2
    expected = "Basic " + base64.b64encode(f"user:{AUTH_PASSWORD}".encode()).decode()
    assert authorization(collector) == [expected] * 2


# -- token_provider --------------------------------------------------------------------------


def test_token_provider_refreshes_once_on_401(collector: Collector) -> None:
    """A 401 makes logdrain fetch a new token and resend the same batch at once."""
    provider = Provider()
    collector.script(401, times=1)
    stats = ship(collector.url, token_provider=provider)
    assert (stats.delivered, stats.rejected, stats.retries) == (1, 0, 0)
    assert provider.calls == 2
    assert authorization(collector) == [
        f"Bearer {provider.token(0)}",
        f"Bearer {provider.token(1)}",
    ]
    assert [r.status for r in collector.requests] == [401, 200]
    first, second = (r.headers[BATCH_ID_HEADER] for r in collector.requests)
    assert first == second
    assert collector.count == 1


def test_token_provider_second_401_rejects(collector: Collector) -> None:
    """Two 401s in a row: the batch is rejected after exactly two provider calls."""
    provider = Provider()
    collector.script(401, times=2)
    stats = ship(collector.url, token_provider=provider, max_attempts=3)
    assert (stats.rejected, stats.delivered, stats.retries) == (1, 0, 0)
    assert provider.calls == 2
    assert [r.status for r in collector.requests] == [401, 401]
    assert len({r.headers[BATCH_ID_HEADER] for r in collector.requests}) == 1


def test_token_provider_is_cached(collector: Collector) -> None:
    """Without a 401 the provider is called once, however many batches go out."""
    provider = Provider()
    with logdrain.Drain(collector.url, token_provider=provider, **FAST) as drain:
        for i in range(4):
            drain.submit({"message": f"m{i}"})
            assert drain.flush(timeout=30)
    assert drain.stats().delivered == 4
    assert len(collector.requests) == 4
    assert provider.calls == 1
    assert authorization(collector) == [f"Bearer {provider.token(0)}"] * 4


def test_token_provider_failure_is_transient(collector: Collector) -> None:
    """A provider that raises makes the batch retry with backoff, then it gets through."""
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("identity service down")
        return "late-tok-1"

    stats = ship(collector.url, token_provider=flaky, max_attempts=3)
    assert (stats.delivered, stats.retries) == (1, 1)
    assert authorization(collector) == ["Bearer late-tok-1"]


def test_token_provider_as_module_string(
    collector: Collector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """token_provider='module:function' is imported and called."""
    module = f"ld_tokens_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        "CALLS = []\n\ndef get_token():\n    CALLS.append(1)\n    return 'module-tok-77'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert ship(collector.url, n=2, token_provider=f"{module}:get_token").delivered == 2
    assert authorization(collector) == ["Bearer module-tok-77"]


def test_token_provider_bad_module_string() -> None:
    """An unimportable 'module:function' is a ConfigError naming token_provider."""
    with pytest.raises(logdrain.ConfigError, match="token_provider"):
        logdrain.Drain("http://127.0.0.1:9/x", token_provider="ld_no_such_module_q:get")


# -- secrets are never shown -------------------------------------------------------------------


def assert_hidden(secrets: list[str], texts: list[str]) -> None:
    leaks = [(s, t) for s in secrets for t in texts if s in t]
    assert not leaks, leaks


def rejected_with_echo(
    collector: Collector, capfd: pytest.CaptureFixture[str], echo: str, **options: Any
) -> tuple[list[str], list[str]]:
    """One batch refused with 403 whose body echoes ``echo``; (stderr lines, reprs)."""
    collector.script(403, body=f"bad credentials: {echo}".encode())
    with logdrain.Drain(collector.url, **{**FAST, **options}) as drain:
        drain.submit({"message": "m"})
        assert drain.flush(timeout=30)
        shown = [repr(drain), repr(drain.settings), str(drain.stats())]
    stats = drain.stats()
    assert (stats.rejected, stats.retries) == (1, 0)
    shown += [repr(drain), str(stats), repr(stats)]
    lines = logdrain_lines(capfd.readouterr().err)
    assert [line for line in lines if "rejected, not retried" in line], lines
    return lines, shown


def test_token_header_and_proxy_password_never_shown(
    collector: Collector, auth_proxy: ForwardProxy, capfd: pytest.CaptureFixture[str]
) -> None:
    """token, header values and the proxy password: *** in stderr, absent from reprs."""
    secrets = [TOKEN, GATEWAY_KEY, PROXY_PASSWORD]
    lines, shown = rejected_with_echo(
        collector,
        capfd,
        " ".join(secrets),
        token=TOKEN,
        headers={"X-Api-Key": GATEWAY_KEY},
        proxy=auth_proxy.url(PROXY_USER, PROXY_PASSWORD),
    )
    assert via_proxy(collector.requests[0].headers)  # the proxy credentials were used
    assert collector.requests[0].headers.get("Authorization") == f"Bearer {TOKEN}"
    refused = next(line for line in lines if "rejected, not retried" in line)
    assert "bad credentials: *** *** ***" in refused
    assert_hidden(secrets, lines + shown)


def test_provider_tokens_never_shown(
    collector: Collector, capfd: pytest.CaptureFixture[str]
) -> None:
    """Every token a token_provider hands out is masked in stderr and reprs."""
    provider = Provider(prefix="rotating-secret-")
    collector.script(401, times=1)  # so the provider hands out two tokens
    lines, shown = rejected_with_echo(
        collector,
        capfd,
        f"{provider.token(0)} {provider.token(1)}",
        token_provider=provider,
    )
    assert provider.calls == 2
    assert "bad credentials: *** ***" in " ".join(lines)
    assert_hidden([provider.token(0), provider.token(1)], lines + shown)


@pytest.mark.parametrize(
    "auth",
    [("user", AUTH_PASSWORD), requests.auth.HTTPBasicAuth("user", AUTH_PASSWORD)],
    ids=["tuple", "HTTPBasicAuth"],
)
def test_auth_password_never_shown(
    collector: Collector, capfd: pytest.CaptureFixture[str], auth: Any
) -> None:
    """auth's password (pair or requests auth object) is masked in stderr and reprs."""
    lines, shown = rejected_with_echo(collector, capfd, AUTH_PASSWORD, auth=auth)
    assert "bad credentials: ***" in " ".join(lines)
    assert_hidden([AUTH_PASSWORD], lines + shown)


@pytest.mark.parametrize(
    "proxy",
    [
        "alice:s3cret-77@proxy.corp.example:3128",  # no scheme
        "ftp://alice:s3cret-77@proxy.corp.example:3128",  # wrong scheme
        "http://alice:s3cret-77@proxy.corp.example:31x8",  # port is not a number
        "http://alice:s3cret-77/x@proxy.corp.example:3128",  # unencoded / in the password
        "http://alice:s3cret-77#@proxy.corp.example:3128",  # unencoded # in the password
    ],
)
def test_bad_proxy_url_error_hides_password(proxy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A malformed proxy URL is a ConfigError that never repeats its password."""
    with pytest.raises(logdrain.ConfigError) as caught:
        logdrain.Drain("http://127.0.0.1:9/x", proxy=proxy)
    assert caught.value.field == "proxy"
    assert "s3cret" not in str(caught.value)
    assert "proxy.corp.example" in str(caught.value)

    monkeypatch.setenv("LOGDRAIN_PROXY", proxy)
    with pytest.raises(logdrain.ConfigError) as from_env:
        logdrain.Drain("http://127.0.0.1:9/x")
    assert "s3cret" not in str(from_env.value)


# -- conflicting settings -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"token": TOKEN, "token_provider": lambda: "x-token"}, "token_provider"),
        ({"token": TOKEN, "auth": ("user", AUTH_PASSWORD)}, "auth"),
        ({"token_provider": lambda: "x-token", "auth": ("user", AUTH_PASSWORD)}, "auth"),
        ({"proxy": "127.0.0.1:3128"}, "proxy"),
    ],
    ids=["token+token_provider", "token+auth", "token_provider+auth", "proxy-without-scheme"],
)
def test_config_errors(options: dict[str, Any], field: str) -> None:
    """Settings that contradict each other, or a scheme-less proxy, fail at construction."""
    with pytest.raises(logdrain.ConfigError) as caught:
        logdrain.Drain("http://127.0.0.1:9/x", **options)
    assert caught.value.field == field
    assert_hidden([TOKEN, AUTH_PASSWORD], [str(caught.value)])


def test_env_token_conflicts_with_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    """LOGDRAIN_TOKEN plus auth= is the same conflict as token= plus auth=."""
    monkeypatch.setenv("LOGDRAIN_TOKEN", TOKEN)
    with pytest.raises(logdrain.ConfigError, match="auth") as caught:
        logdrain.Drain("http://127.0.0.1:9/x", auth=("user", AUTH_PASSWORD))
    assert_hidden([TOKEN, AUTH_PASSWORD], [str(caught.value)])
