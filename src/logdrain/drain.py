"""``Drain``: one destination, one bounded queue, one worker, one session,
one set of counters. Front ends (the stdlib handler, the structlog processor)
turn records into mappings and hand them to :meth:`Drain.submit`."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from . import lifecycle, prefork
from .burial import Burial
from .config import Settings, plain_http_secret_warning, resolve
from .deadletter import DeadLetter
from .encode import Encoder
from .jsonsafe import safe_repr
from .queue import RecordQueue
from .records import RESEND, level_number, part_size
from .report import Reporter, write_stderr
from .sizing import SMALL, charge
from .spooling import SpoolLink
from .stats import DrainStats
from .transport import Transport
from .worker import Worker


class Drain:
    """Ship mappings to one HTTP(S) collector in batches, off the caller's thread.

    Every keyword is a setting (see README); each falls back to the
    environment variable ``LOGDRAIN_<NAME>`` and then to a named default.
    Wrong settings raise :class:`logdrain.ConfigError` here, naming the field.
    """

    def __init__(self, url: str | None = None, **options: Any) -> None:
        settings = resolve({"url": url, **options})
        if not settings.name:
            settings = _with_name(settings)
        self.settings: Settings = settings
        #: Records below this level never enter (a preset's ``min_level``: Slack).
        self.min_level: int = _min_level(settings)
        self._queue = RecordQueue(
            settings.queue_size,
            settings.overflow,
            settings.block_timeout,
            wake_at=max(settings.batch_size, settings.queue_size // 2),
            max_bytes=settings.max_buffer_bytes,
            take_bytes=_take_bytes(settings),
            body_bytes=settings.batch_bytes,
        )
        self._encoder = Encoder(settings)
        self._reporter = Reporter(settings.name, settings.warn_interval)
        self._transport = Transport(
            settings,
            content_type=self._encoder.content_type,
            on_secret=self._reporter.add_secret,
        )
        for secret in settings.secrets(self._transport.proxy):  # the proxy may come from env
            self._reporter.add_secret(secret)
        warning = plain_http_secret_warning(settings, self._transport.proxy)
        if warning:
            write_stderr(warning)
        self._burial = _burial(settings, self._reporter)
        self._spool = _spool(settings, self._queue, self._reporter)
        self._worker = Worker(
            settings,
            self._queue,
            self._encoder,
            self._transport,
            self._reporter,
            burial=self._burial,
            spool=self._spool,
        )
        # Reentrant: a signal handler may close (or log) while this thread
        # is inside close() already.
        self._close_lock = threading.RLock()
        self._closed = threading.Event()
        self._closing = False  # no new records (begin_close)
        self._finishing = False  # a close() waits for the outcome and releases it all
        self._close_target = 0
        self._close_result = False
        lifecycle.register(self)
        prefork.install()

    def __repr__(self) -> str:
        state = "closed" if self._closing else "open"
        if self.settings.preset.secret_url:
            return f"<Drain {self.settings.name!r} {self.settings.shown_url()} {state}>"
        parts = urlsplit(self.settings.url)
        return f"<Drain {self.settings.name!r} {parts.scheme}://{parts.netloc}{parts.path} {state}>"

    # -- the caller's side --

    def submit(self, record: Mapping[str, Any]) -> bool:
        """Queue a shallow copy of ``record``. Never does I/O and never blocks
        (except with ``overflow='block'``). False when the record was refused
        (every refusal is counted in :meth:`stats`) or its ``level`` is below
        the preset's ``min_level`` (not queued, as below a handler's level). A
        mapping that cannot be copied still ships, as its safe ``repr``. A
        huge value is reduced here, as ``DrainHandler`` does (see
        ``max_buffer_bytes``)."""
        try:
            item = dict(record)
            if self.min_level and (level_number(item.get("level")) or 0) < self.min_level:
                return False  # below the destination's level, as a handler's level
        except Exception as exc:  # noqa: BLE001 - a hostile mapping never raises to the caller
            item = {
                "message": f"<logdrain: record could not be copied: {type(exc).__name__}>",
                "record": safe_repr(record),
            }
        return self.enqueue(item, charge(item, self.settings.max_record_bytes))

    def enqueue(self, item: Mapping[str, Any] | tuple[int, Any, Any], size: int = 0) -> bool:
        """Queue ``item`` as it is: for front ends that already took a snapshot
        (a mapping, or a ``records.STDLIB`` / ``records.EVENT`` tuple) and its
        charge in bytes (``sizing``; 0 for a small record)."""
        if not self._worker.started and not self._closing:
            self._worker.start()
            if self._worker.started:
                # From now on enqueue() is the queue's put() itself: one call
                # less per record (undone in a forked child).
                self.enqueue = self._queue.put
        return self._queue.put(item, size)

    def resend(self, part: bytes | tuple[bytes, bytes], created: float | None = None) -> bool:
        """Queue a record as it was sent once (JSON bytes, or ``(key, JSON
        bytes)`` for a keyed preset such as Loki or Elasticsearch): it goes
        out as it is, through this drain's framing, retries and ledger, with
        no mapping. ``created`` (epoch seconds) is what ``max_age`` measures;
        None: it never expires. For ``logdrain replay``."""
        self._worker.resending = True
        return self.enqueue((RESEND, part, created), max(SMALL, part_size(part)))

    def observe(self, callback: Callable[[Any], None] | None) -> None:
        """Call ``callback`` with every answer this drain's requests read (an
        ``Answer``: status, headers, the start of the body) and every error an
        attempt raises (a ``DeliveryError``), on the sender thread, before the
        preset judges it; None stops. For diagnostics (``logdrain doctor``):
        the callback must be quick and must not raise."""
        self._transport.observer = callback

    # -- waiting --

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record submitted before this call is delivered or
        finally accounted for (with ``spool_dir``: or on disk); at most
        ``timeout`` seconds (default: ``flush_timeout``). True when everything
        was accounted for in time."""
        timeout = self.settings.flush_timeout if timeout is None else timeout
        deadline = time.monotonic() + max(0.0, timeout)
        target = self._queue.mark()
        if self._closing:
            return self._queue.wait_done(target, deadline)
        if not self._worker.started:
            self._worker.start()
        self._queue.set_urgent(True)
        try:
            return self._queue.wait_done(target, deadline)
        finally:
            self._queue.set_urgent(False)

    def close(self, timeout: float | None = None) -> bool:
        """Stop accepting records, deliver what is pending within ``timeout``
        seconds (default: ``shutdown_timeout``), then release threads and
        connections. What could not be delivered by then is counted as
        ``dropped_closed`` and reported in one stderr line; with ``spool_dir``,
        what is still pending near the deadline is written to disk instead
        (counted ``spooled``: kept, not lost) and the line says so. Idempotent;
        returns by the deadline, True when nothing was left undelivered for
        lack of time.

        The calling thread only waits: the sender threads deliver (the closed
        queue no longer lingers), so nothing slow (a trickling collector, a
        hung ``token_provider``, a record's slow ``__repr__``) runs on the
        thread that closes, and at the deadline every socket is shut. Work
        that cannot be interrupted is left on its daemon thread."""
        timeout = self.settings.shutdown_timeout if timeout is None else timeout
        deadline = time.monotonic() + max(0.0, timeout)
        with self._close_lock:
            self.begin_close(deadline)
            first = not self._finishing
            self._finishing = True
        if not first:
            done = self._closed.wait(max(0.0, deadline - time.monotonic()))
            return done and self._close_result
        try:
            self._close_result = self._close(deadline)
            return self._close_result
        finally:
            self._closed.set()
            lifecycle.unregister(self)

    def begin_close(self, deadline: float) -> None:
        """Refuse new records and let the senders ship the rest, now, with
        ``deadline`` as the hard end of every retry and request (idempotent:
        the first deadline stands). ``close`` waits for the outcome; the exit
        hook begins every drain's close before waiting on any."""
        with self._close_lock:
            if self._closing:
                return
            self._closing = True
            self._close_target = self._queue.mark()
            if self._spool is not None or self.settings.dead_letter_on_close:
                # The senders' end, leaving time to write the rest to disk.
                deadline -= spool_reserve(deadline - time.monotonic())
            self._transport.deadline = deadline
            self._queue.close()

    def _close(self, deadline: float) -> bool:
        if not self._worker.started:
            self._worker.start()  # records queued before a fork, say; may fail at exit
        if self._worker.alive():
            complete = self._queue.wait_done(self._close_target, deadline)
        else:  # no sender to wait for: what is queued cannot ship
            complete = self._queue.done_up_to(self._close_target)
        self._worker.stop()
        if not complete:
            self._queue.abandon()  # count first, then cut the sockets
            self._transport.abort()
        self._transport.close()
        # Also those whose retries the deadline cut short, just before it.
        abandoned = self._queue.cut_at_deadline
        complete = complete and not abandoned
        if self._burial is not None:
            self._burial.file.close()
        if self._spool is not None:
            self._spool.close()  # parts with rows stay, for the next start to deliver
        stats = self._queue.snapshot()
        lost = stats.lost
        if stats.spooled and self._spool is not None:
            self._reporter.warn(
                "close",
                f"closed: {stats.spooled} record(s) not yet delivered are kept on disk in "
                f"{self._spool.directory}; the next start delivers them",
                force=True,
            )
        if abandoned or lost:
            cut = f"{abandoned} record(s) undelivered at the close deadline; " if abandoned else ""
            kept = (
                f"; {stats.dead_lettered} of them kept in {self._burial.file.path}"
                if self._burial is not None and stats.dead_lettered
                else ""
            )
            inflow = f" + {stats.recovered} recovered" if stats.recovered else ""
            torn = f"; {stats.torn} found torn on disk" if stats.torn else ""
            self._reporter.warn(
                "close",
                f"closed: {cut}not delivered in total: {lost} of {stats.submitted}{inflow} "
                f"(queue full {stats.dropped_overflow}, after close {stats.dropped_closed}, "
                f"rejected {stats.rejected}, failed {stats.failed}, expired {stats.expired})"
                f"{kept}{torn}",
                force=True,
            )
        return complete

    @property
    def closed(self) -> bool:
        return self._closing

    def stats(self) -> DrainStats:
        """A consistent snapshot of the counters."""
        return self._queue.snapshot()

    # -- lifecycle edges --

    def _after_fork_in_child(self) -> None:
        """The child starts empty: no record of the parent's is sent twice."""
        self.__dict__.pop("enqueue", None)  # the child's worker starts on first use
        self._queue.reset_after_fork()
        self._transport.reset_after_fork()
        self._worker.reset_after_fork()
        self._close_lock = threading.RLock()
        self._closed = threading.Event()
        if self._closing:
            self._finishing = True
            self._queue.close()
            self._closed.set()

    def __enter__(self) -> Drain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _take_bytes(settings: Settings) -> int:
    """The charge one take may hold: about one request body (``batch_bytes``,
    or ``batch_size`` small records: the usual batch is never cut short), and
    at most an eighth of ``max_buffer_bytes`` shared by the senders, as a
    take reserves about four times its charge while it is encoded (see
    ``queue.Lot``); so the senders hold at most about half the bound and the
    queue keeps the rest (a take is one record at least)."""
    body = max(settings.batch_bytes, settings.batch_size * SMALL)
    return min(body, settings.max_buffer_bytes // (8 * settings.concurrency))


def spool_reserve(remaining: float) -> float:
    """The share of a close deadline kept for writing what is still pending to
    the spool: a quarter of it, between 0.1 and 1 second."""
    return min(1.0, max(0.1, remaining / 4)) if remaining > 0 else 0.0


def _spool(settings: Settings, queue: RecordQueue, reporter: Reporter) -> SpoolLink | None:
    """The spool of ``settings`` (None: none). Nothing on disk is touched here:
    the senders open the directory on their first write or look."""
    if settings.spool_dir is None:
        return None
    from .spool import Spool  # noqa: PLC0415 - sqlite3 loads only with a spool

    spool = Spool(
        settings.spool_dir, settings.spool_max_bytes, fsync=settings.spool_fsync, reporter=reporter
    )
    return SpoolLink(spool, queue)


def _burial(settings: Settings, reporter: Reporter) -> Burial | None:
    """The dead-letter file of ``settings``, as the senders use it (None: none)."""
    if settings.dead_letter is None:
        return None
    dead_letter = DeadLetter(
        settings.dead_letter, settings.dead_letter_max_bytes, redact=reporter.redact
    )
    return Burial(dead_letter, settings.preset.name, reporter)


def _min_level(settings: Settings) -> int:
    level = settings.options.get("min_level")
    return level if isinstance(level, int) and not isinstance(level, bool) else 0


def _with_name(settings: Settings) -> Settings:
    host = urlsplit(settings.url).hostname or "drain"
    return dataclasses.replace(settings, name=host)
