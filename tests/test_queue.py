"""Property tests of RecordQueue, the bounded FIFO and ledger behind every Drain.

A small model runs alongside the real queue through random sequences of
put / take / settle / close / abandon; after every step the queue must agree
with the model and the accounting identity must hold. No network, no threads
except where a waiter is the point of the test.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logdrain.queue import Lot, RecordQueue

pytestmark = pytest.mark.timeout(120)

OUTCOMES = ("delivered", "rejected", "failed", "dropped_closed")

PROPERTY = settings(
    max_examples=200,
    deadline=None,
    database=None,  # the checkout is shared: write no .hypothesis directory
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # the autouse env fixture
)

# One step: (op, a, b). put: a is unused; take: a = max_items; settle: a picks an open
# lot, b picks the count and the outcome; close / abandon / check_done: a picks a mark.
OPS = st.lists(
    st.tuples(
        st.sampled_from(
            ["put"] * 6 + ["take"] * 3 + ["settle"] * 3 + ["check_done", "close", "abandon"]
        ),
        st.integers(min_value=0, max_value=1000),
        st.integers(min_value=0, max_value=1000),
    ),
    max_size=80,
)


@dataclass
class OpenLot:
    lot: Lot
    seqs: list[int]
    remaining: int
    abandoned: bool = False


@dataclass
class Model:
    """What the queue should hold and count, computed the obvious way."""

    maxsize: int
    policy: str
    queue: deque[int] = field(default_factory=deque)
    lots: list[OpenLot] = field(default_factory=list)
    next_seq: int = 0
    closed: bool = False
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("submitted", "delivered", "dropped_overflow", "dropped_closed", "rejected", "failed"),
            0,
        )
    )
    settled_requests: int = 0
    evicted: list[int] = field(default_factory=list)

    def in_flight(self) -> int:
        return sum(o.remaining for o in self.lots if not o.abandoned)

    def done_up_to(self, mark: int) -> bool:
        """Every record appended before ``mark`` has left the queue and every lot
        holding one of them has a final outcome (or was abandoned)."""
        if any(seq < mark for seq in self.queue):
            return False
        return all(o.abandoned or o.remaining == 0 or o.seqs[0] >= mark for o in self.lots)


def check(q: RecordQueue, m: Model) -> None:
    snap = q.snapshot()
    assert snap.balanced, snap
    assert snap.queued == len(m.queue) == len(q)
    assert snap.in_flight == m.in_flight()
    for name, value in m.counts.items():
        assert getattr(snap, name) == value, (name, snap)
    assert snap.batches == m.settled_requests
    assert snap.submitted == (
        snap.delivered
        + snap.queued
        + snap.in_flight
        + snap.dropped_overflow
        + snap.dropped_closed
        + snap.rejected
        + snap.failed
    )


def run(maxsize: int, policy: str, ops: list[tuple[str, int, int]]) -> tuple[RecordQueue, Model]:
    q = RecordQueue(maxsize, policy, 0.0, 1)
    m = Model(maxsize, policy)
    marks: list[int] = [0]
    past = time.monotonic() - 1.0
    for op, a, b in ops:
        if op == "put":
            seq = m.next_seq
            accepted = q.put(seq)
            m.counts["submitted"] += 1
            if m.closed:
                assert accepted is False
                m.counts["dropped_closed"] += 1
            elif len(m.queue) < maxsize:
                assert accepted is True
                m.queue.append(seq)
                m.next_seq += 1
            elif policy == "drop_oldest":
                assert accepted is True
                m.evicted.append(m.queue.popleft())
                m.queue.append(seq)
                m.next_seq += 1
                m.counts["dropped_overflow"] += 1
            else:  # drop_newest, or block with block_timeout=0
                assert accepted is False
                m.counts["dropped_overflow"] += 1
            marks.append(q.mark())
        elif op == "take":
            want = a % (maxsize + 2) + 1
            lot, items = q.take(want, None)
            expected = [m.queue.popleft() for _ in range(min(want, len(m.queue)))]
            assert items == expected  # FIFO, oldest first
            if expected:
                assert lot is not None
                m.lots.append(OpenLot(lot, expected, len(expected)))
            else:
                assert lot is None
        elif op == "settle":
            open_lots = [o for o in m.lots if o.remaining > 0]
            if not open_lots:
                continue
            target = open_lots[a % len(open_lots)]
            count = b % target.remaining + 1
            outcome = OUTCOMES[b % len(OUTCOMES)]
            q.settle(target.lot, count, outcome)  # type: ignore[arg-type]
            # An abandoned lot stays dropped_closed, unless it arrived after all.
            if not target.abandoned:
                m.counts[outcome] += count
            elif outcome == "delivered":
                m.counts["dropped_closed"] -= count
                m.counts[outcome] += count
            target.remaining -= count
            m.settled_requests += 1  # every settle is one request's final outcome
        elif op == "close":
            q.close()
            m.closed = True
        elif op == "abandon":
            n = q.abandon()
            expected_n = len(m.queue) + m.in_flight()
            assert n == expected_n
            m.counts["dropped_closed"] += expected_n
            m.queue.clear()
            for o in m.lots:
                o.abandoned = True
        elif op == "check_done":
            mark = marks[a % len(marks)]
            assert q.wait_done(mark, past) is m.done_up_to(mark)
        check(q, m)
        # flush target logic: a deadline in the past answers at once, and correctly.
        for mark in (marks[-1], marks[len(marks) // 2], 0):
            assert q.wait_done(mark, past) is m.done_up_to(mark)
    return q, m


@PROPERTY
@given(maxsize=st.integers(min_value=1, max_value=12), ops=OPS)
def test_drop_oldest_keeps_newest_in_fifo_order(maxsize: int, ops: list[Any]) -> None:
    """drop_oldest keeps exactly the newest maxsize records, FIFO, counting every eviction;
    the ledger balances and flush targets are right after every operation."""
    q, m = run(maxsize, "drop_oldest", ops)
    assert q.snapshot().dropped_overflow >= len(m.evicted)
    # Draining what is left yields the model's queue, oldest first.
    _, rest = q.take(maxsize + 1, None)
    assert rest == list(m.queue)
    assert len(rest) <= maxsize


@PROPERTY
@given(
    maxsize=st.integers(min_value=1, max_value=12),
    policy=st.sampled_from(["drop_newest", "block"]),
    ops=OPS,
)
def test_refusing_policies_keep_oldest(maxsize: int, policy: str, ops: list[Any]) -> None:
    """drop_newest and block (timeout 0) refuse new records when full; the ledger balances."""
    q, m = run(maxsize, policy, ops)
    _, rest = q.take(maxsize + 1, None)
    assert rest == list(m.queue)


@PROPERTY
@given(maxsize=st.integers(min_value=1, max_value=20), n=st.integers(min_value=0, max_value=60))
def test_drop_oldest_puts_only(maxsize: int, n: int) -> None:
    """After n puts into a drop_oldest queue it holds the last min(n, maxsize) in order."""
    q = RecordQueue(maxsize, "drop_oldest", 0.0, 1)
    for i in range(n):
        assert q.put(i) is True
    snap = q.snapshot()
    assert snap.dropped_overflow == max(0, n - maxsize)
    assert snap.balanced
    _, items = q.take(maxsize, None)
    assert items == list(range(max(0, n - maxsize), n))


def test_wait_done_only_after_every_record_up_to_mark_is_settled() -> None:
    """wait_done(mark) is False while any earlier record is queued or in flight, ignores
    later records, and wakes a waiter as soon as the last earlier lot settles."""
    q = RecordQueue(100, "drop_oldest", 0.0, 1)
    past = time.monotonic() - 1.0
    for i in range(6):
        q.put(i)
    mark = q.mark()
    q.put(6)  # after the mark: must not hold the flush back
    first, items = q.take(3, None)
    assert items == [0, 1, 2]
    assert q.wait_done(mark, past) is False  # 3..5 still queued
    second, items = q.take(3, None)
    assert items == [3, 4, 5]
    assert first is not None and second is not None
    q.settle(first, 3, "delivered")
    q.settle(second, 2, "failed")
    assert q.wait_done(mark, past) is False  # one record of the second lot in flight

    result: list[bool] = []
    waiter = threading.Thread(
        target=lambda: result.append(q.wait_done(mark, time.monotonic() + 30))
    )
    waiter.start()
    try:
        q.settle(second, 1, "rejected")
    finally:
        waiter.join(30)
    assert result == [True]
    assert q.wait_done(mark, past) is True
    assert q.wait_done(q.mark(), past) is False  # record 6 is still queued
    snap = q.snapshot()
    assert (snap.delivered, snap.failed, snap.rejected, snap.queued) == (3, 2, 1, 1)
    assert snap.balanced


def test_wait_done_with_past_deadline_returns_at_once() -> None:
    """A deadline in the past never waits: it reports the current state."""
    q = RecordQueue(10, "drop_oldest", 0.0, 1)
    q.put("x")
    started = time.monotonic()
    assert q.wait_done(q.mark(), started - 5) is False
    assert q.wait_done(0, started - 5) is True


def test_abandoned_lot_settled_late_stays_balanced() -> None:
    """A lot abandoned at a close deadline and settled afterwards is counted once."""
    q = RecordQueue(10, "drop_oldest", 0.0, 1)
    for i in range(5):
        q.put(i)
    lot, _ = q.take(3, None)
    assert lot is not None
    q.close()
    assert q.put(99) is False
    assert q.abandon() == 5
    snap = q.snapshot()
    assert (snap.dropped_closed, snap.in_flight, snap.queued) == (6, 0, 0)
    assert q.wait_done(q.mark(), time.monotonic() - 1) is True
    q.settle(lot, 3, "delivered")
    snap = q.snapshot()
    assert (snap.delivered, snap.dropped_closed) == (3, 3)
    assert snap.balanced


class _FakeClock:
    """Stands in for the ``time`` module inside logdrain.queue."""

    def __init__(self, now: float) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now


def test_linger_counts_from_the_oldest_record_not_from_the_sender(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sender that starts waiting late does not restart the clock: the
    records go out once the oldest is ``linger`` seconds old, so several idle
    senders make one request per linger, not one each."""
    import logdrain.queue

    clock = _FakeClock(100.0)
    monkeypatch.setattr(logdrain.queue, "time", clock)
    q = RecordQueue(100, "drop_oldest", 1.0, wake_at=50)
    # Empty: a sender waits (with no timeout: an idle drain has no wake-ups)
    # until the first record arrives, then takes nothing yet.
    first: list[object] = []
    waiter = threading.Thread(target=lambda: first.append(q.take(10, linger=0.05)))
    waiter.start()
    while not q._takers_idle and waiter.is_alive():
        time.sleep(0.001)
    q.put("a")  # the clock starts at 100.0
    waiter.join(30)
    assert first == [(None, [])]
    clock.now = 100.04
    q.put("b")
    assert q.take(10, linger=0.05) == (None, [])  # oldest is 0.04 s old: not yet
    clock.now = 100.06
    lot, items = q.take(10, linger=0.05)  # due, whoever asks
    assert lot is not None
    assert items == ["a", "b"]
    clock.now = 100.2
    q.put("c")  # the queue was empty: a new clock starts at 100.2
    clock.now = 100.22
    assert q.take(10, linger=0.05) == (None, [])
    clock.now = 100.26
    assert q.take(10, linger=0.05)[1] == ["c"]
