"""The OTLP fake's fast path: ``parse_logs``' usual body in one pass.

``parse_logs``' full path (``_otlp``) costs ~200 us a record (``ParseDict``
is pure Python). ``fast_records`` accepts a strict subset of what the full
path accepts and gives the same records, in one pass over the plainly parsed
JSON; on anything else, or anything it is unsure of, it raises ``Slow`` and
the full path judges the body: every error, and every error message, is the
full path's, never this module's.

The subset: a UTF-8 body starting with "{", every object a message whose keys
are all field names in lowerCamelCase (from the official descriptors), no
null, no oneof but AnyValue's, nesting within half ParseDict's limit, values
of the exact JSON type ParseDict takes as they are: a str (no lone
surrogate), a bool, a finite float for a double, an int or a string of ASCII
digits in range for an integer, an enum as one of its numbers, the hex ids
the full path's ``_walk`` takes; no other bytes, no repeated scalars.
Duplicate keys (the plain parse merges them) show in a count: in valid JSON a
":" separates a key or is in a string, so with no "\\u003a" escape the body
has as many as its objects have keys plus its strings have ":" only if no key
was merged away.
"""

from __future__ import annotations

import importlib
import json
import math
from typing import Any

from ._json import UNSURE, orjson_sure, orjson_value
from ._otlp_rules import HEX, ID_DIGITS, SERVICE, is_repeated

_MAX_DEPTH = 50
_RANGES = {2: (-(2**63), 2**63), 4: (0, 2**64), 1: (-(2**31), 2**31), 3: (0, 2**32)}  # cpp_type
#: The fields _key_values and _any read (JSON name: type), checked against the descriptors.
_KNOWN = {
    "KeyValue": {"key": 9, "value": 11},
    "AnyValue": {"stringValue": 9, "boolValue": 8, "intValue": 3, "doubleValue": 1,
                 "arrayValue": 11, "kvlistValue": 11},
}  # fmt: skip
#: A record as stored, before its fields are filled in (in the full path's order).
_RECORD = {
    "resource": None, "scope": "", "time_unix_nano": 0, "observed_time_unix_nano": 0,
    "severity_number": 0, "severity_text": "", "body": None, "attributes": None,  # (a new {})
    "trace_id": "", "span_id": "", "flags": 0,
}  # fmt: skip


class Slow(Exception):
    """Not a body the fast path is sure of: let the full path judge it."""


def fast_records(body: bytes) -> list[dict[str, Any]]:
    """The records the full path would make of ``body``, or ``Slow``."""
    if body[:1] != b"{":
        raise Slow
    try:
        text = body.decode()
        doc = orjson_value(body) if orjson_sure(body) else UNSURE
        if doc is UNSURE:
            doc = json.loads(text)  # what json.loads(body) makes of such a body
    except (ValueError, RecursionError):
        raise Slow from None
    keys = [0]  # keys of the objects read
    descriptor = importlib.import_module(SERVICE).ExportLogsServiceRequest.DESCRIPTOR
    request = _fields(doc, _plan(descriptor), {}, keys, 0)
    colons = text.count(":")  # if all are keys' and nothing is escaped, all is well
    if (colons != keys[0] or "\\u" in text) and (
        "\\u003a" in text or "\\u003A" in text or colons != keys[0] + _string_colons(doc)
    ):
        raise Slow
    records = []
    for resource_logs in request.get("resource_logs", ()):
        resource = resource_logs.get("resource", {}).get("attributes", {})
        for scope_logs in resource_logs.get("scope_logs", ()):
            scope = scope_logs.get("scope", {}).get("name", "")
            for record in scope_logs.get("log_records", ()):
                record["resource"], record["scope"] = dict(resource), scope
                records.append(record)
    return records


def _string_colons(value: Any) -> int:
    """The ":" in the strings of a parsed document; Slow for a lone surrogate."""
    if isinstance(value, str):
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                raise Slow from None
        return value.count(":")
    if isinstance(value, dict):
        return sum(_string_colons(k) + _string_colons(v) for k, v in value.items())
    return sum(map(_string_colons, value)) if isinstance(value, list) else 0


#: Per message type: JSON key -> (field name, converter, its argument).
_PLANS: dict[str, dict[str, tuple[str, Any, Any]]] = {}


def _plan(descriptor: Any) -> dict[str, tuple[str, Any, Any]]:
    plan = _PLANS.get(descriptor.full_name)
    if plan is None:
        entries = ((f, *_converter(f)) for f in descriptor.fields)
        plan = _PLANS[descriptor.full_name] = {f.json_name: (f.name, c, a) for f, c, a in entries}
    return plan


def _converter(field: Any) -> tuple[Any, Any]:
    message, repeated = field.message_type, is_repeated(field)
    if field.containing_oneof is not None or (repeated and message is None):
        return _slow, None
    if message is not None and message.name in _KNOWN:
        types = {f.json_name: f.type for f in message.fields}
        if any(types.get(name) != kind for name, kind in _KNOWN[message.name].items()):
            return _slow, None  # not the message _key_values and _any know
        if message.name == "KeyValue":
            return (_key_values, None) if repeated else (_slow, None)
        return (_slow, None) if repeated else (_any, None)
    if message is not None:
        if message.name == "LogRecord" and repeated:
            return _log_records, message
        return (_messages if repeated else _message), message
    if field.enum_type is not None:
        return _enum, frozenset(v.number for v in field.enum_type.values)
    if field.type in (field.TYPE_STRING, field.TYPE_BOOL):
        return _exact, str if field.type == field.TYPE_STRING else bool
    if field.type == field.TYPE_DOUBLE:
        return _double, None
    if field.type == field.TYPE_BYTES:
        return (_id, ID_DIGITS[field.name]) if field.name in ID_DIGITS else (_slow, None)
    return (_integer, _RANGES[field.cpp_type]) if field.cpp_type in _RANGES else (_slow, None)


def _fields(
    value: Any, plan: dict[str, Any], out: dict[str, Any], keys: list[int], depth: int
) -> Any:
    """A message's fields by name (into ``out``), as ParseDict takes them."""
    if type(value) is not dict or depth > _MAX_DEPTH:
        raise Slow
    keys[0] += len(value)
    for key, item in value.items():
        entry = plan.get(key)
        if entry is None:
            raise Slow
        name, convert, arg = entry
        out[name] = convert(item, arg, keys, depth + 1)
    return out


def _message(item: Any, descriptor: Any, keys: list[int], depth: int) -> Any:
    return _fields(item, _plan(descriptor), {}, keys, depth)


def _messages(item: Any, descriptor: Any, keys: list[int], depth: int) -> Any:
    return [_fields(v, _plan(descriptor), {}, keys, depth) for v in _list(item)]


def _log_records(item: Any, descriptor: Any, keys: list[int], depth: int) -> Any:
    """Log records, each as stored (but for ``resource`` and ``scope``)."""
    plan = _plan(descriptor)
    usual = _usual(descriptor.full_name, plan) if depth + 4 <= _MAX_DEPTH else None
    records = [
        (usual and usual(log, keys)) or _fields(log, plan, dict(_RECORD), keys, depth)
        for log in _list(item)
    ]
    for record in records:
        if record["attributes"] is None:
            record["attributes"] = {}
        if len(record) != len(_RECORD):  # fields not stored: checked, then dropped
            for name in [name for name in record if name not in _RECORD]:
                del record[name]
    return records


#: The usual record (logdrain's, in its key order) that ``_usual`` reads inline.
_USUAL_KEYS = ("timeUnixNano", "observedTimeUnixNano", "severityNumber", "severityText",
               "body", "attributes")  # fmt: skip
_USUAL_READERS: dict[str, Any] = {}


def _usual(name: str, plan: dict[str, tuple[str, Any, Any]]) -> Any:
    """A reader of the usual record for LogRecord's ``plan``, or None when
    the descriptors do not give its fields the converters it inlines."""
    if name in _USUAL_READERS:
        return _USUAL_READERS[name]
    expected = [
        ("time_unix_nano", _integer, _RANGES[4]),
        ("observed_time_unix_nano", _integer, _RANGES[4]),
        ("severity_number", _enum, None),
        ("severity_text", _exact, str),
        ("body", _any, None),
        ("attributes", _key_values, None),
    ]
    entries = [plan.get(key) for key in _USUAL_KEYS]
    fits = all(
        entry is not None and entry[:2] == want[:2] and (want[2] is None or entry[2] == want[2])
        for entry, want in zip(entries, expected, strict=True)
    )
    reader = _reader(entries[2][2]) if fits and entries[2] is not None else None
    _USUAL_READERS[name] = reader
    return reader


def _reader(numbers: frozenset[int]) -> Any:
    low, high = _RANGES[2]

    def usual(log: Any, keys: list[int]) -> dict[str, Any] | None:
        """The record ``_fields`` makes of the usual record: both times as
        digit strings, a string body, string or int64 attributes with unique
        keys, each value of the type ``_fields`` takes; None for any other
        record (``_fields`` then reads it, and says Slow for what it cannot)."""
        if type(log) is not dict or tuple(log) != _USUAL_KEYS:
            return None
        time, observed, number, text, body, attributes = log.values()
        if not (
            type(time) is str and time.isdigit() and time.isascii()
            and type(observed) is str and observed.isdigit() and observed.isascii()
            and type(number) is int and number in numbers and type(text) is str
            and type(body) is dict and len(body) == 1 and type(attributes) is list
        ):  # fmt: skip
            return None
        message = body.get("stringValue")
        time_ns, observed_ns = int(time), int(observed)
        if type(message) is not str or time_ns >= 2**64 or observed_ns >= 2**64:
            return None
        out: dict[str, Any] = {}
        for kv in attributes:
            if type(kv) is not dict or len(kv) != 2:
                return None
            key, value = kv.get("key"), kv.get("value")
            if type(key) is not str or type(value) is not dict or len(value) != 1 or key in out:
                return None
            if "stringValue" in value:
                value = value["stringValue"]
                if type(value) is not str:
                    return None
            else:
                value = value.get("intValue")
                if type(value) is not str:
                    return None
                digits = value[1:] if value[:1] == "-" else value
                if not (digits.isdigit() and digits.isascii()):
                    return None
                value = int(value)
                if not low <= value < high:
                    return None
            out[key] = value
        keys[0] += 7 + 3 * len(out)  # the record's, the body's and each attribute's keys
        return {
            "resource": None, "scope": "", "time_unix_nano": time_ns,
            "observed_time_unix_nano": observed_ns, "severity_number": number,
            "severity_text": text, "body": message, "attributes": out,
            "trace_id": "", "span_id": "", "flags": 0,
        }  # fmt: skip

    return usual


def _key_values(item: Any, arg: Any, keys: list[int], depth: int) -> dict[str, Any]:
    """KeyValues as _attributes makes them (unique keys)."""
    out: dict[str, Any] = {}
    for kv in _list(item):
        if type(kv) is not dict or len(kv) != 2 or depth > _MAX_DEPTH:
            raise Slow
        key, value = kv.get("key"), kv.get("value")
        if type(key) is not str or value is None or key in out:
            raise Slow
        out[key] = _any(value, None, keys, depth + 1)
    keys[0] += 2 * len(out)
    return out


def _any(item: Any, arg: Any, keys: list[int], depth: int) -> Any:
    """An AnyValue as _value makes it."""
    if type(item) is not dict or len(item) != 1 or depth > _MAX_DEPTH:
        if item == {}:
            return None
        raise Slow
    ((kind, value),) = item.items()
    keys[0] += 1
    if kind in {"stringValue", "boolValue"}:
        return _exact(value, str if kind == "stringValue" else bool, keys, depth)
    if kind == "intValue":
        return _integer(value, _RANGES[2], keys, depth)
    if kind == "doubleValue":
        return _double(value, None, keys, depth)
    if kind not in ("arrayValue", "kvlistValue") or type(value) is not dict:
        raise Slow  # bytesValue, stringValueStrindex, unknown
    if len(value) != ("values" in value):
        raise Slow
    keys[0] += len(value)
    values = value.get("values", [])
    if kind == "kvlistValue":
        return _key_values(values, None, keys, depth + 2)
    return [_any(v, None, keys, depth + 2) for v in _list(values)]


def _list(item: Any) -> list[Any]:
    if type(item) is not list:
        raise Slow
    return item


def _slow(item: Any, arg: Any, keys: list[int], depth: int) -> Any:
    raise Slow


def _exact(item: Any, kind: type, keys: list[int], depth: int) -> Any:
    if type(item) is not kind:
        raise Slow
    return item


def _double(item: Any, arg: Any, keys: list[int], depth: int) -> Any:
    if type(item) is not float or not math.isfinite(item):
        raise Slow
    return item


def _integer(item: Any, bounds: tuple[int, int], keys: list[int], depth: int) -> Any:
    if type(item) is str:
        digits = item if item[:1] != "-" else item[1:]
        if not (digits.isdigit() and digits.isascii()):
            raise Slow
        item = int(item)
    if type(item) is not int or not bounds[0] <= item < bounds[1]:
        raise Slow
    return item


def _enum(item: Any, numbers: frozenset[int], keys: list[int], depth: int) -> Any:
    if type(item) is not int or item not in numbers:
        raise Slow
    return item


def _id(item: Any, digits: int, keys: list[int], depth: int) -> Any:
    if type(item) is not str or not HEX.fullmatch(item) or len(item) not in (0, digits):
        raise Slow
    return item.lower()
