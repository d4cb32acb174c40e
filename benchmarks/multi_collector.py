"""A counting collector for every subject of the side-by-side comparison
(``compare.py``), in its own process, on 127.0.0.1 only.

It identifies each record by the ``i`` in its message ``"msg i"`` and keeps a
tally per *tag*, the first segment of the request path (each subject run
posts under its own ``/<tag>/...``), so it can tell unique records,
duplicates and records that never arrived. Wire formats, told apart by
content type and shape:

- JSON array of objects with ``message`` (logdrain, python-logstash-async);
- form-encoded, one record per request, ``msg`` already formatted (stdlib
  ``HTTPHandler`` behind a ``QueueHandler``);
- OTLP/HTTP protobuf ``ExportLogsServiceRequest``, ``body.string_value``
  (OpenTelemetry), answered 200 with an empty ``ExportLogsServiceResponse``;
- Seq raw events ``{"Events": [{"MessageTemplate": ...}]}`` and CLEF / NDJSON
  (``@m``/``@mt``), answered 201 (seqlog).

Modes, switchable while running: ``up`` (2xx), ``503``, ``hang`` (accept and
read the request, never answer) and ``down`` (nothing listening: connects
are refused; open connections are cut).

Server: ``python multi_collector.py [--max-life S]`` prints
``{"port": ..., "pid": ...}`` and answers one JSON line per command read on
stdin: ``mode M``, ``tally TAG``, ``quit`` (EOF also quits). ``GET
/<tag>/_tally`` answers the same tally over HTTP (for a subject waiting for
its own records). The process exits after ``--max-life`` seconds in any case.

Capacity check: ``python multi_collector.py --capacity URL --shape S --scale F``
posts pre-encoded bodies shaped like one subject's requests from a raw
``http.client`` client and prints what it sent; the parent reads the
collector's tally and CPU time (see ``compare.run_capacity``).

``CollectorClient`` is the parent's handle on a collector process.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import queue
import re
import selectors
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus, urlencode, urlsplit

import _util

MODES = ("up", "503", "hang", "down")
_SEQ_SUFFIXES = ("/api/events/raw", "/ingest/clef")
_MESSAGE_KEYS = ("message", "MessageTemplate", "RenderedMessage", "@m", "@mt", "msg")
_QUIESCE_S = 1.0  # a tally waits this long at most for requests still being read

try:  # the OTLP format needs opentelemetry-proto (installed with the OTLP exporter)
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceRequest,
        ExportLogsServiceResponse,
    )

    _OTLP_OK = ExportLogsServiceResponse().SerializeToString()
except ImportError:  # pragma: no cover - reported as parse errors
    ExportLogsServiceRequest = None
    _OTLP_OK = b""


# -- parsing: body -> messages -> ids --


def _field(objs: list[Any]) -> list[Any]:
    """The message of each object, by the first message key the first one has."""
    if not objs:
        return []
    first = objs[0] if isinstance(objs[0], dict) else {}
    key = next((k for k in _MESSAGE_KEYS if k in first), "message")
    try:
        return [o[key] for o in objs]
    except (KeyError, TypeError):
        return [_message_of(o) for o in objs]


def _message_of(obj: Any) -> Any:
    if isinstance(obj, dict):
        return next((obj[k] for k in _MESSAGE_KEYS if k in obj), None)
    return None


def _parse_json(body: bytes) -> tuple[str, list[Any]]:
    doc = json.loads(body)
    if isinstance(doc, dict) and isinstance(doc.get("Events"), list):
        return "seq-raw", _field(doc["Events"])
    if isinstance(doc, list):
        return "json-array", _field(doc)
    return "json-object", _field([doc])


def _parse_ndjson(body: bytes) -> tuple[str, list[Any]]:
    lines = [line for line in body.splitlines() if line.strip()]
    return "ndjson", _field(json.loads(b"[" + b",".join(lines) + b"]"))


_FORM_MESSAGE = re.compile(rb"(?:^|&)(?:message|msg)=([^&]*)")


def _parse_form(body: bytes) -> tuple[str, list[Any]]:
    """One form-encoded record (``HTTPHandler``): its ``message`` or ``msg``
    field, found without decoding the other twenty."""
    match = _FORM_MESSAGE.search(body)
    return "form", [unquote_plus(match.group(1).decode("ascii")) if match else None]


def _parse_otlp(body: bytes) -> tuple[str, list[Any]]:
    if ExportLogsServiceRequest is None:
        raise ValueError("opentelemetry-proto is not installed")
    request = ExportLogsServiceRequest.FromString(body)
    return "otlp", [
        lr.body.string_value
        for rl in request.resource_logs
        for sl in rl.scope_logs
        for lr in sl.log_records
    ]


def parse(path: str, content_type: str, body: bytes) -> tuple[str, list[Any]]:
    """(format name, the message of each record) of one request body."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype == "application/x-protobuf":
        return _parse_otlp(body)
    if ctype == "application/x-www-form-urlencoded":
        return _parse_form(body)
    if ctype in ("application/vnd.serilog.clef", "application/x-ndjson") or path.endswith(
        "/ingest/clef"
    ):
        return _parse_ndjson(body)
    return _parse_json(body)


def ids_of(messages: list[Any]) -> tuple[list[int], int]:
    """The ``i`` of every ``"msg i"`` message, and how many were something else."""
    ids: list[int] = []
    other = 0
    for m in messages:
        if isinstance(m, str) and m.startswith("msg ") and m[4:].isdigit():
            ids.append(int(m[4:]))
        else:
            other += 1
    return ids, other


class Tally:
    """What one tag delivered."""

    def __init__(self) -> None:
        self.ids: Counter[int] = Counter()
        self.records = 0
        self.other = 0
        self.parse_errors = 0
        self.status: Counter[int] = Counter()
        self.formats: Counter[str] = Counter()
        self.bytes = 0
        self.first_t: float | None = None
        self.last_t: float | None = None

    def add(self, fmt: str, ids: list[int], other: int, size: int) -> None:
        now = time.monotonic()
        self.ids.update(ids)
        self.records += len(ids)
        self.other += other
        self.formats[fmt] += 1
        self.bytes += size
        if ids:
            self.first_t = self.first_t or now
            self.last_t = now

    def as_dict(self) -> dict[str, Any]:
        unique = len(self.ids)
        return {
            "unique": unique,
            "records": self.records,
            "duplicates": self.records - unique,
            "max_id": max(self.ids) if self.ids else None,
            "other": self.other,
            "parse_errors": self.parse_errors,
            "status": {str(k): v for k, v in sorted(self.status.items())},
            "formats": dict(self.formats),
            "bytes": self.bytes,
            "first_t": self.first_t,
            "last_t": self.last_t,
        }


# -- the HTTP server: one thread, one selector --
#
# A plain selectors loop rather than asyncio: a one-record request on a new
# connection costs about 90 us of CPU here against about 140 us with an
# asyncio server. That matters for a subject that opens a connection per
# record and waits for each answer: the collector's time per request is part
# of that subject's round trip.

_REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 411: "Length Required", 503: "Busy"}
_RECV = 256 * 1024


class _Request:
    def __init__(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        self.method, target, _version = lines[0].split(" ", 2)
        self.headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                self.headers[name.strip().lower()] = value.strip()
        self.path = urlsplit(target).path
        self.tag = self.path.split("/", 2)[1] if self.path.startswith("/") else ""
        self.length = int(self.headers.get("content-length", "0"))
        self.chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
        self.keep_alive = self.headers.get("connection", "").lower() != "close"
        self.body = b""


class _Connection:
    """One client connection: bytes in, complete requests out."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.request: _Request | None = None  # head read, body pending
        self.hung = False

    @property
    def partial(self) -> bool:
        return bool(self.buffer) and not self.hung

    def next_request(self) -> _Request | None:
        """The next complete request in the buffer, if there is one."""
        if self.request is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return None
            self.request = _Request(bytes(self.buffer[:end]))
            del self.buffer[: end + 4]
        request = self.request
        if request.chunked or len(self.buffer) < request.length:
            return request if request.chunked else None  # chunked: refused by the caller
        request.body = bytes(self.buffer[: request.length])
        del self.buffer[: request.length]
        self.request = None
        return request

    def send(self, status: int, ctype: str, body: bytes) -> None:
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n"
            f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        data = head.encode("ascii") + body
        sent = self.sock.send(data)
        if sent < len(data):  # rare (answers are small): finish it blocking, briefly
            self.sock.settimeout(2.0)
            self.sock.sendall(data[sent:])
            self.sock.setblocking(False)


class Collector:
    """Counts records per tag; the mode can change at any time. Runs on one
    thread (:meth:`serve`); other threads talk to it through :meth:`call`."""

    def __init__(self) -> None:
        self.mode = "up"
        self.port = 0
        self.tallies: dict[str, Tally] = {}
        self._selector = selectors.DefaultSelector()
        self._listener: socket.socket | None = None
        self._connections: dict[socket.socket, _Connection] = {}
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._calls: queue.SimpleQueue[tuple[list[str], queue.SimpleQueue[dict[str, Any]]]]
        self._calls = queue.SimpleQueue()
        self._pending: list[tuple[str, float, queue.SimpleQueue[dict[str, Any]]]] = []
        self._listen()

    # -- sockets --

    def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(1024)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self._listener = sock
        self._selector.register(sock, selectors.EVENT_READ, "listen")

    def _accept(self) -> None:
        assert self._listener is not None
        for _ in range(64):
            try:
                sock, _addr = self._listener.accept()
            except (BlockingIOError, ConnectionError):
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._connections[sock] = _Connection(sock)
            self._selector.register(sock, selectors.EVENT_READ, "conn")

    def _close(self, conn: _Connection) -> None:
        self._connections.pop(conn.sock, None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.sock)
        conn.sock.close()

    def _readable(self, conn: _Connection) -> None:
        try:
            data = conn.sock.recv(_RECV)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return
        if conn.hung:
            return  # read and ignored: a hung collector never answers
        conn.buffer += data
        try:
            while (request := conn.next_request()) is not None:
                if not self._respond(conn, request):
                    return
        except (OSError, ValueError):
            self._close(conn)

    def _respond(self, conn: _Connection, request: _Request) -> bool:
        """Answer one request; False when the connection takes no more."""
        if request.chunked:  # none of the subjects sends chunked bodies
            conn.send(411, "text/plain", b"length required")
            self._close(conn)
            return False
        answer = self.answer(request)
        if answer is None:
            conn.hung = True
            return False
        conn.send(*answer)
        if not request.keep_alive:
            self._close(conn)
            return False
        return True

    # -- modes and tallies (on the serving thread) --

    def set_mode(self, mode: str) -> dict[str, Any]:
        if mode not in MODES:
            return {"error": f"unknown mode {mode!r}"}
        for conn in list(self._connections.values()):  # requests hung until now are cut
            if conn.hung or mode == "down":
                self._close(conn)
        if mode == "down" and self._listener is not None:
            self._selector.unregister(self._listener)
            self._listener.close()
            self._listener = None
        elif mode != "down" and self._listener is None:
            self._listen()
        self.mode = mode
        return {"mode": mode, "t": time.monotonic()}

    def tally_now(self, tag: str) -> dict[str, Any]:
        result = self.tallies.get(tag, Tally()).as_dict()
        result.update(tag=tag, cpu_s=time.process_time(), t=time.monotonic())
        return result

    def _answer_pending(self) -> None:
        """Tallies wait (at most _QUIESCE_S) until no request is half received."""
        busy = any(c.partial for c in self._connections.values())
        now = time.monotonic()
        keep = []
        for tag, deadline, reply in self._pending:
            if busy and now < deadline:
                keep.append((tag, deadline, reply))
            else:
                reply.put(self.tally_now(tag))
        self._pending = keep

    def _run_calls(self) -> None:
        with contextlib.suppress(BlockingIOError):
            self._wake_r.recv(4096)
        while not self._calls.empty():
            words, reply = self._calls.get()
            if words[0] == "mode" and len(words) == 2:
                reply.put(self.set_mode(words[1]))
            elif words[0] == "tally" and len(words) == 2:
                self._pending.append((words[1], time.monotonic() + _QUIESCE_S, reply))
            else:
                reply.put({"error": f"unknown command {' '.join(words)!r}"})

    def call(self, words: list[str]) -> dict[str, Any]:
        """Run a command on the serving thread (from any other thread)."""
        reply: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._calls.put((words, reply))
        self._wake_w.send(b"x")
        return reply.get(timeout=30)

    def answer(self, request: _Request) -> tuple[int, str, bytes] | None:
        """(status, content type, body), or None to never answer."""
        if request.method == "GET" and request.path.endswith("/_tally"):
            return 200, "application/json", json.dumps(self.tally_now(request.tag)).encode()
        tally = self.tallies.setdefault(request.tag, Tally())
        if self.mode == "hang":
            return None
        if self.mode == "503":
            tally.status[503] += 1
            return 503, "text/plain", b"busy"
        try:
            fmt, messages = parse(
                request.path, request.headers.get("content-type", ""), request.body
            )
        except (ValueError, UnicodeDecodeError):
            tally.parse_errors += 1
            tally.status[400] += 1
            return 400, "text/plain", b"unparseable"
        tally.add(fmt, *ids_of(messages), len(request.body))
        if fmt == "otlp":
            tally.status[200] += 1
            return 200, "application/x-protobuf", _OTLP_OK
        status = 201 if request.path.endswith(_SEQ_SUFFIXES) else 200
        tally.status[status] += 1
        return status, "application/json", b"{}"

    def serve(self, until: float, stop: threading.Event) -> None:
        while not stop.is_set() and time.monotonic() < until:
            for key, _events in self._selector.select(0.01 if self._pending else 0.5):
                if key.data == "listen":
                    self._accept()
                elif key.data == "wake":
                    self._run_calls()
                else:
                    conn = self._connections.get(key.fileobj)  # type: ignore[call-overload]
                    if conn is not None:
                        self._readable(conn)
            if self._pending:
                self._answer_pending()
        self.set_mode("down")


def _reply(obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _control(collector: Collector, stop: threading.Event) -> None:
    """Commands from stdin, run on the serving thread; EOF or quit stops it."""
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            _reply({"bye": True})
            break
        _reply(collector.call(words))
    stop.set()


def _serve_main(max_life: float) -> None:
    collector = Collector()
    stop = threading.Event()
    _reply({"port": collector.port, "pid": os.getpid()})
    threading.Thread(target=_control, args=(collector, stop), daemon=True).start()
    collector.serve(time.monotonic() + max_life, stop)


# -- the parent's handle --


class CollectorClient(_util.StdioChild):
    """A collector process driven over stdin/stdout (see the module docstring)."""

    def __init__(self, env: dict[str, str], max_life: float = 1800.0) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--max-life", str(max_life)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._lock = threading.Lock()
        self.port = int(self._read()["port"])
        self.base = f"http://127.0.0.1:{self.port}"

    def _ask(self, *words: object) -> dict[str, Any]:
        with self._lock:  # several threads of the orchestrator may ask
            return super()._ask(*words)

    def mode(self, mode: str) -> float:
        """Switch mode; the monotonic time at which the collector did."""
        reply = self._ask("mode", mode)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return float(reply["t"])

    def tally(self, tag: str) -> dict[str, Any]:
        return self._ask("tally", tag)


# -- capacity: a raw client per subject's request shape --


def _doc(i: int) -> dict[str, Any]:
    return {
        "timestamp": "2026-11-23T12:00:00.000000Z",
        "level": "INFO",
        "logger": "bench.compare",
        "message": f"msg {i}",
        "user": "u",
        "n": i,
        "host": "bench",
        "pid": 4242,
        "thread": "MainThread",
    }


def _json_body(ids: range) -> bytes:
    return json.dumps([_doc(i) for i in ids]).encode()


def _seq_body(ids: range) -> bytes:
    events = [
        {"Timestamp": "2026-11-23 12:00:00", "Level": "INFO", "MessageTemplate": f"msg {i}"}
        for i in ids
    ]
    return json.dumps({"Events": events}).encode()


def _form_body(ids: range) -> bytes:
    return urlencode({**_doc(ids[0]), "msg": f"msg {ids[0]}", "args": "None"}).encode()


def _otlp_body(ids: range) -> bytes:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

    def attrs(i: int) -> list[KeyValue]:
        return [
            KeyValue(key="user", value=AnyValue(string_value="u")),
            KeyValue(key="n", value=AnyValue(int_value=i)),
            KeyValue(key="code.file.path", value=AnyValue(string_value="/bench/compare.py")),
            KeyValue(key="code.function.name", value=AnyValue(string_value="_log_range")),
            KeyValue(key="code.line.number", value=AnyValue(int_value=100)),
        ]

    records = [
        LogRecord(
            time_unix_nano=1_700_000_000_000_000_000 + i,
            severity_number=9,
            severity_text="INFO",
            body=AnyValue(string_value=f"msg {i}"),
            attributes=attrs(i),
        )
        for i in ids
    ]
    request = ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=records)])]
    )
    return bytes(request.SerializeToString())


# shape id -> (path, content type, records per request, new connection per request,
#              records to send at scale 1, body builder, whose requests it imitates)
SHAPES: dict[str, tuple[str, str, int, bool, int, Callable[[range], bytes], str]] = {
    "json2000": ("ingest", "application/json", 2000, False, 300_000, _json_body, "logdrain"),
    "form1": ("form", "application/x-www-form-urlencoded", 1, True, 10_000, _form_body, "stdlib"),
    "json50": ("", "application/json", 50, True, 60_000, _json_body, "logstash_async"),
    "otlp512": ("v1/logs", "application/x-protobuf", 512, False, 200_000, _otlp_body, "otel"),
    "seq10": ("api/events/raw", "application/json", 10, False, 60_000, _seq_body, "seqlog"),
}
_CAPACITY_TIME = 8.0  # seconds per shape at most


def _post_all(url: str, shape: str, bodies: list[bytes]) -> tuple[float, int, int]:
    """(elapsed, requests answered 2xx, errors) posting ``bodies`` as ``shape`` does."""
    path, ctype, _, fresh, _, _, _ = SHAPES[shape]
    parts = urlsplit(url)
    target = f"/cap-{shape}/{path}"
    conn: http.client.HTTPConnection | None = None
    ok = errors = 0
    t0 = time.monotonic()
    for body in bodies:
        if conn is None:
            conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
        conn.request("POST", target, body=body, headers={"Content-Type": ctype})
        response = conn.getresponse()
        response.read()
        if 200 <= response.status < 300:
            ok += 1
        else:
            errors += 1
        if fresh:
            conn.close()
            conn = None
        if time.monotonic() - t0 > _CAPACITY_TIME:
            break
    elapsed = time.monotonic() - t0
    if conn is not None:
        conn.close()
    return elapsed, ok, errors


def capacity(url: str, shape: str, scale: float) -> dict[str, Any]:
    """Post one shape's pre-encoded bodies (built untimed) and say what was sent."""
    _, _, per_request, fresh, records, build, subject = SHAPES[shape]
    total = max(per_request, int(records * scale) // per_request * per_request)
    bodies = [build(range(k, k + per_request)) for k in range(0, total, per_request)]
    elapsed, ok, errors = _post_all(url, shape, bodies)
    return {
        "tag": f"cap-{shape}",
        "subject": subject,
        "per_request": per_request,
        "new_connection": fresh,
        "body_bytes": len(bodies[0]),
        "elapsed_s": elapsed,
        "requests_ok": ok,
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-life", type=float, default=1800.0)
    parser.add_argument("--capacity", metavar="URL", help="run the raw capacity client")
    parser.add_argument("--shape", choices=SHAPES, help="with --capacity: the request shape")
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    if args.capacity:
        _reply(capacity(args.capacity, args.shape, args.scale))
        return
    _serve_main(args.max_life)


if __name__ == "__main__":
    main()
