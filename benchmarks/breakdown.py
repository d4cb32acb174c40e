"""Scenario 4, where the time goes: the pieces of the caller path and of the
worker path timed one by one, without any other thread running.

Caller thread (ns per call): the parts of ``DrainHandler.handle``.
Worker, per record: building the JSON document and encoding it, stdlib
``json`` as logdrain does it today against alternatives (one ``dumps`` per
batch instead of per record; ``orjson`` per record and per batch), on the
benchmark's record and on a realistic request-log record.
Worker, per batch of 500: ``Transport.deliver`` to a collector in its own
process (wall and this thread's CPU), against a bare ``requests`` post of
the same body.

Micro-timings are the best of REPEATS; HTTP timings the median of REPEATS.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import sys
import time
import timeit
import uuid
from collections.abc import Callable
from typing import Any

import _util

from logdrain.queue import Lot

REPEATS = 5
BATCH = 500


def _per_call(fn: Callable[[], object], number: int, per: int = 1) -> float:
    """Best-of-REPEATS ns per call of ``fn`` (divided by ``per`` items it
    handles): the usual ``timeit`` practice, least disturbed by other load."""
    timer = timeit.Timer(fn)
    return min(t / number / per * 1e9 for t in timer.repeat(REPEATS, number))


def _records(kind: str, n: int) -> list[logging.LogRecord]:
    logger = logging.getLogger("bench.breakdown")
    out = []
    for i in range(n):
        if kind == "bench":
            msg, args, extra = "msg %d", (i,), {"user": "u", "n": i}
        else:  # a realistic request log line
            msg = "%s %s -> %d in %.1f ms"
            args = ("GET", f"/api/v1/orders/{i}", 200, 12.345 + i % 7)
            extra = {
                "request_id": uuid.UUID(int=i).hex,
                "method": "GET",
                "path": f"/api/v1/orders/{i}",
                "status": 200,
                "duration_ms": 12.345 + i % 7,
                "user": {"id": 42, "email": "dev@example.com", "roles": ["admin", "dev"]},
                "tags": ["checkout", "eu-west-1"],
                "cache_hit": i % 2 == 0,
                "started_at": dt.datetime(2024, 5, 1, 12, 0, 0, i % 1000, tzinfo=dt.timezone.utc),
            }
        out.append(logger.makeRecord(logger.name, logging.INFO, __file__, 42, msg, args, None,
                                     func="handler", extra=extra))  # fmt: skip
    return out


def _caller(settings: Any) -> dict[str, float]:
    import logdrain
    from logdrain import guard
    from logdrain.queue import RecordQueue
    from logdrain.records import snapshot

    record = _records("bench", 1)[0]
    snap = snapshot(record)
    rq = RecordQueue(10**9, "drop_oldest", 1.0, BATCH)
    n = 100_000
    null_logger = logging.getLogger("bench.breakdown.null")
    null_logger.propagate = False
    null_logger.handlers[:] = [logging.NullHandler()]
    null_logger.setLevel(logging.INFO)
    out = {
        "logger.info -> NullHandler (reference)": _per_call(
            lambda: null_logger.info("msg %d", 1, extra={"user": "u", "n": 1}), n
        ),
        "empty lambda (timer overhead)": _per_call(lambda: None, n),
        "guard.active()": _per_call(guard.active, n),
        "records.snapshot(record)": _per_call(lambda: snapshot(record), n),
        "  of which dict(record.__dict__)": _per_call(lambda: dict(record.__dict__), n),
        "  of which record.getMessage()": _per_call(record.getMessage, n),
        "RecordQueue.put(item)": _per_call(lambda: rq.put(snap), n),
    }
    from logdrain import records

    stdlib_item = getattr(records, "stdlib_item", None)  # a proposed cheaper snapshot
    if stdlib_item is not None:
        out["records.stdlib_item(record) (proposed)"] = _per_call(lambda: stdlib_item(record), n)
    handler = logdrain.DrainHandler(settings.url)
    handler.drain._worker.started = True  # diagnostic: no worker thread
    hq = handler.drain._queue

    def handle() -> None:
        handler.handle(record)

    def clear() -> None:
        lot, items = hq.take(10**9, None)
        if lot is not None:
            hq.settle(lot, len(items), "delivered")

    samples = []
    for _ in range(REPEATS):
        t0 = time.perf_counter_ns()
        for _ in range(5000):
            handle()
        samples.append((time.perf_counter_ns() - t0) / 5000)
        clear()
    out["DrainHandler.handle(record), no worker"] = min(samples)
    handler.drain.close(0.5)
    return out


def _dispatcher(settings: Any, encoder: Any) -> Any:
    """A Worker whose threads are never started: only prepare() is used."""
    from logdrain.queue import RecordQueue
    from logdrain.report import Reporter
    from logdrain.transport import Transport
    from logdrain.worker import Worker

    transport = Transport(settings, content_type=encoder.content_type)
    queue = RecordQueue(10**6, "drop_oldest", 1.0, BATCH)
    return Worker(settings, queue, encoder, transport, Reporter("bench", 10))


def _encoding(settings: Any) -> dict[str, dict[str, float]]:
    try:
        import orjson
    except ImportError:  # e.g. `nox -s bench`, which does not install it
        orjson = None

    from logdrain import records
    from logdrain.encode import Encoder, to_jsonable

    # Queue items as the handler of this tree makes them.
    snapshot = getattr(records, "stdlib_item", records.snapshot)

    encoder = Encoder(settings)
    dispatcher = _dispatcher(settings, encoder)
    # Dataclasses go to the same ``default`` hook as with the stdlib encoder;
    # datetimes are native (same text as isoformat() but for sub-minute UTC
    # offsets). The identity check below compares the bytes with the stdlib's.
    opt = orjson.OPT_PASSTHROUGH_DATACLASS if orjson else 0
    stdlib_encode = json.JSONEncoder(
        default=to_jsonable, allow_nan=False, ensure_ascii=False, separators=(",", ":")
    ).encode
    out: dict[str, dict[str, float]] = {}
    for kind in ("bench", "realistic"):
        snaps = [snapshot(r) for r in _records(kind, BATCH)]
        docs = [encoder.document(s) for s in snaps]
        n = 20
        row = {
            "bytes/record": sum(len(encoder.dumps(d)) for d in docs) / BATCH,
            "Encoder.document": _per_call(
                lambda s=snaps: [encoder.document(x) for x in s], n, BATCH
            ),
            "Encoder.dumps (stdlib, per record)": _per_call(
                lambda d=docs: [encoder.dumps(x) for x in d], n, BATCH
            ),
            "Encoder.encode (document + dumps)": _per_call(
                lambda s=snaps: [encoder.encode(x) for x in s], n, BATCH
            ),
            "stdlib dumps, one call per batch": _per_call(
                lambda d=docs: stdlib_encode(d).encode(), n, BATCH
            ),
        }
        if orjson is not None:
            row["orjson.dumps, per record"] = _per_call(
                lambda d=docs: [orjson.dumps(x, default=to_jsonable, option=opt) for x in d],
                n,
                BATCH,
            )
            row["orjson.dumps, one call per batch"] = _per_call(
                lambda d=docs: orjson.dumps(d, default=to_jsonable, option=opt), n, BATCH
            )
        encode_batch = getattr(encoder, "encode_batch", None)  # a proposed fast path
        if encode_batch is not None:
            row["Encoder.encode_batch (proposed)"] = _per_call(
                lambda s=snaps, f=encode_batch: f(s), n, BATCH
            )
        row["Worker.prepare (what a sender thread runs)"] = _per_call(
            lambda s=snaps: dispatcher.prepare(Lot(0, len(s)), s), n, BATCH
        )
        if orjson is not None:
            same = (
                orjson.dumps(docs, default=to_jsonable, option=opt) == stdlib_encode(docs).encode()
            )
            row["orjson output identical"] = float(same)
        out[kind] = row
    return out


def _http(settings: Any) -> dict[str, float]:
    import requests

    from logdrain.encode import Encoder
    from logdrain.records import snapshot
    from logdrain.transport import Transport

    with _util.CollectorProcess() as collector:
        s = dataclasses.replace(settings, url=collector.url)
        encoder = Encoder(s)
        transport = Transport(s, content_type=encoder.content_type)
        dispatcher = _dispatcher(s, encoder)
        items = [snapshot(r) for r in _records("bench", BATCH)]
        from logdrain.shipping import Shipper

        pieces = dispatcher.prepare(Lot(0, len(items)), items)[0]
        body = encoder.body([part for _, part, _ in pieces])
        retrying = Shipper(
            s, transport, dispatcher._queue, dispatcher._reporter, encoder.body
        )._retrying()
        session = requests.Session()
        headers = {"Content-Type": "application/json"}
        n = 40

        def timed(fn: Callable[[], object]) -> tuple[float, float]:
            fn()  # warm: connection open
            walls, cpus = [], []
            for _ in range(REPEATS):
                w0, c0 = time.perf_counter(), time.thread_time()
                for _ in range(n):
                    fn()
                walls.append((time.perf_counter() - w0) / n * 1e6)
                cpus.append((time.thread_time() - c0) / n * 1e6)
            return _util.median(walls), _util.median(cpus)

        deliver = timed(lambda: retrying(transport.post_once, body, uuid.uuid4().hex))
        post_once = timed(lambda: transport.post_once(body, uuid.uuid4().hex))
        raw = timed(lambda: session.post(collector.url, data=body, headers=headers))
        transport.close()
        return {
            "body_bytes": float(len(body)),
            "Transport.deliver wall us": deliver[0],
            "Transport.deliver CPU us": deliver[1],
            "Transport.post_once (no tenacity) wall us": post_once[0],
            "Transport.post_once (no tenacity) CPU us": post_once[1],
            "requests.Session.post wall us": raw[0],
            "requests.Session.post CPU us": raw[1],
            "uuid4().hex ns": _per_call(lambda: uuid.uuid4().hex, 10_000),
        }


def _measure() -> dict[str, Any]:
    from logdrain.config import resolve

    settings = resolve({"url": "http://127.0.0.1:9/unused"})
    return {"caller": _caller(settings), "encoding": _encoding(settings), "http": _http(settings)}


def run() -> dict[str, Any]:
    return _util.measure("breakdown.py", "run", timeout=150)


def report(r: dict[str, Any]) -> list[str]:
    lines = ["Caller thread, one piece at a time (no other thread running):", ""]
    lines += ["| piece | ns/call |", "| --- | ---: |"]
    lines += [f"| {k} | {v:,.0f} |" for k, v in r["caller"].items()]
    enc = r["encoding"]
    lines += [
        "",
        "Worker, per record (ns), batch of 500; `bench` = the scenarios' record, "
        "`realistic` = a request log line with 9 extra fields (nested dict, list, datetime); "
        "orjson with OPT_PASSTHROUGH_DATACLASS (native datetimes):",
        "",
        "| step | bench | realistic |",
        "| --- | ---: | ---: |",
    ]
    for key in enc["bench"]:
        b, real = enc["bench"][key], enc["realistic"].get(key, float("nan"))
        if key == "orjson output identical":
            lines.append(f"| {key} | {'yes' if b else 'no'} | {'yes' if real else 'no'} |")
        else:
            lines.append(f"| {key} | {b:,.0f} | {real:,.0f} |")
    h = r["http"]
    lines += [
        "",
        f"Worker, per batch of 500 records ({h['body_bytes']:,.0f}-byte body) to a collector "
        "in its own process, no other thread running:",
        "",
        "| call | wall us | this thread's CPU us |",
        "| --- | ---: | ---: |",
    ]
    for name in ("Transport.deliver", "Transport.post_once (no tenacity)", "requests.Session.post"):
        lines.append(f"| {name} | {h[name + ' wall us']:,.0f} | {h[name + ' CPU us']:,.0f} |")
    lines += ["", f"uuid4().hex (one per batch): {h['uuid4().hex ns']:,.0f} ns."]
    return lines


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
