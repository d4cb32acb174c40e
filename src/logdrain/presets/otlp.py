"""OpenTelemetry's OTLP/HTTP with the JSON encoding: ``POST /v1/logs``.

The body is an ``ExportLogsServiceRequest`` (opentelemetry-proto
``collector/logs/v1/logs_service.proto``) in OTLP's JSON encoding
(``docs/specification.md``, "JSON Protobuf Encoding"): lowerCamelCase keys,
enums as integers, 64-bit integers as decimal strings, trace and span ids as
hex. One ``resourceLogs`` entry per resource, one ``scopeLogs`` entry per
logger (the instrumentation scope, as opentelemetry-python's logging handler
names it), each logger's records in the order given.

Each record is a ``Keyed`` part whose key is the resource's JSON and the
scope's JSON joined by a newline (compact JSON never holds one), so
``frame`` groups the parts from bytes alone, parsing nothing.

Answers (specification, "OTLP/HTTP Response"): any 2xx is success; a
``partialSuccess`` with ``rejectedLogRecords`` > 0 counts that many records
rejected and the rest delivered, never retried; 429, 502, 503 and 504 are
retried (``Retry-After`` honoured); 413 splits the batch; any other status
is rejected, with the ``google.rpc.Status`` message when the body has one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from .base import Context, Keyed, Preset
from .otlp_answers import classify
from .otlp_env import LOGS_PATH, environment, name_option, resource_option
from .otlp_values import (
    INT64_MAX,
    INT64_MIN,
    LEVEL_TEXT,
    NUMBER_TEXT,
    any_value,
    key_values,
    resource_json,
    severity_number,
)

#: The OpenTelemetry SDKs' default endpoint for OTLP/HTTP logs.
DEFAULT_URL = "http://localhost:4318/v1/logs"

_CODE_KEYS = {
    "pathname": ("code.file.path", str),
    "lineno": ("code.line.number", int),
    "func_name": ("code.function.name", str),
    "funcName": ("code.function.name", str),
}
# With LogRecord's names that ``include`` adds (naming="plain"): process and thread too.
# A separate table, used only by a Drain that includes attributes (``bind_included``),
# so the usual mapping looks at no more keys than before.
_INCLUDED_KEYS = {
    **_CODE_KEYS,
    "process": ("process.pid", int),
    "thread": ("thread.id", int),
    "threadName": ("thread.name", str),
}
_EXCEPTION_LINE = re.compile(r"([A-Za-z_][\w.]*)(?:: (.*))?")
_HEX = re.compile(r"[0-9a-fA-F]+")
_ID_KEYS = frozenset(
    {"trace_flags", "trace_id", "otelTraceID", "span_id", "otelSpanID", "otelTraceSampled"}
)
#: Keys that make ids or semantic-convention attributes (or may: "stack").
_RARE_KEYS = _ID_KEYS | _CODE_KEYS.keys() | {"exception", "stack"}
#: What a usual document's time, level, logger and message are made of.
_USUAL_KEYS = frozenset({"timestamp", "level", "logger", "message"})


def _plain_attributes(source: Mapping[Any, Any], keys: Any) -> list[dict[str, Any]] | None:
    """:func:`key_values` of ``source``'s ``keys`` when each is a str key
    (none that makes ids or semantic-convention attributes) with a str or
    int64 value (so unique, and none dropped), else None (and None when
    there are none, as [] would be no different)."""
    out = []
    for key in keys:
        value = source[key]
        kind = type(value)
        if type(key) is not str or key in _RARE_KEYS:
            return None
        if kind is str:
            out.append({"key": key, "value": {"stringValue": value}})
        elif kind is int and INT64_MIN <= value <= INT64_MAX:
            out.append({"key": key, "value": {"intValue": str(value)}})
        else:
            return None
    return out or None


def _found(doc: dict[str, Any], keys: tuple[str, ...], digits: int, used: set[str]) -> str | None:
    """The first valid id of ``digits`` hex digits under ``keys``, lower case
    (trace 32, span 16, neither all zeros as W3C Trace Context says; flags 2)."""
    for key in keys:
        value = doc.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 16**digits:
            value = f"{value:0{digits}x}"
        text = value.strip().lower() if isinstance(value, str) else ""
        if len(text) == digits and _HEX.fullmatch(text) and (digits == 2 or text.strip("0")):
            used.add(key)
            return text
    return None


def _derived(
    doc: dict[str, Any], used: set[str], code_keys: dict[str, tuple[str, type]] = _CODE_KEYS
) -> dict[str, Any]:
    """Semantic-convention attributes: the traceback as ``exception.stacktrace``
    with ``exception.type``/``.message`` from its ``Type: message`` line (the
    line after the last indented one), the stack as ``code.stacktrace``, and
    the code location keys."""
    out: dict[str, Any] = {}
    exc = doc.get("exception")
    if isinstance(exc, str) and exc:
        lines = exc.splitlines()
        after = max((i + 1 for i, line in enumerate(lines) if line[:1].isspace()), default=0)
        match = _EXCEPTION_LINE.fullmatch(lines[after]) if after < len(lines) else None
        if match is not None:
            out["exception.type"] = match.group(1)
            if match.group(2):
                out["exception.message"] = match.group(2)
        out["exception.stacktrace"] = exc
        used.add("exception")
    if isinstance(doc.get("stack"), str) and doc["stack"]:
        out["code.stacktrace"] = doc["stack"]
        used.add("stack")
    if code_keys.keys().isdisjoint(doc):
        return out
    for key, (name, kind) in code_keys.items():
        if isinstance(doc.get(key), kind) and not isinstance(doc[key], bool):
            out[name] = doc[key]
            used.add(key)
    return out


def record(doc: dict[str, Any], ctx: Context) -> Keyed:
    """One generic document -> a ``LogRecord`` keyed by resource and scope."""
    return bind(ctx.options)(doc, ctx)


_new = tuple.__new__  # a Keyed without NamedTuple's Python-level __new__ (once a record)


def bind_included(
    options: Mapping[str, Any], included: tuple[str, ...]
) -> Callable[[dict[str, Any], Context], Keyed]:
    """:func:`bind` for a Drain whose records carry included attributes: under
    LogRecord's names (``naming="plain"``), ``process``, ``thread`` and
    ``threadName`` become ``process.pid``, ``thread.id`` and ``thread.name``."""
    return bind(options, _INCLUDED_KEYS)


def bind(
    options: Mapping[str, Any], code_keys: dict[str, tuple[str, type]] = _CODE_KEYS
) -> Callable[[dict[str, Any], Context], Keyed]:
    """:func:`record` for one Drain's options: the resource's JSON made
    once, each logger's key and each level's severity remembered."""
    derive: Callable[[dict[str, Any], set[str]], dict[str, Any]] = _derived
    if code_keys is not _CODE_KEYS:  # a Drain that includes attributes (bind_included)

        def derive(doc: dict[str, Any], used: set[str]) -> dict[str, Any]:
            return _derived(doc, used, code_keys)

    resource: list[bytes] = []  # made on the first record (it needs the encoder)
    keys: dict[Any, bytes] = {}  # logger name -> resource + scope key
    severities: dict[int, tuple[int, str | None]] = {}

    def mapped(doc: dict[str, Any], ctx: Context) -> Keyed:
        out: dict[str, Any] = {}
        created = ctx.created
        if math.isfinite(created) and created > 0:  # observed as it is made
            ns = str(min(int(created * 1e9), 2**64 - 1))
            out["timeUnixNano"] = out["observedTimeUnixNano"] = ns
        levelno = ctx.levelno
        known = severities.get(levelno) if type(levelno) is int else None
        if known is None:
            number = severity_number(levelno)
            known = (number, NUMBER_TEXT.get(number))
            if type(levelno) is int and len(severities) < 256:
                severities[levelno] = known
        if known[0]:
            out["severityNumber"] = known[0]
        level = doc.get("level")
        logger = doc.get("logger")
        message = doc.get("message")
        # The usual document: text level, logger and message, nothing that
        # makes ids or semantic-convention attributes: the rest are attributes.
        if (
            type(level) is str
            and level
            and type(logger) is str
            and type(message) is str
            and _RARE_KEYS.isdisjoint(doc)
        ):
            out["severityText"] = LEVEL_TEXT.get(level.upper(), level)
            out["body"] = {"stringValue": message}
            others = [k for k in doc if k not in _USUAL_KEYS]
            attributes = _plain_attributes(doc, others) or key_values(
                [(k, v) for k, v in doc.items() if k not in _USUAL_KEYS], ctx, 1, True
            )
            if attributes:
                out["attributes"] = attributes
            scope_key = keys.get(logger)
            return _new(Keyed, (scope_key or scope(logger, ctx), out))
        used = {"timestamp"}  # time and level come from the record itself (ctx), never renamed
        if isinstance(level, str) and level:
            out["severityText"] = LEVEL_TEXT.get(level.upper(), level)
            used.add("level")
        elif known[1] is not None:
            out["severityText"] = known[1]
        for key in ("message", "event"):  # "event": a structlog event dict
            if doc.get(key) is not None:
                out["body"] = any_value(doc[key], ctx)
                used.add(key)
                break
        derived = derive(doc, used)
        flags = trace = span = None
        if not _ID_KEYS.isdisjoint(doc):
            flags = _found(doc, ("trace_flags",), 2, used)
            trace = _found(doc, ("trace_id", "otelTraceID"), 32, used)
            span = _found(doc, ("span_id", "otelSpanID"), 16, used)
            if flags is None and isinstance(doc.get("otelTraceSampled"), bool):
                flags = "01" if doc["otelTraceSampled"] else "00"
                used.add("otelTraceSampled")
        if isinstance(logger, str):
            used.add("logger")
        else:
            logger = ""
        extras = [(k, v) for k, v in doc.items() if k not in used]
        attributes = key_values([*derived.items(), *extras], ctx, 1, True)
        if attributes:
            out["attributes"] = attributes
        if flags is not None:
            out["flags"] = int(flags, 16)
        if trace is not None:
            out["traceId"] = trace
        if span is not None:
            out["spanId"] = span
        scope_key = keys.get(logger) if type(logger) is str else None
        return _new(Keyed, (scope_key or scope(logger, ctx), out))

    def scope(logger: Any, ctx: Context) -> bytes:
        """The resource + scope key of ``logger``'s records (remembered)."""
        if not resource:
            resource.append(resource_json(options, ctx))
        scope_key = resource[0] + b"\n" + ctx.json({"name": logger}).encode("utf-8", "replace")
        if type(logger) is str:
            if len(keys) >= 1024:
                keys.clear()
            keys[logger] = scope_key
        return scope_key

    return mapped


#: Epoch seconds below which ``int(created * 1e9)`` fits OTLP's fixed64 (2286).
_NS_LAST_SECOND = 1e10


def bind_stdlib(
    options: Mapping[str, Any], ctx: Context
) -> Callable[[Mapping[str, Any], str, list[str], str], Keyed | None]:
    """The mapping of a plain stdlib record straight from its attributes
    (``Preset.bind_stdlib``): what :func:`bind`'s mapping makes of the
    record's generic document, without building that document. None for a
    record it leaves to the usual way: an extra that is not a string or an
    int64, or names an id or a code location, a time or level out of the
    ordinary."""
    scopes: dict[str, bytes] = {}  # logger name -> resource + scope key
    severities: dict[int, int] = {}
    texts: dict[str, str] = {}  # levelname -> severityText
    usual = _mapping_scope(options)

    def mapped(
        attrs: Mapping[str, Any], message: str, extras: list[str], record_id: str
    ) -> Keyed | None:
        created = attrs["created"]
        levelno = attrs["levelno"]
        level = attrs["levelname"]
        logger = attrs["name"]
        if (
            type(created) is not float
            or not 0.0 < created < _NS_LAST_SECOND
            or type(levelno) is not int
            or type(level) is not str
            or not level
            or type(logger) is not str
            or type(message) is not str
        ):
            return None
        ns = str(int(created * 1e9))
        number = severities.get(levelno)
        if number is None:
            number = severity_number(levelno)
            if len(severities) < 256:
                severities[levelno] = number
        text = texts.get(level)
        if text is None:
            text = LEVEL_TEXT.get(level.upper(), level)
            if len(texts) < 256:
                texts[level] = text
        attributes = _plain_attributes(attrs, extras) if extras else None
        if extras and attributes is None:
            return None
        if number and attributes:  # the usual record, in one presized dict (no resize)
            out: dict[str, Any] = {
                "timeUnixNano": ns,
                "observedTimeUnixNano": ns,
                "severityNumber": number,
                "severityText": text,
                "body": {"stringValue": message},
                "attributes": attributes,
            }
        else:
            out = {"timeUnixNano": ns, "observedTimeUnixNano": ns}
            if number:
                out["severityNumber"] = number
            out["severityText"] = text
            out["body"] = {"stringValue": message}
            if attributes:
                out["attributes"] = attributes
        scope_key = scopes.get(logger)
        if scope_key is None:
            if len(scopes) >= 1024:
                scopes.clear()
            scope_key = scopes[logger] = usual(logger, ctx)
        return _new(Keyed, (scope_key, out))

    return mapped


def _mapping_scope(options: Mapping[str, Any]) -> Callable[[Any, Context], bytes]:
    """The resource + scope key of a logger's records, as :func:`bind` makes it."""
    resource: list[bytes] = []

    def scope(logger: Any, ctx: Context) -> bytes:
        if not resource:
            resource.append(resource_json(options, ctx))
        return resource[0] + b"\n" + ctx.json({"name": logger}).encode("utf-8", "replace")

    return scope


_HEAD, _TAIL = b'{"resourceLogs":[', b"]}"
_RESOURCE_HEAD, _SCOPES_HEAD = b'{"resource":', b',"scopeLogs":['
_SCOPE_HEAD, _RECORDS_HEAD, _CLOSE = b'{"scope":', b',"logRecords":[', b"]}"
#: Bytes a part adds at most beyond its key and JSON: its own resource and
#: scope entries, a comma, ``{}`` for each empty key half, less the newline.
_PER_PART = len(_RESOURCE_HEAD + _SCOPES_HEAD + _SCOPE_HEAD + _RECORDS_HEAD + 2 * _CLOSE) + 4


def frame(parts: list[Any]) -> bytes:
    """``(key, logRecord JSON)`` parts -> one ``ExportLogsServiceRequest``:
    a ``resourceLogs`` entry per resource, a ``scopeLogs`` entry per scope
    (first appearance first), records in the order given within each."""
    groups: dict[bytes, dict[bytes, list[bytes]]] = {}
    for part in parts:
        key, data = part if isinstance(part, tuple) else (b"", part)
        resource, _, scope = key.partition(b"\n")
        groups.setdefault(resource, {}).setdefault(scope, []).append(data)
    # One join of the pieces: each + of a body would copy all of it again.
    out = [_HEAD]
    for i, (resource, scopes) in enumerate(groups.items()):
        out += (b"," if i else b"", _RESOURCE_HEAD, resource or b"{}", _SCOPES_HEAD)
        for j, (scope, records) in enumerate(scopes.items()):
            out += (b"," if j else b"", _SCOPE_HEAD, scope or b"{}", _RECORDS_HEAD)
            out += (b",".join(records), _CLOSE)
        out.append(_CLOSE)
    out.append(_TAIL)
    return b"".join(out)


def framed_size(total: int, count: int) -> int:
    return len(_HEAD) + len(_TAIL) + total + count * _PER_PART


PRESET = Preset(
    "otlp",
    "application/json",
    frame,
    framed_size,
    classify=classify,
    record=record,
    bind=bind,
    bind_included=bind_included,
    keyed_array=True,  # a scope's log records: comma-joined in its logRecords
    bind_stdlib=bind_stdlib,
    defaults={"batch_bytes": 4 * 1024 * 1024},
    path=LOGS_PATH,
    url=lambda options: DEFAULT_URL,
    options={
        "service": name_option("service", "service.name"),
        "host": name_option("host", "host.name"),
        "resource": resource_option,
    },
    environment=environment,
    naming="otel",  # included attributes as semantic-convention attributes
)
