"""Collector presets side by side: end-to-end records/s to each preset's
strict fake, and the caller cost per call, beside the generic presets.

Every preset that exists at run time (``logdrain.presets.names()``; one whose
module is missing, or whose fake in ``logdrain.testing.dialects`` is missing,
is skipped with the reason printed) runs in its own fresh interpreter, once
per round, presets interleaved (the order alternates), medians over ROUNDS.
Its fake runs in a separate process (``preset_server.py``:
``StrictCollector(<dialect>)``, which validates every request as the product
does; the generic ``json``/``ndjson``/``object`` go to the plain
``logdrain.testing.Collector``). The handler is ``DrainHandler(url,
preset=name, **required)`` with only the options each preset needs (Loki
``labels``, Kafka REST ``topic``, a token the fake accepts, Slack
``min_level="INFO"`` so that ``logger.info`` records are shipped); the URL
is the fake's bare ``http://127.0.0.1:<port>`` where the preset has a path
of its own (the preset completes it, as for a real collector), else its
full URL (Slack's webhook, the generic presets' ``/ingest``).

Per preset:

``records/s``  RECORDS records ``logger.info("msg %d", i, extra={"user": "u",
               "n": i})`` from one thread, the preset's defaults except
               ``overflow="block"`` (so a fast producer waits instead of
               dropping and every record must arrive); rate = delivered /
               time from the first call until ``flush()`` returned. The
               fake's count of log records must equal RECORDS and the
               drain's ``delivered`` (reported when not). The fake's CPU
               share shows whether it was the bottleneck.
               One-record-per-request presets (GELF, ``object``) log
               RECORDS_SINGLE records, rate-limited ones (Slack: one message
               a second, ``batch_size`` records folded into one) RECORDS_PACED.
``caller``     ns per call above a NullHandler logger timed in the same
               process, the preset's plain defaults (``caller_cost.py``'s
               method): ``bursts`` of CHUNK calls with the drain flushed
               (untimed) in between (the caller thread's own work: presets
               map records on the sender threads), and ``sustained``: CALLS
               calls in one run at default settings (drop_oldest: the caller
               never waits), where the caller pays the senders' share of the
               GIL, so a costlier mapping shows. Slack's defaults keep
               ``logger.info`` out (``min_level`` WARNING): its caller row is
               that filtered call.

    python benchmarks/presets.py [--rounds 3] [--records 50000] [--only loki,json]
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import re
import subprocess
import sys
import time
from typing import Any

import _util

RECORDS = 50_000
RECORDS_SINGLE = 1_000  # one record per request (GELF, object)
RECORDS_PACED = 100  # Slack: about 1 request/s
CALLS = 10_000  # caller cost: calls per timed run
CALLS_SINGLE = 1_000  # ... for one-record-per-request presets (one burst)
CHUNK = 2_000  # calls per burst (at most CALLS)
REPEATS = 2  # timed runs per process (median)
ROUNDS = 3
GENERIC = ("json", "ndjson", "object")
#: preset -> module of logdrain.testing.dialects holding its fake.
DIALECT_MODULES = {
    "loki": "_loki",
    "elasticsearch": "_elastic",
    "opensearch": "_elastic",
    "splunk_hec": "_splunk",
    "datadog": "_datadog",
    "seq": "_seq",
    "otlp": "_otlp",
    "gelf": "_gelf",
    "slack": "_slack",
    "kafka_rest": "_kafka_rest",
}
#: Keyword arguments of a fake: the collector's own rules that bound the rate.
DIALECT_KWARGS: dict[str, dict[str, Any]] = {"slack": {"min_interval": 1.0}}


class FakeProcess(_util.StdioChild):
    """``preset_server.py``: a strict fake (or the plain collector) in its own process."""

    def __init__(self, spec: str, kwargs: dict[str, Any], max_life: float = 300.0) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, str(_util.BENCH_DIR / "preset_server.py"), spec,
             json.dumps(kwargs), str(max_life)],
            env=_util.bench_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.hello = self._read()
        self.url: str = self.hello["url"]

    def count(self) -> int:
        return int(self._ask("count")["count"])

    def stats(self) -> dict[str, Any]:
        return self._ask("stats")


# -- which presets and fakes exist --


def discover() -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The presets that can run now (name, fake spec, fake kwargs) and why the others cannot."""
    from logdrain import presets
    from logdrain.testing.dialects import Dialect

    found: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    for name in presets.names():
        try:
            presets.get(name)
        except Exception as exc:
            skipped[name] = f"preset module missing or broken: {type(exc).__name__}: {exc}"
            continue
        if name in GENERIC:
            found.append({"name": name, "spec": "plain", "kwargs": {}})
            continue
        module_name = DIALECT_MODULES.get(name)
        if module_name is None:
            skipped[name] = "no fake known for it (add it to DIALECT_MODULES)"
            continue
        try:
            module = importlib.import_module(f"logdrain.testing.dialects.{module_name}")
        except Exception as exc:
            skipped[name] = f"fake logdrain/testing/dialects/{module_name}.py missing: {exc}"
            continue
        classes = [
            obj
            for obj in vars(module).values()
            if isinstance(obj, type)
            and issubclass(obj, Dialect)
            and obj is not Dialect
            and obj.__module__ == module.__name__
        ]
        if not classes:
            skipped[name] = f"no Dialect class in {module.__name__}"
            continue
        chosen = next((c for c in classes if getattr(c, "name", "") == name), classes[0])
        found.append(
            {
                "name": name,
                "spec": f"{module_name}:{chosen.__name__}",
                "kwargs": DIALECT_KWARGS.get(name, {}),
            }
        )
    return found, skipped


def handler_options(name: str, preset: Any, hello: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The URL and the options this preset needs to reach its fake."""
    options: dict[str, Any] = {}
    url = hello["base_url"] if preset.path else hello["url"]
    if hello.get("credential"):
        options["token"] = hello["credential"]
    if name == "loki":
        options["labels"] = {"app": "bench"}
    if name == "kafka_rest":
        match = re.search(r"/topics/([^/]+)$", hello["url"])
        options["topic"] = match.group(1) if match else "logs"
    return url, options


def _paced(preset: Any) -> bool:
    return bool(preset.min_interval)


# -- the child side --


def _handler(url: str, name: str, options: dict[str, Any]) -> Any:
    import logdrain

    return logdrain.DrainHandler(url, preset=name, **options)


def _throughput(fake: FakeProcess, url: str, name: str, options: dict[str, Any], n: int
                ) -> dict[str, Any]:  # fmt: skip
    import caller_cost

    handler = _handler(url, name, {**options, "overflow": "block", "block_timeout": 30.0})
    chunk = caller_cost._stdlib_chunk(caller_cost._bench_logger(handler))
    before = fake.stats()
    threads0 = _util.thread_cpu_seconds()
    t0, cpu0 = time.monotonic(), time.process_time()
    chunk(n)
    t_logged = time.monotonic()
    complete = handler.drain.flush(max(30.0, n / 5))
    elapsed = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    threads = _util.cpu_by_role(threads0, _util.thread_cpu_seconds())
    stats = handler.drain.stats()
    after = fake.stats()
    handler.close()
    units = after["units"] - before["units"]
    requests = after["requests"] - before["requests"]
    return {
        "logged": n,
        "complete": complete,
        "produce_s": t_logged - t0,
        "elapsed_s": elapsed,
        "per_s": stats.delivered / elapsed,
        "delivered": stats.delivered,
        "arrived": units,
        "stored": after["count"] - before["count"],
        "all_arrived": units == n == stats.delivered,
        "requests": requests,
        "non_2xx": after["non_2xx"] - before["non_2xx"],
        "fake_cpu_share": (after["cpu_s"] - before["cpu_s"]) / elapsed,
        "cpu_us_per_record": cpu / n * 1e6,
        "sender_cpu_us_per_record": threads.get("sender", 0.0) / n * 1e6,
        "stats": stats.as_dict(),
    }


def _caller(fake: FakeProcess, url: str, name: str, options: dict[str, Any], calls: int, *,
            paced: bool) -> dict[str, Any]:  # fmt: skip
    import caller_cost

    chunk = min(CHUNK, calls)
    caller_cost.CALLS, caller_cost.CHUNK = calls, chunk
    if paced:  # the preset's defaults: min_level keeps logger.info out
        options = {k: v for k, v in options.items() if k != "min_level"}
    handlers = [_handler(url, name, options) for _ in range(2)]
    rows = []
    for sustained, h in zip((False, True), handlers, strict=True):
        row = caller_cost._stdlib_row(h, functools.partial(caller_cost._flush, h.drain))
        row.chunk_calls = calls if sustained else chunk
        rows.append(row)
    ref = caller_cost._make_row("null", url)
    for subject in (*rows, ref):  # warm-up, untimed
        subject.chunk(chunk // 5)
        subject.settle()
    times: dict[str, list[float]] = {"null": [], "burst": [], "sustained": []}
    for _ in range(REPEATS):
        times["null"].append(caller_cost._time_run(ref))
        times["burst"].append(caller_cost._time_run(rows[0]))
        times["sustained"].append(caller_cost._time_run(rows[1]))
    out: dict[str, Any] = {k: _util.median(v) for k, v in times.items()}
    out["all"] = {k: [round(x) for x in v] for k, v in times.items()}
    for key, h in zip(("burst", "sustained"), handlers, strict=True):
        h.drain.flush(30.0)
        st = h.drain.stats()
        out[f"{key}_delta"] = out[key] - out["null"]
        out[f"{key}_stats"] = {
            "submitted": st.submitted,
            "delivered": st.delivered,
            "dropped_overflow": st.dropped_overflow,
            "lost": st.lost,
        }
        out[f"{key}_level"] = h.level
        h.close()
    return out


def _measure(name: str, spec: str, kwargs: dict[str, Any], records: int, calls: int
             ) -> dict[str, Any]:  # fmt: skip
    from logdrain.presets import get

    preset = get(name)
    paced = _paced(preset)
    n = RECORDS_PACED if paced else RECORDS_SINGLE if preset.one_per_request else records
    calls = CALLS_SINGLE if preset.one_per_request else calls
    with FakeProcess(spec, kwargs) as fake:
        url, options = handler_options(name, preset, fake.hello)
        tp_options = dict(options)
        if "min_level" in preset.options:
            tp_options["min_level"] = "INFO"
        tp = _throughput(fake, url, name, tp_options, n)
        cc = _caller(fake, url, name, options, calls, paced=paced)
        final = fake.stats()
    shipped = tp["delivered"] + cc["burst_stats"]["delivered"] + cc["sustained_stats"]["delivered"]
    shown = {k: ("<token>" if k == "token" else v) for k, v in tp_options.items()}
    return {
        "name": name,
        "fake": fake.hello["dialect"],
        "spec": spec,
        "url": "full" if url == fake.hello["url"] else "bare (preset adds its path)",
        "options": shown,
        "defaults": {k: v for k, v in preset.defaults.items()},
        "one_per_request": preset.one_per_request,
        "min_interval": preset.min_interval,
        "throughput": tp,
        "caller": cc,
        "fake_final": final,
        "fake_holds_all_delivered": final["units"] == shipped,
    }


# -- the parent side --


def run(
    rounds: int = ROUNDS, records: int = RECORDS, calls: int = CALLS, only: list[str] | None = None
) -> dict[str, Any]:
    found, skipped = discover()
    if only:
        found = [p for p in found if p["name"] in only]
    for name, why in skipped.items():
        print(f"skipping preset {name}: {why}", file=sys.stderr, flush=True)
    results: dict[str, list[dict[str, Any]]] = {p["name"]: [] for p in found}
    errors: dict[str, list[str]] = {}
    for r in range(rounds):
        for p in found if r % 2 == 0 else list(reversed(found)):
            t0 = time.monotonic()
            try:
                res = _util.measure("presets.py", p["name"], p["spec"], json.dumps(p["kwargs"]),
                                    str(records), str(calls), timeout=300)  # fmt: skip
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                errors.setdefault(p["name"], []).append(str(exc)[-1500:])
                print(f"round {r + 1} {p['name']}: FAILED {str(exc)[-600:]}", file=sys.stderr)
                continue
            results[p["name"]].append(res)
            tp, cc = res["throughput"], res["caller"]
            print(
                f"round {r + 1}/{rounds} {p['name']:13} {tp['per_s']:>9,.0f}/s "
                f"{tp['arrived']:,}/{tp['logged']:,} arrived, fake CPU {tp['fake_cpu_share']:.0%}; "
                f"caller +{cc['burst_delta']:,.0f} ns bursts, +{cc['sustained_delta']:,.0f} ns "
                f"sustained ({time.monotonic() - t0:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    return {
        "records": records,
        "records_single": RECORDS_SINGLE,
        "records_paced": RECORDS_PACED,
        "calls": calls,
        "calls_single": CALLS_SINGLE,
        "chunk": CHUNK,
        "repeats": REPEATS,
        "rounds": rounds,
        "results": results,
        "skipped": skipped,
        "errors": errors,
    }


def summarize(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    med = _util.median
    out: dict[str, dict[str, Any]] = {}
    for name, runs in result["results"].items():
        if not runs:
            continue
        tps = [r["throughput"] for r in runs]
        ccs = [r["caller"] for r in runs]
        out[name] = {
            "fake": runs[0]["fake"],
            "records": tps[0]["logged"],
            "per_s": med(t["per_s"] for t in tps),
            "per_s_all": [round(t["per_s"]) for t in tps],
            "all_arrived": all(t["all_arrived"] for t in tps),
            "arrived_min": min(t["arrived"] for t in tps),
            "requests": med(t["requests"] for t in tps),
            # per accepted request (Slack's strict fake answers 429 to one sent too soon)
            "records_per_request": med(
                t["arrived"] / max(1, t["requests"] - t["non_2xx"]) for t in tps
            ),
            "non_2xx": max(t["non_2xx"] for t in tps),
            "fake_cpu_share": med(t["fake_cpu_share"] for t in tps),
            # the fake's own CPU per record, and the rate one core of it would take at most
            # (a round that delivered nothing is left out, not divided by)
            "fake_cpu_us": med(
                t["fake_cpu_share"] / t["per_s"] * 1e6 for t in tps if t["per_s"] > 0
            )
            if any(t["per_s"] > 0 for t in tps)
            else 0.0,
            "cpu_us": med(t["cpu_us_per_record"] for t in tps),
            "sender_cpu_us": med(t["sender_cpu_us_per_record"] for t in tps),
            "burst_delta_ns": med(c["burst_delta"] for c in ccs),
            "sustained_delta_ns": med(c["sustained_delta"] for c in ccs),
            "null_ns": med(c["null"] for c in ccs),
            "sustained_dropped": med(c["sustained_stats"]["dropped_overflow"] for c in ccs),
            "caller_level": ccs[0]["burst_level"],
            "holds_all_delivered": all(r["fake_holds_all_delivered"] for r in runs),
            "url": runs[0]["url"],
            "options": runs[0]["options"],
            "min_interval": runs[0]["min_interval"],
            "one_per_request": runs[0]["one_per_request"],
        }
    return out


def report(result: dict[str, Any]) -> list[str]:
    sums = summarize(result)
    base = sums.get("json", {}).get("per_s")
    lines = [
        f"Median of {result['rounds']} rounds, presets interleaved (order alternating), each "
        "run in a fresh interpreter with its fake in its own process. records/s: "
        f"{result['records']:,} records ({result['records_single']:,} for one-per-request "
        f"presets, {result['records_paced']:,} for Slack) from one thread, preset defaults + "
        'overflow="block", until flush() returned. Caller cost: ns per '
        "`logger.info` above a NullHandler in the same process, preset defaults; bursts of "
        f"{result['chunk']:,} calls flushed between them, or {result['calls']:,} calls "
        "sustained in one run (drop_oldest); one-per-request presets: one burst of "
        f"{result['calls_single']:,}, and {result['calls_single']:,} sustained.",
        "",
        "| preset | fake | records/s | vs json | all arrived | requests (records per 2xx) "
        "| CPU/record (senders) | fake: CPU share, per record (ceiling) | caller, bursts "
        "| caller, sustained (dropped) | NullHandler |",
        "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, s in sums.items():
        ratio = s["per_s"] / base if base else 0.0
        rel = "-" if not base else f"x{ratio:.2f}" if ratio >= 0.01 else f"x{ratio:.4f}"
        arrived = "yes" if s["all_arrived"] else f"**no: {s['arrived_min']:,} of {s['records']:,}**"
        if s["non_2xx"]:
            arrived += f", {s['non_2xx']} non-2xx"
        note = " (info filtered)" if s["caller_level"] > 20 else ""
        # one core of the fake would take 1 / (its CPU per record) at most
        bound = ": fake-bound" if 1e6 / s["fake_cpu_us"] < 1.5 * s["per_s"] else ""
        lines.append(
            f"| {name} | {s['fake']} | {s['per_s']:,.0f} | {rel} | {arrived} | "
            f"{s['requests']:,.0f} ({s['records_per_request']:,.1f}) | "
            f"{s['cpu_us']:,.1f} us ({s['sender_cpu_us']:,.1f}) | {s['fake_cpu_share']:.0%}, "
            f"{s['fake_cpu_us']:,.0f} us ({1e6 / s['fake_cpu_us']:,.0f}/s{bound}) | "
            f"{s['burst_delta_ns']:+,.0f} ns{note} | "
            f"{s['sustained_delta_ns']:+,.0f} ns ({s['sustained_dropped']:,.0f}){note} | "
            f"{s['null_ns']:,.0f} ns |"
        )
    lines += ["", "Per round (records/s):", ""]
    for name, s in sums.items():
        bound = ""
        if s["min_interval"]:
            bound = (
                f" (bound: 1 request per {s['min_interval']:g} s x {s['records_per_request']:.0f} "
                f"records per message = {s['records_per_request'] / s['min_interval']:.0f}/s)"
            )
        elif s["one_per_request"]:
            bound = " (bound: one record per request, one round trip each per sender)"
        lines.append(
            f"- {name}: {', '.join(f'{x:,}' for x in s['per_s_all'])}{bound}; "
            f"URL {s['url']}; options {s['options'] or '{}'}"
        )
    bad = [n for n, s in sums.items() if not s["holds_all_delivered"]]
    if bad:
        lines.append(f"\nFake's count differs from the drains' delivered: {', '.join(bad)}")
    for name, why in result["skipped"].items():
        lines.append(f"- skipped {name}: {why}")
    for name, errs in result["errors"].items():
        lines.append(f"- {name} failed {len(errs)} time(s): {errs[-1].splitlines()[0]}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", nargs=5, metavar="ARG", help="internal")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--records", type=int, default=RECORDS)
    parser.add_argument("--calls", type=int, default=CALLS, help="multiple of the burst size")
    parser.add_argument("--only", help="comma-separated preset names")
    parser.add_argument("--json", help="write the raw figures here")
    parser.add_argument("--from-json", metavar="PATH", help="report the raw figures of a run")
    args = parser.parse_args()
    if args.measure:
        name, spec, kwargs, records, calls = args.measure
        _util.emit(_measure(name, spec, json.loads(kwargs), int(records), int(calls)))
        return
    if args.from_json:
        with open(args.from_json, encoding="utf-8") as fh:
            result = json.load(fh)
        print("\n".join(report(result)))
        print("\n```json\n" + json.dumps(summarize(result), sort_keys=True) + "\n```")
        return
    if args.calls % CHUNK:
        parser.error(f"--calls must be a multiple of {CHUNK:,}")
    only = [s.strip() for s in args.only.split(",")] if args.only else None
    result = run(args.rounds, args.records, args.calls, only)
    print("\n".join(report(result)))
    print("\n```json\n" + json.dumps(summarize(result), sort_keys=True) + "\n```")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
