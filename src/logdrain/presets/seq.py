"""Seq (``preset="seq"``): CLEF events posted to ``/ingest/clef``.

The body is newline-delimited CLEF (``application/vnd.serilog.clef``), one
event per line, each line ending with ``\\n``. An event is the record's
properties at the top level plus CLEF's reified properties: ``@t`` (ISO 8601,
UTC, microseconds; from the record's creation time, whatever the document's
own keys say), ``@m`` (the rendered message: a Python record's message is
rendered already, so no ``@mt`` template is carried), ``@l`` (the level: the
record's level number as a Serilog level name, or Python's own names with
``level_names="python"``; absent when the record has no level, which Seq
reads as Information) and ``@x`` (the traceback). A property whose name
starts with ``@`` is escaped by doubling the sigil (``@@name`` is the
property ``@name``), as CLEF says. The API key goes in ``X-Seq-ApiKey``.

Seq answers 201 Created. One invalid event fails the whole request with 400
and ``{"Error": "..."}`` naming it: the verdict is ``split``, so logdrain
halves the batch until the bad event is alone, delivers the others and
rejects that one with Seq's text. 413 (a body over the raw ingestion payload
limit, or an event over the event body limit) splits too. 401 and 403 (no
or a wrong API key, a key without ingest permission) are rejected; 408,
425, 429 and every 5xx are retried.

Sources: https://docs.datalust.co/docs/posting-raw-events ("Ingestion with
HTTP": ``/ingest/clef``, the content type, ``X-Seq-ApiKey``, the reified
properties, ``@l``/``@x`` must be strings); https://clef-json.org and
serilog/serilog-formatting-compact (CLEF, ``@@`` escaping);
datalust/serilog-sinks-seq (``SeqCompactJsonFormatter``, 201 with
``{"MinimumLevelAccepted": ...}``, ``eventBodyLimitBytes`` 256 KB);
datalust/seq-api ``SeqApiClient`` (the ``{"Error": ...}`` answer); Seq's
"Raw ingestion payload limit" (10 MB by default; also ``emit``'s
``DEFAULT_BATCH_LIMIT_BYTES``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from .base import (
    DELIVERED,
    RFC3339_LAST_SECOND,
    TRANSIENT_STATUSES,
    Answer,
    Context,
    Preset,
    Verdict,
    as_text,
    enclosed,
    rfc3339,
)

CONTENT_TYPE = "application/vnd.serilog.clef"
PATH = "/ingest/clef"

#: Seq's default event body limit (``eventBodyLimitBytes``) and raw payload limit.
EVENT_BODY_LIMIT = 256 * 1024
RAW_PAYLOAD_LIMIT = 10 * 1024 * 1024
#: logdrain's defaults, below those limits (a line adds its newline).
MAX_RECORD_BYTES = 240 * 1024
BATCH_BYTES = 2 * 1024 * 1024

SERILOG_LEVELS = ((50, "Fatal"), (40, "Error"), (30, "Warning"), (20, "Information"), (10, "Debug"))
PYTHON_LEVELS = ((50, "CRITICAL"), (40, "ERROR"), (30, "WARNING"), (20, "INFO"), (10, "DEBUG"))
LEVEL_NAMES = ("serilog", "python")

#: Document keys the reified properties replace.
_CONSUMED = frozenset({"timestamp", "level", "exception"})

# -- options --------------------------------------------------------------------


def _level_names(raw: Any) -> str:
    """``level_names``: ``serilog`` (Verbose ... Fatal, Seq's own) or ``python``."""
    if isinstance(raw, str) and raw.strip().lower() in LEVEL_NAMES:
        return raw.strip().lower()
    raise ValueError(f"level_names must be 'serilog' or 'python', got {raw!r}")


OPTIONS = {"level_names": _level_names}


def _auth(token: str) -> dict[str, str]:
    return {"X-Seq-ApiKey": token}


# -- records and bodies ---------------------------------------------------------


def clef_time(created: float) -> str:
    """``2024-05-01T12:00:00.123456Z``; an impossible time (NaN, out of
    range) becomes now, as ``@t`` is required."""
    if not isinstance(created, (int, float)) or not math.isfinite(created):
        created = time.time()
    return rfc3339(created)


def level_name(levelno: int | None, doc_level: Any, names: str) -> str | None:
    """``@l`` for a level number (thresholds, so 25 is Information), the
    document's own level text when the number is unknown, else None."""
    if isinstance(levelno, bool) or not isinstance(levelno, (int, float)):
        return doc_level if isinstance(doc_level, str) and doc_level.strip() else None
    if names == "python" and isinstance(doc_level, str) and doc_level.strip():
        return doc_level  # the record's levelname, custom levels included
    table = PYTHON_LEVELS if names == "python" else SERILOG_LEVELS
    for floor, name in table:
        if levelno >= floor:
            return name
    return "NOTSET" if names == "python" else "Verbose"


def property_name(key: Any, ctx: Context) -> str:
    """A property name as CLEF carries it: text, a leading ``@`` doubled."""
    if type(key) is str:
        name = key
    elif isinstance(key, str):
        name = str.__str__(key)
    else:
        name = ctx.json(key)
        if len(name) >= 2 and name.startswith('"') and name.endswith('"'):
            name = name[1:-1]
    return "@" + name if name.startswith("@") else name


def _record(doc: Any, ctx: Context) -> dict[str, Any]:
    """One CLEF event for the generic document."""
    return _bind(ctx.options)(doc, ctx)


def _bind(options: Mapping[str, Any]) -> Callable[[Any, Context], dict[str, Any]]:
    """:func:`_record` for one Drain's options; ``@l`` remembered per level
    number where the number alone decides it (Serilog's names)."""
    names = options.get("level_names", "serilog")
    by_number: dict[int, str | None] = {}
    plain: dict[tuple[Any, ...], bool] = {}  # a document's keys -> _plain(keys)

    def level_of(levelno: int | None, doc: dict[str, Any]) -> str | None:
        if names == "serilog" and type(levelno) is int:
            try:
                return by_number[levelno]
            except KeyError:
                if len(by_number) >= 256:
                    by_number.clear()
                level = by_number[levelno] = level_name(levelno, None, names)
                return level
        return level_name(levelno, doc.get("level"), names)

    def mapped(doc: Any, ctx: Context) -> dict[str, Any]:
        # The usual document: a dict with a text message and plain str keys,
        # none starting with "@" (so none is escaped or collides): the
        # properties are copied whole, the reified ones taken out again.
        if type(doc) is dict and type(doc.get("message")) is str:
            keys = tuple(doc)
            quick = plain.get(keys)
            if quick is None:
                quick = _plain(keys)
                if len(plain) >= 256:
                    plain.clear()
                plain[keys] = quick
            level = level_of(ctx.levelno, doc)
            if quick and level is not None:
                clef = {"@t": ctx.timestamp or clef_time(ctx.created), "@m": doc["message"]}
                clef["@l"] = level
                exception = doc.get("exception")
                if exception:
                    clef["@x"] = as_text(exception, ctx)
                clef.update(doc)
                del clef["message"]
                for key in _CONSUMED.intersection(doc):
                    del clef[key]
                return clef
        if not isinstance(doc, dict):
            doc = {"message": doc}
        event: dict[str, Any] = {"@t": ctx.timestamp or clef_time(ctx.created)}
        # "event": a structlog event's message.
        message_key = "message" if "message" in doc else "event" if "event" in doc else None
        if message_key is not None and doc[message_key] is not None:
            event["@m"] = as_text(doc[message_key], ctx)
        level = level_of(ctx.levelno, doc)
        if level is not None:
            event["@l"] = level
        if doc.get("exception"):
            event["@x"] = as_text(doc["exception"], ctx)
        for key, value in doc.items():
            if key == message_key or key in _CONSUMED:
                continue
            name = key if type(key) is str and key[:1] != "@" else property_name(key, ctx)
            while name in event:  # two keys with one text (1 and "1")
                name += "_"
            event[name] = value
        return event

    return mapped


def _bind_stdlib(
    options: Mapping[str, Any], ctx: Context
) -> Callable[[Mapping[str, Any], str, list[str], str], dict[str, Any] | None]:
    """The CLEF event of a plain stdlib record straight from its attributes
    (``Preset.bind_stdlib``): what :func:`_bind`'s mapping makes of its
    generic document. None for a record with an extra starting with "@",
    an unknown level or a time out of range (the usual way takes those)."""
    names = options.get("level_names", "serilog")
    levels: dict[tuple[int, str], str | None] = {}

    def mapped(
        attrs: Mapping[str, Any], message: str, extras: list[str], record_id: str
    ) -> dict[str, Any] | None:
        created = attrs["created"]
        levelno = attrs["levelno"]
        levelname = attrs["levelname"]
        if (
            type(created) is not float
            or not 0.0 <= created < RFC3339_LAST_SECOND
            or type(message) is not str
            or type(levelno) is not int
            or type(levelname) is not str
        ):
            return None
        level = levels.get((levelno, levelname))
        if level is None:
            level = level_name(levelno, None if names == "serilog" else levelname, names)
            if len(levels) >= 256:
                levels.clear()
            levels[(levelno, levelname)] = level
        if level is None:
            return None
        clef = {"@t": rfc3339(created), "@m": message, "@l": level, "logger": attrs["name"]}
        for key in extras:
            if key[:1] == "@":
                return None
            clef[key] = attrs[key]
        return clef

    return mapped


def _plain(keys: tuple[Any, ...]) -> bool:
    """True when every key is a plain str that does not start with "@"."""
    return all(type(key) is str and key[:1] != "@" for key in keys)


def _frame(parts: list[bytes]) -> bytes:
    return enclosed(b"", b"\n", parts, b"\n") if parts else b""


def _framed_size(total: int, count: int) -> int:
    return total + count  # a newline after each event


# -- answers --------------------------------------------------------------------


def seq_error(answer: Answer) -> str:
    """Seq's ``{"Error": "..."}`` text, else the start of the body, else the reason."""
    try:
        reply = json.loads(answer.body)
    except ValueError:
        reply = None
    if isinstance(reply, dict) and isinstance(reply.get("Error"), str) and reply["Error"]:
        return " ".join(reply["Error"].split())[:300]
    text = " ".join(answer.body[:600].decode("utf-8", "replace").split())[:300]
    return text or answer.reason


def classify(answer: Answer) -> Verdict:
    """201 (any 2xx) delivered; 400 and 413 split (one bad or oversized
    event spoils a request); 408/425/429/5xx retried; the rest rejected."""
    status = answer.status
    if 200 <= status < 300:
        return DELIVERED
    error = seq_error(answer)
    if status == 400:
        return Verdict("split", f"Seq refused an event: {error}" if error else "Seq: bad request")
    if status == 413:
        return Verdict("split", f"Seq: too large: {error}" if error else "Seq: payload too large")
    if status in TRANSIENT_STATUSES or status >= 500:
        return Verdict("retry", f"Seq: {error}" if error else f"Seq: HTTP {status}")
    if status in (401, 403):
        what = "no valid API key" if status == 401 else "the API key may not ingest"
        return Verdict("rejected", f"Seq: {what}: {error}" if error else f"Seq: {what}")
    return Verdict("rejected", f"Seq: {error}" if error else f"Seq: HTTP {status}")


PRESET = Preset(
    "seq",
    CONTENT_TYPE,
    _frame,
    _framed_size,
    classify=classify,
    record=_record,
    bind=_bind,
    bind_stdlib=_bind_stdlib,
    defaults={"max_record_bytes": MAX_RECORD_BYTES, "batch_bytes": BATCH_BYTES},
    path=PATH,
    options=OPTIONS,
    auth=_auth,
    lines=1,  # CLEF: an event a line
)
