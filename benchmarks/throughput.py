"""Scenario 2, throughput: RECORDS records logged through a DrainHandler by
one thread as fast as it can; records/s from the first log call until every
record is accounted for (``drain.flush()`` returned: each delivered record
was stored by the collector before it answered 2xx), cross-checked against
the collector's own count.

Modes, each in its own fresh interpreter with its own collector process:

``default``    default settings (queue_size 10,000, overflow drop_oldest): a
               producer faster than the sender loses records; reported as is.
``block``      overflow="block" (block_timeout 30 s so no hiccup drops): the
               producer is pushed back, every record arrives, and the rate
               is the sender's true capacity.
``collector``  no logdrain: a raw ``requests`` client posts the same records,
               pre-encoded in batches of 500, to the collector, with 1 and 2
               client threads: the collector's own capacity, to show it is
               not the bottleneck.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from typing import Any

import _util

RECORDS = 300_000
BATCH = 500
TIME_LIMIT = 60.0  # seconds: a mode that takes longer stops and reports what it did


def _measure_drain(mode: str) -> dict[str, Any]:
    import logdrain

    options: dict[str, Any] = {}
    if mode == "block":
        options = {"overflow": "block", "block_timeout": 30.0}
    with _util.CollectorProcess() as collector:
        handler = logdrain.DrainHandler(collector.url, **options)
        logger = logging.getLogger("bench.throughput")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.handlers[:] = [handler]
        info = logger.info
        deadline = time.monotonic() + TIME_LIMIT
        logged = 0
        threads0 = _util.thread_cpu_seconds()
        t0 = time.monotonic()
        cpu0 = time.process_time()
        for start in range(0, RECORDS, 10_000):
            for i in range(start, start + 10_000):
                info("msg %d", i, extra={"user": "u", "n": i})
            logged += 10_000
            if time.monotonic() > deadline:
                break
        t_logged = time.monotonic()
        complete = handler.drain.flush(max(1.0, deadline + 30 - time.monotonic()))
        t_done = time.monotonic()
        cpu = time.process_time() - cpu0
        threads = _util.cpu_by_role(threads0, _util.thread_cpu_seconds())
        stats = handler.drain.stats()
        server = collector.stats()
        handler.close()
    elapsed = t_done - t0
    return {
        "mode": mode,
        "logged": logged,
        "complete": complete,
        "produce_s": t_logged - t0,
        "elapsed_s": elapsed,
        "offered_per_s": logged / (t_logged - t0),
        "delivered_per_s": stats.delivered / elapsed,
        "cpu_s": cpu,
        "cpu_us_per_record": cpu / logged * 1e6,
        "thread_cpu_us_per_record": {k: v / logged * 1e6 for k, v in threads.items()},
        "arrived": server["count"],
        "requests": server["requests"],
        "non_2xx": server["non_2xx"],
        "duplicates": server["duplicates"],
        "stats": stats.as_dict(),
    }


def _bodies() -> list[bytes]:
    """The records the handler would ship, encoded by logdrain's own encoder
    (untimed), in request bodies of BATCH records."""
    from logdrain.config import resolve
    from logdrain.encode import Encoder
    from logdrain.records import snapshot

    encoder = Encoder(resolve({"url": "http://127.0.0.1:9/unused"}))
    logger = logging.getLogger("bench.throughput")
    bodies = []
    for start in range(0, RECORDS, BATCH):
        parts = []
        for i in range(start, start + BATCH):
            record = logger.makeRecord(
                logger.name, logging.INFO, __file__, 1, "msg %d", (i,), None,
                extra={"user": "u", "n": i},
            )  # fmt: skip
            parts.append(encoder.encode(snapshot(record))[0])
        bodies.append(encoder.body(parts))
    return bodies


def _post_all(session: Any, url: str, bodies: list[bytes], errors: list[int]) -> None:
    for body in bodies:
        response = session.post(url, data=body, headers={"Content-Type": "application/json"})
        if response.status_code != 200:
            errors.append(response.status_code)


def _measure_collector() -> dict[str, Any]:
    import requests

    bodies = _bodies()
    results = []
    for threads in (1, 2):
        with _util.CollectorProcess() as collector:
            sessions = [requests.Session() for _ in range(threads)]
            for s in sessions:  # connect and warm up, untimed (not counted below)
                s.post(collector.url, data=b"[]", headers={"Content-Type": "application/json"})
            errors: list[int] = []
            workers = [
                threading.Thread(
                    target=_post_all, args=(sessions[k], collector.url, bodies[k::threads], errors)
                )
                for k in range(threads)
            ]
            t0 = time.monotonic()
            for w in workers:
                w.start()
            for w in workers:
                w.join(TIME_LIMIT)
            elapsed = time.monotonic() - t0
            count = collector.count()
            results.append(
                {
                    "threads": threads,
                    "records": count,
                    "elapsed_s": elapsed,
                    "per_s": count / elapsed,
                    "errors": len(errors),
                    "body_bytes": len(bodies[0]),
                }
            )
    return {"mode": "collector", "runs": results}


# -- orchestration --


def run() -> dict[str, Any]:
    return {
        "records": RECORDS,
        "default": _util.measure("throughput.py", "default", timeout=150),
        "block": _util.measure("throughput.py", "block", timeout=150),
        "collector": _util.measure("throughput.py", "collector", timeout=150),
    }


def report(result: dict[str, Any]) -> list[str]:
    lines = [
        f"{result['records']:,} records from one thread; rate = delivered records / time from "
        "the first log call until all were accounted for (flush returned).",
        "",
        "| mode | delivered/s | arrived at collector | logging loop | total | "
        "CPU/record: process (main + dispatcher + senders) | dropped_overflow | other losses "
        "| requests |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, label in (
        ("default", "DrainHandler, default (drop_oldest)"),
        ("block", 'DrainHandler, overflow="block"'),
    ):
        r = result[key]
        st = r["stats"]
        other = st["dropped_closed"] + st["rejected"] + st["failed"]
        by = r["thread_cpu_us_per_record"]
        split = " + ".join(f"{by.get(k, 0.0):.1f}" for k in ("main", "dispatcher", "sender"))
        lines.append(
            f"| {label} | {r['delivered_per_s']:,.0f} | {r['arrived']:,} of {r['logged']:,} | "
            f"{r['produce_s']:.2f} s ({r['offered_per_s']:,.0f}/s) | {r['elapsed_s']:.2f} s | "
            f"{r['cpu_us_per_record']:.1f} us ({split}) | {st['dropped_overflow']:,} | {other} | "
            f"{r['requests']} |"
        )
    lines += [
        "",
        "Collector capacity (raw requests client, pre-encoded bodies of "
        f"{BATCH} records, {result['collector']['runs'][0]['body_bytes']:,} bytes):",
        "",
        "| client threads | records/s | records stored | errors |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for run_ in result["collector"]["runs"]:
        lines.append(
            f"| {run_['threads']} | {run_['per_s']:,.0f} | {run_['records']:,} | {run_['errors']} |"
        )
    d, b = result["default"], result["block"]
    lines += [
        "",
        f"Target >= 60,000 records/s with every record arriving: default "
        f"{d['delivered_per_s']:,.0f}/s with {d['arrived']:,}/{d['logged']:,} arriving; "
        f'overflow="block" {b["delivered_per_s"]:,.0f}/s with {b["arrived"]:,}/{b["logged"]:,}.',
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", metavar="MODE", choices=("default", "block", "collector"))
    args = parser.parse_args()
    if args.measure == "collector":
        _util.emit(_measure_collector())
    elif args.measure:
        _util.emit(_measure_drain(args.measure))
    else:
        print("\n".join(report(run())))


if __name__ == "__main__":
    sys.exit(main())
