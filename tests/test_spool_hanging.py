"""A request that hangs (a collector that took the connection and does not
answer) with ``spool_dir`` set: the batch gets a copy on disk about a second
after it was taken, while the attempt still runs, so a SIGKILL then loses
nothing. The copy is held (in flight in the ledger, never read back by this
process), becomes the batch's rows when the attempt fails, and is deleted when
the collector answers. Every wait is on a condition with a generous cap."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import logdrain
from logdrain.spool import Spool, Spooled
from logdrain.testing import Collector
from tests import proc
from tests.test_spool_drain import CAP, FAST, kill_9, parts, recover, wait_until

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(sys.platform == "win32", reason="kill -9"),
]

# A request that outlives any spool deadline (the copy must come from the keeper).
SLOW: dict[str, Any] = {**FAST, "request_timeout": 600, "read_timeout": 600}


def on_disk(directory: Path) -> int:
    """Records in the directory's parts, read from the files by another connection."""
    total = 0
    for path in parts(directory):
        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
                total += conn.execute("SELECT coalesce(sum(count), 0) FROM records").fetchone()[0]
        except sqlite3.Error:
            return -1  # mid-write: look again
    return total


def keepers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "logdrain-spool-keeper"]


def spool_of(drain: logdrain.Drain) -> Spool:
    link = drain._spool  # what reached disk, beside the ledger
    assert link is not None
    return link.spool


# -- the store -------------------------------------------------------------------------------


def test_held_rows_are_not_handed_out_until_released(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s", 1 << 24)
    try:
        assert spool.put([Spooled(1.0, None, b'{"i":0}', 1), Spooled(2.0, None, b'{"i":1}', 1)])
        first = spool.take(1, 1 << 20)
        assert [item.part for _, item in first] == [b'{"i":0}']
        written, held = spool.put_held([Spooled(3.0, None, b'{"i":2}', 2)])
        assert written == 2 and len(held) == 1
        # The row written before the held one is still handed out; the held one is not.
        assert [item.part for _, item in spool.take(10, 1 << 20)] == [b'{"i":1}']
        assert spool.take(10, 1 << 20) == []
        spool.release(held)
        assert [item.count for _, item in spool.take(10, 1 << 20)] == [2]
        assert spool.pending_records == 4
        written, held = spool.put_held([Spooled(4.0, None, b'{"i":3}', 1)])
        assert spool.ack(held) == 1  # a copy deleted: gone from disk
        assert spool.pending_records == 4
    finally:
        spool.close()


def test_a_held_row_left_by_a_dead_process_is_delivered_by_the_next(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    code = """
        import os
        from logdrain.spool import Spool, Spooled
        spool = Spool(os.environ["DIR"], 1 << 24)
        print(spool.put_held([Spooled(1.0, None, b'{"i":7}', 1)])[0], flush=True)
        os._exit(0)  # held, never released or acknowledged
    """
    done = proc.run(code, timeout=CAP, DIR=str(directory))
    assert done.returncode == 0 and done.stdout.strip() == "1", done.stderr
    spool = Spool(directory, 1 << 24)
    try:
        assert spool.adopt() == 1
        assert [item.part for _, item in spool.take(10, 1 << 20)] == [b'{"i":7}']
    finally:
        spool.close()


# -- in one process --------------------------------------------------------------------------


def test_a_hanging_attempt_gets_a_copy_that_the_failure_then_keeps(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    with Collector() as collector:
        collector.hang()
        drain = logdrain.Drain(collector.url, spool_dir=str(directory), **SLOW)
        try:
            for i in range(50):
                drain.submit({"message": f"h{i}", "i": i})
            assert wait_until(lambda: on_disk(directory) == 50)
            stats = drain.stats()
            # On disk, and still in flight: the request has not ended.
            assert stats.in_flight == 50 and stats.spooled == 0 and stats.balanced
            collector.hang(False)  # the hung request ends without an answer
            assert wait_until(lambda: drain.stats().delivered == 50)
            stats = drain.stats()
            assert stats.balanced and stats.pending == 0 and stats.lost == 0
            assert spool_of(drain).spooled == 50  # written once: the copy was kept, not rewritten
        finally:
            drain.close()
        assert {r["i"] for r in collector.records} == set(range(50))
        assert wait_until(lambda: not keepers())  # the keeper thread ends with the drain
    assert parts(directory) == []


def test_a_copy_is_deleted_when_the_slow_answer_is_a_success(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    with Collector() as collector:
        # The status line a byte every 0.1 s: several seconds, while the copy is due after one.
        collector.fault("trickle_status", interval=0.1)
        drain = logdrain.Drain(collector.url, spool_dir=str(directory), **SLOW)
        try:
            for i in range(30):
                drain.submit({"message": f"t{i}", "i": i})
            assert wait_until(lambda: spool_of(drain).spooled == 30)  # the copy was written
            assert wait_until(lambda: drain.stats().delivered == 30)
            stats = drain.stats()
            assert stats.balanced and stats.spooled == 0 and stats.pending == 0
            assert spool_of(drain).pending_records == 0  # the copy is gone
            assert on_disk(directory) == 0
        finally:
            drain.close()
        assert sorted(r["i"] for r in collector.records) == list(range(30))  # once each
    with logdrain.Drain("http://127.0.0.1:9/none", spool_dir=str(directory), **FAST) as after:
        assert after.stats().recovered == 0  # nothing left to deliver again


# -- a real process killed -------------------------------------------------------------------

HANGER = """
import os, sys
import logdrain
drain = logdrain.Drain(os.environ["URL"], spool_dir=os.environ["DIR"], request_timeout=600,
                       read_timeout=600, backoff_initial=0.02, backoff_max=0.3, flush_interval=0.05,
                       capture_crashes=False)
for i in range(int(os.environ["N"])):
    drain.submit({"message": f"k{i}", "tag": "k", "i": i})
print("SUBMITTED", flush=True)
sys.stdin.readline()  # until killed
"""


def test_kill_9_while_a_request_hangs_loses_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    with Collector() as collector:
        collector.hang()
        child = subprocess.Popen(
            [sys.executable, "-c", HANGER],
            env=proc.child_env(URL=collector.url, DIR=str(directory), N="500"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            # On disk while the request still hangs (its timeouts are 600 s).
            assert wait_until(lambda: on_disk(directory) == 500 or child.poll() is not None)
            assert child.poll() is None, child.communicate(timeout=CAP)
            assert collector.records == []
        finally:
            kill_9(child)
        collector.hang(False)
        stats = recover(collector.url, directory, 500)
        assert stats["recovered"] == 500
        assert stats["submitted"] + stats["recovered"] == stats["delivered"] + stats["pending"]
        got = {r["i"] for r in collector.records if r.get("tag") == "k"}
        assert got == set(range(500))
    assert parts(directory) == []
