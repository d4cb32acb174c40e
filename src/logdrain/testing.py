"""A real, local HTTP log collector for tests, demos and benchmarks.

:class:`Collector` runs a small threaded HTTP/1.1 server bound to ``127.0.0.1``
that accepts batches of log records the way a real log collector would, and
records everything it receives so that callers can make assertions about it.
It can also be scripted to misbehave: answer with error statuses (optionally
with headers such as ``Retry-After``), hang without answering, answer slowly,
or stop listening altogether and come back later on the same port.

Only the standard library is used.  Example::

    with Collector() as collector:
        ship_some_logs(collector.url)
        assert collector.wait_for_count(10)
        print(collector.records)
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import socketserver
import ssl
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast

__all__ = ["BATCH_ID_HEADER", "Collector", "RequestInfo"]

#: Header carrying the sender's batch id, used for the at-least-once duplicate check.
BATCH_ID_HEADER = "X-Logdrain-Batch-Id"

_HOST = "127.0.0.1"
_POLL_INTERVAL = 0.05  # how quickly the accept loop notices a shutdown request
_STOP_WAIT = 5.0  # upper bound on how long stop() waits for handler threads to finish
_WAIT_SLICE = 0.05  # wait_for() re-evaluates its predicate at least this often
_METHODS = ("GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS")


@dataclass(frozen=True)
class RequestInfo:
    """One HTTP request received by the collector.

    ``status`` is the status the collector answered with, or ``0`` if the
    request was never answered (it arrived while the collector was hanging).
    ``record_count`` is the number of records the body held (0 if it could not
    be parsed), whether or not they were stored.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    record_count: int


@dataclass(frozen=True)
class _Scripted:
    status: int
    headers: dict[str, str]
    body: bytes


class _BadBody(ValueError):
    """The request body could not be turned into records."""


def _parse_records(body: bytes, content_type: str, content_encoding: str) -> list[dict[str, Any]]:
    """Decode a request body into log records, raising :class:`_BadBody` on failure."""
    if "gzip" in content_encoding.lower():
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError) as exc:
            raise _BadBody(f"bad gzip body: {exc}") from None
    try:
        if "ndjson" in content_type.lower():
            lines = [line for line in body.splitlines() if line.strip()]
            # Fast path: one json.loads() over the lines joined into an array; the
            # length check catches lines holding more than one value.
            items: list[Any] = json.loads(b"[" + b",".join(lines) + b"]")
            if len(items) != len(lines):
                items = [json.loads(line) for line in lines]
        else:
            parsed = json.loads(body)
            items = parsed if isinstance(parsed, list) else [parsed]
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise _BadBody(f"bad JSON body: {exc}") from None
    for item in items:
        if not isinstance(item, dict):
            raise _BadBody(f"record is not a JSON object: {type(item).__name__}")
    return cast("list[dict[str, Any]]", items)


class _Server(ThreadingHTTPServer):
    """Threaded HTTP server that reports its connections to its collector."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, collector: Collector, port: int) -> None:
        self.collector = collector
        super().__init__((_HOST, port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() calls socket.getfqdn(), which may do a slow
        # reverse DNS lookup; the host name is known, so skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name = _HOST
        self.server_port = self.server_address[1]

    def process_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, socket.socket):
            self.collector._track(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        if isinstance(request, socket.socket):
            self.collector._untrack(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients going away (and down()/stop() cutting connections) are normal here.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Per-connection request handler; all the logic lives in :class:`Collector`."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "logdrain-collector"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Silence http.server's per-request stderr logging."""

    def setup(self) -> None:
        # TLS: the handshake happens here, in this connection's own thread, so a
        # client that rejects the certificate cannot stall the accept loop.
        collector = cast("_Server", self.server).collector
        tls = collector._tls
        if tls is not None:
            raw = self.request
            collector._untrack(raw)
            self.request = tls.wrap_socket(raw, server_side=True)
            collector._track(self.request)
        super().setup()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            collector = cast("_Server", self.server).collector
            if collector._tls is not None:
                collector._untrack(self.request)
                self.request.close()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size_line = self.rfile.readline(65537)
                if not size_line:
                    raise ConnectionError("connection closed inside a chunked body")
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537).strip():  # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)  # CRLF after the chunk
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        collector = cast("_Server", self.server).collector
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._answer(400, {}, b"bad request framing")
            return
        collector._handle(self, body)

    def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        has_type = False
        for name, value in headers.items():
            lowered = name.lower()
            if lowered == "content-length":
                continue
            has_type = has_type or lowered == "content-type"
            self.send_header(name, value)
        if body and not has_type:
            content_type = "application/json" if body[:1] in (b"{", b"[") else "text/plain"
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    do_POST = _dispatch
    do_GET = _dispatch
    do_HEAD = _dispatch
    do_PUT = _dispatch
    do_PATCH = _dispatch
    do_DELETE = _dispatch
    do_OPTIONS = _dispatch


class Collector:
    """A local HTTP log collector that records what it receives.

    Bind with :meth:`start` (or use it as a context manager), point the code
    under test at :attr:`url`, then inspect :attr:`records`, :attr:`requests`
    and friends.  The attributes :attr:`status` and :attr:`delay` and the
    methods :meth:`script`, :meth:`hang`, :meth:`down` and :meth:`up` make it
    misbehave in controlled ways.
    """

    #: Default status for requests that are not scripted (e.g. 503 to flap).
    status: int
    #: Seconds to sleep before answering each request (a slow collector).
    delay: float

    def __init__(
        self, path: str = "/ingest", *, port: int = 0, tls: ssl.SSLContext | None = None
    ) -> None:
        """``tls``: a server-side ``ssl.SSLContext`` to serve HTTPS (``url`` becomes
        ``https://``); require client certificates in it to test mutual TLS."""
        if not path.startswith("/"):
            path = "/" + path
        self._tls = tls
        self._path = path
        self._port = port
        self.status = 200
        self.delay = 0.0

        # Data lock, notified on every request (see wait_for()).
        self._cond = threading.Condition()
        self._seq = 0
        self._records: list[dict[str, Any]] = []
        self._requests: list[RequestInfo] = []
        self._batch_ids: list[str] = []
        self._seen_batch_ids: set[str] = set()
        self._duplicates = 0
        self._scripted: deque[_Scripted] = deque()

        # Hang / delay release.  stop() bumps _generation (releasing every waiting
        # handler); hang(False) bumps _hang_generation (releasing hung handlers).
        self._release = threading.Condition(threading.Lock())
        self._hanging = False
        self._generation = 0
        self._hang_generation = 0

        # Open client connections, so down()/stop() can cut them.
        self._conns_cond = threading.Condition(threading.Lock())
        self._conns: set[socket.socket] = set()

        # Lifecycle.
        self._life = threading.Lock()
        self._started = False
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{_HOST}:{self._port}{self._path}" if self._port else self._path
        state = "listening" if self._server is not None else "not listening"
        return f"<Collector {where} {state} records={self.count}>"

    def start(self) -> Collector:
        """Bind 127.0.0.1:port (0 picks a free port) and serve in daemon threads."""
        with self._life:
            if not self._started:
                self._listen()
                self._started = True
        return self

    def stop(self) -> None:
        """Stop serving, release hung requests and close every connection (idempotent)."""
        with self._life:
            self._started = False
            self._release_waiters()
            self._unlisten()
            self._cut_connections(wait=True)

    def down(self) -> None:
        """Stop listening (new connects are refused) and close open connections."""
        with self._life:
            self._unlisten()
            self._cut_connections(wait=False)

    def up(self) -> None:
        """Listen again on the same port after :meth:`down`."""
        with self._life:
            if self._server is None:
                self._listen()
                self._started = True

    @property
    def port(self) -> int:
        """The TCP port (known once started, or when given explicitly)."""
        if not self._port:
            raise RuntimeError("Collector has no port yet: call start() first")
        return self._port

    @property
    def url(self) -> str:
        """The ingest URL, ``http(s)://127.0.0.1:<port><path>``."""
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://{_HOST}:{self.port}{self._path}"

    def _listen(self) -> None:
        server = _Server(self, self._port)
        self._port = server.server_address[1]
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL},
            name=f"logdrain-collector-{self._port}",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread

    def _unlisten(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join()

    def _track(self, sock: socket.socket) -> None:
        with self._conns_cond:
            self._conns.add(sock)

    def _untrack(self, sock: socket.socket) -> None:
        with self._conns_cond:
            self._conns.discard(sock)
            self._conns_cond.notify_all()

    def _cut_connections(self, *, wait: bool) -> None:
        # Sockets are removed from the set (under this lock) before they are
        # closed, so every socket seen here is still open.
        with self._conns_cond:
            for sock in self._conns:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            if wait:
                self._conns_cond.wait_for(lambda: not self._conns, timeout=_STOP_WAIT)

    def _release_waiters(self) -> None:
        with self._release:
            self._generation += 1
            self._release.notify_all()

    # ------------------------------------------------------------------ scripting

    def script(
        self,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> None:
        """Queue ``times`` responses, used one per ingest request (FIFO) before normal handling."""
        item = _Scripted(status, dict(headers or {}), body)
        with self._cond:
            self._scripted.extend([item] * times)

    def hang(self, on: bool = True) -> None:
        """While on, read each request fully and never answer it.

        Hung requests are released by ``hang(False)`` or :meth:`stop`; their
        connection is then closed without an answer and no records are stored.
        """
        with self._release:
            self._hanging = on
            if not on:
                self._hang_generation += 1
                self._release.notify_all()

    # ------------------------------------------------------------------ results

    @property
    def records(self) -> list[dict[str, Any]]:
        """Every record of every 2xx-answered request, in arrival order (a copy)."""
        with self._cond:
            return list(self._records)

    @property
    def count(self) -> int:
        """Number of stored records."""
        return len(self._records)

    @property
    def requests(self) -> list[RequestInfo]:
        """Every request received, whatever its answer, in arrival order (a copy)."""
        with self._cond:
            return list(self._requests)

    @property
    def batch_ids(self) -> list[str]:
        """``X-Logdrain-Batch-Id`` of every 2xx-answered request that had one, repeats included."""
        with self._cond:
            return list(self._batch_ids)

    @property
    def duplicates(self) -> int:
        """Number of 2xx-answered requests whose batch id had already been answered 2xx."""
        return self._duplicates

    def wait_for(self, predicate: Callable[[Collector], bool], timeout: float = 30.0) -> bool:
        """Wait until ``predicate(self)`` is true or ``timeout`` passes; return its last value.

        The predicate is re-evaluated after every request (and at least every
        50 ms, in case it also looks at state outside the collector).
        """
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                seq = self._seq
            if predicate(self):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return bool(predicate(self))
            with self._cond:
                if self._seq == seq:
                    self._cond.wait(min(remaining, _WAIT_SLICE))

    def wait_for_count(self, n: int, timeout: float = 30.0) -> bool:
        """Wait until at least ``n`` records have been stored."""
        return self.wait_for(lambda c: c.count >= n, timeout)

    def clear(self) -> None:
        """Forget received records, requests and batch ids (scripting is kept)."""
        with self._cond:
            self._records.clear()
            self._requests.clear()
            self._batch_ids.clear()
            self._seen_batch_ids.clear()
            self._duplicates = 0
            self._seq += 1
            self._cond.notify_all()

    # ------------------------------------------------------------------ request handling

    def _pause(self, seconds: float | None) -> bool:
        """Sleep ``seconds`` (None: while hanging); False if cut short by stop()."""
        with self._release:
            generation, hang_generation = self._generation, self._hang_generation

            def released() -> bool:
                return not self._started or self._generation != generation

            if seconds is None:
                self._release.wait_for(
                    lambda: (
                        not self._hanging or self._hang_generation != hang_generation or released()
                    )
                )
            else:
                self._release.wait_for(released, timeout=seconds)
            return self._started

    def _record(
        self,
        info: RequestInfo,
        records: list[dict[str, Any]] | None = None,
        batch_id: str | None = None,
    ) -> None:
        with self._cond:
            self._requests.append(info)
            if records is not None:
                self._records.extend(records)
                if batch_id is not None:
                    self._batch_ids.append(batch_id)
                    if batch_id in self._seen_batch_ids:
                        self._duplicates += 1
                    else:
                        self._seen_batch_ids.add(batch_id)
            self._seq += 1
            self._cond.notify_all()

    def _handle(self, handler: _Handler, body: bytes) -> None:
        method = handler.command
        headers = dict(handler.headers.items())

        def info(status: int, record_count: int = 0) -> RequestInfo:
            return RequestInfo(method, handler.path, headers, body, status, record_count)

        def parse() -> tuple[list[dict[str, Any]] | None, str]:
            try:
                content_type = handler.headers.get("Content-Type", "")
                encoding = handler.headers.get("Content-Encoding", "")
                return _parse_records(body, content_type, encoding), ""
            except _BadBody as exc:
                return None, str(exc)

        if self._hanging:
            hung_records, _ = parse() if body else (None, "")
            self._record(info(0, len(hung_records or ())))
            self._pause(None)
            handler.close_connection = True  # never answered, not even after release
            return
        delay = self.delay
        if delay > 0 and not self._pause(delay):
            handler.close_connection = True  # stop() while sleeping
            return

        if handler.path.split("?", 1)[0] != self._path:
            self._record(info(404))
            handler._answer(404, {}, b"unknown path")
            return
        if method != "POST":
            self._record(info(405))
            handler._answer(405, {"Allow": "POST"}, b"method not allowed")
            return

        records, error = parse()
        record_count = len(records) if records is not None else 0

        with self._cond:
            scripted = self._scripted.popleft() if self._scripted else None
        if scripted is not None:
            status, out_headers, out_body = scripted.status, scripted.headers, scripted.body
        elif records is None:
            status, out_headers, out_body = 400, {}, error.encode("utf-8", "replace")[:500]
        else:
            status, out_headers = self.status, {}
            payload = {"accepted": record_count} if 200 <= status < 300 else {"error": status}
            out_body = json.dumps(payload).encode()

        ok = 200 <= status < 300
        batch_id = handler.headers.get(BATCH_ID_HEADER)
        self._record(info(status, record_count), records if ok else None, batch_id)
        handler._answer(status, out_headers, out_body)
