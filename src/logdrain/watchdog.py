"""Deadlines that sockets obey: one attempt's total deadline, and the abort at
a close deadline.

requests' read timeout applies to each socket read, so a collector that
answers one byte a second keeps an attempt alive for ever. Each attempt is
therefore registered with the :class:`Watchdog` of its transport, with a
deadline for the whole of it (connect, send, answer). The connections that
urllib3 opens are of the classes :func:`tracking_pools` builds: each binds
itself to the attempt of the thread using it, and when the deadline passes
the watchdog shuts the socket, which ends the blocked read at once. That
works for every socket operation once urllib3 holds the socket; it cannot
cut a DNS lookup short (CPython cannot interrupt ``getaddrinfo``), which the
connect timeout does not bound either, nor a TLS handshake (or proxy
CONNECT) still under way, which only ``connect_timeout`` per read bounds:
such an attempt is left on its daemon thread (and a close deadline's abort
is still kept, since the closing thread never waits past it).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import weakref
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from . import guard

_current = threading.local()  # .attempt: the Attempt this thread is making, if any


def shut(conn: Any) -> None:
    """Shut ``conn``'s socket (both ways): a thread blocked on it returns."""
    sock = getattr(conn, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            # socket.socket's own shutdown: on an SSLSocket it skips the TLS
            # close_notify exchange, which could block on a hung peer.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class Attempt:
    """One request attempt: its deadline and the connections it used."""

    __slots__ = ("conns", "deadline", "expired")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.expired = False
        self.conns: list[Any] = []

    def bind(self, conn: Any) -> None:
        if conn not in self.conns:
            self.conns.append(conn)
        if self.expired:  # bound after the deadline passed: cut it now
            shut(conn)

    def expire(self) -> None:
        self.expired = True
        for conn in self.conns:
            shut(conn)


def _bind_current(conn: Any) -> None:
    attempt: Attempt | None = getattr(_current, "attempt", None)
    if attempt is not None:
        attempt.bind(conn)


class Watchdog:
    """Expires attempts at their deadline, on one daemon thread per transport.

    The thread starts with the first attempt and sleeps until the earliest
    deadline (for ever while no attempt is under way: an idle drain costs no
    wake-ups). Where no thread can be started (interpreter shutdown), attempts
    rely on the socket timeouts and the close deadline's abort alone."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._cond = threading.Condition(threading.Lock())
        self._attempts: set[Attempt] = set()
        self._thread: threading.Thread | None = None
        self._closed = False

    def begin(self, deadline: float) -> Attempt:
        attempt = Attempt(deadline)
        _current.attempt = attempt
        with self._cond:
            self._attempts.add(attempt)
            if self._thread is None and not self._closed:
                self._start_thread()
            self._cond.notify()
        return attempt

    def end(self, attempt: Attempt) -> None:
        _current.attempt = None
        with self._cond:
            self._attempts.discard(attempt)

    def close(self) -> None:
        """End the thread (attempts still under way keep their sockets'
        own timeouts; the close deadline's abort has shut them already)."""
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _start_thread(self) -> None:
        thread = threading.Thread(
            target=self._run, name=f"logdrain-{self._name}-deadline", daemon=True
        )
        try:
            thread.start()
        except RuntimeError:  # interpreter shutdown: no new threads
            return
        self._thread = thread

    def _run(self) -> None:
        guard.block_signals()
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                waits = []
                for attempt in self._attempts:
                    if attempt.expired:
                        continue
                    if attempt.deadline <= now:
                        attempt.expire()
                    else:
                        waits.append(attempt.deadline - now)
                self._cond.wait(min(waits) if waits else None)


class _Bound:
    """Mixed into urllib3's connection classes (see :func:`tracking_pools`)."""

    registry_ref: weakref.WeakSet[Any]

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self.registry_ref.add(self)
        _bind_current(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _bind_current(self)  # a kept-alive connection does not connect again
        super().request(*args, **kwargs)  # type: ignore[misc]


def tracking_pools(registry: weakref.WeakSet[Any]) -> dict[str, type[HTTPConnectionPool]]:
    """Pool classes whose connections register themselves (so ``abort`` can
    shut a socket another thread is blocked on) and bind themselves to the
    attempt of the thread using them (so the watchdog can)."""

    class Conn(_Bound, HTTPConnection):
        registry_ref = registry

    class TlsConn(_Bound, HTTPSConnection):
        registry_ref = registry

    class Pool(HTTPConnectionPool):
        ConnectionCls = Conn

    class TlsPool(HTTPSConnectionPool):
        ConnectionCls = TlsConn

    return {"http": Pool, "https": TlsPool}
