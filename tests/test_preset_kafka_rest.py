"""The ``kafka_rest`` preset against a strict fake Confluent REST Proxy: v2
and v3 produce, keys for partitioning, per-record errors retried alone or
rejected, and whole-request refusals."""

from __future__ import annotations

import json
import logging
import logging.config
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

import logdrain
from logdrain.presets import Answer, get
from logdrain.testing.dialects._base import StrictCollector
from logdrain.testing.dialects._kafka_rest import FATAL, KafkaRest, murmur2, partition_for

pytestmark = pytest.mark.timeout(120)

FAST: dict[str, Any] = {"backoff_initial": 0.01, "backoff_max": 0.05, "flush_interval": 0.05}
#: Records wait for flush() (which sends them at once): one request for
#: everything submitted together, whatever the machine's speed.
ONE_BATCH: dict[str, Any] = {**FAST, "flush_interval": 30}
V2 = "application/vnd.kafka.json.v2+json"
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@pytest.fixture
def proxy() -> Iterator[StrictCollector]:
    with StrictCollector(KafkaRest(topics={"logs": 3})) as fake:
        yield fake


def _record(message: str, **extra: Any) -> dict[str, Any]:
    return {"level": "ERROR", "logger": "svc", "message": message, **extra}


def _messages(fake: StrictCollector) -> list[str]:
    return [r["value"]["message"] for r in fake.records]


def _placed(keys: list[bytes | None], partitions: int = 3) -> list[tuple[int, int]]:
    """(partition, offset) the proxy gives records with these keys, in order."""
    offsets: dict[int, int] = {}
    turn = 0
    out = []
    for key in keys:
        if key is None:
            partition, turn = turn % partitions, turn + 1
        else:
            partition = partition_for(key, partitions)
        out.append((partition, offsets.get(partition, 0)))
        offsets[partition] = offsets.get(partition, 0) + 1
    return out


# -- v2, from dictConfig alone --


def test_dictconfig_alone_produces_keyed_records(proxy: StrictCollector) -> None:
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {
                "kafka": {
                    "class": "logdrain.DrainHandler",
                    "url": proxy.base_url,
                    "preset": "kafka_rest",
                    "topic": "logs",
                    "key_field": "user",
                    **{k: str(v) for k, v in ONE_BATCH.items()},
                }
            },
            "loggers": {"svc.orders": {"handlers": ["kafka"], "level": "INFO", "propagate": False}},
        }
    )
    log = logging.getLogger("svc.orders")
    handler = log.handlers[0]
    try:
        assert isinstance(handler, logdrain.DrainHandler)
        log.info("order placed", extra={"user": "u1", "order": 7})
        log.warning("payment slow", extra={"user": "u2"})
        log.info("order shipped", extra={"user": "u1"})
        log.error("no user here")
        assert handler.drain.flush(30)
        stats = handler.drain.stats()
    finally:
        log.removeHandler(handler)
        handler.close()
    (request,) = proxy.requests
    assert request.path == "/topics/logs"
    assert request.headers["Content-Type"] == V2
    assert request.headers["Accept"] == "application/vnd.kafka.v2+json"
    assert [r.get("key") for r in json.loads(request.body)["records"]] == ["u1", "u2", "u1", None]
    places = _placed([b'"u1"', b'"u2"', b'"u1"', None])
    expected: list[tuple[str | None, str, str, dict[str, Any]]] = [
        ("u1", "INFO", "order placed", {"user": "u1", "order": 7}),
        ("u2", "WARNING", "payment slow", {"user": "u2"}),
        ("u1", "INFO", "order shipped", {"user": "u1"}),
        (None, "ERROR", "no user here", {}),
    ]
    assert len(proxy.records) == 4
    for stored, (key, level, message, extra), (partition, offset) in zip(
        proxy.records, expected, places, strict=True
    ):
        value = dict(stored["value"])
        assert STAMP.match(value.pop("timestamp"))
        assert stored == {
            "api": "v2", "topic": "logs", "partition": partition, "offset": offset,
            "key": key, "value": stored["value"], "timestamp": None,
        }  # fmt: skip
        assert value == {"level": level, "logger": "svc.orders", "message": message, **extra}
    assert proxy.records[0]["partition"] == proxy.records[2]["partition"]  # same key, same place
    assert (stats.submitted, stats.delivered, stats.rejected, stats.pending) == (4, 4, 0, 0)
    assert stats.balanced


def test_a_key_field_that_is_not_a_string_is_keyed_by_its_json(proxy: StrictCollector) -> None:
    with logdrain.Drain(
        proxy.base_url, preset="kafka_rest", topic="logs", key_field="id", **FAST
    ) as drain:
        drain.submit(_record("a", id=42))
        drain.submit(_record("b", id={"n": 1}))
        drain.submit(_record("c", id=None))
        assert drain.flush(30)
    assert [r["key"] for r in proxy.records] == ["42", '{"n":1}', None]


def test_the_topic_is_required_and_checked_at_construction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(logdrain.ConfigError) as info:
        logdrain.Drain("http://127.0.0.1:9", preset="kafka_rest", capture_crashes=False)
    assert "topic" in str(info.value)
    assert "required" in str(info.value)
    for bad in ("has/slash", "", "x" * 250, ".."):
        with pytest.raises(logdrain.ConfigError) as info:
            logdrain.Drain(
                "http://127.0.0.1:9", preset="kafka_rest", topic=bad, capture_crashes=False
            )
        assert info.value.field == "topic"
    with pytest.raises(logdrain.ConfigError) as info:
        logdrain.Drain(
            "http://127.0.0.1:9",
            preset="kafka_rest",
            topic="t",
            cluster="a/b",
            capture_crashes=False,
        )
    assert info.value.field == "cluster"
    monkeypatch.setenv("LOGDRAIN_TOPIC", "from-env")
    with logdrain.Drain("http://127.0.0.1:9", preset="kafka_rest", capture_crashes=False) as drain:
        assert drain.settings.url == "http://127.0.0.1:9/topics/from-env"


# -- per-record and whole-request errors --


def test_a_retriable_record_is_sent_again_alone_and_a_fatal_one_rejected(
    proxy: StrictCollector, capfd: pytest.CaptureFixture[str]
) -> None:
    proxy.play("record_errors", retriable=[1], fatal=[2])
    with logdrain.Drain(proxy.base_url, preset="kafka_rest", topic="logs", **ONE_BATCH) as drain:
        for i in range(4):
            drain.submit(_record(f"m{i}"))
        assert drain.flush(30)
        stats = drain.stats()
    first, second = proxy.requests
    assert [r["value"]["message"] for r in json.loads(first.body)["records"]] == [
        "m0",
        "m1",
        "m2",
        "m3",
    ]
    assert [r["value"]["message"] for r in json.loads(second.body)["records"]] == ["m1"]
    assert _messages(proxy) == ["m0", "m3", "m1"]  # m1 once, m2 never
    assert (stats.delivered, stats.rejected, stats.failed, stats.retries) == (3, 1, 0, 1)
    assert stats.pending == 0
    assert stats.balanced
    err = capfd.readouterr().err
    assert "1 record(s) rejected" in err
    assert FATAL in err and "error_code 50002" in err


def test_an_unknown_topic_is_rejected_with_the_proxys_message(
    proxy: StrictCollector, capfd: pytest.CaptureFixture[str]
) -> None:
    with logdrain.Drain(proxy.base_url, preset="kafka_rest", topic="nope", **ONE_BATCH) as drain:
        drain.submit(_record("a"))
        drain.submit(_record("b"))
        assert drain.flush(30)
        stats = drain.stats()
    assert [(r.path, r.status) for r in proxy.requests] == [("/topics/nope", 404)]
    assert (stats.delivered, stats.rejected, stats.retries) == (0, 2, 0)
    assert stats.balanced
    err = capfd.readouterr().err
    assert "2 record(s) rejected" in err
    assert "Topic not found. (error_code 40401)" in err


def test_an_unavailable_proxy_is_retried_and_a_too_large_body_split(
    proxy: StrictCollector,
) -> None:
    proxy.play("unavailable")
    proxy.play("too_large")
    with logdrain.Drain(proxy.base_url, preset="kafka_rest", topic="logs", **ONE_BATCH) as drain:
        for i in range(4):
            drain.submit(_record(f"m{i}"))
        assert drain.flush(30)
        stats = drain.stats()
    assert [r.status for r in proxy.requests] == [503, 413, 200, 200]
    assert [len(json.loads(r.body)["records"]) for r in proxy.requests] == [4, 4, 2, 2]
    assert _messages(proxy) == ["m0", "m1", "m2", "m3"]
    assert (stats.delivered, stats.rejected, stats.retries) == (4, 0, 1)
    assert stats.balanced


def test_a_rate_limited_request_is_retried(proxy: StrictCollector) -> None:
    proxy.play("rate_limited", retry_after=0)
    with logdrain.Drain(proxy.base_url, preset="kafka_rest", topic="logs", **FAST) as drain:
        drain.submit(_record("later"))
        assert drain.flush(30)
        stats = drain.stats()
    assert [r.status for r in proxy.requests] == [429, 200]
    assert (stats.delivered, stats.retries) == (1, 1)


# -- v3 --


def test_v3_with_a_cluster_streams_records_as_concatenated_json(proxy: StrictCollector) -> None:
    with logdrain.Drain(
        proxy.base_url,
        preset="kafka_rest",
        topic="logs",
        cluster="lkc-abc123",
        key_field="user",
        **ONE_BATCH,
    ) as drain:
        drain.submit({**_record("a", user="u1"), "timestamp": "2024-05-01T10:00:00.123456Z"})
        drain.submit({**_record("b"), "timestamp": "2024-05-01T10:00:01.500000Z"})
        assert drain.flush(30)
        stats = drain.stats()
    (request,) = proxy.requests
    assert request.path == "/v3/clusters/lkc-abc123/topics/logs/records"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"
    sent = [json.loads(line) for line in request.body.split(b"\n")]
    document = {**_record("a", user="u1"), "timestamp": "2024-05-01T10:00:00.123456Z"}
    assert sent[0] == {
        "key": {"type": "JSON", "data": "u1"},
        "value": {"type": "JSON", "data": document},
        "timestamp": "2024-05-01T10:00:00.123Z",
    }
    assert "key" not in sent[1]
    (p1, o1), (p2, o2) = _placed([b'"u1"', None])
    placed = [
        (r["api"], r["partition"], r["offset"], r["key"], r["timestamp"]) for r in proxy.records
    ]
    assert placed == [
        ("v3", p1, o1, "u1", "2024-05-01T10:00:00.123Z"),
        ("v3", p2, o2, None, "2024-05-01T10:00:01.500Z"),
    ]
    assert _messages(proxy) == ["a", "b"]
    assert (stats.delivered, stats.rejected) == (2, 0)
    assert stats.balanced
    # Confluent Server and Cloud: the whole /kafka/v3/... URL, used as it is.
    whole = proxy.base_url + "/kafka/v3/clusters/lkc-abc123/topics/logs/records"
    with logdrain.Drain(
        whole, preset="kafka_rest", topic="logs", cluster="lkc-abc123", **FAST
    ) as drain:
        drain.submit(_record("c"))
        assert drain.flush(30)
        assert drain.stats().delivered == 1
    assert proxy.requests[-1].path == "/kafka/v3/clusters/lkc-abc123/topics/logs/records"
    assert _messages(proxy) == ["a", "b", "c"]


def test_v3_per_record_errors_and_an_unknown_cluster(
    proxy: StrictCollector, capfd: pytest.CaptureFixture[str]
) -> None:
    proxy.play("record_errors", retriable=[0], fatal=[1])
    v3 = {"preset": "kafka_rest", "topic": "logs", "cluster": "lkc-abc123", **ONE_BATCH}
    with logdrain.Drain(proxy.base_url, **v3) as drain:
        for i in range(3):
            drain.submit(_record(f"m{i}"))
        assert drain.flush(30)
        stats = drain.stats()
    assert _messages(proxy) == ["m2", "m0"]
    assert [len(r.body.split(b"\n")) for r in proxy.requests] == [3, 1]
    assert (stats.delivered, stats.rejected, stats.retries) == (2, 1, 1)
    assert stats.balanced
    assert FATAL in capfd.readouterr().err
    with logdrain.Drain(proxy.base_url, **{**v3, "cluster": "other"}) as drain:
        drain.submit(_record("lost"))
        assert drain.flush(30)
        assert drain.stats().rejected == 1
    assert "Cluster other cannot be found. (error_code 404)" in capfd.readouterr().err


def test_the_classifier_reads_v2_legacy_codes_and_v3_reports() -> None:
    classify = get("kafka_rest").classify

    def judge(status: int, body: Any, sent: int) -> tuple[str, tuple[str, ...], str]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        verdict = classify(Answer(status, "", {}, raw, True, sent))
        return verdict.outcome, verdict.records, verdict.reason

    ok = {"partition": 0, "offset": 1, "error_code": None, "error": None}
    legacy = {
        "offsets": [ok, {"error_code": 1, "error": "bad"}, {"error_code": 2, "error": "later"}]
    }
    assert judge(200, legacy, 3) == (
        "partial",
        ("delivered", "rejected", "retry"),
        "bad (error_code 1); 1 to send again: later (error_code 2)",
    )
    assert judge(200, {"offsets": [ok, ok]}, 2)[0] == "delivered"
    reports = (
        b'{"error_code":200,"offset":0}\r\n'
        b'{"error_code":40403,"message":"gone"}\r\n{"error_code":50302}'
    )
    assert judge(200, reports, 4)[:2] == ("partial", ("delivered", "rejected", "retry", "retry"))
    assert judge(200, b'{"error_code":200}\r\n{"error_c', 2)[1] == ("delivered", "retry")
    assert judge(200, b"<html>proxy</html>", 1)[0] == "retry"
    assert judge(422, {"error_code": 42201, "message": "no schema"}, 1) == (
        "rejected", (), "no schema (error_code 42201)",
    )  # fmt: skip
    assert judge(500, {"error_code": 50001, "message": "zk"}, 1)[0] == "retry"
    assert judge(413, b"", 1)[0] == "split"


def test_the_counting_shortcut_agrees_with_parsing_the_answer() -> None:
    """Compact answers (the proxy's own spelling) are judged by counting keys
    when every record was produced; each case below, compact or spaced (which
    always takes the parsing path), gets the same verdict."""
    classify = get("kafka_rest").classify
    ok = {"partition": 0, "offset": 1, "error_code": None, "error": None}
    bare = {"partition": 0, "offset": 1}  # the proxy may leave the nulls out
    v3_ok = {"error_code": 200, "cluster_id": "c", "partition_id": 0, "offset": 3}
    cases: list[tuple[Any, int]] = [
        ({"key_schema_id": None, "offsets": [ok, ok, ok]}, 3),
        ({"offsets": [bare, bare]}, 2),
        ({"offsets": [ok, {"error_code": 2, "error": "again"}, ok]}, 3),
        ({"offsets": [ok, {"partition": None, "offset": None, "error_code": 50002}]}, 2),
        ({"offsets": [ok, ok]}, 3),  # a report missing: sent again
        ({"offsets": [ok, ok, ok]}, 2),
        ({"offsets": [{**ok, "error": 'a "error_code":1 in text'}]}, 1),
        ([v3_ok, v3_ok], 2),
        ([v3_ok, {"error_code": 429, "message": "slow down"}], 2),
        ([v3_ok], 2),
    ]

    def text(body: Any, compact: bool) -> bytes:
        seps = (",", ":") if compact else (", ", ": ")
        if isinstance(body, list):  # v3: concatenated reports
            return b"\r\n".join(json.dumps(r, separators=seps).encode() for r in body)
        return json.dumps(body, separators=seps).encode()

    for body, sent in cases:
        verdicts = [
            classify(Answer(200, "", {}, text(body, compact), True, sent))
            for compact in (True, False)
        ]
        assert verdicts[0] == verdicts[1], (body, sent)
    assert classify(Answer(200, "", {}, text(cases[0][0], True), True, 3)).outcome == "delivered"
    assert classify(Answer(200, "", {}, text(cases[2][0], True), True, 3)).outcome == "partial"


# -- the fake itself --


def _post(fake: StrictCollector, path: str, body: bytes, **headers: str) -> requests.Response:
    return requests.post(fake.base_url + path, data=body, headers=headers, timeout=10)


def test_the_fake_v2_refuses_what_the_proxy_refuses(proxy: StrictCollector) -> None:
    good = json.dumps({"records": [{"value": {"a": 1}}]}).encode()
    cases = [
        ({"Content-Type": "application/json"}, good, 415, 415),
        ({"Content-Type": V2, "Accept": "text/html"}, good, 406, 406),
        ({"Content-Type": V2}, b"{nope", 400, 400),
        ({"Content-Type": V2}, b'{"records": []}', 422, 422),
        ({"Content-Type": V2}, b'{"records": [{"valu": 1}]}', 422, 422),
        ({"Content-Type": V2}, b'{"records": [{"value": 1}], "extra": 1}', 422, 422),
        ({"Content-Type": V2}, b'{"records": [{"value": 1, "partition": 3}]}', 404, 40402),
    ]
    for headers, body, status, code in cases:
        answer = _post(proxy, "/topics/logs", body, **headers)
        assert (answer.status_code, answer.json()["error_code"]) == (status, code), body
    assert _post(proxy, "/nowhere", good, **{"Content-Type": V2}).status_code == 404
    assert requests.get(proxy.base_url + "/topics/logs", timeout=10).status_code == 405
    answer = _post(proxy, "/topics/logs", good, **{"Content-Type": V2})
    assert answer.headers["Content-Type"].startswith("application/vnd.kafka.v2+json")
    assert answer.json() == {
        "key_schema_id": None,
        "value_schema_id": None,
        "offsets": [{"partition": 0, "offset": 0, "error_code": None, "error": None}],
    }


def test_the_fake_v3_reports_per_record_and_stops_at_malformed_json(
    proxy: StrictCollector,
) -> None:
    path = "/v3/clusters/lkc-abc123/topics/logs/records"
    body = b"\n".join(
        [
            b'{"value": {"type": "STRING", "data": "s"}}',
            b'{"value": {"type": "BINARY", "data": "aGk="}, "partition_id": 1}',
            b'{"value": {"type": "BINARY", "data": "not base64!"}}',
            b'{"value": {"type": "AVRO", "data": 1}}',
            b'{"valeu": {}}',
            b'{"value": {"type": "JSON", "data": 1}, "timestamp": "yesterday"}',
            b'{"value": ',
            b'{"value": {"type": "JSON", "data": "never read"}}',
        ]
    )
    answer = _post(proxy, path, body, **{"Content-Type": "application/json"})
    assert answer.status_code == 200
    reports = [json.loads(line) for line in answer.content.split(b"\r\n") if line]
    assert [r["error_code"] for r in reports] == [200, 200, 400, 400, 400, 400, 400]
    assert reports[1]["partition_id"] == 1 and reports[1]["value"] == {"type": "BINARY", "size": 2}
    assert "Error processing JSON" in reports[-1]["message"]
    assert [r["value"] for r in proxy.records] == ["s", b"hi"]
    assert _post(proxy, path, body, **{"Content-Type": V2}).status_code == 415
    unknown = _post(
        proxy, path.replace("logs", "nope"), b"{}", **{"Content-Type": "application/json"}
    )
    assert (unknown.status_code, unknown.json()["error_code"]) == (404, 404)
    prefixed = _post(
        proxy,
        "/kafka" + path,
        b'{"value": {"type": "JSON", "data": 2}}',
        **{"Content-Type": "application/json"},
    )
    assert prefixed.json()["error_code"] == 200


def test_the_fake_partitions_like_kafka() -> None:
    # apache/kafka clients UtilsTest.testMurmur2.
    cases = {
        b"21": -973932308,
        b"foobar": -790332482,
        b"a-little-bit-long-string": -985981536,
        b"a-little-bit-longer-string": -1486304829,
        b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        b"abc": 479470107,
    }
    assert {key: murmur2(key) for key in cases} == cases
    assert partition_for(b"21", 10) == (-973932308 & 0x7FFFFFFF) % 10
