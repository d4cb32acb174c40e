"""Scenario 1, caller cost: wall-clock ns per log call on the calling thread.

Stdlib rows time ``logger.info("msg %d", i, extra={"user": "u", "n": i})``;
structlog rows time ``log.info("msg", user="u", n=i)`` through a chain that
ends in a processor raising ``structlog.DropEvent``.

Each row runs in its own fresh interpreter. Inside it, REPEATS times, the
row's handler and a ``logging.NullHandler`` reference are each timed over
CALLS calls, interleaved, so the printed delta compares like with like. A
run of CALLS calls is cut into chunks of CHUNK calls (half the default
``queue_size``): bursts. Between chunks, untimed, the row settles
(``drain.flush()``, ``queue.join()``, ...) so a logdrain queue never
overflows and no row pays for drop handling. Whatever the worker threads do
*during* a chunk (the time they take from the caller's thread through the
GIL) is part of the figure, as it is in an application; logdrain's senders
wake when half the queue is filled, so in a burst of CHUNK calls most of
their work falls after it. The ``sustained`` rows time all CALLS calls as one
run: there the caller's thread pays the workers' whole share. The ``worker
not running`` row leaves the caller-thread work alone (a diagnostic row that
reaches into private attributes; it is skipped if they change).

The collector runs in its own process (see ``_util.CollectorProcess``).
"""

from __future__ import annotations

import argparse
import collections
import gc
import logging
import logging.handlers
import queue
import sys
import time
from collections.abc import Callable
from typing import Any

import _util

CALLS = 100_000
CHUNK = 5_000
REPEATS = 5

# (row id, label, compare with): stdlib rows compare with NullHandler,
# structlog rows with the same chain without DrainProcessor.
ROWS: list[tuple[str, str]] = [
    ("null", "(a) logging.NullHandler"),
    ("deque", "(b) handler appending to a deque (floor)"),
    ("queue_handler", "(c) stdlib QueueHandler + QueueListener(NullHandler)"),
    ("drain_handler", "(d) logdrain.DrainHandler, default settings"),
    ("drain_handler_caller", "(d') DrainHandler, worker not running (caller thread only)"),
    ("queue_handler_sustained", "(c'') QueueHandler, sustained: 100,000 calls in one run"),
    (
        "drain_handler_sustained",
        "(d'') DrainHandler, sustained: 100,000 calls in one run, overflow=\"block\"",
    ),
    ("structlog_base", "structlog chain, DropEvent at the end"),
    ("structlog_drain", "structlog chain with DrainProcessor first"),
]

Chunk = Callable[[int], None]


class _DequeHandler(logging.Handler):
    """The floor: Handler.handle (filters, lock) then one deque append."""

    def __init__(self) -> None:
        super().__init__()
        self.items: collections.deque[logging.LogRecord] = collections.deque(maxlen=CHUNK)
        self.emit = self.items.append  # type: ignore[method-assign,assignment]


def _stdlib_chunk(logger: logging.Logger) -> Chunk:
    info = logger.info

    def chunk(n: int) -> None:
        for i in range(n):
            info("msg %d", i, extra={"user": "u", "n": i})

    return chunk


def _bench_logger(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"bench.{type(handler).__name__}.{id(handler)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.handlers[:] = [handler]
    return logger


class Row:
    """One row's subject: ``chunk(n)`` logs n times; ``settle()`` (untimed)
    brings it back to idle; ``close()`` tears it down; ``info()`` adds facts."""

    def __init__(self, chunk: Chunk, settle: Callable[[], None] = lambda: None) -> None:
        self.chunk = chunk
        self.settle = settle
        self.close: Callable[[], None] = lambda: None
        self.info: Callable[[], dict[str, Any]] = dict
        self.chunk_calls = CHUNK  # calls timed between two settles


def _stdlib_row(handler: logging.Handler, settle: Callable[[], None] = lambda: None) -> Row:
    return Row(_stdlib_chunk(_bench_logger(handler)), settle)


def _structlog_row(drain: Any) -> Row:
    import structlog

    import logdrain

    def drop(logger: Any, method_name: str, event_dict: Any) -> Any:
        raise structlog.DropEvent

    processors: list[Any] = [drop]
    if drain is not None:
        processors.insert(0, logdrain.DrainProcessor(drain))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.ReturnLoggerFactory(),
        cache_logger_on_first_use=True,
    )
    log = structlog.get_logger()
    log.info("warm", user="u", n=0)  # binds (and caches) the logger with this chain

    def chunk(n: int) -> None:
        info = log.info
        for i in range(n):
            info("msg", user="u", n=i)

    return Row(chunk)


def _drain_stats(drain: Any) -> dict[str, Any]:
    stats = drain.stats()
    return {
        "submitted": stats.submitted,
        "delivered": stats.delivered,
        "dropped_overflow": stats.dropped_overflow,
        "lost": stats.lost,
    }


def _make_row(row_id: str, url: str) -> Row:
    import logdrain

    if row_id == "null":
        return _stdlib_row(logging.NullHandler())
    if row_id == "deque":
        handler = _DequeHandler()
        return _stdlib_row(handler, handler.items.clear)
    if row_id == "queue_handler":
        q: queue.Queue[Any] = queue.Queue()
        listener = logging.handlers.QueueListener(q, logging.NullHandler())
        listener.start()
        row = _stdlib_row(logging.handlers.QueueHandler(q), q.join)
        row.close = listener.stop
        return row
    if row_id == "queue_handler_sustained":
        row = _make_row("queue_handler", url)
        row.chunk_calls = CALLS
        return row
    if row_id in ("drain_handler", "drain_handler_sustained"):
        sustained = row_id == "drain_handler_sustained"
        # Sustained: the senders' whole share lands in the timed run; "block"
        # (30 s) makes an outpaced caller wait rather than drop.
        options = {"overflow": "block", "block_timeout": 30.0} if sustained else {}
        dh = logdrain.DrainHandler(url, **options)
        row = _stdlib_row(dh, lambda: _flush(dh.drain))
        row.close = dh.close
        row.info = lambda: _drain_stats(dh.drain)
        if sustained:
            row.chunk_calls = CALLS
        return row
    if row_id == "drain_handler_caller":
        dh = logdrain.DrainHandler(url)
        drain = dh.drain
        # Diagnostic: mark the dispatcher as started so no worker thread ever
        # runs; settle by taking and settling the queued records directly.
        drain._worker.started = True
        rq = drain._queue

        def settle() -> None:
            lot, items = rq.take(10**9, None)
            if lot is not None:
                rq.settle(lot, len(items), "delivered")

        row = _stdlib_row(dh, settle)
        row.close = lambda: drain.close(0.5)
        row.info = lambda: _drain_stats(drain)
        return row
    if row_id == "structlog_base":
        return _structlog_row(None)
    if row_id == "structlog_drain":
        sdrain = logdrain.Drain(url)
        row = _structlog_row(sdrain)
        row.settle = lambda: _flush(sdrain)
        row.close = sdrain.close
        row.info = lambda: _drain_stats(sdrain)
        return row
    raise SystemExit(f"unknown row {row_id!r}")


def _flush(drain: Any) -> None:
    if not drain.flush(60.0):
        raise RuntimeError("drain.flush() timed out between chunks")


def _time_run(row: Row) -> float:
    """ns per call over CALLS calls, timed in chunks, settled in between."""
    row.settle()
    gc.collect()
    total = 0
    n = row.chunk_calls
    for _ in range(CALLS // n):
        t0 = time.perf_counter_ns()
        row.chunk(n)
        total += time.perf_counter_ns() - t0
        row.settle()
    return total / (CALLS // n * n)


def _measure(row_id: str) -> dict[str, Any]:
    with _util.CollectorProcess() as collector:
        # The reference row of the same family, in the same process.
        ref_id = "structlog_base" if row_id.startswith("structlog") else "null"
        ref = _make_row(ref_id, collector.url) if ref_id != row_id else None
        row = _make_row(row_id, collector.url)
        for subject in (row, ref):  # warm-up, untimed
            if subject is not None:
                subject.chunk(CHUNK // 5)
                subject.settle()
        row_ns: list[float] = []
        ref_ns: list[float] = []
        for _ in range(REPEATS):
            if ref is not None:
                ref_ns.append(_time_run(ref))
            row_ns.append(_time_run(row))
        result: dict[str, Any] = {
            "row": row_id,
            "ns": _util.median(row_ns),
            "ns_all": [round(x) for x in row_ns],
            "ref": ref_id,
            "ref_ns": _util.median(ref_ns) if ref_ns else _util.median(row_ns),
            "ref_all": [round(x) for x in ref_ns],
            **row.info(),
        }
        result["delta_ns"] = result["ns"] - result["ref_ns"]
        if "submitted" in result:
            # The reference must not have fed the drain: structlog.configure()
            # for the row replaced the global chain, but the reference logger
            # was cached with its own chain on first use.
            expected = REPEATS * CALLS + CHUNK // 5 + (1 if row_id == "structlog_drain" else 0)
            if result["submitted"] != expected:
                raise RuntimeError(f"drain saw {result['submitted']} records, not {expected}")
        row.close()
        if ref is not None:
            ref.close()
        return result


# -- orchestration (the parent side) --


def run() -> dict[str, Any]:
    rows = []
    for row_id, label in ROWS:
        result = _util.measure("caller_cost.py", row_id, timeout=180)
        result["label"] = label
        rows.append(result)
    return {"rows": rows, "calls": CALLS, "chunk": CHUNK, "repeats": REPEATS}


def report(result: dict[str, Any]) -> list[str]:
    rows = {r["row"]: r for r in result["rows"]}
    null_ns = rows["null"]["ns"]
    lines = [
        f"Median of {result['repeats']} runs of {result['calls']:,} calls "
        f"(timed in chunks of {result['chunk']:,}; settled untimed in between). "
        "Delta: against a reference timed in the same process, interleaved.",
        "",
        "| row | ns/call | delta | reference (same process) | notes |",
        "| --- | ---: | ---: | --- | --- |",
    ]
    for r in result["rows"]:
        delta = "-" if r["row"] == r["ref"] else f"{r['delta_ns']:+,.0f} ns"
        ref = f"{r['ref']} {r['ref_ns']:,.0f} ns"
        notes = []
        if "delivered" in r:
            notes.append(
                f"delivered {r['delivered']:,}/{r['submitted']:,}, "
                f"dropped_overflow {r['dropped_overflow']}"
            )
        lines.append(f"| {r['label']} | {r['ns']:,.0f} | {delta} | {ref} | {'; '.join(notes)} |")
    d = rows["drain_handler"]
    lines += [
        "",
        f"DrainHandler above NullHandler: {d['delta_ns'] / 1000:.2f} us in bursts of "
        f"{result['chunk']:,} calls (target <= 1.5 us; NullHandler here {null_ns / 1000:.2f} us)",
    ]
    s = rows.get("drain_handler_sustained")
    if s is not None:
        lines[-1] += (
            f"; {s['delta_ns'] / 1000:.2f} us sustained over {result['calls']:,} calls, where "
            "the caller's thread pays the senders' whole share of the GIL."
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", metavar="ROW", help="internal: measure one row")
    args = parser.parse_args()
    if args.measure:
        _util.emit(_measure(args.measure))
        return
    print("\n".join(report(run())))


if __name__ == "__main__":
    sys.exit(main())
