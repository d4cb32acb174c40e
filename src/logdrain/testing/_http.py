"""HTTP plumbing of :class:`~logdrain.testing.Collector`: server, handler, body parsing."""

from __future__ import annotations

import gzip
import json
import socket
import socketserver
import sys
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from ._collector import Collector

#: Header carrying the sender's batch id, used for the at-least-once duplicate check.
BATCH_ID_HEADER = "X-Logdrain-Batch-Id"

HOST = "127.0.0.1"


@dataclass(frozen=True)
class RequestInfo:
    """One HTTP request received by the collector.

    ``status`` is the status the collector answered with, or ``0`` if the
    request was never answered (it arrived while the collector was hanging, or
    a fault sent nothing).  A ``silent`` fault that took a connection before
    reading anything records ``method == path == ""`` and an empty body.
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
class Scripted:
    """One response queued by :meth:`Collector.script`."""

    status: int
    headers: dict[str, str]
    body: bytes


class BadBody(ValueError):
    """The request body could not be turned into records."""


def parse_records(body: bytes, content_type: str, content_encoding: str) -> list[dict[str, Any]]:
    """Decode a request body into log records, raising :class:`BadBody` on failure."""
    if "gzip" in content_encoding.lower():
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError) as exc:
            raise BadBody(f"bad gzip body: {exc}") from None
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
        raise BadBody(f"bad JSON body: {exc}") from None
    for item in items:
        if not isinstance(item, dict):
            raise BadBody(f"record is not a JSON object: {type(item).__name__}")
    return cast("list[dict[str, Any]]", items)


class Server(ThreadingHTTPServer):
    """Threaded HTTP server that reports its connections to its collector."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, collector: Collector, port: int) -> None:
        self.collector = collector
        super().__init__((HOST, port), Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() calls socket.getfqdn(), which may do a slow
        # reverse DNS lookup; the host name is known, so skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name = HOST
        self.server_port = self.server_address[1]

    def process_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, socket.socket):
            self.collector._track(request, new=True)
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


class Handler(BaseHTTPRequestHandler):
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
        collector = cast("Server", self.server).collector
        tls = collector._tls
        if tls is not None:
            raw = self.request
            collector._untrack(raw)
            self.request = tls.wrap_socket(raw, server_side=True)
            collector._track(self.request)
        super().setup()

    def handle(self) -> None:
        collector = cast("Server", self.server).collector
        if collector._silent_before_reading(self):
            self.close_connection = True
            return
        super().handle()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            collector = cast("Server", self.server).collector
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
        collector = cast("Server", self.server).collector
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
