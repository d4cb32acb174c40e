"""TLS trust against real HTTPS collectors on 127.0.0.1 with ``trustme`` certificates.

Covers every branch of the precedence in ``logdrain.trust``'s docstring: the
default roots plus (or replaced by) ``ca_bundle``, ``ssl_context``,
``client_cert`` (mutual TLS), ``trust="system"`` (truststore, scoped to one
drain), ``trust="windows"`` (the store is faked: it cannot exist here),
``insecure`` and the ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` environment.
"""

from __future__ import annotations

import importlib.util
import itertools
import ssl
import subprocess
import sys
import threading
import types
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import requests.adapters
import requests.utils
import trustme
from cryptography.hazmat.primitives import serialization

import logdrain
import logdrain.config
import logdrain.trust
from logdrain.testing import Collector

from . import proc
from .tls_helpers import (  # noqa: F401 - pytest fixtures, requested by name
    ClientCertFiles,
    ca_der,
    ca_pem_fixture,
    client_cert_files_fixture,
    client_cert_fixture,
    make_client_context,
    make_server_context,
    other_ca_pem_fixture,
    server_cert_fixture,
    tls_ca_fixture,
    tls_collector_fixture,
)

pytestmark = pytest.mark.timeout(120)

CAP = 30.0  # generous cap for every wait: a pass never comes near it

FAST: dict[str, Any] = {
    "flush_interval": 0.05,
    "backoff_initial": 0.01,
    "backoff_max": 0.05,
    "capture_crashes": False,
    "connect_timeout": 5.0,
    "read_timeout": 5.0,
}
# A failure is expected: one attempt, no waiting.
ONCE: dict[str, Any] = {**FAST, "max_attempts": 1}

_drain_names = itertools.count()


def drain(url: str, **options: Any) -> logdrain.Drain:
    """A Drain with a unique name, so its sender threads can be found (see ``closed``)."""
    return logdrain.Drain(url, name=f"tls-{next(_drain_names)}", **options)


def closed(d: logdrain.Drain) -> logdrain.DrainStats:
    """Close ``d`` and wait for its sender threads to end, so that every stderr
    line they write (after settling a batch) has been written; its final stats."""
    d.close()
    prefix = f"logdrain-{d.settings.name}-send"
    for thread in threading.enumerate():
        if thread.name.startswith(prefix):
            thread.join(CAP)
            assert not thread.is_alive(), thread
    return d.stats()


def ship_one(d: logdrain.Drain) -> logdrain.DrainStats:
    """Submit one record, wait until it is accounted for; the balanced stats."""
    assert d.submit({"message": "over tls"}) is True
    assert d.flush(timeout=CAP) is True
    stats = d.stats()
    assert stats.pending == 0, stats
    assert stats.balanced, stats
    return stats


def assert_delivered(d: logdrain.Drain, collector: Collector) -> None:
    stats = ship_one(d)
    assert stats.delivered == 1, stats
    assert collector.wait_for_count(1, timeout=CAP)
    assert collector.records[0]["message"] == "over tls"


def assert_tls_rejected(d: logdrain.Drain, collector: Collector) -> None:
    """One record is rejected (not retried) and no HTTP request reached the collector;
    ``d`` is closed on return, its stderr lines all written."""
    stats = ship_one(d)
    assert stats.rejected == 1, stats
    assert stats.delivered == 0, stats
    assert stats.retries == 0, stats
    stats = closed(d)
    assert stats.balanced, stats
    assert collector.count == 0
    assert collector.requests == []  # the handshake failed: no HTTP request was read


def settings(**options: Any) -> logdrain.config.Settings:
    """Resolved settings for a (never contacted) HTTPS collector."""
    return logdrain.config.resolve({"url": "https://collector.example/ingest", **options})


# -- ca_bundle: add (default) and replace --------------------------------------------


def test_ca_bundle_adds_to_default_roots(
    tls_collector: Collector, tls_ca: trustme.CA, ca_pem: str
) -> None:
    """ca_bundle (ca_mode='add') trusts the corporate CA and keeps the default roots."""
    cas = logdrain.trust.build_ssl_context(settings(ca_bundle=ca_pem)).get_ca_certs(
        binary_form=True
    )
    assert ca_der(tls_ca) in cas
    assert len([c for c in cas if c != ca_der(tls_ca)]) > 50
    with drain(tls_collector.url, ca_bundle=ca_pem, **ONCE) as d:
        assert_delivered(d, tls_collector)


def test_ca_mode_replace_trusts_only_the_bundle(
    tls_collector: Collector, tls_ca: trustme.CA, ca_pem: str
) -> None:
    """ca_mode='replace' trusts exactly the bundle's CA, and delivery works."""
    ctx = logdrain.trust.build_ssl_context(settings(ca_bundle=ca_pem, ca_mode="replace"))
    assert ctx.get_ca_certs(binary_form=True) == [ca_der(tls_ca)]
    with drain(tls_collector.url, ca_bundle=ca_pem, ca_mode="replace", **ONCE) as d:
        assert_delivered(d, tls_collector)


@pytest.mark.parametrize("ca_mode", ["add", "replace"])
def test_ca_mode_decides_whether_default_roots_still_count(
    tls_collector: Collector,
    ca_pem: str,
    other_ca_pem: str,
    monkeypatch: pytest.MonkeyPatch,
    ca_mode: str,
) -> None:
    """With default roots that vouch for the collector and a bundle that does not,
    'add' delivers and 'replace' refuses, on every connection (requests' certifi
    path must not creep back into a replaced context)."""
    # The default roots (certifi's file, as requests names it) become the test CA.
    monkeypatch.setattr(requests.utils, "DEFAULT_CA_BUNDLE_PATH", ca_pem)
    monkeypatch.setattr(requests.adapters, "DEFAULT_CA_BUNDLE_PATH", ca_pem)
    with drain(tls_collector.url, ca_bundle=other_ca_pem, ca_mode=ca_mode, **ONCE) as d:
        if ca_mode == "add":
            assert_delivered(d, tls_collector)
        else:
            assert_tls_rejected(d, tls_collector)


def test_missing_ca_bundle_is_a_config_error(tmp_path: Any) -> None:
    """A ca_bundle path that does not exist is refused at construction, naming ca_bundle."""
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(logdrain.ConfigError, match="ca_bundle") as info:
        logdrain.Drain("https://127.0.0.1:9/ingest", ca_bundle=missing)
    assert info.value.field == "ca_bundle"
    assert "nope.pem" in str(info.value)


# -- no CA: the default roots refuse the test CA -------------------------------------


def test_untrusted_collector_is_rejected_not_retried(
    tls_collector: Collector, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without the CA, the handshake fails: rejected once, never retried, said on stderr."""
    with drain(tls_collector.url, **{**FAST, "max_attempts": 3}) as d:
        assert_tls_rejected(d, tls_collector)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "rejected, not retried" in line]
    assert len(lines) == 1, err
    assert "TLS" in lines[0]
    assert "CERTIFICATE_VERIFY_FAILED" in lines[0]


# -- ssl_context -----------------------------------------------------------------------


def test_ssl_context_is_used(tls_collector: Collector, tls_ca: trustme.CA) -> None:
    """A caller's SSLContext that trusts the CA is used as it is."""
    ctx = make_client_context(tls_ca)
    with drain(tls_collector.url, ssl_context=ctx, **ONCE) as d:
        assert_delivered(d, tls_collector)
    # Used as it is: no roots were added to the caller's context along the way.
    assert ctx.get_ca_certs(binary_form=True) == [ca_der(tls_ca)]
    assert ctx.verify_mode == ssl.CERT_REQUIRED


def test_ssl_context_with_ca_bundle_is_a_config_error(tls_ca: trustme.CA, ca_pem: str) -> None:
    """ssl_context together with ca_bundle is refused, naming ssl_context."""
    with pytest.raises(logdrain.ConfigError, match="ssl_context") as info:
        logdrain.Drain(
            "https://127.0.0.1:9/ingest", ssl_context=make_client_context(tls_ca), ca_bundle=ca_pem
        )
    assert info.value.field == "ssl_context"


# -- client_cert: mutual TLS -----------------------------------------------------------


@pytest.fixture
def mtls_collector(tls_ca: trustme.CA, server_cert: trustme.LeafCert) -> Iterator[Collector]:
    """An HTTPS collector that requires a client certificate issued by the test CA."""
    ctx = make_server_context(tls_ca, server_cert, require_client_cert=True)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    with Collector(tls=ctx) as c:
        yield c


def test_client_cert_pair_mutual_tls(
    mtls_collector: Collector, ca_pem: str, client_cert_files: ClientCertFiles
) -> None:
    """client_cert=(cert, key) is presented to a collector that requires one."""
    pair = (client_cert_files.cert, client_cert_files.key)
    with drain(mtls_collector.url, ca_bundle=ca_pem, client_cert=pair, **ONCE) as d:
        assert_delivered(d, mtls_collector)


def test_client_cert_combined_pem_mutual_tls(
    mtls_collector: Collector, ca_pem: str, client_cert_files: ClientCertFiles
) -> None:
    """client_cert as one PEM file holding key and certificate works too."""
    with drain(
        mtls_collector.url, ca_bundle=ca_pem, client_cert=client_cert_files.combined, **ONCE
    ) as d:
        assert_delivered(d, mtls_collector)


def test_no_client_cert_is_not_delivered(mtls_collector: Collector, ca_pem: str) -> None:
    """Without a client certificate the collector refuses: nothing delivered, ledger balanced."""
    with drain(mtls_collector.url, ca_bundle=ca_pem, **ONCE) as d:
        stats = ship_one(d)
        assert stats.delivered == 0, stats
        assert stats.rejected + stats.failed == 1, stats
    stats = closed(d)
    assert stats.balanced, stats
    assert mtls_collector.count == 0


# -- trust="system": truststore, for this drain only ----------------------------------


def test_trust_system_honours_ssl_cert_file(
    tls_collector: Collector, ca_pem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """trust='system' verifies with the OS store (SSL_CERT_FILE on Linux), for this drain only."""
    if not sys.platform.startswith("linux"):
        pytest.skip("SSL_CERT_FILE is the system store only where OpenSSL is the verifier")
    original = ssl.SSLContext
    monkeypatch.setenv("SSL_CERT_FILE", ca_pem)
    with drain(tls_collector.url, trust="system", **ONCE) as d:
        assert_delivered(d, tls_collector)
    # Scoped: truststore was not injected into the ssl module, and requests' own
    # default (certifi, not the system store) still refuses the test CA.
    assert ssl.SSLContext is original
    assert ssl.SSLContext.__module__ == "ssl"
    with pytest.raises(requests.exceptions.SSLError):
        requests.post(tls_collector.url, json=[{"message": "plain requests"}], timeout=CAP)
    assert tls_collector.count == 1


def test_trust_system_without_the_ca_is_rejected(tls_collector: Collector) -> None:
    """trust='system' without the test CA in the OS store rejects the collector."""
    with drain(tls_collector.url, trust="system", **ONCE) as d:
        assert_tls_rejected(d, tls_collector)


# -- trust="windows": wincertstore, faked -------------------------------------------


class FakeCert:
    def __init__(self, pem: str) -> None:
        self.pem = pem

    def get_pem(self) -> str:
        return self.pem


class FakeStore:
    """Stand-in for ``wincertstore.CertSystemStore``: records what was asked of it."""

    def __init__(self, name: str, contents: dict[str, list[str]], log: list[Any]) -> None:
        self.name = name
        self.contents = contents
        self.log = log
        log.append(("open", name))

    def itercerts(self, usage: Any = None) -> Iterator[FakeCert]:
        self.log.append(("itercerts", self.name, usage))
        for pem in self.contents.get(self.name, []):
            yield FakeCert(pem)

    def close(self) -> None:
        self.log.append(("close", self.name))


def fake_wincertstore(contents: dict[str, list[str]], log: list[Any]) -> types.ModuleType:
    module = types.ModuleType("wincertstore")
    module.SERVER_AUTH = "1.3.6.1.5.5.7.3.1"  # type: ignore[attr-defined]

    def cert_system_store(name: str) -> FakeStore:
        return FakeStore(name, contents, log)

    module.CertSystemStore = cert_system_store  # type: ignore[attr-defined]
    return module


def test_trust_windows_reads_the_system_stores(
    tls_collector: Collector, tls_ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    """trust='windows' trusts what the ROOT/CA stores hold (wincertstore faked)."""
    log: list[Any] = []
    pem = tls_ca.cert_pem.bytes().decode("ascii")
    fake = fake_wincertstore({"ROOT": [pem], "CA": []}, log)
    monkeypatch.setitem(sys.modules, "wincertstore", fake)
    with drain(tls_collector.url, trust="windows", **ONCE) as d:
        assert_delivered(d, tls_collector)
    assert log == [
        ("open", "ROOT"),
        ("itercerts", "ROOT", fake.SERVER_AUTH),
        ("close", "ROOT"),
        ("open", "CA"),
        ("itercerts", "CA", fake.SERVER_AUTH),
        ("close", "CA"),
    ]


def test_trust_windows_with_empty_stores_is_rejected(
    tls_collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """trust='windows' whose stores lack the CA rejects the collector."""
    monkeypatch.setitem(sys.modules, "wincertstore", fake_wincertstore({}, []))
    with drain(tls_collector.url, trust="windows", **ONCE) as d:
        assert_tls_rejected(d, tls_collector)


def test_trust_windows_without_wincertstore_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Off Windows, trust='windows' is refused at construction, pointing at 'system'."""
    if "wincertstore" not in sys.modules and importlib.util.find_spec("wincertstore"):
        pytest.skip("wincertstore is installed here")
    monkeypatch.delitem(sys.modules, "wincertstore", raising=False)
    with pytest.raises(logdrain.ConfigError, match="trust") as info:
        logdrain.Drain("https://127.0.0.1:9/ingest", trust="windows")
    assert info.value.field == "trust"
    assert "'system'" in str(info.value)


def test_windows_store_pem_reads_both_stores_and_closes_them(tls_ca: trustme.CA) -> None:
    """windows_store_pem joins every store's PEMs and closes each store."""
    log: list[Any] = []
    root, inter = "ROOT-PEM-1", "CA-PEM-1"
    contents = {"ROOT": [root, "ROOT-PEM-2"], "CA": [inter]}

    def factory(name: str) -> FakeStore:
        return FakeStore(name, contents, log)

    pem = logdrain.trust.windows_store_pem(store_factory=factory)
    assert pem.split("\n") == [root, "ROOT-PEM-2", inter]
    assert [entry for entry in log if entry[0] == "open"] == [("open", "ROOT"), ("open", "CA")]
    assert [entry for entry in log if entry[0] == "close"] == [("close", "ROOT"), ("close", "CA")]


def test_windows_store_pem_closes_a_store_that_fails() -> None:
    """A store that fails while being read is still closed."""
    log: list[Any] = []

    class Broken(FakeStore):
        def itercerts(self, usage: Any = None) -> Iterator[FakeCert]:
            raise OSError("store unreadable")

    with pytest.raises(OSError, match="store unreadable"):
        logdrain.trust.windows_store_pem(store_factory=lambda name: Broken(name, {}, log))
    assert log == [("open", "ROOT"), ("close", "ROOT")]


# -- insecure ----------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_insecure_delivers_and_says_so_once(
    tls_collector: Collector, capsys: pytest.CaptureFixture[str]
) -> None:
    """insecure=True delivers to an untrusted collector; one loud stderr line, at construction."""
    with drain(tls_collector.url, insecure=True, **ONCE) as d:
        at_construction = capsys.readouterr().err
        assert at_construction.count("TLS verification is OFF") == 1, at_construction
        assert_delivered(d, tls_collector)
    closed(d)
    assert "TLS verification is OFF" not in capsys.readouterr().err


def test_insecure_with_ca_bundle_is_a_config_error(ca_pem: str) -> None:
    """insecure together with ca_bundle is refused, naming insecure."""
    with pytest.raises(logdrain.ConfigError, match="insecure") as info:
        logdrain.Drain("https://127.0.0.1:9/ingest", insecure=True, ca_bundle=ca_pem)
    assert info.value.field == "insecure"


# -- the environment: REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE --------------------------------


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_env_ca_bundle_is_honoured(
    tls_collector: Collector, ca_pem: str, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """With trust_env (default) and no CA setting, the requests/curl CA variables apply."""
    monkeypatch.setenv(variable, ca_pem)
    with drain(tls_collector.url, **ONCE) as d:
        assert_delivered(d, tls_collector)


def test_trust_env_false_ignores_requests_ca_bundle(
    tls_collector: Collector, ca_pem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """trust_env=False ignores REQUESTS_CA_BUNDLE: the test CA is not trusted."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_pem)
    with drain(tls_collector.url, trust_env=False, **ONCE) as d:
        assert_tls_rejected(d, tls_collector)


@pytest.mark.parametrize("ca_mode", ["add", "replace"])
def test_explicit_ca_bundle_beats_a_wrong_requests_ca_bundle(
    tls_collector: Collector,
    ca_pem: str,
    other_ca_pem: str,
    monkeypatch: pytest.MonkeyPatch,
    ca_mode: str,
) -> None:
    """An explicit ca_bundle wins over REQUESTS_CA_BUNDLE naming another CA (requests alone
    would let the variable override a Session's verify)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", other_ca_pem)
    monkeypatch.setenv("CURL_CA_BUNDLE", other_ca_pem)
    with drain(tls_collector.url, ca_bundle=ca_pem, ca_mode=ca_mode, **ONCE) as d:
        assert_delivered(d, tls_collector)


def test_wrong_requests_ca_bundle_alone_is_rejected(
    tls_collector: Collector, other_ca_pem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """REQUESTS_CA_BUNDLE naming another CA replaces the roots, so the collector is refused."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", other_ca_pem)
    with drain(tls_collector.url, **ONCE) as d:
        assert_tls_rejected(d, tls_collector)


@pytest.mark.parametrize("trust", ["system", "windows"])
def test_replace_mode_only_replaces_default_roots(trust: str, ca_pem: str) -> None:
    """ca_mode='replace' with an OS store would be silently ignored: refused instead."""
    with pytest.raises(logdrain.ConfigError, match="ca_mode"):
        logdrain.Drain("https://127.0.0.1:9/x", trust=trust, ca_bundle=ca_pem, ca_mode="replace")


# -- PEM files checked at construction (issue 9, item 14) -------------------------------


def _write(folder: Any, name: str, data: bytes) -> str:
    path = folder / name
    path.write_bytes(data)
    return str(path)


def test_ca_bundle_that_is_not_pem_fails_at_construction(
    tmp_path: Any, tls_ca: trustme.CA, client_cert_files: ClientCertFiles
) -> None:
    """A directory, junk, DER, or a key file as ca_bundle: ConfigError naming ca_bundle,
    not a TLS failure at the first batch."""
    with open(client_cert_files.key, "rb") as key:
        key_only = _write(tmp_path, "key.pem", key.read())
    for path in (
        str(tmp_path),
        _write(tmp_path, "junk.pem", b"not a certificate\n"),
        _write(tmp_path, "ca.der", ca_der(tls_ca)),
        _write(tmp_path, "empty.pem", b""),
        key_only,
    ):
        with pytest.raises(logdrain.ConfigError) as info:
            logdrain.Drain("https://127.0.0.1:9/ingest", ca_bundle=path, capture_crashes=False)
        assert info.value.field == "ca_bundle", path
        assert "PEM" in str(info.value)


def test_client_cert_that_is_not_pem_or_does_not_match_fails_at_construction(
    tmp_path: Any, tls_ca: trustme.CA, client_cert_files: ClientCertFiles
) -> None:
    """Junk, a directory, or a key of another certificate: ConfigError naming client_cert."""
    other_key = tmp_path / "other.key"
    tls_ca.issue_cert("someone-else@example.org").private_key_pem.write_to_path(str(other_key))
    junk = _write(tmp_path, "junk.pem", b"junk\n")
    pair: str | tuple[str, str]
    for pair in (
        (junk, client_cert_files.key),
        (client_cert_files.cert, junk),
        (client_cert_files.cert, str(tmp_path)),
        (client_cert_files.cert, str(other_key)),
        junk,
    ):
        with pytest.raises(logdrain.ConfigError) as info:
            logdrain.Drain("https://127.0.0.1:9/ingest", client_cert=pair, capture_crashes=False)
        assert info.value.field == "client_cert", pair
        assert "PEM" in str(info.value)


def test_encrypted_client_key_fails_at_construction_without_a_prompt(
    tmp_path: Any, client_cert: trustme.LeafCert, client_cert_files: ClientCertFiles
) -> None:
    """An encrypted key (no password setting exists) is refused at once; OpenSSL's
    fallback would prompt on the terminal. In a subprocess detached from any
    terminal, bounded by a timeout."""
    key = serialization.load_pem_private_key(client_cert.private_key_pem.bytes(), None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    key_path = _write(tmp_path, "enc.key", encrypted)
    code = f"""
import logdrain
try:
    logdrain.Drain("https://127.0.0.1:9/ingest", capture_crashes=False,
                   client_cert=({client_cert_files.cert!r}, {key_path!r}))
except logdrain.ConfigError as exc:
    print("FIELD", exc.field, "encrypted" in str(exc))
"""
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=proc.child_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,  # no controlling terminal to prompt on
        check=False,
    )
    assert "FIELD client_cert True" in result.stdout, (result.stdout, result.stderr)


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_env_ca_bundle_naming_a_missing_or_junk_file_fails_at_construction(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """The ConfigError names the variable (not a setting) and how to get out of it."""
    for path in (str(tmp_path / "missing.pem"), _write(tmp_path, "junk.pem", b"junk\n")):
        monkeypatch.setenv(variable, path)
        with pytest.raises(logdrain.ConfigError) as info:
            logdrain.Drain("https://127.0.0.1:9/ingest", capture_crashes=False)
        assert info.value.field == variable
        assert "trust_env=False" in str(info.value)
    # Without trust_env, or with an explicit ca_bundle, the variable is not read at all.
    logdrain.Drain("https://127.0.0.1:9/ingest", trust_env=False, capture_crashes=False).close(0)
