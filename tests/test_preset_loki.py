"""The ``loki`` preset against the strict Loki fake: streams, labels,
metadata, tenant, options, and how Loki's answers are settled."""

from __future__ import annotations

import json
import logging
import logging.config
import random
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests

import logdrain
from logdrain.presets import Answer, Context
from logdrain.presets.loki import (
    MAX_LABEL_VALUE_BYTES,
    PRESET,
    classify,
    frame,
    framed_size,
    nanoseconds,
    record,
)
from logdrain.testing.dialects._base import StrictCollector
from logdrain.testing.dialects._loki import Loki

pytestmark = pytest.mark.timeout(120)

FAST: dict[str, Any] = {"flush_interval": 0.05, "backoff_initial": 0.01, "backoff_max": 0.05}
#: Records logged before flush() go in one batch (flush sends at once).
ONE_BATCH: dict[str, Any] = {**FAST, "flush_interval": 30.0}


@pytest.fixture
def loki() -> Iterator[StrictCollector]:
    with StrictCollector(Loki()) as fake:
        yield fake


class Capture(logging.Filter):
    """Keeps every record the logger passes on (for created times)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.records.append(record)
        return True


def handler_of(logger: logging.Logger) -> logdrain.DrainHandler:
    (handler,) = logger.handlers
    assert isinstance(handler, logdrain.DrainHandler)
    return handler


def bodies(fake: StrictCollector) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in fake.requests if r.method == "POST"]


def assert_ns_matches(ts: str, created: float) -> None:
    assert ts.isdigit()
    assert abs(Decimal(ts) - Decimal(created) * 10**9) <= 1000  # within 1 us of created


# ---------------------------------------------------------------- dictConfig


def test_dictconfig_alone_ships_streams_by_level_with_tenant() -> None:
    name = "test.loki.dictconfig"
    with StrictCollector(Loki(multi_tenant=True)) as fake:
        logging.config.dictConfig(
            {
                "version": 1,
                "disable_existing_loggers": False,
                "handlers": {
                    "loki": {
                        "class": "logdrain.DrainHandler",
                        "preset": "loki",
                        "url": fake.base_url,
                        "labels": {"service": "pricing", "env": "prod"},
                        "tenant": "team-a",
                        **ONE_BATCH,
                    }
                },
                "loggers": {name: {"handlers": ["loki"], "level": "INFO", "propagate": False}},
            }
        )
        logger = logging.getLogger(name)
        capture = Capture()
        logger.addFilter(capture)
        handler = handler_of(logger)
        try:
            assert handler.drain.settings.url == fake.url  # the push path was added
            logger.info("priced %s", "A-1")
            logger.error("no price for %s", "B-2")
            logger.info("priced %s", "C-3")
            assert handler.drain.flush(10)
            stats = handler.drain.stats()
            assert (stats.delivered, stats.rejected, stats.failed) == (3, 0, 0)
            assert stats.balanced
        finally:
            logger.removeFilter(capture)
            logger.removeHandler(handler)
            handler.close()

    (request,) = fake.requests
    assert request.path == "/loki/api/v1/push"
    assert request.headers["X-Scope-OrgID"] == "team-a"
    assert request.headers["Content-Type"] == "application/json"
    (body,) = bodies(fake)
    # Two label sets -> two streams, in first-seen order, entries in log order.
    assert [s["stream"] for s in body["streams"]] == [
        {"env": "prod", "level": "INFO", "service": "pricing"},
        {"env": "prod", "level": "ERROR", "service": "pricing"},
    ]
    assert [len(s["values"]) for s in body["streams"]] == [2, 1]

    by_message = {json.loads(r["line"])["message"]: r for r in fake.records}
    assert set(by_message) == {"priced A-1", "no price for B-2", "priced C-3"}
    for log_record in capture.records:
        stored = by_message[log_record.getMessage()]
        assert stored["tenant"] == "team-a"
        assert stored["stream"]["level"] == log_record.levelname
        assert stored["metadata"] == {}
        assert_ns_matches(stored["ts"], log_record.created)
        line = json.loads(stored["line"])
        assert line == {
            "timestamp": line["timestamp"],
            "level": log_record.levelname,
            "logger": name,
            "message": log_record.getMessage(),
        }
        assert line["timestamp"].endswith("Z")


def test_entries_group_by_label_set_in_first_seen_order(
    loki: StrictCollector, logger: logging.Logger
) -> None:
    handler = logdrain.DrainHandler(loki.base_url, preset="loki", labels={"app": "a"}, **ONE_BATCH)
    logger.addHandler(handler)
    levels = [logging.WARNING, logging.INFO, logging.WARNING, logging.DEBUG, logging.INFO]
    for i, level in enumerate(levels):
        logger.log(level, "n%d", i)
    assert handler.drain.flush(10)
    (body,) = bodies(loki)
    streams = [
        (s["stream"]["level"], [json.loads(v[1])["message"] for v in s["values"]])
        for s in body["streams"]
    ]
    assert streams == [("WARNING", ["n0", "n2"]), ("INFO", ["n1", "n4"]), ("DEBUG", ["n3"])]
    assert all(s["stream"]["app"] == "a" for s in body["streams"])


# ---------------------------------------------------------------- labels, metadata


def test_only_allowed_keys_become_labels(loki: StrictCollector, logger: logging.Logger) -> None:
    handler = logdrain.DrainHandler(
        loki.base_url, preset="loki", labels={"app": "shop"}, label_keys=["level", "region"], **FAST
    )
    logger.addHandler(handler)
    logger.info("with region", extra={"region": "eu-1", "user_id": "u-42"})
    logger.info("no region", extra={"user_id": "u-43"})
    assert handler.drain.flush(10)
    by_message = {json.loads(r["line"])["message"]: r for r in loki.records}
    assert by_message["with region"]["stream"] == {"app": "shop", "level": "INFO", "region": "eu-1"}
    assert by_message["no region"]["stream"] == {"app": "shop", "level": "INFO"}
    for stored in loki.records:
        assert "user_id" not in stored["stream"]  # an extra never becomes a label
        assert json.loads(stored["line"])["user_id"].startswith("u-4")  # it stays in the line


def test_static_label_wins_and_no_label_falls_back(
    loki: StrictCollector, logger: logging.Logger
) -> None:
    handler = logdrain.DrainHandler(
        loki.base_url, preset="loki", labels={"region": "static"}, label_keys="region", **FAST
    )
    logger.addHandler(handler)
    logger.info("x", extra={"region": "from-record"})
    assert handler.drain.flush(10)
    assert [r["stream"] for r in loki.records] == [{"region": "static"}]
    with logdrain.Drain(loki.url, preset="loki", label_keys=[], **FAST) as drain:
        drain.submit({"message": "no labels at all"})
        assert drain.flush(10)
        assert drain.stats().delivered == 1
    assert loki.records[-1]["stream"] == {"service_name": "unknown_service"}


def test_level_label_survives_a_renamed_level(
    loki: StrictCollector, logger: logging.Logger
) -> None:
    handler = logdrain.DrainHandler(
        loki.base_url, preset="loki", rename={"level": "severity"}, compress="gzip", **FAST
    )
    logger.addHandler(handler)
    logger.error("renamed")
    assert handler.drain.flush(10)
    (stored,) = loki.records
    assert stored["stream"] == {"level": "ERROR"}  # from the record's own level
    assert json.loads(stored["line"])["severity"] == "ERROR"
    assert loki.requests[0].headers["Content-Encoding"] == "gzip"


def test_record_label_values_are_bounded_strings(
    loki: StrictCollector, logger: logging.Logger
) -> None:
    handler = logdrain.DrainHandler(
        loki.base_url, preset="loki", label_keys=["level", "path", "code"], **FAST
    )
    logger.addHandler(handler)
    long_path = "é" * 1500 + "/tail"  # 3005 UTF-8 bytes, over Loki's 2048
    logger.info("long", extra={"path": long_path, "code": 404})
    assert handler.drain.flush(10)
    assert handler.drain.stats().delivered == 1
    (stored,) = loki.records
    label = stored["stream"]["path"]
    assert len(label.encode()) <= MAX_LABEL_VALUE_BYTES
    assert long_path.startswith(label) and len(label) == MAX_LABEL_VALUE_BYTES // 2
    assert stored["stream"]["code"] == "404"
    assert json.loads(stored["line"])["path"] == long_path  # the line keeps it whole


def test_metadata_keys_are_the_third_element(loki: StrictCollector, logger: logging.Logger) -> None:
    handler = logdrain.DrainHandler(
        loki.base_url, preset="loki", metadata_keys=["trace_id", "attempt"], **ONE_BATCH
    )
    logger.addHandler(handler)
    logger.info("traced", extra={"trace_id": "4bf92f35", "attempt": 3})
    logger.info("untraced")
    assert handler.drain.flush(10)
    by_message = {json.loads(r["line"])["message"]: r for r in loki.records}
    assert by_message["traced"]["metadata"] == {"trace_id": "4bf92f35", "attempt": "3"}
    assert "trace_id" not in by_message["traced"]["stream"]
    assert by_message["untraced"]["metadata"] == {}
    (body,) = bodies(loki)
    assert sorted(len(v) for s in body["streams"] for v in s["values"]) == [2, 3]


def test_metadata_on_a_loki_that_disallows_it_is_rejected(
    logger: logging.Logger, capfd: pytest.CaptureFixture[str]
) -> None:
    with StrictCollector(Loki(allow_structured_metadata=False)) as fake:
        handler = logdrain.DrainHandler(
            fake.base_url, preset="loki", metadata_keys="trace_id", **FAST
        )
        logger.addHandler(handler)
        logger.info("traced", extra={"trace_id": "t-1"})
        assert handler.drain.flush(10)
        stats = handler.drain.stats()
        assert (stats.delivered, stats.rejected, stats.failed) == (0, 1, 0)
        assert stats.balanced
        assert fake.records == []
    assert "allow_structured_metadata" in capfd.readouterr().err


# ---------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("options", "field", "text"),
    [
        ({"labels": {"1bad": "x"}}, "labels", "not a valid Prometheus label name"),
        ({"labels": {"service-name": "x"}}, "labels", "'service-name' is not a valid"),
        ({"labels": {"__name__": "x"}}, "labels", "reserved"),
        ({"labels": {"env": ""}}, "labels", "empty value"),
        ({"labels": {"env": ["prod"]}}, "labels", "give a string"),
        ({"labels": "env"}, "labels", "is not name=value"),
        ({"labels": '{"env": '}, "labels", "not a JSON object"),
        ({"labels": {f"l{i}": "v" for i in range(16)}}, "labels", "at most 15"),
        ({"labels": {"env": "x" * 2049}}, "labels", "longer than 2048 bytes"),
        ({"label_keys": ["level", "user.id"]}, "label_keys", "'user.id' is not a valid"),
        ({"label_keys": 5}, "label_keys", "give a list"),
        ({"metadata_keys": ["trace-id"]}, "metadata_keys", "'trace-id' is not a valid"),
        ({"tenant": "team a"}, "tenant", "not a Loki tenant ID"),
        ({"tenant": "t" * 151}, "tenant", "longer than 150"),
        ({"lables": {"a": "b"}}, "lables", "did you mean 'labels'?"),
        ({"label_key": ["level"]}, "label_key", "did you mean 'label_keys'?"),
        ({"tennant": "a"}, "tennant", "did you mean 'tenant'?"),
    ],
)
def test_wrong_options_fail_at_construction(options: dict[str, Any], field: str, text: str) -> None:
    with pytest.raises(logdrain.ConfigError) as info:
        logdrain.DrainHandler("http://127.0.0.1:9", preset="loki", **options)
    assert info.value.field == field
    assert text in str(info.value)
    assert "preset 'loki'" in str(info.value)


@pytest.mark.parametrize(
    "labels", ["service=pricing, env=prod", '{"service": "pricing", "env": "prod"}']
)
def test_options_from_the_environment(
    loki: StrictCollector, monkeypatch: pytest.MonkeyPatch, labels: str
) -> None:
    monkeypatch.setenv("LOGDRAIN_LABELS", labels)
    monkeypatch.setenv("LOGDRAIN_LABEL_KEYS", "level,logger")
    monkeypatch.setenv("LOGDRAIN_METADATA_KEYS", '["trace_id"]')
    with logdrain.Drain(loki.base_url, preset="loki", **FAST) as drain:
        assert drain.settings.options["labels"] == {"service": "pricing", "env": "prod"}
        drain.submit({"message": "m", "level": "WARNING", "logger": "app", "trace_id": "t9"})
        assert drain.flush(10)
    (stored,) = loki.records
    assert stored["stream"] == {"service": "pricing", "env": "prod", "level": "WARNING",
                                "logger": "app"}  # fmt: skip
    assert stored["metadata"] == {"trace_id": "t9"}


# ---------------------------------------------------------------- answers


def test_rate_limit_and_unavailable_are_retried(
    loki: StrictCollector, logger: logging.Logger
) -> None:
    loki.play("rate_limited", limit=100)
    loki.play("error", status=503, text="ingester unavailable")
    handler = logdrain.DrainHandler(loki.base_url, preset="loki", **ONE_BATCH)
    logger.addHandler(handler)
    for i in range(4):
        logger.info("r%d", i)
    assert handler.drain.flush(10)
    stats = handler.drain.stats()
    assert (stats.delivered, stats.rejected, stats.failed, stats.retries) == (4, 0, 0, 2)
    assert stats.balanced
    assert [r.status for r in loki.requests] == [429, 503, 204]
    assert sorted(json.loads(r["line"])["message"] for r in loki.records) == [
        "r0", "r1", "r2", "r3"
    ]  # fmt: skip


def test_total_ignored_rejects_the_whole_batch_once(
    loki: StrictCollector, logger: logging.Logger, capfd: pytest.CaptureFixture[str]
) -> None:
    loki.play("too_far_behind", count=2)
    handler = logdrain.DrainHandler(loki.base_url, preset="loki", **ONE_BATCH)
    logger.addHandler(handler)
    for i in range(5):
        logger.info("e%d", i)
    assert handler.drain.flush(10)
    stats = handler.drain.stats()
    assert (stats.delivered, stats.rejected, stats.failed, stats.retries) == (0, 5, 0, 0)
    assert stats.balanced
    assert [r.status for r in loki.requests] == [400]  # never retried
    assert len(loki.records) == 3  # what Loki kept, without saying which
    err = capfd.readouterr().err
    assert "5 record(s) rejected" in err
    assert "Loki ignored 2 of 5 entries" in err


def test_other_400_is_rejected_with_lokis_text(
    logger: logging.Logger, capfd: pytest.CaptureFixture[str]
) -> None:
    with StrictCollector(Loki(max_label_value_length=10)) as fake:
        handler = logdrain.DrainHandler(
            fake.base_url, preset="loki", labels={"service": "a-long-service-name"}, **FAST
        )
        logger.addHandler(handler)
        logger.info("x")
        assert handler.drain.flush(10)
        stats = handler.drain.stats()
        assert (stats.delivered, stats.rejected, stats.retries) == (0, 1, 0)
        assert [r.status for r in fake.requests] == [400]
    assert "has label value too long" in capfd.readouterr().err


def test_blocked_ingestion_260_is_not_delivered(
    loki: StrictCollector, logger: logging.Logger, capfd: pytest.CaptureFixture[str]
) -> None:
    loki.play("blocked")
    handler = logdrain.DrainHandler(loki.base_url, preset="loki", **ONE_BATCH)
    logger.addHandler(handler)
    logger.info("one")
    logger.info("two")
    assert handler.drain.flush(10)
    stats = handler.drain.stats()
    assert (stats.delivered, stats.rejected, stats.failed) == (0, 2, 0)
    assert stats.balanced
    assert loki.records == []
    err = capfd.readouterr().err
    assert "Loki answered 260 instead of 204" in err
    assert "ingestion blocked for user fake" in err


def test_413_splits_until_each_half_fits(logger: logging.Logger) -> None:
    with StrictCollector(Loki(max_push_bytes=4000)) as fake:
        handler = logdrain.DrainHandler(fake.base_url, preset="loki", **ONE_BATCH)
        logger.addHandler(handler)
        for i in range(24):
            logger.info("record %02d %s", i, "x" * 100)
        assert handler.drain.flush(10)
        stats = handler.drain.stats()
        assert (stats.delivered, stats.rejected, stats.failed) == (24, 0, 0)
        assert stats.balanced
        statuses = [r.status for r in fake.requests]
        assert statuses[0] == 413 and statuses.count(204) >= 2
        assert all(len(r.body) <= 4000 for r in fake.requests if r.status == 204)
        messages = sorted(json.loads(r["line"])["message"][:9] for r in fake.records)
        assert messages == [f"record {i:02d}" for i in range(24)]  # each once


def test_a_single_record_above_the_push_limit_is_rejected(
    logger: logging.Logger, capfd: pytest.CaptureFixture[str]
) -> None:
    with StrictCollector(Loki(max_push_bytes=2000)) as fake:
        handler = logdrain.DrainHandler(fake.base_url, preset="loki", **ONE_BATCH)
        logger.addHandler(handler)
        logger.info("small")
        logger.info("big %s", "z" * 3000)
        assert handler.drain.flush(10)
        stats = handler.drain.stats()
        assert (stats.delivered, stats.rejected, stats.failed) == (1, 1, 0)
        assert stats.balanced
        assert [r.status for r in fake.requests] == [413, 204, 413]
    assert "request body too large" in capfd.readouterr().err


def test_without_tenant_a_multi_tenant_loki_refuses(
    logger: logging.Logger, capfd: pytest.CaptureFixture[str]
) -> None:
    with StrictCollector(Loki(multi_tenant=True)) as fake:
        handler = logdrain.DrainHandler(fake.base_url, preset="loki", **FAST)
        logger.addHandler(handler)
        logger.info("who am I")
        assert handler.drain.flush(10)
        assert handler.drain.stats().rejected == 1
        assert "X-Scope-OrgID" not in fake.requests[0].headers
    assert "no org id" in capfd.readouterr().err


def test_a_played_413_splits_once(loki: StrictCollector, logger: logging.Logger) -> None:
    loki.play("too_large")
    handler = logdrain.DrainHandler(loki.base_url, preset="loki", **ONE_BATCH)
    logger.addHandler(handler)
    for i in range(6):
        logger.info("s%d", i)
    assert handler.drain.flush(10)
    stats = handler.drain.stats()
    assert (stats.delivered, stats.rejected, stats.failed) == (6, 0, 0)
    assert [r.status for r in loki.requests] == [413, 204, 204]
    assert [r.record_count for r in loki.requests] == [6, 3, 3]
    assert len({r.headers["X-Logdrain-Batch-Id"] for r in loki.requests}) == 3
    assert sorted(json.loads(r["line"])["message"] for r in loki.records) == [
        f"s{i}" for i in range(6)
    ]


def test_a_huge_record_is_shortened_below_max_line_size(
    loki: StrictCollector, logger: logging.Logger
) -> None:
    handler = logdrain.DrainHandler(loki.base_url, preset="loki", **FAST)
    logger.addHandler(handler)
    logger.info("big %s", "y" * 400_000)
    assert handler.drain.flush(10)
    stats = handler.drain.stats()
    assert (stats.delivered, stats.truncated, stats.rejected) == (1, 1, 0)
    (stored,) = loki.records
    assert len(stored["line"].encode()) < 256 * 1024
    assert json.loads(stored["line"])["message"].startswith("big yyy")


def test_token_is_bearer_and_never_shown(
    loki: StrictCollector, logger: logging.Logger, capfd: pytest.CaptureFixture[str]
) -> None:
    secret = "glc_s3cr3t-t0ken"
    loki.script(401, body=b"invalid token\n")
    handler = logdrain.DrainHandler(loki.base_url, preset="loki", token=secret, **FAST)
    logger.addHandler(handler)
    logger.info("first")
    assert handler.drain.flush(10)
    logger.info("second")
    assert handler.drain.flush(10)
    assert [r.headers["Authorization"] for r in loki.requests] == [f"Bearer {secret}"] * 2
    assert handler.drain.stats().rejected == 1
    assert handler.drain.stats().delivered == 1
    shown = " ".join(
        [repr(handler), repr(handler.drain), repr(handler.drain.settings), str(PRESET)]
    )
    assert secret not in shown
    err = capfd.readouterr().err
    assert "401" in err and secret not in err


def test_structlog_recipe(loki: StrictCollector) -> None:
    structlog = pytest.importorskip("structlog")
    with logdrain.Drain(
        loki.base_url, preset="loki", labels={"service": "pricing"},
        metadata_keys=["request_id"], **FAST,
    ) as drain:  # fmt: skip
        slog = structlog.wrap_logger(
            structlog.testing.ReturnLogger(),
            processors=[
                structlog.processors.add_log_level,
                logdrain.DrainProcessor(drain),
                structlog.processors.JSONRenderer(),
            ],
        )
        slog.warning("price stale", sku="A-1", request_id="req-7")
        assert drain.flush(10)
        assert drain.stats().delivered == 1
    (stored,) = loki.records
    assert stored["stream"] == {"service": "pricing", "level": "warning"}
    assert stored["metadata"] == {"request_id": "req-7"}
    line = json.loads(stored["line"])
    assert (line["event"], line["sku"], line["level"]) == ("price stale", "A-1", "warning")


# ---------------------------------------------------------------- pure functions


def test_framed_size_is_an_upper_bound_and_the_body_is_lokis_json() -> None:
    rng = random.Random(7)
    ctx = Context({"label_keys": ("level", "k")}, created=1_700_000_000.5)
    for _ in range(200):
        parts = []
        for i in range(rng.randint(1, 30)):
            doc = {"message": "m" * rng.randint(0, 50), "level": rng.choice("AB"),
                   "k": rng.choice(["x", "y", 'q"uote'])}  # fmt: skip
            keyed = record(doc, ctx._replace(created=1_700_000_000 + i))
            parts.append((keyed.key, keyed.value))  # the entry, encoded by the preset
        total = sum(len(k) + len(v) for k, v in parts)
        body = frame(parts)
        assert len(body) <= framed_size(total, len(parts))
        streams = json.loads(body)["streams"]
        keys = list(dict.fromkeys(k for k, _ in parts))
        assert [json.dumps(s["stream"], sort_keys=True) for s in streams] == [
            json.dumps(json.loads(k), sort_keys=True) for k in keys
        ]
        assert sum(len(s["values"]) for s in streams) == len(parts)


@pytest.mark.parametrize("json_encoder", ["orjson", "stdlib"])
def test_the_entry_encoded_by_the_preset_is_the_line_as_a_json_string(json_encoder: str) -> None:
    # The preset writes the entry's bytes itself (escaping the line's
    # backslashes and quotes): it must equal what a JSON encoder writes for
    # [ns, line], for every hostile text.
    from logdrain.config import resolve
    from logdrain.encode import Encoder
    from logdrain.mapping import Mapper

    settings = resolve({"url": "http://127.0.0.1:9", "preset": "loki", "json_encoder": json_encoder,
                        "metadata_keys": ["trace"]})  # fmt: skip
    mapper = Mapper(settings, Encoder(settings))
    texts = ['q"uote', "back\\slash", '\\"', "new\nline\ttab\x00\x1f\x7f", "\u2028\u2029",
             "\u00e9\u4e2d\U0001f600", "\ud800 lone", "", "null", "NaN"]  # fmt: skip
    rng = random.Random(11)
    for _ in range(200):
        text = "".join(rng.choice(texts) for _ in range(rng.randint(0, 4)))
        item = {"message": text, "level": "INFO", text or "k": [text, 1.5, None], "trace": text}
        part, _size, _cut = mapper.part(item)
        _key, entry = part
        values = json.loads(entry)
        assert values[0].isdigit()
        assert json.loads(values[1])["level"] == "INFO"
        assert len(values) == (3 if text else 2)  # the metadata when there is any
        assert entry == json.dumps(values, ensure_ascii=False,
                                   separators=(",", ":")).encode("utf-8")  # fmt: skip


def test_nanoseconds_keep_the_created_time() -> None:
    for created in (1_700_000_000.0, 1_700_000_000.123456, 1_796_133_069.582277775, 0.5):
        assert_ns_matches(str(nanoseconds(created)), created)
    for impossible in (float("nan"), float("inf"), 1e300):  # Loki cannot hold it: now
        before = time.time_ns()
        stamped = nanoseconds(impossible)
        after = time.time_ns()
        assert before - 1000 <= stamped <= after + 1000  # float rounding of time.time()


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (204, b"", "delivered"),
        (200, b"", "delivered"),
        (201, b"", "rejected"),
        (260, b"ingestion blocked", "rejected"),
        (400, b"user 'a', total ignored: 1 out of 9", "rejected"),
        (400, b"error at least one label pair is required per stream", "rejected"),
        (401, b"no org id", "rejected"),
        (413, b"request body too large", "split"),
        (429, b"Ingestion rate limit exceeded", "retry"),
        (500, b"", "retry"),
        (503, b"", "retry"),
    ],
)
def test_classifier_table(status: int, body: bytes, outcome: str) -> None:
    verdict = classify(Answer(status, "", {}, body, True, sent=9))
    assert verdict.outcome == outcome
    if status == 400 and b"total ignored" in body:
        assert "Loki ignored 1 of 9 entries" in verdict.reason


# ---------------------------------------------------------------- the fake's additions


def test_fake_blocked_with_status_200_answers_success_and_stores_nothing(
    loki: StrictCollector,
) -> None:
    loki.play("blocked", status=200)
    payload = {"streams": [{"stream": {"a": "b"}, "values": [[str(17 * 10**17), "x"]]}]}
    answer = requests.post(loki.url, json=payload, timeout=5)
    assert answer.status_code == 204
    assert loki.records == []
