"""The ledger: the counters that account for every record, and flush's wait.

One lock (the queue's) guards the queue and every counter, so a
``snapshot()`` always satisfies ``submitted (+ recovered) == delivered +
pending + lost``. Records leave the queue in FIFO order (evicted or taken),
which lets ``flush`` wait for "everything submitted before now" with two
integers instead of tagging records. :class:`Ledger` is the base of
:class:`~logdrain.queue.RecordQueue`, which owns the lock, the items and the
open lots; a :class:`Lot` is records taken together, settled later.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Literal

from .sizing import SMALL
from .stats import DrainStats

#: Copies of a record alive at once while a sender encodes and shortens it.
_ENCODING_COPIES = 4

Outcome = Literal[
    "delivered", "rejected", "failed", "dropped_closed", "expired", "spooled", "retry"
]  # "retry": only in the tally of rows read back from the spool (they stay there)


class Lot:
    """Records taken from the queue together; settled, possibly in parts, later."""

    __slots__ = ("abandoned", "charge", "disk", "first_seq", "largest", "nbytes", "remaining")

    def __init__(
        self, first_seq: int, size: int, charge: int = 0, largest: int = 0, body: int = 0
    ) -> None:
        self.first_seq = first_seq
        self.remaining = size
        self.abandoned = False
        #: A lot of rows read back from the spool: its outcomes are tallied
        #: here (the ledger moves when the rows are acknowledged); None: a take.
        self.disk: dict[str, int] | None = None
        self.charge = charge  # what its records were charged in the queue
        self.largest = largest  # the largest charge of one of them
        # In-flight bytes it holds (counted in the queue). Until it is
        # encoded: its records and their parts (twice its charge), and the
        # larger of what encoding needs besides (a few copies of one record
        # while it is shortened) and the two bodies hold() will count
        # (``body``: the largest a batch may take); so hold() seldom needs
        # more than was reserved.
        self.nbytes = 2 * charge + max(_ENCODING_COPIES * largest, 2 * min(charge, body))


class Ledger:
    """The counters and the moves between them; the state is the queue's."""

    _lock: threading.RLock
    _settled: threading.Condition
    _items: Any
    _open: dict[int, Lot]
    _flush_waiters: int
    _large_bytes: int
    in_flight_bytes: int

    def _reset_counters(self) -> None:
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
        self.expired = 0
        self.dead_lettered = 0  # of rejected and failed: written to the dead-letter file
        self.cut_at_deadline = 0  # of dropped_closed: queued or in flight when a close ran out
        self.spooled = 0  # on disk now (pending); from in flight, or recovered
        self.recovered = 0  # taken over from dead processes' spool parts (an inflow)
        self.torn = 0  # found damaged on disk (outside the identity)

    @property
    def queued_bytes(self) -> int:
        return len(self._items) * SMALL + self._large_bytes

    def settle(self, lot: Lot, count: int, outcome: Outcome, *, batch_done: bool = True) -> None:
        """Move ``count`` records of ``lot`` from in-flight to ``outcome``
        (``batch_done``: this ends one request's story, for ``batches``).
        ``spooled``: they are on disk now, still pending."""
        disk = lot.disk
        if disk is not None:  # read back from the spool: tallied until the rows are acknowledged
            disk[outcome] = disk.get(outcome, 0) + count
            disk["batches"] = disk.get("batches", 0) + batch_done
            lot.remaining -= count
            return
        with self._lock:
            if not lot.abandoned:
                self.in_flight -= count
                setattr(self, outcome, getattr(self, outcome) + count)
                if outcome == "dropped_closed":  # its retries ran into the close deadline
                    self.cut_at_deadline += count
            elif outcome in ("delivered", "spooled"):  # it made it after all: it belongs there
                self.dropped_closed -= count
                setattr(self, outcome, getattr(self, outcome) + count)
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

    def unspool(self, outcomes: dict[str, int]) -> None:
        """Spooled records read back and acknowledged: from ``spooled`` to
        their outcomes (``delivered``, ``rejected``, ...; ``batches``)."""
        with self._lock:
            for outcome, count in outcomes.items():
                if outcome == "batches":
                    self.batches += count
                elif count:
                    self.spooled -= count
                    setattr(self, outcome, getattr(self, outcome) + count)
            if self._flush_waiters:
                self._settled.notify_all()

    def count_recovered(self, records: int, torn: int) -> None:
        """Records taken over from dead processes' spool parts (now spooled
        here), and records found torn on disk."""
        with self._lock:
            self.recovered += records
            self.spooled += records
            self.torn += torn

    def lose_spooled(self, n: int) -> None:
        """Spooled records found damaged (or removed) on disk: lost, as ``failed``,
        and counted in ``torn`` too."""
        with self._lock:
            lost = max(0, min(n, self.spooled))
            self.spooled -= lost
            self.failed += lost
            self.torn += n
            if self._flush_waiters:
                self._settled.notify_all()

    def count_dead_lettered(self, n: int) -> None:
        with self._lock:
            self.dead_lettered += n

    # -- flush --

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
                queued_bytes=self.queued_bytes,
                in_flight_bytes=self.in_flight_bytes,
                expired=self.expired,
                dead_lettered=self.dead_lettered,
                spooled=self.spooled,
                recovered=self.recovered,
                torn=self.torn,
            )
