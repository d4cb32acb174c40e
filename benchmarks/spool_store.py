"""The disk spool's storage cost (issue 11 part 3), side by side in one run.

Rows, each a per-record cost in microseconds (median of ROUNDS rounds, the
modes interleaved so that drift in a noisy VM hits them alike):

- ``put`` of BATCHES batches of BATCH records of ~300 bytes (one transaction
  per batch), with ``fsync`` off / normal / full;
- the comparison: a plain append to a file, one ``os.write`` of a framed
  buffer (length, created, count, key, part per record) per batch, without and
  with ``os.fdatasync`` after each batch;
- ``take`` + ``ack`` of everything put (2,000 records at a time);
- write-through: one record per ``put`` (a transaction per record: what the
  caller's thread would pay if every record went to disk before entering the
  queue), off / normal / full, and the plain file's one ``os.write`` per
  record, without and with ``fdatasync``.

Files go to a fresh temporary directory (``--dir`` picks its parent: give one
on the disk the spool would use; a tmpfs makes every fsync free).

    python benchmarks/spool_store.py            # about a minute
    python benchmarks/spool_store.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import struct
import tempfile
import time
from collections.abc import Callable

import _util  # noqa: F401 - puts this checkout's src first on sys.path

from logdrain.spool import Spool, Spooled

BATCH = 2000
BATCHES = 10
ROUNDS = 3
SINGLES = {"off": 2000, "normal": 2000, "full": 200}  # write-through records per round
CAP = 1 << 30


def _items(n: int, start: int = 0) -> list[Spooled]:
    pad = b"x" * 260
    return [
        Spooled(
            1.7e9 + i, b'{"app":"a"}' if i % 4 == 0 else None, b'{"i":%08d,"m":"%s"}' % (i, pad)
        )
        for i in range(start, start + n)
    ]


def _frame(items: list[Spooled]) -> bytes:
    out = []
    for item in items:
        key = item.key or b""
        out.append(struct.pack("<IIdI", len(key), len(item.part), item.created, item.count))
        out.append(key)
        out.append(item.part)
    return b"".join(out)


def _spool_batches(root: str, fsync: str) -> tuple[float, float]:
    """(put µs/record, take+ack µs/record)."""
    spool = Spool(os.path.join(root, f"batch-{fsync}"), CAP, fsync=fsync)
    batches = [_items(BATCH, k * BATCH) for k in range(BATCHES)]
    spool.put(_items(1, -1))  # the part's creation is not a put's cost
    start = time.perf_counter()
    for batch in batches:
        assert spool.put(batch) == BATCH
    put = time.perf_counter() - start
    start = time.perf_counter()
    taken = 0
    while rows := spool.take(BATCH, 16 << 20):
        taken += spool.ack([rid for rid, _ in rows])
    take = time.perf_counter() - start
    assert taken == BATCH * BATCHES + 1, taken
    spool.close()
    n = BATCH * BATCHES
    return put / n * 1e6, take / n * 1e6


def _file_batches(root: str, sync: bool) -> float:
    path = os.path.join(root, f"plain-{sync}.bin")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    batches = [_items(BATCH, k * BATCH) for k in range(BATCHES)]
    start = time.perf_counter()
    for batch in batches:
        os.write(fd, _frame(batch))  # framing counted: the spool encodes its rows too
        if sync:
            os.fdatasync(fd)
    elapsed = time.perf_counter() - start
    os.close(fd)
    return elapsed / (BATCH * BATCHES) * 1e6


def _spool_singles(root: str, fsync: str) -> float:
    spool = Spool(os.path.join(root, f"single-{fsync}"), CAP, fsync=fsync)
    items = _items(SINGLES[fsync])
    spool.put(_items(1, -1))
    start = time.perf_counter()
    for item in items:
        spool.put((item,))
    elapsed = time.perf_counter() - start
    spool.close()
    return elapsed / len(items) * 1e6


def _file_singles(root: str, sync: bool) -> float:
    path = os.path.join(root, f"plain-single-{sync}.bin")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    items = _items(SINGLES["full" if sync else "off"])
    start = time.perf_counter()
    for item in items:
        os.write(fd, _frame([item]))
        if sync:
            os.fdatasync(fd)
    elapsed = time.perf_counter() - start
    os.close(fd)
    return elapsed / len(items) * 1e6


def main() -> None:
    global BATCHES, ROUNDS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=None, help="parent of the temporary directory")
    parser.add_argument("--quick", action="store_true", help="fewer batches and rounds")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args()
    if args.quick:
        BATCHES, ROUNDS = 3, 1
    root = tempfile.mkdtemp(prefix="spool-bench-", dir=args.dir)
    rows: dict[str, Callable[[str], float]] = {}
    take_rows: dict[str, list[float]] = {}
    for fsync in ("off", "normal", "full"):

        def batch(root: str, fsync: str = fsync) -> float:
            put, take = _spool_batches(root, fsync)
            take_rows.setdefault(f"take+ack (after fsync={fsync} puts)", []).append(take)
            return put

        rows[f"put, 2000-record batches, fsync={fsync}"] = batch
    rows["plain file, os.write per batch"] = lambda root: _file_batches(root, sync=False)
    rows["plain file, os.write + fdatasync per batch"] = lambda root: _file_batches(root, sync=True)
    for fsync in ("off", "normal", "full"):
        rows[f"write-through: put of 1 record, fsync={fsync}"] = lambda root, fsync=fsync: (
            _spool_singles(root, fsync)
        )
    rows["write-through: plain os.write per record"] = lambda root: _file_singles(root, sync=False)
    rows["write-through: plain os.write + fdatasync"] = lambda root: _file_singles(root, sync=True)
    figures: dict[str, list[float]] = {name: [] for name in rows}
    try:
        for round_ in range(ROUNDS):
            for name, measure in rows.items():
                here = os.path.join(root, f"r{round_}")
                os.makedirs(here, exist_ok=True)
                figures[name].append(measure(here))
                shutil.rmtree(here)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    figures.update(take_rows)
    load = os.getloadavg() if hasattr(os, "getloadavg") else ()
    print(
        f"spool store: {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"{os.cpu_count()} CPUs, load {', '.join(f'{x:.2f}' for x in load)}, "
        f"{BATCHES} x {BATCH} records of ~300 B, median of {ROUNDS} round(s), files in {root}"
    )
    width = max(map(len, figures))
    for name, values in figures.items():
        spread = f"  (min {min(values):.2f}, max {max(values):.2f})" if len(values) > 1 else ""
        print(f"  {name:<{width}}  {statistics.median(values):9.2f} µs/record{spread}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(figures, out, indent=1)


if __name__ == "__main__":
    main()
