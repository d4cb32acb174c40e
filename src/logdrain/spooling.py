"""The Drain's side of the disk spool (``spool_dir``): what the sender threads
write to :class:`logdrain.spool.Spool`, read back from it, and how each step
moves records in the ledger (``queue.RecordQueue``).

* Out: a batch not acknowledged within :data:`SPOOL_AFTER` seconds of being
  taken (a transient failure after that point, the outage hold, the close
  deadline) is written as its pieces; the records written move from
  ``in_flight`` to ``spooled``. What a put does not write (the cap, a failing
  disk) stays in memory and is retried there as without a spool.
* A hanging attempt: while a batch's request runs past that second (a
  collector that took the connection and does not answer), the keeper thread
  writes a copy of it as held rows (:meth:`Spool.put_held`; still
  ``in_flight`` in the ledger, not read back). If the attempt then fails, the
  copy becomes the batch's rows (``spooled``); if it ends otherwise, the copy
  is deleted. A SIGKILL meanwhile leaves the copy for the next start.
* Back: rows are taken oldest first and shipped as a batch; once every record
  in it has an outcome other than a transient failure (tallied ``retry``)
  or the close deadline, the rows are acknowledged (deleted) and their
  records move from ``spooled`` to those outcomes (``failed``: an error that
  escaped the sender, buried like any other: never retried forever);
  otherwise the rows are released and stay spooled.
* Takeover: parts of dead processes are adopted at the senders' start and
  every :data:`ADOPT_EVERY` seconds: their records come in as ``recovered``
  (and ``spooled``); damaged parts count in ``torn``, outside the identity.

Every call here runs on a sender thread, never on the caller's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from .mapping import Piece
from .queue import RecordQueue

if TYPE_CHECKING:  # sqlite3 loads only with a spool
    from .spool import RowId, Spool, Spooled

#: Seconds after a batch was taken from which a failed attempt sends it to disk.
SPOOL_AFTER = 1.0
#: Seconds between two looks for the parts of processes that died meanwhile.
ADOPT_EVERY = 60.0
#: Longest wait of an idle sender while the spool holds rows to read back.
IDLE_WAKE = 1.0


def to_spooled(piece: Piece, created: float) -> Spooled | None:
    """``piece`` as a spool row; None when its part is not bytes (a custom
    preset's framing that takes objects: such a piece stays in memory)."""
    count, data, _size = piece
    key: Any = None
    if isinstance(data, tuple) and len(data) == 2:
        key, data = data
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if isinstance(key, (bytearray, memoryview)):
        key = bytes(key)
    if type(data) is not bytes or (key is not None and type(key) is not bytes):
        return None
    if type(count) is not int or count < 1:
        return None
    from .spool import Spooled  # noqa: PLC0415 - loaded with the spool already

    return Spooled(created, key, data, count)


def to_piece(item: Spooled) -> Piece:
    """A spool row as the piece a sender frames (``(key, part)`` when keyed)."""
    if item.key is None:
        return (item.count, item.part, len(item.part))
    return (item.count, (item.key, item.part), len(item.key) + len(item.part))


def _chunks(items: list[Spooled], limit: int) -> list[list[Spooled]]:
    """``items`` in order, in groups of at most ``limit`` bytes (one item at least)."""
    out: list[list[Spooled]] = []
    group: list[Spooled] = []
    size = 0
    for item in items:
        cost = len(item.part) + (0 if item.key is None else len(item.key))
        if group and size + cost > limit:
            out.append(group)
            group, size = [], 0
        group.append(item)
        size += cost
    if group:
        out.append(group)
    return out


class Copy(NamedTuple):
    """The held rows a keeper wrote of a batch in flight: its leading ``pieces``
    (``records`` in all); ``rows`` empty when nothing was written."""

    pieces: int
    records: int
    rows: list[RowId]


NO_COPY = Copy(0, 0, [])


class Watch:
    """One attempt the keeper watches: copy ``pieces`` to disk once ``due``
    (``time.monotonic()``) passes while the attempt runs."""

    __slots__ = ("copy", "due", "pieces", "stage")

    def __init__(self, pieces: Sequence[Piece], due: float) -> None:
        self.pieces = pieces
        self.due = due
        self.stage = 0  # 0 waiting, 1 being written, 2 written (or tried)
        self.copy = NO_COPY


class SpoolLink:
    """One Drain's spool and the ledger moves that go with it; thread-safe."""

    def __init__(self, spool: Spool, queue: RecordQueue) -> None:
        self.spool = spool
        self._queue = queue
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        #: Held by a sender from its look at the room max_buffer_bytes leaves to
        #: its charge for the rows it took (so two senders cannot both use it).
        self.admission = threading.Lock()
        self._torn_seen = self.spool.torn  # a forked child: not the parent's
        self._adopt_at = 0.0  # first look: at the senders' start
        self._watched: list[Watch] = []  # at most one attempt per sender
        self._keeper_cond = threading.Condition(threading.Lock())
        self._keeper: threading.Thread | None = None  # started by the first watch
        self._wake_at = float("inf")
        self._closed = False

    reset_after_fork = _reset

    @property
    def directory(self) -> str:
        return self.spool.directory

    # -- out --

    def put(self, pieces: Sequence[Piece]) -> tuple[int, int]:
        """Write the leading pieces that fit; (pieces written, their records).
        Never raises."""
        copy = self._write(pieces, hold=False)
        return copy.pieces, copy.records

    def _write(self, pieces: Sequence[Piece], *, hold: bool) -> Copy:
        created = time.time()
        items: list[Spooled] = []
        for piece in pieces:
            item = to_spooled(piece, created)
            if item is None:
                break
            items.append(item)
        if not items:
            return NO_COPY
        written = 0
        rows: list[RowId] = []
        with self._lock:
            # Transactions of at most half of wal_bytes: the WAL stays within the reserve
            # the cap keeps for it (one transaction beyond its limit).
            for chunk in _chunks(items, self.spool.wal_bytes // 2):
                want = sum(item.count for item in chunk)
                if hold:
                    got, ids = self.spool.put_held(chunk)
                    rows += ids
                else:
                    got = self.spool.put(chunk)
                written += got
                if got < want:
                    break
            self._sync_torn()
        done = records = 0
        for item in items:
            if records + item.count > written:
                break
            records += item.count
            done += 1
        return Copy(done, records, rows)

    # -- a hanging attempt --

    def watch(self, pieces: Sequence[Piece], due: float) -> Watch:
        """Have the keeper copy ``pieces`` to disk if the attempt about to run is
        still running at ``due``; :meth:`unwatch` when it ends."""
        watch = Watch(pieces, due)
        cond = self._keeper_cond
        with cond:
            self._watched.append(watch)
            if self._keeper is None and not self._closed:
                self._keeper = threading.Thread(
                    target=self._keep, name="logdrain-spool-keeper", daemon=True
                )
                self._keeper.start()
            elif due < self._wake_at:
                cond.notify()
        return watch

    def unwatch(self, watch: Watch) -> Copy:
        """The attempt ended: the copy the keeper wrote of it (waiting for a write
        under way), :data:`NO_COPY` when none."""
        cond = self._keeper_cond
        with cond:
            if watch in self._watched:
                self._watched.remove(watch)
            while watch.stage == 1:
                cond.wait()
            watch.stage = 2
            return watch.copy

    def keep(self, copy: Copy) -> None:
        """The copy becomes its records' rows: read back like any other (the
        caller has settled those records ``spooled``)."""
        if copy.rows:
            self.spool.release(copy.rows)

    def discard(self, copy: Copy) -> None:
        """Delete a copy whose records were settled otherwise. A failed delete
        leaves the rows held: never read back by this process (the next start
        may deliver them again: at least once)."""
        if copy.rows:
            with self._lock:
                self.spool.ack(copy.rows, release_on_error=False)

    def _keep(self) -> None:
        """The keeper thread: writes the copies that come due."""
        cond = self._keeper_cond
        while True:
            with cond:
                watch = None
                while not self._closed:
                    now = time.monotonic()
                    waiting = [w for w in self._watched if w.stage == 0]
                    watch = min(waiting, key=lambda w: w.due, default=None)
                    if watch is not None and watch.due <= now:
                        watch.stage = 1
                        break
                    watch = None
                    self._wake_at = float("inf") if not waiting else min(w.due for w in waiting)
                    cond.wait(None if not waiting else self._wake_at - now)
                self._wake_at = float("inf")
                if watch is None:
                    self._keeper = None
                    return
            try:
                copy = self._write(watch.pieces, hold=True)
            except Exception:  # noqa: BLE001 - the keeper must survive anything
                copy = NO_COPY
            with cond:
                watch.copy = copy
                watch.stage = 2
                cond.notify_all()

    # -- back --

    def take(
        self, limit_records: int, limit_bytes: int, *, strict: bool = False
    ) -> list[tuple[RowId, Spooled]]:
        if self._queue.spooled <= 0:
            return []
        with self._lock:
            rows = self.spool.take(limit_records, limit_bytes, strict=strict)
            self._sync_torn()
        return rows

    def settle(self, rows: list[tuple[RowId, Spooled]], outcomes: dict[str, int]) -> bool:
        """The outcome of rows read back: acknowledge them when every record
        has a final outcome (True), else release them (they stay spooled)."""
        ids = [rid for rid, _ in rows]
        total = sum(item.count for _, item in rows)
        final = sum(n for what, n in outcomes.items() if what != "batches")
        if outcomes.get("retry") or outcomes.get("dropped_closed") or final != total:
            self.spool.release(ids)
            return False
        with self._lock:
            done = self.spool.ack(ids)
            if done == total:
                self._queue.unspool(outcomes)
            elif done:  # some parts' acknowledgements failed: those rows go again later
                self._queue.unspool({"delivered": done})
        return True

    def release(self, rows: list[tuple[RowId, Spooled]]) -> None:
        self.spool.release([rid for rid, _ in rows])

    # -- takeover --

    def adopt_if_due(self) -> None:
        """Take over dead processes' parts (at the start, then every ADOPT_EVERY s)."""
        now = time.monotonic()
        if now < self._adopt_at or not self._lock.acquire(blocking=False):
            return
        try:
            if now < self._adopt_at:
                return
            self._adopt_at = now + ADOPT_EVERY
            before = self.spool.torn
            found = self.spool.adopt()
            torn = self.spool.torn - before
            self._torn_seen = self.spool.torn
            if found or torn:
                self._queue.count_recovered(found, torn)
        finally:
            self._lock.release()

    def _sync_torn(self) -> None:
        """Records this process counted as spooled that the spool found damaged
        or removed under it (a part failing while read): lost, as ``failed``
        (and counted in ``torn``). Under ``_lock``."""
        lost = self.spool.torn - self._torn_seen
        if lost > 0:
            self._torn_seen = self.spool.torn
            self._queue.lose_spooled(lost)

    # -- the end --

    def close(self) -> None:
        with self._keeper_cond:
            self._closed = True
            self._keeper_cond.notify_all()
        with self._lock:
            self.spool.close()
