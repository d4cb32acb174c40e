"""Graylog's GELF HTTP input (``preset="gelf"``): one GELF 1.1 message per POST.

``POST /gelf``, ``application/json``, one message per request: Graylog's
GELF HTTP input reads one message per request (its "Enable Bulk Receiving"
option, off by default, splits a body on newlines; logdrain does not rely
on it), hence ``one_per_request`` and ``batch_size=1``.

The message: ``version`` "1.1"; ``host`` (the ``host`` option, by default
this machine's name, read when the Drain is built); ``short_message`` (the
message's first non-blank line, never empty); ``full_message`` (the whole
message, then the traceback and the stack when there are any; left out
when it would repeat ``short_message``); ``timestamp`` (the record's
creation time in seconds, milliseconds as decimals); ``level`` (syslog:
CRITICAL 2, ERROR 3, WARNING 4, INFO 6, DEBUG 7, by thresholds; 6 when the
record has no level, rather than GELF's default of 1, ALERT). Every other
field becomes an additional field ``_<name>``: the name is cut to what
GELF allows (``^[\\w\\.\\-]*$``, ASCII), and a name Graylog would drop or
let clobber its own fields (``id``, whose ``_id`` GELF forbids, ``source``,
``host`` and the like) gets a ``_`` appended (``_id_``), and a name with
Graylog's internal prefix ``gl2_`` gets ``user_`` in front. Values
are strings or numbers, as GELF says: booleans, None, containers and
objects are sent as their JSON text (``"true"``, ``"null"``,
``'{"a":1}'``), integers beyond 64 bits and NaN/Infinity as strings.

Graylog answers 202 Accepted to any POST on ``/gelf`` before it decodes the
body, and drops an invalid message silently. So ``record`` builds only
valid messages, and checks each one: one it could not make valid would be
raised as :class:`~logdrain.presets.base.Unsendable` (rejected, never
sent). The mapping above makes every record valid, so this is a guard.

Answers: any 2xx delivered; 413 (a body over the input's "Max. HTTP chunk
size", 64 KiB by default, counted after decompression) splits, so one
record is rejected; 408/425/429/5xx retried; 401 (the input's
authorization header), 404 (a path other than ``/gelf``) and the rest
rejected.

Sources: the GELF payload specification,
https://go2docs.graylog.org/current/getting_in_log_data/gelf.html (fields,
MUST/SHOULD, the field-name expression, ``_id``); "GELF via HTTP",
https://go2docs.graylog.org/current/getting_in_log_data/ingest_gelf.html
(``/gelf``, 202 Accepted, compression, bulk receiving); Graylog2/graylog2-server
``inputs/codecs/GelfCodec.java`` (validation, the skipped fields, values),
``inputs/transports/netty/HttpHandler.java`` (202 before decoding, 401, 404,
405), ``inputs/transports/AbstractHttpTransport.java`` (64 KiB
``max_chunk_size``, authorization header name and value) and
``plugin/Message.java`` (reserved fields).
"""

from __future__ import annotations

import math
import re
import socket
import time
from collections.abc import Mapping
from typing import Any

from .base import (
    DELIVERED,
    TRANSIENT_STATUSES,
    Answer,
    Context,
    Preset,
    Unsendable,
    Verdict,
    as_text,
)
from .generic import single, single_size

PATH = "/gelf"
#: Graylog's default "Max. HTTP chunk size" (the largest request body it reads).
MAX_CHUNK_SIZE = 64 * 1024
MAX_RECORD_BYTES = MAX_CHUNK_SIZE - 1024

SYSLOG_LEVELS = ((50, 2), (40, 3), (30, 4), (20, 6))  # below 20: 7 (debug)
INFO = 6
EMPTY_MESSAGE = "(empty message)"

_BAD_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.\-]")
FIELD_NAME = re.compile(r"^_[A-Za-z0-9_.\-]+$")
#: Additional-field names (without the ``_``) Graylog drops, or lets overwrite
#: its own: set from the message, Elasticsearch's, GELF's forbidden ``id``.
PROTECTED = frozenset({
    "id", "message", "source", "timestamp", "full_message", "short_message", "host", "level",
    "streams", "_id", "_ttl", "_source", "_all", "_index", "_type", "_score",
})  # fmt: skip
_CONSUMED = frozenset({"timestamp", "level", "exception", "stack"})
_MESSAGE_KEYS = ("message", "event")  # "event": a structlog event's message
_STANDARD = frozenset({"version", "host", "short_message", "full_message", "timestamp", "level"})

# -- options --------------------------------------------------------------------


def _host(raw: Any) -> str:
    """``host``: the name of the host, source or application (GELF: MUST)."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"host must be a non-empty string (GELF requires one), got {raw!r}")
    host = raw.strip()
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in host):
        raise ValueError("host must be one line without control characters")
    if len(host) > 255:
        raise ValueError(f"host must be at most 255 characters, got {len(host)}")
    return host


OPTIONS = {"host": _host}


def _environment(environ: Mapping[str, str], options: Mapping[str, Any]) -> dict[str, Any]:
    """The default ``host``: this machine's name, read once per Drain."""
    if "host" in options:
        return {}
    return {"host": socket.gethostname().strip() or "localhost"}


def _auth(token: str) -> dict[str, str]:
    """The input's "Authorization Header Value", sent as it is (``Bearer x``, say)."""
    return {"Authorization": token}


# -- records --------------------------------------------------------------------


def syslog_level(levelno: int | None) -> int:
    if isinstance(levelno, bool) or not isinstance(levelno, (int, float)):
        return INFO  # no level (or a record whose levelno is not a number)
    for floor, level in SYSLOG_LEVELS:
        if levelno >= floor:
            return level
    return 7


def seconds(created: float) -> float:
    """Epoch seconds, milliseconds as decimals; an impossible time is now."""
    if not isinstance(created, (int, float)) or not math.isfinite(created) or created <= 0:
        created = time.time()
    return round(float(created), 3)


def short_message(text: str, exception: str) -> str:
    """The first non-blank line of the message, else of the traceback's end."""
    for line in text.splitlines():
        if line.strip():
            return line.rstrip()
    for line in reversed(exception.splitlines()):
        if line.strip():
            return line.strip()
    return EMPTY_MESSAGE


def field_value(value: Any, ctx: Context) -> str | int | float:
    """A string or a number, as GELF allows."""
    if type(value) is str:
        return value
    if isinstance(value, bool) or value is None:
        return "true" if value is True else "false" if value is False else "null"
    if isinstance(value, int):
        number = int(value)
        return number if -(2**63) <= number < 2**63 else str(number)
    if isinstance(value, float):
        real = float(value)
        if math.isfinite(real):
            return real
        return "NaN" if math.isnan(real) else "Infinity" if real > 0 else "-Infinity"
    return as_text(value, ctx)


def field_name(key: Any, ctx: Context, taken: Mapping[str, Any]) -> str:
    """``_<name>`` for a document key: GELF's characters only, never a name
    Graylog would drop (``_id``) or one already in the message."""
    name = as_text(key, ctx) if not isinstance(key, str) else key
    if not isinstance(key, str) and len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1]
    name = _BAD_NAME_CHARS.sub("_", name) or "unnamed"
    if name in PROTECTED:
        name += "_"
    elif name.startswith("gl2_"):  # Graylog's own prefix: "users must not use" it
        name = "user_" + name
    field, n = "_" + name, 2
    while field in taken:
        field, n = f"_{name}_{n}", n + 1
    return field


def problem(message: Mapping[str, Any]) -> str | None:
    """What makes ``message`` invalid GELF 1.1 (or lost by Graylog), else None."""
    if message.get("version") != "1.1":
        return 'version must be "1.1"'
    for key in ("host", "short_message"):
        value = message.get(key)
        if not isinstance(value, str) or not value.strip():
            return f"{key} must be a non-empty string"
    if "full_message" in message and not isinstance(message["full_message"], str):
        return "full_message must be a string"
    stamp = message.get("timestamp", 1.0)
    if isinstance(stamp, bool) or not isinstance(stamp, (int, float)) or not stamp > 0:
        return "timestamp must be a positive number"
    level = message.get("level", 1)
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 7:
        return "level must be a syslog level, 0 to 7"
    for key, value in message.items():
        if key in _STANDARD:
            continue
        if not isinstance(key, str) or not FIELD_NAME.match(key):
            return f"field name {key!r} is not _ followed by [A-Za-z0-9_.-]"
        if key[1:] in PROTECTED or key[1:].startswith("gl2_"):
            return f"Graylog drops or misreads the field {key!r}"
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            return f"field {key!r} is not a string or a number"
        if isinstance(value, float) and not math.isfinite(value):
            return f"field {key!r} is not a finite number"
    return None


def _record(doc: Any, ctx: Context) -> dict[str, Any]:
    """One GELF 1.1 message for the generic document."""
    if not isinstance(doc, dict):
        doc = {"message": doc}
    message_key = next((key for key in _MESSAGE_KEYS if key in doc), None)
    raw = doc.get(message_key) if message_key is not None else None
    text = "" if raw is None else as_text(raw, ctx)
    extra = [as_text(doc[key], ctx) for key in ("exception", "stack") if doc.get(key)]
    short = short_message(text, extra[0] if extra else "")
    full = "\n".join(part for part in (text, *extra) if part)
    out: dict[str, Any] = {
        "version": "1.1",
        "host": ctx.options.get("host") or "localhost",
        "short_message": short,
    }
    if full and full != short:
        out["full_message"] = full
    out["timestamp"] = seconds(ctx.created)
    out["level"] = syslog_level(ctx.levelno)
    for key, value in doc.items():
        if key == message_key or key in _CONSUMED:
            continue
        out[field_name(key, ctx, out)] = field_value(value, ctx)
    wrong = problem(out)
    if wrong is not None:  # a guard: the mapping above always gives valid GELF
        raise Unsendable(f"not valid GELF 1.1: {wrong}")
    return out


# -- answers --------------------------------------------------------------------


def classify(answer: Answer) -> Verdict:
    """202 (any 2xx) delivered; 413 split; 408/425/429/5xx retried; else rejected."""
    status = answer.status
    if 200 <= status < 300:
        return DELIVERED
    if status == 413:
        return Verdict("split", "Graylog: the message is over the input's max HTTP chunk size")
    if status in TRANSIENT_STATUSES or status >= 500:
        return Verdict("retry", f"Graylog: HTTP {status} {answer.reason}".rstrip())
    if status == 401:
        return Verdict(
            "rejected", "Graylog: the input's authorization header is missing or wrong (token=)"
        )
    if status == 404:
        return Verdict("rejected", "Graylog: no GELF HTTP input here; it takes POST /gelf only")
    return Verdict("rejected", f"Graylog: HTTP {status} {answer.reason}".rstrip())


PRESET = Preset(
    "gelf",
    "application/json",
    single,
    single_size,
    classify=classify,
    record=_record,
    one_per_request=True,
    defaults={"batch_size": 1, "max_record_bytes": MAX_RECORD_BYTES, "batch_bytes": MAX_CHUNK_SIZE},
    path=PATH,
    options=OPTIONS,
    environment=_environment,
    auth=_auth,
    naming="gelf",  # _pid, _thread_name, _line, ... (as graypy)
)
