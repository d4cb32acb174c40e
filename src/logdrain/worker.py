"""The sender threads: queue -> batch -> encode -> POST -> ledger.

``concurrency`` daemon threads each loop on take, encode, deliver. Each holds
at most one lot (a take: at most ``batch_size`` records and a share of
``max_buffer_bytes``), so while the collector is down records wait in the
bounded queue, where the overflow policy applies. What a sender holds counts
against ``max_buffer_bytes`` until each batch has its outcome.

Why no dispatcher handing batches to a ``ThreadPoolExecutor``: under load the
caller's thread holds the GIL, and every hand-off between two threads (the
dispatcher waking for a free slot, a pool thread waking for its work item)
waits up to a GIL switch interval (5 ms). A thread that takes, encodes and
sends its own batch has no hand-off (see benchmarks/README.md). Daemon
threads also never join the interpreter's exit: ``Drain.close`` (run by the
exit hook) stops them within its deadline.
"""

from __future__ import annotations

import contextlib
import operator
import threading
import time
import uuid
from typing import Any

from . import guard
from .burial import Burial
from .config import Settings
from .cutting import cut, linear_framing
from .encode import Encoder
from .itemfacts import item_created
from .mapping import Mapper, Piece
from .presets import Unsendable
from .queue import Lot, RecordQueue
from .records import RESEND, STDLIB, part_size
from .report import Reporter
from .shipping import Shipper, safe_text
from .spooling import IDLE_WAKE, SpoolLink, to_piece
from .transport import Transport

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
        *,
        burial: Burial | None = None,
        spool: SpoolLink | None = None,
    ) -> None:
        self._s = settings
        self._queue = queue
        self._encoder = encoder
        self._transport = transport
        self._reporter = reporter
        self._spool = spool
        self._mapper = Mapper(settings, encoder) if settings.preset.maps else None
        self._shipper = Shipper(
            settings, transport, queue, reporter, encoder.body, burial=burial, spool=spool
        )
        #: True once ``Drain.resend`` queued an already encoded part: prepare()
        #: then looks for them (no cost per batch before that).
        self.resending = False
        self._framing = linear_framing(encoder.body_size)
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
        self._shipper.reset_after_fork()
        if self._spool is not None:
            self._spool.reset_after_fork()
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
                    f"a sender thread hit {type(exc).__name__}: {safe_text(exc)}; "
                    "its batch is counted as failed and the sender carries on",
                )
                self._stop.wait(0.05)  # never a busy loop, whatever keeps failing
            else:
                return

    def _loop(self) -> None:
        s = self._s
        queue = self._queue
        spool = self._spool
        while not self._stop.is_set():
            linger: float | None = self.linger
            idle = None
            if spool is not None:  # one test per batch without a spool
                if self._disk_turn(spool):
                    linger = None  # a backlog on disk: do not wait for a full batch
                idle = IDLE_WAKE if queue.spooled > 0 else None
            lot, items = queue.take(s.batch_size, linger, idle)
            self._report_overflow()
            if lot is None:
                if queue.closed:  # closed and empty: nothing more will come
                    return
                continue
            try:
                batches = self.prepare(lot, items)
                del items  # during an outage, hold the compact parts only
                # What the lot holds now counts against max_buffer_bytes
                # (RecordQueue.hold), each batch's parts until its outcome.
                sizes = [sum(map(_size, pieces)) for pieces in batches]
                queue.hold(lot, sum(sizes), max(sizes, default=0))
                batches.reverse()
                sizes.reverse()
                while batches:
                    self._shipper.ship(lot, batches.pop())  # settles every record in it
                    queue.release(lot, sizes.pop())
            finally:
                if lot.remaining > 0:  # something escaped: nothing of it stays in flight
                    queue.settle(lot, lot.remaining, "failed")
                queue.release(lot)  # the body's share, or everything after an escape

    # -- the spool --

    def _disk_turn(self, spool: SpoolLink) -> bool:
        """Adopt dead processes' parts when due; then, unless an outage holds
        batches back (or the close deadline passed), ship one batch of rows
        read back from disk, oldest first. True when it was acknowledged."""
        spool.adopt_if_due()
        if self._shipper.in_outage or self._stop.is_set():
            return False
        deadline = self._transport.deadline
        if deadline is not None and time.monotonic() >= deadline:
            return False
        # Rows read back count against max_buffer_bytes like a take (their parts
        # and two bodies): at most what the bound leaves; a row larger than that
        # only when the senders hold nothing else (so a large row still goes).
        queue = self._queue
        with spool.admission:
            room = queue.room_bytes() // 3
            strict = queue.in_flight_bytes > 0
            rows = spool.take(
                self._s.batch_size, max(1, min(self._s.batch_bytes, room)), strict=strict
            )
            if not rows:
                return False
            lot = Lot(0, sum(item.count for _, item in rows))
            lot.disk = {}
            fresh = self._unexpired_rows(lot, rows) if self._s.max_age else rows
            pieces = [to_piece(item) for _, item in fresh]
            size = sum(map(_size, pieces))
            queue.hold(lot, size, self._encoder.body_size(size, len(pieces)))
        settled = False
        try:
            for batch in self._cut(pieces):
                self._shipper.ship(lot, batch)
            settled = True
        finally:
            queue.release(lot)
            if not settled:  # something escaped: the rows stay on disk
                spool.release(rows)
        return spool.settle(rows, lot.disk)

    def _unexpired_rows(self, lot: Lot, rows: list[Any]) -> list[Any]:
        """Rows read back without those written more than ``max_age`` ago (a
        row's time is when it was written, seconds after its records were
        taken), which are tallied ``expired``: acknowledged, not sent."""
        cutoff = time.time() - self._s.max_age
        fresh = [row for row in rows if row[1].created >= cutoff]
        old = sum(item.count for _, item in rows) - sum(item.count for _, item in fresh)
        if old:
            lot.disk = {"expired": old}
            lot.remaining -= old
            self._reporter.warn(
                "expired",
                f"{old} record(s) on disk older than max_age={self._s.max_age:g}s were not sent",
            )
        return fresh

    # -- one batch --

    def prepare(self, lot: Lot, items: list[Any]) -> list[list[Piece]]:
        """Encode records (through the preset's mapping) and cut them into
        batches whose bodies stay within ``batch_bytes``. Records the preset
        calls unsendable are settled ``rejected`` here, and records older than
        ``max_age`` ``expired``."""
        if self._s.max_age:
            items = self._unexpired(lot, items)
        resent: list[Piece] = []
        if self.resending:
            items, resent = _resent(items)
        if not items:
            return self._cut(resent)
        # A record charged above max_record_bytes will be shortened: its chunk
        # would not fit, so the chunked fast paths are not tried for nothing.
        # The batch's record ids (a preset that sets them): the prefix and the position.
        prefix = uuid.uuid4().hex[:16] if self._s.preset.uses_record_id else ""
        if lot.largest <= self._s.max_record_bytes:  # the usual case: chunks of records
            fast = self._encoder.encode_batch(items)
            if fast is not None:
                return self._cut([(n, part, len(part)) for n, part in fast] + resent)
            chunked = None if self._mapper is None else self._mapper.chunks(items, prefix)
            if chunked is not None:
                return self._cut(chunked + resent)
        pieces: list[Piece] = []
        truncated = 0
        unsendable: list[str] = []
        if self._mapper is None:
            encode = self._encoder.encode
            for item in items:
                data, shortened = encode(item)
                truncated += shortened
                pieces.append((1, _exact(data), len(data)))
        else:
            quick = self._mapper.parts(items, prefix)
            if quick is not None:
                return self._cut(quick + resent)
            part = self._mapper.part
            for i, item in enumerate(items):
                try:
                    data, size, shortened = part(item, f"{prefix}{i}" if prefix else "")
                except Unsendable as exc:
                    unsendable.append(str(exc))
                    continue
                truncated += shortened
                pieces.append((1, data, size))
        if truncated:
            self._queue.count_truncated(truncated)
            self._reporter.warn(
                "truncated",
                f"{truncated} record(s) above max_record_bytes={self._s.max_record_bytes} "
                "were shortened (marked '...[logdrain: truncated N chars]')",
            )
        if unsendable:
            self._reporter.warn(
                "rejected",
                f"{len(unsendable)} record(s) rejected before sending "
                f"(preset {self._s.preset.name!r}): {unsendable[0]}",
            )
            self._queue.settle(lot, len(unsendable), "rejected")
        return self._cut(pieces + resent)

    def _unexpired(self, lot: Lot, items: list[Any]) -> list[Any]:
        """``items`` without the records older than ``max_age`` (by their own
        time), which are settled ``expired``."""
        cutoff = time.time() - self._s.max_age  # the records' own times: epoch seconds
        # The usual batch: stdlib records (the lowest tag), none expired; in C-level loops.
        with contextlib.suppress(Exception):  # another kind of item, or a strange created
            if max(map(_tag, items)) == STDLIB and min(map(_created, map(_attrs, items))) >= cutoff:
                return items
        kept = []
        for item in items:
            created = item_created(item)
            if created is None or created >= cutoff:
                kept.append(item)
        expired = len(items) - len(kept)
        if expired:
            self._queue.settle(lot, expired, "expired", batch_done=False)
            self._reporter.warn(
                "expired",
                f"{expired} record(s) older than max_age={self._s.max_age:g}s were not sent",
            )
        return kept

    def _cut(self, pieces: list[Piece]) -> list[list[Piece]]:
        """Group pieces into batches within ``batch_bytes`` (:func:`.cutting.cut`)."""
        return cut(pieces, self._s.batch_bytes, self._encoder.body_size, self._framing)

    def _report_overflow(self) -> None:
        dropped = self._queue.dropped_overflow
        if dropped != self._seen_overflow:
            fresh = dropped - self._seen_overflow
            if self._reporter.warn(
                "overflow",
                f"queue full (queue_size={self._s.queue_size} records or "
                f"max_buffer_bytes={self._s.max_buffer_bytes}, overflow={self._s.overflow}): "
                f"{fresh} record(s) dropped, {dropped} in total",
            ):
                self._seen_overflow = dropped


#: Above this, an encoded record is copied to a bytes object of its own size.
_EXACT_ABOVE = 64 * 1024


def _exact(data: bytes) -> bytes:
    """``data``, or for a large one a copy that takes just its size: orjson's
    output keeps the whole buffer it wrote into (megabytes for a record of a
    few hundred KiB), and a held part should cost what max_buffer_bytes counts."""
    if type(data) is bytes and len(data) > _EXACT_ABOVE:
        return memoryview(data).tobytes()
    return data


_size = operator.itemgetter(2)  # a piece's size
_tag = operator.itemgetter(0)  # a tuple item's tag (KeyError for a mapping)
_attrs = operator.itemgetter(1)
_created = operator.itemgetter("created")


def _resent(items: list[Any]) -> tuple[list[Any], list[Piece]]:
    """(the other items, the pieces of the ``RESEND`` items among ``items``)."""
    others: list[Any] = []
    pieces: list[Piece] = []
    for item in items:
        if type(item) is tuple and item[0] == RESEND:
            pieces.append((1, item[1], part_size(item[1])))
        else:
            others.append(item)
    return others, pieces
