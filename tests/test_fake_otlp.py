"""The strict OTLP/HTTP fake, driven from plain ``requests`` on 127.0.0.1."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from logdrain.testing.dialects._base import StrictCollector
from logdrain.testing.dialects._otlp import OTLP

pytestmark = pytest.mark.timeout(120)
pytest.importorskip("opentelemetry.proto")  # every check parses with the official messages

TIMEOUT = 5
TRACE, SPAN = "5B8EFFF798038103D269B633813FC60C", "eee19b7ec3c1b174"
UNSUPPORTED = "415 unsupported media type, supported: [application/json, application/x-protobuf]"


@pytest.fixture
def fake() -> Iterator[StrictCollector]:
    with StrictCollector(OTLP(max_request_body_size=64 * 1024)) as server:
        yield server


def post(server: StrictCollector, payload: Any, **headers: str) -> requests.Response:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    sent = {"Content-Type": "application/json", **headers}
    return requests.post(server.url, data=data, headers=sent, timeout=TIMEOUT)


def logs(*records: dict[str, Any], scope: dict[str, Any] | None = None) -> dict[str, Any]:
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]}
    return {
        "resourceLogs": [
            {"resource": resource, "scopeLogs": [{"scope": scope or {"name": "app"},
                                                  "logRecords": list(records)}]}
        ]
    }  # fmt: skip


def test_a_valid_request_is_stored_normalised(fake: StrictCollector) -> None:
    log = {
        "timeUnixNano": "1700000000000000001",
        "observedTimeUnixNano": 1700000000000000002,  # decoders take numbers too
        "severityNumber": 9,
        "severityText": "INFO",
        "body": {"stringValue": "hello"},
        "attributes": [
            {"key": "n", "value": {"intValue": "-5"}},
            {"key": "x", "value": {"doubleValue": 0.5}},
            {"key": "l", "value": {"arrayValue": {"values": [{"boolValue": True}, {}]}}},
            {"key": "m", "value": {"kvlistValue": {"values": [{"key": "k", "value": {}}]}}},
            {"key": "b", "value": {"bytesValue": "AAE="}},
        ],
        "flags": 1,
        "traceId": TRACE,
        "spanId": SPAN,
    }
    answer = post(fake, logs(log))
    assert (answer.status_code, answer.content) == (200, b'{"partialSuccess":{}}')
    assert answer.headers["Content-Type"] == "application/json"
    assert fake.records == [
        {
            "resource": {"service.name": "svc"},
            "scope": "app",
            "time_unix_nano": 1700000000000000001,
            "observed_time_unix_nano": 1700000000000000002,
            "severity_number": 9,
            "severity_text": "INFO",
            "body": "hello",
            "attributes": {"n": -5, "x": 0.5, "l": [True, None], "m": {"k": None},
                           "b": b"\x00\x01"},
            "trace_id": TRACE.lower(),
            "span_id": SPAN,
            "flags": 1,
        }
    ]  # fmt: skip
    assert fake.requests[0].record_count == 1


def test_empty_requests_and_gzip(fake: StrictCollector) -> None:
    assert post(fake, {}).status_code == 200
    packed = gzip.compress(json.dumps(logs({"body": {"stringValue": "z"}})).encode())
    assert post(fake, packed, **{"Content-Encoding": "gzip"}).status_code == 200
    deflated = zlib.compress(json.dumps(logs({"body": {"stringValue": "d"}})).encode())
    assert post(fake, deflated, **{"Content-Encoding": "deflate"}).status_code == 200
    assert [r["body"] for r in fake.records] == ["z", "d"]
    broken = post(fake, packed[:-8], **{"Content-Encoding": "gzip"})
    assert broken.status_code == 400 and "unexpected EOF" in broken.json()["message"]


@pytest.mark.parametrize(
    ("method", "path", "content_type", "expected"),
    [
        ("POST", "/v1/traces", "application/json", (404, "404 page not found\n")),
        ("GET", "/v1/logs", "application/json", (405, "405 method not allowed, supported: [POST]")),
        ("POST", "/v1/logs", "text/plain", (415, UNSUPPORTED)),
        ("POST", "/v1/logs", "application/x-protobuf", (415, UNSUPPORTED)),
    ],
)
def test_path_method_and_content_type(
    fake: StrictCollector, method: str, path: str, content_type: str, expected: tuple[int, str]
) -> None:
    answer = requests.request(
        method, fake.base_url + path, data=b"{}", headers={"Content-Type": content_type},
        timeout=TIMEOUT,
    )  # fmt: skip
    assert (answer.status_code, answer.text) == expected


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        (b"not json", "invalid JSON"),
        (b"[]", "must be a JSON object"),
        (b'{"resourceLogs": [], "resourceLogs": []}', "duplicate key 'resourceLogs'"),
        ({"resource_logs": []}, 'must be written "resourceLogs"'),
        (logs({"severityNumber": "SEVERITY_NUMBER_INFO"}), "must be an integer"),
        (logs({"severityNumber": 25}), "severityNumber 25 is not 0-24"),
        (logs({"traceId": "W4739/ekkBA0abYzgT/GDA=="}), "is not a 32-digit hex traceId"),
        (logs({"spanId": TRACE}), "is not a 16-digit hex spanId"),
        (logs({"bodyy": {"stringValue": "x"}}), 'has no field named "bodyy"'),
        (logs({"body": {"stringValue": "x", "intValue": "1"}}), 'multiple "value" oneof'),
        (logs({"timeUnixNano": "-1"}), "timeUnixNano"),
        (b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"doubleValue": NaN}}]}]}]}',
         "invalid JSON token NaN"),
        (logs({"attributes": [{"key": "a", "value": {}}, {"key": "a", "value": {}}]}),
         "duplicate attribute key 'a'"),
        # A key repeated inside a record whose strings hold colons (the fast
        # path counts colons to see a merged key).
        (b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "a:b:c"},'
         b' "severityText": "x:", "severityText": "y"}]}]}]}', "duplicate key 'severityText'"),
        (b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": [{"key": "k:",'
         b' "value": {"stringValue": "v", "stringValue": ":"}}]}]}]}]}',
         "duplicate key 'stringValue'"),
    ],
)  # fmt: skip
def test_bad_data_gets_400_with_a_status(fake: StrictCollector, payload: Any, says: str) -> None:
    answer = post(fake, payload)
    assert answer.status_code == 400
    assert answer.headers["Content-Type"] == "application/json"
    status = answer.json()
    assert status["code"] == 3  # InvalidArgument
    assert says in status["message"]
    assert fake.records == []


def test_a_body_over_the_limit_is_413(fake: StrictCollector) -> None:
    big = logs({"body": {"stringValue": "x" * 70_000}})
    answer = post(fake, big)
    assert answer.status_code == 413
    assert answer.json() == {"code": 2, "message": "http: request body too large"}
    bomb = gzip.compress(json.dumps(big).encode())
    assert len(bomb) < 64 * 1024
    assert post(fake, bomb, **{"Content-Encoding": "gzip"}).status_code == 413


def test_plays(fake: StrictCollector) -> None:
    fake.play("partial_success", rejected=2, error_message="too old")
    fake.play("partial_success", rejected=1, as_number=True)
    fake.play("unavailable")
    fake.play("throttled", retry_after="7", message="slow down")
    fake.play("too_large")
    fake.play("error", status=401, message="missing token")
    three = logs(*({"body": {"stringValue": f"r{i}"}} for i in range(3)))
    bad = post(fake, {"resource_logs": []})
    assert bad.status_code == 400  # refused before the plays: they stay queued
    first = post(fake, three)
    assert (first.status_code, first.json()) == (
        200, {"partialSuccess": {"rejectedLogRecords": "2", "errorMessage": "too old"}},
    )  # fmt: skip
    second = post(fake, three)
    assert second.json()["partialSuccess"]["rejectedLogRecords"] == 1
    assert [r["body"] for r in fake.records] == ["r0", "r0", "r1"]
    unavailable = post(fake, three)
    assert (unavailable.status_code, unavailable.headers["Retry-After"]) == (503, "1")
    assert unavailable.json() == {"code": 14, "message": "data refused due to high memory usage"}
    throttled = post(fake, three)
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "7")
    assert throttled.json() == {"code": 8, "message": "slow down"}
    assert post(fake, three).status_code == 413
    unauthorized = post(fake, three)
    assert (unauthorized.status_code, unauthorized.json()) == (
        401, {"code": 16, "message": "missing token"},
    )  # fmt: skip
    assert len(fake.records) == 3
    with pytest.raises(ValueError, match="unknown play"):
        fake.play("nope")
    with pytest.raises(TypeError, match="takes no"):
        fake.play("too_large", status=500)
