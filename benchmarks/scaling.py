"""Scaling scenario: records/s into ONE collector, by concurrency and by process.

End-to-end records/s as the sender's ``concurrency`` grows, and as the
number of producing processes grows (each with its own DrainHandler, as
multiprocessing or gunicorn workers have). Every rate counts only records
the collector stored; the collector's count is reported next to the count
sent.

Parts, each measurement in its own fresh interpreter with its own collector
process (``collector_server.py``, a pure-Python threaded HTTP server):

``conc C block|default``  one process, one thread logging RECORDS records as
        fast as it can through ``DrainHandler(url, concurrency=C)``:
        ``overflow="block"`` (``block_timeout`` 30 s) so nothing drops and the
        rate is the sender's capacity; and the default ``drop_oldest``, for
        how many arrive when the producer outruns the sender.
``procs P fast|paced``    P processes (multiprocessing, spawn), each with its
        own ``DrainHandler(url)`` at default settings. ``fast``: each logs
        PER_PROC records as fast as it can. ``paced``: each logs at PACED_RATE
        records/s for PACED_SECONDS (the load an application actually
        offers, rather than a flood). Aggregate rate = records the collector
        stored / time from the start signal until the last process's
        ``drain.flush()`` returned.

``baseline``  the same logging loop into a ``logging.NullHandler``: the CPU
        stdlib logging itself takes per record, so logdrain's share shows.

For every measurement the CPU used over the same window by the producing
process(es), by the collector process and by the rest of the machine (from
/proc) is reported: the collector is Python too, so on a small machine with
several producers it, or the machine's cores, become the limit, and the
table says which (and flags other load on a shared machine). The machine
figure comes from /proc/stat, which is sampled per clock tick: for a load
that sleeps often (the paced mode) "other" is approximate.

The flood measurements run twice, alternating, and both rounds are shown.
A full run takes about 1.5 minutes on a 2-core machine; ``--quick`` (smaller
counts, one round) about 20 s. ``--src DIR`` measures another source tree,
as ``run.py --src`` does.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import _util

CONCURRENCY = (1, 2, 4, 8)
PROCESSES = (1, 2, 4)
OVERFLOWS = ("block", "default")
# name: (records for one conc row, records per process for fast, paced rate/s per process,
#        paced seconds)
SIZES: dict[str, tuple[int, int, int, float]] = {
    "full": (200_000, 100_000, 10_000, 5.0),
    "quick": (40_000, 20_000, 10_000, 2.0),
}
TIME_LIMIT = 60.0  # seconds of logging at most per producer; a run that hits it says so
PACE_CHUNK = 50  # a paced producer logs this many records, then sleeps to its schedule


# -- /proc readings (Linux) --


def _pid_cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of process ``pid`` (all its threads)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return float("nan")
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs from /proc/stat; busy excludes idle and iowait."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            values = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    total = sum(values[:8])  # user nice system idle iowait irq softirq steal (guest is in user)
    return total - values[3] - values[4], total


class _Window:
    """CPU used by the collector process and by the whole machine between
    :meth:`start` and :meth:`stop`, in cores (1.0 = one core busy all along)."""

    def __init__(self, collector_pid: int) -> None:
        self.pid = collector_pid
        self.t0 = self.c0 = 0.0
        self.m0 = (0, 0)
        self.result: dict[str, float] = {}

    def start(self) -> None:
        self.c0 = _pid_cpu_seconds(self.pid)
        self.m0 = _machine_ticks()
        self.t0 = time.monotonic()

    def stop(self, producer_cpu_s: float) -> dict[str, float]:
        """``producer_cpu_s``: CPU seconds the producing process(es) reported for
        the window; whatever the machine used beyond them and the collector is
        other load (other users of a shared machine, the spawn machinery)."""
        wall = time.monotonic() - self.t0
        collector = _pid_cpu_seconds(self.pid) - self.c0
        busy, total = _machine_ticks()
        ncpu = os.cpu_count() or 1
        share = (busy - self.m0[0]) / max(1, total - self.m0[1])
        wall = max(wall, 1e-9)
        self.result = {
            "wall_s": wall,
            "collector_cpu_s": collector,
            "collector_cores": collector / wall,
            "producer_cores": producer_cpu_s / wall,
            "machine_cores": share * ncpu,
            "other_cores": max(0.0, share * ncpu - (collector + producer_cpu_s) / wall),
            "ncpu": ncpu,
        }
        return self.result


class _Collector(_util.CollectorProcess):
    """The shared out-of-process collector, plus its pid (for its CPU use)."""

    @property
    def pid(self) -> int:
        return self._proc.pid


# -- one producer: log `records` records (or `rate`/s for `seconds`), then flush --


def _logger(handler: logging.Handler, name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.handlers[:] = [handler]
    return logger


def _produce(
    logger: logging.Logger, drain: Any, records: int, rate: float, seconds: float
) -> dict[str, Any]:
    """Log as fast as possible (rate 0) or paced; then flush. Times are
    ``time.monotonic()``, which is system-wide on Linux, so the parent can
    compare them across processes."""
    info = logger.info
    cpu0 = time.process_time()
    t0 = time.monotonic()
    deadline = t0 + TIME_LIMIT
    logged = 0
    hit_limit = False
    if rate > 0:
        target = int(rate * seconds)
        while logged < target:
            for i in range(logged, logged + PACE_CHUNK):
                info("msg %d", i, extra={"user": "u", "n": i})
            logged += PACE_CHUNK
            pause = t0 + logged / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
    else:
        for start in range(0, records, 10_000):
            for i in range(start, min(records, start + 10_000)):
                info("msg %d", i, extra={"user": "u", "n": i})
            logged = min(records, start + 10_000)
            if time.monotonic() > deadline:
                hit_limit = True
                break
    t_logged = time.monotonic()
    complete = drain.flush(max(5.0, deadline + 30 - time.monotonic()))
    t_done = time.monotonic()
    return {
        "logged": logged,
        "complete": bool(complete),
        "hit_time_limit": hit_limit,
        "t0": t0,
        "t_logged": t_logged,
        "t_done": t_done,
        "cpu_s": time.process_time() - cpu0,
    }


def _child(job: tuple[int, str, int, float, float], ready: Any, go: Any, out: Any) -> None:
    """One producing process: its own DrainHandler at default settings.
    ``job``: (index, url, records, rate, seconds), as for :func:`_produce`."""
    import logdrain

    index, url, records, rate, seconds = job

    handler = logdrain.DrainHandler(url)
    logger = _logger(handler, f"bench.scaling.p{index}")
    # Start the worker threads and the connection before the clock (untimed).
    logger.info("warm %d", -1, extra={"user": "u", "n": -1})
    handler.drain.flush(10.0)
    warm = handler.drain.stats().delivered
    ready.put(index)
    go.wait(60.0)
    result = _produce(logger, handler.drain, records, rate, seconds)
    stats = handler.drain.stats().as_dict()
    stats["delivered"] -= warm
    stats["submitted"] -= warm
    result.update(index=index, stats=stats)
    out.put(result)
    handler.close()


# -- measurements (each in a fresh interpreter: `scaling.py --measure ...`) --


def _measure_concurrency(concurrency: int, overflow: str, records: int) -> dict[str, Any]:
    import logdrain

    options: dict[str, Any] = {"concurrency": concurrency}
    if overflow == "block":
        options.update(overflow="block", block_timeout=30.0)
    with _Collector() as collector:
        handler = logdrain.DrainHandler(collector.url, **options)
        logger = _logger(handler, "bench.scaling")
        logger.info("warm %d", -1, extra={"user": "u", "n": -1})
        handler.drain.flush(10.0)
        base = collector.count()
        warm = handler.drain.stats().delivered
        window = _Window(collector.pid)
        window.start()
        result = _produce(logger, handler.drain, records, 0.0, 0.0)
        cpu = window.stop(result["cpu_s"])
        stats = handler.drain.stats().as_dict()
        stats["delivered"] -= warm
        stats["submitted"] -= warm
        server = collector.stats()
        handler.close()
    elapsed = result["t_done"] - result["t0"]
    return {
        "kind": "conc",
        "concurrency": concurrency,
        "overflow": overflow,
        "logged": result["logged"],
        "arrived": server["count"] - base,
        "complete": result["complete"],
        "hit_time_limit": result["hit_time_limit"],
        "elapsed_s": elapsed,
        "produce_s": result["t_logged"] - result["t0"],
        "delivered_per_s": stats["delivered"] / elapsed,
        "arrived_per_s": (server["count"] - base) / elapsed,
        "process_cpu_us_per_record": result["cpu_s"] / max(1, result["logged"]) * 1e6,
        "non_2xx": server["non_2xx"],
        "stats": stats,
        "cpu": cpu,
        "python": platform.python_version(),
    }


def _measure_processes(
    procs: int, mode: str, records: int, rate: float, seconds: float
) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    with _Collector() as collector:
        ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
        paced_rate = rate if mode == "paced" else 0.0
        children = [
            ctx.Process(
                target=_child,
                args=((k, collector.url, records, paced_rate, seconds), ready, go, out),
                name=f"producer-{k}",
            )
            for k in range(procs)
        ]
        for child in children:
            child.start()
        for _ in range(procs):
            ready.get(timeout=60)
        base = collector.count()  # the warm-up records
        window = _Window(collector.pid)
        window.start()
        t_go = time.monotonic()
        go.set()
        results = [out.get(timeout=TIME_LIMIT + 60) for _ in range(procs)]
        cpu = window.stop(sum(r["cpu_s"] for r in results))
        server = collector.stats()
        for child in children:
            child.join(30)
            if child.is_alive():
                child.kill()
                child.join()
    t_end = max(r["t_done"] for r in results)
    elapsed = t_end - t_go
    logged = sum(r["logged"] for r in results)
    arrived = server["count"] - base
    totals: dict[str, int] = {}
    for r in results:
        for key, value in r["stats"].items():
            totals[key] = totals.get(key, 0) + value
    return {
        "kind": "procs",
        "processes": procs,
        "mode": mode,
        "rate_per_proc": rate if mode == "paced" else 0.0,
        "logged": logged,
        "arrived": arrived,
        "complete": all(r["complete"] for r in results),
        "hit_time_limit": any(r["hit_time_limit"] for r in results),
        "elapsed_s": elapsed,
        "start_skew_s": max(r["t0"] for r in results) - t_go,
        "produce_s": max(r["t_logged"] for r in results) - t_go,
        "offered_per_s": logged / max(1e-9, max(r["t_logged"] for r in results) - t_go),
        "arrived_per_s": arrived / elapsed,
        "per_process_arrived_per_s": [
            r["stats"]["delivered"] / (r["t_done"] - r["t0"]) for r in results
        ],
        "process_cpu_us_per_record": sum(r["cpu_s"] for r in results) / max(1, logged) * 1e6,
        "non_2xx": server["non_2xx"],
        "stats": totals,
        "cpu": cpu,
        "python": platform.python_version(),
    }


def _measure_baseline(records: int) -> dict[str, Any]:
    """The same logging loop into a ``logging.NullHandler``: what stdlib logging
    itself costs, so logdrain's share of the CPU per record can be told apart."""
    info = _logger(logging.NullHandler(), "bench.scaling.null").info
    cpu0 = time.process_time()
    t0 = time.monotonic()
    for i in range(records):
        info("msg %d", i, extra={"user": "u", "n": i})
    elapsed = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    return {
        "kind": "baseline",
        "logged": records,
        "calls_per_s": records / elapsed,
        "process_cpu_us_per_record": cpu / records * 1e6,
    }


# -- orchestration --


def run(quick: bool = False) -> dict[str, Any]:
    """Every measurement, each in a fresh interpreter. The flood measurements
    are repeated (``rounds``, alternating) because the machine is noisy; the
    paced ones run once (their rate is set by the producers)."""
    size = "quick" if quick else "full"
    records, per_proc, rate, seconds = SIZES[size]
    rounds = 1 if quick else 2
    result: dict[str, Any] = {
        "size": size,
        "rounds": rounds,
        "records": records,
        "per_proc": per_proc,
        "paced_rate": rate,
        "paced_seconds": seconds,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "src": str(_util.src_dir()),
        "commit": _util.source_state(),
        "load_start": _loadavg(),
        "baseline": [],
        "conc": [],
        "procs": [],
    }
    for _ in range(rounds):
        result["baseline"].append(_util.measure("scaling.py", "baseline", str(records)))
        for c in CONCURRENCY:
            for overflow in OVERFLOWS:
                args = ("conc", str(c), overflow, str(records))
                result["conc"].append(_util.measure("scaling.py", *args, timeout=150))
        for p in PROCESSES:
            args = ("procs", str(p), "fast", str(per_proc), "0", "0")
            result["procs"].append(_util.measure("scaling.py", *args, timeout=180))
    for p in PROCESSES:
        args = ("procs", str(p), "paced", "0", str(rate), str(seconds))
        result["procs"].append(_util.measure("scaling.py", *args, timeout=180))
    result["load_end"] = _loadavg()
    return result


def _loadavg() -> str:
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _limit(rows: list[dict[str, Any]]) -> str:
    """Which resource ran out, judged from the CPU figures (shown as a judgement)."""
    r = rows[0]
    paced = r["kind"] == "procs" and r["mode"] == "paced"
    if paced and all(x["arrived"] >= x["logged"] for x in rows):
        return "none: load below capacity"
    collector = statistics.mean(x["cpu"]["collector_cores"] for x in rows)
    machine = statistics.mean(x["cpu"]["machine_cores"] for x in rows)
    other = statistics.mean(x["cpu"]["other_cores"] for x in rows)
    ncpu = r["cpu"]["ncpu"]
    notes = []
    if collector >= 0.85:
        notes.append("collector (one Python process: ~1 core at most)")
    if machine >= 0.9 * ncpu:
        notes.append(f"all {ncpu} cores busy")
    elif r["kind"] == "conc" or r["processes"] == 1:
        notes.append("the producing process (one GIL)")
    if other >= 0.25:
        notes.append(f"other load on the machine: {other:.2f} cores")
    return "; ".join(notes) or "-"


def _cpu_split(r: dict[str, Any]) -> str:
    c = r["cpu"]
    return f"{c['producer_cores']:.2f} + {c['collector_cores']:.2f} + {c['other_cores']:.2f}"


def _rounds(rows: list[dict[str, Any]], fmt: str, key: Any) -> str:
    return " / ".join(fmt.format(key(r)) for r in rows)


def _grouped(rows: list[dict[str, Any]], *keys: str) -> list[list[dict[str, Any]]]:
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    return list(groups.values())


def _median_rate(rows: list[dict[str, Any]]) -> float:
    return _util.median(r["arrived_per_s"] for r in rows)


def report(result: dict[str, Any]) -> list[str]:
    ncpu = result["conc"][0]["cpu"]["ncpu"]
    base = _util.median(r["process_cpu_us_per_record"] for r in result["baseline"])
    several = " (each round shown, a / b)" if result["rounds"] > 1 else ""
    lines = [
        f"Python {result['python']}; code {result['src']} ({result['commit']}); "
        f"{result['size']} sizes, {result['rounds']} round(s){several}; run at {result['date']}; "
        f"load average {result['load_start']} at start, {result['load_end']} at end.",
        "",
        "Rate = records the collector stored / time from the first log call until every "
        "producer's flush() returned. CPU in cores (1.0 = one core busy for the whole "
        f"window; the machine has {ncpu}): the producing process(es), the collector process, "
        "and the rest of the machine (other users, process start-up). Process CPU/record: "
        "every thread of the "
        "producing process(es); the same loop into a NullHandler takes "
        f"{base:.1f} us/record (stdlib logging itself), so logdrain's share is the difference.",
        "",
        f"(a) One process, one logging thread, {result['records']:,} records, "
        "DrainHandler(url, concurrency=C):",
        "",
        "| concurrency | overflow | records/s | arrived of sent | dropped_overflow | "
        "process CPU/record | CPU: producer + collector + other | limit |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for rows in _grouped(result["conc"], "concurrency", "overflow"):
        r = rows[0]
        lines.append(
            f"| {r['concurrency']} | {'block' if r['overflow'] == 'block' else 'drop_oldest'} | "
            f"{_rounds(rows, '{:,.0f}', lambda x: x['arrived_per_s'])} | "
            f"{_rounds(rows, '{:,}', lambda x: x['arrived'])} of {r['logged']:,} | "
            f"{_rounds(rows, '{:,}', lambda x: x['stats']['dropped_overflow'])} | "
            f"{_rounds(rows, '{:.1f}', lambda x: x['process_cpu_us_per_record'])} us | "
            f"{_rounds(rows, '{}', _cpu_split)} | {_limit(rows)} |"
        )
    lines += [
        "",
        "(b) P processes (multiprocessing, spawn), each with its own DrainHandler(url) at "
        f"default settings, one collector. fast: {result['per_proc']:,} records per process as "
        f"fast as it can; paced: {result['paced_rate']:,} records/s per process for "
        f"{result['paced_seconds']:g} s.",
        "",
        "| processes | mode | aggregate records/s | per process | arrived of sent | "
        "dropped_overflow | process CPU/record | CPU: producers + collector + other | limit |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for rows in _grouped(result["procs"], "mode", "processes"):
        r = rows[0]
        per = [v for x in rows for v in x["per_process_arrived_per_s"]]
        lines.append(
            f"| {r['processes']} | {r['mode']} | "
            f"{_rounds(rows, '{:,.0f}', lambda x: x['arrived_per_s'])} | "
            f"{min(per):,.0f}-{max(per):,.0f} | "
            f"{_rounds(rows, '{:,}', lambda x: x['arrived'])} of {r['logged']:,} | "
            f"{_rounds(rows, '{:,}', lambda x: x['stats']['dropped_overflow'])} | "
            f"{_rounds(rows, '{:.1f}', lambda x: x['process_cpu_us_per_record'])} us | "
            f"{_rounds(rows, '{}', _cpu_split)} | {_limit(rows)} |"
        )
    for r in result["conc"] + result["procs"]:
        if r["non_2xx"] or not r["complete"] or r["hit_time_limit"]:
            lines.append(
                f"note: {r['kind']} {r.get('concurrency', r.get('processes'))} "
                f"{r.get('overflow', r.get('mode'))}: non_2xx={r['non_2xx']}, "
                f"flush complete={r['complete']}, hit time limit={r['hit_time_limit']}"
            )
    block = {
        rows[0]["concurrency"]: _median_rate(rows)
        for rows in _grouped(result["conc"], "concurrency", "overflow")
        if rows[0]["overflow"] == "block"
    }
    fast = {
        rows[0]["processes"]: _median_rate(rows)
        for rows in _grouped(result["procs"], "mode", "processes")
        if rows[0]["mode"] == "fast"
    }
    lo_c, hi_c, lo_p, hi_p = min(block), max(block), min(fast), max(fast)
    collector_per_record = max(
        r["cpu"]["collector_cpu_s"] / max(1, r["arrived"]) * 1e6
        for r in result["procs"]
        if r["mode"] == "fast"
    )
    lines += [
        "",
        f"Medians: concurrency {lo_c} -> {hi_c}: {block[lo_c]:,.0f} -> {block[hi_c]:,.0f} "
        "records/s "
        f'(overflow="block"); processes {lo_p} -> {hi_p}: {fast[lo_p]:,.0f} -> '
        f"{fast[hi_p]:,.0f} records/s aggregate (x{fast[hi_p] / max(1.0, fast[lo_p]):.2f}). "
        f"The collector used at most {collector_per_record:.1f} us of CPU per stored record.",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", nargs="+", metavar="ARG", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="smaller counts, one round")
    parser.add_argument("--src", help="measure the logdrain package under this src directory")
    parser.add_argument("--json", help="also write the raw figures here")
    args = parser.parse_args()
    if args.src:
        os.environ[_util.SRC_ENV] = str(Path(args.src).resolve())
    if args.measure:
        kind, *rest = args.measure
        if kind == "baseline":
            _util.emit(_measure_baseline(int(rest[0])))
        elif kind == "conc":
            _util.emit(_measure_concurrency(int(rest[0]), rest[1], int(rest[2])))
        else:
            p, mode, records, rate, seconds = rest
            _util.emit(_measure_processes(int(p), mode, int(records), float(rate), float(seconds)))
        return
    result = run(quick=args.quick)
    print("\n".join(report(result)))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
