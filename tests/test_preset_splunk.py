"""The ``splunk_hec`` preset against the strict HEC fake on 127.0.0.1:
the event envelope, ``Authorization: Splunk``, HEC's codes (busy retried,
token and format codes rejected with HEC's text, an invalid event settled
per record), 413 split, options checked at construction."""

from __future__ import annotations

import json
import logging
import logging.config
import socket
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any, ClassVar

import pytest

import logdrain
from logdrain.testing.dialects._base import StrictCollector
from logdrain.testing.dialects._splunk import SplunkHEC

pytestmark = pytest.mark.timeout(120)

TOKEN = "11111111-2222-3333-4444-555555555555"
OFF = "99999999-8888-7777-6666-disabled0000"
FAST: dict[str, Any] = {"flush_interval": 0.05, "backoff_initial": 0.01, "backoff_max": 0.05}


class Keep(logging.Handler):
    """Keeps the records it sees, for their exact ``created``."""

    seen: ClassVar[list[logging.LogRecord]] = []

    def emit(self, record: logging.LogRecord) -> None:
        Keep.seen.append(record)


@pytest.fixture
def hec() -> Iterator[StrictCollector]:
    dialect = SplunkHEC(tokens=[TOKEN], disabled_tokens=[OFF], indexes=["main", "app"])
    with StrictCollector(dialect) as fake:
        yield fake


def stamp(created: float) -> str:
    """The generic document's ``timestamp`` of a record created at ``created``."""
    second = datetime.fromtimestamp(int(created), timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return "%s.%06dZ" % (second, (created - int(created)) * 1e6)  # noqa: UP031


def drain(fake: StrictCollector, **settings: Any) -> logdrain.Drain:
    return logdrain.Drain(fake.base_url, preset="splunk_hec", token=TOKEN, **{**FAST, **settings})


def test_dictconfig_ships_the_exact_hec_events(hec: StrictCollector) -> None:
    Keep.seen = []
    name = "test.preset_splunk.dictconfig"
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {
                "hec": {
                    "class": "logdrain.DrainHandler",
                    "url": hec.base_url,
                    "preset": "splunk_hec",
                    "token": TOKEN,
                    "host": "web-1",
                    "source": "orders",
                    "sourcetype": "_json",
                    "index": "app",
                    "indexed_fields": '{"env": "prod", "teams": ["a", "b"]}',
                    "field_keys": "user,amount",
                    "flush_interval": "0.05",
                },
                "keep": {"()": f"{__name__}.Keep"},
            },
            "loggers": {name: {"handlers": ["keep", "hec"], "level": "DEBUG"}},
        }
    )
    log = logging.getLogger(name)
    handler = log.handlers[1]
    try:
        assert isinstance(handler, logdrain.DrainHandler)
        assert handler.drain.settings.url == hec.url  # the path completes a bare URL
        log.info("paid %s", "bob", extra={"user": "u1", "amount": 3})
        log.warning("slow")
        assert handler.drain.flush(10) is True
        stats = handler.drain.stats()
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
    assert (stats.delivered, stats.rejected, stats.failed, stats.balanced) == (2, 0, 0, True)
    first, second = Keep.seen
    envelope = {"host": "web-1", "source": "orders", "sourcetype": "_json", "index": "app"}
    assert hec.records == [
        {
            "time": pytest.approx(first.created, abs=1e-6),
            **envelope,
            "fields": {"env": "prod", "teams": ["a", "b"], "user": "u1", "amount": "3"},
            "event": {
                "timestamp": stamp(first.created),
                "level": "INFO",
                "logger": name,
                "message": "paid bob",
                "user": "u1",
                "amount": 3,
            },
        },
        {
            "time": pytest.approx(second.created, abs=1e-6),
            **envelope,
            "fields": {"env": "prod", "teams": ["a", "b"]},
            "event": {
                "timestamp": stamp(second.created),
                "level": "WARNING",
                "logger": name,
                "message": "slow",
            },
        },
    ]
    (request,) = hec.requests
    assert request.path == "/services/collector/event"
    assert request.headers["Authorization"] == f"Splunk {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.body.count(b"\n") == 1  # two objects, one newline between


def test_defaults_host_is_this_machine_and_unset_keys_are_left_out(hec: StrictCollector) -> None:
    with drain(hec) as d:
        assert d.settings.options["host"] == socket.gethostname()
        assert d.settings.batch_bytes == 900_000  # below Splunk Cloud's 1 MB
        d.submit({"message": "m", "level": "info"})
        assert d.flush(10) is True
    (event,) = hec.records
    assert set(event) == {"time", "host", "event"}
    assert event["host"] == socket.gethostname()
    assert event["event"] == {"message": "m", "level": "info"}


@pytest.mark.parametrize(
    ("token", "options", "said"),
    [
        ("22222222-0000-0000-0000-000000000000", {}, "HEC code 4: Invalid token"),
        (OFF, {}, "HEC code 1: Token disabled"),
        (TOKEN, {"index": "secret"}, "HEC code 7: Incorrect index"),
    ],
)
def test_token_and_format_codes_are_rejected_with_hec_text(
    hec: StrictCollector,
    capfd: pytest.CaptureFixture[str],
    token: str | None,
    options: dict[str, Any],
    said: str,
) -> None:
    settings: dict[str, Any] = {**FAST, "batch_size": 3, "flush_interval": 30, **options}
    with logdrain.Drain(hec.base_url, preset="splunk_hec", token=token, **settings) as d:
        for i in range(3):
            d.submit({"message": f"m{i}"})
        assert d.flush(10) is True
        stats = d.stats()
        shown = [repr(d), repr(d.settings)]
    assert (stats.delivered, stats.rejected, stats.retries, stats.balanced) == (0, 3, 0, True)
    assert hec.records == []
    err = capfd.readouterr().err
    assert "3 record(s) rejected" in err and said in err
    if token:
        assert all(token not in text for text in [err, *shown])


@pytest.mark.parametrize("preset", ["splunk_hec", "datadog"])
def test_a_missing_token_fails_at_construction(preset: str) -> None:
    """HEC answers code 2 (Token is required) and Datadog 403 to every
    request without one: that is a wrong setting, found at construction."""
    with pytest.raises(logdrain.ConfigError) as info:
        logdrain.Drain("http://127.0.0.1:9", preset=preset, capture_crashes=False)
    assert info.value.field == "token"
    assert preset in str(info.value) and "LOGDRAIN_TOKEN" in str(info.value)


@pytest.mark.parametrize("code", [9, 8, 18])
def test_busy_and_internal_error_codes_are_retried_then_delivered(
    hec: StrictCollector, code: int
) -> None:
    hec.play("code", code=code, times=2)
    with drain(hec, batch_size=3, flush_interval=30, concurrency=1, compress="gzip") as d:
        for i in range(3):
            d.submit({"message": f"m{i}"})
        assert d.flush(10) is True
        stats = d.stats()
    assert (stats.delivered, stats.retries, stats.rejected, stats.balanced) == (3, 2, 0, True)
    assert [r.status for r in hec.requests] == [503 if code != 8 else 500] * 2 + [200]
    assert [e["event"]["message"] for e in hec.records] == ["m0", "m1", "m2"]
    assert hec.requests[0].headers["Content-Encoding"] == "gzip"


def test_an_invalid_event_settles_per_record(
    hec: StrictCollector, capfd: pytest.CaptureFixture[str]
) -> None:
    """Code 6 naming event 2 of 5: events 0 and 1 were indexed (delivered),
    2 is rejected with HEC's text, 3 and 4 are sent again, alone."""
    hec.play("invalid_event", number=2)
    with drain(hec, batch_size=5, flush_interval=30, concurrency=1) as d:
        for i in range(5):
            d.submit({"message": f"m{i}"})
        assert d.flush(10) is True
        stats = d.stats()
    assert (stats.delivered, stats.rejected, stats.retries, stats.balanced) == (4, 1, 1, True)
    assert [e["event"]["message"] for e in hec.records] == ["m0", "m1", "m3", "m4"]
    first, second = hec.requests
    assert (first.status, first.record_count, second.status, second.record_count) == (
        400,
        5,
        200,
        2,
    )
    err = capfd.readouterr().err
    assert "1 record(s) rejected" in err
    assert "HEC code 6: Invalid data format" in err and "invalid-event-number" in err


def test_413_splits_and_every_record_arrives_once(capfd: pytest.CaptureFixture[str]) -> None:
    """A body above max_content_length is refused whole: halves, down to
    single events; one event that alone is too large is rejected."""
    dialect = SplunkHEC(tokens=[TOKEN], max_content_length=1500)
    with StrictCollector(dialect) as hec:
        with drain(
            hec, batch_size=17, flush_interval=30, batch_bytes=100_000, max_record_bytes=50_000
        ) as d:
            for i in range(16):
                d.submit({"message": f"m{i:02d} " + "x" * 200})
            d.submit({"message": "huge " + "y" * 3000})
            assert d.flush(10) is True
            stats = d.stats()
        got = sorted(e["event"]["message"][:3] for e in hec.records)
        statuses = {r.status for r in hec.requests}
        sizes = [len(r.body) for r in hec.requests if r.status == 200]
    assert (stats.delivered, stats.rejected, stats.failed, stats.balanced) == (16, 1, 0, True)
    assert got == [f"m{i:02d}" for i in range(16)]  # each exactly once
    assert statuses == {200, 413} and max(sizes) <= 1500
    err = capfd.readouterr().err
    assert "1 record(s) rejected" in err and "max_content_length" in err
    assert "too large (maximum is 1500)" in err


def test_a_channel_for_tokens_with_indexer_acknowledgement(
    capfd: pytest.CaptureFixture[str],
) -> None:
    channel = str(uuid.uuid4())
    with StrictCollector(SplunkHEC(tokens=[TOKEN], require_channel=True)) as hec:
        with drain(hec) as d:
            d.submit({"message": "no channel"})
            assert d.flush(10) is True
            assert d.stats().rejected == 1
        with drain(hec, channel=channel.upper()) as d:
            d.submit({"message": "with channel"})
            assert d.flush(10) is True
            assert (d.stats().delivered, d.stats().balanced) == (1, True)
        refused, taken = hec.requests
    assert "X-Splunk-Request-Channel" not in refused.headers
    assert taken.headers["X-Splunk-Request-Channel"] == channel
    assert [e["event"]["message"] for e in hec.records] == ["with channel"]
    assert "HEC code 10: Data channel is missing" in capfd.readouterr().err


@pytest.mark.parametrize(
    ("options", "field", "says"),
    [
        ({"indexed_fields": {"nested": {"a": 1}}}, "indexed_fields", "flat"),
        ({"indexed_fields": "env=prod"}, "indexed_fields", "not a JSON object"),
        ({"field_keys": 3}, "field_keys", "list of names"),
        ({"host": " "}, "host", "non-empty string"),
        ({"index": 5}, "index", "non-empty string"),
        ({"sourcetype": "a\nb"}, "sourcetype", "one line"),
        ({"channel": "nope"}, "channel", "GUID"),
        ({"indexfields": {}}, "indexfields", "did you mean 'indexed_fields'?"),
    ],
)
def test_wrong_options_fail_at_construction(options: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(logdrain.ConfigError) as info:
        logdrain.Drain("http://127.0.0.1:9", preset="splunk_hec", capture_crashes=False, **options)
    assert info.value.field == field
    assert says in str(info.value) and "preset 'splunk_hec'" in str(info.value)


def test_options_from_the_environment(
    hec: StrictCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGDRAIN_INDEXED_FIELDS", json.dumps({"env": "staging"}))
    monkeypatch.setenv("LOGDRAIN_SOURCETYPE", "app:log")
    monkeypatch.setenv("LOGDRAIN_TOKEN", TOKEN)
    with logdrain.Drain(hec.base_url, preset="splunk_hec", sourcetype="explicit", **FAST) as d:
        d.submit({"message": "m"})
        assert d.flush(10) is True
    (event,) = hec.records
    assert (event["sourcetype"], event["fields"]) == ("explicit", {"env": "staging"})


def test_a_record_with_no_fields_left_is_rejected_before_sending(
    hec: StrictCollector, capfd: pytest.CaptureFixture[str]
) -> None:
    with drain(hec, fields="message") as d:
        d.submit({"level": "info"})  # the allow-list leaves nothing: HEC refuses blank events
        d.submit({"message": "kept"})
        assert d.flush(10) is True
        stats = d.stats()
    assert (stats.delivered, stats.rejected, stats.balanced) == (1, 1, True)
    assert [e["event"] for e in hec.records] == [{"message": "kept"}]
    assert "blank event" in capfd.readouterr().err


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, b'{"text":"Invalid data format","code":6}', (0, 3, 0)),  # names no event
        (400, b'{"text":"Invalid data format","code":6,"invalid-event-number":3}', (0, 3, 0)),
        (502, b"<html>bad gateway</html>", (3, 0, 1)),  # a proxy's answer: by status
        (200, b'{"text":"Success","code":0,"ackId":7}', (3, 0, 0)),
    ],
)
def test_answers_without_a_usable_event_number_or_hec_body(
    hec: StrictCollector, status: int, body: bytes, expected: tuple[int, int, int]
) -> None:
    """(delivered, rejected, retries) for answers the per-record rule does not cover."""
    hec.script(status, body=body)
    with drain(hec, batch_size=3, flush_interval=30, concurrency=1) as d:
        for i in range(3):
            d.submit({"message": f"m{i}"})
        assert d.flush(10) is True
        stats = d.stats()
    assert (stats.delivered, stats.rejected, stats.retries) == expected
    assert stats.balanced and hec.count == (3 if status == 502 else 0)
