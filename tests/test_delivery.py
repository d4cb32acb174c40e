"""The core delivery path: Drain -> queue -> dispatcher -> transport -> a real collector.

Every test talks HTTP to ``logdrain.testing.Collector`` on 127.0.0.1 and waits on
conditions (collector.wait_for, Drain.flush) with generous caps, never on time.
"""

from __future__ import annotations

import email.utils
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import tenacity

from logdrain import Drain, DrainHandler, DrainStats, TransientError
from logdrain.queue import RecordQueue
from logdrain.retry import Backoff, parse_retry_after
from logdrain.testing import BATCH_ID_HEADER, Collector, RequestInfo
from tests import proc

pytestmark = pytest.mark.timeout(120)

CAP = 30.0  # generous cap for every wait: a pass never comes near it

# Small settings so that retries and lingering cost milliseconds.
FAST: dict[str, Any] = {
    "flush_interval": 0.05,
    "backoff_initial": 0.01,
    "backoff_max": 0.05,
    "capture_crashes": False,
}


def records(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"message": f"record {i}", "seq": i} for i in range(start, start + n)]


def submit_all(drain: Drain, items: list[dict[str, Any]]) -> None:
    for item in items:
        assert drain.submit(item) is True


def settled(drain: Drain) -> DrainStats:
    """Flush, then check the ledger: nothing pending and the identity holds."""
    assert drain.flush(timeout=CAP) is True
    stats = drain.stats()
    assert stats.pending == 0, stats
    assert stats.balanced, stats
    return stats


def wait_until(check: Callable[[], bool], cap: float = CAP) -> bool:
    return proc.wait_until(check, cap)


def batch_id(request: RequestInfo) -> str:
    return request.headers[BATCH_ID_HEADER]


def seqs(collector: Collector) -> list[int]:
    return [r["seq"] for r in collector.records]


# -- the happy path ------------------------------------------------------------------


def test_records_arrive_in_batches(collector: Collector) -> None:
    """N submitted records all arrive, in fewer than N requests, and the ledger balances."""
    n = 100
    with Drain(collector.url, batch_size=10, **FAST) as drain:
        submit_all(drain, records(n))
        stats = settled(drain)
        assert stats.delivered == n
        assert stats.submitted == n
        assert stats.lost == 0
    assert sorted(seqs(collector)) == list(range(n))
    assert 1 < len(collector.requests) < n
    assert all(r.status == 200 and r.method == "POST" for r in collector.requests)
    assert all(r.record_count <= 10 for r in collector.requests)
    assert collector.duplicates == 0


def test_close_delivers_pending_records(collector: Collector) -> None:
    """close() ships what is still queued before it returns."""
    drain = Drain(collector.url, batch_size=500, flush_interval=30, capture_crashes=False)
    try:
        submit_all(drain, records(25))
    finally:
        assert drain.close(timeout=CAP) is True
    assert sorted(seqs(collector)) == list(range(25))
    stats = drain.stats()
    assert stats.delivered == 25
    assert stats.balanced


def test_slow_collector(collector: Collector) -> None:
    """A collector that answers slowly still receives everything; the ledger balances."""
    collector.delay = 0.2
    with Drain(collector.url, batch_size=10, concurrency=2, **FAST) as drain:
        submit_all(drain, records(40))
        stats = settled(drain)
        assert stats.delivered == 40
    assert sorted(seqs(collector)) == list(range(40))


# -- retries -------------------------------------------------------------------------


def test_500_twice_then_ok_retries_same_batch_id(collector: Collector) -> None:
    """Two 500s then 200: delivered once, retried under the same batch id, no duplicates."""
    collector.script(500, times=2)
    with Drain(collector.url, batch_size=5, concurrency=1, **FAST) as drain:
        submit_all(drain, records(5))
        stats = settled(drain)
        assert stats.delivered == 5
        assert stats.retries >= 2
        assert stats.failed == stats.rejected == 0
    reqs = collector.requests
    assert [r.status for r in reqs[:2]] == [500, 500]
    ok_ids = {batch_id(r) for r in reqs if r.status == 200}
    for failed in (r for r in reqs if r.status == 500):
        assert batch_id(failed) in ok_ids
    assert len({batch_id(r) for r in reqs}) == len(ok_ids)
    assert sorted(seqs(collector)) == list(range(5))
    assert collector.duplicates == 0


def test_429_retry_after_is_retried_and_delivered(collector: Collector) -> None:
    """429 with Retry-After is retried (the wait capped by retry_after_max) and delivered."""
    collector.script(429, headers={"Retry-After": "1"})
    with Drain(collector.url, batch_size=3, concurrency=1, retry_after_max=0.3, **FAST) as drain:
        submit_all(drain, records(3))
        stats = settled(drain)
        assert stats.delivered == 3
        assert stats.retries == 1
    reqs = collector.requests
    assert [r.status for r in reqs] == [429, 200]
    assert batch_id(reqs[0]) == batch_id(reqs[1])


def _retry_state(exc: BaseException, attempt: int = 1) -> tenacity.RetryCallState:
    state = tenacity.RetryCallState(tenacity.Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    state.set_exception((type(exc), exc, None))
    return state


def test_backoff_honours_capped_retry_after() -> None:
    """The wait is at least Retry-After, capped at retry_after_max; else jittered exponential."""
    backoff = Backoff(initial=0.01, maximum=0.05, retry_after_max=0.3)
    assert backoff(_retry_state(TransientError("x", 429, "", 1.0))) == pytest.approx(0.3)
    assert backoff(_retry_state(TransientError("x", 503, "", 0.2))) == pytest.approx(0.2)
    for attempt in range(1, 8):
        wait = backoff(_retry_state(TransientError("x", 503), attempt))
        exp = min(0.05, 0.01 * 2 ** (attempt - 1))
        assert exp * 0.5 <= wait <= exp


def test_parse_retry_after_seconds_and_http_date() -> None:
    """Retry-After parses as delta-seconds or HTTP-date; junk and past dates are safe."""
    assert parse_retry_after("1") == 1.0
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("soon") is None
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    when = email.utils.parsedate_to_datetime(date).timestamp()
    assert parse_retry_after(date, now=when - 30) == pytest.approx(30.0)
    assert parse_retry_after(date, now=when + 30) == 0.0
    future = email.utils.formatdate(time.time() + 3600, usegmt=True)
    assert 3500 < (parse_retry_after(future) or 0) <= 3600


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(collector: Collector, status: int) -> None:
    """Each transient status is retried under the same batch id and then delivered."""
    collector.script(status)
    with Drain(collector.url, batch_size=3, concurrency=1, **FAST) as drain:
        submit_all(drain, records(3))
        stats = settled(drain)
        assert (stats.delivered, stats.rejected, stats.failed) == (3, 0, 0)
        assert stats.retries == 1
    reqs = collector.requests
    assert [r.status for r in reqs] == [status, 200]
    assert batch_id(reqs[0]) == batch_id(reqs[1])
    assert collector.duplicates == 0


@pytest.mark.parametrize("status", [400, 401, 403, 301, 302])
def test_permanent_statuses_are_not_retried(collector: Collector, status: int) -> None:
    """Other statuses (redirects too, never followed) reject the batch after one request."""
    collector.script(status, headers={"Location": collector.url}, body=b"no thanks")
    with Drain(collector.url, batch_size=3, concurrency=1, **FAST) as drain:
        submit_all(drain, records(3))
        stats = settled(drain)
        assert (stats.delivered, stats.rejected, stats.failed, stats.retries) == (0, 3, 0, 0)
        assert [r.status for r in collector.requests] == [status]
        # The drain keeps working: the next batch gets the collector's normal 200.
        submit_all(drain, records(2, start=3))
        stats = settled(drain)
        assert stats.delivered == 2
    assert [r.status for r in collector.requests] == [status, 200]
    assert sorted(seqs(collector)) == [3, 4]


def test_404_is_rejected_and_reported(
    collector: Collector, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 404 is not retried, counts as rejected and is reported on stderr with the body."""
    collector.script(404, body=b"unknown field foo")
    with Drain(collector.url, batch_size=4, concurrency=1, **FAST) as drain:
        submit_all(drain, records(4))
        stats = settled(drain)
        assert stats.rejected == 4
        assert stats.delivered == stats.retries == 0
    assert [r.status for r in collector.requests] == [404]
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "404" in line]
    assert lines, err
    assert "unknown field foo" in lines[0]


# -- network faults ------------------------------------------------------------------


def test_connection_refused_fails_then_drain_recovers(
    collector: Collector, capsys: pytest.CaptureFixture[str]
) -> None:
    """With nothing listening, batches end in failed after max_attempts; later ones deliver."""
    collector.down()
    with Drain(collector.url, batch_size=4, concurrency=1, max_attempts=3, **FAST) as drain:
        submit_all(drain, records(4))
        stats = settled(drain)
        assert stats.failed == 4
        assert stats.delivered == 0
        assert stats.retries == 2
        assert "gave up on 4 record(s)" in capsys.readouterr().err
        collector.up()
        submit_all(drain, records(3, start=4))
        stats = settled(drain)
        assert stats.delivered == 3
        assert stats.failed == 4
    assert sorted(seqs(collector)) == [4, 5, 6]


def test_collector_restart_retried_batch_is_delivered(collector: Collector) -> None:
    """A batch refused while the collector is down is retried and arrives once it is back."""
    collector.down()
    with Drain(
        collector.url, batch_size=5, concurrency=1, max_attempts=10_000, max_retry_time=CAP, **FAST
    ) as drain:
        submit_all(drain, records(5))
        assert wait_until(lambda: drain.stats().retries >= 2)
        collector.up()
        stats = settled(drain)
        assert stats.delivered == 5
        assert stats.failed == 0
    assert sorted(seqs(collector)) == list(range(5))
    assert collector.duplicates == 0


def test_accept_then_hang_times_out_into_failed(collector: Collector) -> None:
    """A collector that never answers costs read_timeout per attempt, then the batch fails."""
    collector.hang()
    with Drain(
        collector.url, batch_size=3, concurrency=1, read_timeout=0.3, max_attempts=2, **FAST
    ) as drain:
        submit_all(drain, records(3))
        stats = settled(drain)
        assert stats.failed == 3
        assert stats.delivered == 0
        assert stats.retries == 1
    reqs = collector.requests
    assert [r.status for r in reqs] == [0, 0]
    assert batch_id(reqs[0]) == batch_id(reqs[1])
    assert collector.count == 0


def test_close_abandons_hung_batch_at_deadline(
    collector: Collector, capsys: pytest.CaptureFixture[str]
) -> None:
    """close() under a hung request returns False at its deadline; the records are counted."""
    collector.hang()
    drain = Drain(collector.url, batch_size=5, concurrency=1, **FAST)
    try:
        submit_all(drain, records(5))
        assert collector.wait_for(lambda c: len(c.requests) >= 1, CAP)
    finally:
        assert drain.close(timeout=0.3) is False
    stats = drain.stats()
    assert stats.dropped_closed == 5
    assert stats.delivered == 0
    assert stats.pending == 0
    assert stats.balanced
    assert "undelivered at the close deadline" in capsys.readouterr().err


def test_outage_overflow_no_hot_loop_then_recovery(
    collector: Collector, capsys: pytest.CaptureFixture[str]
) -> None:
    """During a 503 outage only the in-flight batches are retried (with backoff), the bounded
    queue drops the oldest records, and once the collector recovers the queued ones flow."""
    concurrency, batch_size, queue_size, max_attempts = 1, 10, 50, 40
    collector.status = 503
    with Drain(
        collector.url,
        batch_size=batch_size,
        concurrency=concurrency,
        queue_size=queue_size,
        overflow="drop_oldest",
        max_attempts=max_attempts,
        max_retry_time=CAP,
        flush_interval=0.05,
        backoff_initial=0.05,
        backoff_max=0.1,
        capture_crashes=False,
    ) as drain:
        submit_all(drain, records(200))
        stats = drain.stats()
        assert stats.dropped_overflow >= 200 - queue_size - concurrency * batch_size
        assert stats.balanced
        assert collector.wait_for(lambda c: len(c.requests) >= 3, CAP)
        collector.status = 200
        outage = [r for r in collector.requests if r.status == 503]
        # No hot loop: no batch gave up, so only the in-flight batches were ever tried.
        assert drain.stats().failed == 0
        assert len({batch_id(r) for r in outage}) <= concurrency
        assert len(outage) <= concurrency * max_attempts
        stats = settled(drain)
        assert stats.failed == stats.rejected == 0
        assert stats.delivered == 200 - stats.dropped_overflow
        assert stats.delivered >= queue_size
    got = seqs(collector)
    assert len(got) == len(set(got)) == stats.delivered
    # drop_oldest: the newest queue_size records survived the outage.
    assert set(range(200 - queue_size, 200)) <= set(got)
    assert "queue full" in capsys.readouterr().err


def test_flush_waiting_on_a_request_does_not_spin(
    collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While flush() waits for a request in progress and the queue is empty,
    the idle sender thread waits for records instead of polling the queue."""
    takes = 0
    real_take = RecordQueue.take

    def counting_take(self: RecordQueue, *args: Any) -> Any:
        nonlocal takes
        takes += 1
        return real_take(self, *args)

    monkeypatch.setattr(RecordQueue, "take", counting_take)
    collector.hang()
    with Drain(collector.url, batch_size=10, concurrency=2, **FAST) as drain:
        submit_all(drain, records(5))
        assert collector.wait_for(lambda c: len(c.requests) >= 1, CAP)
        assert drain.flush(timeout=0.5) is False  # the request hangs
        assert takes < 20, f"{takes} take() calls while one request hung"
        collector.hang(False)
        assert settled(drain).delivered == 5


def test_sender_threads_per_concurrency_and_gone_after_close(collector: Collector) -> None:
    """concurrency=3 starts three named sender threads; close() ends them."""
    drain = Drain(collector.url, batch_size=10, concurrency=3, name="conc", **FAST)
    submit_all(drain, records(40))
    assert drain.flush()
    senders = [t for t in threading.enumerate() if t.name.startswith("logdrain-conc-send-")]
    assert sorted(t.name for t in senders) == [f"logdrain-conc-send-{i}" for i in range(3)]
    assert drain.close()
    assert wait_until(lambda: not any(t.is_alive() for t in senders))
    assert sorted(seqs(collector)) == list(range(40))


# -- concurrency, formats, sizes -----------------------------------------------------


def test_concurrency_bounds_requests_in_progress(collector: Collector) -> None:
    """With concurrency=2, at most 2 requests are in progress; the rest waits in the queue."""
    collector.hang()
    with Drain(collector.url, batch_size=10, concurrency=2, **FAST) as drain:
        submit_all(drain, records(50))
        assert collector.wait_for(lambda c: len(c.requests) >= 2, CAP)
        # flush cannot complete while the collector hangs; it gives the dispatcher
        # every chance (urgent, no lingering) to start more requests than allowed.
        assert drain.flush(timeout=0.3) is False
        stats = drain.stats()
        assert stats.in_flight <= 2 * 10
        assert stats.queued == 50 - stats.in_flight
        assert stats.balanced
        assert len(collector.requests) == 2
        assert all(r.status == 0 for r in collector.requests)
        collector.hang(False)
        stats = settled(drain)
        assert stats.delivered == 50
    assert sorted(seqs(collector)) == list(range(50))
    assert collector.duplicates == 0


def test_ndjson_format(collector: Collector) -> None:
    """format='ndjson' sends newline-delimited JSON with the ndjson content type."""
    with Drain(collector.url, format="ndjson", batch_size=10, **FAST) as drain:
        submit_all(drain, records(25))
        assert settled(drain).delivered == 25
    assert sorted(seqs(collector)) == list(range(25))
    for req in collector.requests:
        assert req.headers["Content-Type"] == "application/x-ndjson"
        lines = req.body.decode().splitlines()
        assert len(lines) == req.record_count
        assert all(isinstance(json.loads(line), dict) for line in lines)


def test_object_format_one_record_per_request(collector: Collector) -> None:
    """format='object' (batch_size=1) sends exactly one JSON object per request."""
    with Drain(collector.url, format="object", batch_size=1, **FAST) as drain:
        submit_all(drain, records(4))
        assert settled(drain).delivered == 4
    reqs = collector.requests
    assert len(reqs) == 4
    for req in reqs:
        assert req.headers["Content-Type"] == "application/json"
        assert isinstance(json.loads(req.body), dict)
    assert sorted(seqs(collector)) == list(range(4))


@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_batch_bytes_bounds_every_body(collector: Collector, fmt: str) -> None:
    """Bodies never exceed batch_bytes, even when records exactly fill a body."""
    # {"seq":N,"m":"..."} encodes to exactly 1023 bytes: four of them plus
    # separators are the worst case for the body framing.
    items = []
    for i in range(20):
        item = {"seq": i, "m": ""}
        item["m"] = "x" * (1023 - len(json.dumps(item, separators=(",", ":"))))
        items.append(item)
    with Drain(
        collector.url,
        format=fmt,
        batch_size=20,
        batch_bytes=4096,
        max_record_bytes=2048,
        **FAST,
    ) as drain:
        submit_all(drain, items)
        stats = settled(drain)
        assert stats.delivered == 20
        assert stats.truncated == 0
    assert len(collector.requests) > 1
    assert all(len(r.body) <= 4096 for r in collector.requests), [
        len(r.body) for r in collector.requests
    ]
    assert sorted(seqs(collector)) == list(range(20))


# -- overflow policies and closed drains ---------------------------------------------


# A long linger: the first lot is taken only once all 5 records are queued, however
# slowly this thread runs (flush() is urgent and does not linger).
HUNG = {**FAST, "flush_interval": 10.0}


def _fill_while_hung(collector: Collector, drain: Drain) -> None:
    """One batch of 5 hung in flight, then a full queue of 5."""
    collector.hang()
    submit_all(drain, records(5))
    assert collector.wait_for(lambda c: len(c.requests) >= 1, CAP)
    assert wait_until(lambda: drain.stats().in_flight == 5)
    submit_all(drain, records(5, start=5))
    assert drain.stats().queued == 5


def test_drop_newest_refuses_when_full(collector: Collector) -> None:
    """drop_newest: submit returns False on a full queue and counts it; the rest arrives."""
    with Drain(
        collector.url, batch_size=5, queue_size=5, concurrency=1, overflow="drop_newest", **HUNG
    ) as drain:
        _fill_while_hung(collector, drain)
        assert drain.submit({"seq": 99}) is False
        stats = drain.stats()
        assert stats.dropped_overflow == 1
        assert stats.balanced
        collector.hang(False)
        stats = settled(drain)
        assert stats.delivered == 10
        assert stats.dropped_overflow == 1
    assert sorted(seqs(collector)) == list(range(10))


def test_block_times_out_when_full(collector: Collector) -> None:
    """block: submit waits block_timeout for room, then returns False and counts it."""
    with Drain(
        collector.url,
        batch_size=5,
        queue_size=5,
        concurrency=1,
        overflow="block",
        block_timeout=0.05,
        **HUNG,
    ) as drain:
        _fill_while_hung(collector, drain)
        assert drain.submit({"seq": 99}) is False
        stats = drain.stats()
        assert stats.dropped_overflow == 1
        assert stats.balanced
        collector.hang(False)
        stats = settled(drain)
        assert stats.delivered == 10
    assert sorted(seqs(collector)) == list(range(10))


def test_block_waits_for_room(collector: Collector) -> None:
    """block: a submit on a full queue succeeds once the dispatcher makes room."""
    with Drain(
        collector.url,
        batch_size=5,
        queue_size=5,
        concurrency=1,
        overflow="block",
        block_timeout=CAP,
        **HUNG,
    ) as drain:
        _fill_while_hung(collector, drain)
        result: list[bool] = []
        blocked = threading.Thread(target=lambda: result.append(drain.submit({"seq": 10})))
        blocked.start()
        try:
            collector.hang(False)
        finally:
            blocked.join(CAP)
        assert result == [True]
        stats = settled(drain)
        assert stats.delivered == 11
        assert stats.dropped_overflow == 0
    assert sorted(seqs(collector)) == list(range(11))


def test_submit_after_close_is_refused(collector: Collector) -> None:
    """A closed drain refuses records, counts them as dropped_closed and stays balanced."""
    drain = Drain(collector.url, **FAST)
    assert drain.close(timeout=CAP) is True
    assert drain.closed
    assert drain.submit({"message": "late"}) is False
    assert drain.enqueue({"message": "late"}) is False
    stats = drain.stats()
    assert (stats.submitted, stats.dropped_closed, stats.pending) == (2, 2, 0)
    assert stats.balanced
    assert drain.flush(timeout=CAP) is True
    assert drain.close(timeout=CAP) is True  # idempotent
    assert collector.requests == []


# -- no feedback loop ----------------------------------------------------------------


def test_root_handler_at_debug_has_no_feedback_loop(collector: Collector) -> None:
    """A DrainHandler on the root logger at DEBUG ships the app's records and none of
    urllib3's or logdrain's own (they are logged on logdrain's threads)."""
    root = logging.getLogger()
    old_level = root.level
    handler = DrainHandler(collector.url, batch_size=5, concurrency=2, **FAST)
    root.addHandler(handler)
    try:
        root.setLevel(logging.DEBUG)
        log = logging.getLogger("app.feedback")
        n = 30
        for i in range(n):
            log.info("event %d", i)
        assert handler.drain.flush(timeout=CAP) is True
        stats = handler.drain.stats()
        assert stats.submitted == n
        assert stats.delivered == n
        assert stats.balanced
    finally:
        root.setLevel(old_level)
        root.removeHandler(handler)
        handler.close()
    # urllib3 did log (at DEBUG) for each of those requests: none of it came back.
    assert handler.drain.stats().submitted == n
    got = collector.records
    assert len(got) == n
    assert not [r for r in got if r["logger"].startswith(("urllib3", "logdrain"))]
    assert sorted(r["message"] for r in got) == sorted(f"event {i}" for i in range(n))


def test_long_outage_holds_later_batches_back(collector: Collector) -> None:
    """Once a batch exhausts its retries, the next waits about backoff_max: no fresh burst."""
    collector.status = 503
    drain = Drain(
        collector.url,
        concurrency=1,
        batch_size=10,
        max_attempts=2,
        backoff_initial=0.01,
        backoff_max=30,
        flush_interval=0.01,
    )
    try:
        submit_all(drain, records(50))
        assert wait_until(lambda: drain.stats().failed >= 10)
        assert drain.flush(0.5) is False  # time enough for the next batch to try, if it would
        assert len(collector.requests) == 2  # the first batch's two attempts, nothing since
    finally:
        drain.close(0.2)
    stats = drain.stats()
    assert stats.failed == 10
    assert stats.dropped_closed == 40
    assert stats.balanced


def test_observe_sees_every_answer_and_error_before_the_verdict() -> None:
    seen: list[Any] = []
    with Collector() as collector:
        collector.script(503, times=1, body=b"busy")
        with Drain(collector.url, backoff_initial=0.01, backoff_max=0.02, flush_interval=0.05,
                   capture_crashes=False) as drain:  # fmt: skip
            drain.observe(seen.append)
            drain.submit({"message": "m"})
            assert drain.flush(30)
            drain.observe(None)
            drain.submit({"message": "unobserved"})
            assert drain.flush(30)
    assert [answer.status for answer in seen] == [503, 200]
    assert seen[0].body.startswith(b"busy")
