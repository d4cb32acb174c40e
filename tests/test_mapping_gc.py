"""A batch's mapped records do not all outlive the garbage collector's young
generation: ``Mapper.chunks`` and ``Mapper.parts`` map and encode a slice at
a time, so a sender thread's batch of 2,000 OTLP records (four GC-tracked
containers each while mapped) sets off a few young collections, not one per
~150 records (22 of them before; each walks the caller's young LogRecords
too, which in a burst made GC 17% or more of OTLP's sender work)."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from logdrain import DrainHandler
from logdrain.queue import Lot
from logdrain.records import stdlib_item

BATCH = 2000


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """The generations of the collections run while the test runs, at
    CPython's default thresholds."""
    runs: list[int] = []

    def count(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            runs.append(info["generation"])

    thresholds = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    gc.callbacks.append(count)
    try:
        yield runs
    finally:
        gc.callbacks.remove(count)
        gc.set_threshold(*thresholds)


# (preset, options, young collections at most: the code before the slices took 22 and 11)
CASES = [("otlp", {}, 6), ("elasticsearch", {}, 8)]


@pytest.mark.parametrize(("preset", "options", "most"), CASES)
def test_a_batch_sets_off_few_young_collections(
    collections: list[int], preset: str, options: dict[str, Any], most: int
) -> None:
    handler = DrainHandler("http://127.0.0.1:9", preset=preset, batch_size=BATCH, **options)
    try:
        logger = logging.getLogger("gc.test")
        records = [
            logger.makeRecord("gc.test", logging.INFO, __file__, 1, "msg %d", (i,), None,
                              extra={"user": "u", "n": i})
            for i in range(BATCH)
        ]  # fmt: skip
        items = [stdlib_item(r, handler.formatter) for r in records]
        worker = handler.drain._worker
        gc.collect()
        collections.clear()
        batches = worker.prepare(Lot(0, BATCH), items)
        found = list(collections)
    finally:
        handler.drain.close(0.1)
    assert sum(count for batch in batches for count, _, _ in batch) == BATCH
    assert len(found) <= most, found
