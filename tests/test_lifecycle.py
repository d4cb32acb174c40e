"""Exit, crash, signals, fork and reconfiguration, each in a real subprocess."""

from __future__ import annotations

import logging
import logging.config
import signal
import sys
import threading
import time
from collections.abc import Callable

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


def _messages(collector: Collector, prefix: str) -> list[str]:
    return [r["message"] for r in collector.records if str(r.get("message", "")).startswith(prefix)]


def test_exit_delivers_pending_records(collector: Collector) -> None:
    """Records still queued at a normal exit are all delivered before the process ends."""
    result = proc.run(
        PRELUDE
        + """
log.addHandler(logdrain.DrainHandler(flush_interval=30, batch_size=500))
for i in range(5000):
    log.info("rec %d", i)
""",
        LOGDRAIN_URL=collector.url,
    )
    assert result.returncode == 0, result.stderr
    assert collector.wait_for_count(5000)
    assert sorted(int(m.split()[1]) for m in _messages(collector, "rec ")) == list(range(5000))
    assert collector.duplicates == 0


def _assert_exits_within(result_time: float, budget: float) -> None:
    # The one kind of timed assertion the project allows: an exit-deadline upper
    # bound, with a wide margin for interpreter start-up on a loaded machine.
    assert result_time < budget + 10.0, f"took {result_time:.1f}s, budget {budget}s"


def test_exit_with_hung_collector_ends_within_deadline(collector: Collector) -> None:
    """A collector that accepts and never answers cannot hold the process past the deadline."""
    collector.hang()
    start = time.monotonic()
    result = proc.run(
        PRELUDE
        + """
log.addHandler(logdrain.DrainHandler(shutdown_timeout=1, read_timeout=60, flush_interval=0.05))
for i in range(1000):
    log.info("rec %d", i)
deadline = time.monotonic() + 30
while log.handlers[0].drain.stats().in_flight == 0 and time.monotonic() < deadline:
    time.sleep(0.01)  # until a batch is stuck in flight on the hung collector
print("in flight", log.handlers[0].drain.stats().in_flight)
""",
        LOGDRAIN_URL=collector.url,
    )
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    assert "in flight 0" not in result.stdout
    assert "undelivered" in result.stderr
    _assert_exits_within(elapsed, 1.0)


def test_exit_during_backoff_and_with_collector_down(collector: Collector) -> None:
    """Backoff sleeps are cut short at exit; a down collector cannot delay exit either."""
    collector.status = 503
    start = time.monotonic()
    result = proc.run(
        PRELUDE
        + """
log.addHandler(logdrain.DrainHandler(
    shutdown_timeout=1, backoff_initial=20, backoff_max=60, flush_interval=0.05))
for i in range(100):
    log.info("rec %d", i)
deadline = time.monotonic() + 30
h = log.handlers[0]
while h.drain.stats().retries == 0 and time.monotonic() < deadline:
    time.sleep(0.01)
print("retries", h.drain.stats().retries)
""",
        LOGDRAIN_URL=collector.url,
    )
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    assert "retries 0" not in result.stdout
    _assert_exits_within(elapsed, 1.0)

    collector.down()
    start = time.monotonic()
    result = proc.run(
        PRELUDE
        + """
log.addHandler(logdrain.DrainHandler(shutdown_timeout=1, backoff_initial=5))
for i in range(100):
    log.info("rec %d", i)
""",
        LOGDRAIN_URL=collector.url,
    )
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    assert "not delivered in total: 100 of 100" in result.stderr
    _assert_exits_within(elapsed, 1.0)


def test_uncaught_exception_in_main_is_shipped_then_previous_hook_runs(
    collector: Collector,
) -> None:
    """sys.excepthook: the traceback reaches the collector, then the earlier hook runs."""
    result = proc.run(
        PRELUDE
        + """
def previous(t, v, tb):
    print("PREVIOUS HOOK", t.__name__, flush=True)
sys.excepthook = previous
log.addHandler(logdrain.DrainHandler(flush_interval=30))
log.info("before the crash")
def explode():
    return 1 / 0
explode()
""",
        LOGDRAIN_URL=collector.url,
    )
    assert result.returncode == 1
    assert "PREVIOUS HOOK ZeroDivisionError" in result.stdout
    assert collector.wait_for_count(2)
    crash = [r for r in collector.records if r["logger"] == "logdrain.crash"]
    assert len(crash) == 1
    assert crash[0]["level"] == "CRITICAL"
    assert "ZeroDivisionError" in crash[0]["exception"]
    assert "explode" in crash[0]["exception"]
    assert _messages(collector, "before the crash")


def test_uncaught_exception_in_thread_is_shipped_then_previous_hook_runs(
    collector: Collector,
) -> None:
    """threading.excepthook: the thread's traceback is shipped, then the earlier hook runs."""
    result = proc.run(
        PRELUDE
        + """
def previous(args):
    print("PREVIOUS THREAD HOOK", args.exc_type.__name__, flush=True)
threading.excepthook = previous
log.addHandler(logdrain.DrainHandler(flush_interval=30))
def work():
    raise KeyError("missing-key")
t = threading.Thread(target=work, name="worker-7")
t.start(); t.join()
print("main continues")
""",
        LOGDRAIN_URL=collector.url,
    )
    assert result.returncode == 0, result.stderr
    assert "PREVIOUS THREAD HOOK KeyError" in result.stdout
    assert "main continues" in result.stdout
    assert collector.wait_for_count(1)
    crash = [r for r in collector.records if r["logger"] == "logdrain.crash"]
    assert len(crash) == 1
    assert "missing-key" in crash[0]["exception"]
    assert "worker-7" in crash[0]["message"]


def test_capture_crashes_can_be_turned_off(collector: Collector) -> None:
    """capture_crashes=False leaves sys.excepthook alone."""
    result = proc.run(
        PRELUDE
        + """
log.addHandler(logdrain.DrainHandler(capture_crashes=False))
print("hook is default:", sys.excepthook is sys.__excepthook__)
""",
        LOGDRAIN_URL=collector.url,
    )
    assert "hook is default: True" in result.stdout


def _terminate_when_ready(
    code: str, collector: Collector, before_signal: Callable[[], object] = lambda: None
) -> tuple[int, str]:
    """Start ``code``, wait for its READY line, send SIGTERM; (exit status, stdout).

    A child still alive after 45 s dumps every thread's stack and exits, and
    the test fails with that dump (a hang here was once seen, not reproduced)."""
    watchdog = "import faulthandler\nfaulthandler.dump_traceback_later(45, exit=True)\n"
    child = proc.start(watchdog + PRELUDE + code, LOGDRAIN_URL=collector.url)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "READY"
        before_signal()
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=60)
        assert "Timeout (0:00:45)!" not in err, err
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    return child.returncode, out


def test_sigterm_flushes_then_dies_by_signal(collector: Collector) -> None:
    """flush_on_signals: SIGTERM delivers pending records, then the process dies by SIGTERM."""
    returncode, out = _terminate_when_ready(
        """
log.addHandler(logdrain.DrainHandler(flush_interval=30, flush_on_signals="SIGTERM"))
for i in range(300):
    log.info("rec %d", i)
print("READY", flush=True)
time.sleep(120)
print("NOT KILLED", flush=True)
""",
        collector,
    )
    assert returncode == -signal.SIGTERM
    assert "NOT KILLED" not in out
    assert collector.wait_for_count(300)
    assert len(_messages(collector, "rec ")) == 300


def test_sigterm_while_logging_flat_out(collector: Collector) -> None:
    """SIGTERM during a flat-out logging loop flushes and ends the process by the signal."""
    returncode, _ = _terminate_when_ready(
        """
log.addHandler(logdrain.DrainHandler(flush_interval=30, flush_on_signals="SIGTERM"))
print("READY", flush=True)
i = 0
while True:
    log.info("busy %d", i)
    i += 1
""",
        collector,
        before_signal=lambda: collector.wait_for_count(1),
    )
    assert returncode == -signal.SIGTERM
    assert collector.duplicates == 0


def test_flush_from_inside_a_log_call_does_not_deadlock(collector: Collector) -> None:
    """A signal handler runs between bytecodes, maybe while put() holds the queue lock:
    flush() from there must not wait on a lock its own thread holds."""
    drain = logdrain.Drain(collector.url)
    returned = threading.Event()

    def handler_inside_put() -> None:
        with drain._queue._lock:  # what the main thread holds inside put()
            drain.flush(0.1)
            returned.set()

    try:
        t = threading.Thread(target=handler_inside_put, daemon=True)
        t.start()
        assert returned.wait(30)
    finally:
        drain.close()


def test_sigterm_chains_to_previous_python_handler(collector: Collector) -> None:
    """An existing SIGTERM handler still runs after the flush."""
    returncode, out = _terminate_when_ready(
        """
import signal
def previous(signum, frame):
    print("PREVIOUS SIGNAL HANDLER", flush=True)
    sys.exit(3)
signal.signal(signal.SIGTERM, previous)
log.addHandler(logdrain.DrainHandler(flush_interval=30, flush_on_signals=["SIGTERM"]))
for i in range(50):
    log.info("rec %d", i)
print("READY", flush=True)
time.sleep(120)
""",
        collector,
    )
    assert returncode == 3
    assert "PREVIOUS SIGNAL HANDLER" in out
    assert collector.wait_for_count(50)


def test_fork_child_starts_empty_and_each_record_arrives_once(collector: Collector) -> None:
    """After os.fork() the child's queue is empty: the parent's pending records arrive once."""
    result = proc.run(
        PRELUDE
        + """
h = logdrain.DrainHandler(flush_interval=30)
log.addHandler(h)
for i in range(10):
    log.info("before %d", i)
assert h.drain.flush(30)
for i in range(5):
    log.info("pending %d", i)   # still queued at fork time
pid = os.fork()
if pid == 0:
    for i in range(7):
        log.info("child %d", i)
    ok = h.drain.flush(30)
    os._exit(0 if ok and h.drain.stats().delivered == 7 else 1)
_, status = os.waitpid(pid, 0)
print("child status", os.waitstatus_to_exitcode(status))
for i in range(3):
    log.info("after %d", i)
""",
        LOGDRAIN_URL=collector.url,
    )
    assert result.returncode == 0, result.stderr
    assert "child status 0" in result.stdout
    assert collector.wait_for_count(25)
    for prefix, n in (("before ", 10), ("pending ", 5), ("child ", 7), ("after ", 3)):
        got = _messages(collector, prefix)
        assert sorted(got) == sorted(f"{prefix}{i}" for i in range(n)), prefix
    assert collector.count == 25
    assert collector.duplicates == 0


def test_fork_child_sends_in_the_background(collector: Collector) -> None:
    """A forked child's sender threads start on its first record: its records
    go out within flush_interval, without a flush() or an exit."""
    result = proc.run(
        PRELUDE
        + """
h = logdrain.DrainHandler(flush_interval=0.1)
log.addHandler(h)
log.info("parent %d", 0)
assert h.drain.flush(30)
pid = os.fork()
if pid == 0:
    for i in range(3):
        log.info("child %d", i)
    deadline = time.monotonic() + 30
    while h.drain.stats().delivered < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    os._exit(0 if h.drain.stats().delivered == 3 else 1)
_, status = os.waitpid(pid, 0)
print("child status", os.waitstatus_to_exitcode(status))
""",
        LOGDRAIN_URL=collector.url,
    )
    assert result.returncode == 0, result.stderr
    assert "child status 0" in result.stdout
    assert len(_messages(collector, "child ")) == 3


def test_multiprocessing_fork_child_records_arrive(collector: Collector) -> None:
    """A multiprocessing child (fork start method) delivers its records when it ends."""
    result = proc.run(
        PRELUDE
        + """
import multiprocessing as mp
log.addHandler(logdrain.DrainHandler(flush_interval=30))
log.info("parent %d", 0)
def work(n):
    for i in range(n):
        log.info("mp-child %d", i)
if __name__ == "__main__":
    ctx = mp.get_context("fork")
    p = ctx.Process(target=work, args=(20,))
    p.start(); p.join()
    print("exitcode", p.exitcode)
""",
        LOGDRAIN_URL=collector.url,
    )
    assert result.returncode == 0, result.stderr
    assert "exitcode 0" in result.stdout
    assert collector.wait_for_count(21)
    assert len(_messages(collector, "mp-child ")) == 20
    assert len(_messages(collector, "parent ")) == 1


def test_dictconfig_twice_does_not_leak_threads(collector: Collector) -> None:
    """Re-applying dictConfig closes the old handler's drain: thread count stays flat."""
    result = proc.run(
        PRELUDE
        + """
import logging.config
def config():
    logging.config.dictConfig({
        "version": 1,
        "handlers": {"ship": {"class": "logdrain.DrainHandler", "url": os.environ["URL"],
                              "level": "INFO", "batch_size": 200, "flush_interval": 0.05,
                              "concurrency": 2}},
        "loggers": {"app": {"handlers": ["ship"], "level": "INFO", "propagate": False}},
    })
def ours():
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("logdrain"))
counts = []
for round in range(4):
    config()
    for i in range(50):
        log.info("round %d rec %d", round, i)
    # Old drains wind down in the background; a leak would keep their threads.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(ours()) > 2:
        time.sleep(0.01)
    counts.append(len(ours()))
print("COUNTS", counts)
""",
        URL=collector.url,
    )
    assert result.returncode == 0, result.stderr
    counts = eval(result.stdout.split("COUNTS", 1)[1].strip())  # noqa: S307 - our own output
    # the live drain's `concurrency` (2) sender threads, whatever the round
    assert max(counts) <= 2, counts
    assert collector.wait_for_count(200)
    assert collector.duplicates == 0


# -- in-process: timeouts honoured in every state -----------------------------


def test_flush_and_close_honour_timeouts_when_idle_busy_and_hung(collector: Collector) -> None:
    """flush(timeout) and close(timeout) return in every state, with an honest result."""
    idle = logdrain.Drain(collector.url)
    assert idle.flush(5)
    assert idle.close(5)

    busy = logdrain.Drain(collector.url, flush_interval=0.01)
    for i in range(20_000):
        busy.submit({"message": f"busy {i}"})
    assert busy.close(60)
    stats = busy.stats()
    assert stats.balanced
    assert stats.pending == 0

    collector.hang()
    hung = logdrain.Drain(collector.url, read_timeout=120, flush_interval=0.01)
    hung.submit({"message": "stuck"})
    assert collector.wait_for(lambda c: any(r.status == 0 for r in c.requests))
    assert hung.flush(0.2) is False
    assert hung.close(0.2) is False
    stats = hung.stats()
    assert stats.dropped_closed == 1
    assert stats.balanced
    assert hung.close(0.1) is False  # idempotent, still honest
    collector.hang(False)


def test_logging_shutdown_after_close_is_harmless(collector: Collector) -> None:
    """logging.shutdown() calling flush/close on an already closed handler does nothing bad."""
    handler = logdrain.DrainHandler(collector.url)
    logger = logging.getLogger("test.shutdown")
    logger.addHandler(handler)
    try:
        logger.warning("one")
        handler.close()
        logging.shutdown([lambda: handler])  # type: ignore[list-item]
        handler.flush()
        handler.close()
        logger.warning("after close")  # refused and counted, not raised
    finally:
        logger.removeHandler(handler)
    stats = handler.drain.stats()
    assert stats.delivered == 1
    assert stats.dropped_closed == 1
    assert stats.balanced


def test_signal_handlers_only_from_main_thread(collector: Collector) -> None:
    """Enabling flush_on_signals off the main thread fails with a clear error."""
    errors: list[BaseException] = []

    def make() -> None:
        try:
            logdrain.Drain(collector.url, flush_on_signals="SIGTERM")
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=make)
    t.start()
    t.join()
    assert len(errors) == 1
    assert isinstance(errors[0], logdrain.ConfigError)
    assert "flush_on_signals" in str(errors[0])
    assert "main thread" in str(errors[0])


def test_crash_hooks_install_idempotently_and_restore_only_their_own() -> None:
    """Installing twice wraps once; uninstall leaves a hook someone else set later."""
    lifecycle.uninstall_crash_hooks()  # earlier drains in this process installed them
    before = sys.excepthook
    try:
        lifecycle.install_crash_hooks()
        lifecycle.install_crash_hooks()
        assert sys.excepthook is lifecycle._excepthook
        assert lifecycle._prev_excepthook is before
        lifecycle.uninstall_crash_hooks()
        assert sys.excepthook is before

        lifecycle.install_crash_hooks()

        def someone_else(*args: object) -> None:
            pass

        sys.excepthook = someone_else
        lifecycle.uninstall_crash_hooks()
        assert sys.excepthook is someone_else
    finally:
        sys.excepthook = before
        threading.excepthook = threading.__excepthook__
