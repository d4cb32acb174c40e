"""A preset's ``bind_batch`` mapping (a run of plain stdlib records at once)
makes exactly what its record mapping makes one record at a time, and
``orjson_lists`` (its one-call list encoder) writes each value as the
per-record encoder does, or says it cannot be sure."""

from __future__ import annotations

import datetime
import logging
import math
from collections.abc import Callable
from typing import Any

import pytest

from logdrain.config import resolve
from logdrain.encode import Encoder
from logdrain.jsonsafe import _MARKER, orjson_dumps, orjson_lists
from logdrain.mapping import Mapper
from logdrain.records import stdlib_item

pytest.importorskip("orjson")

URL = "http://127.0.0.1:9/x"
LOGGER = logging.getLogger("batch.mapping")

VALUES: list[Any] = [
    {"a": 1, "b": 'x,"y"', "c": "back\\slash", "d": "µ ✓ 😀", "e": "ctl \x00\x1f\n\t"},
    [1, 2.5, True, False, None, "two"],
    "a string",
    12345678901234567890,
    -0.0,
    {"nested": {"deep": [{"k": "v"}]}, "none": None},
    {"marker_alone": _MARKER},
    {"}": "{", '","': '"],["', "\\": "\\\\"},
]


def _encode_list() -> Callable[..., list[bytes] | None]:
    encode_list = orjson_lists()
    assert encode_list is not None
    return encode_list


def test_each_value_is_written_as_alone() -> None:
    dumps = orjson_dumps()
    assert dumps is not None
    found = _encode_list()(VALUES)
    assert found == [dumps(value) for value in VALUES]
    assert _encode_list()(VALUES[:1]) == [dumps(VALUES[0])]
    assert _encode_list()([]) == []
    # Through the default hook (no null: a null beside a value the stdlib path
    # writes its own way leaves the whole list to it).
    odd = [{"when": datetime.datetime(2025, 1, 2)}, {"id": datetime.date(2025, 1, 3)}]
    assert _encode_list()(odd) == [dumps(value) for value in odd]
    assert _encode_list()([*odd, None]) is None


def test_escaped_values_are_json_string_contents() -> None:
    import json

    found = _encode_list()(VALUES, True)
    assert found is not None
    dumps = orjson_dumps()
    assert dumps is not None
    for value, line in zip(VALUES, found, strict=True):
        # The line inside quotes is a JSON string whose text is the value's JSON.
        assert json.loads(b'"' + line + b'"') == dumps(value).decode()


@pytest.mark.parametrize(
    "odd",
    [
        float("nan"),  # written null by orjson: the stdlib path decides
        {"inf": math.inf},
        ["x", _MARKER, "y"],  # the marker between list items: more pieces than values
        "lone \ud800 surrogate",  # orjson refuses it
        2**70,  # beyond 64 bits
    ],
)
def test_a_value_it_cannot_be_sure_of_makes_none(odd: Any) -> None:
    assert _encode_list()([{"plain": 1}, odd, "after"]) is None
    assert _encode_list()([{"plain": 1}, odd, "after"], True) is None


# -- the presets' batch mappings against their per-record mappings ---------------------

MESSAGES = ["plain", 'quote " and \\ backslash', "µ ✓ 😀", "null", "new\nline", ""]
EXTRAS: list[dict[str, Any]] = [
    {},
    {"user": "u", "n": 7},
    {"flag": True, "f": 1.5, "none": None},
    {"nested": {"a": [1, {"b": "c"}]}},
    {"password": "hunter2"},  # masked by redact_keys
]


def _items(levelno: Any = None) -> list[Any]:
    items = []
    i = 0
    for extra in EXTRAS:
        for message in MESSAGES:
            for level in (logging.DEBUG, logging.INFO, logging.ERROR):
                record = LOGGER.makeRecord(LOGGER.name, level, __file__, 1, message, (), None)
                record.__dict__.update(extra)
                record.created = 1764620000.0 + i * 0.0137
                if levelno is not None:
                    record.levelno = levelno
                items.append(stdlib_item(record))
                i += 1
    return items


def _mapper(preset: str, **options: Any) -> Mapper:
    if preset == "loki":
        options.setdefault("labels", {"app": "t"})
    settings = resolve({"url": URL, "preset": preset, "token": "t", **options})
    return Mapper(settings, Encoder(settings))


def _both(mapper: Mapper, items: list[Any]) -> tuple[Any, Any, int]:
    """(the batch path's pieces, the per-record path's, slices the batch mapped)."""
    batch = mapper._batch
    assert batch is not None
    taken = []

    def counted(*args: Any) -> Any:
        found = batch(*args)
        taken.append(found is not None)
        return found

    mapper._batch = counted
    chunked = mapper._preset.keyed_array or mapper._preset.json_array
    fast = mapper.chunks(items) if chunked else mapper.parts(items)
    mapper._batch = None
    slow = mapper.chunks(items) if chunked else mapper.parts(items)
    mapper._batch = batch
    return fast, slow, sum(taken)


@pytest.mark.parametrize(
    ("preset", "options"),
    [
        ("loki", {}),
        ("loki", {"label_keys": ["logger"]}),
        ("splunk_hec", {}),
        ("splunk_hec", {"host": "h1", "sourcetype": "st", "index": "main"}),
        ("datadog", {}),
        ("datadog", {"tags": "env:prod,team:a", "host": "h1", "service": "svc"}),
    ],
)
def test_the_batch_mapping_is_the_per_record_mapping(preset: str, options: dict[str, Any]) -> None:
    mapper = _mapper(preset, **options)
    plain = [item for item in _items() if not {"none", "nested"} & set(item[1])]
    fast, slow, taken = _both(mapper, plain)
    assert taken >= 1  # every slice of these records went the batch way
    assert fast is not None
    assert fast == slow
    # A batch with nulls (left to the per-record path when in doubt) and nesting.
    fast, slow, _ = _both(mapper, _items())
    assert fast == slow


ODD_LEVELS = [(p, n) for p in ("loki", "datadog") for n in (20.0, True, "20")] + [("datadog", 75)]


@pytest.mark.parametrize(("preset", "levelno"), ODD_LEVELS)
def test_an_odd_level_leaves_the_slice_to_the_per_record_mapping(preset: str, levelno: Any) -> None:
    mapper = _mapper(preset)
    fast, slow, taken = _both(mapper, _items(levelno))
    assert taken == 0
    assert fast == slow


@pytest.mark.parametrize(
    ("preset", "options"),
    [
        ("loki", {"label_keys": ["level", "logger"]}),
        ("loki", {"metadata_keys": ["user"]}),
        ("splunk_hec", {"indexed_fields": {"team": "a"}}),
        ("splunk_hec", {"field_keys": ["user"]}),
        ("loki", {"include": ["process"]}),
        ("splunk_hec", {"rename": {"message": "msg"}}),
        ("loki", {"json_encoder": "stdlib"}),
    ],
)
def test_options_it_does_not_cover_take_no_batch_mapping(
    preset: str, options: dict[str, Any]
) -> None:
    assert _mapper(preset, **options)._batch is None
