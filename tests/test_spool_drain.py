"""The disk spool as a Drain uses it (``spool_dir``): records not acknowledged
within about a second reach disk, survive ``kill -9``, are delivered by the next
process, and every step keeps ``submitted + recovered == delivered + pending +
lost``. Processes are real subprocesses; every wait is on a condition, with a
generous cap, never a timed assertion."""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import logdrain
from logdrain import ConfigError
from logdrain.spool import Spool, Spooled
from logdrain.testing import Collector
from tests import proc

validate_module = importlib.import_module("logdrain.config.validate")

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes, kill -9, fork"),
]

FAST: dict[str, Any] = {
    "backoff_initial": 0.02,
    "backoff_max": 0.3,
    "flush_interval": 0.05,
    "capture_crashes": False,
}
CAP = 120.0  # seconds: a safety cap on every wait, never a measured duration


def wait_until(check: Callable[[], bool], cap: float = CAP) -> bool:
    return proc.wait_until(check, cap)


def parts(directory: Path, suffix: str = ".sqlite3") -> list[Path]:
    return sorted(p for p in directory.glob("part-*") if p.name.endswith(suffix))


def dir_size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.iterdir() if p.name.startswith("part-"))


def last_json(out: str) -> dict[str, Any]:
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert lines, out
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def read_line(child: subprocess.Popen[str], want: str, cap: float = CAP) -> str:
    """The child's next stdout line, which must start with ``want`` (within ``cap``)."""
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], cap)
    line = child.stdout.readline() if ready else ""
    if not line.startswith(want):
        child.kill()
        out, err = child.communicate(timeout=30)
        raise AssertionError(f"expected {want!r}, got {line!r}\n{out}\n{err}")
    return line


def finish(child: subprocess.Popen[str], timeout: float = CAP) -> tuple[str, str]:
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
        raise AssertionError(f"child did not finish\n{out}\n{err}") from None
    assert child.returncode == 0, f"rc={child.returncode}\n{out}\n{err}"
    return out, err


# A child that spools N records with the collector down, says so, and waits
# (to be killed, or told to close).
SPOOLER = """
import json, os, sys, time
import logdrain
url, directory = os.environ["URL"], os.environ["DIR"]
n, tag = int(os.environ["N"]), os.environ["TAG"]
drain = logdrain.Drain(url, spool_dir=directory, backoff_initial=0.02, backoff_max=0.3,
                       flush_interval=0.05, capture_crashes=False)
for i in range(n):
    drain.submit({"message": f"{tag}-{i}", "tag": tag, "i": i})
end = time.monotonic() + 120
while drain.stats().spooled < n and time.monotonic() < end:
    assert drain.stats().balanced
    time.sleep(0.02)
s = drain.stats()
print("SPOOLED", json.dumps(s.as_dict()), flush=True)
sys.stdin.readline()  # until told (or killed)
print(json.dumps(drain.stats().as_dict()), flush=True)
os._exit(0)
"""

# A child that starts on the spool directory with the collector up, logs one
# record of its own, and waits until everything it recovered is delivered.
RECOVERER = """
import json, os, time
import logdrain
url, directory, want = os.environ["URL"], os.environ["DIR"], int(os.environ["WANT"])
drain = logdrain.Drain(url, spool_dir=directory, backoff_initial=0.02, backoff_max=0.3,
                       flush_interval=0.05, capture_crashes=False)
drain.submit({"message": "fresh", "tag": "fresh", "i": -1})
end = time.monotonic() + 120
while time.monotonic() < end:
    s = drain.stats()
    assert s.balanced, s
    if s.recovered >= want and s.delivered >= s.recovered + 1 and s.pending == 0:
        break
    time.sleep(0.02)
drain.close()
print(json.dumps(drain.stats().as_dict()), flush=True)
"""


def spooler(url: str, directory: Path, n: int, tag: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", SPOOLER],
        env=proc.child_env(URL=url, DIR=str(directory), N=str(n), TAG=tag),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return child


def kill_9(child: subprocess.Popen[str]) -> None:
    """SIGKILL ``child`` and reap it (killed again, whatever happens)."""
    try:
        os.kill(child.pid, signal.SIGKILL)
        child.communicate(timeout=CAP)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL


def recover(url: str, directory: Path, want: int) -> dict[str, Any]:
    done = proc.run(RECOVERER, timeout=CAP, URL=url, DIR=str(directory), WANT=str(want))
    assert done.returncode == 0, done.stderr
    return last_json(done.stdout)


# -- in one process -------------------------------------------------------------------------


def test_outage_spools_to_disk_and_delivers_when_the_collector_returns(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    with Collector() as collector:
        collector.down()
        drain = logdrain.Drain(collector.url, spool_dir=str(directory), **FAST)
        for i in range(300):
            drain.submit({"message": f"m{i}", "i": i})
        seen: list[logdrain.DrainStats] = []

        def spooled_all() -> bool:
            seen.append(drain.stats())
            return seen[-1].spooled == 300

        assert wait_until(spooled_all)
        assert all(s.balanced for s in seen)
        assert parts(directory)
        # Modes: the directory 0700, every file 0600.
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        for path in directory.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        collector.up()
        assert wait_until(lambda: drain.stats().delivered == 300)
        drain.close()
        stats = drain.stats()
        assert stats.balanced
        assert stats.spooled == 0 and stats.pending == 0 and stats.lost == 0
        assert sorted({r["i"] for r in collector.records}) == list(range(300))
    assert parts(directory) == []  # the empty part is removed at close


def test_close_with_the_collector_down_keeps_records_on_disk(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "spool"
    with Collector() as collector:
        collector.down()
        drain = logdrain.Drain(collector.url, spool_dir=str(directory), **FAST)
        for i in range(100):
            drain.submit({"message": f"c{i}", "i": i})
        assert drain.close(timeout=5)
        stats = drain.stats()
        assert stats.balanced
        assert stats.spooled == 100  # kept, not lost
        assert stats.dropped_closed == 0 and stats.lost == 0
        err = capfd.readouterr().err
        assert "100 record(s) not yet delivered are kept on disk" in err
        collector.up()
        with logdrain.Drain(collector.url, spool_dir=str(directory), **FAST) as second:
            second.submit({"message": "fresh", "i": -1})
            assert wait_until(lambda: second.stats().delivered == 101)
            s2 = second.stats()
        assert s2.recovered == 100 and s2.balanced and s2.spooled == 0
        assert sorted(r["i"] for r in collector.records) == list(range(-1, 100))


def test_rows_read_back_and_rejected_are_acknowledged_and_counted(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    dead = tmp_path / "dead.jsonl"
    with Collector() as collector:
        collector.down()
        first = logdrain.Drain(collector.url, spool_dir=str(directory), **FAST)
        for i in range(20):
            first.submit({"message": f"r{i}", "i": i})
        assert first.close(timeout=5)
        assert first.stats().spooled == 20
        collector.up()
        collector.script(400, times=1, body=b'{"error": "no thanks"}')
        with logdrain.Drain(
            collector.url, spool_dir=str(directory), dead_letter=str(dead), **FAST
        ) as second:
            second.submit({"message": "fresh", "i": -1})
            assert wait_until(lambda: second.stats().pending == 0)
            stats = second.stats()
        assert stats.balanced and stats.recovered == 20
        # One request was refused: either the 20 read back, or the fresh one.
        assert (stats.rejected, stats.delivered) in ((20, 1), (1, 20))
        assert stats.dead_lettered == stats.rejected
    assert parts(directory) == []  # acknowledged: nothing left to deliver again


def test_a_long_retry_after_sends_the_batch_to_disk_instead_of_waiting(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    with Collector() as collector:
        collector.script(503, times=1, headers={"Retry-After": "60"})
        with logdrain.Drain(collector.url, spool_dir=str(directory), **FAST) as drain:
            for i in range(10):
                drain.submit({"message": f"w{i}", "i": i})
            # Spooled at once rather than after the 60 s wait (30 s: a cap, not a timing).
            assert wait_until(lambda: drain.stats().spooled + drain.stats().delivered == 10, 30)
            assert wait_until(lambda: drain.stats().delivered == 10)
            stats = drain.stats()
        assert stats.balanced and stats.spooled == 0
        assert sorted(r["i"] for r in collector.records) == list(range(10))


def test_the_ledger_moves_of_the_spool() -> None:
    from logdrain.queue import RecordQueue

    queue = RecordQueue(100, "drop_oldest", 1.0, wake_at=50)
    for i in range(10):
        queue.put({"i": i})
    lot, _items = queue.take(10, None)
    assert lot is not None
    queue.settle(lot, 6, "spooled", batch_done=False)  # on disk: still pending
    s = queue.snapshot()
    assert (s.in_flight, s.spooled, s.pending) == (4, 6, 10) and s.balanced
    queue.abandon()  # a close deadline: the 4 in flight are dropped_closed ...
    queue.settle(lot, 4, "spooled", batch_done=False)  # ... until they reach disk after all
    s = queue.snapshot()
    assert (s.dropped_closed, s.spooled) == (0, 10) and s.balanced
    queue.count_recovered(5, torn=2)  # taken over from a dead process; 2 torn, outside
    s = queue.snapshot()
    assert (s.recovered, s.spooled, s.torn) == (5, 15, 2) and s.balanced
    queue.unspool({"delivered": 12, "rejected": 3, "batches": 2})
    s = queue.snapshot()
    assert (s.spooled, s.delivered, s.rejected, s.batches) == (0, 12, 3, 2) and s.balanced
    assert s.submitted + s.recovered == s.delivered + s.pending + s.lost


def test_a_torn_part_is_counted_and_moved_aside_not_fatal(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    directory.mkdir(mode=0o700)
    garbage = directory / "part-999999-abcdef012345.sqlite3"
    garbage.write_bytes(b"this is not an SQLite database, just torn bytes" * 50)
    (directory / "part-999999-abcdef012345.lock").write_bytes(b"")
    with (
        Collector() as collector,
        logdrain.Drain(collector.url, spool_dir=str(directory), **FAST) as drain,
    ):
        drain.submit({"message": "after the tear"})
        assert wait_until(lambda: drain.stats().delivered == 1 and drain.stats().torn >= 1)
        stats = drain.stats()
        assert stats.balanced  # torn is outside the identity
        assert stats.recovered == 0 and stats.torn == 1  # uncountable: counts 1
    assert (directory / "part-999999-abcdef012345.sqlite3.corrupt").exists()
    assert not garbage.exists()


def test_spool_settings_are_checked_and_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from logdrain import spool

    assert validate_module.MIN_SPOOL_BYTES == spool.MIN_BYTES
    assert set(validate_module.SPOOL_FSYNC) == set(spool.FSYNC)
    afile = tmp_path / "file"
    afile.write_text("x")
    cases = [
        ({"spool_dir": str(afile)}, "spool_dir", "not a directory"),
        ({"spool_dir": str(tmp_path / "a" / "b")}, "spool_dir", "does not exist"),
        ({"spool_max_bytes": "512KiB"}, "spool_max_bytes", "below"),
        ({"spool_fsync": "sometimes"}, "spool_fsync", "not a policy"),
    ]
    for options, field, words in cases:
        with pytest.raises(ConfigError) as info:
            logdrain.Drain("http://127.0.0.1:9/x", **options)
        assert field in str(info.value) and words in str(info.value)
    monkeypatch.setenv("LOGDRAIN_SPOOL_DIR", str(tmp_path / "env-spool"))
    monkeypatch.setenv("LOGDRAIN_SPOOL_MAX_BYTES", "8MiB")
    monkeypatch.setenv("LOGDRAIN_SPOOL_FSYNC", "normal")
    drain = logdrain.Drain("http://127.0.0.1:9/x")
    try:
        assert drain.settings.spool_dir == str(tmp_path / "env-spool")
        assert drain.settings.spool_max_bytes == 8 << 20
        assert drain.settings.spool_fsync == "normal"
    finally:
        drain.close(timeout=0)
    assert not (tmp_path / "env-spool").exists()  # nothing logged, nothing opened


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_unwritable_spool_parent_is_a_config_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(ConfigError, match="not writable"):
        logdrain.Drain("http://127.0.0.1:9/x", spool_dir=str(locked / "spool"))


# -- real processes --------------------------------------------------------------------------


def test_kill_9_during_an_outage_then_a_restart_delivers_every_spooled_record(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "spool"
    with Collector() as collector:
        collector.down()
        child = spooler(collector.url, directory, 1000, "a")
        try:
            line = read_line(child, "SPOOLED")
            first = json.loads(line.split(" ", 1)[1])
            assert first["spooled"] == 1000
        finally:
            kill_9(child)
        assert len(parts(directory)) == 1
        collector.up()
        stats = recover(collector.url, directory, 1000)
        assert stats["recovered"] == 1000
        assert stats["delivered"] == 1001
        assert stats["submitted"] + stats["recovered"] == stats["delivered"] + stats["pending"]
        assert stats["spooled"] == 0
        got = {r["i"] for r in collector.records if r.get("tag") == "a"}
        assert got == set(range(1000))  # every record spooled before the kill
    assert parts(directory) == []  # the adopted part is removed once empty


def test_the_disk_cap_is_honoured_and_the_rest_is_counted(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    cap = 1 << 20
    code = """
import json, os, time
import logdrain
drain = logdrain.Drain(os.environ["URL"], spool_dir=os.environ["DIR"], spool_max_bytes=CAP,
                       backoff_initial=0.02, backoff_max=0.2, max_retry_time=0.5,
                       flush_interval=0.05, capture_crashes=False)
blob = "x" * 2000
for i in range(2000):  # about 4 MB: four times the cap
    drain.submit({"message": blob, "i": i})
end = time.monotonic() + 120
while drain.stats().pending != drain.stats().spooled and time.monotonic() < end:
    assert drain.stats().balanced
    time.sleep(0.05)
print(json.dumps(drain.stats().as_dict()), flush=True)
os._exit(0)
""".replace("CAP", str(cap))
    with Collector() as collector:
        collector.down()
        done = proc.run(code, timeout=CAP, URL=collector.url, DIR=str(directory))
    assert done.returncode == 0, done.stderr
    stats = last_json(done.stdout)
    assert stats["submitted"] == 2000
    assert (
        stats["submitted"]
        == stats["delivered"]
        + stats["pending"]
        + (stats["dropped_overflow"] + stats["dropped_closed"] + stats["rejected"])
        + stats["failed"]
        + stats["expired"]
    )
    assert 0 < stats["spooled"] < 2000
    assert stats["failed"] + stats["dropped_overflow"] == 2000 - stats["spooled"]
    # The directory: within the cap (one process: the running estimate
    # includes its own WAL's reserve, which SQLite overshoots by some pages:
    # under 64 KiB seen at this cap; 128 KiB of slack, docs/durability.md).
    assert dir_size(directory) <= cap + 128 * 1024, dir_size(directory)


def test_two_live_processes_keep_their_own_parts(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    with Collector() as collector:
        collector.down()
        first = spooler(collector.url, directory, 50, "one")
        second = None
        try:
            one = json.loads(read_line(first, "SPOOLED").split(" ", 1)[1])
            second = spooler(collector.url, directory, 70, "two")
            two = json.loads(read_line(second, "SPOOLED").split(" ", 1)[1])
            assert one["recovered"] == 0 and two["recovered"] == 0  # a live part: never adopted
            assert one["spooled"] == 50 and two["spooled"] == 70
            pids = {p.name.split("-")[1] for p in parts(directory)}
            assert pids == {str(first.pid), str(second.pid)}
            assert first.stdin is not None
            first.stdin.write("report\n")
            first.stdin.flush()
            later = last_json(finish(first)[0])
            assert later["recovered"] == 0 and later["spooled"] == 50
        finally:
            for child in (first, second):
                if child is not None and child.poll() is None:
                    child.kill()
                    child.communicate(timeout=CAP)
        # Both are gone now (os._exit and kill): a new process takes both over.
        collector.up()
        stats = recover(collector.url, directory, 120)
        assert stats["recovered"] == 120
        tags = [r.get("tag") for r in collector.records]
        assert tags.count("one") >= 50 and tags.count("two") >= 70
        assert {r["i"] for r in collector.records if r.get("tag") == "one"} == set(range(50))
        assert {r["i"] for r in collector.records if r.get("tag") == "two"} == set(range(70))


def test_a_forked_child_spools_to_a_part_of_its_own(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    code = """
import json, os, time
import logdrain
drain = logdrain.Drain(os.environ["URL"], spool_dir=os.environ["DIR"], backoff_initial=0.02,
                       backoff_max=0.3, flush_interval=0.05, capture_crashes=False)
def wait(cond):
    end = time.monotonic() + 120
    while not cond() and time.monotonic() < end:
        assert drain.stats().balanced
        time.sleep(0.02)
for i in range(40):
    drain.submit({"message": f"p{i}", "tag": "parent", "i": i})
wait(lambda: drain.stats().spooled == 40)
pid = os.fork()
if pid == 0:
    s = drain.stats()
    assert s.spooled == 0 and s.submitted == 0, s  # the child starts empty
    for i in range(25):
        drain.submit({"message": f"c{i}", "tag": "child", "i": i})
    wait(lambda: drain.stats().spooled == 25)
    print("CHILD", json.dumps(drain.stats().as_dict()), flush=True)
    drain.close(timeout=2)
    os._exit(0)
_, status = os.waitpid(pid, 0)
assert status == 0, status
print("PARENT", json.dumps(drain.stats().as_dict()), flush=True)
os._exit(0)
"""
    with Collector() as collector:
        collector.down()
        done = proc.run(code, timeout=CAP, URL=collector.url, DIR=str(directory))
        assert done.returncode == 0, done.stderr
        lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
        child, parent = json.loads(lines["CHILD"]), json.loads(lines["PARENT"])
        assert child["spooled"] == 25 and child["recovered"] == 0
        assert parent["spooled"] == 40 and parent["recovered"] == 0  # not double counted
        assert len(parts(directory)) == 2  # one part each
        collector.up()
        stats = recover(collector.url, directory, 65)
        assert stats["recovered"] == 65
        assert {r["i"] for r in collector.records if r.get("tag") == "parent"} == set(range(40))
        assert {r["i"] for r in collector.records if r.get("tag") == "child"} == set(range(25))


def test_an_unwritable_disk_degrades_to_memory_with_one_line(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    code = """
import json, os, resource, signal, time
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
import logdrain
drain = logdrain.Drain(os.environ["URL"], spool_dir=os.environ["DIR"], backoff_initial=0.02,
                       backoff_max=0.2, max_retry_time=0.5, flush_interval=0.05,
                       capture_crashes=False)
for i in range(200):
    assert drain.submit({"message": f"d{i}", "i": i})  # never refused, never raises
end = time.monotonic() + 120
while drain.stats().pending and time.monotonic() < end:
    assert drain.stats().balanced
    time.sleep(0.05)
print(json.dumps(drain.stats().as_dict()), flush=True)
os._exit(0)
"""
    with Collector() as collector:
        collector.down()
        done = proc.run(code, timeout=CAP, URL=collector.url, DIR=str(directory))
    assert done.returncode == 0, done.stderr
    stats = last_json(done.stdout)
    assert stats["spooled"] == 0 and stats["pending"] == 0
    assert stats["failed"] == 200  # kept in memory, retried there, then given up as before
    lines = [line for line in done.stderr.splitlines() if "cannot write to disk" in line]
    assert len(lines) == 1, done.stderr
    assert str(directory) in lines[0]


def test_without_a_spool_nothing_is_written_and_sqlite_is_not_loaded(tmp_path: Path) -> None:
    code = """
import json, os, sys, time
import logdrain
drain = logdrain.Drain(os.environ["URL"], backoff_initial=0.02, backoff_max=0.2,
                       max_retry_time=0.3, flush_interval=0.05, capture_crashes=False)
for i in range(50):
    drain.submit({"message": f"n{i}"})
drain.close(timeout=3)
print(json.dumps({"sqlite3": "sqlite3" in sys.modules, **drain.stats().as_dict()}))
"""
    work = tmp_path / "cwd"
    work.mkdir()
    with Collector() as collector:
        collector.down()
        child = subprocess.run(
            [sys.executable, "-c", code],
            env=proc.child_env(URL=collector.url, HOME=str(work), TMPDIR=str(work)),
            cwd=work,
            capture_output=True,
            text=True,
            timeout=CAP,
            check=False,
        )
    assert child.returncode == 0, child.stderr
    stats = last_json(child.stdout)
    assert stats["sqlite3"] is False
    assert stats["spooled"] == 0 and stats["recovered"] == 0
    assert list(work.iterdir()) == []


def test_rows_on_disk_older_than_max_age_are_expired_not_sent(tmp_path: Path) -> None:
    """A part left by a process that is gone, its rows written two hours ago:
    with max_age=1h they are taken over, counted expired and removed."""
    directory = tmp_path / "spool"
    old = Spool(directory, 2 * 2**20)
    written = time.time() - 7200
    assert old.put([Spooled(written, None, b'{"message":"stale"}')] * 5) == 5
    assert old.put([Spooled(time.time(), None, b'{"message":"recent"}')]) == 1
    old.close()  # its rows stay, for the next process to take over
    with Collector() as collector:
        with logdrain.Drain(collector.url, spool_dir=str(directory), max_age="1h", **FAST) as drain:
            drain.submit({"message": "fresh"})
            assert wait_until(lambda: drain.stats().spooled == 0 and drain.stats().delivered == 2)
            stats = drain.stats()
        messages = sorted(r["message"] for r in collector.records)
    assert messages == ["fresh", "recent"]
    assert (stats.recovered, stats.expired, stats.balanced) == (6, 5, True)


def test_a_row_whose_shipping_raises_is_buried_once_not_retried_forever(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    dead = tmp_path / "dead.jsonl"
    spool = Spool(directory, 1 << 24)
    assert spool.put([Spooled(time.time(), None, b'{"message":"poison"}', 1)]) == 1
    spool.close()  # its lock is free: the next Drain adopts it
    with Collector() as collector:
        drain = logdrain.Drain(
            collector.url, spool_dir=str(directory), dead_letter=str(dead), **FAST
        )
        shipper = drain._worker._shipper
        frame = shipper._frame

        def hostile(parts: list[Any]) -> bytes:  # a bug met only by this row
            if any(b"poison" in bytes(part) for part in parts):
                raise RuntimeError("a framing bug")
            return frame(parts)

        shipper._frame = hostile
        try:
            drain.submit({"message": "fresh"})
            assert wait_until(lambda: drain.stats().recovered == 1 and drain.stats().pending == 0)
            stats = drain.stats()
        finally:
            drain.close()
        assert stats.balanced and stats.failed == 1 and stats.dead_lettered == 1
        assert stats.delivered == 1 and stats.spooled == 0
        assert [r["message"] for r in collector.records] == ["fresh"]
    assert parts(directory) == []  # acknowledged: not taken again every second


def test_rows_read_back_are_charged_to_max_buffer_bytes_and_stay_within_it(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "spool"
    bound = 1 << 20
    spool = Spool(directory, 1 << 24)
    row = b'{"message":"' + b"x" * 200_000 + b'"}'
    assert spool.put([Spooled(time.time(), None, row, 1) for _ in range(8)]) == 8
    spool.close()  # the next Drain adopts it
    with Collector() as collector:
        collector.hang()
        drain = logdrain.Drain(
            collector.url,
            spool_dir=str(directory),
            max_buffer_bytes=bound,
            concurrency=4,
            read_timeout=600,
            request_timeout=600,
            **FAST,
        )
        try:
            drain.submit({"message": "fresh"})  # the senders start: they adopt the part
            assert wait_until(lambda: drain.stats().in_flight_bytes >= len(row))  # rows charged
            samples: list[int] = []

            def sampled() -> bool:  # what the drain holds, while the rows hang in flight
                stats = drain.stats()
                samples.append(stats.queued_bytes + stats.in_flight_bytes)
                return len(samples) >= 50

            assert wait_until(sampled)
            assert max(samples) <= bound, samples  # four senders, yet within the bound
            collector.hang(False)
            assert wait_until(lambda: drain.stats().delivered == 9)
            stats = drain.stats()
            assert stats.balanced and stats.recovered == 8 and stats.spooled == 0
        finally:
            drain.close()
