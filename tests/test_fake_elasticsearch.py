"""The strict Elasticsearch ``_bulk`` fake, driven from plain ``requests`` on 127.0.0.1."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from logdrain.testing.dialects import Elasticsearch, StrictCollector

TIMEOUT = 5
KEY = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
NDJSON = {"Content-Type": "application/x-ndjson", "Authorization": f"ApiKey {KEY}"}


@pytest.fixture
def es() -> Iterator[StrictCollector]:
    with StrictCollector(Elasticsearch(api_keys=[KEY], users={"elastic": "pw"})) as fake:
        yield fake


def ndjson(*lines: Any) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def bulk(fake: StrictCollector, body: bytes, path: str = "/_bulk", **headers: str) -> Any:
    merged = {**NDJSON, **headers}
    return requests.post(fake.base_url + path, data=body, headers=merged, timeout=TIMEOUT)


def error_of(answer: requests.Response) -> tuple[int, str, str]:
    doc = answer.json()
    assert doc["status"] == answer.status_code
    assert doc["error"]["root_cause"][0]["type"] == doc["error"]["type"]
    return answer.status_code, doc["error"]["type"], doc["error"]["reason"]


def test_valid_bulk_is_stored_and_answered_per_item(es: StrictCollector) -> None:
    body = ndjson(
        {"create": {"_index": "logs", "_id": "a1"}}, {"message": "one", "@timestamp": "t"},
        {"index": {"_index": "logs"}}, {"message": "two"},
    )  # fmt: skip
    answer = bulk(es, body)
    assert answer.status_code == 200
    doc = answer.json()
    assert doc["errors"] is False and isinstance(doc["took"], int)
    (first,), (second,) = (item.items() for item in doc["items"])
    assert first[0] == "create" and first[1]["_id"] == "a1"
    assert {k: first[1][k] for k in ("_index", "status", "result", "_version")} == {
        "_index": "logs", "status": 201, "result": "created", "_version": 1}  # fmt: skip
    assert second[0] == "index" and second[1]["status"] == 201
    auto_id = second[1]["_id"]
    assert es.records == [
        {"op": "create", "_index": "logs", "_id": "a1",
         "source": {"message": "one", "@timestamp": "t"}},
        {"op": "index", "_index": "logs", "_id": auto_id, "source": {"message": "two"}},
    ]  # fmt: skip


def test_index_in_path_basic_auth_and_json_content_type(es: StrictCollector) -> None:
    basic = "Basic " + base64.b64encode(b"elastic:pw").decode()
    body = ndjson({"create": {}}, {"message": "x"})
    answer = bulk(es, body, "/app-logs/_bulk", Authorization=basic,
                  **{"Content-Type": "application/json"})  # fmt: skip
    assert answer.status_code == 200
    assert es.records[0]["_index"] == "app-logs"


def test_repeated_id_with_create_is_a_409_item(es: StrictCollector) -> None:
    body = ndjson({"create": {"_index": "logs", "_id": "same"}}, {"n": 1})
    assert bulk(es, body).json()["errors"] is False
    doc = bulk(es, body + ndjson({"create": {"_index": "logs", "_id": "other"}}, {"n": 2})).json()
    assert doc["errors"] is True
    conflict, ok = doc["items"][0]["create"], doc["items"][1]["create"]
    assert conflict["status"] == 409
    assert conflict["error"]["type"] == "version_conflict_engine_exception"
    assert conflict["error"]["reason"] == (
        "[same]: version conflict, document already exists (current version [1])"
    )
    assert ok["status"] == 201
    assert [r["_id"] for r in es.records] == ["same", "other"]


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Authorization": ""}, "missing authentication credentials for REST request [/_bulk]"),
        ({"Authorization": "ApiKey wrong"}, "unable to authenticate with provided credentials"),
        ({"Authorization": "Basic " + base64.b64encode(b"elastic:no").decode()},
         "unable to authenticate user [elastic] for REST request [/_bulk]"),
        ({"Authorization": "Bearer x"}, "unable to authenticate with provided credentials"),
    ],
)  # fmt: skip
def test_bad_credentials_get_security_exception(
    es: StrictCollector, headers: dict[str, str], reason: str
) -> None:
    merged = {k: v for k, v in {**NDJSON, **headers}.items() if v}
    body = ndjson({"create": {"_index": "l"}}, {"m": 1})
    answer = requests.post(es.url, data=body, headers=merged, timeout=TIMEOUT)
    status, kind, text = error_of(answer)
    assert (status, kind) == (401, "security_exception")
    assert text.startswith(reason)
    assert "ApiKey" in answer.headers["WWW-Authenticate"]
    assert es.records == []


@pytest.mark.parametrize(
    ("content_type", "error"),
    [(None, "Content-Type header is missing"),
     ("text/plain", "Content-Type header [text/plain] is not supported")],
)  # fmt: skip
def test_content_type_is_checked(es: StrictCollector, content_type: str | None, error: str) -> None:
    headers = {"Authorization": NDJSON["Authorization"]}
    if content_type:
        headers["Content-Type"] = content_type
    answer = requests.post(es.url, data=b"{}\n", headers=headers, timeout=TIMEOUT)
    assert answer.status_code == 406
    assert answer.json() == {"error": error, "status": 406}


def test_wrong_path_and_method(es: StrictCollector) -> None:
    answer = bulk(es, ndjson({"create": {}}, {}), "/logs/_doc")
    assert (answer.status_code, answer.json()) == (
        400, {"error": "no handler found for uri [/logs/_doc] and method [POST]"})  # fmt: skip
    answer = requests.get(es.url, headers=NDJSON, timeout=TIMEOUT)
    assert answer.status_code == 405
    assert answer.json()["error"] == (
        "Incorrect HTTP method for uri [/_bulk] and method [GET], allowed: [POST, PUT]"
    )


@pytest.mark.parametrize(
    ("body", "kind", "reason"),
    [
        (b"", "action_request_validation_exception", "Validation Failed: 1: no requests added;"),
        (b'{"create":{"_index":"l"}}\n{"m":1}', "illegal_argument_exception",
         "The bulk request must be terminated by a newline [\\n]"),
        (b'{"create":{"_index":"l"}}\n', "illegal_argument_exception",
         "The bulk request must be terminated by a newline [\\n]"),
        (b'{"insert":{"_index":"l"}}\n{}\n', "illegal_argument_exception",
         "Malformed action/metadata line [1], expected one of [create, delete, index, update] "
         "but found [insert]"),
        (b'"create"\n{}\n', "illegal_argument_exception",
         "Malformed action/metadata line [1], expected START_OBJECT or END_OBJECT but found "
         "[VALUE_STRING]"),
        (b'{"create":{"_index":"l","colour":"red"}}\n{}\n', "illegal_argument_exception",
         "Action/metadata line [1] contains an unknown parameter [colour]"),
        (b'{"create":{}}\n{"m":1}\n', "action_request_validation_exception",
         "Validation Failed: 1: index is missing;"),
    ],
)  # fmt: skip
def test_malformed_bodies_are_refused_whole(
    es: StrictCollector, body: bytes, kind: str, reason: str
) -> None:
    assert error_of(bulk(es, body)) == (400, kind, reason)
    assert es.records == []


def test_body_over_the_size_limit_gets_413() -> None:
    with StrictCollector(Elasticsearch(max_content_length=100)) as fake:
        answer = bulk(fake, ndjson({"create": {"_index": "l"}}, {"m": "x" * 200}))
        assert (answer.status_code, answer.content) == (413, b"")
        assert bulk(fake, ndjson({"create": {"_index": "l"}}, {"m": 1})).status_code == 200


def test_source_that_is_not_an_object_is_a_mapper_parsing_item(es: StrictCollector) -> None:
    doc = bulk(es, b'{"create":{"_index":"l"}}\n"just text"\n').json()
    assert doc["errors"] is True
    item = doc["items"][0]["create"]
    assert (item["status"], item["error"]["type"]) == (400, "mapper_parsing_exception")


def test_scripted_item_failures(es: StrictCollector) -> None:
    es.play("rejected", items=[1])
    es.play("mapper_parsing", items=[0], reason="failed to parse field [n] of type [long]")
    body = ndjson(*[line for n in range(3) for line in ({"create": {"_index": "l"}}, {"n": n})])
    doc = bulk(es, body).json()
    assert doc["errors"] is True
    assert [i["create"]["status"] for i in doc["items"]] == [201, 429, 201]
    rejected = doc["items"][1]["create"]["error"]
    assert rejected["type"] == "es_rejected_execution_exception"
    assert rejected["reason"].startswith("rejected execution of coordinating operation")
    doc = bulk(es, body).json()
    assert [i["create"]["status"] for i in doc["items"]] == [400, 201, 201]
    assert doc["items"][0]["create"]["error"] == {
        "type": "mapper_parsing_exception",
        "reason": "failed to parse field [n] of type [long]",
    }
    assert [r["source"]["n"] for r in es.records] == [0, 2, 1, 2]


def test_scripted_whole_request_answers(es: StrictCollector) -> None:
    es.play("error", status=429, type="es_rejected_execution_exception", reason="busy")
    es.play("error")
    es.play("too_large")
    body = ndjson({"create": {"_index": "l"}}, {"m": 1})
    assert error_of(bulk(es, body)) == (429, "es_rejected_execution_exception", "busy")
    assert error_of(bulk(es, body))[:2] == (503, "unavailable_shards_exception")
    assert bulk(es, body).status_code == 413
    assert es.records == []
    assert bulk(es, body).json()["errors"] is False
    assert len(es.records) == 1
