"""The ``otlp`` preset against the strict OTLP/HTTP fake: every body it sends
is parsed by the official opentelemetry-proto messages (in the fake), the
stored records are compared exactly, and the answers the OTLP specification
defines (partial success, 429/503 with Retry-After, 413, 400) are played."""

from __future__ import annotations

import gzip
import json
import logging
import logging.config
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import pytest

import logdrain
from logdrain.presets import Answer, Context, Keyed, get
from logdrain.presets.otlp import PRESET, frame, framed_size, record
from logdrain.presets.otlp_answers import classify
from logdrain.presets.otlp_values import severity_number
from logdrain.testing.dialects._base import StrictCollector
from logdrain.testing.dialects._otlp import OTLP

pytestmark = pytest.mark.timeout(120)

FAST: dict[str, Any] = {"flush_interval": 0.05, "backoff_initial": 0.01, "backoff_max": 0.05}
#: One batch: records wait for flush() (which sends at once), never for the linger clock.
ONE_BATCH: dict[str, Any] = {**FAST, "flush_interval": 30, "concurrency": 1}


@pytest.fixture
def otlp() -> Iterator[StrictCollector]:
    pytest.importorskip("opentelemetry.proto")  # the fake parses with the official messages
    with StrictCollector(OTLP()) as fake:
        yield fake


class Keep(logging.Handler):
    """Keeps the records, to compare the shipped ones with (created, levelno)."""

    seen: list[logging.LogRecord]

    def __init__(self) -> None:
        super().__init__()
        self.seen = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record)


def ns(record: logging.LogRecord) -> int:
    return int(record.created * 1e9)


def body(fake: StrictCollector, n: int = 0) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(fake.requests[n].body)
    return doc


def header(fake: StrictCollector, name: str, n: int = 0) -> str | None:
    found = {k.lower(): v for k, v in fake.requests[n].headers.items()}
    return found.get(name.lower())


def expected(
    rec: logging.LogRecord,
    number: int,
    text: str,
    resource: dict[str, Any],
    attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "resource": resource,
        "scope": rec.name,
        "time_unix_nano": ns(rec),
        "observed_time_unix_nano": ns(rec),
        "severity_number": number,
        "severity_text": text,
        "body": rec.getMessage(),
        "attributes": attributes or {},
        "trace_id": "",
        "span_id": "",
        "flags": 0,
    }


LEVELS = [  # (levelno, SeverityNumber, severityText)
    (logging.DEBUG, 5, "DEBUG"),
    (logging.INFO, 9, "INFO"),
    (logging.WARNING, 13, "WARN"),
    (logging.ERROR, 17, "ERROR"),
    (logging.CRITICAL, 21, "FATAL"),
    (15, 8, "Level 15"),  # DEBUG4
    (23, 12, "Level 23"),  # INFO4
    (53, 24, "Level 53"),  # FATAL4
    (60, 24, "Level 60"),  # above: FATAL4
    (5, 1, "Level 5"),  # below DEBUG: TRACE (std_to_otel would say UNSPECIFIED)
]


def test_dictconfig_alone_ships_exact_records_grouped_by_scope(otlp: StrictCollector) -> None:
    keep = Keep()
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {
                "otlp": {
                    "class": "logdrain.DrainHandler",
                    "url": otlp.base_url,  # no path: /v1/logs is appended
                    "preset": "otlp",
                    "service": "checkout",
                    "host": "web-1",
                    "resource": "deployment.environment.name=prod,team=pay%2Cments",
                    "flush_interval": "30",
                    "backoff_initial": "0.01",
                    "backoff_max": "0.05",
                },
                "keep": {"()": lambda: keep},
            },
            "loggers": {
                name: {"handlers": ["otlp", "keep"], "level": 1, "propagate": False}
                for name in ("test.otlp.db", "test.otlp.web")
            },
        }
    )
    db, web = logging.getLogger("test.otlp.db"), logging.getLogger("test.otlp.web")
    handler = db.handlers[0]
    try:
        assert isinstance(handler, logdrain.DrainHandler)
        assert handler.drain.settings.url == otlp.url
        for i, (levelno, _, _) in enumerate(LEVELS):
            db.log(levelno, "db %d", i)
            if i == 2:
                web.info("web between")
        assert handler.drain.flush(10)
        stats = handler.drain.stats()
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
        for log in (db, web):
            log.handlers.clear()
    assert (stats.delivered, stats.rejected, stats.failed, stats.balanced) == (11, 0, 0, True)
    assert [r.status for r in otlp.requests] == [200]
    resource = {
        "service.name": "checkout",
        "host.name": "web-1",
        "deployment.environment.name": "prod",
        "team": "pay,ments",
    }
    db_seen = [r for r in keep.seen if r.name == "test.otlp.db"]
    (web_seen,) = [r for r in keep.seen if r.name == "test.otlp.web"]
    assert otlp.records == [
        *(expected(r, n, t, resource) for r, (_, n, t) in zip(db_seen, LEVELS, strict=True)),
        expected(web_seen, 9, "INFO", resource),
    ]
    (resource_logs,) = body(otlp)["resourceLogs"]  # one resource, two scopes
    assert [s["scope"] for s in resource_logs["scopeLogs"]] == [
        {"name": "test.otlp.db"},
        {"name": "test.otlp.web"},
    ]
    first = resource_logs["scopeLogs"][0]["logRecords"][0]
    assert first["timeUnixNano"] == str(ns(db_seen[0]))  # fixed64 as a decimal string
    assert first["observedTimeUnixNano"] == first["timeUnixNano"]
    assert first["severityNumber"] == 5  # an enum: an integer, never its name
    assert resource_logs["resource"]["attributes"][0] == {
        "key": "service.name",
        "value": {"stringValue": "checkout"},
    }


class Opaque:
    def __repr__(self) -> str:
        return "<opaque>"


def test_extra_fields_become_typed_attributes(
    otlp: StrictCollector, logger: logging.Logger
) -> None:
    handler = logdrain.DrainHandler(otlp.url, preset="otlp", service="svc", **ONE_BATCH)
    logger.addHandler(handler)
    extra = {
        "user": "u1",
        "n": 3,
        "neg": -(2**63),
        "huge": 2**64,
        "ratio": 0.25,
        "whole": 2.0,
        "nan": float("nan"),
        "inf": float("-inf"),
        "ok": True,
        "nothing": None,
        "tags": ["a", 1, None, False],
        "pair": (1, 2),
        "nested": {"k": {"deep": [1.5]}, 7: "int key"},
        "raw": b"\x00\xff",
        "obj": Opaque(),
        "status": HTTPStatus.OK,  # an int subclass (an IntEnum)
    }
    logger.info("typed", extra=extra)
    assert handler.drain.flush(10)
    (stored,) = otlp.records
    attrs = stored["attributes"]
    assert set(attrs) == set(extra) - {"nothing"}  # None is dropped
    assert attrs["user"] == "u1"
    assert type(attrs["n"]) is int and attrs["n"] == 3
    assert attrs["neg"] == -(2**63)
    assert attrs["huge"] == str(2**64)  # beyond int64: its digits as a string
    assert type(attrs["whole"]) is float and attrs["ratio"] == 0.25
    assert attrs["nan"] != attrs["nan"] and attrs["inf"] == float("-inf")
    assert attrs["ok"] is True
    assert attrs["tags"] == ["a", 1, None, False]
    assert attrs["pair"] == [1, 2]
    assert attrs["nested"] == {"k": {"deep": [1.5]}, "7": "int key"}
    assert attrs["raw"] == b"\x00\xff"
    assert attrs["obj"] == "<opaque>"
    assert type(attrs["status"]) is int and attrs["status"] == 200
    sent = {
        a["key"]: a["value"]
        for a in body(otlp)["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["attributes"]
    }
    assert sent["n"] == {"intValue": "3"}  # int64 as a decimal string
    assert sent["whole"] == {"doubleValue": 2.0}
    assert sent["nan"] == {"doubleValue": "NaN"} and sent["inf"] == {"doubleValue": "-Infinity"}
    assert sent["tags"]["arrayValue"]["values"][2] == {}  # the empty AnyValue
    assert sent["raw"] == {"bytesValue": "AP8="}


def test_exception_stack_and_code_location_follow_the_conventions(
    otlp: StrictCollector, logger: logging.Logger
) -> None:
    handler = logdrain.DrainHandler(otlp.url, preset="otlp", **ONE_BATCH)
    logger.addHandler(handler)
    keep = Keep()
    logger.addHandler(keep)
    try:
        raise KeyError("missing")
    except KeyError:
        logger.exception("lookup failed")
    logger.info("where", stack_info=True)
    # structlog's CallsiteParameterAdder keys
    handler.drain.submit({"message": "at", "pathname": "/app/x.py", "lineno": 7, "func_name": "f"})
    assert handler.drain.flush(10)
    failed, where, at = otlp.records
    exc_info = keep.seen[0].exc_info
    assert exc_info is not None
    assert failed["severity_number"] == 17 and failed["body"] == "lookup failed"
    assert failed["attributes"] == {
        "exception.type": "KeyError",
        "exception.message": "'missing'",
        "exception.stacktrace": logging.Formatter().formatException(exc_info),
    }
    assert failed["resource"] == {"service.name": "unknown_service"}
    assert where["attributes"] == {"code.stacktrace": keep.seen[1].stack_info}
    assert at["attributes"] == {
        "code.file.path": "/app/x.py",
        "code.line.number": 7,
        "code.function.name": "f",
    }


def test_trace_context_is_carried_and_invalid_ids_stay_attributes(
    otlp: StrictCollector, logger: logging.Logger
) -> None:
    handler = logdrain.DrainHandler(otlp.url, preset="otlp", **ONE_BATCH)
    logger.addHandler(handler)
    trace, span = "0AF7651916CD43DD8448EB211C80319C", "b7ad6b7169203331"
    logger.info("in a span", extra={"trace_id": trace, "span_id": span, "trace_flags": 1})
    logger.info("as ints", extra={"trace_id": int(trace, 16), "span_id": int(span, 16)})
    logger.info("otel logging", extra={"otelTraceID": trace, "otelSpanID": span,
                                       "otelTraceSampled": True})  # fmt: skip
    logger.info("bad", extra={"trace_id": "abc", "span_id": "0" * 16})
    assert handler.drain.flush(10)
    in_span, as_ints, otel, bad = otlp.records
    for stored in (in_span, as_ints, otel):
        assert (stored["trace_id"], stored["span_id"]) == (trace.lower(), span)
    assert (in_span["flags"], as_ints["flags"], otel["flags"]) == (1, 0, 1)
    assert in_span["attributes"] == {} and otel["attributes"] == {}
    assert (bad["trace_id"], bad["span_id"]) == ("", "")
    assert bad["attributes"] == {"trace_id": "abc", "span_id": "0" * 16}
    sent = body(otlp)["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    assert (sent["traceId"], sent["spanId"], sent["flags"]) == (trace.lower(), span, 1)


def test_structlog_events_through_the_processor(otlp: StrictCollector) -> None:
    structlog = pytest.importorskip("structlog")
    drain = logdrain.Drain(otlp.url, preset="otlp", service="worker", **ONE_BATCH)
    log = structlog.wrap_logger(
        structlog.ReturnLogger(),
        processors=[structlog.processors.add_log_level, logdrain.DrainProcessor(drain)],
    )
    try:
        log.bind(logger="jobs").warning("retrying", attempt=2, delay=0.5)
        log.bind(logger="jobs").debug("queued", job="j1")
        assert drain.flush(10)
    finally:
        drain.close(5)
    warned, queued = otlp.records
    assert (warned["scope"], warned["body"], warned["severity_number"]) == ("jobs", "retrying", 13)
    assert warned["severity_text"] == "WARN"
    assert warned["attributes"] == {"attempt": 2, "delay": 0.5}
    assert (queued["severity_number"], queued["severity_text"], queued["attributes"]) == (
        5,
        "DEBUG",
        {"job": "j1"},
    )
    assert warned["resource"] == {"service.name": "worker"}
    assert warned["time_unix_nano"] > 0


def test_renamed_or_dropped_fields_still_make_valid_records(
    otlp: StrictCollector, logger: logging.Logger
) -> None:
    handler = logdrain.DrainHandler(
        otlp.url, preset="otlp", rename={"message": "msg", "level": "lvl"}, **ONE_BATCH
    )
    logger.addHandler(handler)
    keep = Keep()
    logger.addHandler(keep)
    logger.error("renamed")
    assert handler.drain.flush(10)
    (stored,) = otlp.records
    assert stored["time_unix_nano"] == ns(keep.seen[0])  # from the record, not the field
    assert (stored["severity_number"], stored["severity_text"]) == (17, "ERROR")
    assert stored["body"] is None
    assert stored["attributes"] == {"msg": "renamed", "lvl": "ERROR"}


def test_otel_environment_variables_apply(
    otlp: StrictCollector, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "billing")
    monkeypatch.setenv(
        "OTEL_RESOURCE_ATTRIBUTES", "service.name=overridden, deployment.environment=staging,bad"
    )
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.base_url + "/")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "Api-Key=s3cr3t%2Fv1, x-tenant = acme")
    otlp.play("error", status=400, message="bad tenant")
    with logdrain.Drain(preset="otlp", **FAST) as drain:
        assert drain.settings.url == otlp.url
        shown = f"{drain!r} {drain.settings!r} {drain.settings}"
        drain.submit({"message": "refused"})
        assert drain.flush(10)
        drain.submit({"message": "taken"})
        assert drain.flush(10)
        assert (drain.stats().rejected, drain.stats().delivered) == (1, 1)
    err = capfd.readouterr().err
    assert "bad tenant" in err
    assert "s3cr3t" not in shown + err
    assert header(otlp, "api-key") == "s3cr3t/v1" and header(otlp, "x-tenant") == "acme"
    (stored,) = otlp.records
    assert stored["resource"] == {"service.name": "billing", "deployment.environment": "staging"}


def test_explicit_settings_beat_the_otel_variables(
    otlp: StrictCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=env,host.name=env-host")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://127.0.0.1:9/v1/logs")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "x-tenant=env")
    monkeypatch.setenv("LOGDRAIN_HOST", "ld-host")
    options: dict[str, Any] = {"headers": {"x-tenant": "code"}, **ONE_BATCH}
    with logdrain.Drain(otlp.url, preset="otlp", service="from-code", **options) as drain:
        drain.submit({"message": "one"})
        assert drain.flush(10)
    resource = {"team": "code", "service.name": "from-resource"}
    with logdrain.Drain(otlp.url, preset="otlp", resource=resource, **options) as drain:
        drain.submit({"message": "two"})
        assert drain.flush(10)
    one, two = otlp.records
    assert one["resource"] == {"service.name": "from-code", "host.name": "ld-host", "team": "env"}
    assert two["resource"] == {"service.name": "from-resource", "host.name": "ld-host",
                               "team": "code"}  # fmt: skip
    assert header(otlp, "x-tenant", 0) == header(otlp, "x-tenant", 1) == "code"


@pytest.mark.parametrize(
    ("env", "url", "expected"),
    [
        ({}, None, "http://localhost:4318/v1/logs"),
        ({}, "https://collector.example:4318", "https://collector.example:4318/v1/logs"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://gw.example/otel"}, None,
         "https://gw.example/otel/v1/logs"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://gw.example/",
          "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "https://logs.example/custom/path"}, None,
         "https://logs.example/custom/path"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://gw.example"}, "https://mine.example/in",
         "https://mine.example/in"),
    ],
)  # fmt: skip
def test_the_endpoint(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], url: str | None, expected: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    drain = logdrain.Drain(url, preset="otlp", capture_crashes=False)
    try:
        assert drain.settings.url == expected
        assert (drain.settings.batch_size, drain.settings.batch_bytes) == (2000, 4 * 1024 * 1024)
    finally:
        drain.close(0)


@pytest.mark.parametrize(
    ("options", "env", "field", "says"),
    [
        ({"service": " "}, {}, "service", "non-empty string"),
        ({"resource": {"a": None}}, {}, "resource", "'a' must be a string, number"),
        ({"resource": "{oops"}, {}, "resource", "not a JSON object"),
        ({}, {"LOGDRAIN_RESOURCE": "no pairs"}, "resource", "key=value pairs"),
        ({}, {"OTEL_EXPORTER_OTLP_HEADERS": "x-key=s3cr3t%0Aevil"}, "headers", "x-key"),
    ],
)
def test_wrong_options_fail_at_construction_without_secrets(
    monkeypatch: pytest.MonkeyPatch,
    options: dict[str, Any],
    env: dict[str, str],
    field: str,
    says: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(logdrain.ConfigError) as info:
        logdrain.Drain("http://127.0.0.1:9", preset="otlp", capture_crashes=False, **options)
    assert info.value.field == field
    assert says in str(info.value)
    assert "s3cr3t" not in str(info.value)


def test_the_sdks_batch_processor_variables_shape_the_batches(
    otlp: StrictCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_BLRP_MAX_EXPORT_BATCH_SIZE=3: seven records go as 3 + 3 + 1
    (the schedule delay, 30 s, never fires: flush() sends the last one)."""
    monkeypatch.setenv("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "3")
    monkeypatch.setenv("OTEL_BLRP_SCHEDULE_DELAY", "30000")
    monkeypatch.setenv("OTEL_BLRP_MAX_QUEUE_SIZE", "64")
    with logdrain.Drain(otlp.url, preset="otlp", concurrency=1, capture_crashes=False) as drain:
        s = drain.settings
        assert (s.batch_size, s.flush_interval, s.queue_size) == (3, 30.0, 64)
        for i in range(7):
            drain.submit({"message": f"m{i}"})
        assert drain.flush(10)
    assert [r.record_count for r in otlp.requests] == [3, 3, 1]


@pytest.mark.parametrize(
    ("explicit", "env", "expected"),
    [
        ({}, {}, (2000, 1.0, 10000)),  # the preset's and logdrain's defaults
        ({}, {"OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": "512", "OTEL_BLRP_SCHEDULE_DELAY": "5000"},
         (512, 5.0, 10000)),
        ({"batch_size": 100}, {"OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": "512",
                               "LOGDRAIN_FLUSH_INTERVAL": "0.5", "OTEL_BLRP_SCHEDULE_DELAY": "9000",
                               "OTEL_BLRP_EXPORT_TIMEOUT": "1"}, (100, 0.5, 10000)),
    ],
)  # fmt: skip
def test_batch_variables_sit_below_your_settings(
    explicit: dict[str, Any], env: dict[str, str], expected: tuple[int, float, int]
) -> None:
    from logdrain.config import resolve

    s = resolve({"url": "http://127.0.0.1:9", "preset": "otlp", **explicit}, env)
    assert (s.batch_size, s.flush_interval, s.queue_size) == expected
    other = resolve({"url": "http://127.0.0.1:9/x", "preset": "json"}, env)  # otlp's alone
    assert (other.batch_size, other.queue_size) == (2000, 10000)


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("OTEL_BLRP_SCHEDULE_DELAY", "5", "milliseconds from 10"),
        ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "0", "records from 1"),
        ("OTEL_BLRP_MAX_QUEUE_SIZE", "1e3", "records from 1"),
    ],
)
def test_a_wrong_batch_variable_fails_at_construction_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(logdrain.ConfigError) as info:
        logdrain.Drain("http://127.0.0.1:9", preset="otlp", capture_crashes=False)
    assert variable in str(info.value) and says in str(info.value)
    monkeypatch.delenv(variable)
    monkeypatch.setenv("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "20000")  # above queue_size
    with pytest.raises(logdrain.ConfigError, match="batch_size"):
        logdrain.Drain("http://127.0.0.1:9", preset="otlp", capture_crashes=False)


@pytest.mark.parametrize("as_number", [False, True])
def test_partial_success_is_counted_exactly_and_never_retried(
    otlp: StrictCollector, capfd: pytest.CaptureFixture[str], as_number: bool
) -> None:
    message = "2 log records were rejected: timestamp too far in the past"
    otlp.play("partial_success", rejected=2, error_message=message, as_number=as_number)
    with logdrain.Drain(otlp.url, preset="otlp", **ONE_BATCH) as drain:
        for i in range(5):
            drain.submit({"message": f"m{i}"})
        assert drain.flush(10)
        stats = drain.stats()
    assert (stats.delivered, stats.rejected, stats.failed, stats.retries) == (3, 2, 0, 0)
    assert stats.balanced and stats.pending == 0
    assert [r.status for r in otlp.requests] == [200]
    assert [r["body"] for r in otlp.records] == ["m0", "m1", "m2"]
    err = capfd.readouterr().err
    assert "2 record(s) rejected" in err and message in err


@pytest.mark.parametrize(("kind", "status"), [("unavailable", 503), ("throttled", 429)])
def test_unavailable_and_throttled_are_retried_after_retry_after(
    otlp: StrictCollector, kind: str, status: int
) -> None:
    otlp.play(kind, retry_after="1")
    with logdrain.Drain(otlp.url, preset="otlp", retry_after_max=0.05, **ONE_BATCH) as drain:
        drain.submit({"message": "again"})
        assert drain.flush(10)
        stats = drain.stats()
    assert (stats.delivered, stats.retries, stats.balanced) == (1, 1, True)
    first, second = otlp.requests
    assert (first.status, second.status) == (status, 200)
    assert header(otlp, "X-Logdrain-Batch-Id", 0) == header(otlp, "X-Logdrain-Batch-Id", 1)
    assert [r["body"] for r in otlp.records] == ["again"]


def test_too_large_splits_and_a_single_record_is_rejected(
    otlp: StrictCollector, capfd: pytest.CaptureFixture[str]
) -> None:
    otlp.play("too_large")
    with logdrain.Drain(otlp.url, preset="otlp", **ONE_BATCH) as drain:
        for i in range(4):
            drain.submit({"message": f"s{i}"})
        assert drain.flush(10)
        assert (drain.stats().delivered, drain.stats().balanced) == (4, True)
    assert [(r.status, r.record_count) for r in otlp.requests] == [(413, 4), (200, 2), (200, 2)]
    ids = [header(otlp, "X-Logdrain-Batch-Id", n) for n in range(3)]
    assert len(set(ids)) == 3  # each half has a batch id of its own
    assert sorted(r["body"] for r in otlp.records) == ["s0", "s1", "s2", "s3"]
    otlp.clear()
    otlp.play("too_large", times=3, message="body over 1 MiB")
    with logdrain.Drain(otlp.url, preset="otlp", **ONE_BATCH) as drain:
        drain.submit({"message": "big one"})
        drain.submit({"message": "big two"})
        assert drain.flush(10)
        stats = drain.stats()
    assert (stats.delivered, stats.rejected, stats.retries, stats.balanced) == (0, 2, 0, True)
    assert [r.status for r in otlp.requests] == [413, 413, 413]
    assert "body over 1 MiB" in capfd.readouterr().err


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(400, "rejected"), (401, "rejected"), (404, "rejected"), (500, "rejected"),
     (502, "retried"), (504, "retried")],
)  # fmt: skip
def test_other_statuses(
    otlp: StrictCollector, capfd: pytest.CaptureFixture[str], status: int, outcome: str
) -> None:
    otlp.play("error", status=status, message=f"collector says {status}")
    with logdrain.Drain(otlp.url, preset="otlp", **ONE_BATCH) as drain:
        drain.submit({"message": "x"})
        assert drain.flush(10)
        stats = drain.stats()
    assert stats.balanced
    if outcome == "rejected":  # the specification: every other 4xx/5xx MUST NOT be retried
        assert (stats.rejected, stats.retries, len(otlp.requests)) == (1, 0, 1)
        assert f"collector says {status}" in capfd.readouterr().err
    else:
        assert (stats.delivered, stats.retries, len(otlp.requests)) == (1, 1, 2)


def answer(status: int, body: bytes = b"", complete: bool = True) -> Answer:
    return Answer(status, "", {}, body, complete, sent=5)


def test_the_classifier() -> None:
    partial = b'{"partialSuccess":{"rejectedLogRecords":"3","errorMessage":"too old"}}'
    assert classify(answer(200, partial)).outcome == "partial"
    assert (classify(answer(200, partial)).rejected, classify(answer(200, partial)).reason) == (
        3,
        "too old",
    )
    snake = b'{"partial_success":{"rejected_log_records":2}}'
    assert (classify(answer(200, snake)).rejected, classify(answer(200, snake)).reason) == (
        2,
        "2 log record(s) rejected",
    )
    for delivered in (
        b"",
        b'{"partialSuccess":{}}',
        b'{"partialSuccess":{"rejectedLogRecords":"0","errorMessage":"a warning only"}}',
        b"\x0a\x00",  # a protobuf answer: nothing to read, the 2xx stands
    ):
        assert classify(answer(201, delivered)).outcome == "delivered"
    retry_info = (
        b'{"code":14,"message":"busy","details":[{"@type":'
        b'"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"2.5s"}]}'
    )
    verdict = classify(answer(503, retry_info))
    assert (verdict.outcome, verdict.reason, verdict.retry_after) == ("retry", "busy", 2.5)
    assert classify(answer(413, b'{"code":2,"message":"too big"}')).outcome == "split"
    bad = classify(answer(400, b'{"code":3,"message":"unknown field \\"x\\""}'))
    assert (bad.outcome, bad.reason) == ("rejected", 'unknown field "x"')
    assert classify(answer(415, b"415 unsupported media type")).outcome == "rejected"
    assert classify(answer(408)).outcome == "rejected"  # not in the OTLP retry list


def test_severity_numbers_follow_std_to_otel() -> None:
    mapping = {0: 0, 1: 1, 9: 1, 10: 5, 11: 6, 13: 8, 19: 8, 20: 9, 29: 12, 30: 13, 40: 17}
    mapping.update({49: 20, 50: 21, 52: 23, 53: 24, 99: 24})
    assert {n: severity_number(n) for n in mapping} == mapping
    assert severity_number(None) == 0


def test_frame_groups_parts_by_resource_and_scope_within_framed_size() -> None:
    ctx = Context({"service": "a"}, created=1.5, levelno=20)
    other = Context({"service": "b"}, created=2.0, levelno=30)
    docs = [({"logger": "x", "message": "1"}, ctx), ({"logger": "y", "message": "2"}, ctx),
            ({"logger": "x", "message": "3"}, ctx), ({"message": "4"}, other)]  # fmt: skip
    parts = []
    for doc, context in docs:
        keyed = record(doc, context)
        assert isinstance(keyed, Keyed)
        parts.append((keyed.key, json.dumps(keyed.value, separators=(",", ":")).encode()))
    data = frame(parts)
    total = sum(len(key) + len(value) for key, value in parts)
    assert len(data) <= framed_size(total, len(parts))
    assert len(frame(parts[:1])) <= framed_size(len(parts[0][0]) + len(parts[0][1]), 1)
    first, second = json.loads(data)["resourceLogs"]
    assert [(s["scope"]["name"], [r["body"]["stringValue"] for r in s["logRecords"]])
            for s in first["scopeLogs"]] == [("x", ["1", "3"]), ("y", ["2"])]  # fmt: skip
    assert second["scopeLogs"][0]["scope"] == {"name": ""}
    assert second["resource"]["attributes"][0]["value"] == {"stringValue": "b"}
    assert first["scopeLogs"][0]["logRecords"][0]["timeUnixNano"] == "1500000000"
    assert get("otlp") is PRESET


def test_shortened_records_and_small_batches_stay_valid(
    otlp: StrictCollector, logger: logging.Logger
) -> None:
    """A record above max_record_bytes is shortened before it is mapped, and
    batch_bytes counts the framing: every body still parses, and fits."""
    handler = logdrain.DrainHandler(
        otlp.url, preset="otlp", max_record_bytes=2048, batch_bytes=4096, compress="gzip",
        **ONE_BATCH,
    )  # fmt: skip
    logger.addHandler(handler)
    logger.info("x" * 10_000, extra={"detail": "y" * 3000, "n": 1})
    for i in range(20):
        logger.info("line %d %s", i, "z" * 400)
    assert handler.drain.flush(10)
    stats = handler.drain.stats()
    assert (stats.delivered, stats.truncated, stats.balanced) == (21, 1, True)
    assert len(otlp.requests) > 3 and all(r.status == 200 for r in otlp.requests)
    assert all(r.headers.get("Content-Encoding") == "gzip" for r in otlp.requests)
    assert all(len(gzip.decompress(r.body)) <= 4096 for r in otlp.requests)
    first = otlp.records[0]
    assert first["body"].startswith("x" * 500) and "logdrain: truncated" in first["body"]
    assert first["attributes"]["n"] == 1
    assert first["attributes"]["logdrain_truncated"]["original_bytes"] > 10_000
    assert [r["body"] for r in otlp.records[1:]] == [f"line {i} {'z' * 400}" for i in range(20)]
