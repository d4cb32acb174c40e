"""The strict fakes' fast paths read what their full paths read: the OTLP
fake's inline reader of the usual log record against its generic walk (and
both against the official protobuf parser), orjson's values against
``json.loads``' (``_json``), and the Elasticsearch fake's line parser."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from logdrain.testing.dialects import _json
from logdrain.testing.dialects._elastic import _loads

pytestmark = pytest.mark.timeout(120)

TIME = "1733180000123456789"
USUAL: dict[str, Any] = {
    "timeUnixNano": TIME,
    "observedTimeUnixNano": TIME,
    "severityNumber": 9,
    "severityText": "INFO",
    "body": {"stringValue": "msg 1"},
    "attributes": [
        {"key": "user", "value": {"stringValue": "u"}},
        {"key": "n", "value": {"intValue": "-12"}},
    ],
}


def _variant(**changes: Any) -> dict[str, Any]:
    return {**USUAL, **changes}


def _attributes(*values: Any) -> dict[str, Any]:
    return _variant(attributes=[{"key": f"k{i}", "value": v} for i, v in enumerate(values)])


RECORDS: list[Any] = [
    USUAL,
    _variant(attributes=[]),
    _variant(timeUnixNano="0", observedTimeUnixNano="18446744073709551615"),
    _variant(timeUnixNano="18446744073709551616"),  # beyond fixed64
    _variant(timeUnixNano="-0"),
    _variant(timeUnixNano=int(TIME)),  # a JSON number: the generic walk's
    _variant(timeUnixNano="\uff11\uff12"),  # digits, not ASCII ones
    _variant(timeUnixNano=""),
    _variant(severityNumber=25),
    _variant(severityNumber=True),
    _variant(severityNumber=9.0),
    _variant(severityText=None),
    _variant(body={"stringValue": 1}),
    _variant(body={"intValue": "1"}),
    _variant(body={}),
    _variant(body={"stringValue": "a", "intValue": "1"}),
    _attributes({"intValue": "-9223372036854775808"}, {"intValue": "9223372036854775807"}),
    _attributes({"intValue": "9223372036854775808"}),
    _attributes({"intValue": "+1"}),
    _attributes({"intValue": "1.0"}),
    _attributes({"intValue": ""}),
    _attributes({"intValue": 5}),
    _attributes({"stringValue": None}),
    _attributes({}),
    _attributes({"stringValue": "x", "intValue": "1"}),
    _attributes({"boolValue": True}, {"doubleValue": 0.5}),
    _variant(attributes=[{"key": "a", "value": {"stringValue": "1"}}] * 2),  # a repeated key
    _variant(attributes=[{"key": 1, "value": {"stringValue": "x"}}]),
    _variant(attributes=[{"key": "a"}]),
    _variant(attributes=[{"key": "a", "value": {"stringValue": "x"}, "extra": 1}]),
    _variant(attributes={"key": "a"}),
    {k: USUAL[k] for k in reversed(USUAL)},  # another key order: the generic walk's
    {**USUAL, "flags": 1},
    {**USUAL, "traceId": "5b8efff798038103d269b633813fc60c"},
    [USUAL],
]


def _body(*records: Any) -> bytes:
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]}
    scope = {"scope": {"name": "app"}, "logRecords": list(records)}
    return json.dumps({"resourceLogs": [{"resource": resource, "scopeLogs": [scope]}]}).encode()


@pytest.mark.parametrize("record", RECORDS, ids=range(len(RECORDS)))
def test_the_otlp_usual_record_reader_makes_what_the_generic_walk_makes(record: Any) -> None:
    pytest.importorskip("opentelemetry.proto")
    import importlib

    from logdrain.testing.dialects import _otlp_fast as fast

    request = importlib.import_module(fast.SERVICE).ExportLogsServiceRequest.DESCRIPTOR
    log_record = (
        request.fields_by_name["resource_logs"]
        .message_type.fields_by_name["scope_logs"]
        .message_type.fields_by_name["log_records"]
        .message_type
    )
    plan = fast._plan(log_record)
    reader = fast._usual(log_record.full_name, plan)
    assert reader is not None  # the descriptors give the fields the converters it inlines
    counted, walked = [0], [0]
    quick = reader(record, counted)
    try:
        generic: Any = fast._fields(record, plan, dict(fast._RECORD), walked, 4)
        if generic["attributes"] is None:
            generic["attributes"] = {}
    except fast.Slow:
        generic = fast.Slow
    if quick is None:
        assert counted == [0]  # nothing counted for a record it leaves alone
    else:
        assert quick == generic and list(quick) == list(generic)
        assert counted == walked  # the keys seen: the duplicate-key check's count
    if record is USUAL:
        assert quick is not None  # the reader does read the usual record


@pytest.mark.parametrize("record", RECORDS, ids=range(len(RECORDS)))
def test_the_otlp_fast_path_agrees_with_the_protobuf_parser(record: Any) -> None:
    pytest.importorskip("opentelemetry.proto")
    from logdrain.testing.dialects._otlp import full_records, parse_logs

    body = _body(record, USUAL)
    try:
        expected: Any = full_records(body)
    except ValueError as exc:
        expected = type(exc)
    try:
        got: Any = parse_logs(body)
    except ValueError as exc:
        got = type(exc)
    assert got == expected


def _texts() -> list[bytes]:
    rng = random.Random(7)
    floats = [rng.uniform(-1e300, 1e300) for _ in range(200)] + [rng.random() for _ in range(200)]
    texts = [
        b'{"a":12345678901234567890}',
        b'{"a": 12345678901234567890}',
        b'{"a":[1,-1234567890123456789]}',
        b'{"a":\n18446744073709551616}',
        b'{"a":"12345678901234567890123"}',
        b'{"a":1234567890123456789.5}',
        b'{"a":9223372036854775807,"b":-9223372036854775808}',
        b'{"a":NaN}',
        b'{"a":-Infinity}',
        b'{"a":1e400}',
        b'{"a":1e-400}',
        b'{"a":-0,"b":-0.0}',
        b'{"a":"\\ud800"}',
        b'{"a":"\\u0000\\u001f\\"\\\\"}',
        b'{"a":1,"b":2,"a":3}',
        b'{"a":1} \t\r\n',
        b'{"a":1} x',
        b'{"a":1',
        b"{\xff}",
        b'{"\xc3\xa9":"\xe2\x82\xac"}',
        b"[" * 2000 + b"]" * 2000,
    ]
    return texts + [json.dumps({"f": f, "g": [f, str(f)]}).encode() for f in floats]


def _value(read: Any, text: bytes) -> Any:
    try:
        return ("value", repr(read(text)))
    except (ValueError, RecursionError) as exc:
        return ("error", type(exc).__name__)


def test_orjson_values_are_json_loads_values() -> None:
    pytest.importorskip("orjson")
    sure = 0
    for text in _texts():
        if not _json.orjson_sure(text):
            continue
        value = _json.orjson_value(text)
        if value is not _json.UNSURE:
            sure += 1
            assert repr(value) == repr(json.loads(text)), text
    assert sure > 300  # the usual texts are read by orjson
    assert not _json.orjson_sure(b'{"a":12345678901234567890}')
    assert _json.orjson_sure(b'{"t":"1733180000123456789"}')  # digits in a string


def test_without_orjson_nothing_is_sure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_json, "orjson", None)
    assert not _json.orjson_sure(b'{"a":1}')


@pytest.mark.parametrize("sure", [False, True])
def test_the_elasticsearch_line_parser_is_json_loads(sure: bool) -> None:
    for text in _texts():
        expected = _value(json.loads, text)
        assert _value(lambda t: _loads(t, sure and _json.orjson_sure(t)), text) == expected, text
