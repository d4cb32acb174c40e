"""Scenario 3, outage memory: RECORDS records logged through a DrainHandler
(default settings) while nothing listens on the collector's port; the peak
resident memory the process gains over what it had just before.

The port is one that was bound on 127.0.0.1 and released, so every connect
is refused at once. The peak is VmHWM from /proc/self/status, reset to the
current RSS just before logging starts (``clear_refs``); where that reset is
not possible, the growth is VmHWM after minus VmRSS before (an upper bound).
``resource.getrusage().ru_maxrss`` is reported alongside. The run stops
early (and says so) after TIME_LIMIT seconds. At the end the drain is closed
with a short deadline so the process exits promptly.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import time
from typing import Any

import _util

RECORDS = 1_000_000
TIME_LIMIT = 60.0


def _measure() -> dict[str, Any]:
    import logdrain

    url = f"http://127.0.0.1:{_util.unused_port()}/ingest"
    handler = logdrain.DrainHandler(url)
    logger = logging.getLogger("bench.outage")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.handlers[:] = [handler]
    info = logger.info
    # Start the worker threads before the baseline (their stacks are not records).
    info("warm %d", 0, extra={"user": "u", "n": 0})
    time.sleep(0.2)
    gc.collect()
    peak = _util.PeakRss()
    peak.start()
    deadline = time.monotonic() + TIME_LIMIT
    logged = 0
    t0 = time.monotonic()
    for start in range(0, RECORDS, 10_000):
        for i in range(start, start + 10_000):
            info("msg %d", i, extra={"user": "u", "n": i})
        logged += 10_000
        if time.monotonic() > deadline:
            break
    elapsed = time.monotonic() - t0
    memory = peak.result()
    rss_after = _util.proc_status_kib("VmRSS") or 0
    stats = handler.drain.stats()
    handler.drain.close(0.5)
    return {
        "logged": logged,
        "elapsed_s": elapsed,
        "per_call_us": elapsed / logged * 1e6,
        **memory,
        "rss_after_kib": rss_after,
        "stats": stats.as_dict(),
    }


def run() -> dict[str, Any]:
    return _util.measure("outage_memory.py", "run", timeout=150)


def report(r: dict[str, Any]) -> list[str]:
    st = r["stats"]
    mib = r["peak_growth_kib"] / 1024
    how = "VmHWM, reset before logging" if r["peak_reset"] else "VmHWM after - VmRSS before"
    return [
        f"{r['logged']:,} records logged in {r['elapsed_s']:.1f} s "
        f"({r['per_call_us']:.1f} us/call) with nothing listening; default queue_size.",
        "",
        "| peak RSS growth | RSS before | peak after | RSS after | ru_maxrss growth | "
        "queued | in flight | dropped_overflow | retries |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {mib:.1f} MiB ({how}) | {r['rss_before_kib'] / 1024:.1f} MiB | "
        f"{r['hwm_after_kib'] / 1024:.1f} MiB | {r['rss_after_kib'] / 1024:.1f} MiB | "
        f"{r['ru_maxrss_growth_kib'] / 1024:.1f} MiB | {st['queued']:,} | {st['in_flight']:,} | "
        f"{st['dropped_overflow']:,} | {st['retries']} |",
        "",
        f"Target <= 25 MB: measured {mib:.1f} MiB ({r['peak_growth_kib'] * 1024 / 1e6:.1f} MB).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", choices=("run",))
    args = parser.parse_args()
    if args.measure:
        _util.emit(_measure())
    else:
        print("\n".join(report(run())))


if __name__ == "__main__":
    sys.exit(main())
