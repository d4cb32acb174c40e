"""Hostile collectors (``logdrain.testing`` faults on 127.0.0.1): every
attempt has a total deadline, answers are read bounded, each outcome lands
in the right bucket, and close and exit keep their deadline.

What could hang runs in a subprocess under ``proc.run``'s timeout; in-process
waits are conditions with generous caps. Memory is checked as peak RSS
growth in a fresh subprocess (a bound, not a speed)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator

import pytest

import logdrain
from logdrain.testing import Collector

from . import proc
from .tls_helpers import (  # noqa: F401 - fixtures
    ca_pem_fixture,
    server_cert_fixture,
    tls_ca_fixture,
    tls_collector_fixture,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process semantics")

QUICK = {
    "flush_interval": 0.02,
    "backoff_initial": 0.01,
    "backoff_max": 0.05,
    "capture_crashes": False,
}


@pytest.fixture
def drain_for(collector: Collector) -> Iterator[object]:
    made: list[logdrain.Drain] = []

    def make(**options: object) -> logdrain.Drain:
        drain = logdrain.Drain(collector.url, **{**QUICK, **options})
        made.append(drain)
        return drain

    yield make
    for drain in made:
        drain.close(5)


def _ship(drain: logdrain.Drain, n: int, tag: str = "r") -> None:
    for i in range(n):
        drain.submit({"message": f"{tag} {i}"})


def _wait(predicate: object, cap: float = 30.0) -> bool:
    deadline = time.monotonic() + cap
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return bool(predicate())  # type: ignore[operator]


# -- each attempt has a total deadline --------------------------------------------


@pytest.mark.parametrize("kind", ["trickle_status", "trickle_body_503", "silent"])
def test_an_attempt_ends_at_request_timeout(
    collector: Collector, drain_for: object, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """A collector that answers one byte a second (or never) ends the attempt
    at ``request_timeout``, however short each read's wait: counted as a
    transient failure, retried, and the next answer delivers the batch."""
    if kind == "trickle_body_503":
        collector.fault("trickle_body", status=503, interval=0.5, body=b"x" * 200)
    elif kind == "silent":
        collector.fault(kind)
    else:
        collector.fault(kind, interval=0.5)
    drain = drain_for(request_timeout=1.5, read_timeout=5, max_attempts=3)  # type: ignore[operator]
    _ship(drain, 10)
    assert drain.flush(30)
    stats = drain.stats()
    assert stats.delivered == 10 and stats.balanced
    assert stats.retries >= 1
    # The trickled answer may end in a 200 after logdrain gave up on it: at
    # least once, then, with the same batch id.
    assert {r["message"] for r in collector.records} == {f"r {i}" for i in range(10)}


@pytest.mark.parametrize("kind", ["trickle_status", "trickle_body_503", "silent"])
def test_an_attempt_over_tls_ends_at_request_timeout_as_transient(
    tls_collector: Collector, ca_pem: str, kind: str
) -> None:
    """The deadline holds over TLS too (the watchdog shuts the socket under
    the TLS layer), and however the cut surfaces it is the deadline: the
    batch is retried, never rejected."""
    if kind == "trickle_body_503":
        tls_collector.fault("trickle_body", status=503, interval=0.5, body=b"x" * 200)
    elif kind == "silent":
        tls_collector.fault(kind)
    else:
        tls_collector.fault(kind, interval=0.5)
    with logdrain.Drain(
        tls_collector.url,
        ca_bundle=ca_pem,
        request_timeout=1.5,
        read_timeout=5,
        max_attempts=3,
        **QUICK,
    ) as drain:
        _ship(drain, 10)
        assert drain.flush(30)
        stats = drain.stats()
    assert (stats.delivered, stats.rejected) == (10, 0)
    assert stats.retries >= 1


def test_four_trickling_batches_do_not_stop_shipping(
    collector: Collector, drain_for: object
) -> None:
    """Four batches held by a trickling collector used to keep every sender
    busy for ever while new records were dropped; now each attempt ends and
    every record arrives once the collector behaves."""
    collector.fault("trickle_status", times=4, interval=1.0)
    drain = drain_for(concurrency=4, batch_size=5, request_timeout=1, max_attempts=5)  # type: ignore[operator]
    _ship(drain, 40)
    assert drain.flush(60)
    assert drain.stats().delivered == 40
    assert {r["message"] for r in collector.records} == {f"r {i}" for i in range(40)}


def test_exit_keeps_its_deadline_with_a_trickling_collector(collector: Collector) -> None:
    """The reported case: an answer one byte per second, ``read_timeout=2``,
    ``shutdown_timeout=3``: exit took 39 s or never ended; now about 3 s."""
    collector.fault("trickle_status", times=100, interval=1.0)
    start = time.monotonic()
    result = proc.run(
        """
import logging, logdrain
log = logging.getLogger("app"); log.propagate = False; log.setLevel(logging.INFO)
log.addHandler(logdrain.DrainHandler(read_timeout=2, shutdown_timeout=3, flush_interval=30))
for i in range(500):
    log.info("rec %d", i)
""",
        timeout=90,
        LOGDRAIN_URL=collector.url,
    )
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    assert "undelivered at the close deadline" in result.stderr
    assert elapsed < 3 + 10, elapsed  # the deadline, plus interpreter start-up on a busy host


def test_a_crash_with_a_trickling_collector_keeps_both_deadlines(collector: Collector) -> None:
    """An uncaught exception: the crash flush waits ``crash_timeout`` (2 s),
    the exit hook ``shutdown_timeout`` (2 s); the process is out by then."""
    collector.fault("trickle_status", times=100, interval=1.0)
    start = time.monotonic()
    result = proc.run(
        """
import logging, logdrain
log = logging.getLogger("app"); log.propagate = False
log.addHandler(logdrain.DrainHandler(crash_timeout=2, shutdown_timeout=2, flush_interval=30,
                                     concurrency=1, batch_size=10))
for i in range(500):  # most still queued at the crash: the old exit hook sent them itself
    log.warning("before the crash %d", i)
raise RuntimeError("boom")
""",
        timeout=90,
        LOGDRAIN_URL=collector.url,
    )
    elapsed = time.monotonic() - start
    assert result.returncode == 1
    assert "RuntimeError: boom" in result.stderr
    assert elapsed < 4 + 10, elapsed


# -- answers are read bounded -------------------------------------------------


_RSS_CHILD = """
import resource, logdrain
def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
drain = logdrain.Drain(flush_interval=0.02, backoff_initial=0.01, backoff_max=0.05,
                       max_attempts=3, request_timeout=20, capture_crashes=False)
drain.submit({"message": "warm-up"})
drain.flush(30)
before = rss_mib()
for i in range(20):
    drain.submit({"message": f"r {i}"})
ok = drain.flush(60)
s = drain.stats()
print("RESULT", ok, round(rss_mib() - before, 1), s.delivered, s.rejected, s.failed, s.balanced)
drain.close(5)
"""


@pytest.mark.parametrize(
    ("kind", "params", "outcome"),
    [
        ("huge_body", {"status": 200, "size": 200_000_000}, "delivered"),
        ("huge_body", {"status": 400, "size": 200_000_000}, "rejected"),
        ("endless_body", {"status": 200}, "delivered"),
        ("endless_body", {"status": 503}, "delivered"),  # retried, then the plain answer
        ("gzip_bomb", {"status": 400, "size": 1_000_000_000}, "rejected"),
    ],
)
def test_a_huge_or_endless_answer_costs_no_memory(
    collector: Collector, kind: str, params: dict[str, object], outcome: str
) -> None:
    """A 200 MB answer grew RSS by ~380 MB and an endless one by 1.5 GB; now
    at most ``RESPONSE_CAP`` bytes are read and the connection is dropped."""
    collector.script(200)  # the child's warm-up request, then the fault
    collector.fault(kind, times=1, **params)
    result = proc.run(_RSS_CHILD, timeout=120, LOGDRAIN_URL=collector.url)
    assert result.returncode == 0, result.stderr
    ok, growth, delivered, rejected, failed, balanced = result.stdout.split("RESULT", 1)[1].split()
    assert float(growth) < 40, f"peak RSS grew {growth} MiB"
    assert balanced == "True" and failed == "0"
    if outcome == "delivered":
        assert (ok, delivered, rejected) == ("True", "21", "0")
    else:  # the first batch (whatever it held) was refused; the rest arrived
        assert int(rejected) >= 1 and int(delivered) + int(rejected) == 21


def test_a_body_that_fits_keeps_the_connection(collector: Collector, drain_for: object) -> None:
    """Plain answers keep one kept-alive connection; a body over the cap drops it."""
    drain = drain_for(concurrency=1, batch_size=1)  # type: ignore[operator]
    for i in range(5):
        drain.submit({"message": f"a {i}"})
        assert drain.flush(30)
    assert collector.connections == 1
    collector.fault("huge_body", size=1_000_000)
    drain.submit({"message": "big answer"})
    assert drain.flush(30)
    drain.submit({"message": "after"})
    assert drain.flush(30)
    assert collector.connections == 2
    assert drain.stats().delivered == 7


# -- outcomes land in the right bucket -------------------------------------------


@pytest.mark.parametrize("status", [503, 200])
def test_a_chunked_answer_cut_mid_way_is_judged_by_its_status(
    collector: Collector, drain_for: object, status: int
) -> None:
    """Counted 'rejected, not retried' after one attempt before: a 503 is
    now retried, a 200 delivered (its status line said so)."""
    collector.fault("cut_chunked", status=status)
    drain = drain_for(max_attempts=3)  # type: ignore[operator]
    _ship(drain, 10)
    assert drain.flush(30)
    stats = drain.stats()
    assert (stats.delivered, stats.rejected, stats.failed) == (10, 0, 0)
    assert stats.retries == (1 if status == 503 else 0)


def test_a_reset_mid_answer_is_retried(collector: Collector, drain_for: object) -> None:
    collector.fault("reset", after=20)
    drain = drain_for(max_attempts=3)  # type: ignore[operator]
    _ship(drain, 10)
    assert drain.flush(30)
    stats = drain.stats()
    assert (stats.delivered, stats.retries, stats.rejected) == (10, 1, 0)


def test_partial_ingestion_then_503_loses_nothing(collector: Collector, drain_for: object) -> None:
    """The collector kept 3 records, then said 503: the batch is sent again
    (at least once: those 3 arrive twice, under the same batch id)."""
    collector.fault("partial", keep=3)
    drain = drain_for(max_attempts=3)  # type: ignore[operator]
    _ship(drain, 10)
    assert drain.flush(30)
    assert drain.stats().delivered == 10
    messages = [r["message"] for r in collector.records]
    assert set(messages) == {f"r {i}" for i in range(10)}
    assert len(messages) == 13


def test_a_batch_abandoned_at_close_stays_dropped_closed(
    collector: Collector, capsys: pytest.CaptureFixture[str]
) -> None:
    """Abandoned at the deadline, the batch is counted dropped_closed; when
    its request then fails it stays there, with no misleading line."""
    collector.hang()
    drain = logdrain.Drain(collector.url, **{**QUICK, "concurrency": 1})
    _ship(drain, 10)
    assert _wait(lambda: drain.stats().in_flight == 10)
    assert drain.close(0.5) is False
    senders = [t for t in threading.enumerate() if t.name.startswith("logdrain-127.0.0.1-send")]
    collector.hang(False)
    for thread in senders:
        thread.join(30)
    stats = drain.stats()
    assert (stats.dropped_closed, stats.rejected, stats.failed, stats.in_flight) == (10, 0, 0, 0)
    err = capsys.readouterr().err
    assert "rejected" not in err.replace("rejected 0", "")
    assert "gave up" not in err
