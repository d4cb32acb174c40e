"""What ``compress="gzip"`` costs and where it pays.

Micro (one process, no network): typical batches of BATCH records, built by
logdrain's own encoder from real LogRecords, in two shapes:

``web``    a request log line with 12 extra fields whose values vary as in
           production (random request ids, paths, client addresses, user
           agents from a small set, statuses, durations), seeded
``bench``  the other benchmarks' record (``"msg %d"``, ``user``, ``n``)

For each: the body size raw and gzipped at levels 1 (``transport.GZIP_LEVEL``)
and 6 (gzip's default), the CPU ms per batch to compress (this thread's CPU
time, median of REPEATS, levels interleaved), the encoding cost of the same
batch for scale, and the **break-even link speed**: the bandwidth at which
gzip's CPU time per batch equals the transfer time it saves
(``saved bytes * 8 / CPU seconds``). Below it, gzip saves more time on the
wire than it spends; above it (loopback, a LAN), it spends more than it saves.
A GIL probe shows whether compressing holds the interpreter lock: the rate
of a pure-Python loop on the main thread, alone, beside a thread that
compresses, beside a thread running stdlib ``json`` (which holds the lock),
and beside another process compressing (sharing the cores, not the lock).

End to end (a fresh interpreter per figure, compress off / gzip interleaved,
ROUNDS rounds, medians) to the benchmark collector in its own process
(``collector_server.py``: ``logdrain.testing.Collector``, which inflates
``Content-Encoding: gzip`` bodies), ``web`` records from one thread:
``block`` records/s with ``overflow="block"`` (every record arrives, counted
by the collector); ``default`` the same at default settings (how many
arrive); ``burst`` / ``sustained`` caller cost, as in ``caller_cost.py``
(bursts of CHUNK calls, flushed untimed in between; or CALLS calls in one run
with ``overflow="block"``), against a NullHandler logger making the same calls
in the same process.

    python benchmarks/compression.py [--rounds 3] [--records 60000] [--json out.json]
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import logging
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import _util

BATCH = 2_000
LEVELS = (1, 6)
REPEATS = 15  # micro: timed compressions per level and shape
RECORDS = 60_000  # end to end, per run
CALLS = 20_000  # caller cost: calls per timed run
CHUNK = 2_000  # caller cost: calls per burst
CALLER_REPEATS = 3
ROUNDS = 3
POOL = 4_096  # distinct web records cycled through by the loops
KINDS = ("block", "default", "burst", "sustained")
COMPRESS = ("off", "gzip")

_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "okhttp/4.12.0",
    "python-requests/2.32.3",
    "curl/8.8.0",
)
_PATHS = (
    "/api/v1/orders/{}",
    "/api/v1/users/{}/cart",
    "/api/v1/products/{}/reviews",
    "/api/v1/search?q=item{}",
    "/static/app.{}.js",
    "/healthz",
)

LogArgs = tuple[str, tuple[Any, ...], dict[str, Any]]


def web_pool(n: int = POOL, seed: int = 7) -> list[LogArgs]:
    """n (format, args, extra) triples of request logs, seeded."""
    rng = random.Random(seed)
    out: list[LogArgs] = []
    for _ in range(n):
        method = rng.choice(("GET",) * 6 + ("POST",) * 3 + ("DELETE",))
        path = rng.choice(_PATHS).format(rng.randrange(10**6))
        status = rng.choices((200, 201, 204, 302, 400, 404, 500), (70, 8, 5, 2, 5, 8, 2))[0]
        duration = round(rng.lognormvariate(2.5, 1.0), 3)
        extra = {
            "request_id": f"{rng.getrandbits(128):032x}",
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": duration,
            "bytes_sent": rng.randrange(200, 50_000),
            "client_ip": f"203.0.113.{rng.randrange(256)}",  # documentation range: text only
            "user_agent": rng.choice(_AGENTS),
            "user_id": rng.randrange(100_000),
            "service": "checkout",
            "env": "prod",
            "region": "eu-west-1",
        }
        out.append(("%s %s -> %d in %.1f ms", (method, path, status, duration), extra))
    return out


def bench_pool(n: int = POOL) -> list[LogArgs]:
    return [("msg %d", (i,), {"user": "u", "n": i}) for i in range(n)]


# -- micro --


def _body(shape: str, json_encoder: str = "auto") -> tuple[bytes, Callable[[], bytes]]:
    """One BATCH-record body of ``shape`` as the sender builds it, and a
    function rebuilding it (documents + encoding, for scale)."""
    from logdrain.config import resolve
    from logdrain.encode import Encoder
    from logdrain.records import snapshot

    encoder = Encoder(resolve({"url": "http://127.0.0.1:9/x", "json_encoder": json_encoder}))
    pool = web_pool() if shape == "web" else bench_pool()
    logger = logging.getLogger("app.http")
    snaps = []
    for i in range(BATCH):
        fmt, args, extra = pool[i % len(pool)]
        record = logger.makeRecord(logger.name, logging.INFO, __file__, 1, fmt, args, None,
                                   extra=extra)  # fmt: skip
        snaps.append(snapshot(record))

    def build() -> bytes:
        chunks = encoder.encode_batch(snaps)
        assert chunks is not None
        return encoder.body([part for _, part in chunks])

    return build(), build


def _cpu_ms(fn: Callable[[], object]) -> tuple[float, float]:
    """(thread CPU ms, wall ms) of one call."""
    c0, w0 = time.thread_time(), time.perf_counter()
    fn()
    return (time.thread_time() - c0) * 1e3, (time.perf_counter() - w0) * 1e3


def _loop_rate(seconds: float) -> float:
    """Iterations per second of a pure-Python loop on this thread."""
    n = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(1000):
            n += 1
    return n / seconds


_COMPRESS_LOOP = """
import gzip, os, time
body = os.urandom(1 << 16).hex().encode() * 8
end = time.monotonic() + 1.5
while time.monotonic() < end:
    gzip.compress(body, 1, mtime=0)
"""


def _gil_probe(body: bytes) -> dict[str, float]:
    """The main thread's loop rate alone, beside a thread compressing
    ``body`` (gzip level 1) and beside a thread encoding with stdlib json."""
    docs = json.loads(body)
    rates = {"alone": _loop_rate(1.0)}
    for name, work in (
        ("beside gzip.compress (level 1)", lambda: gzip.compress(body, 1, mtime=0)),
        ("beside json.dumps (stdlib, holds the GIL)", lambda: json.dumps(docs)),
    ):
        stop = threading.Event()

        def spin(work: Callable[[], object] = work, stop: threading.Event = stop) -> None:
            while not stop.is_set():
                work()

        t = threading.Thread(target=spin, daemon=True)
        t.start()
        time.sleep(0.1)
        rates[name] = _loop_rate(1.0)
        stop.set()
        t.join()
    # The same compression in another process: what sharing the 2 cores alone costs.
    other = subprocess.Popen([sys.executable, "-c", _COMPRESS_LOOP])
    time.sleep(0.2)
    rates["beside another process compressing (cores only, no GIL)"] = _loop_rate(1.0)
    other.wait(10)
    return rates


def _measure_micro() -> dict[str, Any]:
    shapes: dict[str, Any] = {}
    probe: dict[str, float] = {}
    for shape in ("web", "bench"):
        body, build = _body(shape)
        _, build_stdlib = _body(shape, "stdlib")
        sizes = {str(level): len(gzip.compress(body, level, mtime=0)) for level in LEVELS}
        cpu: dict[str, list[float]] = {str(level): [] for level in LEVELS}
        wall: dict[str, list[float]] = {str(level): [] for level in LEVELS}
        encode: dict[str, list[float]] = {"orjson": [], "stdlib": []}
        for r in range(REPEATS):
            for level in LEVELS if r % 2 == 0 else reversed(LEVELS):
                c, w = _cpu_ms(functools.partial(gzip.compress, body, level, mtime=0))
                cpu[str(level)].append(c)
                wall[str(level)].append(w)
            if r < 5:
                encode["orjson"].append(_cpu_ms(build)[0])
                encode["stdlib"].append(_cpu_ms(build_stdlib)[0])
        assert gzip.decompress(gzip.compress(body, 1, mtime=0)) == body
        shapes[shape] = {
            "raw_bytes": len(body),
            "bytes_per_record": len(body) / BATCH,
            "gzip_bytes": sizes,
            "gzip_cpu_ms": {k: _util.median(v) for k, v in cpu.items()},
            "gzip_wall_ms": {k: _util.median(v) for k, v in wall.items()},
            "encode_cpu_ms": {k: _util.median(v) for k, v in encode.items()},
        }
        if shape == "web":
            probe = _gil_probe(body)
    return {"batch": BATCH, "shapes": shapes, "gil_probe": probe}


def break_even_mbit(raw: int, packed: int, cpu_ms: float) -> float:
    """Link speed (Mbit/s) at which sending ``raw - packed`` fewer bytes saves
    exactly the ``cpu_ms`` spent compressing."""
    return (raw - packed) * 8 / (cpu_ms / 1e3) / 1e6


# -- end to end --


def _chunk(logger: logging.Logger, pool: list[LogArgs]) -> Callable[[int], None]:
    info = logger.info
    mask = len(pool) - 1

    def chunk(n: int) -> None:
        for i in range(n):
            fmt, args, extra = pool[i & mask]
            info(fmt, *args, extra=extra)

    return chunk


def _throughput(collector: Any, options: dict[str, Any], records: int) -> dict[str, Any]:
    import logdrain

    handler = logdrain.DrainHandler(collector.url, **options)
    logger = logging.getLogger(f"bench.compression.{id(handler)}")
    logger.propagate, logger.handlers[:] = False, [handler]
    logger.setLevel(logging.INFO)
    chunk = _chunk(logger, web_pool())
    threads0 = _util.thread_cpu_seconds()
    t0, cpu0 = time.monotonic(), time.process_time()
    for _ in range(records // 10_000):
        chunk(10_000)
    t_logged = time.monotonic()
    complete = handler.drain.flush(60.0)
    elapsed = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    threads = _util.cpu_by_role(threads0, _util.thread_cpu_seconds())
    stats = handler.drain.stats()
    server = collector.stats()
    handler.close()
    logged = records // 10_000 * 10_000
    return {
        "logged": logged,
        "complete": complete,
        "produce_s": t_logged - t0,
        "elapsed_s": elapsed,
        "delivered_per_s": stats.delivered / elapsed,
        "cpu_us_per_record": cpu / logged * 1e6,
        "thread_cpu_us_per_record": {k: v / logged * 1e6 for k, v in threads.items()},
        "arrived": server["count"],
        "requests": server["requests"],
        "non_2xx": server["non_2xx"],
        "stats": stats.as_dict(),
    }


def _caller(collector: Any, options: dict[str, Any], sustained: bool) -> dict[str, Any]:
    import caller_cost

    import logdrain

    caller_cost.CALLS, caller_cost.CHUNK = CALLS, CHUNK
    pool = web_pool()
    if sustained:
        options = {**options, "overflow": "block", "block_timeout": 30.0}
    handler = logdrain.DrainHandler(collector.url, **options)
    row = caller_cost.Row(_chunk(caller_cost._bench_logger(handler), pool))
    row.settle = lambda: caller_cost._flush(handler.drain)
    row.chunk_calls = CALLS if sustained else CHUNK
    ref = caller_cost.Row(_chunk(caller_cost._bench_logger(logging.NullHandler()), pool))
    for subject in (row, ref):  # warm-up, untimed
        subject.chunk(CHUNK // 5)
        subject.settle()
    row_ns, ref_ns = [], []
    for _ in range(CALLER_REPEATS):
        ref_ns.append(caller_cost._time_run(ref))
        row_ns.append(caller_cost._time_run(row))
    handler.drain.flush(30.0)
    stats = handler.drain.stats()
    handler.close()
    arrived = collector.count()
    if arrived != stats.submitted:
        raise RuntimeError(f"collector holds {arrived} records, {stats.submitted} were logged")
    return {
        "ns": _util.median(row_ns),
        "ref_ns": _util.median(ref_ns),
        "delta_ns": _util.median(row_ns) - _util.median(ref_ns),
        "ns_all": [round(x) for x in row_ns],
        "ref_all": [round(x) for x in ref_ns],
        "arrived": arrived,
        "submitted": stats.submitted,
        "dropped_overflow": stats.dropped_overflow,
    }


def _measure_e2e(kind: str, compress: str, records: int) -> dict[str, Any]:
    options: dict[str, Any] = {"compress": "gzip"} if compress == "gzip" else {}
    with _util.CollectorProcess() as collector:
        if kind == "block":
            options.update(overflow="block", block_timeout=30.0)
        if kind in ("block", "default"):
            result = _throughput(collector, options, records)
        else:
            result = _caller(collector, options, kind == "sustained")
    return {"kind": kind, "compress": compress, **result}


# -- the parent side --


def run(rounds: int = ROUNDS, records: int = RECORDS) -> dict[str, Any]:
    micro = _util.measure("compression.py", "micro", timeout=300)
    e2e: dict[str, dict[str, list[dict[str, Any]]]] = {
        kind: {c: [] for c in COMPRESS} for kind in KINDS
    }
    for r in range(rounds):
        for kind in KINDS:
            for compress in COMPRESS if r % 2 == 0 else reversed(COMPRESS):
                t0 = time.monotonic()
                res = _util.measure("compression.py", "e2e", kind, compress, str(records),
                                    timeout=240)  # fmt: skip
                e2e[kind][compress].append(res)
                figure = (
                    f"{res['delivered_per_s']:,.0f}/s, {res['arrived']:,} arrived"
                    if kind in ("block", "default")
                    else f"{res['delta_ns']:+,.0f} ns/call"
                )
                print(f"round {r + 1}/{rounds} {kind:9} {compress:4} {figure} "
                      f"({time.monotonic() - t0:.0f} s)", file=sys.stderr, flush=True)  # fmt: skip
    return {
        "batch": BATCH,
        "records": records,
        "calls": CALLS,
        "chunk": CHUNK,
        "rounds": rounds,
        "micro": micro,
        "e2e": e2e,
    }


def summarize(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    med = _util.median
    out: dict[str, dict[str, float]] = {}
    e2e = result["e2e"]
    for c in COMPRESS:
        block, default = e2e["block"][c], e2e["default"][c]
        out[c] = {
            "block_per_s": med(r["delivered_per_s"] for r in block),
            "block_arrived": min(r["arrived"] for r in block),
            "block_logged": max(r["logged"] for r in block),
            "block_requests": med(r["requests"] for r in block),
            "block_cpu_us": med(r["cpu_us_per_record"] for r in block),
            "block_sender_us": med(r["thread_cpu_us_per_record"].get("sender", 0) for r in block),
            "default_per_s": med(r["delivered_per_s"] for r in default),
            "default_arrived": med(r["arrived"] for r in default),
            "default_dropped": med(r["stats"]["dropped_overflow"] for r in default),
            "burst_delta_ns": med(r["delta_ns"] for r in e2e["burst"][c]),
            "sustained_delta_ns": med(r["delta_ns"] for r in e2e["sustained"][c]),
            "null_ns": med(r["ref_ns"] for k in ("burst", "sustained") for r in e2e[k][c]),
        }
    return out


def report(result: dict[str, Any]) -> list[str]:
    micro = result["micro"]
    lines = [
        f"Batches of {result['batch']:,} records as the sender builds them (logdrain's "
        "encoder, orjson); gzip CPU: this thread's CPU time per batch, median of "
        f"{REPEATS}. Break-even: the link speed at which the transfer time saved equals "
        "gzip's CPU time (below it gzip wins).",
        "",
        "| records | raw body | bytes/record | gzip -1 (ratio) | gzip -6 (ratio) "
        "| CPU/batch -1 | CPU/batch -6 | encode/batch orjson, stdlib "
        "| break-even -1 | break-even -6 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for shape, label in (("web", "web request log (12 extras)"), ("bench", "benchmark record")):
        s = micro["shapes"][shape]
        raw, gz, cpu = s["raw_bytes"], s["gzip_bytes"], s["gzip_cpu_ms"]
        enc = s["encode_cpu_ms"]
        lines.append(
            f"| {label} | {raw / 1024:,.0f} KiB | {s['bytes_per_record']:.0f} | "
            f"{gz['1'] / 1024:,.0f} KiB ({raw / gz['1']:.1f}x) | "
            f"{gz['6'] / 1024:,.0f} KiB ({raw / gz['6']:.1f}x) | "
            f"{cpu['1']:.2f} ms | {cpu['6']:.2f} ms | "
            f"{enc['orjson']:.2f}, {enc['stdlib']:.2f} ms | "
            f"{break_even_mbit(raw, gz['1'], cpu['1']):,.0f} Mbit/s | "
            f"{break_even_mbit(raw, gz['6'], cpu['6']):,.0f} Mbit/s |"
        )
    probe = micro["gil_probe"]
    alone = probe["alone"]
    lines += [
        "",
        "GIL probe (main thread's pure-Python loop rate, relative to running alone): "
        + "; ".join(f"{k} {v / alone:.2f}" for k, v in probe.items() if k != "alone")
        + ".",
        "",
        f"End to end, web records from one thread to the benchmark collector (its own process, "
        f"inflating gzip bodies), median of {result['rounds']} rounds, off/gzip interleaved; "
        f"{result['records']:,} records per throughput run; caller cost: {result['calls']:,} "
        f"calls x {CALLER_REPEATS} runs, minus a NullHandler making the same calls.",
        "",
        '| compress | overflow="block": records/s (arrived) | CPU/record (senders) '
        f"| requests | default settings: records/s, arrived of {result['records']:,} "
        f"| caller cost, bursts of {result['chunk']:,} | caller cost, sustained | NullHandler |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    sums = summarize(result)
    for c, s in sums.items():
        lines.append(
            f"| {c} | {s['block_per_s']:,.0f} ({s['block_arrived']:,} of {s['block_logged']:,}) | "
            f"{s['block_cpu_us']:.1f} us ({s['block_sender_us']:.1f}) | "
            f"{s['block_requests']:.0f} | {s['default_per_s']:,.0f}, "
            f"{s['default_arrived']:,.0f} (dropped {s['default_dropped']:,.0f}) | "
            f"{s['burst_delta_ns']:+,.0f} ns | {s['sustained_delta_ns']:+,.0f} ns | "
            f"{s['null_ns']:,.0f} ns |"
        )
    off, on = sums["off"], sums["gzip"]
    web = micro["shapes"]["web"]
    lines += [
        "",
        f"gzip / off: end to end x{on['block_per_s'] / off['block_per_s']:.2f}, CPU per record "
        f"{on['block_cpu_us'] - off['block_cpu_us']:+.1f} us, sustained caller cost "
        f"{on['sustained_delta_ns'] - off['sustained_delta_ns']:+,.0f} ns, bursts "
        f"{on['burst_delta_ns'] - off['burst_delta_ns']:+,.0f} ns. On the wire: "
        f"{web['raw_bytes'] / BATCH:.0f} -> {web['gzip_bytes']['1'] / BATCH:.0f} bytes per web "
        "record.",
        "",
        "Per round (records/s, block / sustained delta ns):",
        "",
    ]
    for c in COMPRESS:
        b = ", ".join(f"{r['delivered_per_s']:,.0f}" for r in result["e2e"]["block"][c])
        s = ", ".join(f"{r['delta_ns']:+,.0f}" for r in result["e2e"]["sustained"][c])
        u = ", ".join(f"{r['delta_ns']:+,.0f}" for r in result["e2e"]["burst"][c])
        lines.append(f"- {c}: block {b}; sustained {s}; bursts {u}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", nargs="+", metavar="ARG", help="internal")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--records", type=int, default=RECORDS, help="multiple of 10,000")
    parser.add_argument("--json", help="write the raw figures here")
    args = parser.parse_args()
    if args.measure:
        if args.measure[0] == "micro":
            _util.emit(_measure_micro())
        else:
            _, kind, compress, records = args.measure
            _util.emit(_measure_e2e(kind, compress, int(records)))
        return
    if args.records % 10_000:
        parser.error("--records must be a multiple of 10,000")
    result = run(args.rounds, args.records)
    print("\n".join(report(result)))
    brief = {"micro": result["micro"], "e2e": summarize(result)}
    print("\n```json\n" + json.dumps(brief, sort_keys=True) + "\n```")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
