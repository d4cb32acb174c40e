"""Graylog's GELF HTTP input (``POST /gelf``), answering as Graylog, judging strictly.

Graylog answers 202 Accepted to any POST on ``/gelf`` before it decodes the
body, and drops what it cannot use without telling the sender. This fake
answers the same, then judges the message against GELF 1.1 strictly:
valid messages go to ``records``, everything else to :attr:`Graylog.dropped`
with the reason, so a test proves the sender never relied on Graylog's
silence.

Sources each rule follows:

* The GELF payload specification,
  https://go2docs.graylog.org/current/getting_in_log_data/gelf.html:
  ``version`` "1.1", ``host`` and ``short_message`` MUST be set; ``full_message``
  a string; ``timestamp`` a number (seconds, decimals for milliseconds);
  ``level`` a syslog level; ``facility``, ``line``, ``file`` deprecated;
  every other field ``_``-prefixed, named by ``^[\\w\\.\\-]*$``, a string or
  a number; ``_id`` not allowed.
* "GELF via HTTP",
  https://go2docs.graylog.org/current/getting_in_log_data/ingest_gelf.html:
  ``POST /gelf``, 202 Accepted, keep-alive and compression.
* Graylog2/graylog2-server ``inputs/transports/netty/HttpHandler.java``
  (OPTIONS 200; the configured authorization header, else 401; not POST
  405; a URI other than the path, query included, 404; 202 with an empty
  body, then decoding), ``inputs/transports/AbstractHttpTransport.java``
  (``Content-Encoding`` inflated before the aggregator; ``max_chunk_size``
  64 KiB, over it Netty's 413), ``inputs/codecs/gelf/GELFMessage.java``
  (gzip and zlib payloads recognised by their magic bytes),
  ``inputs/codecs/GelfCodec.java`` (invalid JSON; ``host`` blank or not a
  string; ``short_message`` missing or not a string; fields Graylog skips:
  ``_id`` and Elasticsearch's fields, ones already set such as ``source``
  and ``level``, nulls, booleans) and ``plugin/Message.java`` (reserved
  and ``gl2_`` fields; an empty message is incomplete and never stored).

Strict beyond Graylog (it would store these, or store them altered): a
missing ``version`` or ``host``, a top-level field without ``_``, a
non-ASCII or empty field name, a timestamp that is not a positive number,
a level outside 0-7, a field Graylog would skip or let overwrite its own.
Approximations: a body that does not inflate gets 400 (Netty closes the
connection); plays answer with empty bodies as Netty does; bulk receiving
(newline-delimited messages, off by default) is not implemented.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
import zlib
from typing import Any, ClassVar

from ._base import Answer, Batch, Dialect, Play, Request

PATH = "/gelf"
MAX_CHUNK_SIZE = 64 * 1024
FIELD_NAME = re.compile(r"^_[A-Za-z0-9_.\-]+$", re.ASCII)
STANDARD = frozenset({"version", "host", "short_message", "full_message", "timestamp", "level"})
DEPRECATED: dict[str, type | tuple[type, ...]] = {
    "facility": str,
    "file": str,
    "line": (int, float),
}
#: Names (without the ``_``) Graylog skips or that would overwrite its own fields.
SKIPPED = frozenset({
    "id", "message", "source", "timestamp", "full_message", "short_message", "host", "level",
    "streams", "_id", "_ttl", "_source", "_all", "_index", "_type", "_score",
})  # fmt: skip
_INVALID_JSON = "JSON is null/could not be parsed (invalid JSON)"


def gelf_problem(message: Any) -> str | None:
    """Why ``message`` is not valid GELF 1.1 (Graylog would drop or alter it), else None."""
    if not isinstance(message, dict):
        return _INVALID_JSON if message is None else "the message is not a JSON object"
    if message.get("version") != "1.1":
        return 'missing or wrong "version" (GELF 1.1 requires "1.1")'
    host = message.get("host")
    if not isinstance(host, str):
        return 'is missing mandatory "host" field' if host is None else 'has invalid "host"'
    if not host.strip():
        return 'has empty mandatory "host" field'
    short = message.get("short_message")
    if not isinstance(short, str):
        return (
            'is missing mandatory "short_message" field'
            if short is None
            else ('has invalid "short_message"')
        )
    if not short.strip():
        return 'has an empty "short_message" (Graylog stores no message without text)'
    if "full_message" in message and not isinstance(message["full_message"], str):
        return '"full_message" is not a string'
    if "timestamp" in message:
        stamp = message["timestamp"]
        if isinstance(stamp, bool) or not isinstance(stamp, (int, float)) or not stamp > 0:
            return f'has invalid "timestamp": {stamp!r} (seconds since the epoch)'
    if "level" in message:
        level = message["level"]
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 7:
            return f'has invalid "level": {level!r} (a syslog level, 0 to 7)'
    for key, value in message.items():
        if key in STANDARD:
            continue
        if key in DEPRECATED:
            if isinstance(value, bool) or not isinstance(value, DEPRECATED[key]):
                return f'has invalid "{key}"'
            continue
        wrong = _field_problem(key, value)
        if wrong:
            return wrong
    return None


def _field_problem(key: str, value: Any) -> str | None:
    if not FIELD_NAME.match(key):
        return f"field {key!r} is not _ followed by word characters, dots or dashes"
    if key == "_id":
        return 'the additional field "_id" is not allowed'
    if key[1:] in SKIPPED or key[1:].startswith("gl2_"):
        return f"Graylog skips or misreads the additional field {key!r}"
    if value is None:
        return f"field {key!r} is null (Graylog skips it)"
    if isinstance(value, bool):
        return f"field {key!r} is a boolean (Graylog skips it; GELF takes strings or numbers)"
    if isinstance(value, (dict, list)):
        return f"field {key!r} is a JSON container (GELF takes strings or numbers)"
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        return f"field {key!r} does not fit a 64-bit integer"
    return None


def decode_payload(body: bytes) -> Any:
    """The JSON value of a GELF payload (gzip or zlib by their magic bytes), or None."""
    try:
        if body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        elif body[:1] == b"\x78":
            body = zlib.decompress(body)
        return json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, ValueError):
        return None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class Graylog(Dialect):
    """A Graylog GELF HTTP input.

    Options: ``auth_header`` and ``auth_value`` (the input's "Authorization
    Header Name/Value": every request must carry it, else 401),
    ``max_chunk_size`` (64 KiB; a larger body, after inflating, gets 413).

    Every POST on ``/gelf`` that passes those gets 202 with an empty body;
    then the message is judged: valid GELF 1.1 is stored in ``records`` (the
    message as sent), anything else is appended to :attr:`dropped` as
    ``{"reason", "body"}`` (``body`` the request's text).

    Plays: ``unavailable`` (503), ``too_large`` (413), ``error`` (``status``,
    default 500, ``body`` bytes); nothing is stored or judged for them.
    """

    name = "gelf"
    path = PATH
    plays: ClassVar[dict[str, frozenset[str]]] = {
        "unavailable": frozenset(),
        "too_large": frozenset(),
        "error": frozenset({"status", "body"}),
    }

    def __init__(
        self,
        *,
        auth_header: str | None = None,
        auth_value: str | None = None,
        max_chunk_size: int = MAX_CHUNK_SIZE,
    ) -> None:
        if bool(auth_header) != bool(auth_value):
            raise ValueError("auth_header and auth_value go together (Graylog refuses one alone)")
        self.auth_header = auth_header
        self.auth_value = auth_value
        self.max_chunk_size = max_chunk_size
        self._lock = threading.Lock()
        self._dropped: list[dict[str, str]] = []

    @property
    def dropped(self) -> list[dict[str, str]]:
        """Messages Graylog would have lost, ``{"reason", "body"}``, in arrival order (a copy)."""
        with self._lock:
            return list(self._dropped)

    def check(self, request: Request) -> Answer | Batch:
        if request.method == "OPTIONS":
            return Answer(200)
        if self.auth_header and request.header(self.auth_header) != self.auth_value:
            return Answer(401)
        if request.method != "POST":
            return Answer(405)
        uri = request.path + (f"?{request.query}" if request.query else "")
        if uri != PATH:
            return Answer(404)
        body = request.body
        encoding = (request.header("Content-Encoding") or "identity").strip().lower()
        try:
            if encoding in ("gzip", "x-gzip"):
                body = gzip.decompress(body)
            elif encoding in ("deflate", "x-deflate"):
                body = zlib.decompress(body)
        except (OSError, EOFError, zlib.error):
            return Answer(400)
        if len(body) > self.max_chunk_size:
            return Answer(413)
        message = decode_payload(body)
        return Batch([message], [], 1, {"body": body})

    def accept(self, request: Request, batch: Batch, play: Play | None) -> Answer:
        if play is not None:
            if play.kind == "unavailable":
                return Answer(503)
            if play.kind == "too_large":
                return Answer(413)
            body = play.params.get("body", b"")
            raw = body.encode() if isinstance(body, str) else bytes(body)
            return Answer(int(play.params.get("status", 500)), raw)
        (message,) = batch.items
        reason = gelf_problem(message)
        if reason is not None:
            text = batch.extra["body"].decode("utf-8", "replace")
            with self._lock:
                self._dropped.append({"reason": reason, "body": text})
            return Answer(202)
        return Answer(202, b"", {}, [message])
