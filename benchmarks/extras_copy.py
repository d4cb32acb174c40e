"""What copying ``extra`` values on the caller's thread would cost (issue 9 item 12).

Figures, not pass/fail. Prints ns per log call for:

- the caller's cost of ``logger.info("order %s", i, extra=EXTRA)`` with a
  DrainHandler above the same call with a ``NullHandler`` (senders running,
  bursts of CHUNK calls with a flush between them, as caller_cost.py does);
- what ``DrainHandler.handle`` does today on the caller's thread (one
  ``record.__dict__.copy()`` and the message formatting), alone;
- the extra work each option would add to it: ``copy.deepcopy`` of the
  extras, and a "one level" copy (each top-level dict/list/set value of an
  extra copied shallowly).

Run: ``PYTHONPATH=src python benchmarks/extras_copy.py``.
"""

from __future__ import annotations

import copy
import logging
import platform
import sys
import time
import timeit
from typing import Any

import logdrain
from logdrain.testing import Collector

EXTRA: dict[str, Any] = {
    "user": {"id": 7, "name": "bob", "roles": ["admin", "dev"]},
    "request_id": "4f1c2b7e9a0d4c3b",
    "tags": ["checkout", "eu-west"],
    "n": 3,
}
CALLS = 50_000
CHUNK = 5_000
REPEATS = 5

_INIT_LAST_KEY = tuple(logging.LogRecord("", 0, "", 0, "", None, None).__dict__)[-1]
_COPIED = (dict, list, set)


def one_level(attrs: dict[str, Any]) -> None:
    """Copy each container value of an extra field one level deep, in place."""
    for key in reversed(attrs):
        if key == _INIT_LAST_KEY:
            break
        value = attrs[key]
        if type(value) in _COPIED:
            attrs[key] = value.copy()


def deep(attrs: dict[str, Any]) -> None:
    for key in reversed(attrs):
        if key == _INIT_LAST_KEY:
            break
        attrs[key] = copy.deepcopy(attrs[key])


def per_call(stmt: Any, number: int = 200_000) -> float:
    return min(timeit.repeat(stmt, number=number, repeat=REPEATS)) / number * 1e9


def logging_cost(handler: logging.Handler, settle: Any) -> float:
    log = logging.getLogger(f"bench.extras.{id(handler)}")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    best = float("inf")
    for _ in range(REPEATS):
        total = 0.0
        for start in range(0, CALLS, CHUNK):
            t0 = time.perf_counter()
            for i in range(start, start + CHUNK):
                log.info("order %s shipped", i, extra=EXTRA)
            total += time.perf_counter() - t0
            settle()
        best = min(best, total / CALLS * 1e9)
    log.removeHandler(handler)
    return best


def main() -> None:
    try:
        import orjson  # noqa: F401

        has_orjson = "installed"
    except ImportError:
        has_orjson = "not installed"
    print(f"Python {platform.python_version()} on {platform.machine()}, "
          f"{platform.processor() or platform.platform()}; orjson {has_orjson}")  # fmt: skip
    record = logging.getLogger("bench").makeRecord(
        "bench", logging.INFO, __file__, 1, "order %s shipped", (42,), None, extra=EXTRA
    )

    def today() -> None:
        attrs = record.__dict__.copy()
        attrs["args"] = None
        record.getMessage()

    base = per_call(today)
    attrs = record.__dict__.copy()
    plain = per_call(attrs.copy)
    one = per_call(lambda: one_level(attrs.copy())) - plain
    full = per_call(lambda: deep(attrs.copy()), number=20_000) - plain

    null = logging_cost(logging.NullHandler(), lambda: None)
    with Collector() as collector:
        handler = logdrain.DrainHandler(collector.url, capture_crashes=False)
        drain = handler.drain
        shipped = logging_cost(handler, lambda: drain.flush(30))
        handler.close()
        assert drain.stats().balanced

    print(f"logger.info with a NullHandler:                {null:8.0f} ns/call")
    print(f"logger.info with a DrainHandler:               {shipped:8.0f} ns/call "
          f"(+{shipped - null:.0f} over NullHandler)")  # fmt: skip
    print(f"DrainHandler.handle's own copy + formatting:   {base:8.0f} ns/call")
    print(f"+ one-level copy of the extras' containers:    {one:8.0f} ns/call")
    print(f"+ copy.deepcopy of the extras:                 {full:8.0f} ns/call")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
