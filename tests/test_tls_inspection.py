"""A TLS-inspecting proxy, as many corporations run: mitmproxy re-signs the
collector's certificate with its own CA. Heavy, so it runs in its own nox
session (``nox -s tls_inspection``); elsewhere it is skipped."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import logdrain
from logdrain.testing import Collector

from .tls_helpers import (  # noqa: F401 - pytest fixtures, requested by name
    ca_pem_fixture,
    server_cert_fixture,
    tls_ca_fixture,
    tls_collector_fixture,
)

MITMDUMP = shutil.which("mitmdump") or str(Path(sys.executable).with_name("mitmdump"))
pytestmark = pytest.mark.skipif(
    not Path(MITMDUMP).exists(), reason="mitmproxy not installed (nox -s tls_inspection)"
)


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], cap: float = 60.0) -> None:
    deadline = time.monotonic() + cap
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("mitmdump exited early")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("mitmdump did not start listening")


@pytest.fixture
def inspecting_proxy(tmp_path: Path, ca_pem: str) -> Iterator[tuple[str, str]]:
    """mitmdump on 127.0.0.1, trusting the collector's CA upstream; yields (proxy URL, its CA)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(
        [
            MITMDUMP, "--listen-host", "127.0.0.1", "--listen-port", str(port), "-q",
            "--set", f"confdir={tmp_path}", "--set", f"ssl_verify_upstream_trusted_ca={ca_pem}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}", str(tmp_path / "mitmproxy-ca-cert.pem")
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_works_once_the_inspection_ca_is_given(
    tls_collector: Collector, inspecting_proxy: tuple[str, str]
) -> None:
    """With the proxy's re-signing CA as ca_bundle, records arrive through the inspection."""
    proxy, inspection_ca = inspecting_proxy
    with logdrain.Drain(
        tls_collector.url, proxy=proxy, ca_bundle=inspection_ca, flush_interval=0.05
    ) as drain:
        assert drain.submit({"message": "inspected"})
        assert drain.flush(30)
        assert drain.stats().delivered == 1
    assert [r["message"] for r in tls_collector.records] == ["inspected"]


def test_fails_clearly_without_it(
    tls_collector: Collector,
    inspecting_proxy: tuple[str, str],
    ca_pem: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Trusting only the collector's real CA, the re-signed certificate is refused, once."""
    proxy, _ = inspecting_proxy
    with logdrain.Drain(
        tls_collector.url, proxy=proxy, ca_bundle=ca_pem, max_attempts=3, flush_interval=0.05
    ) as drain:
        drain.submit({"message": "not inspected"})
        assert drain.flush(30)
        stats = drain.stats()
    assert stats.rejected == 1
    assert stats.retries == 0
    assert tls_collector.count == 0
    assert "CERTIFICATE_VERIFY_FAILED" in capfd.readouterr().err
