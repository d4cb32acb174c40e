"""OTLP/HTTP logs (``POST /v1/logs``, the JSON encoding), as the OpenTelemetry
Collector's OTLP receiver takes them, strictly.

This module owns the ``OTLP`` dialect and ``parse_logs``' full path (``_walk``,
protobuf's ``ParseDict``, the record checks), the judge of every error;
``parse_logs`` tries the fast path for the usual body first (``_otlp_fast``,
which gives the same records or falls back here); the rules both apply are
in ``_otlp_rules``.

Sources: the OTLP specification, opentelemetry-proto ``docs/specification.md``
("OTLP/HTTP": ``/v1/logs``, "JSON Protobuf Encoding": hex ``traceId``/``spanId``,
integer enums, lowerCamelCase keys only, 64-bit integers as strings or
numbers; "OTLP/HTTP Response": 200 with an ``ExportLogsServiceResponse``,
``partial_success`` with ``rejected_log_records`` and ``error_message``, a
``google.rpc.Status`` body for every 4xx/5xx, 429/502/503/504 retryable with
``Retry-After``, 400 for bad data, 413 and the 20 MiB recommended limit);
the messages of opentelemetry-proto (``collector/logs/v1/logs_service.proto``,
``logs/v1/logs.proto``, ``common/v1/common.proto``), through the official
Python bindings (``google.protobuf.json_format.ParseDict`` with
``ignore_unknown_fields=False`` into ``ExportLogsServiceRequest``); the
Collector's ``receiver/otlpreceiver/otlphttp.go`` (405 "method not allowed,
supported: [POST]" and 415 "unsupported media type" as text/plain, errors as
a JSON ``Status`` via ``writeError``/``errorHandler``, 400 for a body that
does not unmarshal) and ``internal/httphelper`` ``NewStatusFromMsgAndHTTPCode``
(the ``code`` of each HTTP status); ``config/confighttp/compression.go``
(gzip and deflate/zlib bodies); the logs data model
(opentelemetry-specification ``logs/data-model.md``: SeverityNumber 0-24,
unique attribute keys).

Approximations and deliberate strictness (marked so nobody mistakes them for
the Collector's behaviour): the spec says receivers MUST ignore unknown
fields, this fake refuses them (a preset's typo must not pass); it also
refuses original (snake_case) field names and enum names, which the proto3
JSON parser would accept; duplicate attribute keys, a SeverityNumber above
24, duplicate JSON keys and bare NaN/Infinity tokens are refused although the
Collector does not check them; error messages are the Python protobuf
parser's, not pdata's; an unsupported Content-Encoding gets 400; a body over
``max_request_body_size`` gets 413 (the spec's SHOULD; the Collector's
confighttp may answer 400 with "http: request body too large"); the
``Retry-After`` of the ``unavailable``/``throttled`` plays is what a
throttling gateway sends, the Collector itself does not add one.
"""

from __future__ import annotations

import base64
import importlib
import json
import zlib
from email.message import Message
from typing import Any, ClassVar

from ._base import Answer, Batch, Dialect, Play, Request, text_answer
from ._otlp_fast import Slow, fast_records
from ._otlp_rules import HEX, ID_DIGITS, SERVICE, is_repeated

LOGS_PATH = "/v1/logs"
#: The specification's recommended request size limit (and confighttp's default).
MAX_REQUEST_BODY_SIZE = 20 * 1024 * 1024
JSON_TYPE = "application/json"
PROTOBUF_TYPE = "application/x-protobuf"
_MAX_SEVERITY = 24


def grpc_code(status: int) -> int:
    """The ``google.rpc.Status`` code the Collector gives an HTTP status
    (``NewStatusFromMsgAndHTTPCode``)."""
    codes = {400: 3, 401: 16, 403: 7, 404: 12, 429: 8, 502: 14, 503: 14, 504: 14}
    return codes.get(status, 2)  # Unknown


def status_answer(status: int, message: str, headers: dict[str, str] | None = None) -> Answer:
    """A ``google.rpc.Status`` in JSON, as gogo's jsonpb writes it (compact)."""
    body = json.dumps({"code": grpc_code(status), "message": message}, separators=(",", ":"))
    return Answer(status, body.encode(), {"Content-Type": JSON_TYPE, **(headers or {})})


class _Bad(ValueError):
    pass


class _TooLarge(ValueError):
    pass


_TEXT = {"Content-Type": "text/plain"}


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Bad(f"duplicate key {key!r} in a JSON object")
        out[key] = value
    return out


def _no_constant(token: str) -> Any:
    raise _Bad(f"invalid JSON token {token} (write NaN and Infinity as strings)")


def _walk(value: Any, descriptor: Any, path: str) -> Any:
    """The JSON object with OTLP's own rules checked (lowerCamelCase keys,
    integer enums, hex ids) and the ids turned into the base64 the standard
    proto3 JSON mapping expects; the rest is left to the proto parser."""
    if not isinstance(value, dict):
        return value
    by_json = {f.json_name: f for f in descriptor.fields}
    by_name = {f.name: f for f in descriptor.fields}
    out: dict[str, Any] = {}
    for key, item in value.items():
        field = by_json.get(key)
        if field is None:
            if key in by_name and by_name[key].json_name != key:
                raise _Bad(
                    f'{path}: field "{key}" must be written "{by_name[key].json_name}" '
                    "(OTLP/JSON keys are lowerCamelCase)"
                )
            out[key] = item  # unknown: the parser refuses it
        elif is_repeated(field) and isinstance(item, list):
            out[key] = [_one(v, field, f"{path}.{key}[{i}]") for i, v in enumerate(item)]
        else:
            out[key] = _one(item, field, f"{path}.{key}")
    return out


def _one(item: Any, field: Any, path: str) -> Any:
    if item is None:
        return None
    if field.message_type is not None:
        return _walk(item, field.message_type, path)
    if field.enum_type is not None and isinstance(item, str):
        raise _Bad(f"{path}: enum value {item!r} must be an integer in OTLP/JSON")
    digits = ID_DIGITS.get(field.name)
    if digits is not None and field.type == field.TYPE_BYTES:
        if not isinstance(item, str) or not HEX.fullmatch(item) or len(item) not in (0, digits):
            raise _Bad(f"{path}: {item!r} is not a {digits}-digit hex {field.json_name}")
        return base64.b64encode(bytes.fromhex(item)).decode("ascii")
    return item


def _value(any_value: Any, path: str) -> Any:
    """An ``AnyValue`` as a Python value: str, bool, int, float, bytes, list,
    dict, or None for the empty one."""
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(v, path) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(any_value.kvlist_value.values, path)
    if kind == "string_value_strindex":
        raise _Bad(f"{path}: string_value_strindex is for profiles, not logs")
    return getattr(any_value, kind)


def _attributes(key_values: Any, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in key_values:
        if kv.key in out:
            raise _Bad(f"{path}: duplicate attribute key {kv.key!r}")
        out[kv.key] = _value(kv.value, f"{path}.{kv.key}")
    return out


def parse_logs(body: bytes) -> list[dict[str, Any]]:
    """An OTLP/JSON ``ExportLogsServiceRequest`` -> normalised records, or
    ValueError with what is wrong. Needs ``opentelemetry-proto``."""
    try:
        return fast_records(body)  # the usual body (see _otlp_fast)
    except Slow:
        return full_records(body)  # the full way: every check, every error message


def full_records(body: bytes) -> list[dict[str, Any]]:
    """``parse_logs`` the full way, the judge of the fast path's answers."""
    json_format = importlib.import_module("google.protobuf.json_format")
    service = importlib.import_module(SERVICE)
    try:
        doc = json.loads(body, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except ValueError as exc:
        raise _Bad(f"invalid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise _Bad("the body must be a JSON object (an ExportLogsServiceRequest)")
    message = service.ExportLogsServiceRequest()
    checked = _walk(doc, message.DESCRIPTOR, "ExportLogsServiceRequest")
    try:
        json_format.ParseDict(checked, message, ignore_unknown_fields=False)
    except (json_format.ParseError, ValueError, TypeError, AttributeError) as exc:
        raise _Bad(" ".join(str(exc).split())) from None
    records = []
    for r, resource_logs in enumerate(message.resource_logs):
        where = f"resourceLogs[{r}]"
        resource = _attributes(resource_logs.resource.attributes, f"{where}.resource")
        for s, scope_logs in enumerate(resource_logs.scope_logs):
            _attributes(scope_logs.scope.attributes, f"{where}.scopeLogs[{s}].scope")
            for n, log in enumerate(scope_logs.log_records):
                at = f"{where}.scopeLogs[{s}].logRecords[{n}]"
                if not 0 <= log.severity_number <= _MAX_SEVERITY:
                    raise _Bad(f"{at}: severityNumber {log.severity_number} is not 0-24")
                records.append(
                    {
                        "resource": dict(resource),
                        "scope": scope_logs.scope.name,
                        "time_unix_nano": log.time_unix_nano,
                        "observed_time_unix_nano": log.observed_time_unix_nano,
                        "severity_number": log.severity_number,
                        "severity_text": log.severity_text,
                        "body": _value(log.body, f"{at}.body") if log.HasField("body") else None,
                        "attributes": _attributes(log.attributes, f"{at}.attributes"),
                        "trace_id": log.trace_id.hex(),
                        "span_id": log.span_id.hex(),
                        "flags": log.flags,
                    }
                )
    return records


class OTLP(Dialect):
    """The OpenTelemetry Collector's OTLP/HTTP receiver, logs, JSON only.

    Records are ``{"resource", "scope", "time_unix_nano",
    "observed_time_unix_nano", "severity_number", "severity_text", "body",
    "attributes", "trace_id", "span_id", "flags"}``: attribute values are
    Python values of the AnyValue's kind (``intValue`` an int, ``doubleValue``
    a float, ``kvlistValue`` a dict...), ids lower-case hex ("" when unset).

    Options: ``max_request_body_size`` (bytes, as sent and after
    decompression; default 20 MiB; above it 413).

    Plays: ``partial_success`` (``rejected`` records, default 1, refused from
    the end of the request, the rest stored; ``error_message``; ``as_number``
    writes the count as a JSON number instead of the int64 string),
    ``unavailable`` (503, code 14, ``Retry-After: retry_after`` (default "1",
    None for none), ``message``), ``throttled`` (429, code 8, the same
    parameters), ``too_large`` (413, ``message``), ``error`` (``status``,
    default 500, and ``message``). Nothing is stored but by ``partial_success``.
    """

    name = "otlp"
    path = LOGS_PATH
    plays: ClassVar[dict[str, frozenset[str]]] = {
        "partial_success": frozenset({"rejected", "error_message", "as_number"}),
        "unavailable": frozenset({"retry_after", "message"}),
        "throttled": frozenset({"retry_after", "message"}),
        "too_large": frozenset({"message"}),
        "error": frozenset({"status", "message"}),
    }

    def __init__(self, *, max_request_body_size: int = MAX_REQUEST_BODY_SIZE) -> None:
        self.max_request_body_size = max_request_body_size

    def check(self, request: Request) -> Answer | Batch:
        if request.path != LOGS_PATH:
            return text_answer(404, "404 page not found")
        if request.method != "POST":
            return Answer(405, b"405 method not allowed, supported: [POST]", _TEXT)
        content_type = request.header("Content-Type")
        message = Message()
        message["content-type"] = content_type or ""
        if not content_type or message.get_content_type() != JSON_TYPE:
            supported = f"supported: [{JSON_TYPE}, {PROTOBUF_TYPE}]"
            return Answer(415, f"415 unsupported media type, {supported}".encode(), _TEXT)
        try:
            body = self._decoded(request)
            records = parse_logs(body)
        except _TooLarge as exc:
            return status_answer(413, str(exc))
        except ValueError as exc:
            return status_answer(400, str(exc))
        return Batch([body], records, len(records))

    def _decoded(self, request: Request) -> bytes:
        limit = self.max_request_body_size
        if len(request.body) > limit:
            raise _TooLarge("http: request body too large")
        encoding = (request.header("Content-Encoding") or "").strip().lower()
        if encoding in ("", "identity"):
            return request.body
        if encoding not in ("gzip", "deflate", "zlib"):
            raise _Bad(f'unsupported Content-Encoding "{encoding}"')
        inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
        try:
            body = inflater.decompress(request.body, limit + 1)
        except zlib.error as exc:
            raise _Bad(f"{encoding}: invalid compressed body ({exc})") from None
        if len(body) > limit:
            raise _TooLarge("http: request body too large")
        if not inflater.eof:
            raise _Bad(f"{encoding}: unexpected EOF")
        return body

    def accept(self, request: Request, batch: Batch, play: Play | None) -> Answer:
        params = play.params if play is not None else {}
        kind = play.kind if play is not None else None
        if kind is None:
            return Answer(200, b'{"partialSuccess":{}}', {"Content-Type": JSON_TYPE}, batch.records)
        if kind == "partial_success":
            rejected = int(params.get("rejected", 1))
            count: Any = rejected if params.get("as_number") else str(rejected)
            text = str(params.get("error_message", f"{rejected} log record(s) were rejected"))
            partial = {"partialSuccess": {"rejectedLogRecords": count, "errorMessage": text}}
            kept = batch.records[: max(0, len(batch.records) - rejected)]
            body = json.dumps(partial, separators=(",", ":")).encode()
            return Answer(200, body, {"Content-Type": JSON_TYPE}, kept)
        if kind in ("unavailable", "throttled"):
            status = 503 if kind == "unavailable" else 429
            default = "data refused due to high memory usage" if status == 503 else "rate limited"
            retry_after = params.get("retry_after", "1")
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            return status_answer(status, str(params.get("message", default)), headers)
        if kind == "too_large":
            return status_answer(413, str(params.get("message", "http: request body too large")))
        status = int(params.get("status", 500))
        return status_answer(status, str(params.get("message", "internal error")))
