"""Tables for the side-by-side comparison (``compare.py``): one cell per
(subject, scenario) for the main table, a detail table per scenario, the
collector's capacity, and logdrain against its goals. Works on the result
dict alone (``compare.run()`` or its JSON)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import subjects

Result = dict[str, Any]


def _error_cell(r: Result) -> str | None:
    if "error" in r and not r.get("killed"):
        return f"error ({r['error'][:60]})"
    return None


def _cell_caller(r: Result) -> str:
    if "delta_ns" not in r:
        return _error_cell(r) or "killed"
    mark = f" ({r['unsettled']} settles timed out)" if r.get("unsettled") else ""
    return f"{r['delta_ns'] / 1000:+.1f} us{mark}"


def _cell_throughput(r: Result) -> str:
    if "per_s" not in r:
        return _error_cell(r) or "-"
    cut = f", cut at {r['cap']:.0f} s" if r.get("cut") else ""
    return f"{r['per_s'] / 1000:.1f}k/s ({r['arrived']:,}/{r['logged']:,}{cut})"


def _cell_outage(r: Result) -> str:
    if "peak_growth_kib" not in r:
        return _error_cell(r) or f"killed at {r.get('cap', 0):.0f} s"
    text = f"{r['peak_growth_kib'] / 1024:.1f} MiB ({r['per_call_us']:.1f} us/call"
    if r.get("cut"):
        text += f"; stopped after {r['logged']:,} records in {r['elapsed_s']:.0f} s"
    return text + ")"


def _cell_exit_time(r: Result) -> str:
    if r.get("hangs_while_logging"):
        return f"hangs while logging (killed after {r['killed_after_s']:.0f} s)"
    if r.get("exit_s") is None:
        return _error_cell(r) or f">{r['cap']:.0f} s (killed)"
    return f"{r['exit_s']:.1f} s"


def _cell_live_exit(r: Result) -> str:
    if "lost" not in r:
        return _error_cell(r) or "-"
    dup = f", {r['duplicates']:,} duplicated" if r.get("duplicates") else ""
    return f"{r['lost']:,} lost{dup} (exit {_cell_exit_time(r)})"


def _cell_flap(r: Result) -> str:
    if "lost" not in r:
        return _error_cell(r) or "-"
    killed = ", killed" if r.get("killed") else ""
    return f"{r['lost']:,} lost, {r['duplicates']:,} duplicated{killed}"


def _status_text(status: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v:,}" for k, v in status.items()) or "-"


def _rows(results: dict[str, Result], row: Callable[[str, Result], list[str]]) -> list[str]:
    return ["| " + " | ".join(row(name, r)) + " |" for name, r in results.items()]


def _label(name: str) -> str:
    return subjects.SUBJECTS[name].label


def _detail_caller(results: dict[str, Result], p: Result) -> list[str]:
    head = [
        f"ns per call, median of {p['caller_repeats']} runs of {p['caller_calls']:,} calls "
        f"(timed in chunks of {p['caller_chunk']:,}, settled untimed in between); the "
        "NullHandler reference is timed in the same process, interleaved.",
        "",
        "| subject | ns/call | NullHandler ns/call | delta | settling (untimed) | "
        "delivered of logged |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]

    def row(name: str, r: Result) -> list[str]:
        if "ns" not in r:
            return [_label(name), _cell_caller(r), "", "", "", ""]
        return [
            _label(name),
            f"{r['ns']:,.0f}",
            f"{r['ref_ns']:,.0f}",
            f"{r['delta_ns']:+,.0f}",
            f"{r['settle_s']:.1f} s ({r['unsettled']} timed out)",
            f"{r['delivered']:,} of {r['logged']:,}",
        ]

    return head + _rows(results, row)


def _detail_throughput(results: dict[str, Result], p: Result) -> list[str]:
    head = [
        f"{p['throughput_records']:,} records logged as fast as one thread can, then the "
        "subject's own flush; rate = records counted by the collector / time from the first "
        f"log call until the last of them was counted; at most {p['throughput_cap']:.0f} s.",
        "",
        "| subject | rate | arrived / logged | duplicates | logging loop | until last arrival | "
        "CPU busy: subject / collector | responses |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]

    def row(name: str, r: Result) -> list[str]:
        if "per_s" not in r:
            return [_label(name), _cell_throughput(r), "", "", "", "", "", ""]
        produce = r.get("produce_s")
        loop = f"{produce:.1f} s ({r['logged'] / produce:,.0f}/s)" if produce else "-"
        return [
            _label(name),
            f"{r['per_s']:,.0f}/s",
            f"{r['arrived']:,} / {r['logged']:,}" + (" (cut)" if r["cut"] else ""),
            f"{r['duplicates']:,}",
            loop,
            f"{r['elapsed_s']:.1f} s" if r["elapsed_s"] else "-",
            f"{r.get('busy', 0.0):.0%} / {r['collector_busy']:.0%}",
            _status_text(r["status"]),
        ]

    return head + _rows(results, row)


def _detail_outage(results: dict[str, Result], p: Result) -> list[str]:
    head = [
        f"{p['outage_records']:,} records logged while nothing listens on the collector's port; "
        "peak RSS growth = VmHWM (reset just before logging) minus RSS before. The loop stops "
        f"after {p['outage_cap']:.0f} s and says how far it got.",
        "",
        "| subject | peak RSS growth | ru_maxrss growth | logged | loop | per call | "
        "output lines |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def row(name: str, r: Result) -> list[str]:
        if "peak_growth_kib" not in r:
            return [_label(name), _cell_outage(r), "", "", "", "", ""]
        return [
            _label(name),
            f"{r['peak_growth_kib'] / 1024:.1f} MiB",
            f"{r['ru_maxrss_growth_kib'] / 1024:.1f} MiB",
            f"{r['logged']:,}" + (" (stopped)" if r["cut"] else ""),
            f"{r['elapsed_s']:.1f} s",
            f"{r['per_call_us']:.1f} us",
            f"{r['output_lines']:,}",
        ]

    return head + _rows(results, row)


def _detail_exit(results: dict[str, Result], p: Result, records: int, live: bool) -> list[str]:
    what = "a live collector" if live else "a collector that accepts and never answers"
    head = [
        f"{records:,} records logged, then the script returns (normal interpreter exit) with "
        f"{what}; time from the end of the logging loop until the process ended.",
        "",
        "| subject | exit | logging loop | delivered | lost | duplicates | output lines |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def row(name: str, r: Result) -> list[str]:
        produce = r.get("produce_s")
        return [
            _label(name),
            _cell_exit_time(r),
            f"{produce:.2f} s" if produce is not None else "-",
            f"{r.get('delivered', 0):,}",
            f"{r.get('lost', records):,}",
            f"{r.get('duplicates', 0):,}",
            f"{r.get('output_lines', 0):,}",
        ]

    return head + _rows(results, row)


def _detail_hung_exit(results: dict[str, Result], p: Result) -> list[str]:
    return _detail_exit(results, p, p["exit_records"], live=False)


def _detail_live_exit(results: dict[str, Result], p: Result) -> list[str]:
    return _detail_exit(results, p, p["exit_records"], live=True)


def _detail_flap(results: dict[str, Result], p: Result) -> list[str]:
    window = p["flap_phase"] * p["flap_phases"]
    head = [
        f"{p['flap_records']:,} records paced evenly over {window:.0f} s while the collector "
        f"alternates {p['flap_phase']:.0f} s up / {p['flap_phase']:.0f} s answering 503 "
        f"(all subjects at once, same schedule); then the subject's own flush and close, at "
        f"most {p['flap_deliver']:.0f} s; then counted.",
        "",
        "| subject | delivered | lost | duplicates | flush + close took | responses |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]

    def row(name: str, r: Result) -> list[str]:
        finish = r.get("finish_s")
        return [
            _label(name),
            f"{r.get('delivered', 0):,}",
            f"{r.get('lost', p['flap_records']):,}",
            f"{r.get('duplicates', 0):,}",
            f"{finish:.1f} s" if finish is not None else "killed",
            _status_text(r.get("status", {})),
        ]

    return head + _rows(results, row)


def _capacity_lines(result: Result) -> list[str]:
    throughput = result["results"].get("throughput", {})
    lines = [
        "A raw `http.client` client in its own process posts pre-encoded bodies shaped like "
        "each subject's requests. *Ceiling* = records counted per second of the collector's "
        "own CPU time (what one core would take). Scenario 2's rate and the collector's CPU "
        "share during that run are shown alongside.",
        "",
        "| request shape (like) | records/request | connection | raw client | collector busy | "
        "ceiling | subject in scenario 2 | collector busy then |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for shape, c in result.get("capacity", {}).items():
        if "per_s" not in c:
            lines.append(f"| {shape} | {_error_cell(c) or '-'} | | | | | | |")
            continue
        run = throughput.get(c["subject"], {})
        rate = run.get("per_s")
        then = f"{rate:,.0f}/s | {run['collector_busy']:.0%}" if rate else "- | -"
        lines.append(
            f"| {shape} ({c['subject']}) | {c['per_request']:,} | "
            f"{'new per request' if c['new_connection'] else 'kept alive'} | "
            f"{c['per_s']:,.0f}/s | {c['busy']:.0%} | {c['per_cpu_s']:,.0f}/s | {then} |"
        )
    return lines


def _logdrain_checks(result: Result) -> list[str]:
    """logdrain's figures against the goals in PRIOR_ART.md."""
    res = result["results"]
    p = result["params"]
    checks: list[tuple[str, str, Callable[[Result], tuple[str, bool]]]] = [
        (
            "caller_cost",
            "caller cost <= 1.5 us",
            lambda r: (_cell_caller(r), r["delta_ns"] <= 1500),
        ),
        (
            "throughput",
            ">= 60k rec/s with every record arriving",
            lambda r: (_cell_throughput(r), r["per_s"] >= 60_000 and r["arrived"] == r["logged"]),
        ),
        (
            "outage",
            "outage RSS <= 25 MB",
            lambda r: (_cell_outage(r), r["peak_growth_kib"] * 1024 <= 25e6),
        ),
        (
            "hung_exit",
            "exit <= shutdown_timeout (5 s) + 1 s with a hung collector",
            lambda r: (_cell_exit_time(r), r["exit_s"] is not None and r["exit_s"] <= 6.0),
        ),
        (
            "live_exit",
            "nothing lost at exit with a live collector",
            lambda r: (_cell_live_exit(r), r["lost"] == 0 and r["duplicates"] == 0),
        ),
        (
            "flap",
            f"flapping collector: all {p['flap_records']:,} delivered once",
            lambda r: (_cell_flap(r), r["lost"] == 0 and r["duplicates"] == 0),
        ),
    ]
    lines = []
    for key, goal, judge in checks:
        r = res.get(key, {}).get("logdrain")
        if r is None:
            continue
        try:
            text, met = judge(r)
        except (KeyError, TypeError):
            text, met = _error_cell(r) or "no figure", False
        lines.append(f"- {goal}: {text} ({'met' if met else 'MISSED'})")
    return ["logdrain against its goals (PRIOR_ART.md):", "", *lines] if lines else []


def _output_lines(result: Result, keys: list[str]) -> list[str]:
    """What each subject printed (stdout + stderr): count and last line."""
    lines = []
    for key in keys:
        for name, r in result["results"][key].items():
            if r.get("output_lines"):
                last = next((t for t in reversed(r.get("output_tail", [])) if t.strip()), "")
                lines.append(
                    f"| {VIEWS[key].title} | {_label(name)} | {r['output_lines']:,} | "
                    f"`{last[:140].replace('|', '/')}` |"
                )
    if not lines:
        return []
    head = ["| scenario | subject | lines | last line |", "| --- | --- | ---: | --- |"]
    return ["### What the subjects printed", "", *head, *lines, ""]


@dataclass(frozen=True)
class View:
    title: str
    column: str  # in the main table
    cell: Callable[[Result], str]
    detail: Callable[[dict[str, Result], Result], list[str]]


VIEWS: dict[str, View] = {
    "caller_cost": View(
        "1. Caller cost", "caller cost above NullHandler", _cell_caller, _detail_caller
    ),
    "throughput": View(
        "2. Throughput", "throughput (arrived/logged)", _cell_throughput, _detail_throughput
    ),
    "outage": View("3. Outage memory", "outage: peak RSS growth", _cell_outage, _detail_outage),
    "hung_exit": View(
        "4. Exit, collector hangs", "exit, collector hangs", _cell_exit_time, _detail_hung_exit
    ),
    "live_exit": View(
        "5. Exit, collector live",
        "lost at exit, live collector",
        _cell_live_exit,
        _detail_live_exit,
    ),
    "flap": View("6. Flapping collector", "flapping collector", _cell_flap, _detail_flap),
}


def report(result: Result) -> list[str]:
    p = result["params"]
    keys = [k for k in result["scenarios"] if k in result["results"]]
    lines = [
        "One row per subject, one column per scenario; each cell from a fresh subprocess "
        f"({'QUICK counts' if result['quick'] else 'full counts'}; see README 'Side by side').",
        "",
        "| subject | " + " | ".join(VIEWS[k].column for k in keys) + " |",
        "| --- |" + " --- |" * len(keys),
    ]
    for name in result["subjects"]:
        cells = [VIEWS[k].cell(result["results"][k].get(name, {"error": "-"})) for k in keys]
        lines.append(f"| {_label(name)} | " + " | ".join(cells) + " |")
    lines += ["", *_logdrain_checks(result), ""]
    for key in keys:
        secs = result["seconds"].get(key, 0.0)
        lines += [f"### {VIEWS[key].title} ({secs:.0f} s)", ""]
        lines += [*VIEWS[key].detail(result["results"][key], p), ""]
    lines += ["### Collector capacity", "", *_capacity_lines(result), ""]
    lines += _output_lines(result, keys)
    lines += ["### Subjects", "", "| subject | setup |", "| --- | --- |"]
    lines += [f"| {_label(n)} | `{result['configs'][n]}` |" for n in result["subjects"]]
    versions = ", ".join(f"{k} {v}" for k, v in result["versions"].items())
    lines += ["", f"Versions: {versions}."]
    return lines
