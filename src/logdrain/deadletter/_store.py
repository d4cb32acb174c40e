"""The dead-letter store: :class:`DeadLetter` (bury, rotation, the size cap) and
the :class:`Claim` of a part for replay.

Files: ``path`` is live; when an entry would take it past ``max_bytes / PARTS``
it becomes ``path.<seq>`` (lowest seq, oldest) and the oldest parts are removed,
their entries counted in ``removed``, until a full live file fits: all files stay
within ``max_bytes`` plus one entry larger than a part. ``path.lock`` (empty,
kept) carries the lock.

Locking: a ``threading.Lock`` in the process, ``flock`` on ``path.lock`` between
processes, around each append, rotation and claim; given up after
``lock_timeout`` (the entries count as failed: a stuck process must not stall
the senders). An entry is one ``os.write`` on an ``O_APPEND`` fd kept open;
under the lock the writer checks that ``path`` still names its file (another
process may have rotated or claimed it), else reopens. A torn last line (a
writer killed, the disk full) is ended before the next entry, so it spoils only
itself; readers skip and count it. A forked child opens fds of its own.

Claims: ``claim()`` renames the oldest part (or the live file, when there is no
part) to ``path.<seq>.claim-<pid>`` and locks it while the claim lives. A claim
whose lock is free was left by a process that is gone (pids are reused, locks
do not outlive a process): the next ``claim()`` puts it back first, so a crash
mid-replay loses nothing and repeats at most its claim (at-least-once).

Windows (untested): an open file cannot be renamed, so a writer closes its file
after each ``bury`` and a rotation fails (entries counted) while a reader holds
the live file. Counters are per instance: each process counts what it did.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator

from .._files import open_private, pread, try_lock, unlock, write_all
from ..errors import ConfigError
from ..jsonsafe import describe
from ._format import Buried, count_entries, entry_line, header_end, read

PARTS = 4  # the live file is rotated at max_bytes / PARTS
MIN_BYTES = 4096
_INSTANCES: weakref.WeakSet[DeadLetter] = weakref.WeakSet()


class Claim:
    """Entries taken out of the live set for replay; settle with :meth:`done` or
    :meth:`release`. ``skipped`` counts the lines of the file that were not entries.
    Replay that delivered only some buries the others again, then calls ``done``."""

    def __init__(self, owner: DeadLetter, path: str, seq: int, fd: int) -> None:
        self.path = path
        self.seq = seq
        self.entries: list[Buried] = []
        self.skipped = 0
        self._owner = owner
        self._fd: int | None = fd

    def done(self) -> None:
        """Remove the claim: every entry was delivered, or buried again."""
        with self._owner._locked():
            self._close()
            os.remove(self.path)

    def release(self) -> None:
        """Put the entries back untouched, the oldest again."""
        owner = self._owner
        with owner._locked():
            self._close()
            os.rename(self.path, owner._part(self.seq))
            owner._cap(reserve=os.stat(owner.path).st_size if os.path.exists(owner.path) else 0)

    def _close(self) -> None:
        if self._fd is None:
            raise RuntimeError(f"{self.path}: this claim was settled already")
        fd, self._fd = self._fd, None
        os.close(fd)  # and with it the claim's lock: the main lock keeps others out


class DeadLetter:
    """Appends entries to the dead-letter file at ``path``; thread- and process-safe."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        max_bytes: int = 64 * 2**20,
        *,
        redact: Callable[[str], str] = str,
        lock_timeout: float = 10.0,
    ) -> None:
        if max_bytes < MIN_BYTES:
            raise ConfigError("dead_letter", f"max_bytes={max_bytes} is too small", "give 4096+")
        self.path = os.path.abspath(os.fspath(path))
        self.max_bytes = max_bytes
        self.part_bytes = max_bytes // PARTS
        self.last_error: str | None = None  # the latest failure, for the caller to print once
        self._redact = redact
        self._lock_timeout = lock_timeout
        self._dir, base = os.path.split(self.path)
        self._names = re.compile(re.escape(base) + r"\.(\d+)(?:\.claim-(\d+))?")
        self._removed = self._failed = self._size = self._head_end = 0
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._reset(inherited=False)
        _INSTANCES.add(self)

    @property
    def removed(self) -> int:
        """Entries lost to the size cap (in the parts this instance removed)."""
        return self._removed

    @property
    def failed(self) -> int:
        """Entries that could not be written (disk full, permissions, lock timeout)."""
        return self._failed

    def bury(self, entries: Iterable[Buried]) -> int:
        """Append ``entries``; how many were written. Never raises: a failure is
        counted in ``failed`` and described in ``last_error``."""
        lines: list[bytes] = []
        written = 0
        try:
            for entry in entries:
                try:
                    lines.append(entry_line(entry, self._redact))
                except Exception as exc:  # noqa: BLE001 - a hostile entry, or the redactor failed
                    self._fail(1, f"an entry could not be encoded: {describe(exc)}")
            if not lines:
                return 0
            with self._locked():
                fd = self._live()
                for line in lines:
                    if self._size > self._head_end and self._size + len(line) > self.part_bytes:
                        fd = self._rotate()
                    write_all(fd, line)
                    self._size += len(line)
                    written += 1
        except Exception as exc:  # noqa: BLE001 - bury never raises
            self._fail(len(lines) - written, describe(exc))
        return written

    def claim(self) -> Claim | None:
        """Take the oldest part (or the live file) out of the live set; None when
        nothing is buried. Claims left by a process that is gone are put back
        first. Raises OSError, TimeoutError, DeadLetterFormatError."""
        with self._locked():
            parts, claims = self._scan()
            for seq, name in sorted(claims.items()):
                if self._reclaim(name, self._part(seq)):
                    parts[seq] = self._part(seq)
            if parts:
                seq = min(parts)
                source = parts[seq]
            elif os.path.exists(self.path) and count_entries(self.path):
                seq, source = max(claims, default=0) + 1, self.path
            else:
                return None
            name = f"{self._part(seq)}.claim-{os.getpid()}"
            os.rename(source, name)
            fd = open_private(name, os.O_RDWR)
            try_lock(fd)  # free: the file is new and the main lock is held
            claim = Claim(self, name, seq, fd)
        try:  # outside the main lock: the file is ours now
            reader = read(name)
            claim.entries = list(reader)
            claim.skipped = reader.skipped
        except BaseException:
            claim.release()  # as a part: a new live file may stand at ``path`` now
            raise
        return claim

    def reclaim(self) -> int:
        """Put back the claims left by processes that are gone (a replay that
        crashed): how many. :meth:`claim` does it too, first."""
        with self._locked():
            claims = self._scan()[1]
            return sum(self._reclaim(name, self._part(seq)) for seq, name in sorted(claims.items()))

    def paths(self) -> list[str]:
        """The files of the live set, oldest first (claims are out of it)."""
        parts = self._scan()[0]
        return [parts[seq] for seq in sorted(parts)] + [self.path] * os.path.exists(self.path)

    def close(self) -> None:
        with self._lock:
            self._close_live()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    # -- under the lock ---------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        deadline = time.monotonic() + self._lock_timeout
        if not self._lock.acquire(timeout=self._lock_timeout):
            raise TimeoutError(f"{self.path}: busy in this process for {self._lock_timeout} s")
        try:
            if self._lock_fd is None:
                self._lock_fd = open_private(self.path + ".lock", os.O_RDWR | os.O_CREAT)
            pause = 0.0001
            while not try_lock(self._lock_fd):
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"{self.path}.lock held for over {self._lock_timeout} s")
                time.sleep(pause)
                pause = min(pause * 2, 0.01)
            try:
                yield
            finally:
                if sys.platform == "win32":
                    self._close_live()  # so that another process can rename it
                unlock(self._lock_fd)
        finally:
            self._lock.release()

    def _live(self) -> int:
        """An fd on the file ``path`` names now, with a header and a whole last line."""
        fd = self._fd
        if fd is not None:
            try:
                if not os.path.samestat(os.stat(self.path), os.fstat(fd)):
                    fd = None  # rotated or claimed by another process
            except FileNotFoundError:
                fd = None
            if fd is None:
                self._close_live()
        if fd is None:
            fd = open_private(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
            try:
                self._head_end = header_end(fd, self.path)
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
        self._size = os.fstat(fd).st_size
        if self._size > self._head_end and pread(fd, 1, self._size - 1) != b"\n":
            write_all(fd, b"\n")  # a torn line: it spoils only itself
            self._size += 1
        return fd

    def _rotate(self) -> int:
        parts, claims = self._scan()
        os.rename(self.path, self._part(max([*parts, *claims], default=0) + 1))
        self._close_live()
        self._cap(reserve=self.part_bytes)
        return self._live()

    def _cap(self, reserve: int) -> None:
        """Remove the oldest parts until they leave ``reserve`` bytes under the cap."""
        parts = self._scan()[0]
        sizes = {seq: os.stat(name).st_size for seq, name in parts.items()}
        total = sum(sizes.values())
        for seq in sorted(parts):
            if total + reserve <= self.max_bytes:
                break
            count = count_entries(parts[seq])
            os.remove(parts[seq])
            self._removed += count
            total -= sizes[seq]

    def _scan(self) -> tuple[dict[int, str], dict[int, str]]:
        """The parts and the claims, by seq."""
        parts: dict[int, str] = {}
        claims: dict[int, str] = {}
        for name in os.listdir(self._dir):
            if match := self._names.fullmatch(name):
                (claims if match[2] else parts)[int(match[1])] = os.path.join(self._dir, name)
        return parts, claims

    def _reclaim(self, name: str, part: str) -> bool:
        """Put back a claim whose owner is gone; False while the owner lives."""
        try:
            fd = open_private(name, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            if not try_lock(fd):
                return False
        finally:
            os.close(fd)
        os.rename(name, part)
        return True

    def _part(self, seq: int) -> str:
        return f"{self.path}.{seq:06d}"

    def _close_live(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _fail(self, count: int, why: str) -> None:
        with self._count_lock:
            self._failed += count
            try:
                self.last_error = self._redact(f"dead letter {self.path}: {count} lost: {why}")
            except Exception:  # noqa: BLE001 - the redactor itself failed
                self.last_error = f"dead letter {self.path}: {count} lost (redactor failed)"

    def _reset(self, *, inherited: bool) -> None:
        """Fresh locks and no fd (in a forked child too: it must have its own)."""
        if inherited:
            self._close_live()
            if self._lock_fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._lock_fd)
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._lock_fd = None
        self._fd = None


def _after_fork() -> None:
    for dead_letter in list(_INSTANCES):
        dead_letter._reset(inherited=True)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
