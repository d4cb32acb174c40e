"""Shortening a record above max_record_bytes: core fields first, then what
fits, in the record's own order, with a note saying what was dropped."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest

from logdrain.config import resolve
from logdrain.encode import Encoder
from logdrain.records import snapshot

pytestmark = pytest.mark.timeout(60)

URL = "http://127.0.0.1:9/x"
RFC3339_UTC_MICROS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def strict_loads(data: bytes) -> Any:
    def reject(name: str) -> Any:
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(data.decode("utf-8"), parse_constant=reject)


def _wide_record(fields: int, size: int, char: str = "x") -> logging.LogRecord:
    record = logging.LogRecord(
        "app.wide", logging.ERROR, "/src/app.py", 1, "wide %s", ("one",), None
    )
    for i in range(fields):
        setattr(record, f"f{i:05d}", char * size)
    return record


@pytest.mark.parametrize("char", ["x", "é", '"'])
def test_record_spread_over_many_fields_keeps_core_and_what_fits(char: str) -> None:
    """600 fields of 500 characters at the default 256 KiB: the record keeps
    its core fields and as many fields as fit, in order, and says what it dropped."""
    encoder = Encoder(resolve({"url": URL}))
    limit = encoder._max_bytes
    per_char = len(json.dumps(char, ensure_ascii=False).encode()) - 2  # bytes once escaped
    data, truncated = encoder.encode(snapshot(_wide_record(600, 500 // per_char, char)))
    assert truncated is True
    assert len(data) <= limit
    doc = strict_loads(data)
    assert (doc["level"], doc["logger"], doc["message"]) == ("ERROR", "app.wide", "wide one")
    assert RFC3339_UTC_MICROS.match(doc["timestamp"])
    fields = [k for k in doc if k.startswith("f")]
    assert len(fields) > 400
    whole = [k for k in fields if "[logdrain: truncated" not in doc[k]]
    assert whole == [f"f{i:05d}" for i in range(len(whole))]  # the record's own order
    assert len(fields) - len(whole) <= 1  # at most one cut to fill the room
    note = doc["logdrain_truncated"]
    assert note["dropped_fields"] == 600 - len(fields)
    assert note["shortened_fields"] == len(fields) - len(whole)
    assert note["original_bytes"] > limit
    assert len(data) > limit - 1024  # the room is used, not wasted


def test_long_message_and_traceback_are_both_cut_and_small_fields_kept() -> None:
    limit = 64 * 1024
    encoder = Encoder(resolve({"url": URL, "max_record_bytes": limit}))
    record = _wide_record(50, 10)
    record.msg, record.args = "m" * 5_000_000, None
    record.exc_text = "t" * 5_000_000
    data, truncated = encoder.encode(snapshot(record))
    assert truncated is True and len(data) <= limit
    doc = strict_loads(data)
    assert doc["level"] == "ERROR" and doc["logger"] == "app.wide"
    for key in ("message", "exception"):
        assert doc[key].endswith(" chars]") and "[logdrain: truncated" in doc[key]
        assert len(doc[key]) > limit // 8
    assert all(doc[f"f{i:05d}"] == "x" * 10 for i in range(50))
    assert doc["logdrain_truncated"]["dropped_fields"] == 0


def test_shortening_ten_thousand_fields_stays_near_linear() -> None:
    """10,000 fields (2 MB) and a 64 KiB limit: done well within the test's
    timeout (an encode of the whole record per field would take minutes)."""
    encoder = Encoder(resolve({"url": URL, "max_record_bytes": 64 * 1024}))
    for _ in range(5):
        data, truncated = encoder.encode(snapshot(_wide_record(10_000, 200)))
        assert truncated is True and len(data) <= 64 * 1024
    doc = strict_loads(data)
    assert doc["message"] == "wide one"
    assert doc["logdrain_truncated"]["dropped_fields"] > 9000


@pytest.mark.parametrize(
    "shape",
    [
        {"envelope": {"service": "s" * 100}},
        {"envelope": {"service": "api"}, "record_key": "event"},
        {"envelope": {"service": "api"}, "record_key": "event", "record_as_string": True},
    ],
    ids=["envelope", "record_key", "record_as_string"],
)
def test_wrapped_records_are_shortened_within_the_limit(shape: dict[str, Any]) -> None:
    limit = 32 * 1024
    encoder = Encoder(resolve({"url": URL, "max_record_bytes": limit, **shape}))
    data, truncated = encoder.encode(snapshot(_wide_record(300, 300, '"')))
    assert truncated is True
    assert len(data) <= limit
    outer = strict_loads(data)
    inner = outer
    if "record_key" in shape:
        inner = outer["event"]
        if shape.get("record_as_string"):
            inner = json.loads(inner)
    assert outer["service"] == shape["envelope"]["service"]
    assert (inner["level"], inner["message"]) == ("ERROR", "wide one")
    assert inner["logdrain_truncated"]["dropped_fields"] > 0
    assert len([k for k in inner if k.startswith("f")]) > 20


def test_truncation_note_respects_a_fields_allow_list() -> None:
    encoder = Encoder(
        resolve(
            {
                "url": URL,
                "max_record_bytes": 4096,
                "fields": ["message", "level", "f00001", "f00002"],
            }
        )
    )
    data, truncated = encoder.encode(snapshot(_wide_record(20, 3000)))
    assert truncated is True and len(data) <= 4096
    doc = strict_loads(data)
    assert set(doc) == {"message", "level", "f00001", "f00002"}
