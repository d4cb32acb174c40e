"""A real forward proxy for tests: ``proxy.py`` (PyPI) run as a subprocess on
127.0.0.1, optionally demanding Basic credentials; plus a small ``trustme`` CA
for HTTPS collectors reached through it (CONNECT).

proxy.py adds ``Via: 1.1 proxy.py vX`` to plain-HTTP requests it forwards, so a
collector can tell whether a request came through it; a CONNECT tunnel carries
TLS end to end, so for HTTPS the proxy's own access log is the witness (one
``CONNECT 127.0.0.1:<port>`` line per tunnel, written when the tunnel closes).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import trustme

import logdrain
from logdrain.testing import Collector

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
VIA = "proxy.py"


def dead_port(containing: str = "") -> int:
    """A port on 127.0.0.1 with nothing listening (its number contains ``containing``)."""
    candidates = [p for p in range(1024, 65536) if containing in str(p)] if containing else [0]
    for candidate in candidates:
        with socket.socket() as sock:
            try:
                sock.bind((HOST, candidate))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError(f"no free port containing {containing!r}")


def via_proxy(headers: dict[str, str]) -> bool:
    """True when a request's headers show that proxy.py forwarded it."""
    return any(k.lower() == "via" and VIA in v for k, v in headers.items())


class ForwardProxy:
    """``python -m proxy`` on 127.0.0.1 (ephemeral port), logging to a file."""

    def __init__(self, workdir: Path, basic_auth: str | None = None) -> None:
        self.workdir = workdir
        self.basic_auth = basic_auth
        self.port_file = workdir / "proxy.port"
        self.log_file = workdir / "proxy.log"
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ForwardProxy:
        """Start proxy.py and wait (at most 30 s) until its port accepts connections."""
        cmd = [
            sys.executable,
            "-m",
            "proxy",
            "--hostname",
            HOST,
            "--port",
            "0",
            "--port-file",
            str(self.port_file),
            "--num-workers",
            "1",
            "--num-acceptors",
            "1",
            "--log-file",
            str(self.log_file),
        ]
        if self.basic_auth:
            cmd += ["--basic-auth", self.basic_auth]
        self.port_file.unlink(missing_ok=True)
        # Its own session: its acceptor/worker children go down with it in stop().
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"proxy.py exited early:\n{self.log()}")
            if self._ready():
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"proxy.py did not accept connections in time:\n{self.log()}")
            time.sleep(0.05)

    def _ready(self) -> bool:
        try:
            text = self.port_file.read_text()
        except FileNotFoundError:
            return False
        if not text.endswith("\n"):
            return False  # still being written
        self.port = int(text.split()[0])
        try:
            socket.create_connection((HOST, self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def stop(self) -> None:
        """Terminate proxy.py (and its children) and wait for it (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def __enter__(self) -> ForwardProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def url(self, user: str | None = None, password: str | None = None) -> str:
        """``http://[user:password@]127.0.0.1:port``."""
        cred = f"{user}:{password}@" if user is not None else ""
        return f"http://{cred}{HOST}:{self.port}"

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def log(self) -> str:
        with contextlib.suppress(FileNotFoundError):
            return self.log_file.read_text(errors="replace")
        return ""

    def wait_for_log(self, text: str, timeout: float = 30.0) -> bool:
        """Wait until ``text`` appears in proxy.py's log (or ``timeout`` passes)."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True


class TestCA:
    """A ``trustme`` CA, a server certificate for 127.0.0.1, and its PEM on disk."""

    __test__ = False  # not a test class, despite the name

    def __init__(self, workdir: Path) -> None:
        self.ca = trustme.CA()
        self.leaf = self.ca.issue_cert(HOST, "localhost")
        self.pem = str(workdir / "ca.pem")
        self.ca.cert_pem.write_to_path(self.pem)

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.leaf.configure_cert(ctx)
        return ctx

    def collector(self) -> Collector:
        """An HTTPS collector on 127.0.0.1 presenting the leaf (not started)."""
        return Collector(tls=self.server_context())


FAST: dict[str, Any] = {
    "flush_interval": 0.05,
    "backoff_initial": 0.01,
    "backoff_max": 0.05,
    "max_attempts": 3,
}


def ship(url: str, n: int = 1, **options: Any) -> logdrain.DrainStats:
    """Submit n records through a fresh drain, flush, close; the final stats."""
    with logdrain.Drain(url, **{**FAST, **options}) as drain:
        for i in range(n):
            drain.submit({"message": f"m{i}"})
        assert drain.flush(timeout=30)
    stats = drain.stats()
    assert stats.balanced, stats
    return stats


class FixedProxy:
    """A "proxy" on 127.0.0.1 that answers every request with the same head
    (``status`` and ``headers``), as a proxy that wants NTLM, or forbids a
    host, does; it records the request heads it read."""

    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]]) -> None:
        head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
        self._answer = (head + "Content-Length: 0\r\nConnection: close\r\n\r\n").encode()
        self.heads: list[bytes] = []
        self._sock = socket.create_server((HOST, 0))
        self.port = int(self._sock.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed by stop()
            with conn:
                data = b""
                with contextlib.suppress(OSError):
                    conn.settimeout(10)
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    self.heads.append(data)
                    conn.sendall(self._answer)

    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def __enter__(self) -> FixedProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() on Linux
        self._sock.close()
        self._thread.join(5)
