"""Scenario 3, outage memory: RECORDS records logged through a DrainHandler
(default settings) while nothing listens on the collector's port; the peak
resident memory the process gains over what it had just before.

Two large-record scenarios follow (issue 11), also at default settings:
LARGE_CALLS calls each with ``extra={"weights": np.random.rand(100_000)}``
(0.8 MB, a fresh array per call; skipped when numpy is missing), and
LARGE_CALLS calls each with a fresh 400 KB string in ``extra``. The bound
they are held to is ``max_buffer_bytes`` (64 MiB by default) plus 10%. Each
also runs once with a ``logging.NullHandler`` instead of the DrainHandler
("reference": what making and dropping those values costs the process by
itself, malloc's own growth included).

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
LARGE_CALLS = 3_000
LARGE = ("numpy", "string")  # the scenarios of _measure_large


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


def _large_values(kind: str) -> Any:
    """A function of the call number returning that call's fresh large value."""
    if kind == "numpy":
        import numpy as np

        return lambda _i: np.random.rand(100_000)
    base = "x" * (400_000 - 10)
    return lambda i: f"{base}{i:010d}"  # 400,000 characters, a new string each call


def _measure_large(kind: str, reference: bool) -> dict[str, Any]:
    import logdrain

    url = f"http://127.0.0.1:{_util.unused_port()}/ingest"
    handler: logging.Handler = logging.NullHandler() if reference else logdrain.DrainHandler(url)
    logger = logging.getLogger(f"bench.outage.{kind}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.handlers[:] = [handler]
    info = logger.info
    value = _large_values(kind)
    info("warm %d", 0, extra={"payload": "warm"})  # the senders start before the baseline
    time.sleep(0.2)
    gc.collect()
    peak = _util.PeakRss()
    peak.start()
    t0 = time.monotonic()
    for i in range(LARGE_CALLS):
        info("large %d", i, extra={"weights" if kind == "numpy" else "payload": value(i)})
    elapsed = time.monotonic() - t0
    memory = peak.result()
    out: dict[str, Any] = {
        "kind": kind,
        "reference": reference,
        "calls": LARGE_CALLS,
        "elapsed_s": elapsed,
        **memory,
        "rss_after_kib": _util.proc_status_kib("VmRSS") or 0,
    }
    if isinstance(handler, logdrain.DrainHandler):
        # None: a source tree from before the byte bound (``run.py --src``).
        out["max_buffer_bytes"] = getattr(handler.drain.settings, "max_buffer_bytes", None)
        out["stats"] = handler.drain.stats().as_dict()
        handler.drain.close(0.5)
    return out


def run_large() -> dict[str, Any]:
    """The large-record scenarios, each with its NullHandler reference."""
    out: dict[str, Any] = {}
    for kind in LARGE:
        try:
            out[kind] = _util.measure("outage_memory.py", kind, timeout=150)
            out[f"{kind}_reference"] = _util.measure(
                "outage_memory.py", kind, "--reference", timeout=150
            )
        except RuntimeError as exc:
            if "No module named 'numpy'" not in str(exc):
                raise
            out[kind] = {"skipped": "numpy is not installed"}
    return out


def run() -> dict[str, Any]:
    result = _util.measure("outage_memory.py", "run", timeout=150)
    result["large"] = run_large()
    return result


def report_large(large: dict[str, Any]) -> list[str]:
    lines = [
        f"Large records, {LARGE_CALLS:,} calls each, default settings, nothing listening:",
        "",
        "| scenario | peak RSS growth | reference (NullHandler) | bound (max_buffer_bytes + 10%) "
        "| queued | in flight | buffered bytes | dropped_overflow |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    labels = {
        "numpy": 'extra={"weights": np.random.rand(100_000)} (0.8 MB)',
        "string": "a fresh 400 KB string in extra",
    }
    for kind in LARGE:
        r = large.get(kind)
        if r is None:
            continue
        if "skipped" in r:
            lines.append(f"| {labels[kind]} | skipped: {r['skipped']} | | | | | | |")
            continue
        ref = large.get(f"{kind}_reference", {})
        st = r["stats"]
        growth = r["peak_growth_kib"] * 1024
        ref_text = f"{ref['peak_growth_kib'] / 1024:.1f} MiB" if ref else "-"
        if r["max_buffer_bytes"] is None:  # an older tree: no byte bound to meet
            bound_text, met, held = "none", "no bound", "-"
        else:
            bound = r["max_buffer_bytes"] * 1.1
            bound_text = f"{bound / 2**20:.1f} MiB"
            met = "met" if growth <= bound else "NOT met"
            held = f"{st['buffered_bytes'] / 2**20:.1f} MiB"
        lines.append(
            f"| {labels[kind]} | {growth / 2**20:.1f} MiB ({met}) | {ref_text} | "
            f"{bound_text} | {st['queued']:,} | {st['in_flight']:,} | "
            f"{held} | {st['dropped_overflow']:,} |"
        )
    return lines


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
        *(["", *report_large(r["large"])] if r.get("large") else []),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", choices=("run", *LARGE))
    parser.add_argument("--reference", action="store_true", help="NullHandler instead")
    parser.add_argument("--large", action="store_true", help="only the large-record scenarios")
    args = parser.parse_args()
    if args.measure == "run":
        _util.emit(_measure())
    elif args.measure:
        _util.emit(_measure_large(args.measure, args.reference))
    elif args.large:
        print("\n".join(report_large(run_large())))
    else:
        print("\n".join(report(run())))


if __name__ == "__main__":
    sys.exit(main())
