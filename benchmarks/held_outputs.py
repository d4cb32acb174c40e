"""What holding orjson's per-record outputs costs, and logdrain's copy.

orjson writes each output into a buffer of some KiB and shrinks it in place
when done. A sender holds a batch's per-record parts (ndjson; the per-record
parts of elasticsearch, seq, splunk_hec) until the request is sent: held as
they are, the next output's buffer never fits the hole the last one left, so
every record takes fresh heap, and in a heap glibc has just trimmed (a process
that logs in bursts with quiet between them) that is a page fault a record.
logdrain copies each held output out (``b"".join((data, b""))``, in
``jsonsafe``); the buffer is freed and reused by the next call.

``encode``   BATCH documents encoded per record, the outputs kept in a list:
             held as orjson returns them vs copied out; ns a record (best of
             ROUNDS) and minor page faults a record (all rounds).
``bursts``   the current code end to end: an ndjson ``DrainHandler`` to a
             local collector, bursts of BURST records with ``flush()``
             between them; page faults and process CPU a record.

    python benchmarks/held_outputs.py [--rounds 20]

Figures, not pass/fail (benchmarks/PRESETS_RESULTS.md). Linux (glibc) only:
the page-fault counts are ``getrusage``'s.
"""

from __future__ import annotations

import argparse
import logging
import resource
import time
from collections.abc import Callable
from typing import Any

BATCH = 2000
BURST = 500


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _measure(fn: Callable[[], Any], rounds: int) -> tuple[float, float]:
    """(best ns a record, page faults a record) over ``rounds`` calls."""
    best = float("inf")
    before = _faults()
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best / BATCH * 1e9, (_faults() - before) / rounds / BATCH


def encode(rounds: int) -> None:
    from itertools import repeat

    import orjson

    docs = [
        {
            "timestamp": "2026-12-02T04:00:00.123456Z",
            "level": "INFO",
            "logger": "bench.held",
            "message": f"message {i} from the service",
            "user": "u",
            "n": i,
        }
        for i in range(BATCH)
    ]
    dumps = orjson.dumps
    variants = {
        "held as returned": lambda: list(map(dumps, docs)),
        "copied out": lambda: list(map(b"".join, zip(map(dumps, docs), repeat(b"")))),
    }
    print(f"encode: {BATCH} documents a round, outputs kept, best of {rounds} rounds")
    for name, fn in variants.items():
        fn()
        ns, faults = _measure(fn, rounds)
        print(f"  {name:18} {ns:7.0f} ns a record  {faults:5.2f} page faults a record")


def bursts(rounds: int) -> None:
    from logdrain import DrainHandler
    from logdrain.testing import Collector

    with Collector() as collector:
        handler = DrainHandler(url=collector.url, format="ndjson")
        logger = logging.getLogger("bench.held")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        try:

            def burst() -> None:
                for i in range(BURST):
                    logger.info("message %d from the service", i, extra={"user": "u", "n": i})
                handler.flush()

            for _ in range(3):
                burst()
            before, cpu = _faults(), time.process_time()
            for _ in range(rounds):
                burst()
            records = rounds * BURST
            faults = (_faults() - before) / records
            per = (time.process_time() - cpu) / records * 1e6
        finally:
            logger.removeHandler(handler)
            handler.close()
    print(
        f"bursts: ndjson, {rounds} bursts of {BURST} records, flush() between: "
        f"{faults:.2f} page faults and {per:.1f} us of process CPU a record"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    encode(args.rounds)
    bursts(args.rounds * 2)


if __name__ == "__main__":
    main()
