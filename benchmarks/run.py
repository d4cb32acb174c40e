"""Run every benchmark scenario, print the figures, write RESULTS.md.

    python benchmarks/run.py                 # all scenarios (about 9 minutes; compare ~7)
    python benchmarks/run.py --only caller_cost,throughput
    python benchmarks/run.py --src /path/to/other/src --no-write --json /tmp/other.json
    python benchmarks/run.py --only compare --quick --subjects logdrain,otel --scenarios flap

Figures, not pass/fail: targets are shown next to what was measured. The
exit status is non-zero only when a scenario crashed. Every measurement runs
in a fresh subprocess (see _util.py); every server is on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _util
import breakdown
import caller_cost
import compare
import outage_memory
import scaling
import throughput

SCENARIOS: dict[str, tuple[str, Callable[[], dict[str, Any]], Callable[[Any], list[str]]]] = {
    "caller_cost": ("1. Caller cost", caller_cost.run, caller_cost.report),
    "throughput": ("2. Throughput", throughput.run, throughput.report),
    "outage_memory": ("3. Outage memory", outage_memory.run, outage_memory.report),
    "breakdown": ("4. Where the time goes", breakdown.run, breakdown.report),
    "compare": ("5. Side by side", compare.run, compare.report),
    "scaling": ("6. Scaling: concurrency and processes", scaling.run, scaling.report),
}

_CALIBRATE = """
import time
t0 = time.perf_counter()
x = 0
for i in range(2_000_000):
    x += i & 7
print((time.perf_counter() - t0) / 2_000_000 * 1e9)
"""


def calibrate() -> float:
    """ns per iteration of a fixed pure-Python loop in a fresh interpreter:
    compares the speed the machine gave this run with another run's."""
    out = subprocess.run(
        [sys.executable, "-c", _CALIBRATE], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return float(out.strip())


def loadavg() -> str:
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def summary(results: dict[str, Any]) -> list[str]:
    lines = ["| figure | measured | target |", "| --- | ---: | --- |"]
    cc = results.get("caller_cost")
    if cc:
        rows = {r["row"]: r for r in cc["rows"]}
        null = rows["null"]["ns"] / 1000
        for key, label, target in (
            ("deque", "deque floor above NullHandler", "(+0.6 us in the issue)"),
            ("queue_handler", "QueueHandler above NullHandler", "(+5.5-8 us in the issue)"),
            ("drain_handler", "DrainHandler above NullHandler, bursts of 5,000", "<= 1.5 us"),
            ("drain_handler_caller", "DrainHandler above NullHandler, worker not running", "-"),
            ("queue_handler_sustained", "QueueHandler above NullHandler, sustained", "-"),
            ("drain_handler_sustained", "DrainHandler above NullHandler, sustained", "-"),
            ("structlog_drain", "DrainProcessor above the same structlog chain", "-"),
        ):
            if key in rows:
                lines.append(f"| {label} | {rows[key]['delta_ns'] / 1000:+.2f} us | {target} |")
        lines.append(f"| NullHandler call | {null:.2f} us | (~5.6 us in the issue) |")
    tp = results.get("throughput")
    if tp:
        d, b = tp["default"], tp["block"]
        lines += [
            f"| throughput, default settings | {d['delivered_per_s']:,.0f}/s, "
            f"{d['arrived']:,}/{d['logged']:,} arrived | >= 60,000/s, all arriving |",
            f'| throughput, overflow="block" | {b["delivered_per_s"]:,.0f}/s, '
            f"{b['arrived']:,}/{b['logged']:,} arrived | >= 60,000/s |",
        ]
        best = max(r["per_s"] for r in tp["collector"]["runs"])
        lines.append(f"| collector capacity (raw requests client) | {best:,.0f}/s | (~235k/s) |")
    om = results.get("outage_memory")
    if om:
        lines.append(
            f"| outage: peak RSS growth for {om['logged']:,} records | "
            f"{om['peak_growth_kib'] / 1024:.1f} MiB | <= 25 MB |"
        )
    return lines


def write_results(path: Path, info: dict[str, Any], results: dict[str, Any], meta: Any) -> None:
    out = [
        "# Benchmark results",
        "",
        "Written by `python benchmarks/run.py` (see README.md for what each scenario does).",
        "",
        "## Machine",
        "",
        f"- nproc: {info['nproc']}",
        f"- CPU: {info['cpu']}",
        f"- memory: {info['memory']}",
        f"- Python: {info['python']} ({info['platform']})",
        f"- packages: {info['packages']}",
        f"- code measured: {info['src']} at {info['commit']}",
        f"- run at: {info['date']}; total {meta['total_s']:.0f} s",
        f"- load average (1/5/15 min) at start: {meta['load_start']}, at end: {meta['load_end']}",
        f"- calibration loop (lower is faster): {meta['calib_start']:.1f} ns/iteration at start, "
        f"{meta['calib_end']:.1f} at end",
        "",
        "## Summary",
        "",
        *summary(results),
    ]
    for key, (title, _, report) in SCENARIOS.items():
        if key in results:
            out += ["", f"## {title}", "", f"Load average before: {meta['load'][key]}; "
                    f"took {meta['seconds'][key]:.0f} s.", "", *report(results[key])]  # fmt: skip
    out += [
        "",
        "## Raw figures",
        "",
        "<details><summary>JSON</summary>",
        "",
        "```json",
        json.dumps(results, indent=1, sort_keys=True),
        "```",
        "",
        "</details>",
        "",
    ]
    path.write_text("\n".join(out), encoding="utf-8")


def _with_compare_options(args: argparse.Namespace) -> None:
    """Bind --subjects/--scenarios/--quick to the compare scenario."""
    title, _, report = SCENARIOS["compare"]
    run = functools.partial(compare.run, args.subjects, args.scenarios, args.quick)
    SCENARIOS["compare"] = (title, run, report)


def main() -> int:
    parser = argparse.ArgumentParser(description="logdrain benchmarks")
    parser.add_argument("--only", help="comma-separated scenarios: " + ",".join(SCENARIOS))
    parser.add_argument("--src", help="measure the logdrain package under this src directory")
    parser.add_argument("--results", default=str(_util.BENCH_DIR / "RESULTS.md"))
    parser.add_argument("--no-write", action="store_true", help="do not write --results")
    parser.add_argument("--json", help="also write the raw figures (and machine facts) here")
    parser.add_argument("--subjects", help="compare only: comma-separated subjects")
    parser.add_argument("--scenarios", help="compare only: comma-separated scenarios")
    parser.add_argument("--quick", action="store_true", help="compare only: small counts")
    args = parser.parse_args()
    try:
        compare.check_names(args.subjects, args.scenarios)
    except ValueError as exc:
        parser.error(str(exc))
    _with_compare_options(args)
    if args.src:
        os.environ[_util.SRC_ENV] = str(Path(args.src).resolve())
    chosen = list(SCENARIOS) if not args.only else [s.strip() for s in args.only.split(",")]
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")

    started = time.monotonic()
    info = _util.machine_info()
    print(f"machine: {info['nproc']} x {info['cpu']}, {info['python']}")
    print(f"packages: {info['packages']}")
    print(f"code: {info['src']} at {info['commit']}")
    meta: dict[str, Any] = {"load_start": loadavg(), "calib_start": calibrate()}
    meta["load"], meta["seconds"] = {}, {}
    print(f"load average {meta['load_start']}; calibration {meta['calib_start']:.1f} ns/iteration")
    results: dict[str, Any] = {}
    failed = []
    for key in chosen:
        title, run, report = SCENARIOS[key]
        meta["load"][key] = loadavg()
        print(f"\n== {title} (load average {meta['load'][key]})", flush=True)
        t0 = time.monotonic()
        try:
            results[key] = run()
        except Exception:
            failed.append(key)
            traceback.print_exc()
            continue
        finally:
            meta["seconds"][key] = time.monotonic() - t0
        print("\n".join(report(results[key])))
        print(f"({meta['seconds'][key]:.0f} s)", flush=True)
    meta["load_end"], meta["calib_end"] = loadavg(), calibrate()
    meta["total_s"] = time.monotonic() - started
    print("\n== Summary\n" + "\n".join(summary(results)))
    print(f"\ntotal {meta['total_s']:.0f} s; load average at end {meta['load_end']}")
    if not args.no_write and results:
        write_results(Path(args.results), info, results, meta)
        print(f"wrote {args.results}")
    if args.json:
        payload = {"machine": info, "meta": meta, "results": results}
        Path(args.json).write_text(json.dumps(payload, indent=1), encoding="utf-8")
    if failed:
        print(f"scenario(s) crashed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
