"""The disk spool's storage: round trip, keys, limits, the directory's cap,
modes, crash safety under ``kill -9``, torn parts, takeover between live and
dead processes, fork, a disk that cannot be written, the version marker,
ack and release.

Real files in tmp_path and real subprocesses; nothing is mocked and nothing
waits on a clock: subprocesses say what they did on stdout, and the tests
wait for those lines (each with a cap).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from logdrain.report import Reporter
from logdrain.spool import MARKER, MIN_BYTES, RowId, Spool, Spooled

from .proc import run, start_piped

pytestmark = pytest.mark.timeout(180)
POSIX = pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes and signals")
CAP = 8 * MIN_BYTES


@pytest.fixture(autouse=True)
def _spools_closed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every Spool a test makes is closed after it (kept alive until then): an
    unclosed SQLite connection is a ResourceWarning from Python 3.13 on."""
    made: list[Spool] = []
    init = Spool.__init__

    def tracked(self: Spool, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(Spool, "__init__", tracked)
    yield
    for spool in made:
        spool.close()


def piece(i: int, size: int = 300, key: bytes | None = None, count: int = 1) -> Spooled:
    body = json.dumps({"i": i, "pad": "x" * size}).encode()[: max(size, 20)]
    return Spooled(1_700_000_000.0 + i, key, b"%08d|" % i + body, count)


def number(item: Spooled) -> int:
    return int(item.part[:8])


def drain_all(spool: Spool) -> list[Spooled]:
    """Take and acknowledge everything, oldest first."""
    out: list[Spooled] = []
    while batch := spool.take(500, 1 << 20):
        out.extend(item for _, item in batch)
        assert spool.ack([rid for rid, _ in batch]) == sum(i.count for _, i in batch)
    return out


def parts(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".sqlite3"))


def dir_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.iterdir() if p.name.startswith("part-"))


def say(proc: subprocess.Popen[str], line: str) -> str:
    """Send ``line`` to the child; its answer (one line)."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip()


def finish(proc: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"child hung\n{out}\n{err}") from None
    return out, err


# -- round trip ---------------------------------------------------------------------------


def test_round_trip_oldest_first_with_keys_and_counts(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", CAP)
    late = [piece(i, key=b'{"app":"a"}' if i % 2 else None) for i in range(100, 200)]
    early = [piece(i, count=3) for i in range(100)]
    assert spool.put(early) == 300  # records, not rows
    assert spool.put(late) == 100
    assert spool.spooled == spool.pending_records == 400
    got = drain_all(spool)
    assert [number(i) for i in got] == list(range(200))  # in the order written
    assert got[150] == late[50] and got[151] == late[51]  # key and bytes as given
    assert got[151].key == b'{"app":"a"}' and got[150].key is None
    assert spool.pending_records == 0
    assert spool.take(10, 10) == []
    spool.close()


def test_parts_are_merged_oldest_created_first(tmp_path: Path) -> None:
    one, two = Spool(tmp_path, CAP), Spool(tmp_path, CAP)
    one.put([piece(i) for i in range(0, 100, 2)])
    two.put([piece(i) for i in range(1, 100, 2)])
    one.close()
    two.close()
    spool = Spool(tmp_path, CAP)
    assert spool.adopt() == 100
    assert [number(i) for i in drain_all(spool)] == list(range(100))


def test_take_honours_record_and_byte_limits_and_gives_at_least_one(tmp_path: Path) -> None:
    spool = Spool(tmp_path, CAP)
    spool.put([piece(i, count=2) for i in range(10)])
    assert sum(i.count for _, i in spool.take(7, 1 << 20)) == 6  # 3 rows of 2: 8 > 7
    size = len(piece(0).part)
    assert len(spool.take(100, 2 * size)) == 2
    spool.put([piece(99, size=5000)])
    assert len(spool.take(100, 10)) == 1  # a row larger than the limit still goes, alone
    assert spool.take(1, 1)[0][1].count == 2


def test_release_gives_rows_back_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path, CAP)
    spool.put([piece(i) for i in range(10)])
    first = spool.take(4, 1 << 20)
    second = spool.take(3, 1 << 20)
    spool.release([rid for rid, _ in first[1:3]])
    again = spool.take(100, 1 << 20)
    assert [number(i) for _, i in again] == [1, 2, 7, 8, 9]
    spool.ack(rid for rid, _ in first + second + again)
    assert spool.pending_records == 0


def test_arguments_are_checked(tmp_path: Path) -> None:
    for bad in ("", 7):
        with pytest.raises(ValueError, match="directory"):
            Spool(bad, CAP)  # type: ignore[arg-type]
    for size in (MIN_BYTES - 1, 2.0e9, True):
        with pytest.raises(ValueError, match="max_bytes"):
            Spool(tmp_path, size)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fsync"):
        Spool(tmp_path, CAP, fsync="always")
    for fsync in ("off", "normal", "full"):
        spool = Spool(tmp_path / fsync, CAP, fsync=fsync)
        assert spool.put([piece(1)]) == 1


def test_items_that_are_not_spooled_are_refused_not_raised(tmp_path: Path) -> None:
    spool = Spool(tmp_path, CAP)
    assert spool.put([Spooled(1.0, None, "text", 1)]) == 0  # type: ignore[arg-type]
    assert spool.put([Spooled(1.0, None, b"ok", 0)]) == 0
    assert spool.put(["nope"]) == 0  # type: ignore[list-item]
    assert not spool.degraded and spool.last_error
    assert spool.put([]) == 0
    assert spool.put([piece(1)]) == 1


def test_threads_put_and_take_at_once_and_lose_nothing(tmp_path: Path) -> None:
    spool = Spool(tmp_path, CAP)
    got: list[Spooled] = []

    def writer(t: int) -> None:
        for k in range(20):
            assert spool.put([piece(t * 10_000 + k * 10 + i, size=50) for i in range(10)]) == 10

    def reader() -> None:
        for _ in range(200):
            batch = spool.take(37, 1 << 20)
            got.extend(item for _, item in batch)
            spool.ack([rid for rid, _ in batch])

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    threads.append(threading.Thread(target=reader))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    got.extend(drain_all(spool))
    assert sorted(number(i) for i in got) == sorted(
        t * 10_000 + n for t in range(4) for n in range(200)
    )
    assert spool.spooled == 800 and spool.pending_records == 0


def test_another_instance_in_this_process_never_adopts_a_live_part(tmp_path: Path) -> None:
    one, two = Spool(tmp_path, CAP), Spool(tmp_path, CAP)
    one.put([piece(1)])
    assert two.adopt() == 0 and one.adopt() == 0
    one.close()
    assert two.adopt() == 1
    assert two.bytes_on_disk == dir_bytes(tmp_path)


@POSIX
def test_files_are_0600_and_the_directory_0700(tmp_path: Path) -> None:
    directory = tmp_path / "a" / "spool"
    spool = Spool(directory, CAP)
    assert not directory.exists()  # opened lazily
    spool.put([piece(i) for i in range(50)])
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    names = sorted(p.name for p in directory.iterdir())
    assert {n.rsplit(".", 1)[-1] for n in names} == {
        "lock",
        "sqlite3",
        "sqlite3-wal",
        "sqlite3-shm",
    }
    for name in names:
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600, name
    spool.close()


# -- the cap ------------------------------------------------------------------------------


def test_the_cap_covers_the_directory_across_two_parts(tmp_path: Path) -> None:
    cap = 2 * MIN_BYTES
    one, two = Spool(tmp_path, cap), Spool(tmp_path, cap)
    written_one = sum(one.put([piece(i) for i in range(k, k + 500)]) for k in range(0, 9000, 500))
    assert 3000 < written_one < 9000  # cut short at the cap
    assert one.put([piece(1)]) == 0
    batch = [piece(i) for i in range(10_000, 10_500)]
    written_two = two.put(batch)
    assert written_two < 500  # the other part's bytes count: little room is left
    assert len(parts(tmp_path)) == 2 or written_two == 0
    assert dir_bytes(tmp_path) <= cap
    # what fits is a prefix, in order
    rows = [i for _, i in two.take(10_000, 1 << 30)]
    assert rows == batch[:written_two]
    # delivering one part's rows makes room for the other
    drain_all(one)
    assert two.put(batch) == 500
    assert dir_bytes(tmp_path) <= cap


# -- crashes ------------------------------------------------------------------------------

PUTTER = """
import os, sys
from logdrain.spool import Spool, Spooled
spool = Spool(sys.argv[1], 64 * 2**20, fsync=sys.argv[2])
n = 0
while True:
    batch = [Spooled(1.7e9 + n + i, b"k%d" % (n + i), b"%08d|" % (n + i) + b"y" * 290)
             for i in range(200)]
    got = spool.put(batch)
    if got != 200:
        print("short", got, spool.last_error, flush=True)
        break
    n += got
    print(n, flush=True)
"""


@POSIX
@pytest.mark.parametrize("fsync", ["off", "normal"])
def test_kill_9_mid_put_loses_nothing_written_and_corrupts_nothing(
    tmp_path: Path, fsync: str
) -> None:
    for round_ in range(3):
        proc = start_piped(PUTTER, str(tmp_path), fsync)
        assert proc.stdout is not None
        line, reported = "", 0
        target = 2000 * (round_ + 1)
        while reported < target:  # the child prints after each put returned
            line = proc.stdout.readline()
            assert line and not line.startswith("short"), proc.stderr.read() if proc.stderr else ""
            reported = int(line)
        proc.send_signal(signal.SIGKILL)  # while it is in its next put, most likely
        finish(proc)
        spool = Spool(tmp_path, 64 * 2**20)
        recovered = spool.adopt()
        assert recovered >= reported  # every put that returned is there
        assert spool.torn == 0
        got = drain_all(spool)
        assert [number(i) for i in got] == list(range(len(got)))  # contiguous, in order
        assert all(i.key == b"k%d" % number(i) and len(i.part) == 299 for i in got)
        assert len(got) == recovered
        spool.close()
        assert parts(tmp_path) == []  # adopted parts, emptied, are removed


def test_a_garbage_part_is_moved_aside_and_counted_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "part-1-abc.sqlite3").write_bytes(b"not a database at all" * 50)
    (tmp_path / "part-1-abc.lock").write_bytes(b"")
    (tmp_path / "part-2-def.sqlite3").write_bytes(b"")  # its writer died before the schema
    spool = Spool(tmp_path, CAP)
    assert spool.adopt() == 0
    assert spool.torn_files == 1 and spool.torn == 1  # uncountable: the file counts one
    assert (tmp_path / "part-1-abc.sqlite3.corrupt").exists()
    assert not (tmp_path / "part-2-def.sqlite3").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part-1-abc.sqlite3.corrupt"]
    assert spool.put([piece(1)]) == 1 and not spool.degraded
    assert spool.adopt() == 0 and spool.torn_files == 1  # once


def test_a_truncated_part_is_counted_as_torn_not_fatal(tmp_path: Path) -> None:
    writer = Spool(tmp_path / "w", CAP)
    writer.put([piece(i) for i in range(3000)])
    writer.close()
    (name,) = parts(tmp_path / "w")
    data = (tmp_path / "w" / name).read_bytes()
    assert len(data) > 100_000
    (tmp_path / name).write_bytes(data[: len(data) // 2 + 1234])
    (tmp_path / "part-9-aaa.sqlite3").write_bytes(data[:60])  # a torn header
    spool = Spool(tmp_path, CAP)
    assert spool.adopt() == 0
    assert spool.torn_files == 2
    assert spool.torn >= 2  # records where countable, else one per file
    assert parts(tmp_path) == []
    assert spool.put([piece(1)]) == 1


LIVE = """
import json, sys
from logdrain.spool import Spool, Spooled
spool = Spool(sys.argv[1], 64 * 2**20)
name, n = sys.argv[2].encode(), int(sys.argv[3])
spool.put([Spooled(1.0 + i, None, b"%s-%d" % (name, i)) for i in range(n)])
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() == "adopt":
        print(json.dumps([spool.adopt(), spool.recovered, spool.pending_records]), flush=True)
    elif line.strip() == "exit":
        import os; os._exit(0)  # no close: the part stays, its lock goes with the process
"""


@POSIX
def test_live_processes_never_adopt_each_other_and_a_dead_ones_part_is_adopted(
    tmp_path: Path,
) -> None:
    one = start_piped(LIVE, str(tmp_path), "one", "300")
    two = start_piped(LIVE, str(tmp_path), "two", "200")
    try:
        for proc in (one, two):
            assert proc.stdout is not None
            assert proc.stdout.readline() == "ready\n", finish(proc)
        assert len(parts(tmp_path)) == 2
        for _ in range(3):
            assert json.loads(say(one, "adopt")) == [0, 0, 300]
            assert json.loads(say(two, "adopt")) == [0, 0, 200]
        here = Spool(tmp_path, CAP)
        assert here.adopt() == 0  # this process too: both are alive
        assert one.stdin is not None
        one.stdin.write("exit\n")
        one.stdin.flush()
        finish(one)
        assert json.loads(say(two, "adopt")) == [300, 300, 500]
        assert here.adopt() == 0  # the part is the other live process's now
    finally:
        for proc in (one, two):
            if proc.poll() is None:
                proc.kill()
            finish(proc)
    assert len(parts(tmp_path)) == 2  # two's own part, and one's, adopted by two that died
    later = Spool(tmp_path, CAP)
    assert later.adopt() == 500
    assert sorted(i.part for i in drain_all(later)) == sorted(
        [b"one-%d" % i for i in range(300)] + [b"two-%d" % i for i in range(200)]
    )


FORKS = """
import json, os, sys
from logdrain.spool import Spool, Spooled
spool = Spool(sys.argv[1], 64 * 2**20)
spool.put([Spooled(1.0 + i, None, b"parent-%d" % i) for i in range(100)])
taken = spool.take(10, 1 << 20)
pid = os.fork()
if pid == 0:  # the inherited instance must open a part of its own
    n = sum(spool.put([Spooled(2.0 + i, None, b"child-%d" % i)]) for i in range(500))
    print(json.dumps(["child", os.getpid(), n, spool.pending_records]), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
spool.ack(rid for rid, _ in taken)  # the parent's connection still works
n = spool.put([Spooled(3.0, None, b"parent-last")])
print(json.dumps(["parent", os.getpid(), n, spool.pending_records]), flush=True)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_writes_its_own_part(tmp_path: Path) -> None:
    done = run(FORKS.replace("sys.argv[1]", repr(str(tmp_path))), timeout=60)
    assert done.returncode == 0, done.stderr
    lines = {row[0]: row for row in map(json.loads, done.stdout.splitlines())}
    assert lines["child"][2:] == [500, 500]
    assert lines["parent"][2:] == [1, 91]
    pids = sorted(int(name.split("-")[1]) for name in parts(tmp_path))
    assert pids == sorted([lines["child"][1], lines["parent"][1]])
    spool = Spool(tmp_path, CAP)
    assert spool.adopt() == 591 and spool.torn == 0
    got = [i.part for i in drain_all(spool)]
    assert sorted(got) == sorted(
        [b"parent-%d" % i for i in range(10, 100)]
        + [b"child-%d" % i for i in range(500)]
        + [b"parent-last"]
    )


# -- failures -----------------------------------------------------------------------------

FSIZE = """
import json, resource, signal, sys
from logdrain.spool import Spool, Spooled
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))
spool = Spool(sys.argv[1], 64 * 2**20)
results = [spool.put([Spooled(1.0, None, b"z" * 300)] * 200) for _ in range(40)]
print(json.dumps([results, spool.degraded, spool.failed, spool.spooled, spool.last_error]))
"""


@POSIX
def test_a_disk_that_cannot_be_written_degrades_with_one_line_never_raises(
    tmp_path: Path,
) -> None:
    done = run(FSIZE.replace("sys.argv[1]", repr(str(tmp_path / "s"))), timeout=60)
    assert done.returncode == 0, done.stderr
    results, degraded, failed, spooled, last_error = json.loads(done.stdout)
    assert results[0] == 200 and results[-1] == 0 and 0 in results
    assert degraded and failed == 200 * results.count(0) and spooled == sum(results)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert str(tmp_path / "s") in lines[0], lines[0]
    # SQLite's error name (SQLITE_IOERR_WRITE, SQLITE_FULL) from Python 3.11 on; its message before
    name = "SQLITE_" if sys.version_info >= (3, 11) else "disk"
    assert name in lines[0], lines[0]
    assert name in last_error  # SQLite's error (it does not expose the errno)


@POSIX
@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anyway")
def test_a_read_only_directory_degrades_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tmp_path.chmod(0o500)
    try:
        spool = Spool(tmp_path / "s", CAP)
        assert [spool.put([piece(i)]) for i in range(5)] == [0] * 5
        assert spool.degraded and spool.failed == 5
    finally:
        tmp_path.chmod(0o700)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and str(tmp_path / "s") in err[0]


def test_a_reporter_gets_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_bytes(b"")
    spool = Spool(tmp_path / "file" / "s", CAP, reporter=Reporter("app", 60.0))
    assert spool.put([piece(1)]) == 0 and spool.put([piece(2)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("logdrain[app]: spool "), err


def test_a_part_of_another_version_is_left_alone_with_one_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    writer = Spool(tmp_path, CAP)
    writer.put([piece(i) for i in range(10)])
    writer.close()
    (name,) = parts(tmp_path)
    with sqlite3.connect(tmp_path / name) as conn:
        conn.execute("UPDATE meta SET value = 2 WHERE name = ?", (MARKER,))
    conn.close()
    before = (tmp_path / name).read_bytes()
    spool = Spool(tmp_path, CAP)
    assert spool.adopt() == 0 and spool.adopt() == 0
    assert spool.torn == 0 and spool.recovered == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "version 2" in err[0] and name in err[0], err
    assert (tmp_path / name).read_bytes() == before
    assert Spool(tmp_path, CAP).adopt() == 0  # and in another instance, again refused


# -- ack, release, reopen -------------------------------------------------------------------


def test_ack_removes_and_taken_rows_not_acknowledged_come_back_after_reopen(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path, CAP)
    spool.put([piece(i) for i in range(20)])
    taken = spool.take(8, 1 << 20)
    assert spool.ack([rid for rid, _ in taken[:5]]) == 5
    assert spool.ack([rid for rid, _ in taken[:5]]) == 0  # once
    assert spool.ack([RowId("part-0-0", 1)]) == 0  # not a part held here
    assert spool.pending_records == 15
    spool.close()  # as a crash would: three taken, never acknowledged
    again = Spool(tmp_path, CAP)
    assert again.adopt() == 15 and again.recovered == 15
    assert [number(i) for i in drain_all(again)] == list(range(5, 20))
    again.close()
    assert list(tmp_path.iterdir()) == []
