"""The :class:`Collector` itself: lifecycle, scripting, faults and results."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import select
import socket
import ssl
import threading
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any

from ._faults import Fault, make_fault, run_fault, wait_gone
from ._http import (
    BATCH_ID_HEADER,
    HOST,
    BadBody,
    Handler,
    RequestInfo,
    Scripted,
    Server,
    parse_records,
)
from ._ledger import Ledger

_POLL_INTERVAL = 0.05  # how quickly the accept loop notices a shutdown request
_STOP_WAIT = 5.0  # upper bound on how long stop() waits for handler threads to finish
_READABLE_SLICE = 0.5  # a fresh connection re-checks for a cut this often while idle


class Collector(Ledger):
    """A local HTTP log collector that records what it receives.

    Bind with :meth:`start` (or use it as a context manager), point the code
    under test at :attr:`url`, then inspect :attr:`records`, :attr:`requests`
    and friends.  The attributes :attr:`status` and :attr:`delay` and the
    methods :meth:`script`, :meth:`fault`, :meth:`hang`, :meth:`down` and
    :meth:`up` make it misbehave in controlled ways.
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

        super().__init__()
        self._scripted: deque[Scripted | Fault] = deque()

        # Hang / delay release.  stop() bumps _generation (releasing every waiting
        # handler); hang(False) bumps _hang_generation (releasing hung handlers).
        self._release = threading.Condition(threading.Lock())
        self._hanging = False
        self._generation = 0
        self._hang_generation = 0

        # Open client connections, so down()/stop() can cut them.
        self._conns_cond = threading.Condition(threading.Lock())
        self._conns: set[socket.socket] = set()
        self._connections = 0  # accepted so far
        self._cut_generation = 0  # bumped by down()/stop(): faults in progress end

        # Lifecycle.
        self._life = threading.Lock()
        self._started = False
        self._server: Server | None = None
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
        where = f"{HOST}:{self._port}{self._path}" if self._port else self._path
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
        return f"{scheme}://{HOST}:{self.port}{self._path}"

    def _listen(self) -> None:
        server = Server(self, self._port)
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

    def _track(self, sock: socket.socket, *, new: bool = False) -> None:
        with self._conns_cond:
            self._conns.add(sock)
            self._connections += new

    def _untrack(self, sock: socket.socket) -> None:
        with self._conns_cond:
            self._conns.discard(sock)
            self._conns_cond.notify_all()

    def _cut_connections(self, *, wait: bool) -> None:
        # Sockets are removed from the set (under this lock) before they are
        # closed, so every socket seen here is still open.
        with self._conns_cond:
            self._cut_generation += 1
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
        item = Scripted(status, dict(headers or {}), body)
        with self._cond:
            self._scripted.extend([item] * times)

    def fault(self, kind: str, *, times: int = 1, **params: Any) -> None:
        """Queue ``times`` faults of ``kind``, in the same FIFO as :meth:`script`.

        Kinds and their parameters are described in the :mod:`logdrain.testing`
        docstring; unknown kinds or parameters raise ``ValueError``/``TypeError``.
        """
        item = make_fault(kind, params)
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

    # ------------------------------------------------------------------ connections

    @property
    def open_connections(self) -> int:
        """Client connections open right now (a client that gave up is gone from it)."""
        with self._conns_cond:
            return len(self._conns)

    @property
    def connections(self) -> int:
        """TCP connections accepted since construction (reuse keeps it unchanged)."""
        return self._connections

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

    def _handle(self, handler: Handler, body: bytes) -> None:
        method = handler.command
        headers = dict(handler.headers.items())

        def info(status: int, record_count: int = 0) -> RequestInfo:
            return RequestInfo(method, handler.path, headers, body, status, record_count)

        def parse() -> tuple[list[dict[str, Any]] | None, str]:
            try:
                content_type = handler.headers.get("Content-Type", "")
                encoding = handler.headers.get("Content-Encoding", "")
                return parse_records(body, content_type, encoding), ""
            except BadBody as exc:
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
        batch_id = handler.headers.get(BATCH_ID_HEADER)
        if isinstance(scripted, Fault):
            self._run_fault(handler, scripted, records, info(0, record_count), batch_id)
            return
        if scripted is not None:
            status, out_headers, out_body = scripted.status, scripted.headers, scripted.body
        elif records is None:
            status, out_headers, out_body = 400, {}, error.encode("utf-8", "replace")[:500]
        else:
            status, out_headers = self.status, {}
            payload = {"accepted": record_count} if 200 <= status < 300 else {"error": status}
            out_body = json.dumps(payload).encode()

        ok = 200 <= status < 300
        self._record(info(status, record_count), records if ok else None, batch_id)
        handler._answer(status, out_headers, out_body)

    # ------------------------------------------------------------------ faults

    def _alive(self) -> Callable[[], bool]:
        """A check that turns false once down()/stop() cut the connections."""
        generation = self._cut_generation
        return lambda: self._started and self._cut_generation == generation

    def _run_fault(
        self,
        handler: Handler,
        fault: Fault,
        records: list[dict[str, Any]] | None,
        base: RequestInfo,
        batch_id: str | None,
    ) -> None:
        sock = handler.request

        def record(status: int, stored: list[dict[str, Any]] | None) -> None:
            info = dataclasses.replace(base, status=status)
            ok = 200 <= status < 300 and stored is not None
            self._record(info, stored, batch_id if ok else None)

        untrack = functools.partial(self._untrack, sock)
        if not run_fault(fault, sock, records, record=record, alive=self._alive(), untrack=untrack):
            handler.close_connection = True

    def _silent_before_reading(self, handler: Handler) -> bool:
        """On a fresh connection: if a ``silent`` fault is next, take the connection.

        Waits until the first request starts to arrive (without reading it), so
        the fault goes to whichever request comes next.  True if it was taken.
        """
        sock = handler.request
        if not hasattr(select, "poll"):
            return False
        pending = getattr(sock, "pending", None)
        if pending is None or pending() == 0:
            poller = select.poll()
            poller.register(sock.fileno(), select.POLLIN)
            alive = self._alive()
            while not poller.poll(_READABLE_SLICE * 1000):
                if not alive():
                    return False
        with self._cond:
            head = self._scripted[0] if self._scripted else None
            if not (isinstance(head, Fault) and head.kind == "silent"):
                return False
            self._scripted.popleft()
        self._record(RequestInfo("", "", {}, b"", 0, 0))
        wait_gone(sock, self._alive())
        return True
