"""Deadlines that hold and senders that never die, against hostile user code.

Everything that could hang runs in a real subprocess under ``proc.run``'s
timeout, so a regression fails instead of stalling the suite. The only timed
checks are exit-deadline upper bounds with a wide margin (as in
test_lifecycle.py), never a speed.
"""

from __future__ import annotations

import sys
import threading
import time

import pytest

import logdrain
from logdrain import lifecycle
from logdrain.testing import Collector

from . import proc

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process semantics")

PRELUDE = """
import logging, os, sys, threading, time
import logdrain
log = logging.getLogger("app")
log.setLevel(logging.DEBUG)
log.propagate = False
"""
MARGIN = 10.0  # for interpreter start-up on a loaded machine


def run_timed(code: str, timeout: float = 90.0, **env: str) -> tuple[float, object]:
    start = time.monotonic()
    result = proc.run(PRELUDE + code, timeout=timeout, **env)
    return time.monotonic() - start, result


def test_close_returns_by_its_deadline_while_records_encode_slowly(collector: Collector) -> None:
    """Ten records whose ``__repr__`` takes 1 s each: ``close(2)`` returns by
    its deadline (the closing thread never encodes) and says False; what
    was left is counted dropped_closed, and the identity holds."""
    code = """
class Slow:
    def __repr__(self):
        time.sleep(1)
        return "slow"
h = logdrain.DrainHandler(concurrency=1, batch_size=1, flush_interval=30)
log.addHandler(h)
for i in range(10):
    log.info("slow %d", i, extra={"value": Slow()})
start = time.monotonic()
ok = h.drain.close(2)
took = time.monotonic() - start
s = h.drain.stats()
print("RESULT", ok, round(took, 2), s.balanced, s.delivered, s.dropped_closed, s.in_flight)
"""
    _, result = run_timed(code, LOGDRAIN_URL=collector.url)
    assert result.returncode == 0, result.stderr  # type: ignore[attr-defined]
    fields = result.stdout.split("RESULT", 1)[1].split()  # type: ignore[attr-defined]
    ok, took, balanced = fields[0], float(fields[1]), fields[2]
    delivered, dropped, in_flight = map(int, fields[3:])
    assert ok == "False"
    assert took < 2 + 1.5, took  # its own deadline, plus scheduling slack
    assert balanced == "True"
    assert in_flight == 0
    assert delivered + dropped == 10
    assert dropped >= 1
    assert "undelivered at the close deadline" in result.stderr  # type: ignore[attr-defined]


def test_exit_keeps_its_deadline_when_the_token_provider_hangs(collector: Collector) -> None:
    """A ``token_provider`` that hangs 40 s cannot keep the process alive past
    ``shutdown_timeout``: it runs on a sender thread, left behind at the deadline."""
    code = """
def provider():
    time.sleep(40)
    return "tok"
log.addHandler(logdrain.DrainHandler(token_provider=provider, shutdown_timeout=2,
                                     flush_interval=0.05))
for i in range(100):
    log.info("rec %d", i)
time.sleep(0.3)  # a sender is inside the provider by now (or soon: either way bounded)
"""
    elapsed, result = run_timed(code, LOGDRAIN_URL=collector.url)
    assert result.returncode == 0, result.stderr  # type: ignore[attr-defined]
    assert "not delivered in total: 100 of 100" in result.stderr  # type: ignore[attr-defined]
    assert elapsed < 2 + MARGIN, elapsed


def test_a_signal_during_the_first_log_call_does_not_deadlock(collector: Collector) -> None:
    """A signal handler that logs (and ``flush_on_signals``) arriving while
    the first record starts the senders: hundreds of rounds, each with a
    fresh drain and a one-shot timer of 0-300 us around its first log call.
    On the old code one of them waited on the start lock for ever."""
    code = """
import random, signal
random.seed(7)
def on_alarm(signum, frame):
    log.info("from the signal handler")
signal.signal(signal.SIGALRM, on_alarm)
for round in range(150):
    h = logdrain.DrainHandler(flush_interval=0.05, concurrency=4, capture_crashes=False)
    log.addHandler(h)
    signal.setitimer(signal.ITIMER_REAL, random.uniform(0.00001, 0.0003))
    log.info("first of round %d", round)
    signal.setitimer(signal.ITIMER_REAL, 0)
    log.removeHandler(h)
    h.close()
print("ROUNDS DONE")
"""
    _, result = run_timed(code, timeout=90, LOGDRAIN_URL=collector.url)
    assert result.returncode == 0, result.stderr  # type: ignore[attr-defined]
    assert "ROUNDS DONE" in result.stdout  # type: ignore[attr-defined]
    firsts = [r for r in collector.records if str(r["message"]).startswith("first of round")]
    assert len(firsts) == 150


def test_flush_on_signals_arriving_inside_the_first_log_call(collector: Collector) -> None:
    """The same with logdrain's own SIGTERM flush: the handler flushes and
    chains to the previous one, which here just counts."""
    code = """
import random, signal
random.seed(11)
seen = []
signal.signal(signal.SIGUSR1, lambda signum, frame: seen.append(signum))
for round in range(100):
    h = logdrain.DrainHandler(flush_interval=0.05, flush_on_signals="SIGUSR1",
                              flush_timeout=1, shutdown_timeout=1, capture_crashes=False)
    log.addHandler(h)
    signal.signal(signal.SIGALRM, lambda s, f: os.kill(os.getpid(), signal.SIGUSR1))
    signal.setitimer(signal.ITIMER_REAL, random.uniform(0.00001, 0.0003))
    log.info("first of round %d", round)
    signal.setitimer(signal.ITIMER_REAL, 0)
    log.removeHandler(h)
    h.close()
print("ROUNDS DONE", len(seen) > 0)
"""
    _, result = run_timed(code, timeout=90, LOGDRAIN_URL=collector.url)
    assert result.returncode == 0, result.stderr  # type: ignore[attr-defined]
    assert "ROUNDS DONE True" in result.stdout  # type: ignore[attr-defined]


def test_a_sender_survives_what_escapes_a_batch(collector: Collector) -> None:
    """A value whose ``__repr__`` raises KeyboardInterrupt (which no encoder
    catches) in four batches, one per sender: each batch is counted failed,
    one line says so, and every record logged afterwards still arrives."""
    code = """
class Hostile:
    def __repr__(self):
        raise KeyboardInterrupt("from a __repr__")
h = logdrain.DrainHandler(concurrency=4, batch_size=1, flush_interval=0.05)
log.addHandler(h)
for i in range(4):
    log.info("hostile %d", i, extra={"value": Hostile()})
h.drain.flush(20)
for i in range(3000):
    log.info("after %d", i)
ok = h.drain.flush(60)
s = h.drain.stats()
print("RESULT", ok, s.balanced, s.delivered, s.failed, s.in_flight)
"""
    _, result = run_timed(code, LOGDRAIN_URL=collector.url)
    assert result.returncode == 0, result.stderr  # type: ignore[attr-defined]
    ok, balanced, delivered, failed, in_flight = result.stdout.split("RESULT", 1)[1].split()  # type: ignore[attr-defined]
    assert (ok, balanced, in_flight) == ("True", "True", "0")
    assert (int(failed), int(delivered)) == (4, 3000)
    after = [r for r in collector.records if str(r["message"]).startswith("after ")]
    assert len(after) == 3000
    err = result.stderr  # type: ignore[attr-defined]
    assert err.count("a sender thread hit KeyboardInterrupt") == 1, err  # once, rate-limited


def test_a_drain_whose_hooks_cannot_install_is_not_left_registered(
    collector: Collector,
) -> None:
    """Signal handlers can only be installed from the main thread: built on
    another thread, the Drain fails with a ConfigError and leaves nothing in
    the registry the exit hook walks."""
    before = len(lifecycle.live_drains())
    errors: list[BaseException] = []

    def build() -> None:
        try:
            logdrain.Drain(collector.url, flush_on_signals="SIGTERM", capture_crashes=False)
        except logdrain.ConfigError as exc:
            errors.append(exc)

    thread = threading.Thread(target=build)
    thread.start()
    thread.join(30)
    assert errors and "flush_on_signals" in str(errors[0])
    assert len(lifecycle.live_drains()) == before
