"""The sender threads: queue -> batch -> encode -> POST -> ledger.

``concurrency`` daemon threads each loop on take, encode, deliver. Each holds
at most one batch, so at most ``concurrency`` batches are ever in flight and
while the collector is down records wait in the bounded queue, where the
overflow policy applies.

Why no dispatcher handing batches to a ``ThreadPoolExecutor``: under load the
caller's thread holds the GIL, and every hand-off between two threads (the
dispatcher waking for a free slot, a pool thread waking for its work item)
waits up to a GIL switch interval (5 ms). A thread that takes, encodes and
sends its own batch has no hand-off (see benchmarks/README.md). Daemon
threads also never join the interpreter's exit: ``Drain.close`` (run by the
exit hook) stops them within its deadline.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from . import guard
from .config import Settings
from .encode import Encoder
from .errors import PermanentError, TransientError
from .queue import Lot, Outcome, RecordQueue
from .report import Reporter
from .transport import Aborted, Transport

#: How long a forked child's senders let records linger at most: a prefork
#: worker (gunicorn, Celery's pool) may end with ``os._exit``, where no hook
#: runs, so what it logged in about its last FORKED_LINGER seconds is all it
#: can lose. Costs at most 1/FORKED_LINGER requests a second per child.
FORKED_LINGER = 0.1


class Worker:
    """The sender threads of one Drain."""

    def __init__(
        self,
        settings: Settings,
        queue: RecordQueue,
        encoder: Encoder,
        transport: Transport,
        reporter: Reporter,
    ) -> None:
        self._s = settings
        self._queue = queue
        self._encoder = encoder
        self._transport = transport
        self._reporter = reporter
        self._reset()

    def _reset(self) -> None:
        self._start_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._seen_overflow = 0
        self.started = False
        self.linger = self._s.flush_interval

    def reset_after_fork(self) -> None:
        self._reset()
        self.linger = min(self._s.flush_interval, FORKED_LINGER)

    # -- lifecycle --

    def start(self) -> None:
        """Start the sender threads (idempotent). Never waits: a start already
        under way (on another thread, or on this one when a signal handler
        logs in the middle of it) is left to finish, and the record that
        called this stays queued for the threads it starts. At interpreter
        shutdown a thread may not start: records then stay queued, and
        ``close`` counts them ``dropped_closed`` at once."""
        if not self._start_lock.acquire(blocking=False):
            return
        try:
            if self.started or self._stop.is_set():
                return
            for i in range(self._s.concurrency):
                thread = threading.Thread(
                    target=self._run, name=f"logdrain-{self._s.name}-send-{i}", daemon=True
                )
                try:
                    thread.start()
                except RuntimeError:
                    break
                self._threads.append(thread)
            self.started = bool(self._threads)
        finally:
            self._start_lock.release()

    def alive(self) -> bool:
        """True while at least one sender thread runs."""
        return any(thread.is_alive() for thread in self._threads)

    def stop(self) -> None:
        """Let the sender threads end: each finishes the batch it holds (its
        retries bounded by the transport's deadline) and takes no other."""
        self._stop.set()
        self._queue.wake()

    # -- the loop --

    def _run(self) -> None:
        """A sender thread: nothing a record, a collector or a user callback
        does ends it. Anything that escapes a batch is reported (once per
        kind of failure and ``warn_interval``), the batch is accounted as
        ``failed``, and the thread carries on as a fresh sender."""
        guard.mark_thread()
        while not self._stop.is_set():
            try:
                self._loop()
            except BaseException as exc:  # noqa: BLE001 - a sender must never die
                self._reporter.warn(
                    "sender",
                    f"a sender thread hit {type(exc).__name__}: {_safe_text(exc)}; "
                    "its batch is counted as failed and the sender carries on",
                )
                self._stop.wait(0.05)  # never a busy loop, whatever keeps failing
            else:
                return

    def _loop(self) -> None:
        s = self._s
        queue = self._queue
        while not self._stop.is_set():
            lot, items = queue.take(s.batch_size, self.linger)
            self._report_overflow()
            if lot is None:
                if queue.closed:  # closed and empty: nothing more will come
                    return
                continue
            try:
                bodies = self.prepare(items)
                del items  # during an outage, hold the compact bodies only
                for count, body in bodies:
                    self.deliver(lot, count, body)
            finally:
                if lot.remaining > 0:  # something escaped: nothing of it stays in flight
                    queue.settle(lot, lot.remaining, "failed")

    # -- one batch --

    def prepare(self, items: list[Any]) -> list[tuple[int, bytes]]:
        """Encode records and cut them into bodies of at most ``batch_bytes``."""
        bodies = self._encoder.encode_batch(items)
        if bodies is not None:  # the usual case
            return bodies
        encode = self._encoder.encode
        limit = self._s.batch_bytes
        batches: list[tuple[int, bytes]] = []
        parts: list[bytes] = []
        size = 0
        truncated = 0
        for item in items:
            data, cut = encode(item)
            truncated += cut
            # body_size counts the framing too: "[", "]" and one separator per part.
            if parts and self._encoder.body_size(size + len(data), len(parts) + 1) > limit:
                batches.append((len(parts), self._encoder.body(parts)))
                parts, size = [], 0
            parts.append(data)
            size += len(data)
        if parts:
            batches.append((len(parts), self._encoder.body(parts)))
        if truncated:
            self._queue.count_truncated(truncated)
            self._reporter.warn(
                "truncated",
                f"{truncated} record(s) above max_record_bytes={self._s.max_record_bytes} "
                "were shortened (marked '...[logdrain: truncated N chars]')",
            )
        return batches

    def deliver(self, lot: Lot, count: int, body: bytes) -> None:
        """Deliver one body and account for its records. Never raises.

        A failure's stderr line is written before the batch is settled, so once
        flush() or close() sees the batch accounted for, its line is out (and
        precedes close()'s summary)."""
        batch_id = uuid.uuid4().hex
        outcome: Outcome = "failed"
        try:
            self._transport.deliver(body, batch_id)
            outcome = "delivered"
        except Aborted:
            outcome = "dropped_closed"
        except PermanentError as exc:
            outcome = "rejected"
            if not lot.abandoned:  # abandoned: counted dropped_closed, and it stays there
                self._reporter.warn(
                    "rejected", f"{count} record(s) rejected, not retried: {exc.describe()}"
                )
        except TransientError as exc:
            if not lot.abandoned:
                self._reporter.warn(
                    "failed", f"gave up on {count} record(s) after retries: {exc.describe()}"
                )
        except Exception as exc:  # noqa: BLE001 - the sender must survive anything
            if not lot.abandoned:
                self._reporter.warn(
                    "failed", f"{count} record(s) failed: {type(exc).__name__}: {_safe_text(exc)}"
                )
        finally:
            self._queue.settle(lot, count, outcome)

    def _report_overflow(self) -> None:
        dropped = self._queue.dropped_overflow
        if dropped != self._seen_overflow:
            fresh = dropped - self._seen_overflow
            if self._reporter.warn(
                "overflow",
                f"queue full (queue_size={self._s.queue_size}, overflow={self._s.overflow}): "
                f"{fresh} record(s) dropped, {dropped} in total",
            ):
                self._seen_overflow = dropped


def _safe_text(exc: BaseException) -> str:
    """``str(exc)`` on one line, shortened; never raises."""
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - a hostile exception's __str__
        return "<unprintable>"
    return " ".join(text.split())[:300]
