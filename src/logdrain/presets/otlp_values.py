"""OTLP's data model in its JSON encoding: typed ``AnyValue`` values and
key-value lists, the severity of a Python level, the resource's attributes.
Used by the ``otlp`` preset's record mappings (:mod:`.otlp`)."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from typing import Any

from .base import Context

#: The SDKs' fallback ``service.name`` (resource semantic conventions).
UNKNOWN_SERVICE = "unknown_service"

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_MAX_DEPTH = 32  # nesting kept as AnyValue; deeper values become their JSON text
_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}  # and "NaN" (proto3 JSON)

# opentelemetry-python's std_to_otel (opentelemetry/_logs/severity): 10 DEBUG,
# 11-13 DEBUG2-4, 14-19 DEBUG4, 20 INFO, ... 50 FATAL, 51-53 FATAL2-4, above FATAL4.
_BASES = ((50, 21), (40, 17), (30, 13), (20, 9), (10, 5))
# Python's names as OTel shows them (the SDK handler: WARNING -> WARN, CRITICAL -> FATAL).
LEVEL_TEXT = {
    "TRACE": "TRACE", "DEBUG": "DEBUG", "INFO": "INFO", "WARN": "WARN", "WARNING": "WARN",
    "ERROR": "ERROR", "EXCEPTION": "ERROR", "CRITICAL": "FATAL", "FATAL": "FATAL",
}  # fmt: skip
NUMBER_TEXT = {5: "DEBUG", 9: "INFO", 13: "WARN", 17: "ERROR", 21: "FATAL"}

# Code location keys (structlog's CallsiteParameterAdder) -> code semantic conventions.


def severity_number(levelno: int | None) -> int:
    """The OTel SeverityNumber of a Python level, as ``std_to_otel`` maps it,
    except that levels 1-9 (a TRACE level) are TRACE (1), not UNSPECIFIED."""
    if levelno is None or levelno <= 0:
        return 0
    for base, number in _BASES:
        if levelno >= base:
            return min(number + 3, number + levelno - base)
    return 1


def any_value(value: Any, ctx: Context, depth: int = 0) -> dict[str, Any]:
    """``value`` as an OTLP ``AnyValue`` in the JSON encoding. Never raises:
    a value of another type becomes what the encoder makes of it."""
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):  # beyond int64: its digits, as text
        fits = INT64_MIN <= value <= INT64_MAX
        return {"intValue" if fits else "stringValue": str(int(value))}
    if isinstance(value, float):
        return {"doubleValue": value if math.isfinite(value) else _NON_FINITE.get(value, "NaN")}
    if value is None:
        return {}  # the empty AnyValue (null)
    if isinstance(value, (bytes, bytearray)):
        return {"bytesValue": base64.b64encode(bytes(value)).decode("ascii")}
    if depth >= _MAX_DEPTH:
        return {"stringValue": ctx.json(value)}
    if isinstance(value, Mapping):
        return {"kvlistValue": {"values": key_values(value.items(), ctx, depth + 1, False)}}
    if isinstance(value, (list, tuple, set, frozenset)):
        return {"arrayValue": {"values": [any_value(v, ctx, depth + 1) for v in value]}}
    text = ctx.json(value)  # what the encoder makes of it: a datetime's text, a dataclass's fields
    try:
        return any_value(json.loads(text), ctx, depth)  # plain JSON values: no further round
    except ValueError:
        return {"stringValue": text}


def key_values(items: Any, ctx: Context, depth: int, drop_none: bool) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}  # keys stay unique (the data model requires it)
    for raw, value in items:
        kind = type(value)  # any_value()'s two usual cases, inline
        if kind is str:
            typed: dict[str, Any] = {"stringValue": value}
        elif kind is int and INT64_MIN <= value <= INT64_MAX:
            typed = {"intValue": str(value)}
        elif value is None and drop_none:
            continue
        else:
            typed = any_value(value, ctx, depth)
        if type(raw) is str:
            key = raw
        else:
            plain = isinstance(raw, str) or raw is None or isinstance(raw, (int, float))
            key = str(raw) if plain else ctx.json(raw)
        out[key] = typed
    return [{"key": k, "value": v} for k, v in out.items()]


def resource_attributes(options: Mapping[str, Any]) -> dict[str, Any]:
    """``service.name`` (the ``service`` option, else the resource's, else
    ``unknown_service``), ``host.name`` (the ``host`` option), then the
    ``resource`` option's attributes."""
    extra = dict(options.get("resource") or {})
    service = extra.pop("service.name", UNKNOWN_SERVICE)
    attrs: dict[str, Any] = {"service.name": options.get("service") or service}
    if options.get("host"):
        attrs["host.name"] = options["host"]
        extra.pop("host.name", None)
    return {**attrs, **extra}


def resource_json(options: Mapping[str, Any], ctx: Context) -> bytes:
    attrs = key_values(resource_attributes(options).items(), ctx, 1, True)
    return ctx.json({"attributes": attrs}).encode("utf-8", "replace")
