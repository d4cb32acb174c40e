"""JSON encoders side by side: a default install without orjson (the stdlib
``json`` encoder), the same code with orjson installed, and a msgspec
micro-benchmark.

Each variant runs in its own interpreter (its own virtualenv), every
measurement in a fresh subprocess, variants interleaved round by round
(the order alternates), medians over the rounds:

``block``      end to end: RECORDS records through ``DrainHandler(url,
               overflow="block")`` (``throughput.py``'s loop and collector
               process): every record arrives, so the rate is the sender's
               capacity.
``default``    the same at default settings (drop_oldest): how many arrive.
``burst``      caller cost: ``caller_cost.py``'s row (d), bursts of CHUNK
               calls, the drain flushed (untimed) between bursts, minus a
               NullHandler timed in the same process.
``sustained``  caller cost: row (d''), all CALLS calls in one run with
               ``overflow="block"``: the caller's thread pays the senders'
               share of the GIL, so encoding shows here.
``micro``      (the msgspec virtualenv, which has orjson too) the raw cost of
               encoding one batch of BATCH logdrain-like documents
               (timestamp, level, logger, message and 3 extras) with
               ``json`` (logdrain's settings), ``orjson.dumps`` and
               ``msgspec.json.encode``, plus logdrain's own chunked paths.
``prepare``    (the orjson interpreter) per preset, the sender's work for one
               batch before HTTP (``Worker.prepare``'s path: documents, the
               preset's mapping, encoding) with json_encoder "stdlib" against
               "orjson": which presets the fast encoder helps at all.

Setting up the interpreters (see PRESETS_RESULTS.md)::

    /root/.pyenv/versions/3.11.7/bin/python -m venv /tmp/bench-noorjson
    /tmp/bench-noorjson/bin/pip install requests tenacity truststore structlog
    /root/.pyenv/versions/3.11.7/bin/python -m venv /tmp/bench-msgspec
    /tmp/bench-msgspec/bin/pip install requests tenacity truststore structlog msgspec orjson

    python benchmarks/encoders.py [--rounds 3] [--records 100000] [--json out.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import _util

RECORDS = 100_000  # end-to-end records per run (a multiple of 10,000: throughput.py's loop)
CALLS = 20_000  # caller-cost calls per timed run
CHUNK = 2_000  # calls per burst
REPEATS = 3  # timed runs per caller-cost process (median)
ROUNDS = 3
BATCH = 2_000  # documents per batch in the micro-benchmark

NOX_PYTHON = "/work/main/.nox/tests-3-11/bin/python"
NOORJSON_PYTHON = "/tmp/bench-noorjson/bin/python"  # noqa: S108 - a venv made for this
MSGSPEC_PYTHON = "/tmp/bench-msgspec/bin/python"  # noqa: S108 - a venv made for this

KINDS = ("block", "default", "burst", "sustained")


def child(python: str, script: str, *args: str, timeout: float = 240.0) -> dict[str, Any]:
    """``python benchmarks/<script> --measure args...`` (like ``_util.measure``,
    with a chosen interpreter); the JSON object on its last stdout line."""
    cmd = [python, str(_util.BENCH_DIR / script), "--measure", *args]
    proc = subprocess.run(
        cmd, env=_util.bench_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"{python} {' '.join(cmd[1:])} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout[-2000:]}\nstderr:\n{proc.stderr[-4000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1])
    result["stderr_lines"] = len(proc.stderr.splitlines())
    return result


def encoder_facts() -> dict[str, Any]:
    """Which JSON encoder logdrain uses in this interpreter."""
    import importlib.util

    from logdrain.config import resolve
    from logdrain.encode import Encoder

    encoder = Encoder(resolve({"url": "http://127.0.0.1:9/unused"}))
    return {
        "python": sys.executable,
        "version": sys.version.split()[0],
        "orjson_importable": importlib.util.find_spec("orjson") is not None,
        "json_encoder": encoder.json_encoder,
    }


# -- the child side --


def _measure_drain(kind: str, records: int) -> dict[str, Any]:
    import caller_cost
    import throughput

    if kind in ("block", "default"):
        throughput.RECORDS = records
        return throughput._measure_drain(kind)
    caller_cost.CALLS, caller_cost.CHUNK, caller_cost.REPEATS = CALLS, CHUNK, REPEATS
    row = "drain_handler" if kind == "burst" else "drain_handler_sustained"
    return caller_cost._measure(row)


def _documents(n: int) -> list[dict[str, Any]]:
    """n logdrain documents: timestamp, level, logger, message and 3 extras,
    built by logdrain's own encoder from real LogRecords."""
    from logdrain.config import resolve
    from logdrain.encode import Encoder
    from logdrain.records import snapshot

    encoder = Encoder(resolve({"url": "http://127.0.0.1:9/unused", "json_encoder": "stdlib"}))
    logger = logging.getLogger("app.orders")
    docs = []
    for i in range(n):
        record = logger.makeRecord(
            logger.name, logging.INFO, __file__, 1, "order %d shipped to %s", (i, "Zürich"), None,
            extra={"user": f"user-{i % 97}", "n": i, "elapsed_ms": 3.25 + (i % 13) / 8},
        )  # fmt: skip
        docs.append(encoder.document(snapshot(record)))
    return docs


def _measure_micro(rounds: int) -> dict[str, Any]:
    import msgspec
    import orjson

    from logdrain.config import resolve
    from logdrain.encode import Encoder
    from logdrain.jsonsafe import to_jsonable

    docs = _documents(BATCH)
    stdlib = json.JSONEncoder(
        default=to_jsonable, allow_nan=False, ensure_ascii=False, separators=(",", ":")
    ).encode
    option = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
    ms_encoder = msgspec.json.Encoder()
    ld_stdlib = Encoder(resolve({"url": "http://127.0.0.1:9/x", "json_encoder": "stdlib"}))
    ld_orjson = Encoder(resolve({"url": "http://127.0.0.1:9/x", "json_encoder": "orjson"}))
    subjects: dict[str, Callable[[], Any]] = {
        "json.dumps (logdrain's settings), one call per batch": lambda: stdlib(docs).encode(),
        "json.dumps, logdrain's path (Encoder.chunks: 100 records a call)": lambda: (
            ld_stdlib.chunks(docs)
        ),
        "orjson.dumps, one call per batch": lambda: orjson.dumps(
            docs, default=to_jsonable, option=option
        ),
        "orjson.dumps, logdrain's path (Encoder.chunks, NaN check)": lambda: ld_orjson.chunks(docs),
        "msgspec.json.encode, one call per batch": lambda: msgspec.json.encode(docs),
        "msgspec.json.Encoder().encode (encoder reused)": lambda: ms_encoder.encode(docs),
    }
    reference = stdlib(docs).encode()
    same = {
        "orjson": orjson.dumps(docs, default=to_jsonable, option=option) == reference,
        "msgspec": msgspec.json.encode(docs) == reference,
    }
    number = 20
    times: dict[str, list[float]] = {k: [] for k in subjects}
    for fn in subjects.values():  # warm-up
        fn()
    for r in range(rounds * 3):
        names = list(subjects) if r % 2 == 0 else list(reversed(subjects))
        for name in names:
            fn = subjects[name]
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            times[name].append((time.perf_counter() - t0) / number)
    return {
        "batch": BATCH,
        "bytes": len(reference),
        "identical_to_json": same,
        "versions": {"orjson": orjson.__version__, "msgspec": msgspec.__version__},
        "us_per_batch": {k: _util.median(v) * 1e6 for k, v in times.items()},
        "us_all": {k: [round(x * 1e6) for x in v] for k, v in times.items()},
        **encoder_facts(),
    }


def _measure_prepare(rounds: int) -> dict[str, Any]:
    """Per preset, the sender's work for one batch of BATCH records before
    HTTP (documents, the preset's mapping, encoding), as ``Worker.prepare``
    does it, with json_encoder "stdlib" against "orjson": this thread's CPU
    time per record, median of the rounds, interleaved."""
    from logdrain import presets
    from logdrain.config import resolve
    from logdrain.encode import Encoder
    from logdrain.mapping import Mapper
    from logdrain.records import snapshot

    logger = logging.getLogger("bench.prepare")
    snaps = [
        snapshot(logger.makeRecord(logger.name, logging.INFO, __file__, 1, "msg %d", (i,), None,
                                   extra={"user": "u", "n": i}))
        for i in range(BATCH)
    ]  # fmt: skip
    needs = {"labels": {"app": "bench"}, "topic": "logs", "min_level": "INFO"}
    runs: dict[tuple[str, str], Callable[[], bool]] = {}
    skipped: dict[str, str] = {}
    for name in presets.names():
        try:
            preset = presets.get(name)
            for encoder_name in ("stdlib", "orjson"):
                options = {k: v for k, v in needs.items() if k in preset.options}
                settings = resolve({"url": "http://127.0.0.1:9/x", "preset": name, "token": "t",
                                    "json_encoder": encoder_name, **options})  # fmt: skip
                encoder = Encoder(settings)
                mapper = Mapper(settings, encoder) if preset.record is not None else None
                runs[(name, encoder_name)] = functools.partial(_prepare, encoder, mapper, snaps)
        except Exception as exc:
            skipped[name] = f"{type(exc).__name__}: {exc}"
    times: dict[tuple[str, str], list[float]] = {k: [] for k in runs}
    chunked: dict[str, bool] = {}
    for fn in runs.values():  # warm-up
        fn()
    for r in range(rounds * 3):
        for key in runs if r % 2 == 0 else reversed(list(runs)):
            t0 = time.thread_time()
            chunked[key[0]] = runs[key]()
            times[key].append(time.thread_time() - t0)
    per: dict[str, dict[str, float]] = {}
    for (name, encoder_name), values in times.items():
        per.setdefault(name, {})[encoder_name] = _util.median(values) / BATCH * 1e6
    return {"batch": BATCH, "us_per_record": per, "chunked": chunked, "skipped": skipped}


def _prepare(encoder: Any, mapper: Any, items: list[Any]) -> bool:
    """``Worker.prepare``'s encoding: the chunked fast path, else one record
    at a time; True when the fast path took the batch."""
    fast = encoder.encode_batch(items)
    if fast is None and mapper is not None:
        fast = mapper.chunks(items)
    if fast is not None:
        return True
    if mapper is None:
        for item in items:
            encoder.encode(item)
    else:
        for i, item in enumerate(items):
            mapper.part(item, str(i))
    return False


# -- the parent side --


def run(
    rounds: int = ROUNDS,
    records: int = RECORDS,
    pythons: dict[str, str] | None = None,
    msgspec_python: str = MSGSPEC_PYTHON,
) -> dict[str, Any]:
    pythons = pythons or {"stdlib": NOORJSON_PYTHON, "orjson": NOX_PYTHON}
    variants: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for name, python in pythons.items():
        if not os.access(python, os.X_OK):
            skipped[name] = f"{python} not found (see this module's docstring)"
            continue
        facts = child(python, "encoders.py", "facts")
        if (name == "stdlib") == facts["orjson_importable"]:
            skipped[name] = f"{python}: orjson importable = {facts['orjson_importable']}"
            continue
        variants[name] = {"python": python, "facts": facts, **{k: [] for k in KINDS}}
    for name, why in skipped.items():
        print(f"skipping variant {name}: {why}", file=sys.stderr)
    order = list(variants)
    for r in range(rounds):
        for kind in KINDS:
            for name in order if r % 2 == 0 else reversed(order):
                v = variants[name]
                t0 = time.monotonic()
                result = child(v["python"], "encoders.py", kind, str(records))
                v[kind].append(result)
                print(
                    f"round {r + 1}/{rounds} {name:6} {kind:9} {_short(kind, result)} "
                    f"({time.monotonic() - t0:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    micro: dict[str, Any] | None = None
    if os.access(msgspec_python, os.X_OK):
        try:
            micro = child(msgspec_python, "encoders.py", "micro", str(rounds))
        except RuntimeError as exc:
            skipped["micro"] = str(exc).splitlines()[0]
    else:
        skipped["micro"] = f"{msgspec_python} not found"
    try:
        prepare: dict[str, Any] | None = child(
            pythons.get("orjson", NOX_PYTHON), "encoders.py", "prepare", str(rounds)
        )
    except RuntimeError as exc:
        prepare = None
        skipped["prepare"] = str(exc).splitlines()[0]
    return {
        "records": records,
        "prepare": prepare,
        "calls": CALLS,
        "chunk": CHUNK,
        "repeats": REPEATS,
        "rounds": rounds,
        "variants": variants,
        "micro": micro,
        "skipped": skipped,
    }


def _short(kind: str, r: dict[str, Any]) -> str:
    if kind in ("block", "default"):
        return f"{r['delivered_per_s']:,.0f}/s, {r['arrived']:,}/{r['logged']:,} arrived"
    return f"{r['delta_ns']:+,.0f} ns/call (null {r['ref_ns']:,.0f})"


def summarize(v: dict[str, Any]) -> dict[str, float]:
    """Medians over the rounds of one variant's figures."""
    med = _util.median
    return {
        "block_per_s": med(r["delivered_per_s"] for r in v["block"]),
        "block_arrived": min(r["arrived"] for r in v["block"]),
        "block_logged": max(r["logged"] for r in v["block"]),
        "block_cpu_us": med(r["cpu_us_per_record"] for r in v["block"]),
        "block_sender_cpu_us": med(
            r["thread_cpu_us_per_record"].get("sender", 0.0) for r in v["block"]
        ),
        "default_per_s": med(r["delivered_per_s"] for r in v["default"]),
        "default_arrived": med(r["arrived"] for r in v["default"]),
        "default_dropped": med(r["stats"]["dropped_overflow"] for r in v["default"]),
        "burst_delta_ns": med(r["delta_ns"] for r in v["burst"]),
        "burst_ns": med(r["ns"] for r in v["burst"]),
        "sustained_delta_ns": med(r["delta_ns"] for r in v["sustained"]),
        "sustained_ns": med(r["ns"] for r in v["sustained"]),
        "null_ns": med(r["ref_ns"] for k in ("burst", "sustained") for r in v[k]),
    }


def report(result: dict[str, Any]) -> list[str]:
    n = result["records"]
    lines = [
        f"Median of {result['rounds']} rounds, variants interleaved (order alternating), each "
        f"figure from a fresh interpreter of the variant's virtualenv. End to end: {n:,} records "
        "from one thread to the benchmark collector (its own process). Caller cost: "
        f"{result['calls']:,} calls x {result['repeats']} runs per process (median), minus a "
        "NullHandler timed in the same process; bursts of "
        f"{result['chunk']:,} calls with the drain flushed (untimed) between them; sustained: "
        f'the {result["calls"]:,} calls in one run with overflow="block".',
        "",
        '| variant | encoder | overflow="block": records/s (arrived) | CPU/record (senders) '
        "| default settings: records/s, arrived of "
        f"{n:,} | caller cost, bursts of {result['chunk']:,} | caller cost, sustained "
        "| NullHandler |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    labels = {"stdlib": "default install, no orjson", "orjson": "with orjson"}
    sums = {}
    for name, v in result["variants"].items():
        s = sums[name] = summarize(v)
        lines.append(
            f"| {labels.get(name, name)} | {v['facts']['json_encoder']} | "
            f"{s['block_per_s']:,.0f} ({s['block_arrived']:,} of {s['block_logged']:,}) | "
            f"{s['block_cpu_us']:.1f} us ({s['block_sender_cpu_us']:.1f}) | "
            f"{s['default_per_s']:,.0f}, {s['default_arrived']:,.0f} "
            f"(dropped {s['default_dropped']:,.0f}) | "
            f"{s['burst_delta_ns']:+,.0f} ns | {s['sustained_delta_ns']:+,.0f} ns | "
            f"{s['null_ns']:,.0f} ns |"
        )
    if "stdlib" in sums and "orjson" in sums:
        a, b = sums["stdlib"], sums["orjson"]
        lines += [
            "",
            f"orjson / stdlib: end to end x{b['block_per_s'] / a['block_per_s']:.2f}; "
            f"sustained caller cost {a['sustained_delta_ns']:+,.0f} -> "
            f"{b['sustained_delta_ns']:+,.0f} ns; bursts {a['burst_delta_ns']:+,.0f} -> "
            f"{b['burst_delta_ns']:+,.0f} ns.",
        ]
    lines += ["", "Per round (records/s, block):", ""]
    for name, v in result["variants"].items():
        per = ", ".join(f"{r['delivered_per_s']:,.0f}" for r in v["block"])
        sus = ", ".join(f"{r['delta_ns']:+,.0f}" for r in v["sustained"])
        bur = ", ".join(f"{r['delta_ns']:+,.0f}" for r in v["burst"])
        lines.append(f"- {name}: block {per}; sustained {sus} ns; bursts {bur} ns")
    m = result.get("micro")
    if m:
        lines += [
            "",
            f"Micro-benchmark ({m['python']}, orjson {m['versions']['orjson']}, msgspec "
            f"{m['versions']['msgspec']}): one batch of {m['batch']:,} documents "
            f"({m['bytes']:,} bytes of JSON; timestamp, level, logger, message, 3 extras), "
            "median of the rounds, interleaved. Output identical to json's: "
            + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in m["identical_to_json"].items())
            + ".",
            "",
            "| encoder | us per batch | ns per record | vs json.dumps |",
            "| --- | ---: | ---: | ---: |",
        ]
        base = next(iter(m["us_per_batch"].values()))
        for name, us in m["us_per_batch"].items():
            lines.append(
                f"| {name} | {us:,.0f} | {us * 1000 / m['batch']:,.0f} | x{base / us:.1f} |"
            )
    p = result.get("prepare")
    if p:
        lines += [
            "",
            f"Sender work per record before HTTP, by preset (documents, the preset's mapping, "
            f"encoding: Worker.prepare's path, one batch of {p['batch']:,} benchmark records), "
            "json_encoder stdlib against orjson, same process (with orjson installed), this "
            "thread's CPU time, median of the rounds. Only the chunked JSON-array path uses "
            "orjson; every other preset encodes one record at a time with the stdlib.",
            "",
            "| preset | path | stdlib | orjson | orjson saves |",
            "| --- | --- | ---: | ---: | ---: |",
        ]
        for name, t in p["us_per_record"].items():
            path = "chunked (JSON array)" if p["chunked"].get(name) else "per record"
            lines.append(
                f"| {name} | {path} | {t['stdlib']:.1f} us | {t['orjson']:.1f} us | "
                f"{1 - t['orjson'] / t['stdlib']:.0%} |"
            )
        for name, why in p.get("skipped", {}).items():
            lines.append(f"\n(prepare: skipped {name}: {why})")
    for name, why in result.get("skipped", {}).items():
        lines.append(f"\nSkipped {name}: {why}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", nargs="+", metavar="ARG", help="internal")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--records", type=int, default=RECORDS, help="multiple of 10,000")
    parser.add_argument("--stdlib-python", default=NOORJSON_PYTHON)
    parser.add_argument("--orjson-python", default=NOX_PYTHON)
    parser.add_argument("--msgspec-python", default=MSGSPEC_PYTHON)
    parser.add_argument("--json", help="write the raw figures here")
    args = parser.parse_args()
    if args.measure:
        kind = args.measure[0]
        if kind == "facts":
            _util.emit(encoder_facts())
        elif kind == "micro":
            _util.emit(_measure_micro(int(args.measure[1])))
        elif kind == "prepare":
            _util.emit(_measure_prepare(int(args.measure[1])))
        else:
            result = _measure_drain(kind, int(args.measure[1]))
            result["facts"] = encoder_facts()
            _util.emit(result)
        return
    if args.records % 10_000:
        parser.error("--records must be a multiple of 10,000")
    pythons = {"stdlib": args.stdlib_python, "orjson": args.orjson_python}
    result = run(args.rounds, args.records, pythons, args.msgspec_python)
    print("\n".join(report(result)))
    brief = {
        "variants": {k: summarize(v) for k, v in result["variants"].items()},
        "micro_us_per_batch": (result["micro"] or {}).get("us_per_batch"),
        "prepare_us_per_record": (result.get("prepare") or {}).get("us_per_record"),
    }
    print("\n```json\n" + json.dumps(brief, sort_keys=True) + "\n```")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
