"""One part of the spool: a database file and the lock that says who owns it.

Files: ``part-<pid>-<token>.sqlite3`` (with SQLite's ``-wal`` and ``-shm``) and
``part-<pid>-<token>.lock`` (empty) beside it, which carries the lock: ``flock``
on POSIX, ``msvcrt.locking`` on Windows (see :mod:`logdrain._files`). The lock
is not taken on the database itself: SQLite locks bytes of it (on Windows the
very byte ``msvcrt`` locks would use), and closing any fd on a file drops a
process's ``fcntl`` locks on it. A lock is held from the part's creation (the
lock file is locked under a temporary name, then renamed into place on POSIX)
until the part is closed or its process dies: a free lock means the owner is
gone, as the kernel drops it with the process, whatever pid comes next.

Taken rows are remembered in memory only: rows taken and not acknowledged when
a process dies stay in its file and are taken again by whoever adopts it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import sys
from collections.abc import Iterable, Sequence

from .._files import open_private, try_lock
from ._schema import Spooled, check, configure, connect, create, nbytes

#: Connections and fds a forked child inherited: kept, never closed (closing a
#: connection could checkpoint or remove the parent's files).
_ABANDONED: list[object] = []
_VACUUM_BYTES = 256 * 1024  # free pages given back to the file system past this


def names(directory: str, stem: str) -> tuple[str, str]:
    """The database and lock paths of the part ``stem``."""
    return os.path.join(directory, stem + ".sqlite3"), os.path.join(directory, stem + ".lock")


def _lock_new(lock_path: str) -> int:
    """Create ``lock_path`` already locked, so no one ever sees it free."""
    if sys.platform == "win32":  # an open file cannot be renamed there
        fd = open_private(lock_path, os.O_RDWR | os.O_CREAT | os.O_EXCL)
        try_lock(fd)
        return fd
    temp = f"{lock_path}.{secrets.token_hex(4)}.tmp"
    fd = open_private(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL)
    try:
        try_lock(fd)  # a new file: free
        os.rename(temp, lock_path)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.remove(temp)
        raise
    return fd


class Part:
    """A part this process owns (its own, or one adopted from a dead process)."""

    def __init__(self, path: str, lock_path: str, lock_fd: int, conn: sqlite3.Connection) -> None:
        self.path = path
        self.lock_path = lock_path
        self.stem = os.path.basename(path)[: -len(".sqlite3")]
        self._lock_fd: int | None = lock_fd
        self._conn: sqlite3.Connection | None = conn
        self._taken: dict[int, int] = {}  # row id -> records in it
        self._cursor = 0  # every row up to this id was taken (or acknowledged)
        row = conn.execute("SELECT count(*), coalesce(sum(count), 0) FROM records").fetchone()
        self.rows, self.pending = int(row[0]), int(row[1])

    # -- opening ----------------------------------------------------------------------------

    @classmethod
    def new(cls, directory: str, fsync: str, wal_bytes: int) -> Part:
        """This process's own part, created with its lock held."""
        stem = f"part-{os.getpid()}-{secrets.token_hex(6)}"
        path, lock_path = names(directory, stem)
        lock_fd = _lock_new(lock_path)
        try:
            conn = create(path, fsync, wal_bytes)
        except BaseException:
            _remove_quietly(path, lock_path)
            os.close(lock_fd)
            raise
        return cls(path, lock_path, lock_fd, conn)

    @classmethod
    def lock_dead(cls, directory: str, stem: str) -> int | None:
        """The lock of ``stem`` when its owner is gone; None while it lives (or
        when the part was removed meanwhile)."""
        lock_path = names(directory, stem)[1]
        try:
            fd = open_private(lock_path, os.O_RDWR | os.O_CREAT)
        except FileNotFoundError:
            return None
        try:
            if try_lock(fd) and os.path.samestat(os.fstat(fd), os.stat(lock_path)):
                return fd
        except FileNotFoundError:  # removed by its adopter between open and stat
            pass
        os.close(fd)
        return None

    @classmethod
    def adopt(
        cls, directory: str, stem: str, lock_fd: int, fsync: str, wal_bytes: int
    ) -> Part | None:
        """Open the part ``stem`` whose lock ``lock_fd`` is now held; None (and
        its files removed) when it holds no schema. Raises SpoolFormatError,
        CorruptPart, sqlite3.Error, OSError."""
        path, lock_path = names(directory, stem)
        conn = connect(path)
        try:
            if not check(conn, path):  # read only: a part of another version stays untouched
                conn.close()
                _remove_quietly(path, lock_path)
                os.close(lock_fd)
                return None
            configure(conn, fsync, wal_bytes)
            return cls(path, lock_path, lock_fd, conn)
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
            raise

    # -- rows -------------------------------------------------------------------------------

    def put(self, items: Sequence[Spooled], *, hold: bool = False) -> list[int]:
        """Write ``items`` in one transaction (all or none); their row ids. ``hold``:
        the rows are taken at once (not handed out until released; a crash frees them)."""
        conn = self._db()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT INTO records (created, key, part, count, nbytes) VALUES (?, ?, ?, ?, ?)",
                [(i.created, i.key, i.part, i.count, nbytes(i)) for i in items],
            )
            # AUTOINCREMENT within one write transaction: the ids are consecutive.
            last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        self.rows += len(items)
        self.pending += sum(i.count for i in items)
        ids = list(range(last - len(items) + 1, last + 1))
        if hold:  # taken, without moving the cursor past rows not taken yet
            for rid, item in zip(ids, items, strict=True):
                self._taken[rid] = item.count
        return ids

    def fetch(self, limit: int) -> list[tuple[int, Spooled]]:
        """Up to ``limit`` rows not taken yet, in the order written."""
        rows = self._db().execute(
            "SELECT id, created, key, part, count FROM records WHERE id > ? ORDER BY id LIMIT ?",
            (self._cursor, limit + len(self._taken)),
        )
        taken, make = self._taken, Spooled._make
        return [(row[0], make(row[1:])) for row in rows if row[0] not in taken][:limit]

    def taken(self, rows: Iterable[tuple[int, Spooled]]) -> None:
        """Mark rows (a prefix of what :meth:`fetch` gave) as taken."""
        for rid, item in rows:
            self._taken[rid] = item.count
            self._cursor = max(self._cursor, rid)

    def ack(self, ids: Iterable[int]) -> int:
        """Delete taken rows; the records in them."""
        mine = [rid for rid in set(ids) if rid in self._taken]
        if not mine:
            return 0
        conn = self._db()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("DELETE FROM records WHERE id BETWEEN ? AND ?", _runs(mine))
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        records = sum(self._taken.pop(rid) for rid in mine)
        self.rows -= len(mine)
        self.pending -= records
        free, size = (
            conn.execute(f"PRAGMA {name}").fetchone()[0] for name in ("freelist_count", "page_size")
        )
        if free * size > _VACUUM_BYTES or (self.rows == 0 and free):
            conn.executescript("PRAGMA incremental_vacuum;")  # every page (execute: one)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()  # the file shrinks now
        return records

    def release(self, ids: Iterable[int]) -> None:
        """Taken rows back to be taken again, in their order."""
        back = [rid for rid in ids if self._taken.pop(rid, None) is not None]
        if back:
            self._cursor = min(self._cursor, min(back) - 1)

    # -- the end ----------------------------------------------------------------------------

    def close(self, *, remove: bool) -> None:
        """Close the database and give up the lock; ``remove`` the files first."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        fd, self._lock_fd = self._lock_fd, None
        if remove:
            if sys.platform == "win32" and fd is not None:  # an open file cannot be removed
                os.close(fd)
                fd = None
            _remove_quietly(self.path, self.lock_path)  # the lock last, while still held
        if fd is not None:
            os.close(fd)

    def abandon(self) -> None:
        """In a forked child: forget the parent's connection and lock, touching neither
        (the inherited lock fd is closed: an unlock would free the parent's lock)."""
        if self._conn is not None:
            _ABANDONED.append(self._conn)
        self._conn = None
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.ProgrammingError(f"{self.path}: closed")
        return self._conn


def _runs(ids: list[int]) -> list[tuple[int, int]]:
    """Consecutive ids as (first, last) runs: whole runs were taken, so deleting
    the range deletes those rows only."""
    ids.sort()
    runs: list[tuple[int, int]] = []
    first = last = ids[0]
    for rid in ids[1:]:
        if rid != last + 1:
            runs.append((first, last))
            first = rid
        last = rid
    runs.append((first, last))
    return runs


def _remove_quietly(path: str, lock_path: str) -> None:
    for name in (path, path + "-wal", path + "-shm", path + "-journal", lock_path):
        with contextlib.suppress(FileNotFoundError):
            os.remove(name)
