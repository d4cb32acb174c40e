"""The batch fast paths of the record mappings make what the per-record path
makes: ``Mapper.parts`` (the generic document's own timestamp as
``ctx.timestamp``, Seq's and OTLP's usual-document shortcuts) against
``Mapper.part`` one record at a time, hostile values included; and the
bisecting batch cut against the step-per-piece one."""

from __future__ import annotations

import json
import logging
import random
from typing import Any

import pytest

from logdrain.config import resolve
from logdrain.documents import extra_keys
from logdrain.encode import Encoder
from logdrain.mapping import Mapper
from logdrain.presets.base import RFC3339_LAST_SECOND, rfc3339
from logdrain.presets.otlp import _plain_attributes
from logdrain.presets.otlp_values import key_values
from logdrain.records import stdlib_item
from logdrain.worker import Worker

URL = "http://127.0.0.1:9/x"
LOGGER = logging.getLogger("fast.paths")

EXTRAS: list[dict[Any, Any]] = [
    {},
    {"user": "u", "n": 7},
    {"n": 2**70, "f": 1.5, "flag": True, "none": None},
    {"nan": float("nan"), "inf": float("-inf")},
    {"text": "lone \ud800 surrogate", "ctl": "a\x00b\x1f\n\"'\\"},
    {"@t": "mine", "@at": 1, "mid@dle": "x"},
    {1: "int key", (1, 2): "tuple key", None: "none key"},
    {"nested": {"a": [1, {"b": float("nan")}], 2: "x"}, "list": [1, "two", None]},
    {"event": "also", "exception": None, "stack": ""},
    {"trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331"},
    {"lineno_": 1, "pathname_": "p", "x" * 300: "long key"},
]


def _items(created: float | None = None) -> list[Any]:
    items = []
    for i, extra in enumerate(EXTRAS):
        for level, msg, args in ((20, "msg %d", (i,)), (40, "µ \ud83d %s", ("x",)), (5, 7, ())):
            record = LOGGER.makeRecord(LOGGER.name, level, __file__, 1, msg, args, None)
            record.__dict__.update(extra)
            if created is not None:
                record.created = created
            items.append(stdlib_item(record))
    return items


def _mapper(preset: str, json_encoder: str, **options: Any) -> Mapper:
    if preset == "loki":
        options.setdefault("labels", {"app": "t"})
    settings = resolve(
        {"url": URL, "preset": preset, "token": "t", "json_encoder": json_encoder, **options}
    )
    return Mapper(settings, Encoder(settings))


@pytest.mark.parametrize("json_encoder", ["orjson", "stdlib"])
@pytest.mark.parametrize("preset", ["seq", "elasticsearch", "otlp", "loki", "splunk_hec"])
@pytest.mark.parametrize("created", [None, 0.0, 1.999999, 1764620000.123456, -1.5, 253402300799.5])
def test_batch_parts_are_the_per_record_parts(
    preset: str, json_encoder: str, created: float | None
) -> None:
    if json_encoder == "orjson":
        pytest.importorskip("orjson")
    if preset == "loki" and created is not None and created > 9e9:
        pytest.skip("beyond int64 nanoseconds Loki's entry time is now, on either path")
    mapper = _mapper(preset, json_encoder)
    items = _items(created)
    for item in items:  # one record at a time (what parts() leaves a batch to)
        got = mapper.parts([item], "rid")
        if got is not None:
            data, size, _ = mapper.part(item, "rid0")
            assert got == [(1, data, size)]
    clean = [item for item in items if mapper.parts([item]) is not None]
    assert len(clean) >= 10
    got = mapper.parts(clean, "pre")
    assert got is not None
    expected = [mapper.part(item, f"pre{i}")[:2] for i, item in enumerate(clean)]
    assert [(data, size) for _, data, size in got] == expected


@pytest.mark.parametrize("index", ["logs-app", "logs-%Y.%m.%d-%H"])
@pytest.mark.parametrize("prefix", ["0af7651916cd43dd", "a-b", "ü", ""])
def test_elasticsearch_action_lines_are_the_general_ones(index: str, prefix: str) -> None:
    """Elasticsearch's inline action line (one index name, logdrain's own
    hex-and-digit ids) is what the general one writes, and a dated index or
    an id needing escapes takes the general one."""
    pytest.importorskip("orjson")
    mapper = _mapper("elasticsearch", "orjson", index=index)
    items = [item for item in _items(1764620000.5) if mapper.parts([item]) is not None]
    got = mapper.parts(items, prefix)
    assert got is not None
    expected = [
        mapper.part(item, f"{prefix}{i}" if prefix else "")[:2] for i, item in enumerate(items)
    ]
    assert [(data, size) for _, data, size in got] == expected
    action = json.loads(got[1][1][0])
    name = "logs-app" if index == "logs-app" else "logs-2025.12.01-20"  # 2025-12-01T20:13:20Z
    assert action == {"create": {"_index": name, **({"_id": f"{prefix}1"} if prefix else {})}}


def _reference_plain_extras(encoder: Encoder, attrs: dict[str, Any]) -> list[str] | None:
    """``plain_extras`` as it was written before its walk went inline."""
    if attrs.get("exc_text") or attrs.get("stack_info"):
        return None
    extras = extra_keys(attrs)
    clean = encoder._clean_keys
    for key in extras:
        if key in ("timestamp", "level", "logger", "message", "exception", "stack"):
            return None
        if type(attrs[key]) not in (str, int, float, bool, type(None)):
            return None
        if clean is not None and key not in clean:
            return None
    return extras


@pytest.mark.parametrize("redact", [None, ["password"]])
def test_plain_extras_are_the_extra_keys_checked(redact: list[str] | None) -> None:
    """The inline walk of ``plain_extras`` finds the extras ``extra_keys``
    finds and refuses what it refused, attributes set before
    ``LogRecord.__init__`` (all keys looked at) included."""
    settings = resolve({"url": URL} if redact is None else {"url": URL, "redact_keys": redact})
    encoder = Encoder(settings)
    cases = []
    for item in _items():
        attrs = item[1]
        cases += [attrs, {"early": "x", **attrs}, {"password": "p", **attrs}]
        cases.append({**attrs, "password": "p"})
    cases += [{"created": 1.0, "levelname": "INFO", "name": "n", "user": "u"}]  # no __init__ keys
    found = []
    for attrs in cases:
        encoder._stdlib_document(attrs, "m")  # learns its clean keys, as the senders do
        found.append(encoder.plain_extras(attrs))
        assert found[-1] == _reference_plain_extras(encoder, attrs), list(attrs)
    assert ["early", "user", "n"] in found and None in found


def test_the_documents_timestamp_is_rfc3339_of_the_record_time() -> None:
    encoder = Encoder(resolve({"url": URL}))
    rng = random.Random(7)
    times = [0.0, 0.9999999, 1.0, 1e-7, 1764620000.999999, RFC3339_LAST_SECOND - 0.5]
    times += [rng.uniform(0, RFC3339_LAST_SECOND) for _ in range(2000)]
    times += [rng.uniform(1.7e9, 1.8e9) for _ in range(2000)]
    for created in times:
        attrs = {"created": created, "levelname": "INFO", "name": "n"}
        assert encoder._stdlib_document(attrs, "m")["timestamp"] == rfc3339(created), created


@pytest.mark.parametrize("extra", EXTRAS)
def test_otlp_plain_attributes_are_the_general_ones(extra: dict[Any, Any]) -> None:
    from logdrain.presets import Context

    doc = {"timestamp": "t", "level": "INFO", "logger": "l", "message": "m", **extra}
    items = [(k, v) for k, v in doc.items() if k not in ("timestamp", "level", "logger", "message")]
    quick = _plain_attributes(doc, [k for k, _ in items])
    if quick is not None:
        assert quick == key_values(items, Context({}), 1, True)


class _Settings:
    batch_bytes = 0


class _Encoder:
    def __init__(self, fixed: int, per_part: int) -> None:
        self.fixed, self.per_part = fixed, per_part

    def body_size(self, total: int, count: int) -> int:
        return total + self.fixed + self.per_part * count


def _cut(pieces: list[Any], limit: int, fixed: int, per_part: int, linear: bool) -> Any:
    worker = Worker.__new__(Worker)
    worker._s = _Settings()  # type: ignore[assignment]
    worker._s.batch_bytes = limit
    worker._encoder = _Encoder(fixed, per_part)  # type: ignore[assignment]
    worker._framing = (fixed, per_part) if linear else None
    return worker._cut(pieces)


def test_the_bisecting_cut_is_the_step_per_piece_cut() -> None:
    rng = random.Random(3)
    for _ in range(5000):
        sizes = [0, 1, 5, 50, 300, rng.randint(0, 2000)]
        pieces = [(1, b"", rng.choice(sizes)) for _ in range(rng.randint(0, 30))]
        limit, fixed, per_part = rng.randint(-50, 3000), rng.randint(-5, 20), rng.randint(0, 5)
        assert _cut(pieces, limit, fixed, per_part, True) == _cut(
            pieces, limit, fixed, per_part, False
        )


def _seq_reference(doc: dict[Any, Any], ctx: Any) -> dict[str, Any]:
    """Seq's general loop (before its usual-document shortcut), for Serilog names."""
    from logdrain.presets.seq import clef_time, level_name, property_name

    event: dict[str, Any] = {"@t": clef_time(ctx.created), "@m": doc["message"]}
    level = level_name(ctx.levelno, None, "serilog")
    if level is not None:
        event["@l"] = level
    if doc.get("exception"):
        event["@x"] = doc["exception"]
    for key, value in doc.items():
        if key in ("message", "timestamp", "level", "exception"):
            continue
        name = key if type(key) is str and key[:1] != "@" else property_name(key, ctx)
        while name in event:
            name += "_"
        event[name] = value
    return event


@pytest.mark.parametrize("extra", EXTRAS)
def test_seq_usual_documents_map_as_the_general_loop_does(extra: dict[Any, Any]) -> None:
    from logdrain.presets import Context
    from logdrain.presets.seq import PRESET

    mapped = PRESET.record_for({})
    doc = {"timestamp": "t", "level": "INFO", "logger": "l", "message": "m", **extra}
    for levelno in (20, 5, 50):
        ctx = Context({}, created=1764620000.5, levelno=levelno)
        assert mapped(doc, ctx) == _seq_reference(doc, ctx)
        assert list(mapped(doc, ctx)) == list(_seq_reference(doc, ctx))


def test_otlp_maps_plain_stdlib_records_from_their_attributes() -> None:
    """The usual stdlib record takes OTLP's ``bind_stdlib`` mapping (no
    generic document; the test above proves it maps as the document does);
    a record with something to mask, an exception, or a Drain that reshapes
    or includes attributes takes the document's way."""
    mapper = _mapper("otlp", "stdlib")
    assert mapper._stdlib is not None
    items = _items()
    mapper.parts(items)  # a key is known clean of redact_keys once a record showed it
    taken = [item for item in items if mapper._enc.plain_extras(item[1]) is not None]
    fused = mapper._stdlib
    mapped = [fused(item[1], item[2], mapper._enc.plain_extras(item[1]), "") for item in taken]
    assert sum(m is not None for m in mapped) >= 6  # {} and {"user", "n"}, three levels each
    record = LOGGER.makeRecord(LOGGER.name, 20, __file__, 1, "m", (), None)
    record.__dict__.update({"user": "u", "password": "p"})
    assert mapper._enc.plain_extras(stdlib_item(record)[1]) is None  # masked: the document's way
    plain = LOGGER.makeRecord(LOGGER.name, 20, __file__, 1, "m", (), None)
    attrs = stdlib_item(plain)[1]
    assert mapper._enc.plain_extras(attrs) == []
    for text in ({"exc_text": "Traceback ..."}, {"stack_info": "Stack (most recent call last)"}):
        assert mapper._enc.plain_extras({**attrs, **text}) is None
    reshaping = ({"rename": {"user": "who"}}, {"include": ["process"]}, {"fields": ["message"]})
    for reshaped in reshaping:
        settings = resolve({"url": URL, "preset": "otlp", **reshaped})
        assert Mapper(settings, Encoder(settings))._stdlib is None, reshaped
