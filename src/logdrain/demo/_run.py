"""One run of the demo: the collector, the drain, the schedule of the
outage and the progress lines (see :mod:`logdrain.demo`)."""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from collections import Counter
from typing import Any, TextIO

from ..drain import Drain
from ..testing import Collector
from ._frontends import LOGGER_NAME, configure_stdlib, configure_structlog, reset_structlog
from ._report import DemoResult, plural, report
from ._workload import Fit, make_fit

DEFAULT_RECORDS = 3000
DEFAULT_OUTAGE = 2.5
MAX_OUTAGE = 60.0

LEAD_IN = 1.5
"""Seconds of logging before the collector goes down."""
LEAD_OUT = 1.5
"""Seconds of logging after it comes back."""
PROGRESS_EVERY = 0.5
"""Seconds between two progress lines."""
FLUSH_TIMEOUT = 15.0
"""Upper bound on the final flush."""
CLOSE_TIMEOUT = 5.0
"""Upper bound on ``Drain.close``."""

QUEUE_SIZE = 500
BATCH_SIZE = 100
CONCURRENCY = 2
FLUSH_INTERVAL = 0.1
BACKOFF_INITIAL = 0.05
BACKOFF_MAX = 0.5


class _Demo:
    """One run: owns the collector, the drain, the loggers and the output."""

    def __init__(self, records: int, outage: float, quiet: bool, out: TextIO) -> None:
        self.records = records
        self.outage = outage
        self.quiet = quiet
        self.out = out
        self.collector_up = True
        self.start = time.monotonic()
        self.calls = 0
        self.calls_by_front_end: Counter[str] = Counter()
        # Enough attempts, and enough retry time, to ride out the outage with
        # backoff capped at BACKOFF_MAX (each wait is at least half of it).
        self.max_attempts = math.ceil(outage / (BACKOFF_MAX / 2)) + 10
        self.max_retry_time = outage + 10.0
        self.duration = LEAD_IN + outage + LEAD_OUT
        self.down_at = LEAD_IN if outage > 0 else math.inf
        self.up_at = LEAD_IN + outage if outage > 0 else math.inf
        self.next_progress = PROGRESS_EVERY
        # The notable records (one logger.exception, two warnings) are logged
        # while the collector is up: one before the outage, two after it.
        self.special: dict[int, str] = {}
        for at, kind in (
            (LEAD_IN + outage + 0.4 * LEAD_OUT, "exception"),
            (0.5 * LEAD_IN, "warning:logging"),
            (LEAD_IN + outage + 0.7 * LEAD_OUT, "warning:structlog"),
        ):
            self.special.setdefault(self.step_at(at), kind)

    def step_at(self, seconds: float) -> int:
        """The workload step logged about ``seconds`` into the run."""
        return min(self.records - 1, int(seconds / self.duration * self.records))

    # -- output --

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def event(self, text: str) -> None:
        if not self.quiet:
            self.say(f"[{self.elapsed():4.1f}s] {text}")

    def progress(self, drain: Drain) -> None:
        if self.quiet:
            return
        s = drain.stats()
        width = len(str(self.records))
        state = "UP" if self.collector_up else "DOWN"
        refused = s.rejected + s.failed  # not expected: shown only when it happens
        self.say(
            f"[{self.elapsed():4.1f}s] logged {s.submitted:{width}d}  "
            f"delivered {s.delivered:{width}d}  pending {s.pending:{width}d}  "
            f"retries {s.retries:3d}  dropped {s.dropped_overflow + s.dropped_closed:{width}d}  "
            + (f"rejected/failed {refused}  " if refused else "")
            + f"collector: {state}"
        )

    # -- the run --

    def run(self) -> DemoResult:
        with Collector() as collector:
            drain = Drain(
                collector.url,
                name="demo",
                queue_size=QUEUE_SIZE,
                overflow="drop_oldest",
                batch_size=BATCH_SIZE,
                flush_interval=FLUSH_INTERVAL,
                backoff_initial=BACKOFF_INITIAL,
                backoff_max=BACKOFF_MAX,
                max_attempts=self.max_attempts,
                max_retry_time=self.max_retry_time,
                concurrency=CONCURRENCY,
                format="json",
                connect_timeout=2.0,
                read_timeout=5.0,
                shutdown_timeout=CLOSE_TIMEOUT,
                trust_env=False,  # the collector is embedded: a proxy variable must not apply
            )
            try:
                logger = configure_stdlib(drain)
                slog = configure_structlog(drain)
                fit = make_fit()
                self.intro(collector, fit, slog is not None)
                self.start = time.monotonic()
                self.workload(collector, drain, fit, logger, slog)
                self.finish(drain)
            finally:
                # Interrupted mid-outage: let the close deliver instead of retrying.
                if not self.collector_up:
                    with contextlib.suppress(OSError):
                        collector.up()
                drain.close(CLOSE_TIMEOUT)  # bounded; at once when already closed
                for handler in logging.getLogger(LOGGER_NAME).handlers[:]:
                    logging.getLogger(LOGGER_NAME).removeHandler(handler)
                    handler.close()
                reset_structlog()
            return report(self, collector, drain, QUEUE_SIZE)

    def intro(self, collector: Collector, fit: Fit, have_structlog: bool) -> None:
        self.say(
            f"logdrain demo: {plural(self.records, 'log call')} over ~{self.duration:.1f}s, "
            "all into ONE Drain"
        )
        if self.quiet:
            return
        self.say(f"  collector   {collector.url} (embedded, in this process)")
        if self.outage > 0:
            self.say(
                f"  outage      the collector goes DOWN at {LEAD_IN:.1f}s for {self.outage:.1f}s "
                "(connections refused)"
            )
        else:
            self.say("  outage      none (--outage 0)")
        self.say(
            f"  drain       queue_size={QUEUE_SIZE} overflow=drop_oldest batch_size={BATCH_SIZE} "
            f"concurrency={CONCURRENCY} flush_interval={FLUSH_INTERVAL}s"
        )
        self.say(
            f"  retries     up to {self.max_attempts} attempts per batch, "
            f"backoff {BACKOFF_INITIAL}s..{BACKOFF_MAX}s, give up after {self.max_retry_time:.0f}s"
        )
        front_ends = "stdlib logging (dictConfig + DrainHandler)"
        if have_structlog:
            front_ends += " and structlog (DrainProcessor)"
        self.say(f"  front ends  {front_ends}")
        if not have_structlog:
            self.say("              structlog is not installed: stdlib logging only")
        self.say(f"  workload    gradient descent ({fit.backend}), one log call per step")
        self.say(
            "  columns     pending = queued + in flight; retries = retry attempts; "
            "dropped = evicted from the full queue"
        )
        self.say("  logdrain's own warnings, if any, go to stderr as 'logdrain[demo]: ...'")
        self.say()

    def log_step(self, i: int, fit: Fit, lr: float, logger: logging.Logger, slog: Any) -> float:
        """Exactly one log call for step ``i``; returns the learning rate to use next."""
        special = self.special.get(i, "")
        if special.startswith("warning:"):
            use_structlog = slog is not None and special == "warning:structlog"
        else:
            use_structlog = slog is not None and i % 5 >= 3
        if special == "exception":
            try:
                fit.newton_step()
            except (ArithmeticError, ValueError):
                logger.exception(
                    "Newton step failed; continuing with gradient steps",
                    extra={"step": i, "via": "logging"},
                )
            self.count("logging")
            return lr
        loss = fit.step(lr)
        if special.startswith("warning:"):
            lr /= 2
            if use_structlog:
                slog.warning("learning rate halved", step=i, loss=loss, lr=lr)
            else:
                logger.warning(
                    "learning rate halved",
                    extra={"step": i, "loss": loss, "lr": lr, "via": "logging"},
                )
        elif use_structlog:
            slog.info("training step", step=i, loss=loss, lr=lr, weights=fit.weights())
        else:
            logger.info(
                "step %d: loss=%.5f",
                i,
                loss,
                extra={
                    "step": i,
                    "loss": loss,
                    "lr": lr,
                    "weights": fit.weights(),
                    "via": "logging",
                },
            )
        self.count("structlog" if use_structlog else "logging")
        return lr

    def count(self, front_end: str) -> None:
        self.calls += 1
        self.calls_by_front_end[front_end] += 1

    def workload(
        self, collector: Collector, drain: Drain, fit: Fit, logger: logging.Logger, slog: Any
    ) -> None:
        """Log the records spread evenly over the run, taking the collector
        down and up on schedule and printing progress in between."""
        lr = 0.05
        for i in range(self.records):
            self.tick_until(self.duration * i / self.records, collector, drain)
            lr = self.log_step(i, fit, lr, logger, slog)
        self.tick_until(self.duration, collector, drain)  # the schedule holds for few records

    def tick_until(self, due: float, collector: Collector, drain: Drain) -> None:
        """Until ``due`` seconds into the run: outage edges and progress lines."""
        while True:
            now = self.elapsed()
            if now >= self.down_at:
                self.down_at = math.inf
                collector.down()
                self.collector_up = False
                self.event(
                    f"collector DOWN for {self.outage:.1f}s: batches are retried; "
                    f"the queue keeps the newest {QUEUE_SIZE} records"
                )
            if now >= self.up_at:
                self.up_at = math.inf
                if self.bring_up(collector):
                    self.event("collector UP again: retries get through, the backlog drains")
            if now >= self.next_progress:
                now = self.elapsed()  # the edges above may have taken a moment
                self.next_progress = (math.floor(now / PROGRESS_EVERY) + 1) * PROGRESS_EVERY
                self.progress(drain)
            if now >= due:
                return
            time.sleep(min(due - now, 0.02))

    def bring_up(self, collector: Collector) -> bool:
        """``collector.up()``, retried for about a second in case the port is
        briefly taken; False (and said so) when it stays down."""
        error: OSError | None = None
        for _ in range(10):
            try:
                collector.up()
            except OSError as exc:
                error = exc
                time.sleep(0.1)
            else:
                self.collector_up = True
                return True
        self.event(f"collector could not listen again ({error}); it stays DOWN")
        return False

    def finish(self, drain: Drain) -> None:
        self.event(f"workload done; flushing (at most {FLUSH_TIMEOUT:.0f}s)")
        deadline = time.monotonic() + FLUSH_TIMEOUT
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.event("flush timed out; closing anyway")
                break
            if drain.flush(min(PROGRESS_EVERY, remaining)):
                break
            self.progress(drain)
        self.progress(drain)
        closed_cleanly = drain.close(CLOSE_TIMEOUT)
        self.event("drain closed" if closed_cleanly else "drain closed; records were abandoned")


def run_demo(
    records: int = DEFAULT_RECORDS,
    outage: float = DEFAULT_OUTAGE,
    *,
    quiet: bool = False,
    out: TextIO | None = None,
) -> DemoResult:
    """Run the demo and print its progress and report to ``out`` (default stdout).

    ``quiet`` drops the progress lines and keeps the report. Raises
    ``ValueError`` for fewer than one record or an outage outside
    ``0..MAX_OUTAGE`` seconds.
    """
    if records < 1:
        raise ValueError(f"records must be at least 1, got {records}")
    if not 0 <= outage <= MAX_OUTAGE:
        raise ValueError(f"outage must be between 0 and {MAX_OUTAGE:g} seconds, got {outage}")
    return _Demo(records, outage, quiet, out if out is not None else sys.stdout).run()
