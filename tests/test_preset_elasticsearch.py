"""The ``elasticsearch`` preset (alias ``opensearch``) against the strict
``_bulk`` fake on 127.0.0.1: the exact documents stored, per-item verdicts
(429 and 5xx retried alone, mapper errors rejected with their reason, 409
on a retry counted delivered), the idempotent retry of a batch whose
answer was lost, 413 splits, auth, and the options' checks.

Tests that need one request to hold a known set of records set
``batch_size`` to that count and a long ``flush_interval``: the batch is
due the moment the last record is queued, never on a timer.
"""

from __future__ import annotations

import base64
import json
import logging
import logging.config
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

import logdrain
from logdrain.presets import Answer, get
from logdrain.presets import elasticsearch as es_preset
from logdrain.testing import BATCH_ID_HEADER
from logdrain.testing.dialects import Elasticsearch, StrictCollector

pytestmark = pytest.mark.timeout(120)

FAST: dict[str, Any] = {"backoff_initial": 0.01, "backoff_max": 0.05, "flush_interval": 0.05}
#: One request for exactly ``batch_size`` records (see the module doc).
HELD: dict[str, Any] = {**FAST, "flush_interval": 30.0, "concurrency": 1}
KEY = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
FILTERED = "filter_path=errors,items.*.status,items.*.error.type,items.*.error.reason"
RFC3339_MICROS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
MAPPER_REASON = (
    "failed to parse field [n] of type [long] in document with id 'x'. "
    "Preview of field's value: 'abc'"
)


@pytest.fixture
def es() -> Iterator[StrictCollector]:
    with StrictCollector(Elasticsearch()) as fake:
        yield fake


def drain_for(url: str, **settings: Any) -> logdrain.Drain:
    merged = {**FAST, "preset": "elasticsearch", "capture_crashes": False, **settings}
    return logdrain.Drain(url, **merged)


def submit(drain: logdrain.Drain, count: int) -> None:
    for n in range(count):
        drain.submit({"message": f"r{n}", "n": n})


def bulk_lines(body: bytes) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(action, source) pairs of one NDJSON bulk body."""
    assert body.endswith(b"\n")
    lines = [json.loads(line) for line in body[:-1].split(b"\n")]
    return list(zip(lines[::2], lines[1::2], strict=True))


def messages(fake: StrictCollector) -> list[str]:
    return sorted(r["source"]["message"] for r in fake.records)


# -- what is stored --------------------------------------------------------------------------


def test_dictconfig_alone_stores_exact_documents(es: StrictCollector) -> None:
    """Configured from dictConfig only: ``create`` actions, ``_index`` from the
    date pattern in UTC, ``@timestamp`` of the record, a unique ``_id`` each,
    the answer asked for with ``filter_path``."""
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {
                "es": {
                    "class": "logdrain.DrainHandler",
                    "url": es.base_url,
                    "preset": "elasticsearch",
                    "index": "app-%Y.%m.%d",
                    "batch_size": "3",
                    "flush_interval": "30",
                    "backoff_initial": "0.01",
                    "backoff_max": "0.05",
                }
            },
            "loggers": {"test.es.dictconfig": {"handlers": ["es"], "level": "INFO"}},
        }
    )
    log = logging.getLogger("test.es.dictconfig")
    handler = log.handlers[0]
    assert isinstance(handler, logdrain.DrainHandler)
    try:
        log.info("one %s", "a", extra={"user": "ann"})
        log.warning("two")
        log.error("three", extra={"n": 3})
        assert handler.drain.flush(10)
        stats = handler.drain.stats()
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
    assert (stats.delivered, stats.rejected, stats.failed, stats.retries) == (3, 0, 0, 0)
    assert stats.balanced
    (request,) = es.requests
    assert request.method == "POST"
    assert request.path == f"/_bulk?{FILTERED}"
    assert request.headers["Content-Type"] == "application/x-ndjson"
    pairs = bulk_lines(request.body)
    assert [list(action) for action, _ in pairs] == [["create"]] * 3
    ids = [action["create"]["_id"] for action, _ in pairs]
    assert len(set(ids)) == 3 and all(ids)
    assert [r["_id"] for r in es.records] == ids
    expected: list[tuple[str, str, dict[str, Any]]] = [
        ("INFO", "one a", {"user": "ann"}),
        ("WARNING", "two", {}),
        ("ERROR", "three", {"n": 3}),
    ]
    for record, (level, message, extra) in zip(es.records, expected, strict=True):
        source = record["source"]
        stamp = source["@timestamp"]
        assert RFC3339_MICROS.fullmatch(stamp)
        day = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        assert record["op"] == "create"
        assert record["_index"] == f"app-{day:%Y.%m.%d}"
        assert source == {
            "@timestamp": stamp,
            "timestamp": stamp,
            "level": level,
            "logger": "test.es.dictconfig",
            "message": message,
            **extra,
        }


def test_index_pattern_follows_the_record_time_in_utc(es: StrictCollector) -> None:
    with drain_for(es.base_url, index="logs-%Y.%m.%d-%H") as drain:
        drain.submit({"timestamp": "2024-02-29T23:59:59.5+00:00", "message": "leap"})
        drain.submit({"timestamp": "2024-03-01T01:30:00+02:00", "message": "east"})
        assert drain.flush(10)
    by_message = {r["source"]["message"]: r for r in es.records}
    assert by_message["leap"]["_index"] == "logs-2024.02.29-23"
    assert by_message["leap"]["source"]["@timestamp"] == "2024-02-29T23:59:59.500000Z"
    assert by_message["east"]["_index"] == "logs-2024.02.29-23"  # 01:30 at +02:00 is 23:30 UTC
    assert by_message["east"]["source"]["@timestamp"] == "2024-02-29T23:30:00.000000Z"


def test_timestamp_is_always_the_records_time(es: StrictCollector) -> None:
    """A field named ``@timestamp`` in the record is replaced; renaming
    ``timestamp`` to it keeps the time once."""
    with drain_for(es.base_url, rename={"timestamp": "@timestamp"}) as drain:
        drain.submit({"timestamp": "2024-05-01T12:00:00.25Z", "message": "renamed"})
        assert drain.flush(10)
    with drain_for(es.base_url) as drain:
        drain.submit({"timestamp": "2024-05-01T12:00:00Z", "@timestamp": "soon", "message": "own"})
        assert drain.flush(10)
    renamed, own = (r["source"] for r in es.records)
    assert renamed == {"@timestamp": "2024-05-01T12:00:00.250000Z", "message": "renamed"}
    assert own["@timestamp"] == "2024-05-01T12:00:00.000000Z"


def test_frame_and_its_size() -> None:
    parts = [(b'{"create":{}}', b'{"a":1}'), (b'{"create":{"_id":"x"}}', b"{}")]
    body = es_preset.frame(parts)
    assert body == b'{"create":{}}\n{"a":1}\n{"create":{"_id":"x"}}\n{}\n'
    total = sum(len(key) + len(data) for key, data in parts)
    assert es_preset.framed_size(total, len(parts)) == len(body)


def test_default_index_is_a_data_stream_name(es: StrictCollector) -> None:
    with drain_for(es.base_url) as drain:
        drain.submit({"message": "x"})
        assert drain.flush(10)
    assert [r["_index"] for r in es.records] == ["logs-logdrain-default"]


def test_a_url_with_its_own_path_gets_the_whole_answer(es: StrictCollector) -> None:
    """No path appended, no filter_path: the unfiltered answer is judged alike."""
    es.play("rejected", items=[1])
    with drain_for(es.base_url + "/tenant-logs/_bulk", batch_size=3, **HELD) as drain:
        submit(drain, 3)
        assert drain.flush(10)
        stats = drain.stats()
    assert (stats.delivered, stats.retries) == (3, 1)
    assert [r.path for r in es.requests] == ["/tenant-logs/_bulk"] * 2
    assert messages(es) == ["r0", "r1", "r2"]


def test_gzip_bodies_are_taken(es: StrictCollector) -> None:
    with drain_for(es.base_url, compress="gzip") as drain:
        submit(drain, 2)
        assert drain.flush(10)
        assert drain.stats().delivered == 2
    assert es.requests[0].headers["Content-Encoding"] == "gzip"
    assert messages(es) == ["r0", "r1"]


# -- per-item verdicts -----------------------------------------------------------------------


def test_item_failures_settle_each_record_exactly(
    es: StrictCollector, capfd: pytest.CaptureFixture[str]
) -> None:
    """One answer: items 1 and 4 answered 429, item 5 503 (sent again, alone,
    same _ids and batch id), item 2 a mapper_parsing_exception (rejected,
    its reason on stderr), the rest stored by the first request."""
    es.play("items", rejected=[1, 4], unavailable=[5], mapper_parsing=[2], reason=MAPPER_REASON)
    with drain_for(es.base_url, batch_size=7, **HELD) as drain:
        submit(drain, 7)
        assert drain.flush(10)
        stats = drain.stats()
    assert (stats.delivered, stats.rejected, stats.failed, stats.retries) == (6, 1, 0, 1)
    assert stats.balanced and stats.in_flight == 0
    first, second = es.requests
    assert first.record_count == 7 and second.record_count == 3
    sent_first, sent_again = bulk_lines(first.body), bulk_lines(second.body)
    assert [s["message"] for _, s in sent_again] == ["r1", "r4", "r5"]
    assert [a["create"]["_id"] for a, _ in sent_again] == [
        sent_first[i][0]["create"]["_id"] for i in (1, 4, 5)
    ]
    assert first.headers[BATCH_ID_HEADER] == second.headers[BATCH_ID_HEADER]
    stored = [r["source"]["message"] for r in es.records]
    assert stored == ["r0", "r3", "r6", "r1", "r4", "r5"]  # each once; r2 never
    err = capfd.readouterr().err
    assert "1 record(s) rejected" in err
    assert f"mapper_parsing_exception: {MAPPER_REASON}" in err


def test_items_refused_on_every_attempt_fail_after_max_attempts(
    es: StrictCollector, capfd: pytest.CaptureFixture[str]
) -> None:
    es.play("rejected", items=[0], times=3)  # the retries hold only record 0
    with drain_for(es.base_url, batch_size=3, max_attempts=3, **HELD) as drain:
        submit(drain, 3)
        assert drain.flush(10)
        stats = drain.stats()
    assert (stats.delivered, stats.rejected, stats.failed, stats.retries) == (2, 0, 1, 2)
    assert stats.balanced
    assert [r.record_count for r in es.requests] == [3, 1, 1]
    assert messages(es) == ["r1", "r2"]
    assert "es_rejected_execution_exception" in capfd.readouterr().err


@pytest.mark.parametrize(
    "lost",
    [{}, {"cut": True}, {"pad": es_preset.RESPONSE_CAP}],
    ids=["502-after-storing", "200-cut-halfway", "200-longer-than-response_cap"],
)
def test_a_lost_answer_is_retried_and_409s_count_delivered(
    es: StrictCollector, lost: dict[str, Any]
) -> None:
    """Elasticsearch stored the batch but its answer never arrived whole: the
    same body goes again, every ``create`` is a 409 for logdrain's own
    ``_id``, and each record counts delivered once and is stored once."""
    es.play("answer_lost", **lost)
    with drain_for(es.base_url, batch_size=4, **HELD) as drain:
        submit(drain, 4)
        assert drain.flush(10)
        stats = drain.stats()
    assert (stats.delivered, stats.rejected, stats.failed, stats.retries) == (4, 0, 0, 1)
    assert stats.balanced
    first, second = es.requests
    assert first.body == second.body  # same _ids: idempotent
    assert second.status == 200
    assert [r["source"]["message"] for r in es.records] == ["r0", "r1", "r2", "r3"]
    assert len({r["_id"] for r in es.records}) == 4


# -- whole-request verdicts ------------------------------------------------------------------


def test_413_splits_with_ids_kept_and_a_lone_record_too_large_is_rejected(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with StrictCollector(Elasticsearch(max_content_length=3000)) as fake:
        with drain_for(fake.base_url, batch_size=5, **HELD) as drain:
            for n in range(4):
                drain.submit({"message": f"r{n}", "pad": "x" * 600})
            drain.submit({"message": "huge", "pad": "y" * 4000})
            assert drain.flush(10)
            stats = drain.stats()
        assert (stats.delivered, stats.rejected, stats.failed) == (4, 1, 0)
        assert stats.balanced
        # 5 -> [2] + [3]; 3 -> [1] + [2]; 2 -> [1] + [the huge one, alone, still 413]
        assert [(r.status, len(bulk_lines(r.body))) for r in fake.requests] == [
            (413, 5), (200, 2), (413, 3), (200, 1), (413, 2), (200, 1), (413, 1)
        ]  # fmt: skip
        first_ids = [a["create"]["_id"] for a, _ in bulk_lines(fake.requests[0].body)]
        stored_ids = [r["_id"] for r in fake.records]
        assert sorted(stored_ids) == sorted(first_ids[:4])  # split halves keep their _ids
        assert sorted(r["source"]["message"] for r in fake.records) == ["r0", "r1", "r2", "r3"]
    err = capfd.readouterr().err
    assert "1 record(s) rejected" in err and "http.max_content_length" in err


@pytest.mark.parametrize(
    ("status", "kind"),
    [(429, "es_rejected_execution_exception"), (503, "unavailable_shards_exception")],
)
def test_busy_or_unavailable_cluster_is_retried(
    es: StrictCollector, status: int, kind: str
) -> None:
    es.play("error", status=status, type=kind, reason="busy")
    with drain_for(es.base_url, batch_size=2, **HELD) as drain:
        submit(drain, 2)
        assert drain.flush(10)
        stats = drain.stats()
    assert (stats.delivered, stats.retries, stats.failed) == (2, 1, 0)
    assert [r.status for r in es.requests] == [status, 200]
    assert messages(es) == ["r0", "r1"]


def test_a_refused_request_is_rejected_with_elasticsearchs_reason(
    es: StrictCollector, capfd: pytest.CaptureFixture[str]
) -> None:
    with drain_for(es.base_url + "/_bulk?flavour=mint") as drain:
        submit(drain, 2)
        assert drain.flush(10)
        stats = drain.stats()
    assert (stats.delivered, stats.rejected, stats.retries) == (0, 2, 0)
    assert stats.balanced and es.records == []
    err = capfd.readouterr().err
    assert (
        "illegal_argument_exception: request [/_bulk] contains unrecognized parameter: [flavour]"
        in err
    )


# -- auth ------------------------------------------------------------------------------------


def test_api_key_is_sent_in_its_scheme_and_never_shown(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with StrictCollector(Elasticsearch(api_keys=[KEY])) as fake:
        with drain_for(fake.base_url, token=KEY) as drain:
            submit(drain, 1)
            assert drain.flush(10)
            assert drain.stats().delivered == 1
            assert KEY not in repr(drain) and KEY not in repr(drain.settings)
        assert fake.requests[0].headers["Authorization"] == f"ApiKey {KEY}"
        wrong = "d3Jvbmc6a2V5LXRoYXQtaXMtbm90LWtub3du"
        with drain_for(fake.base_url, token=wrong) as drain:
            submit(drain, 2)
            assert drain.flush(10)
            stats = drain.stats()
        assert (stats.delivered, stats.rejected, stats.retries) == (0, 2, 0)
        assert stats.balanced
    err = capfd.readouterr().err
    assert "security_exception: unable to authenticate with provided credentials" in err
    assert KEY not in err and wrong not in err


def test_basic_auth_with_the_auth_setting() -> None:
    with StrictCollector(Elasticsearch(users={"elastic": "s3cret-pw"})) as fake:
        with drain_for(fake.base_url, auth=("elastic", "s3cret-pw")) as drain:
            submit(drain, 1)
            assert drain.flush(10)
            assert drain.stats().delivered == 1
        header = fake.requests[0].headers["Authorization"]
    assert header == "Basic " + base64.b64encode(b"elastic:s3cret-pw").decode()


# -- the alias and the options ---------------------------------------------------------------


def test_opensearch_alias_is_the_same_preset(es: StrictCollector) -> None:
    assert get("opensearch") is get("elasticsearch") is es_preset.PRESET
    with drain_for(es.base_url, preset="opensearch", index="os-%Y") as drain:
        submit(drain, 2)
        assert drain.flush(10)
        assert drain.stats().delivered == 2
    assert es.requests[0].path == f"/_bulk?{FILTERED}"
    assert {r["_index"][:3] for r in es.records} == {"os-"}


def test_index_from_the_environment(es: StrictCollector, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGDRAIN_INDEX", "from-env")
    with drain_for(es.base_url) as drain:
        submit(drain, 1)
        assert drain.flush(10)
    assert [r["_index"] for r in es.records] == ["from-env"]


@pytest.mark.parametrize(
    ("index", "says"),
    [
        ("Logs", "upper-case"),
        ("logs-%b", "uses %b"),
        ("logs-%", "a lone %"),
        ("<logs-{now/d}>", "strftime directives"),
        ("logs app", "' '"),
        ("_logs", "starts with '_'"),
        ("", "index is empty"),
        (3, "must be a string"),
        ("x" * 256, "255 bytes"),
    ],
)
def test_wrong_index_fails_at_construction_naming_the_option(index: Any, says: str) -> None:
    with pytest.raises(logdrain.ConfigError) as info:
        drain_for("http://127.0.0.1:9", index=index)
    assert info.value.field == "index"
    assert says in str(info.value)


def test_unknown_option_names_the_preset() -> None:
    with pytest.raises(logdrain.ConfigError) as info:
        drain_for("http://127.0.0.1:9", indx="logs")
    assert info.value.field == "indx"
    assert "did you mean 'index'" in str(info.value)


def test_defaults_and_limits() -> None:
    drain = drain_for("http://127.0.0.1:9")
    try:
        s = drain.settings
        assert (s.batch_bytes, s.batch_size) == (5 * 1024 * 1024, 1600)
        assert s.preset.response_cap == 4 * 1024 * 1024 and s.preset.uses_record_id
    finally:
        drain.close(0)


# -- the classifier on answers built by hand -------------------------------------------------


def answer(
    status: int, body: Any, *, sent: int = 1, attempt: int = 1, complete: bool = True
) -> Answer:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Answer(status, "", {}, raw, complete, sent, attempt)


def items(*statuses: int, error: str = "version_conflict_engine_exception") -> dict[str, Any]:
    out = []
    for status in statuses:
        result: dict[str, Any] = {"status": status}
        if status >= 300:
            result["error"] = {"type": error, "reason": f"reason {status}"}
        out.append({"create": result})
    return {"errors": True, "items": out}


def test_409_is_delivered_only_on_a_retry_of_the_body() -> None:
    first = es_preset.classify(answer(200, items(201, 409), sent=2, attempt=1))
    assert first.outcome == "partial" and first.records == ("delivered", "rejected")
    assert "version_conflict_engine_exception: reason 409" in first.reason
    again = es_preset.classify(answer(200, items(409, 409), sent=2, attempt=2))
    assert again.outcome == "delivered"


@pytest.mark.parametrize(
    ("made", "outcome"),
    [
        (answer(200, {"errors": False}, sent=3), "delivered"),
        (answer(200, items(201, 429), sent=2, complete=False), "retry"),
        (answer(200, b'{"errors":true,"items":[{"create":', sent=2), "retry"),
        (answer(200, b"<html>proxy</html>"), "retry"),
        (answer(200, items(201), sent=2), "retry"),  # an item missing: positions unknown
        (answer(413, b""), "split"),
        (answer(502, b"bad gateway"), "retry"),
        (answer(401, {"error": {"type": "security_exception", "reason": "no"}, "status": 401}),
         "rejected"),
        (answer(406, {"error": "Content-Type header [x] is not supported", "status": 406}),
         "rejected"),
    ],
)  # fmt: skip
def test_classifier_outcomes(made: Answer, outcome: str) -> None:
    assert es_preset.classify(made).outcome == outcome


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        (b'{"errors":false,"items":[{"create":{"status":201}}]}', "delivered"),
        (b'{"took":3,"errors":false,"items":[]}  ', "delivered"),
        (b' {\n  "took" : 30,\n  "errors" : false,\n  "items" : [ ]\n}\n', "delivered"),
        (b'{"errors":true,"items":[{"create":{"status":201}}]}', "retry"),  # too few items
        (b'{"took":3,"ingest_took":1,"items":[],"errors":false}', "delivered"),  # parsed
        (b'{"items":[{"create":{"error":{"reason":"{\\"errors\\":false}"}}}]}', "retry"),
    ],
)
def test_an_answer_without_errors_is_told_from_its_start(body: bytes, outcome: str) -> None:
    """``{"errors":false`` at the start of the answer needs no parse of the
    items; any other answer is parsed as before."""
    assert es_preset.classify(answer(200, body, sent=2)).outcome == outcome


def test_classifier_reasons_name_type_and_reason() -> None:
    denied = es_preset.classify(
        answer(403, {"error": {"type": "security_exception", "reason": "action denied"}})
    )
    assert denied.reason == "security_exception: action denied"
    mixed = es_preset.classify(answer(200, items(400, 429, 201, 500, 400), sent=5))
    assert mixed.records == ("rejected", "retry", "delivered", "retry", "rejected")
    assert mixed.reason.startswith("2 item(s) rejected (first: ")
    assert "2 item(s) to send again" in mixed.reason


def test_structlog_recipe(es: StrictCollector) -> None:
    """The docs' structlog recipe: ``event`` renamed to ``message``."""
    structlog = pytest.importorskip("structlog")
    with drain_for(es.base_url, index="app-logs", rename={"event": "message"}) as drain:
        slog = structlog.wrap_logger(
            structlog.testing.ReturnLogger(),
            processors=[logdrain.DrainProcessor(drain), structlog.processors.JSONRenderer()],
        )
        slog.info("user signed in", user="bob")
        assert drain.flush(10)
    (record,) = es.records
    source = record["source"]
    assert record["_index"] == "app-logs"
    assert RFC3339_MICROS.fullmatch(source["@timestamp"])
    assert {k: source[k] for k in ("message", "level", "user")} == {
        "message": "user signed in",
        "level": "INFO",
        "user": "bob",
    }
