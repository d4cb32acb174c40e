"""The bounded record queue and the ledger that accounts for every record.

One lock guards the queue and every counter, so a ``snapshot()`` always
satisfies ``submitted == delivered + queued + in_flight + dropped + rejected
+ failed``. Records leave the queue in FIFO order (evicted or taken), which
lets ``flush`` wait for "everything submitted before now" with two integers
instead of tagging records.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Literal

from .stats import DrainStats

Outcome = Literal["delivered", "rejected", "failed", "dropped_closed"]


class Lot:
    """Records taken from the queue together; settled, possibly in parts, later."""

    __slots__ = ("abandoned", "first_seq", "remaining")

    def __init__(self, first_seq: int, size: int) -> None:
        self.first_seq = first_seq
        self.remaining = size
        self.abandoned = False


class RecordQueue:
    """A bounded FIFO with an overflow policy, plus the drain's counters."""

    def __init__(self, maxsize: int, overflow: str, block_timeout: float, wake_at: int) -> None:
        self._maxsize = maxsize
        self._overflow = overflow
        self._block_timeout = block_timeout
        self._wake_at = wake_at
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
        self.removed = 0  # left the queue (taken or evicted); appended = removed + queued
        self.refused = 0  # submitted but never queued; submitted = appended + refused
        self.delivered = 0
        self.in_flight = 0
        self.dropped_overflow = 0
        self.dropped_closed = 0
        self.rejected = 0
        self.failed = 0
        self.retries = 0
        self.batches = 0
        self.truncated = 0
        self.cut_at_deadline = 0  # of dropped_closed: queued or in flight when a close ran out

    reset_after_fork = _reset

    # -- producer side (the caller's thread: no I/O, no waiting unless "block") --

    def put(self, item: Any) -> bool:
        """Queue ``item``; False when it was refused (and counted)."""
        with self._lock:
            if self._closed:
                self.refused += 1
                self.dropped_closed += 1
                return False
            items = self._items
            if len(items) >= self._maxsize:
                if self._overflow == "drop_oldest":
                    items.popleft()
                    self.removed += 1
                    self.dropped_overflow += 1
                elif self._overflow == "drop_newest" or not self._wait_not_full():
                    self.refused += 1
                    if self._closed:  # closed while waiting for room under "block"
                        self.dropped_closed += 1
                    else:
                        self.dropped_overflow += 1
                    return False
            if not items:
                self._oldest_at = time.monotonic()  # starts the linger clock
                items.append(item)
                if self._takers_idle or (self._takers_waiting and self._urgent):
                    self._not_empty.notify()  # a sender waiting on an empty queue
                return True
            items.append(item)
            if self._takers_waiting and (len(items) >= self._wake_at or self._urgent):
                self._not_empty.notify()
            return True

    def _wait_not_full(self) -> bool:
        deadline = time.monotonic() + self._block_timeout
        while len(self._items) >= self._maxsize and not self._closed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._not_full.wait(remaining)
        return not self._closed

    # -- consumer side (the sender threads) --

    def take(self, max_items: int, linger: float | None) -> tuple[Lot | None, list[Any]]:
        """Take up to ``max_items`` records; with ``linger``, wait (once) for
        a reason to: a full batch, ``wake_at`` records queued, a flush, a
        close, or the oldest queued record being ``linger`` seconds old.
        Returns no records when there is no reason yet.

        The linger clock is the oldest record's age, shared by every sender,
        so several idle senders still make one request per ``linger``, not
        one each; and waiting while the queue is empty (even when urgent)
        means a sender never spins."""
        with self._lock:
            items = self._items
            if linger and not self._closed and not self._due(max_items, linger):
                idle = not items  # wait for the first record, however long: no wake-ups
                self._takers_waiting += 1
                self._takers_idle += idle
                try:
                    if idle:
                        self._not_empty.wait()
                    else:
                        self._not_empty.wait(
                            max(self._oldest_at + linger - time.monotonic(), 0.001)
                        )
                finally:
                    self._takers_waiting -= 1
                    self._takers_idle -= idle
                if not self._closed and not self._due(max_items, linger):
                    return None, []
            n = min(len(items), max_items)
            if n == 0:
                return None, []
            lot = Lot(self.removed, n)
            batch = [items.popleft() for _ in range(n)]
            self.removed += n
            self.in_flight += n
            self._open[id(lot)] = lot
            if self._takers_waiting and len(items) >= max_items:
                self._not_empty.notify()  # another full batch: wake another sender
            if self._overflow == "block":
                self._not_full.notify_all()
            return lot, batch

    def _due(self, max_items: int, linger: float) -> bool:
        n = len(self._items)
        if n == 0:
            return False
        if n >= max_items or self._urgent:
            return True
        return time.monotonic() - self._oldest_at >= linger

    def settle(self, lot: Lot, count: int, outcome: Outcome, *, batch_done: bool = True) -> None:
        """Move ``count`` records of ``lot`` from in-flight to ``outcome``
        (``batch_done``: this ends one request's story, for ``batches``)."""
        with self._lock:
            if not lot.abandoned:
                self.in_flight -= count
                setattr(self, outcome, getattr(self, outcome) + count)
                if outcome == "dropped_closed":  # its retries ran into the close deadline
                    self.cut_at_deadline += count
            elif outcome == "delivered":  # it made it after all: that is where it belongs
                self.dropped_closed -= count
                self.delivered += count
            # else: abandoned at the close deadline, counted dropped_closed, and it stays
            lot.remaining -= count
            self.batches += batch_done  # one request's final outcome
            if lot.remaining <= 0:
                self._open.pop(id(lot), None)
            if self._flush_waiters:
                self._settled.notify_all()

    def count_retry(self) -> None:
        with self._lock:
            self.retries += 1

    def count_truncated(self, n: int) -> None:
        with self._lock:
            self.truncated += n

    # -- flush / close --

    def mark(self) -> int:
        """A flush target: every record appended so far."""
        with self._lock:
            return self.removed + len(self._items)

    def done_up_to(self, target: int) -> bool:
        """True when every record up to ``target`` has a final outcome."""
        with self._lock:
            return self._done_up_to(target)

    def _done_up_to(self, target: int) -> bool:
        if self.removed < target:
            return False
        return all(lot.abandoned or lot.first_seq >= target for lot in self._open.values())

    def wait_done(self, target: int, deadline: float) -> bool:
        """Wait until every record up to ``target`` has a final outcome."""
        with self._lock:
            self._flush_waiters += 1
            try:
                while not self._done_up_to(target):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._settled.wait(min(remaining, 0.5))
                return True
            finally:
                self._flush_waiters -= 1

    def set_urgent(self, urgent: bool) -> None:
        """While urgent, the senders do not linger for full batches."""
        with self._lock:
            self._urgent = urgent
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
            self.removed += n
            self.dropped_closed += n
            for lot in self._open.values():
                if not lot.abandoned:
                    lot.abandoned = True
                    self.in_flight -= lot.remaining
                    self.dropped_closed += lot.remaining
                    n += lot.remaining
            self.cut_at_deadline += n
            self._settled.notify_all()
            return n

    def __len__(self) -> int:
        return len(self._items)

    def snapshot(self) -> DrainStats:
        with self._lock:
            return DrainStats(
                submitted=self.removed + len(self._items) + self.refused,
                delivered=self.delivered,
                queued=len(self._items),
                in_flight=self.in_flight,
                dropped_overflow=self.dropped_overflow,
                dropped_closed=self.dropped_closed,
                rejected=self.rejected,
                failed=self.failed,
                retries=self.retries,
                batches=self.batches,
                truncated=self.truncated,
            )
