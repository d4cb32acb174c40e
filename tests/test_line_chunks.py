"""The line chunks of the ``lines`` presets (NDJSON, Seq, Splunk HEC: an
event a line; Elasticsearch: an action line and a document) make the body
the per-record path makes, hostile values included; a chunk comes apart
into exactly the per-record pieces where a split, a verdict or the
dead-letter file names single records; and the preset's ``lines`` is checked."""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import logdrain
from logdrain.config import resolve
from logdrain.deadletter import read
from logdrain.encode import Encoder
from logdrain.mapping import Mapper
from logdrain.pieces import explode
from logdrain.presets import Keyed, Preset, get
from logdrain.presets import elasticsearch as es_preset
from logdrain.records import EVENT, stdlib_item
from logdrain.testing.dialects import Elasticsearch, StrictCollector

from . import proc
from .test_mapping_fast_paths import EXTRAS, _items

pytestmark = pytest.mark.timeout(120)

URL = "http://127.0.0.1:9/x"
LOGGER = logging.getLogger("line.chunks")
MAPPED = ["seq", "splunk_hec", "elasticsearch"]
ENCODERS = ["orjson", "stdlib"]


def _settings(preset: str, json_encoder: str, **options: Any) -> Any:
    if json_encoder == "orjson":
        pytest.importorskip("orjson")
    return resolve(
        {"url": URL, "preset": preset, "token": "t", "json_encoder": json_encoder, **options}
    )


def _plain(count: int, created: float = 1764620000.25) -> list[Any]:
    """``count`` usual stdlib records (every fast path takes them)."""
    items = []
    for i in range(count):
        record = LOGGER.makeRecord(LOGGER.name, logging.INFO, __file__, 1, "r %d", (i,), None)
        record.__dict__.update({"user": "u", "n": i})
        record.created = created + i / 1000
        items.append(stdlib_item(record))
    return items


def _body(preset: str, parts: list[Any]) -> bytes:
    return bytes(get(preset).frame(parts))


@pytest.mark.parametrize("json_encoder", ENCODERS)
@pytest.mark.parametrize("preset", MAPPED)
@pytest.mark.parametrize("count", [1, 99, 100, 101, 250])
def test_chunks_frame_the_body_of_the_per_record_parts(
    preset: str, json_encoder: str, count: int
) -> None:
    """Chunks of up to 100 records, each of ``lines`` lines: the same body,
    and each chunk apart is the per-record pieces, record ids included."""
    settings = _settings(preset, json_encoder)
    mapper = Mapper(settings, Encoder(settings))
    items = _plain(count)
    chunks = mapper.chunks(items, "0af7651916cd43dd")
    parts = mapper.parts(items, "0af7651916cd43dd")
    assert chunks is not None and parts is not None
    assert [n for n, _, _ in chunks] == [min(100, count - i) for i in range(0, count, 100)]
    assert all(type(part) is bytes for _, part, _ in chunks)
    assert _body(preset, [p for _, p, _ in chunks]) == _body(preset, [p for _, p, _ in parts])
    lines = get(preset).lines
    apart = [one for piece in chunks for one in explode(piece, lines)]
    assert apart == parts
    assert sum(size for _, _, size in chunks) + sum(n - 1 for n, _, _ in chunks) * lines >= sum(
        size for _, _, size in parts
    )


@pytest.mark.parametrize("json_encoder", ENCODERS)
@pytest.mark.parametrize("preset", MAPPED)
@pytest.mark.parametrize("created", [None, 0.0, 1764620000.123456, -1.5])
def test_hostile_records_chunk_as_they_map_alone(
    preset: str, json_encoder: str, created: float | None
) -> None:
    """NaN, surrogates, control characters, odd keys: a batch either chunks
    into the per-record pieces or is left to the per-record path (None)."""
    settings = _settings(preset, json_encoder)
    mapper = Mapper(settings, Encoder(settings))
    items = _items(created)
    lines = get(preset).lines
    whole = mapper.chunks(items, "pre")
    if whole is not None:
        expected = [(1, *mapper.part(item, f"pre{i}")[:2]) for i, item in enumerate(items)]
        assert [one for piece in whole for one in explode(piece, lines)] == expected
    clean = [item for item in items if mapper.chunks([item], "pre") is not None]
    assert len(clean) >= len(EXTRAS)
    got = mapper.chunks(clean, "pre")
    assert got is not None
    expected = [(1, *mapper.part(item, f"pre{i}")[:2]) for i, item in enumerate(clean)]
    assert [one for piece in got for one in explode(piece, lines)] == expected


@pytest.mark.parametrize("json_encoder", ENCODERS)
@pytest.mark.parametrize("count", [1, 100, 101])
def test_ndjson_chunks_are_the_per_record_lines(json_encoder: str, count: int) -> None:
    settings = _settings("ndjson", json_encoder)
    encoder = Encoder(settings)
    items = [(EVENT, {"event": "from structlog", "n": 1.5}, 1764620000.5), *_plain(count)]
    chunks = encoder.encode_batch(items)
    assert chunks is not None
    per_record = [encoder.encode(item)[0] for item in items]
    assert b"\n".join(part for _, part in chunks) == b"\n".join(per_record)
    assert sum(n for n, _ in chunks) == len(items)
    pieces = [(n, part, len(part)) for n, part in chunks]
    assert [one[1] for piece in pieces for one in explode(piece, 1)] == per_record


@pytest.mark.parametrize("json_encoder", ENCODERS)
def test_ndjson_hostile_records_take_the_per_record_path(json_encoder: str) -> None:
    settings = _settings("ndjson", json_encoder)
    encoder = Encoder(settings)
    items = _items(1764620000.5)
    chunks = encoder.encode_batch(items)
    if chunks is not None:  # then exactly the per-record lines
        per_record = [encoder.encode(item)[0] for item in items]
        assert b"\n".join(part for _, part in chunks) == b"\n".join(per_record)
    nan = _plain(3)
    nan[1][1]["bad"] = float("nan")
    assert encoder.encode_batch(nan) is None  # "NaN" as the stdlib path writes it


def test_a_chunk_above_max_record_bytes_stays_a_piece_a_record() -> None:
    settings = _settings("seq", "stdlib", max_record_bytes=4000)
    mapper = Mapper(settings, Encoder(settings))
    items = _plain(150)
    got = mapper.chunks(items)
    assert got is not None and all(n == 1 for n, _, _ in got) and len(got) == 150
    assert got == mapper.parts(items)


def test_explode_refuses_a_chunk_that_does_not_cut_into_its_records() -> None:
    assert explode((2, b'{"a":1}\n{"b":2}', 15), 1) == [(1, b'{"a":1}', 7), (1, b'{"b":2}', 7)]
    assert explode((1, b"[1]", 3), 1) == [(1, b"[1]", 3)]  # one record of one line: as it is
    assert explode((1, b"[1]\n[2]", 7), 2) == [(1, (b"[1]", b"[2]"), 6)]
    with pytest.raises(ValueError, match="has 3"):
        explode((2, b"a\nb\nc", 5), 1)
    with pytest.raises(ValueError, match="has 2"):
        explode((2, b"a\nb", 3), 2)


def test_elasticsearch_frame_takes_chunks_and_pairs_together() -> None:
    pairs = [(b'{"create":{}}', b'{"n":%d}' % i) for i in range(3)]
    chunk = b"\n".join(pairs[0] + pairs[1])
    assert es_preset.frame([chunk, pairs[2]]) == es_preset.frame(pairs)
    assert es_preset.frame(pairs).count(b"\n") == 6
    with pytest.raises(ValueError, match="pair"):
        es_preset.frame([(b"a", b"b", b"c")])
    with pytest.raises(ValueError, match="pair"):
        es_preset.frame([chunk, "text"])


@pytest.mark.parametrize("lines", [-1, 3, 5])
def test_a_preset_with_another_number_of_lines_is_refused(lines: int) -> None:
    with pytest.raises(ValueError, match="lines must be 0, 1 or 2"):
        Preset("custom", "application/x-ndjson", lambda parts: b"", lambda t, c: t, lines=lines)


def test_keyed_records_are_not_lines_of_a_one_line_preset() -> None:
    settings = _settings("seq", "stdlib")
    mapper = Mapper(settings, Encoder(settings))
    assert mapper._line_chunks([Keyed(b"k", {"a": 1})]) is None


def test_a_partial_answer_settles_and_buries_each_record_of_a_chunk(tmp_path: Path) -> None:
    """One chunk of 150 records: items 3 and 120 answered 429 (sent again as
    their own pairs), item 7 refused (buried as one record, with its _id)."""
    dead = tmp_path / "dead.jsonl"
    with StrictCollector(Elasticsearch()) as fake:
        fake.play("items", rejected=[3, 120], mapper_parsing=[7], reason="bad field")
        drain = logdrain.Drain(
            fake.base_url, preset="elasticsearch", batch_size=150, flush_interval=30,
            concurrency=1, backoff_initial=0.01, backoff_max=0.05, dead_letter=str(dead),
            capture_crashes=False,
        )  # fmt: skip
        with drain:
            for n in range(150):
                drain.submit({"message": f"r{n}", "n": n})
            assert drain.flush(10)
            stats = drain.stats()
        first, second = fake.requests
        stored = sorted(r["source"]["n"] for r in fake.records)
    assert (stats.delivered, stats.rejected, stats.failed, stats.retries) == (149, 1, 0, 1)
    assert stats.balanced and stats.in_flight == 0
    assert (first.record_count, second.record_count) == (150, 2)
    assert stored == [n for n in range(150) if n != 7]
    again = [json.loads(line) for line in second.body.splitlines()]
    assert [doc["n"] for doc in again[1::2]] == [3, 120]
    buried = list(read(dead))
    assert len(buried) == 1 and buried[0].record["n"] == 7  # a record, not a chunk
    assert buried[0].key is not None and json.loads(buried[0].key)["create"]["_id"].endswith("7")


@pytest.mark.parametrize("json_encoder", ENCODERS)
def test_ndjson_chunks_mask_what_is_nested_in_events(json_encoder: str) -> None:
    """A structlog event's nested secret is masked in a chunk as on the
    per-record path, and the caller's own dict is left as it was."""
    settings = _settings("ndjson", json_encoder)
    encoder = Encoder(settings)
    inner = {"password": "hunter2", "user": "u"}
    event = (EVENT, {"event": "login", "ctx": {"db": inner}, "token": "abc"}, 1764620000.5)
    items = [*_plain(2), event, *_plain(2)]
    chunks = encoder.encode_batch(items)
    assert chunks is not None
    body = b"\n".join(part for _, part in chunks)
    assert body == b"\n".join(encoder.encode(item)[0] for item in items)
    assert b"hunter2" not in body and b"abc" not in body and b'"user":"u"' in body
    assert inner == {"password": "hunter2", "user": "u"}


def test_spooled_chunks_come_back_as_their_records(tmp_path: Path) -> None:
    """Elasticsearch down: chunks of 100 records' lines reach the spool as
    they are, are read back and framed again when it returns, and every
    record is stored once under the ``_id`` it was given."""
    with StrictCollector(Elasticsearch()) as fake:
        fake.down()
        drain = logdrain.Drain(
            fake.base_url, preset="elasticsearch", spool_dir=str(tmp_path / "spool"),
            batch_size=250, flush_interval=0.05, backoff_initial=0.02, backoff_max=0.3,
            capture_crashes=False,
        )  # fmt: skip
        for n in range(250):
            drain.submit({"message": f"r{n}", "n": n})
        assert proc.wait_until(lambda: drain.stats().spooled == 250)
        counts = []
        for part in (tmp_path / "spool").glob("part-*.sqlite3"):
            with contextlib.closing(sqlite3.connect(part)) as db:
                counts += [n for (n,) in db.execute("SELECT count FROM records")]
        assert sum(counts) == 250 and max(counts) == 100  # chunks, as they were sent
        fake.up()
        assert proc.wait_until(lambda: drain.stats().delivered == 250)
        drain.close()
        stats = drain.stats()
        stored = [(r["_id"], r["source"]["n"]) for r in fake.records]
    assert stats.balanced and stats.pending == 0 and stats.lost == 0
    assert sorted(n for _, n in stored) == list(range(250))
    assert len({rid for rid, _ in stored}) == 250
