"""The spool store: :class:`Spool` (put, take, ack, release, adopt, the cap,
degrading to memory, fork safety).

The cap: ``max_bytes`` caps the directory, every process's parts; see
:mod:`._cap` for the running estimate it is checked against. A put that would
pass it writes the items that fit, in order, and returns their records; the
rest are the caller's (the Drain's overflow policy), not counted here.

Failures: ``put`` never raises. A disk that is full or unwritable, a file
that vanished, any SQLite error: the put writes nothing, its records count in
``failed``, ``degraded`` turns True and one line goes to stderr (the reporter's,
or ``sys.stderr``) naming the directory and the error (SQLite's, such as
"database or disk is full": it does not expose the errno). Puts during the
back-off (1 s, doubling to 60 s) return 0 without touching the disk; the first
put after it tries again, and one line says when the disk works again.

Fork: a child forgets the parent's parts without closing them (their
connections are kept, unused, for the child's life) and closes its copy of
their lock fds; its first put creates a part of its own.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterable, Sequence

from ..jsonsafe import describe
from ..report import Reporter, write_stderr
from ._cap import Cap
from ._dir import adopt_one, drop_temp, stems
from ._part import Part
from ._read import RowId, by_part, merge
from ._schema import FSYNC, Spooled, valid

MIN_BYTES = 1 << 20
_BACKOFF = (1.0, 60.0)
_INSTANCES: weakref.WeakSet[Spool] = weakref.WeakSet()


class Spool:
    """Records on disk in ``directory``, one part per process; thread-safe."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        max_bytes: int,
        *,
        fsync: str = "off",
        reporter: Reporter | None = None,
    ) -> None:
        if not isinstance(directory, (str, os.PathLike)) or not os.fspath(directory):
            raise ValueError(f"spool directory={directory!r}: give a directory path")
        if type(max_bytes) is not int or max_bytes < MIN_BYTES:
            raise ValueError(f"spool max_bytes={max_bytes!r}: give an int of {MIN_BYTES}+")
        if fsync not in FSYNC:
            raise ValueError(f"spool fsync={fsync!r}: give one of {', '.join(map(repr, FSYNC))}")
        self.directory = os.path.abspath(os.fspath(directory))
        self.max_bytes = max_bytes
        self.fsync = fsync
        #: Bytes a WAL may keep after a checkpoint (SQLite's ``journal_size_limit``).
        self.wal_bytes = min(max(max_bytes // 16, 64 * 1024), 4 << 20)
        self.last_error: str | None = None
        self._reporter = reporter
        self._spooled = self._recovered = self._torn = self._torn_files = self._failed = 0
        self._refused: set[str] = set()
        self._closed = False
        self._pid = os.getpid()
        self._lock = threading.RLock()
        self._own: Part | None = None
        self._adopted: dict[str, Part] = {}
        self._cap = Cap(self.directory, max_bytes, self.wal_bytes)
        self._degraded = False
        self._retry_at = 0.0
        self._backoff = _BACKOFF[0]
        _INSTANCES.add(self)

    # -- counters ---------------------------------------------------------------------------

    @property
    def spooled(self) -> int:
        """Records written to this process's own part."""
        return self._spooled

    @property
    def recovered(self) -> int:
        """Records found in the parts adopted from processes that are gone (an inflow)."""
        return self._recovered

    @property
    def torn(self) -> int:
        """Records lost in damaged parts (a part that cannot be counted counts 1)."""
        return self._torn

    @property
    def torn_files(self) -> int:
        """Damaged parts moved aside as ``*.corrupt``."""
        return self._torn_files

    @property
    def failed(self) -> int:
        """Records a put could not write (disk full or unwritable, SQLite errors)."""
        return self._failed

    @property
    def pending_records(self) -> int:
        """Records in the parts this process holds, taken or not, until acknowledged."""
        with self._lock:
            return sum(part.pending for part in self._parts())

    @property
    def bytes_on_disk(self) -> int:
        """The running estimate of the directory's size that the cap is checked against."""
        with self._lock:
            return self._cap.estimate(self._own_stem())

    @property
    def degraded(self) -> bool:
        """True from a failed write until one succeeds: records stay in memory."""
        return self._degraded

    # -- writing ----------------------------------------------------------------------------

    def put(self, items: Sequence[Spooled]) -> int:
        """Write ``items`` in one transaction; the records written. Never raises."""
        return self._put(items, hold=False)[0]

    def put_held(self, items: Sequence[Spooled]) -> tuple[int, list[RowId]]:
        """Write ``items`` as :meth:`put` does, as rows already taken (a copy of
        records still in flight: :meth:`take` does not hand them out until they are
        released; :meth:`ack` deletes them); the records written and their rows."""
        return self._put(items, hold=True)

    def _put(self, items: Sequence[Spooled], *, hold: bool) -> tuple[int, list[RowId]]:
        records = 0
        try:
            if not all(map(valid, items)):
                with self._lock:
                    self._failed += sum(
                        i.count for i in items if isinstance(getattr(i, "count", None), int)
                    )
                    self.last_error = f"spool {self.directory}: a put refused: not Spooled items"
                return 0, []
            records = sum(item.count for item in items)
            with self._lock:
                self._check_pid()
                if not items or self._closed:
                    self._failed += records if self._closed else 0
                    return 0, []
                if self._degraded and time.monotonic() < self._retry_at:
                    self._failed += records
                    return 0, []
                if self._cap.due:
                    self._check_own()
                fit, size = self._cap.fit(items, self._own_stem())
                rows: list[RowId] = []
                if fit:
                    if self._own is None:
                        os.makedirs(self.directory, mode=0o700, exist_ok=True)
                        self._own = Part.new(self.directory, self.fsync, self.wal_bytes)
                    stem = self._own.stem
                    ids = self._own.put(items[:fit], hold=hold)
                    rows = [RowId(stem, rid) for rid in ids] if hold else []
                self._cap.wrote(size)
                written = sum(item.count for item in items[:fit])
                self._spooled += written
                if self._degraded and fit:
                    self._degraded = False
                    self._backoff = _BACKOFF[0]
                    self._say(f"spool {self.directory}: writing to disk again")
                return written, rows
        except Exception as exc:  # noqa: BLE001 - put never raises
            self._degrade(records, exc)
            return 0, []

    def _check_own(self) -> None:
        own = self._own
        if own is not None and not os.path.exists(own.path):  # removed under this process
            self._own = None
            own.close(remove=False)
            self._torn += own.pending
            self._torn_files += 1
            self._say(f"spool: {own.path} was removed while in use: {own.pending} record(s) lost")

    def _own_stem(self) -> str | None:
        return self._own.stem if self._own is not None else None

    def _degrade(self, records: int, exc: BaseException) -> None:
        with self._lock:
            self._failed += records
            why = describe(exc)
            if isinstance(exc, sqlite3.Error):
                name = getattr(exc, "sqlite_errorname", None)
                why = f"{exc} ({name})" if name else str(exc)
            self.last_error = f"spool {self.directory}: {records} record(s) not written: {why}"
            self._retry_at = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, _BACKOFF[1])
            self._cap.scanned = None  # rescan when the disk works again
            if self._degraded:
                return
            self._degraded = True
        self._say(
            f"spool {self.directory}: cannot write to disk ({why}); records stay in memory, "
            f"retrying in {_BACKOFF[0]:g}-{_BACKOFF[1]:g} s"
        )

    # -- reading ----------------------------------------------------------------------------

    def take(
        self, limit_records: int, limit_bytes: int, *, strict: bool = False
    ) -> list[tuple[RowId, Spooled]]:
        """Rows not taken yet, oldest ``created`` first across the parts held, up to
        ``limit_records`` records and ``limit_bytes`` bytes (at least one row, unless
        ``strict``: then none when the oldest alone passes a limit). Taken
        rows are the caller's until :meth:`ack` or :meth:`release`; a crash releases
        them (they stay on disk). Never raises: a part that fails is set aside."""
        with self._lock:
            self._check_pid()
            heads: list[tuple[Part, list[tuple[int, Spooled]]]] = []
            for part in self._parts():
                try:
                    rows = part.fetch(max(limit_records, 1))
                except sqlite3.Error as exc:
                    self._set_aside(part, exc)
                    continue
                if rows:
                    heads.append((part, rows))
            return merge(heads, limit_records, limit_bytes, strict=strict)

    def ack(self, row_ids: Iterable[RowId], *, release_on_error: bool = True) -> int:
        """Delete delivered rows; the records in them. An adopted part left empty is
        removed. Never raises (a failure leaves the rows to be delivered again; with
        ``release_on_error=False`` it leaves them taken: a copy that must not be read
        back by this process, delivered again by a later one)."""
        with self._lock:
            self._check_pid()
            ids = by_part(row_ids)
            done = 0
            for part in self._parts():
                if part.stem not in ids:
                    continue
                try:
                    done += part.ack(ids[part.stem])
                except sqlite3.Error as exc:
                    self.last_error = f"spool {part.path}: acknowledgement not written: {exc}"
                    if release_on_error:
                        part.release(ids[part.stem])
                    continue
                if part is not self._own and part.rows == 0:
                    del self._adopted[part.stem]
                    part.close(remove=True)
            if done:
                self._cap.scanned = None
            return done

    def release(self, row_ids: Iterable[RowId]) -> None:
        """Taken rows back, to be taken again (oldest first)."""
        with self._lock:
            self._check_pid()
            ids = by_part(row_ids)
            for part in self._parts():
                part.release(ids.get(part.stem, ()))

    # -- takeover ---------------------------------------------------------------------------

    def adopt(self) -> int:
        """Take over the parts whose owner is gone (their lock is free); the records
        found, also added to ``recovered``. Damaged parts are moved aside and counted
        in ``torn``; a part of another version is left alone (one warning). Never raises."""
        found = 0
        with self._lock:
            self._check_pid()
            own = self._own.stem if self._own is not None else None
            for stem, kinds in sorted(stems(self.directory).items()):
                if stem == own or stem in self._adopted or stem in self._refused:
                    continue
                for kind in kinds:
                    if kind.endswith(".tmp"):
                        drop_temp(os.path.join(self.directory, stem + kind))
                if not kinds & {".sqlite3", ".lock"}:
                    continue
                got = adopt_one(self.directory, stem, self.fsync, self.wal_bytes)
                if got.part is not None:
                    self._adopted[stem] = got.part
                    found += got.part.pending
                if got.torn_file:
                    self._torn += 1 if got.torn is None else got.torn
                    self._torn_files += 1
                if got.refused:
                    self._refused.add(stem)
                    self._say(got.refused)
                self.last_error = got.error or self.last_error
                if got.message:
                    self._say(got.message)
            self._recovered += found
            self._cap.scanned = None
        return found

    def _set_aside(self, part: Part, exc: BaseException) -> None:
        """A part that failed while read: the own part degrades, an adopted one is damaged."""
        self.last_error = f"spool {part.path}: cannot read: {exc}"
        if part is self._own:
            return
        del self._adopted[part.stem]
        lost = part.pending
        part.close(remove=False)
        self._torn += lost
        self._torn_files += 1
        with contextlib.suppress(OSError):
            os.replace(part.path, part.path + ".corrupt")
        self._say(f"spool: {part.path} failed while read ({exc}): moved aside as .corrupt")

    # -- the end, fork ----------------------------------------------------------------------

    def close(self) -> None:
        """Close every part held; an empty one is removed, the others stay to be adopted."""
        with self._lock:
            self._check_pid()
            self._closed = True
            for part in self._parts():
                part.close(remove=part.rows == 0)
            self._own = None
            self._adopted.clear()

    def _parts(self) -> list[Part]:
        return [*self._adopted.values(), *([self._own] if self._own is not None else [])]

    def _say(self, message: str) -> None:
        if self._reporter is not None:
            self._reporter.warn("spool", message, force=True)
        else:
            write_stderr(f"logdrain: {message}")

    def _check_pid(self) -> None:
        if self._pid != os.getpid():  # forked without register_at_fork's hook
            self._reset(inherited=True)

    def _reset(self, *, inherited: bool = False) -> None:
        if inherited:
            for part in self._parts():
                part.abandon()
        self._pid = os.getpid()
        self._lock = threading.RLock()
        self._own = None
        self._adopted = {}
        self._cap = Cap(self.directory, self.max_bytes, self.wal_bytes)
        self._degraded = False
        self._retry_at = 0.0
        self._backoff = _BACKOFF[0]


def _after_fork() -> None:
    for spool in list(_INSTANCES):
        spool._reset(inherited=True)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
