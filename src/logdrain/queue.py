"""The bounded record queue: FIFO, overflow policy, the byte bound. The
ledger that accounts for every record is its base, :class:`~logdrain.ledger.Ledger`.

One lock guards the queue and every counter, so a ``snapshot()`` always
satisfies ``submitted == delivered + queued + in_flight + dropped + rejected
+ failed``. Records leave the queue in FIFO order (evicted or taken), which
lets ``flush`` wait for "everything submitted before now" with two integers
instead of tagging records.

Bytes are bounded too (``max_buffer_bytes``): every record is charged its
caller-side estimate (``sizing``), at least ``sizing.SMALL``. The records a
sender takes count from then on as in-flight bytes: a reservation while it
encodes them (:class:`Lot`), then what it holds once they are encoded
(:meth:`RecordQueue.hold`), until it lets go of them batch by batch
(:meth:`RecordQueue.release`). ``put`` admits a record only while queued plus
in-flight bytes stay within the bound, and the overflow policy applies at
whichever bound, records or bytes, is reached first; when the senders' share
grows, ``drop_oldest`` evicts the oldest queued records right away.

A small record (charged exactly ``SMALL``) costs the caller no more than
before: the byte bound is folded into one count limit, recomputed only when
something else changes (a large record, a take, a release), so ``put``
compares one length with one number, as it did.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from .ledger import Ledger, Lot, Outcome
from .sizing import SMALL

__all__ = ["UNBOUNDED", "Lot", "Outcome", "RecordQueue"]

#: No byte bound (a RecordQueue made without one, as in tests of the ledger).
UNBOUNDED = 1 << 62


class RecordQueue(Ledger):
    """A bounded FIFO with an overflow policy, plus the drain's counters."""

    def __init__(
        self,
        maxsize: int,
        overflow: str,
        block_timeout: float,
        wake_at: int,
        *,
        max_bytes: int = UNBOUNDED,
        take_bytes: int | None = None,
        body_bytes: int = 0,
    ) -> None:
        self._maxsize = maxsize
        self._overflow = overflow
        self._swaps = overflow == "drop_oldest"  # a full queue evicts its oldest record
        self._block_timeout = block_timeout
        self._wake_at = wake_at
        self._max_bytes = max_bytes
        #: The charge one take may hold (at least one record; it reserves
        #: about four times that while it is encoded): with ``max_bytes / (8 *
        #: concurrency)`` the senders hold about half the bound at most.
        self._take_bytes = max_bytes if take_bytes is None else take_bytes
        #: The largest request body (``batch_bytes``): what a take reserves for two.
        self._body_bytes = body_bytes
        #: Wake a sender once the queue holds this many bytes (half the bound).
        self._wake_bytes = max_bytes // 2
        self._reset()

    def _reset(self) -> None:
        """Fresh lock, empty queue, zero counters (also used in a forked child).

        The lock is reentrant: a signal handler runs on the main thread between
        two bytecodes, possibly inside ``put()``, and then calls ``flush()``.
        """
        self._lock = threading.RLock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._settled = threading.Condition(self._lock)
        self._items: deque[Any] = deque()
        self._open: dict[int, Lot] = {}
        self._takers_waiting = 0
        self._takers_idle = 0  # of those, waiting on an empty queue
        self._oldest_at = 0.0  # when the queue last went from empty to not empty
        self._flush_waiters = 0
        self._urgent = False
        self._closed = False
        self._reset_counters()
        # Bytes: a queued record is charged SMALL, and a large one its
        # charge; ``_large`` holds (sequence number, charge - SMALL) of the
        # queued large ones, oldest first, ``_large_bytes`` their sum.
        self._large: deque[tuple[int, int]] = deque()
        self._large_bytes = 0
        self.in_flight_bytes = 0  # held by the senders: taken, encoded, not yet let go
        self._limit = 0  # put() takes its slow path at this queue length (see _rethink)
        self._wake_len = 0  # put() wakes a waiting sender at this queue length
        self._wake_before = 0  # ... when it appends to a queue of this length
        self._rethink()

    reset_after_fork = _reset

    def _rethink(self) -> None:
        """Fold the byte bound, the wake-up rules, closing and the waiting
        senders into the two lengths ``put()`` compares with (under the lock,
        whenever one of them changes; never for a small record's put):

        * ``_limit``: below it, one more small record fits both bounds; at it
          (or when closed: -1) put() takes its slow path;
        * ``_wake_len``: at it, put() wakes a waiting sender (half the queue,
          or half the byte bound; 0 while urgent; never when no sender waits).
        """
        room = self._max_bytes - self._large_bytes - self.in_flight_bytes
        self._limit = -1 if self._closed else max(0, min(self._maxsize, room // SMALL))
        if not self._takers_waiting:
            self._wake_len = UNBOUNDED
        elif self._urgent:
            self._wake_len = 0
        else:
            by_bytes = max(1, (self._wake_bytes - self._large_bytes) // SMALL)
            self._wake_len = min(self._wake_at, by_bytes)
        self._wake_before = self._wake_len - 1

    def room_bytes(self) -> int:
        """Bytes the bound leaves: ``max_buffer_bytes`` less what is queued and in flight."""
        with self._lock:
            return max(0, self._max_bytes - self.queued_bytes - self.in_flight_bytes)

    # -- producer side (the caller's thread: no I/O, no waiting unless "block") --

    def put(self, item: Any, size: int = 0) -> bool:
        """Queue ``item``, charged ``size`` bytes (0: a small record, charged
        ``sizing.SMALL``); False when it was refused (and counted)."""
        lock = self._lock
        lock.acquire()  # not ``with``: cheaper, and this is every log call
        try:
            items = self._items
            n = len(items)
            if size or not 0 < n < self._limit:
                if size or not n or n != self._limit or not self._swaps:
                    return self._put_slow(item, size)
                large = self._large
                if large and large[0][0] == self.removed:
                    return self._put_slow(item, size)
                # drop_oldest at a full queue (an outage's every call): this
                # small record takes the oldest one's place, small too, and
                # both bounds stay as they were.
                items.popleft()
                self.removed += 1
                self.dropped_overflow += 1
            items.append(item)
            if n >= self._wake_before:
                self._not_empty.notify()  # half the queue (or the byte bound) filled
            return True
        finally:
            lock.release()

    def _put_slow(self, item: Any, size: int) -> bool:
        """put() for the first record, a large one, a full queue (either
        bound) or a closed one; under the lock."""
        items = self._items
        if self._closed:
            self.refused += 1
            self.dropped_closed += 1
            return False
        extra = max(0, size - SMALL)
        if not self._fits(extra):
            if extra + SMALL > self._max_bytes:  # larger than the whole bound: never fits
                return self._refuse()
            if self._overflow == "drop_oldest":
                if extra + SMALL + self.in_flight_bytes > self._max_bytes:
                    return self._refuse()  # what the senders hold leaves no room: wait for nothing
                while items and not self._fits(extra):
                    self._evict_oldest()
                self._rethink()
            elif self._overflow == "drop_newest" or not self._wait_fits(extra):
                if self._closed:  # closed while waiting for room under "block"
                    self.refused += 1
                    self.dropped_closed += 1
                    return False
                return self._refuse()
        first = not items
        if first:
            self._oldest_at = time.monotonic()  # starts the linger clock
        if extra:
            self._large.append((self.removed + len(items), extra))
            self._large_bytes += extra
            items.append(item)
            self._rethink()
        else:
            items.append(item)
        if (first and self._takers_idle) or len(items) >= self._wake_len:
            self._not_empty.notify()  # a sender waiting on an empty queue, or time to send
        return True

    def _fits(self, extra: int) -> bool:
        """One more record charged ``SMALL + extra`` fits both bounds."""
        n = len(self._items)
        if n >= self._maxsize:
            return False
        held = (n + 1) * SMALL + self._large_bytes + extra + self.in_flight_bytes
        return held <= self._max_bytes

    def _refuse(self) -> bool:
        self.refused += 1
        self.dropped_overflow += 1
        return False

    def _evict_oldest(self) -> None:
        self._items.popleft()
        large = self._large
        if large and large[0][0] == self.removed:
            self._large_bytes -= large.popleft()[1]
        self.removed += 1
        self.dropped_overflow += 1

    def _wait_fits(self, extra: int) -> bool:
        deadline = time.monotonic() + self._block_timeout
        while not self._fits(extra) and not self._closed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._not_full.wait(remaining)
        return not self._closed

    # -- consumer side (the sender threads) --

    def take(
        self, max_items: int, linger: float | None, idle_timeout: float | None = None
    ) -> tuple[Lot | None, list[Any]]:
        """Take up to ``max_items`` records; with ``linger``, wait (once) for
        a reason to: a full batch, ``wake_at`` records queued, a flush, a
        close, or the oldest queued record being ``linger`` seconds old.
        Returns no records when there is no reason yet.

        The linger clock is the oldest record's age, shared by every sender,
        so several idle senders still make one request per ``linger``, not
        one each; and waiting while the queue is empty (even when urgent)
        means a sender never spins; ``idle_timeout``: on an empty queue, wait at most
        that long (the spool's rows to read back)."""
        with self._lock:
            items = self._items
            if linger and not self._closed and not self._due(max_items, linger):
                idle = not items  # wait for the first record, however long: no wake-ups
                self._takers_waiting += 1
                self._takers_idle += idle
                self._rethink()
                try:
                    if idle:
                        self._not_empty.wait(idle_timeout)
                    else:
                        self._not_empty.wait(
                            max(self._oldest_at + linger - time.monotonic(), 0.001)
                        )
                finally:
                    self._takers_waiting -= 1
                    self._takers_idle -= idle
                    self._rethink()
                if not self._closed and not self._due(max_items, linger):
                    return None, []
            n = min(len(items), max_items)
            if n == 0:
                return None, []
            n, large, largest = self._take_count(n)
            lot = Lot(self.removed, n, n * SMALL + large, SMALL + largest, self._body_bytes)
            nbytes = lot.nbytes
            batch = [items.popleft() for _ in range(n)]
            self.removed += n
            self.in_flight += n
            self.in_flight_bytes += nbytes
            self._open[id(lot)] = lot
            self._enforce()
            self._rethink()
            if self._takers_waiting and (len(items) >= max_items or self._byte_due()):
                self._not_empty.notify()  # another full batch: wake another sender
            if self._overflow == "block":
                self._not_full.notify_all()
            return lot, batch

    def _take_count(self, n: int) -> tuple[int, int, int]:
        """How many of the first ``n`` queued records one take holds (within
        ``take_bytes``, at least one), the bytes above ``SMALL`` of the large
        ones among them (which leave ``_large``), and the largest of those."""
        budget = self._take_bytes
        count = min(n, max(1, budget // SMALL))
        large = self._large
        first = self.removed
        if not large or large[0][0] - first >= count:
            return count, 0, 0  # small records only: the usual case
        extra = 0
        largest = 0
        taken = 0
        last = -1  # position of the last large record taken
        for seq, more in large:
            pos = seq - first
            if pos >= count:
                break
            if pos and (pos + 1) * SMALL + extra + more > budget:
                count = pos  # this one starts the next take
                break
            extra += more
            largest = max(largest, more)
            taken += 1
            last = pos
        count = min(count, max(last + 1, (budget - extra) // SMALL))
        for _ in range(taken):
            large.popleft()
        self._large_bytes -= extra
        return count, extra, largest

    def _enforce(self) -> None:
        """Under drop_oldest, bring queued + in-flight bytes back within the
        bound after the senders' share grew (a take's reservation, a lot's
        encoded parts): the oldest queued records go, counted
        ``dropped_overflow``, as the next put would do. The other policies
        refuse new records until the senders let go."""
        if self._overflow != "drop_oldest":
            return
        items = self._items
        while items and self.queued_bytes + self.in_flight_bytes > self._max_bytes:
            self._evict_oldest()

    def _byte_due(self) -> bool:
        return self.queued_bytes >= self._wake_bytes

    def _due(self, max_items: int, linger: float) -> bool:
        n = len(self._items)
        if n == 0:
            return False
        if n >= max_items or self._urgent or self._byte_due():
            return True
        return time.monotonic() - self._oldest_at >= linger

    def hold(self, lot: Lot, parts: int, body: int) -> None:
        """``lot``'s records are encoded: ``parts`` bytes in all, the largest
        request body ``body`` bytes. From now on it is charged its parts, two
        bodies (framing one copies it, and a failed attempt's body lives on in
        its traceback until the next attempt) and its records' charge again:
        their memory is free once encoded, but the process keeps those pages
        until new records take them, which a full queue never does."""
        with self._lock:
            nbytes = lot.charge + max(0, parts) + 2 * max(0, body)
            self.in_flight_bytes = max(0, self.in_flight_bytes + nbytes - lot.nbytes)
            shrunk = nbytes < lot.nbytes
            lot.nbytes = nbytes
            if not shrunk:
                self._enforce()
            self._rethink()
            if shrunk and self._overflow == "block":
                self._not_full.notify_all()

    def release(self, lot: Lot, nbytes: int | None = None) -> None:
        """The sender let go of ``nbytes`` of ``lot``'s bytes (None: all it holds)."""
        with self._lock:
            nbytes = lot.nbytes if nbytes is None else max(0, min(nbytes, lot.nbytes))
            if not nbytes:
                return
            lot.nbytes -= nbytes
            self.in_flight_bytes = max(0, self.in_flight_bytes - nbytes)
            self._rethink()
            if self._overflow == "block":
                self._not_full.notify_all()

    # -- close --

    def set_urgent(self, urgent: bool) -> None:
        """While urgent, the senders do not linger for full batches."""
        with self._lock:
            self._urgent = urgent
            self._rethink()
            if urgent:
                self._not_empty.notify_all()

    def wake(self) -> None:
        with self._lock:
            self._not_empty.notify_all()
            self._settled.notify_all()

    def close(self) -> None:
        """Refuse further records; queued ones stay to be drained."""
        with self._lock:
            self._closed = True
            self._rethink()  # every put() now takes the slow path, which refuses
            self._not_empty.notify_all()
            self._not_full.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def abandon(self) -> int:
        """At a close deadline: count whatever is still queued or in flight as
        ``dropped_closed``; a late outcome of an in-flight lot corrects it."""
        with self._lock:
            n = len(self._items)
            self._items.clear()
            self._large.clear()
            self._large_bytes = 0
            self.removed += n
            self.dropped_closed += n
            for lot in self._open.values():
                if not lot.abandoned:
                    lot.abandoned = True
                    self.in_flight -= lot.remaining
                    self.dropped_closed += lot.remaining
                    n += lot.remaining
            self.cut_at_deadline += n
            self._rethink()
            self._settled.notify_all()
            return n

    def __len__(self) -> int:
        return len(self._items)
