"""Payload shaping for picky collectors: allow-list, renames, envelope, record as string."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import sys
from collections.abc import Iterator

import pytest

import logdrain
from logdrain.config import resolve
from logdrain.encode import Encoder

from .picky import PickyCollector

TOKEN = "tok-picky-123"


@pytest.fixture
def picky() -> Iterator[PickyCollector]:
    with PickyCollector(bucket="team-a", token=TOKEN) as p:
        yield p


def _picky_config(url: str, **overrides: object) -> dict[str, object]:
    handler: dict[str, object] = {
        "class": "logdrain.DrainHandler",
        "url": url,
        "token": TOKEN,
        "format": "object",
        "batch_size": 1,
        "envelope": {"bucket": "team-a"},
        "envelope_required": ["bucket"],
        "record_key": "payload",
        "record_as_string": True,
        "rename": {"timestamp": "ts", "level": "severity", "message": "msg"},
        "fields": ["ts", "severity", "msg", "service"],
        "flush_interval": 0.05,
    }
    handler.update(overrides)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"picky": handler},
        "loggers": {"test.picky": {"handlers": ["picky"], "level": "INFO", "propagate": False}},
    }


def _reset_logging() -> None:
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})


def test_picky_collector_from_dictconfig_alone(picky: PickyCollector) -> None:
    """The user-reported collector is satisfied by configuration alone."""
    logging.config.dictConfig(_picky_config(picky.url))
    log = logging.getLogger("test.picky")
    try:
        log.info("paid %d", 12, extra={"service": "billing", "user_email": "a@b.example"})
        log.warning("late")
        assert picky.wait_for(2)
        handler = log.handlers[0]
        assert isinstance(handler, logdrain.DrainHandler)
        assert handler.drain.flush(30)
        assert handler.drain.stats().delivered == 2
    finally:
        _reset_logging()
    assert picky.refusals == []
    # batch_size=1 with concurrency=2: two requests in flight, arrival order is free
    first, second = sorted(picky.accepted, key=lambda r: r["msg"] != "paid 12")
    assert first == {
        "ts": first["ts"],
        "severity": "INFO",
        "msg": "paid 12",
        "service": "billing",
    }  # user_email, logger and everything else were left out
    assert second["severity"] == "WARNING"


def test_unexpected_field_is_visible_in_one_stderr_line(
    picky: PickyCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the allow-list the collector 404s; the stderr line says which field and why."""
    # sys.stderr itself, not pytest's fd capture: on 3.10 a sender thread's line
    # could land outside capfd's buffer when an earlier test closed its capture.
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    logging.config.dictConfig(_picky_config(picky.url, fields=[]))
    log = logging.getLogger("test.picky")
    try:
        log.info("hello")
        assert picky.wait_for(0, n_refused=1)
        handler = log.handlers[0]
        assert isinstance(handler, logdrain.DrainHandler)
        assert handler.drain.flush(30)
        stats = handler.drain.stats()
    finally:
        _reset_logging()
    assert stats.rejected == 1
    assert stats.retries == 0
    err = stderr.getvalue()
    lines = [line for line in err.splitlines() if "404" in line]
    assert len(lines) == 1
    assert "unexpected field logger" in lines[0]
    assert TOKEN not in err


def test_required_envelope_value_cannot_silently_default() -> None:
    """A missing or empty bucket fails at construction, naming envelope."""
    for envelope in ({}, {"bucket": ""}, {"bucket": None}, {"bucket": "  "}):
        with pytest.raises(logdrain.ConfigError, match="envelope") as info:
            logdrain.Drain("http://127.0.0.1:9/x", envelope=envelope, envelope_required=["bucket"])
        assert "bucket" in str(info.value)


def test_envelope_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """LOGDRAIN_ENVELOPE supplies the bucket as JSON."""
    monkeypatch.setenv("LOGDRAIN_ENVELOPE", '{"bucket": "team-env"}')
    settings = resolve({"url": "http://127.0.0.1:9/x", "envelope_required": ["bucket"]})
    assert settings.envelope == {"bucket": "team-env"}


def test_record_as_string_needs_record_key() -> None:
    """record_as_string without record_key fails, naming the fix."""
    with pytest.raises(logdrain.ConfigError, match="record_key"):
        logdrain.Drain("http://127.0.0.1:9/x", record_as_string=True)


def test_envelope_merged_without_record_key() -> None:
    """An envelope without record_key adds its keys to every record (envelope wins)."""
    enc = Encoder(resolve({"url": "http://127.0.0.1:9/x", "envelope": {"source": "svc"}}))
    data, cut = enc.encode({"message": "m", "source": "record's own"})
    assert not cut
    assert json.loads(data) == {"message": "m", "source": "svc"}


def test_record_as_object_under_key() -> None:
    """record_key without record_as_string nests the record as an object."""
    enc = Encoder(
        resolve({"url": "http://127.0.0.1:9/x", "envelope": {"b": "x"}, "record_key": "r"})
    )
    data, _ = enc.encode({"message": "m"})
    assert json.loads(data) == {"b": "x", "r": {"message": "m"}}


def test_oversized_record_inside_a_string_is_truncated_validly() -> None:
    """max_record_bytes applies to the whole wrapped object; the inner string stays valid JSON."""
    enc = Encoder(
        resolve(
            {
                "url": "http://127.0.0.1:9/x",
                "envelope": {"bucket": "team-a"},
                "record_key": "payload",
                "record_as_string": True,
                "max_record_bytes": 4096,
            }
        )
    )
    data, cut = enc.encode({"message": 'quote " heavy ' * 5000, "level": "INFO"})
    assert cut
    assert len(data) <= 4096
    outer = json.loads(data)
    assert outer["bucket"] == "team-a"
    inner = json.loads(outer["payload"])
    assert inner["level"] == "INFO"
    assert "truncated" in inner["message"]
    assert len(inner["message"]) > 1000  # shortened, not emptied


def test_rename_collision_is_an_error() -> None:
    """Two fields renamed to one name fail at construction."""
    with pytest.raises(logdrain.ConfigError, match="rename"):
        logdrain.Drain("http://127.0.0.1:9/x", rename={"a": "x", "b": "x"})
