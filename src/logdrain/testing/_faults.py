"""Faults that :meth:`Collector.fault` queues, played on the real socket (see the package doc)."""

from __future__ import annotations

import functools
import json
import select
import socket
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

KINDS = (
    "trickle_status",
    "trickle_body",
    "huge_body",
    "endless_body",
    "cut_chunked",
    "reset",
    "silent",
    "partial",
    "gzip_bomb",
)
_ANSWER = frozenset({"status", "headers"})
_PARAMS: dict[str, frozenset[str]] = {
    "trickle_status": _ANSWER | {"body", "interval"},
    "trickle_body": _ANSWER | {"body", "interval", "chunked"},
    "huge_body": _ANSWER | {"size"},
    "endless_body": _ANSWER | {"interval"},
    "cut_chunked": _ANSWER | {"body"},
    "reset": _ANSWER | {"body", "after"},
    "silent": frozenset(),
    "partial": _ANSWER | {"body", "keep"},
    "gzip_bomb": _ANSWER | {"size"},
}
_REQUIRED = {"huge_body": {"size"}, "gzip_bomb": {"size"}, "partial": {"keep"}}
_DEFAULT_STATUS = {"cut_chunked": 503, "partial": 503}
_DEFAULT_INTERVAL = {"endless_body": 0.0}

_SLICE = 0.05  # waits re-check for a stop or a departed client at least this often
_WRITE = 64 * 1024  # bytes per write for generated bodies
_GZIP_INPUT = 1 << 20  # zeros compressed into one repeated deflate segment
_CUT_CHUNK = 0x400  # size announced by cut_chunked's last chunk, of which _CUT_SENT bytes come
_CUT_SENT = 10
# Peer closed (or reset) its side; POLLRDHUP is Linux-only, elsewhere a write notices.
_GONE = sum(getattr(select, name, 0) for name in ("POLLRDHUP", "POLLHUP", "POLLERR"))


@dataclass(frozen=True)
class Fault:
    """One queued fault: ``kind`` and its validated parameters."""

    kind: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None  # None: the collector's usual JSON answer
    interval: float = 1.0
    size: int = 0
    keep: int = 0
    after: int = 0
    chunked: bool = False

    @property
    def closes(self) -> bool:
        """Whether the connection is closed after this fault (else kept alive)."""
        return self.kind in ("endless_body", "cut_chunked", "reset", "silent")

    def sent_status(self) -> int:
        """The status recorded in :class:`RequestInfo` (0 when no byte is sent)."""
        if self.kind == "silent" or (self.kind == "reset" and self.after == 0):
            return 0
        return self.status


def make_fault(kind: str, params: dict[str, Any]) -> Fault:
    """Validate ``kind`` and ``params`` (raising TypeError/ValueError) into a :class:`Fault`."""
    if kind not in _PARAMS:
        raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
    unknown = set(params) - _PARAMS[kind]
    if unknown:
        allowed = ", ".join(sorted(_PARAMS[kind])) or "none"
        raise TypeError(f"fault {kind!r} takes no {', '.join(sorted(unknown))} (takes: {allowed})")
    missing = _REQUIRED.get(kind, set()) - set(params)
    if missing:
        raise TypeError(f"fault {kind!r} needs {', '.join(sorted(missing))}")
    status = params.get("status", _DEFAULT_STATUS.get(kind, 200))
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise ValueError(f"status must be an int in 100..599, not {status!r}")
    headers = params.get("headers") or {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in dict(headers).items()):
        raise TypeError("headers must map str to str")
    body = params.get("body")
    if body is not None and not isinstance(body, bytes):
        raise TypeError(f"body must be bytes, not {type(body).__name__}")
    interval = params.get("interval", _DEFAULT_INTERVAL.get(kind, 1.0))
    if not isinstance(interval, int | float) or isinstance(interval, bool) or interval < 0:
        raise ValueError(f"interval must be a number >= 0, not {interval!r}")
    ints = {}
    for name in ("size", "keep", "after"):
        value = params.get(name, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, not {value!r}")
        ints[name] = value
    fault = Fault(
        kind,
        status,
        dict(headers),
        body,
        float(interval),
        chunked=bool(params.get("chunked", False)),
        **ints,
    )
    if kind == "gzip_bomb":
        _gzip_bomb(fault.size)  # compress now (cached), not while a client waits
    return fault


class _Gone(Exception):
    """The collector cut the connection (stop/down) or the client went away."""


class _Conn:
    """Writes and waits on one client socket, ending on a cut or a departed client."""

    def __init__(self, sock: socket.socket, alive: Callable[[], bool]) -> None:
        self.sock = sock
        self.alive = alive
        self.poller: Any = None
        if hasattr(select, "poll"):
            self.poller = select.poll()
            self.poller.register(sock.fileno(), _GONE)

    def send(self, data: bytes) -> None:
        if not self.alive():
            raise _Gone
        self.sock.sendall(data)

    def wait(self, seconds: float | None) -> None:
        """Sleep ``seconds`` (None: forever); raise :class:`_Gone` as soon as it is."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while True:
            if not self.alive():
                raise _Gone
            step = _SLICE
            if deadline is not None:
                step = min(step, deadline - time.monotonic())
                if step <= 0:
                    return
            if self.poller is None:
                time.sleep(step)
            elif self.poller.poll(step * 1000):
                raise _Gone

    def reset(self, untrack: Callable[[], None]) -> None:
        """Close with SO_LINGER 0, so the peer gets a RST instead of a FIN."""
        untrack()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


def wait_gone(sock: socket.socket, alive: Callable[[], bool]) -> None:
    """Block until the client goes away or the collector cuts the connection."""
    try:
        _Conn(sock, alive).wait(None)
    except (_Gone, OSError):
        return


def default_body(status: int, record_count: int) -> bytes:
    """The collector's usual answer body for ``status``."""
    payload = {"accepted": record_count} if 200 <= status < 300 else {"error": status}
    return json.dumps(payload).encode()


def _head(
    status: int,
    headers: dict[str, str],
    *,
    length: int | None,
    content_type: str = "application/json",
    extra: tuple[str, ...] = (),
) -> bytes:
    """Status line and headers; ``length`` None means ``Transfer-Encoding: chunked``."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}", "Server: logdrain-collector"]
    lines.append(f"Date: {formatdate(usegmt=True)}")
    has_type = False
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in ("content-length", "transfer-encoding"):
            continue
        has_type = has_type or lowered == "content-type"
        lines.append(f"{name}: {value}")
    if not has_type:
        lines.append(f"Content-Type: {content_type}")
    lines.extend(extra)
    lines.append("Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@functools.lru_cache(maxsize=8)
def _gzip_bomb(size: int) -> tuple[bytes, bytes, int, bytes]:
    """(gzip header, repeated segment, repeat count, tail) inflating to ``size`` zeros.

    Each segment is 1 MiB of zeros deflated and ended by a full flush, so the
    same bytes can be repeated; the tail holds the remainder, the final block
    and the trailer.  Only compressed bytes are ever held.
    """
    count, rest = divmod(size, _GZIP_INPUT)
    zeros = bytes(_GZIP_INPUT)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    last = zlib.compressobj(9, zlib.DEFLATED, -15)
    tail = last.compress(bytes(rest)) + last.flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(zeros, crc)
    crc = zlib.crc32(bytes(rest), crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"  # deflate, no name, mtime 0, max level
    return header, segment, count, tail + struct.pack("<II", crc, size & 0xFFFFFFFF)


def run_fault(
    fault: Fault,
    sock: socket.socket,
    records: list[dict[str, Any]] | None,
    *,
    record: Callable[[int, list[dict[str, Any]] | None], None],
    alive: Callable[[], bool],
    untrack: Callable[[], None],
) -> bool:
    """Play ``fault`` as the answer to a request already read; True to keep the connection.

    ``record(status, stored)`` is called once, before anything is sent, so
    tests can see the request while the fault is still going on.
    """
    status = fault.sent_status()
    count = len(records) if records is not None else 0
    if fault.kind == "partial":
        record(status, (records or [])[: fault.keep])
    else:
        record(status, records if 200 <= status < 300 else None)
    try:
        _play(fault, _Conn(sock, alive), count, untrack)
    except (_Gone, OSError):
        return False
    return not fault.closes


def _play(fault: Fault, conn: _Conn, count: int, untrack: Callable[[], None]) -> None:
    kind, status, headers = fault.kind, fault.status, fault.headers
    body = default_body(status, count) if fault.body is None else fault.body
    if kind == "silent":
        conn.wait(None)
    elif kind == "partial":
        conn.send(_head(status, headers, length=len(body)) + body)
    elif kind == "trickle_status":
        head = _head(status, headers, length=len(body))
        for i in range(len(head)):
            conn.send(head[i : i + 1])
            conn.wait(fault.interval)
        conn.send(body)
    elif kind == "trickle_body":
        conn.send(_head(status, headers, length=None if fault.chunked else len(body)))
        for i in range(len(body)):
            conn.wait(fault.interval)
            piece = body[i : i + 1]
            conn.send(_chunk(piece) if fault.chunked else piece)
        if fault.chunked:
            conn.send(b"0\r\n\r\n")
    elif kind == "huge_body":
        conn.send(_head(status, headers, length=fault.size, content_type="text/plain"))
        block, left = b"x" * _WRITE, fault.size
        while left > 0:
            conn.send(block[:left] if left < _WRITE else block)
            left -= _WRITE
    elif kind == "endless_body":
        conn.send(_head(status, headers, length=None, content_type="text/plain"))
        block = _chunk(b"x" * _WRITE)
        while True:
            conn.send(block)
            if fault.interval > 0:
                conn.wait(fault.interval)
    elif kind == "cut_chunked":
        cut = b"%x\r\n" % _CUT_CHUNK + b"x" * _CUT_SENT
        conn.send(_head(status, headers, length=None) + _chunk(body) + cut)
    elif kind == "reset":
        conn.send((_head(status, headers, length=len(body)) + body)[: fault.after])
        conn.reset(untrack)
    elif kind == "gzip_bomb":
        header, segment, repeat, tail = _gzip_bomb(fault.size)
        length = len(header) + len(segment) * repeat + len(tail)
        extra = ("Content-Encoding: gzip",)
        conn.send(_head(status, headers, length=length, extra=extra) + header)
        per_write = max(1, _WRITE // len(segment))
        while repeat > 0:
            conn.send(segment * min(repeat, per_write))
            repeat -= per_write
        conn.send(tail)
    else:  # pragma: no cover - make_fault() validated the kind
        raise AssertionError(kind)
