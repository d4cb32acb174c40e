"""The dead-letter file's storage: format, modes, the size cap, locking between
processes, torn lines, the claim protocol, redaction, failures, the version.

Real files in tmp_path and real subprocesses; nothing is mocked and nothing
waits on a clock: subprocesses say when they are ready on stdout.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from logdrain.deadletter import (
    MAX_ANSWER,
    Buried,
    DeadLetter,
    DeadLetterFormatError,
    read,
)

from .proc import start_piped

pytestmark = pytest.mark.timeout(120)
POSIX = pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes and signals")


def entry(record: Any, **over: Any) -> Buried:
    fields: dict[str, Any] = {
        "record": record,
        "key": None,
        "reason": "400 mapper_parsing_exception",
        "status": 400,
        "answer": '{"error":"bad"}',
        "preset": "elasticsearch",
        "attempts": 1,
        "first_attempt": 1718000000.25,
        "last_attempt": 1718000001.5,
        "outcome": "rejected",
    }
    fields.update(over)
    return Buried(**fields)


def everything(dl: DeadLetter) -> tuple[list[Buried], int]:
    """The entries of the live set, oldest first, and the lines skipped."""
    out: list[Buried] = []
    skipped = 0
    for name in dl.paths():
        reader = read(name)
        out.extend(reader)
        skipped += reader.skipped
    return out, skipped


def total_bytes(dl: DeadLetter) -> int:
    return sum(os.path.getsize(p) for p in dl.paths())


def finish(proc: subprocess.Popen[str], stdin: str | None = None) -> str:
    try:
        out, err = proc.communicate(stdin, timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"child hung\n{out}\n{err}") from None
    assert proc.returncode == 0, err
    return out


# -- format ------------------------------------------------------------------------------


class Odd:
    def __repr__(self) -> str:
        return "<Odd>"


def test_hostile_content_round_trips_or_is_converted_as_documented(tmp_path: Path) -> None:
    huge = "h" * 1_000_000
    hostile = 'q"uo\\te\nnew\r\nline\x00nul\u2028sep\U0001f600'
    record = {
        "text": hostile,
        "surrogate": "a\ud800b",
        "nan": float("nan"),
        "inf": [float("inf"), float("-inf")],
        "huge": huge,
        "object": Odd(),
        "set": {3, 1, 2},
        "bytes": b"\xffok",
        "when": dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.timezone.utc),
        (1, 2): "tuple key",
        7: "int key",
    }
    expected = {
        "text": hostile,
        "surrogate": "a\ufffdb",
        "nan": "NaN",
        "inf": ["Infinity", "-Infinity"],
        "huge": huge,
        "object": "<Odd>",
        "set": [1, 2, 3],
        "bytes": "\\xffok",
        "when": "2024-06-01T12:00:00+00:00",
        "(1, 2)": "tuple key",
        "7": "int key",
    }
    entries = [
        entry(record, key='{"index":{}}\n', reason=hostile, answer="x\udcffy"),
        entry([1, "two", None, True], key=None, status=None, outcome="failed"),
        entry("just a string\x00", reason="", answer=""),
        entry({"cycle": None}, first_attempt=float("nan"), last_attempt=float("inf")),
    ]
    dl = DeadLetter(tmp_path / "dead.jsonl")
    assert dl.bury(entries) == 4
    assert (dl.failed, dl.last_error) == (0, None)
    got, skipped = everything(dl)
    assert skipped == 0
    assert got[0] == entry(expected, key='{"index":{}}\n', reason=hostile, answer="x\ufffdy")
    assert got[1:3] == entries[1:3]
    assert got[3] == entry({"cycle": None}, first_attempt=0.0, last_attempt=0.0)
    raw = (tmp_path / "dead.jsonl").read_bytes()
    raw.decode("utf-8")  # strict UTF-8 throughout
    assert raw.count(b"\n") == 5  # a header and one line per entry


def test_a_cycle_or_a_raising_object_never_makes_bury_raise(tmp_path: Path) -> None:
    class Bad:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    cycle: dict[str, Any] = {}
    cycle["self"] = cycle
    dl = DeadLetter(tmp_path / "dead.jsonl")
    assert dl.bury([entry(cycle), entry({"bad": Bad()}), entry({"n": 10**5000})]) == 3
    got, _ = everything(dl)
    assert got[0].record == {"self": "<cycle>"}
    assert "unrepresentable" in got[1].record["bad"]
    assert got[2].record["n"].startswith("<int of")


def test_sample_lines_header_first_then_why_before_what(tmp_path: Path) -> None:
    dl = DeadLetter(tmp_path / "dead.jsonl")
    dl.bury([entry({"message": "hi"})])
    header, line = (tmp_path / "dead.jsonl").read_text().splitlines()
    assert json.loads(header)["logdrain_dead_letter"] == 1
    assert list(json.loads(line)) == [
        "outcome",
        "reason",
        "status",
        "answer",
        "preset",
        "attempts",
        "first_attempt",
        "last_attempt",
        "key",
        "record",
    ]


# -- modes -------------------------------------------------------------------------------


@POSIX
def test_files_are_created_0600_and_an_open_file_is_tightened(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        dl = DeadLetter(tmp_path / "dead.jsonl", max_bytes=4096)
        for i in range(100):
            dl.bury([entry({"i": i, "pad": "p" * 50})])
    finally:
        os.umask(old)
    names = [*dl.paths(), str(tmp_path / "dead.jsonl.lock")]
    assert len(names) >= 3  # rotated parts too
    for name in names:
        assert stat.S_IMODE(os.stat(name).st_mode) == 0o600, name

    existing = tmp_path / "old.jsonl"
    existing.write_bytes(b'{"logdrain_dead_letter":1}\n')
    existing.chmod(0o644)
    DeadLetter(existing).bury([entry(1)])
    assert stat.S_IMODE(existing.stat().st_mode) == 0o600
    private = tmp_path / "private.jsonl"
    private.write_bytes(b'{"logdrain_dead_letter":1}\n')
    private.chmod(0o400)  # tighter than 0600 already: never loosened
    DeadLetter(private).bury([entry(1)])  # root may still write; others get 'failed'
    assert stat.S_IMODE(private.stat().st_mode) == 0o400


# -- the size cap ------------------------------------------------------------------------


def test_the_cap_holds_and_the_oldest_go_first_counted(tmp_path: Path) -> None:
    dl = DeadLetter(tmp_path / "dead.jsonl", max_bytes=16384)
    written = 0
    for i in range(0, 3000, 3):
        batch = [entry({"i": j, "pad": "x" * (j % 97)}) for j in range(i, i + 3)]
        written += dl.bury(batch)
        assert total_bytes(dl) <= dl.max_bytes  # every entry is smaller than a part
    assert written == 3000
    got, skipped = everything(dl)
    assert skipped == 0
    numbers = [e.record["i"] for e in got]
    assert numbers == list(range(3000 - len(numbers), 3000))  # the newest, in order
    assert dl.removed == 3000 - len(numbers) > 0
    assert total_bytes(dl) <= dl.max_bytes
    assert len(dl.paths()) <= 4


def test_an_entry_larger_than_a_part_is_written_alone(tmp_path: Path) -> None:
    dl = DeadLetter(tmp_path / "dead.jsonl", max_bytes=8192)
    dl.bury([entry({"i": i}) for i in range(3)])
    big = entry({"big": "b" * 20_000})
    assert dl.bury([big]) == 1
    assert [len(list(read(p))) for p in dl.paths()] == [3, 1]
    assert everything(dl)[0][-1] == big
    assert total_bytes(dl) <= dl.max_bytes + len(json.dumps(big.record)) + 400
    assert dl.bury([entry({"i": 3})]) == 1  # the big part is over the cap: removed, counted
    assert everything(dl)[0] == [entry({"i": 3})]
    assert dl.removed == 4


# -- several processes -------------------------------------------------------------------

WRITER = """
import json, os, sys, threading
from logdrain.deadletter import Buried, DeadLetter

path, writer = sys.argv[1], sys.argv[2]
dl = DeadLetter(path, max_bytes=64 * 1024)
written = [0, 0]

def run(thread):
    i = 0
    while i < 1000:
        batch = [
            Buried({"w": writer, "t": thread, "i": j, "pad": "z" * (j % 61)}, None,
                   "rejected", 400, "", "generic", 1, 1.0, 2.0, "rejected")
            for j in range(i, min(i + 1 + i % 4, 1000))
        ]
        written[thread] += dl.bury(batch)
        i += len(batch)

threads = [threading.Thread(target=run, args=(t,)) for t in (0, 1)]
print("ready", flush=True)
sys.stdin.readline()
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"written": sum(written), "removed": dl.removed, "failed": dl.failed,
                  "error": dl.last_error}))
"""


def test_processes_and_threads_never_interleave_or_lose_lines(tmp_path: Path) -> None:
    path = str(tmp_path / "dead.jsonl")
    procs = [start_piped(WRITER, path, str(w)) for w in range(4)]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
    for proc in procs:  # all start together
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    reports = [json.loads(finish(proc)) for proc in procs]
    assert [r["failed"] for r in reports] == [0] * 4, reports
    written = sum(r["written"] for r in reports)
    removed = sum(r["removed"] for r in reports)
    assert written == 8000
    assert removed > 0  # rotation and removal ran while others appended
    dl = DeadLetter(path, max_bytes=64 * 1024)
    got, skipped = everything(dl)
    assert skipped == 0  # no torn, no interleaved line
    assert len(got) + removed == written
    by_thread: dict[tuple[str, int], list[int]] = {}
    for e in got:
        by_thread.setdefault((e.record["w"], e.record["t"]), []).append(e.record["i"])
    for numbers in by_thread.values():  # each writer's newest entries, in order
        assert numbers == list(range(1000 - len(numbers), 1000))
    assert total_bytes(dl) <= dl.max_bytes + 400


FORKS = """
import json, os, sys
from logdrain.deadletter import Buried, DeadLetter

dl = DeadLetter(sys.argv[1], max_bytes=16 * 1024)
dl.bury([Buried({"p": "parent", "i": -1}, None, "r", None, "", "g", 1, 0.0, 0.0, "failed")])
children = []
for p in range(3):
    pid = os.fork()
    if pid == 0:  # the inherited instance: its fds and lock must be the child's own
        n = sum(dl.bury([Buried({"p": p, "i": i}, None, "r", None, "", "g", 1, 0.0, 0.0, "failed")])
                for i in range(1500))
        os.write(1, (json.dumps([n, dl.removed, dl.failed]) + "\\n").encode())
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
print(json.dumps([1, dl.removed, dl.failed]))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_forked_children_have_their_own_locks(tmp_path: Path) -> None:
    path = str(tmp_path / "dead.jsonl")
    out = finish(start_piped(FORKS, path))
    counts = [json.loads(line) for line in out.splitlines()]
    assert len(counts) == 4
    assert sum(c[2] for c in counts) == 0
    got, skipped = everything(DeadLetter(path, max_bytes=16 * 1024))
    assert skipped == 0
    assert len(got) + sum(c[1] for c in counts) == sum(c[0] for c in counts) == 4501


# -- torn lines --------------------------------------------------------------------------


def test_a_torn_last_line_is_skipped_counted_and_spoils_only_itself(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    dl = DeadLetter(path)
    dl.bury([entry({"i": 0}), entry({"i": 1})])
    line = path.read_bytes().splitlines(keepends=True)[-1]
    with open(path, "ab") as f:
        f.write(line[: len(line) // 2])  # a writer killed mid-write
    reader = read(path)
    assert [e.record["i"] for e in reader] == [0, 1]
    assert reader.skipped == 1

    other = DeadLetter(path)  # another process, later
    assert other.bury([entry({"i": 2})]) == 1
    reader = read(path)
    assert [e.record["i"] for e in reader] == [0, 1, 2]
    assert reader.skipped == 1
    assert dl.bury([entry({"i": 3})]) == 1  # the first writer's fd is still fine
    assert [e.record["i"] for e in read(path)] == [0, 1, 2, 3]


def test_lines_that_are_not_entries_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    good = DeadLetter(path)
    good.bury([entry({"i": 0})])
    with open(path, "ab") as f:
        f.write(b"not json\n[1,2]\n{}\n\xff\xfe\n")
    good.bury([entry({"i": 1})])
    reader = read(path)
    assert [e.record["i"] for e in reader] == [0, 1]
    assert reader.skipped == 4


def test_a_torn_header_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    path.write_bytes(b'{"logdrain_dead_l')  # created, then killed mid-header
    reader = read(path)
    assert (list(reader), reader.skipped) == ([], 1)
    assert DeadLetter(path).bury([entry(1)]) == 1
    reader = read(path)
    assert (list(reader), reader.skipped) == ([entry(1)], 0)


# -- claims ------------------------------------------------------------------------------


def filled(tmp_path: Path, count: int = 200) -> DeadLetter:
    dl = DeadLetter(tmp_path / "dead.jsonl", max_bytes=1 << 20)
    dl.part_bytes = 4096  # parts of a few dozen entries; the cap stays out of the way
    for i in range(count):
        assert dl.bury([entry({"i": i})]) == 1
    return dl


def numbers(entries: list[Buried]) -> list[int]:
    return [e.record["i"] for e in entries]


def test_claim_takes_the_oldest_and_a_second_claim_gets_others(tmp_path: Path) -> None:
    dl = filled(tmp_path)
    parts = len(dl.paths())
    assert parts >= 3
    first = dl.claim()
    assert first is not None
    assert numbers(first.entries) == list(range(len(first.entries)))  # the oldest
    assert os.path.basename(first.path).endswith(f".claim-{os.getpid()}")
    second = DeadLetter(dl.path).claim()  # another replay, here or elsewhere
    assert second is not None
    n = len(first.entries)
    assert numbers(second.entries) == list(range(n, n + len(second.entries)))
    assert len(dl.paths()) == parts - 2  # out of the live set

    first.release()
    again = dl.claim()  # the released part is the oldest again
    assert again is not None
    assert numbers(again.entries) == numbers(first.entries)
    again.done()
    second.done()
    rest, _ = everything(dl)
    assert numbers(rest) == list(range(n + len(second.entries), 200))
    with pytest.raises(RuntimeError, match="settled already"):
        again.done()


def test_claims_take_everything_then_none(tmp_path: Path) -> None:
    dl = filled(tmp_path)
    taken: list[int] = []
    while (claim := dl.claim()) is not None:
        taken += numbers(claim.entries)
        claim.done()
    assert taken == list(range(200))  # the live file last, every entry once
    assert dl.claim() is None
    assert dl.bury([entry({"i": 200})]) == 1  # a writer goes on after its file was claimed
    claim = dl.claim()
    assert claim is not None
    assert numbers(claim.entries) == [200]


def test_a_rejected_again_entry_is_buried_again(tmp_path: Path) -> None:
    dl = filled(tmp_path, 3)
    claim = dl.claim()
    assert claim is not None
    again = [
        entry(e.record, reason="still bad", attempts=e.attempts + 1) for e in claim.entries[1:]
    ]
    assert dl.bury(again) == 2
    claim.done()
    rest, _ = everything(dl)
    assert [(e.record["i"], e.reason, e.attempts) for e in rest] == [
        (1, "still bad", 2),
        (2, "still bad", 2),
    ]


CLAIMER = """
import json, os, sys
from logdrain.deadletter import DeadLetter

dl = DeadLetter(sys.argv[1], max_bytes=1 << 20)
claim = dl.claim()
print(json.dumps([e.record["i"] for e in claim.entries]), flush=True)
sys.stdin.readline()
os._exit(0)  # a replay that crashed: no done, no release
"""


def test_a_claim_lives_while_its_process_does_and_is_reclaimed_after(tmp_path: Path) -> None:
    dl = filled(tmp_path)
    child = start_piped(CLAIMER, dl.path)
    assert child.stdout is not None
    theirs = json.loads(child.stdout.readline())
    assert theirs == list(range(len(theirs)))
    mine = dl.claim()  # the child lives: its claim is left alone
    assert mine is not None
    assert numbers(mine.entries)[0] == len(theirs)
    mine.release()
    finish(child, "exit\n")
    reclaimed = dl.claim()  # the child is gone: its claim is back, the oldest
    assert reclaimed is not None
    assert numbers(reclaimed.entries) == theirs
    assert f".claim-{os.getpid()}" in reclaimed.path
    reclaimed.done()
    rest, _ = everything(dl)
    assert numbers(rest) == list(range(len(theirs), 200))


def test_a_dead_claim_of_the_live_file_is_reclaimed(tmp_path: Path) -> None:
    dl = DeadLetter(tmp_path / "dead.jsonl")
    dl.bury([entry({"i": i}) for i in range(5)])
    child = start_piped(CLAIMER, dl.path)
    assert child.stdout is not None
    assert json.loads(child.stdout.readline()) == [0, 1, 2, 3, 4]
    assert dl.bury([entry({"i": 5})]) == 1  # into a new live file
    finish(child, "\n")
    claim = dl.claim()
    assert claim is not None
    assert numbers(claim.entries) == [0, 1, 2, 3, 4]
    claim.done()
    claim = dl.claim()
    assert claim is not None
    assert numbers(claim.entries) == [5]


# -- secrets and failures ----------------------------------------------------------------


def test_reason_and_answer_are_redacted_before_the_cut(tmp_path: Path) -> None:
    def redact(text: str) -> str:
        return text.replace("SECRET", "***")

    dl = DeadLetter(tmp_path / "dead.jsonl", redact=redact)
    answer = "a" * (MAX_ANSWER - 2) + "SECRET and more"  # the cut falls inside the secret
    dl.bury([entry({"SECRET": "kept"}, reason="token SECRET refused", answer=answer)])
    (got,), _ = everything(dl)
    assert got.reason == "token *** refused"
    assert got.answer == "a" * (MAX_ANSWER - 2) + "**"
    assert got.record == {"SECRET": "kept"}  # the record is written as it would be sent
    assert b"SE" not in (tmp_path / "dead.jsonl").read_bytes().replace(b'"SECRET":', b"")


def test_a_failing_redactor_or_entry_counts_and_writes_the_rest(tmp_path: Path) -> None:
    def redact(text: str) -> str:
        if "boom" in text:
            raise ValueError("redactor broke")
        return text

    class BadStr(str):
        def __str__(self) -> str:
            raise RuntimeError("no str")

    dl = DeadLetter(tmp_path / "dead.jsonl", redact=redact)
    assert dl.bury([entry(1, reason="boom"), entry(2), entry(3, reason=BadStr("x"))]) == 1
    assert dl.failed == 2
    assert dl.last_error is not None
    assert "RuntimeError" in dl.last_error
    assert [e.record for e in everything(dl)[0]] == [2]


def test_a_missing_directory_counts_and_explains(tmp_path: Path) -> None:
    dl = DeadLetter(tmp_path / "nowhere" / "dead.jsonl")
    assert dl.bury([entry(1), entry(2)]) == 0
    assert dl.failed == 2
    assert dl.last_error is not None
    assert "No such file or directory" in dl.last_error
    assert "nowhere" in dl.last_error


@POSIX
@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root")
def test_an_unwritable_directory_counts_and_explains(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o500)
    dl = DeadLetter(closed / "dead.jsonl")
    assert dl.bury([entry(1)]) == 0
    assert dl.failed == 1
    assert "Permission denied" in (dl.last_error or "")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_counts_and_explains(tmp_path: Path) -> None:
    mode = os.stat("/dev/full").st_mode
    (tmp_path / "dead.jsonl").symlink_to("/dev/full")
    dl = DeadLetter(tmp_path / "dead.jsonl")
    assert dl.bury([entry(1), entry(2), entry(3)]) == 0
    assert dl.failed == 3
    assert "No space left on device" in (dl.last_error or "")
    assert os.stat("/dev/full").st_mode == mode  # a device is never chmod-ed


HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("holding", flush=True)
sys.stdin.readline()
"""


@POSIX
def test_a_lock_held_elsewhere_too_long_fails_the_entries_not_the_caller(tmp_path: Path) -> None:
    dl = DeadLetter(tmp_path / "dead.jsonl", lock_timeout=0.2)
    holder = start_piped(HOLDER, dl.path + ".lock")  # a stuck process, say
    assert holder.stdout is not None
    assert holder.stdout.readline() == "holding\n"
    assert dl.bury([entry(1), entry(2)]) == 0
    assert dl.failed == 2
    assert "held for over 0.2 s" in (dl.last_error or "")
    finish(holder, "\n")
    assert dl.bury([entry(3)]) == 1


# -- the version marker ------------------------------------------------------------------


def test_an_unknown_version_is_refused_with_its_number(tmp_path: Path) -> None:
    newer = tmp_path / "dead.jsonl"
    content = b'{"logdrain_dead_letter":2,"created":1}\n{"something":"else"}\n'
    newer.write_bytes(content)
    with pytest.raises(DeadLetterFormatError, match="version 2"):
        read(newer)
    dl = DeadLetter(newer)
    assert dl.bury([entry(1)]) == 0  # a writer does not append to it either
    assert "version 2" in (dl.last_error or "")
    assert newer.read_bytes() == content
    with pytest.raises(DeadLetterFormatError, match="version 2"):
        dl.claim()
    assert [os.path.getsize(p) for p in dl.paths()] == [len(content)]  # back, untouched


def test_a_file_that_is_not_a_dead_letter_file_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"2024-06-01 INFO started\n")
    with pytest.raises(DeadLetterFormatError, match="not a logdrain dead-letter file"):
        read(log)
    dl = DeadLetter(log)
    assert dl.bury([entry(1)]) == 0
    assert log.read_bytes() == b"2024-06-01 INFO started\n"
    short = tmp_path / "short.log"
    short.write_bytes(b"no newline")  # not a torn header either: left alone
    assert DeadLetter(short).bury([entry(1)]) == 0
    assert short.read_bytes() == b"no newline"
