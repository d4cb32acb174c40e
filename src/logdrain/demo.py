"""``python -m logdrain demo``: watch logdrain ride out a collector outage.

What it does, in order:

1. starts the embedded collector (:class:`logdrain.testing.Collector`) on
   127.0.0.1 at an ephemeral port;
2. creates ONE :class:`logdrain.Drain` with a deliberately small queue and
   fast retries, and feeds it from both front ends: stdlib ``logging``
   (configured through ``logging.config.dictConfig`` with a
   :class:`logdrain.DrainHandler`) and, when it is installed, ``structlog``
   (through :class:`logdrain.DrainProcessor`; nothing is printed locally);
3. runs a small workload (gradient descent on synthetic data, with numpy when
   it is importable, pure Python otherwise) that makes exactly one log call
   per step, spread evenly over a few seconds;
4. takes the collector down in the middle of the run and brings it back, so
   batches are retried and, once the queue is full, the oldest records are
   evicted (``overflow='drop_oldest'``);
5. flushes and closes the drain and checks the accounting: every log call
   reached the drain; ``submitted == delivered + pending + dropped + rejected
   + failed``; the collector stored exactly the records the drain counts as
   delivered (a batch it stored but could not acknowledge before the outage
   cut the connection comes back as a retry under the same batch id: such
   repeats are reported and set apart, as a collector deduplicating on the
   batch id header would); and nothing was rejected, failed or abandoned at
   close (the outage is meant to cost only queue-full drops).

Every wait is bounded, so the demo cannot hang. It configures process-global
state (``dictConfig`` on the ``demo`` logger, ``structlog.configure``); it
detaches and resets both when it ends.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import logging.config
import math
import random
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from .drain import Drain
from .processor import DrainProcessor
from .stats import DrainStats
from .testing import BATCH_ID_HEADER, Collector

__all__ = ["DEFAULT_OUTAGE", "DEFAULT_RECORDS", "DemoResult", "run_demo"]

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

LOGGER_NAME = "demo"


def _optional(name: str) -> Any | None:
    """An optional dependency's module, or None when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


_structlog: Any = _optional("structlog")


@dataclass
class DemoResult:
    """What the demo observed; :attr:`ok` decides the exit code."""

    calls: int
    """Log calls the workload made (one per step)."""
    stats: DrainStats
    """The drain's counters after ``close``."""
    received: int
    """Records the collector stored (``Collector.count``)."""
    duplicate_batches: int
    """2xx-answered requests repeating an already stored batch id (``Collector.duplicates``)."""
    repeated_records: int = 0
    """Records in those repeated requests: stored a second time."""
    steps_received: Counter[int] = field(default_factory=Counter)
    """How many times the collector stored the record of each workload step."""
    calls_ok: bool = False
    """Every log call reached the drain (``submitted == calls``)."""
    balanced: bool = False
    """The drain's ledger balanced (:attr:`DrainStats.balanced`)."""
    collector_ok: bool = False
    """The collector holds exactly the delivered records, repeats set apart."""
    delivery_ok: bool = False
    """Nothing was rejected, failed after retries or abandoned at close: the
    outage cost only the queue-full drops it is meant to show."""

    @property
    def ok(self) -> bool:
        """Every check passed."""
        return self.calls_ok and self.balanced and self.collector_ok and self.delivery_ok


# -- the workload ----------------------------------------------------------------

_TRUE_WEIGHTS = (2.0, -1.0, 0.5)
_SAMPLES = 64


class _Fit:
    """Full-batch gradient descent fitting ``y = X @ w``; one :meth:`step` per record."""

    backend = "?"

    def step(self, lr: float) -> float:
        """One update; returns the loss (mean squared error) before it."""
        raise NotImplementedError

    def weights(self) -> Any:
        """The current weights (a numpy array or a list: both ship as JSON lists)."""
        raise NotImplementedError

    def newton_step(self) -> None:
        """A Newton step on a mini-batch whose third feature is missing (all zero):
        its Hessian is singular, so this always raises."""
        raise NotImplementedError


class _NumpyFit(_Fit):
    backend = "numpy"

    def __init__(self, np: Any) -> None:
        self._np = np
        rng = np.random.default_rng(7)
        self._x = rng.normal(size=(_SAMPLES, len(_TRUE_WEIGHTS)))
        self._y = self._x @ np.array(_TRUE_WEIGHTS) + rng.normal(scale=0.1, size=_SAMPLES)
        self._w = np.zeros(len(_TRUE_WEIGHTS))

    def step(self, lr: float) -> float:
        residual = self._x @ self._w - self._y
        self._w = self._w - lr * (2.0 / _SAMPLES) * (self._x.T @ residual)
        return float(residual @ residual) / _SAMPLES

    def weights(self) -> Any:
        return self._w.round(4)

    def newton_step(self) -> None:
        batch = self._x[:8].copy()
        batch[:, 2] = 0.0
        self._np.linalg.inv(batch.T @ batch)  # LinAlgError: Singular matrix


class _PurePythonFit(_Fit):
    backend = "pure Python"

    def __init__(self) -> None:
        rng = random.Random(7)  # noqa: S311 - synthetic data, not crypto
        self._x = [[rng.gauss(0.0, 1.0) for _ in _TRUE_WEIGHTS] for _ in range(_SAMPLES)]
        self._y = [
            sum(a * b for a, b in zip(row, _TRUE_WEIGHTS, strict=True)) + rng.gauss(0.0, 0.1)
            for row in self._x
        ]
        self._w = [0.0 for _ in _TRUE_WEIGHTS]

    def step(self, lr: float) -> float:
        residual = [
            sum(a * b for a, b in zip(row, self._w, strict=True)) - y
            for row, y in zip(self._x, self._y, strict=True)
        ]
        for j in range(len(self._w)):
            grad = (
                2.0 / _SAMPLES * sum(r * row[j] for r, row in zip(residual, self._x, strict=True))
            )
            self._w[j] -= lr * grad
        return sum(r * r for r in residual) / _SAMPLES

    def weights(self) -> Any:
        return [round(w, 4) for w in self._w]

    def newton_step(self) -> None:
        rows = [[*row[:2], 0.0] for row in self._x[:8]]
        h = [[sum(r[i] * r[j] for r in rows) for j in range(3)] for i in range(3)]
        det = (
            h[0][0] * (h[1][1] * h[2][2] - h[1][2] * h[2][1])
            - h[0][1] * (h[1][0] * h[2][2] - h[1][2] * h[2][0])
            + h[0][2] * (h[1][0] * h[2][1] - h[1][1] * h[2][0])
        )
        _ = 1.0 / det  # ZeroDivisionError: the third row and column are all zero


def _make_fit() -> _Fit:
    np = _optional("numpy")
    return _PurePythonFit() if np is None else _NumpyFit(np)


# -- the front ends ----------------------------------------------------------------


def _configure_stdlib(drain: Drain) -> logging.Logger:
    """dictConfig: the ``demo`` logger gets a DrainHandler feeding the shared drain.

    ``"()"`` names a factory, and dictConfig passes the other keys to it as
    keyword arguments; values that are not strings (the Drain object) go
    through unchanged.
    """
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {
                "drain": {"()": "logdrain.DrainHandler", "drain": drain, "level": "INFO"},
            },
            "loggers": {
                LOGGER_NAME: {"handlers": ["drain"], "level": "INFO", "propagate": False},
            },
        }
    )
    return logging.getLogger(f"{LOGGER_NAME}.train")


def _discard(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """The last structlog processor: stop here, print nothing locally."""
    raise _structlog.DropEvent


def _configure_structlog(drain: Drain) -> Any | None:
    """structlog -> DrainProcessor(drain) -> discard; None when structlog is missing."""
    if _structlog is None:
        return None
    _structlog.configure(
        processors=[_structlog.contextvars.merge_contextvars, DrainProcessor(drain), _discard],
        cache_logger_on_first_use=False,
    )
    return _structlog.get_logger().bind(logger=f"{LOGGER_NAME}.structlog", via="structlog")


def _reset_structlog() -> None:
    if _structlog is not None:
        _structlog.reset_defaults()


# -- reporting helpers ---------------------------------------------------------------


def _ranges(numbers: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted integers as inclusive ``(first, last)`` runs."""
    runs: list[tuple[int, int]] = []
    for n in sorted(numbers):
        if runs and n == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    return runs


def _describe_ranges(numbers: Iterable[int], limit: int = 4) -> str:
    runs = _ranges(numbers)
    text = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in runs[:limit])
    if len(runs) > limit:
        text += f", ... ({len(runs) - limit} more runs)"
    return text


# -- the demo ----------------------------------------------------------------------


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
                logger = _configure_stdlib(drain)
                slog = _configure_structlog(drain)
                fit = _make_fit()
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
                _reset_structlog()
            return self.report(collector, drain)

    def intro(self, collector: Collector, fit: _Fit, have_structlog: bool) -> None:
        self.say(
            f"logdrain demo: {_plural(self.records, 'log call')} over ~{self.duration:.1f}s, "
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

    def log_step(self, i: int, fit: _Fit, lr: float, logger: logging.Logger, slog: Any) -> float:
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
        self, collector: Collector, drain: Drain, fit: _Fit, logger: logging.Logger, slog: Any
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

    def report(self, collector: Collector, drain: Drain) -> DemoResult:
        """Print the report and decide: every log call submitted, the ledger
        balanced, the collector holding exactly the delivered records (copies
        of a batch re-sent under the same batch id set apart: that is
        at-least-once delivery, see :func:`_repeated_records`), and nothing
        rejected, failed or abandoned at close."""
        s = drain.stats()
        steps: Counter[int] = Counter()
        for record in collector.records:
            step = record.get("step")
            if isinstance(step, int):
                steps[step] += 1
        result = DemoResult(
            calls=self.calls,
            stats=s,
            received=collector.count,
            duplicate_batches=collector.duplicates,
            repeated_records=_repeated_records(collector),
            steps_received=steps,
        )
        distinct = result.received - result.repeated_records
        result.calls_ok = s.submitted == self.calls
        result.balanced = s.balanced
        result.collector_ok = distinct == s.delivered == len(steps)
        result.delivery_ok = s.rejected == s.failed == s.dropped_closed == 0

        w = max(len(str(self.calls)), 5)
        lost = s.dropped_overflow + s.dropped_closed
        by_front_end = ", ".join(f"{k} {v}" for k, v in sorted(self.calls_by_front_end.items()))
        if not self.quiet:
            self.say()
        self.say("Report")
        self.say(f"  log calls made            {self.calls:>{w}}  ({by_front_end})")
        self.say(f"  submitted to the drain    {s.submitted:>{w}}")
        self.say(f"  delivered (2xx answers)   {s.delivered:>{w}}")
        self.say(
            f"  received by collector     {result.received:>{w}}  "
            f"in {_plural(_answered_requests(collector), 'request')} answered 2xx"
        )
        self.say(f"  retry attempts            {s.retries:>{w}}")
        self.say(
            f"  dropped: queue full       {s.dropped_overflow:>{w}}  "
            f"(oldest evicted: queue_size={QUEUE_SIZE}, overflow=drop_oldest)"
        )
        self.say(f"  dropped: at close         {s.dropped_closed:>{w}}")
        self.say(f"  rejected / failed         {s.rejected:>{w}} / {s.failed}")
        self.say(f"  pending                   {s.pending:>{w}}")
        self.say(
            f"  duplicate batches         {result.duplicate_batches:>{w}}"
            + (
                f"  ({result.repeated_records} records stored twice)"
                if result.repeated_records
                else ""
            )
        )
        missing = set(range(self.calls)) - set(steps)
        repeated = sorted(k for k, v in steps.items() if v > 1)
        if missing:
            note = "  (exactly the dropped ones)" if len(missing) == lost else ""
            self.say(f"  steps never received      {_describe_ranges(missing)}{note}")
        if repeated:
            self.say(f"  steps received twice      {_describe_ranges(repeated)}")

        self.say()
        self.say("  notable records, as the collector stored them:")
        by_step = {r.get("step"): r for r in collector.records}
        for step, kind in sorted(self.special.items()):
            first, *more = _describe_notable(kind, by_step.get(step))
            self.say(f"    step {step:>{w}}  {first}")
            for line in more:
                self.say(f"    {'':>{w + 5}}  {line}")
        if result.duplicate_batches:
            note = (
                f"note: {_plural(result.duplicate_batches, 'batch')} "
                f"({result.repeated_records} records) reached the collector twice. The collector "
                "stored the batch, but its answer never reached logdrain (the outage cut the "
                "connection in between), so logdrain retried it under the same "
                f"{BATCH_ID_HEADER} header. That is at-least-once delivery: a collector can "
                "drop such repeats by that header, as the check below does."
            )
            for line in textwrap.wrap(note, 96, initial_indent="  ", subsequent_indent="        "):
                self.say(line)
        self.say()
        self.say(
            _verdict(
                result.calls_ok and result.balanced,
                f"accounting: {_plural(self.calls, 'log call')}, {s.submitted} submitted == "
                f"{s.delivered} delivered + {s.pending} pending + {lost} dropped + "
                f"{s.rejected} rejected + {s.failed} failed",
            )
        )
        if result.repeated_records:
            collector_line = (
                f"collector:  received {result.received} - {result.repeated_records} repeated "
                f"= {distinct} distinct == delivered {s.delivered}"
            )
        else:
            collector_line = (
                f"collector:  received {result.received} == delivered {s.delivered}, "
                "0 duplicate batches"
            )
        self.say(_verdict(result.collector_ok, collector_line))
        self.say(
            _verdict(
                result.delivery_ok,
                f"delivery:   {s.rejected} rejected, {s.failed} failed after retries, "
                f"{s.dropped_closed} abandoned at close",
            )
        )
        if not result.delivery_ok:
            self.say(
                "Only queue-full drops are expected here; logdrain's stderr lines say why "
                "batches were refused or given up."
            )
        if result.ok:
            copies = (
                f" ({result.repeated_records} of them twice, see the note)"
                if result.repeated_records
                else " exactly once"
            )
            tail = f" and the {lost} dropped ones were counted, not lost silently" if lost else ""
            self.say(f"Every record is accounted for: {s.delivered} arrived{copies}{tail}.")
        return result


def _describe_notable(kind: str, record: dict[str, Any] | None) -> list[str]:
    """Report lines for a warning or exception record (None: not received)."""
    if record is None:
        label = "logger.exception" if kind == "exception" else "warning"
        return [f"{label}: not received"]
    label = "logger.exception" if kind == "exception" else f"warning via {record.get('via')}"
    text = f"{label}: {record.get('message') or record.get('event')}"
    if kind != "exception":
        return [f"{text} (lr={record.get('lr')})"]
    lines = str(record.get("exception") or "").strip().splitlines()
    if not lines:
        return [text, "WITHOUT its traceback"]
    return [text, f"with its traceback: {len(lines)} lines, the last: {lines[-1]}"]


def _repeated_records(collector: Collector) -> int:
    """Records in 2xx-answered requests whose batch id had already been stored.

    Such a request is a retry of a batch the collector stored but whose
    answer never reached the sender (here: ``Collector.down()`` cut the
    connection in between). The sender counts that batch delivered once.
    """
    seen: set[str] = set()
    repeated = 0
    header = BATCH_ID_HEADER.lower()
    for request in collector.requests:
        if not 200 <= request.status < 300:
            continue
        batch_id = next((v for k, v in request.headers.items() if k.lower() == header), None)
        if batch_id is None:
            continue
        if batch_id in seen:
            repeated += request.record_count
        else:
            seen.add(batch_id)
    return repeated


def _answered_requests(collector: Collector) -> int:
    """Requests the collector answered 2xx (stored): one per batch body."""
    return sum(1 for request in collector.requests if 200 <= request.status < 300)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}{'es' if noun.endswith('ch') else 's'}"


def _verdict(ok: bool, text: str) -> str:
    return f"{'OK  ' if ok else 'FAIL'} {text}"


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
