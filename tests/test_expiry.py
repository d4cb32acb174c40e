"""max_age: a record older than that (by its own time) when a sender takes it
is not sent, and is counted ``expired``; presets whose collector refuses old
records bring a default."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import logdrain
from logdrain.presets import datadog, loki
from logdrain.testing import Collector

pytestmark = pytest.mark.timeout(120)

FAST: dict[str, Any] = {"flush_interval": 0.05, "capture_crashes": False}


def _record(message: str, age: float) -> logging.LogRecord:
    record = logging.LogRecord("app", logging.INFO, __file__, 1, message, None, None)
    record.created = time.time() - age
    return record


def test_stdlib_records_older_than_max_age_are_counted_not_sent(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with Collector() as collector:
        handler = logdrain.DrainHandler(collector.url, max_age="1h", **FAST)
        try:
            handler.handle(_record("fresh", 10))
            handler.handle(_record("stale", 7200))
            handler.handle(_record("fresh too", 3500))
            assert handler.drain.flush(30)
            stats = handler.drain.stats()
        finally:
            handler.close()
        messages = sorted(r["message"] for r in collector.records)
    assert messages == ["fresh", "fresh too"]
    assert (stats.delivered, stats.expired, stats.lost) == (2, 1, 1)
    assert stats.balanced
    assert stats.as_dict()["expired"] == 1
    assert "1 record(s) older than max_age=3600s were not sent" in capfd.readouterr().err


def test_submitted_mappings_expire_by_their_timestamp_or_never() -> None:
    old = (datetime.now(timezone.utc) - timedelta(days=2)).isoformat().replace("+00:00", "Z")
    with Collector() as collector:
        with logdrain.Drain(collector.url, max_age=86400, **FAST) as drain:
            drain.submit({"message": "iso, old", "timestamp": old})
            drain.submit({"message": "epoch, old", "timestamp": time.time() - 90_000})
            drain.submit({"message": "epoch, new", "timestamp": time.time()})
            drain.submit({"message": "no time: never expires"})
            drain.submit({"message": "unreadable time", "timestamp": "yesterday"})
            assert drain.flush(30)
            stats = drain.stats()
        messages = sorted(r["message"] for r in collector.records)
    assert messages == ["epoch, new", "no time: never expires", "unreadable time"]
    assert (stats.expired, stats.delivered, stats.balanced) == (2, 3, True)


def test_a_whole_batch_expired_ends_cleanly() -> None:
    with Collector() as collector:
        handler = logdrain.DrainHandler(collector.url, max_age=60, **FAST)
        try:
            for i in range(50):
                handler.handle(_record(f"old {i}", 120))
            assert handler.drain.flush(30)
            stats = handler.drain.stats()
        finally:
            handler.close()
        assert collector.records == []
    assert (stats.expired, stats.in_flight, stats.queued, stats.balanced) == (50, 0, 0, True)


def test_resent_records_expire_by_the_time_given() -> None:
    with Collector() as collector:
        with logdrain.Drain(collector.url, max_age=60, **FAST) as drain:
            drain.resend(b'{"message":"old"}', created=time.time() - 120)
            drain.resend(b'{"message":"undated"}')
            assert drain.flush(30)
            stats = drain.stats()
        assert [r["message"] for r in collector.records] == ["undated"]
    assert (stats.expired, stats.delivered) == (1, 1)


def test_max_age_is_off_by_default_and_for_generic_presets() -> None:
    for preset in ("json", "ndjson", "elasticsearch", "splunk_hec"):
        drain = logdrain.Drain("http://127.0.0.1:9/x", preset=preset, token="t")
        assert drain.settings.max_age == 0, preset
        drain.close(0)


@pytest.mark.parametrize(
    ("preset", "options", "expected"),
    [
        ("datadog", {"token": "k"}, datadog.MAX_AGE),
        ("loki", {}, loki.MAX_AGE),
    ],
)
def test_presets_whose_collector_refuses_old_records_bring_a_max_age(
    preset: str, options: dict[str, Any], expected: float
) -> None:
    url = "http://127.0.0.1:9"
    drain = logdrain.Drain(url, preset=preset, **options)
    assert drain.settings.max_age == expected
    drain.close(0)
    drain = logdrain.Drain(url, preset=preset, max_age=0, **options)  # off, explicitly
    assert drain.settings.max_age == 0
    drain.close(0)


@pytest.mark.parametrize(
    ("given", "seconds"),
    [("90", 90.0), ("90s", 90.0), ("30m", 1800.0), ("2h", 7200.0), ("7d", 604800.0), (1.5, 1.5)],
)
def test_max_age_takes_seconds_or_a_duration(
    given: Any, seconds: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGDRAIN_MAX_AGE", str(given))
    drain = logdrain.Drain("http://127.0.0.1:9/x")
    assert drain.settings.max_age == seconds
    drain.close(0)


@pytest.mark.parametrize("given", ["-5", "soon", "2 weeks", True, -1])
def test_a_wrong_max_age_is_a_config_error(given: Any) -> None:
    with pytest.raises(logdrain.ConfigError) as info:
        logdrain.Drain("http://127.0.0.1:9/x", max_age=given)
    assert info.value.field == "max_age"
    assert "18h" in info.value.fix
