"""The ``gelf`` preset against the strict Graylog fake: valid GELF 1.1 for
every record (Graylog would drop an invalid one behind a 202), one message
per request, Graylog's statuses."""

from __future__ import annotations

import gzip
import json
import logging
import logging.config
import math
import socket
import traceback
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import requests

import logdrain
from logdrain.presets import Answer, Context, Unsendable
from logdrain.presets.gelf import PRESET, classify, problem
from logdrain.testing.dialects._base import StrictCollector
from logdrain.testing.dialects._gelf import Graylog, gelf_problem

pytestmark = pytest.mark.timeout(120)

FAST: dict[str, Any] = {"flush_interval": 0.05, "backoff_initial": 0.01, "backoff_max": 0.05}
TIMEOUT = 10


def lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("logdrain[")]


def dropped(fake: StrictCollector) -> list[dict[str, str]]:
    dialect = fake.dialect
    assert isinstance(dialect, Graylog)
    lost: list[dict[str, str]] = dialect.dropped
    return lost


class Keep(logging.Filter):
    seen: ClassVar[list[logging.LogRecord]] = []

    def filter(self, record: logging.LogRecord) -> bool:
        Keep.seen.append(record)
        return True


class Hostile:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")

    __str__ = __repr__


@pytest.fixture
def graylog() -> Iterator[StrictCollector]:
    with StrictCollector(Graylog()) as fake:
        yield fake


# -- the preset, from dictConfig alone --------------------------------------------------


def test_dictconfig_ships_exact_gelf(graylog: StrictCollector) -> None:
    """A dictConfig handler posts one GELF 1.1 message per request to /gelf:
    syslog levels, the record's time, the traceback in full_message, extras
    as _fields (_id renamed, containers and booleans as JSON text)."""
    Keep.seen = []
    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"keep": {"()": Keep}},
        "handlers": {"gelf": {
            "class": "logdrain.DrainHandler",
            "url": graylog.base_url,  # no path: /gelf is appended
            "preset": "gelf",
            "host": "app-1",
            "concurrency": 1,
            "flush_interval": "0.05",
            "backoff_initial": 0.01,
            "backoff_max": 0.05,
        }},
        "loggers": {"app.gelf": {"handlers": ["gelf"], "filters": ["keep"], "level": "DEBUG"}},
    })  # fmt: skip
    log = logging.getLogger("app.gelf")
    handler = log.handlers[0]
    try:
        assert isinstance(handler, logdrain.DrainHandler)
        assert handler.drain.settings.batch_size == 1
        assert handler.drain.settings.url == graylog.url
        log.debug("debugging %d", 1)
        log.info("two\nlines", extra={"id": 7, "user": {"name": "ann"}, "ok": True})
        log.warning("careful", extra={"ratio": 0.5, "tags": ["a", "b"], "none": None})
        try:
            raise ValueError("bad value")
        except ValueError:
            log.exception("failed")
        log.critical("down", extra={"source": "db", "gl2_source_input": "x", "a b": 1})
        assert handler.drain.flush(timeout=10) is True
        stats = handler.drain.stats()
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
    assert (stats.delivered, stats.rejected, stats.failed, stats.retries) == (5, 0, 0, 0)
    assert stats.balanced
    assert dropped(graylog) == []
    debug, info, warning, error, critical = Keep.seen
    assert error.exc_info is not None
    trace = "".join(traceback.format_exception(*error.exc_info)).rstrip("\n")

    def base(record: logging.LogRecord, level: int, short: str) -> dict[str, Any]:
        return {"version": "1.1", "host": "app-1", "short_message": short,
                "timestamp": round(record.created, 3), "level": level}  # fmt: skip

    logger = {"_logger": "app.gelf"}
    assert graylog.records == [
        {**base(debug, 7, "debugging 1"), **logger},
        {**base(info, 6, "two"), "full_message": "two\nlines", **logger, "_id_": 7,
         "_user": '{"name":"ann"}', "_ok": "true"},
        {**base(warning, 4, "careful"), **logger, "_ratio": 0.5, "_tags": '["a","b"]',
         "_none": "null"},
        {**base(error, 3, "failed"), "full_message": "failed\n" + trace, **logger},
        {**base(critical, 2, "down"), **logger, "_source_": "db", "_user_gl2_source_input": "x",
         "_a_b": 1},
    ]  # fmt: skip
    assert len(graylog.requests) == 5
    for request in graylog.requests:
        assert request.method == "POST" and request.path == "/gelf"
        assert request.headers["Content-Type"] == "application/json"
        assert isinstance(json.loads(request.body), dict)  # one message, not a batch
        assert request.status == 202


def test_default_host_is_this_machine(graylog: StrictCollector) -> None:
    with logdrain.Drain(graylog.base_url, preset="gelf", **FAST) as drain:
        assert drain.settings.options == {"host": socket.gethostname().strip() or "localhost"}
        drain.submit({"message": "hi"})
        assert drain.flush(timeout=10) is True
    (message,) = graylog.records
    assert message["host"] == drain.settings.options["host"]
    assert message["level"] == 6  # no level: informational, not GELF's default ALERT


def test_hostile_and_odd_records_still_make_valid_gelf(graylog: StrictCollector) -> None:
    """Empty and blank messages, non-string and forbidden keys, huge values,
    NaN, giant integers, unprintable objects: every one arrives as valid
    GELF (the fake's dropped list stays empty) within Graylog's 64 KiB."""
    odd: list[dict[Any, Any]] = [
        {"message": ""},
        {"message": "   \n\t"},
        {"message": None, "level": "error"},
        {"message": "", "exception": "Traceback (most recent call last):\nKeyError: 'k'"},
        {"message": "keys", 3: "int", (1, 2): "tuple", None: "none", "": "empty", "é": "e"},
        {"message": "forbidden", "_id": 1, "id": 2, "host": "h", "level_": 3, "id_": 4},
        {"message": "values", "nan": math.nan, "inf": -math.inf, "big": 2**80, "b": b"\xff",
         "obj": Hostile(), "set": {1}},
        {"message": "x" * 200_000, "extra": "y" * 100_000},
        {"message": "line\n" * 20_000},
        {Hostile(): "key", "message": "hostile key"},
    ]  # fmt: skip
    with logdrain.Drain(graylog.url, preset="gelf", host="h1", **FAST) as drain:
        for doc in odd:
            drain.submit(doc)
        assert drain.flush(timeout=10) is True
        stats = drain.stats()
    assert (stats.delivered, stats.rejected, stats.failed) == (len(odd), 0, 0)
    assert stats.balanced and stats.truncated >= 2
    assert dropped(graylog) == []
    assert all(len(r.body) <= 64 * 1024 for r in graylog.requests)
    assert [gelf_problem(m) for m in graylog.records] == [None] * len(odd)
    by_short: dict[str, dict[str, Any]] = {}
    for message in graylog.records:
        by_short.setdefault(message["short_message"], message)
    assert "(empty message)" in by_short
    assert by_short["KeyError: 'k'"]["full_message"].startswith("Traceback")
    keys = by_short["keys"]
    assert (keys["_3"], keys["_unnamed"], keys["__"]) == ("int", "empty", "e")
    assert keys["_null"] == "none" and keys["__1_2_"] == "tuple"
    forbidden = by_short["forbidden"]
    assert {k: v for k, v in forbidden.items() if k.startswith("_")} == {
        "__id_": 1, "_id_": 2, "_host_": "h", "_level_": 3, "_id__2": 4,
    }  # fmt: skip
    values = by_short["values"]
    assert (values["_nan"], values["_inf"], values["_big"]) == ("NaN", "-Infinity", str(2**80))
    assert all(isinstance(values[k], str) for k in ("_b", "_obj", "_set"))
    assert by_short["hostile key"]["level"] == 6


def test_structlog_event_is_the_short_message(graylog: StrictCollector) -> None:
    structlog = pytest.importorskip("structlog")
    drain = logdrain.Drain(graylog.url, preset="gelf", host="h1", **FAST)
    try:
        slog = structlog.wrap_logger(
            structlog.testing.ReturnLogger(),
            processors=[
                structlog.processors.add_log_level,
                logdrain.DrainProcessor(drain),
                structlog.processors.JSONRenderer(),
            ],
        )
        slog.error("payment failed", order=42, retry=False)
        assert drain.flush(timeout=10) is True
    finally:
        drain.close()
    (message,) = graylog.records
    assert {k: v for k, v in message.items() if k != "timestamp"} == {
        "version": "1.1", "host": "h1", "short_message": "payment failed", "level": 3,
        "_order": 42, "_retry": "false",
    }  # fmt: skip


# -- Graylog's answers --------------------------------------------------------------------


def test_503_is_retried(graylog: StrictCollector) -> None:
    graylog.play("unavailable")
    with logdrain.Drain(graylog.url, preset="gelf", host="h1", concurrency=1, **FAST) as drain:
        drain.submit({"message": "once"})
        assert drain.flush(timeout=10) is True
        stats = drain.stats()
    assert (stats.delivered, stats.retries, stats.rejected, stats.failed) == (1, 1, 0, 0)
    assert stats.balanced
    assert [r.status for r in graylog.requests] == [503, 202]
    assert [m["short_message"] for m in graylog.records] == ["once"]


def test_413_rejects_the_one_message(capfd: pytest.CaptureFixture[str]) -> None:
    """Over the input's max HTTP chunk size: the single record is rejected, named."""
    with StrictCollector(Graylog(max_chunk_size=2048)) as fake:
        with logdrain.Drain(
            fake.url, preset="gelf", host="h1", max_record_bytes=8192, batch_bytes=16384,
            concurrency=1, **FAST,
        ) as drain:  # fmt: skip
            drain.submit({"message": "z" * 4000})
            drain.submit({"message": "small"})
            assert drain.flush(timeout=10) is True
            stats = drain.stats()
        stored = [m["short_message"] for m in fake.records]
        assert dropped(fake) == []
    assert (stats.delivered, stats.rejected, stats.failed) == (1, 1, 0)
    assert stats.balanced
    assert stored == ["small"]
    err = " ".join(lines(capfd.readouterr().err))
    assert "1 record(s) rejected, not retried: HTTP 413" in err
    assert "over the input's max HTTP chunk size" in err


def test_authorization_header_and_secret(capfd: pytest.CaptureFixture[str]) -> None:
    """token= is the input's Authorization Header Value, sent as it is; a
    wrong one gets Graylog's 401, rejected, and neither value is shown."""
    secret = "Bearer gelf-secret-0123456789"
    with StrictCollector(Graylog(auth_header="Authorization", auth_value=secret)) as fake:
        with logdrain.Drain(fake.url, preset="gelf", host="h1", token=secret, **FAST) as drain:
            drain.submit({"message": "in"})
            assert drain.flush(timeout=10) is True
            good = drain.stats()
            shown = [repr(drain), repr(drain.settings)]
        wrong = "Bearer not-the-secret-000000"
        with logdrain.Drain(fake.url, preset="gelf", host="h1", token=wrong, **FAST) as other:
            other.submit({"message": "out"})
            assert other.flush(timeout=10) is True
            bad = other.stats()
            shown += [repr(other), repr(other.settings)]
        headers = [r.headers.get("Authorization") for r in fake.requests]
        stored = [m["short_message"] for m in fake.records]
    assert (good.delivered, bad.delivered, bad.rejected) == (1, 0, 1)
    assert good.balanced and bad.balanced
    assert headers == [secret, wrong] and stored == ["in"]
    err = lines(capfd.readouterr().err)
    assert any("authorization header is missing or wrong" in line for line in err)
    for value in (secret, wrong, "gelf-secret-0123456789"):
        assert all(value not in text for text in shown + err)


def test_gzip_bodies_are_inflated(graylog: StrictCollector) -> None:
    with logdrain.Drain(graylog.url, preset="gelf", host="h1", compress="gzip", **FAST) as drain:
        drain.submit({"message": "packed", "k": "v"})
        assert drain.flush(timeout=10) is True
    (request,) = graylog.requests
    assert request.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(request.body))["short_message"] == "packed"
    assert [m["_k"] for m in graylog.records] == ["v"]


@pytest.mark.parametrize(
    ("options", "field", "says"),
    [
        ({"host": ""}, "host", "host must be a non-empty string"),
        ({"host": 5}, "host", "host must be a non-empty string"),
        ({"host": "a\nb"}, "host", "one line"),
        ({"host": "h" * 300}, "host", "at most 255"),
        ({"hots": "h"}, "hots", "did you mean 'host'?"),
        ({"batch_size": 5}, "batch_size", "set batch_size=1"),
    ],
)
def test_wrong_options_name_the_option_and_preset(
    options: dict[str, Any], field: str, says: str
) -> None:
    with pytest.raises(logdrain.ConfigError) as info:
        logdrain.Drain("http://127.0.0.1:9", preset="gelf", capture_crashes=False, **options)
    assert info.value.field == field
    assert says in str(info.value)
    assert "'gelf'" in str(info.value) or field == "batch_size"


def test_host_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGDRAIN_HOST", " web-7 ")
    drain = logdrain.Drain("http://127.0.0.1:9", preset="gelf", capture_crashes=False)
    try:
        assert drain.settings.options == {"host": "web-7"}
        assert drain.settings.url == "http://127.0.0.1:9/gelf"
        assert (drain.settings.max_record_bytes, drain.settings.batch_bytes) == (64512, 65536)
    finally:
        drain.close(0)


def test_classifier_and_guard() -> None:
    def outcome(status: int) -> str:
        verdict = classify(Answer(status, "", {}, b"", True))
        return str(verdict.outcome)

    assert [outcome(s) for s in (200, 202, 204)] == ["delivered"] * 3
    assert outcome(413) == "split"
    assert [outcome(s) for s in (408, 429, 500, 502, 503, 504)] == ["retry"] * 6
    assert [outcome(s) for s in (400, 401, 403, 404, 405)] == ["rejected"] * 5
    # The guard: a message record() could not make valid is Unsendable, never sent.
    assert PRESET.record is not None
    with pytest.raises(Unsendable, match="host must be a non-empty string"):
        PRESET.record({"message": "m"}, Context({"host": "  "}, created=1.0))
    assert problem({"version": "1.1", "host": "h", "short_message": "s", "_x": True}) == (
        "field '_x' is not a string or a number"
    )  # fmt: skip


# -- the fake itself ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"host": "h", "short_message": "s"}, 'missing or wrong "version"'),
        ({"version": "1.1", "short_message": "s"}, 'is missing mandatory "host" field'),
        ({"version": "1.1", "host": " ", "short_message": "s"}, 'has empty mandatory "host"'),
        ({"version": "1.1", "host": "h"}, 'is missing mandatory "short_message" field'),
        ({"version": "1.1", "host": "h", "short_message": ""}, 'has an empty "short_message"'),
        ({"version": "1.1", "host": "h", "short_message": "s", "level": 9}, 'invalid "level"'),
        ({"version": "1.1", "host": "h", "short_message": "s", "timestamp": "now"},
         'invalid "timestamp"'),
        ({"version": "1.1", "host": "h", "short_message": "s", "user": 1}, "field 'user' is not _"),
        ({"version": "1.1", "host": "h", "short_message": "s", "_id": 1},
         '"_id" is not allowed'),
        ({"version": "1.1", "host": "h", "short_message": "s", "_source": "x"},
         "Graylog skips or misreads"),
        ({"version": "1.1", "host": "h", "short_message": "s", "_ok": True}, "is a boolean"),
        ({"version": "1.1", "host": "h", "short_message": "s", "_n": None}, "is null"),
        ({"version": "1.1", "host": "h", "short_message": "s", "_d": {}}, "JSON container"),
        ({"version": "1.1", "host": "h", "short_message": "s", "_é": "x"}, "is not _ followed"),
    ],
)  # fmt: skip
def test_fake_takes_invalid_gelf_with_202_and_drops_it(
    graylog: StrictCollector, message: dict[str, Any], reason: str
) -> None:
    answer = requests.post(graylog.url, json=message, timeout=TIMEOUT)
    assert (answer.status_code, answer.content) == (202, b"")
    assert graylog.records == []
    (lost,) = dropped(graylog)
    assert reason in lost["reason"]
    assert json.loads(lost["body"]) == message


def test_fake_transport_rules() -> None:
    valid = {"version": "1.1", "host": "h", "short_message": "s", "_a.b-c": 1.5}
    with StrictCollector(Graylog(auth_header="X-Key", auth_value="k")) as fake:
        key = {"X-Key": "k"}
        assert requests.post(fake.url, json=valid, headers=key, timeout=TIMEOUT).status_code == 202
        assert requests.post(fake.url, json=valid, timeout=TIMEOUT).status_code == 401
        assert requests.get(fake.url, headers=key, timeout=TIMEOUT).status_code == 405
        assert requests.options(fake.url, timeout=TIMEOUT).status_code == 200
        for path in ("/gelf?x=1", "/gelf/", "/"):
            url = fake.base_url + path
            assert requests.post(url, json=valid, headers=key, timeout=TIMEOUT).status_code == 404
        not_json = requests.post(fake.url, data=b"hello", headers=key, timeout=TIMEOUT)
        assert not_json.status_code == 202  # Graylog answers before it decodes
        zipped = gzip.compress(json.dumps(valid).encode())  # GELF's own compression
        assert requests.post(fake.url, data=zipped, headers=key, timeout=TIMEOUT).ok
        assert fake.records == [valid, valid]
        assert [d["reason"] for d in dropped(fake)] == [
            "JSON is null/could not be parsed (invalid JSON)"
        ]
    with StrictCollector(Graylog(max_chunk_size=100)) as small:
        big = {**valid, "_pad": "p" * 200}
        assert requests.post(small.url, json=big, timeout=TIMEOUT).status_code == 413
        assert small.records == [] and dropped(small) == []
    with pytest.raises(ValueError, match="go together"):
        Graylog(auth_header="X-Key")


def test_fake_plays(graylog: StrictCollector) -> None:
    valid = {"version": "1.1", "host": "h", "short_message": "s"}
    graylog.play("too_large")
    graylog.play("error", status=500, body=b"boom")
    graylog.play("unavailable")
    assert requests.post(graylog.url + "?q", json=valid, timeout=TIMEOUT).status_code == 404
    statuses = [requests.post(graylog.url, json=valid, timeout=TIMEOUT) for _ in range(4)]
    assert [(a.status_code, a.content) for a in statuses] == [
        (413, b""), (500, b"boom"), (503, b""), (202, b""),
    ]  # fmt: skip
    assert graylog.records == [valid] and dropped(graylog) == []
    with pytest.raises(ValueError, match="unknown play"):
        graylog.play("bad_event")


def test_a_record_with_an_odd_level_or_time_still_ships(graylog: StrictCollector) -> None:
    """A level number between the standard ones (a filter's 35.5) maps by
    threshold; an impossible creation time becomes now."""
    log = logging.getLogger("test.gelf.broken")
    log.propagate = False
    handler = logdrain.DrainHandler(graylog.url, preset="gelf", host="h1", **FAST)
    log.addHandler(handler)

    class Spoil(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.levelno = 35.5  # type: ignore[assignment]
            return True

    log.addFilter(Spoil())
    try:
        log.warning("still here")
        assert handler.drain.flush(timeout=10) is True
        stats = handler.drain.stats()
    finally:
        log.removeHandler(handler)
        handler.close()
    assert (stats.delivered, stats.rejected) == (1, 0)
    (message,) = graylog.records
    assert message["short_message"] == "still here" and message["level"] == 4
    assert message["timestamp"] == round(message["timestamp"], 3) and dropped(graylog) == []
    assert PRESET.record is not None
    for created in (math.nan, math.inf, -5.0):
        odd = PRESET.record({"message": "m"}, Context({"host": "h"}, created=created))
        assert odd["timestamp"] > 1_600_000_000 and problem(odd) is None
