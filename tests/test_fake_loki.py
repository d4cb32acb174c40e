"""The strict Loki fake, driven from plain ``requests`` on 127.0.0.1."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from logdrain.testing.dialects import Loki, StrictCollector
from logdrain.testing.dialects._loki import MALFORMED_OBJECT, MALFORMED_STRING, MALFORMED_VALUE

NOW = 1_700_000_000 * 10**9
HOUR = 3600 * 10**9
TIMEOUT = 5


@pytest.fixture
def loki() -> Iterator[StrictCollector]:
    with StrictCollector(Loki(now=lambda: NOW)) as fake:
        yield fake


def push(fake: StrictCollector, payload: Any, **headers: str) -> requests.Response:
    return requests.post(fake.url, json=payload, headers=headers, timeout=TIMEOUT)


def stream(labels: dict[str, str], *values: list[Any]) -> dict[str, Any]:
    return {"streams": [{"stream": labels, "values": list(values)}]}


def test_valid_push_is_stored_exactly(loki: StrictCollector) -> None:
    payload = {
        "streams": [
            {"stream": {"app": "a", "level": "info"}, "values": [[str(NOW), "one"]]},
            {"stream": {"app": "b"}, "values": [[str(NOW + 1), "two", {"trace_id": "t1"}]]},
        ]
    }
    answer = push(loki, payload)
    assert (answer.status_code, answer.content) == (204, b"")
    assert loki.url.endswith("/loki/api/v1/push")
    assert loki.records == [
        {"tenant": "fake", "stream": {"app": "a", "level": "info"}, "ts": str(NOW),
         "line": "one", "metadata": {}},
        {"tenant": "fake", "stream": {"app": "b"}, "ts": str(NOW + 1), "line": "two",
         "metadata": {"trace_id": "t1"}},
    ]  # fmt: skip
    assert loki.requests[0].record_count == 2


def test_gzip_body_is_accepted(loki: StrictCollector) -> None:
    body = gzip.compress(json.dumps(stream({"a": "b"}, [str(NOW), "x"])).encode())
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    answer = requests.post(loki.url, data=body, headers=headers, timeout=TIMEOUT)
    assert answer.status_code == 204
    assert [r["line"] for r in loki.records] == ["x"]


def test_tenant_header_in_multi_tenant_mode() -> None:
    with StrictCollector(Loki(multi_tenant=True, now=lambda: NOW)) as fake:
        missing = push(fake, stream({"a": "b"}, [str(NOW), "x"]))
        assert (missing.status_code, missing.text) == (401, "no org id\n")
        ok = push(fake, stream({"a": "b"}, [str(NOW), "x"]), **{"X-Scope-OrgID": "team-a"})
        assert ok.status_code == 204
        assert [r["tenant"] for r in fake.records] == ["team-a"]


@pytest.mark.parametrize(
    ("method", "path", "status", "text"),
    [("POST", "/loki/api/v1/pushed", 404, "404 page not found\n"),
     ("GET", "/loki/api/v1/push", 405, "")],
)  # fmt: skip
def test_wrong_path_or_method(
    loki: StrictCollector, method: str, path: str, status: int, text: str
) -> None:
    answer = requests.request(method, loki.base_url + path, json={}, timeout=TIMEOUT)
    assert (answer.status_code, answer.text) == (status, text)
    assert loki.records == []


def test_other_content_type_is_read_as_snappy_protobuf(loki: StrictCollector) -> None:
    body = json.dumps(stream({"a": "b"}, [str(NOW), "x"]))
    answer = requests.post(loki.url, data=body, headers={"Content-Type": "text/plain"},
                           timeout=TIMEOUT)  # fmt: skip
    assert (answer.status_code, answer.text) == (400, "snappy: corrupt input\n")


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ([NOW, "number timestamp"], MALFORMED_STRING),
        (["soon", "text timestamp"], MALFORMED_VALUE),
        ([str(NOW), 42], MALFORMED_STRING),
        ([str(NOW), "x", ["not", "an", "object"]], MALFORMED_OBJECT),
    ],
)
def test_bad_entries_reject_the_whole_push(loki: StrictCollector, value: Any, error: str) -> None:
    payload = {"streams": [{"stream": {"a": "b"}, "values": [[str(NOW), "ok"], value]}]}
    answer = push(loki, payload)
    assert answer.status_code == 400
    assert error in answer.text
    assert loki.records == []


@pytest.mark.parametrize(
    ("labels", "error"),
    [
        ({}, "error at least one label pair is required per stream\n"),
        ({"1bad": "x"}, "Error parsing labels '{1bad=\"x\"}' with error: "),
        ({f"l{i}": "v" for i in range(16)}, "has 16 label names; limit 15\n"),
        ({"a": "v" * 2049}, "has label value too long: "),
    ],
)
def test_bad_labels_drop_that_stream_only(
    loki: StrictCollector, labels: dict[str, str], error: str
) -> None:
    payload = {"streams": [
        {"stream": labels, "values": [[str(NOW), "dropped"]]},
        {"stream": {"good": "yes"}, "values": [[str(NOW), "kept"]]},
    ]}  # fmt: skip
    answer = push(loki, payload)
    assert answer.status_code == 400
    assert error in answer.text
    assert [r["line"] for r in loki.records] == ["kept"]


def test_too_old_and_too_new_entries(loki: StrictCollector) -> None:
    old, new = NOW - 169 * HOUR, NOW + HOUR
    answer = push(loki, stream({"a": "b"}, [str(old), "old"], [str(NOW), "ok"]))
    assert answer.status_code == 400
    assert answer.text == (
        "entry for stream '{a=\"b\"}' has timestamp too old: 2023-11-07 21:13:20 +0000 UTC, "
        "oldest acceptable timestamp is: 2023-11-07 22:13:20 +0000 UTC\n"
    )
    answer = push(loki, stream({"a": "b"}, [str(new), "new"]))
    assert answer.text == (
        "entry for stream '{a=\"b\"}' has timestamp too new: 2023-11-14 23:13:20 +0000 UTC\n"
    )
    assert [r["line"] for r in loki.records] == ["ok"]


def test_too_far_behind_is_a_partial_ingestion(loki: StrictCollector) -> None:
    assert push(loki, stream({"a": "b"}, [str(NOW), "newest"])).status_code == 204
    behind = NOW - 2 * HOUR
    answer = push(loki, stream({"a": "b"}, [str(behind), "late"], [str(NOW - 1), "fine"]))
    assert answer.status_code == 400
    assert answer.text == (
        "entry with timestamp 2023-11-14 20:13:20 +0000 UTC ignored, reason: 'entry too far "
        "behind, entry timestamp is: 2023-11-14T20:13:20Z, oldest acceptable timestamp is: "
        '2023-11-14T21:13:20Z\' for stream: {a="b"},\n'
        "user 'fake', total ignored: 1 out of 2\n"
    )
    assert [r["line"] for r in loki.records] == ["newest", "fine"]


def test_scripted_too_far_behind_refuses_the_last_entries(loki: StrictCollector) -> None:
    loki.play("too_far_behind", count=2)
    values = [[str(NOW + i), f"line{i}"] for i in range(3)]
    answer = push(loki, stream({"a": "b"}, *values))
    assert answer.status_code == 400
    assert answer.text.endswith("user 'fake', total ignored: 2 out of 3\n")
    assert answer.text.count("ignored, reason: 'entry too far behind") == 2
    assert [r["line"] for r in loki.records] == ["line0"]


def test_rate_limit_and_server_errors_store_nothing(loki: StrictCollector) -> None:
    loki.play("rate_limited", limit=100)
    loki.play("stream_limit")
    loki.play("error", status=503, text="upstream unavailable")
    payload = stream({"a": "b"}, [str(NOW), "abc"])
    bad = push(loki, stream({"a": "b"}, [NOW, "number timestamp"]))
    assert bad.status_code == 400  # a push refused as a whole leaves the plays queued
    limited = push(loki, payload)
    assert limited.status_code == 429
    assert limited.text == (
        "Ingestion rate limit exceeded for user fake (limit: 100 bytes/sec) while attempting "
        "to ingest '1' lines totaling '3' bytes, reduce log volume or contact your Loki "
        "administrator to see if the limit can be increased\n"
    )
    streams = push(loki, payload)
    assert streams.status_code == 429
    assert streams.text.startswith(
        'Maximum active stream limit exceeded when trying to create stream {a="b"}'
    )
    unavailable = push(loki, payload)
    assert (unavailable.status_code, unavailable.text) == (503, "upstream unavailable\n")
    assert loki.records == []
    assert push(loki, payload).status_code == 204
    assert [r["line"] for r in loki.records] == ["abc"]


def test_inherited_script_and_fault_still_work(loki: StrictCollector) -> None:
    loki.script(500, body=b"boom")
    loki.fault("partial", keep=1, status=500)
    payload = stream({"a": "b"}, [str(NOW), "one"], [str(NOW + 1), "two"])
    first = push(loki, payload)
    assert (first.status_code, first.text) == (500, "boom")
    second = push(loki, payload)
    assert second.status_code == 500
    assert [r["line"] for r in loki.records] == ["one"]
