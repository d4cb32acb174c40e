"""The disk spool (``spool_dir``) beside no spool, in one run: figures, not pass/fail.

Rows, each in its own fresh interpreter (``--measure ROW``), RECORDS records
logged through a ``DrainHandler`` by one thread (``overflow="block"`` with a
30 s ``block_timeout`` for the collector-up rows, so the producer is pushed
back and the rate is the senders' capacity; default ``drop_oldest`` for the
collector-down rows, as in an outage):

``up-off`` / ``up-on``      collector up (its own process); records/s from the
                            first call until ``flush()`` returned; wall µs per
                            call on the caller's thread.
``down-off`` / ``down-on``  nothing listens on the port (connects refused);
                            wall µs per call, and for ``down-on`` the records/s
                            from the first call until every record is spooled
                            or finally counted (``pending == spooled``); what
                            each row lost.

Caller cost (``--callgrind``): instructions per log call counted by valgrind's
callgrind (deterministic, whatever the host load): a process that makes N=0
and one that makes N=CG_CALLS calls into a DrainHandler, the difference of
callgrind's "Collected" total divided by CG_CALLS. Whole process (the caller's
thread and the sender threads), collector down (connects refused), spool off
and on: so the spool rows include writing every record to SQLite. Rows
``caller-off`` / ``caller-on`` hold the senders back (the caller's thread
alone, as ``caller_cost.py``'s row d'): what the spool costs a log call.

The host of the published figures is a noisy 2-core VM: wall-clock figures
spread by 30% and more between runs; the callgrind counts do not.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

import _util

RECORDS = 50_000
CG_CALLS = 20_000
ROWS = ("up-off", "up-on", "down-off", "down-on")
CG_ROWS = ("caller-off", "caller-on", "down-off", "down-on")


def _logger(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"bench.spool.{id(handler)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.handlers[:] = [handler]
    return logger


def _measure(row: str, url: str, spool_dir: str | None) -> dict[str, Any]:
    import logdrain

    up = row.startswith("up")
    options: dict[str, Any] = {"overflow": "block", "block_timeout": 30.0} if up else {}
    if row.endswith("on"):
        assert spool_dir is not None
        options["spool_dir"] = spool_dir
    handler = logdrain.DrainHandler(url, **options)
    info = _logger(handler).info
    info("warm %d", 0, extra={"user": "u", "n": 0})
    handler.drain.flush(5) if up else time.sleep(0.2)
    t0 = time.perf_counter()
    for i in range(RECORDS):
        info("msg %d", i, extra={"user": "u", "n": i})
    logged = time.perf_counter() - t0
    drain = handler.drain
    if up:
        done = drain.flush(120)
    else:
        end = time.monotonic() + 120
        while (s := drain.stats()).pending != s.spooled and time.monotonic() < end:
            time.sleep(0.01)
        done = drain.stats().pending == drain.stats().spooled
    total = time.perf_counter() - t0
    stats = drain.stats().as_dict()
    drain.close(1.0)
    return {
        "row": row,
        "records": RECORDS,
        "caller_us_per_call": logged / RECORDS * 1e6,
        "records_per_s": RECORDS / total if done else None,
        "settled": done,
        "stats": stats,
    }


def _callgrind_child(row: str, calls: int, url: str, spool_dir: str | None) -> None:
    import logdrain

    options: dict[str, Any] = {}
    if row.endswith("on"):
        options["spool_dir"] = spool_dir
    handler = logdrain.DrainHandler(
        url, backoff_initial=0.05, backoff_max=0.2, max_retry_time=1.0, **options
    )
    drain = handler.drain
    if row.startswith("caller"):
        drain._worker.started = True  # diagnostic: no sender runs (private; see caller_cost.py)
    info = _logger(handler).info
    for i in range(calls):
        info("msg %d", i, extra={"user": "u", "n": i})
    if not row.startswith("caller"):  # the senders' work on these records is counted too
        end = time.monotonic() + 300
        while (s := drain.stats()).pending != s.spooled and time.monotonic() < end:
            time.sleep(0.05)
    drain.close(0.5)


def _collected(row: str, calls: int) -> int:
    tmp = tempfile.mkdtemp(prefix="logdrain-cg-")
    try:
        out = os.path.join(tmp, "cg.out")
        spool_dir = os.path.join(tmp, "spool")
        url = f"http://127.0.0.1:{_util.unused_port()}/ingest"
        cmd = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            "--cg-child",
            row,
            str(calls),
            url,
            spool_dir,
        ]
        proc = subprocess.run(
            cmd, env=_util.bench_env(), capture_output=True, text=True, timeout=900, check=False
        )
        match = re.search(r"Collected\s*:\s*(\d+)", proc.stderr)
        if proc.returncode != 0 or match is None:
            raise RuntimeError(
                f"callgrind {row} {calls}: rc={proc.returncode}\n{proc.stderr[-3000:]}"
            )
        return int(match[1])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_callgrind() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for row in CG_ROWS:
        base = _collected(row, 0)
        full = _collected(row, CG_CALLS)
        out[row] = {"n0": base, "n": full, "per_call": (full - base) / CG_CALLS}
    return out


def run() -> dict[str, Any]:
    out: dict[str, Any] = {"machine": _util.machine_info(), "load_before": os.getloadavg()}
    for row in ROWS:
        tmp = tempfile.mkdtemp(prefix="logdrain-spool-bench-")
        try:
            if row.startswith("up"):
                collector = _util.CollectorProcess()
                try:
                    out[row] = _util.measure(
                        "spool.py", row, collector.url, os.path.join(tmp, "spool"), timeout=300
                    )
                    out[row]["collector_count"] = collector.count()
                finally:
                    collector.close()
            else:
                url = f"http://127.0.0.1:{_util.unused_port()}/ingest"
                out[row] = _util.measure(
                    "spool.py", row, url, os.path.join(tmp, "spool"), timeout=300
                )
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def report(result: dict[str, Any]) -> list[str]:
    lines = ["| row | caller µs/call (wall) | records/s | delivered | spooled | lost |"]
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    for row in ROWS:
        r = result.get(row)
        if not r:
            continue
        s = r["stats"]
        rate = f"{r['records_per_s']:,.0f}" if r["records_per_s"] else "not settled"
        lost = s["dropped_overflow"] + s["dropped_closed"] + s["failed"] + s["rejected"]
        lines.append(
            f"| {row} | {r['caller_us_per_call']:.2f} | {rate} | {s['delivered']:,} | "
            f"{s['spooled']:,} | {lost:,} |"
        )
    cg = result.get("callgrind")
    if cg:
        lines += ["", "| callgrind row | instructions per log call |", "| --- | ---: |"]
        lines += [f"| {row} | {cg[row]['per_call']:,.0f} |" for row in CG_ROWS if row in cg]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", nargs=3, metavar=("ROW", "URL", "SPOOL_DIR"))
    parser.add_argument("--cg-child", nargs=4, metavar=("ROW", "CALLS", "URL", "SPOOL_DIR"))
    parser.add_argument("--callgrind", action="store_true", help="also count instructions")
    parser.add_argument("--json", help="write the raw figures here too")
    args = parser.parse_args()
    if args.measure:
        row, url, spool_dir = args.measure
        print(json.dumps(_measure(row, url, spool_dir)))
        return
    if args.cg_child:
        row, calls, url, spool_dir = args.cg_child
        _callgrind_child(row, int(calls), url, spool_dir)
        return
    result = run()
    if args.callgrind:
        result["callgrind"] = run_callgrind()
    print("\n".join(report(result)))
    print(f"\nmachine: {result['machine']}; load before: {result['load_before']}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
