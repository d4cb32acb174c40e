"""One batch's way to the collector: attempts, retries, verdicts, ledger.

The retry policy is tenacity's (``retry.py``: backoff with jitter,
``Retry-After``, the close deadline). Each attempt frames the records still
pending, posts them once, and applies the preset's verdict:

* ``delivered`` / ``rejected``: every pending record settles so;
* ``retry`` (or a connection failure): the same records, same batch id, again;
* ``partial``: the records the collector took or refused settle at once,
  the ones it asked to resend are retried alone (same batch id);
* ``split``: the pending records go again as two halves, each with a batch
  id of its own (a collector deduplicating by id must not drop a half),
  down to single records, which are rejected with the collector's reason.

The ledger balances at every moment: a record is in flight until it settles
once, and a stderr line is written before the records it is about settle.
"""

from __future__ import annotations

import operator
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

import tenacity

from .burial import Attempts, Burial
from .config import Settings
from .errors import PermanentError, TransientError
from .mapping import Piece
from .pieces import explode
from .presets import Verdict
from .queue import Lot, Outcome, RecordQueue
from .report import Reporter
from .retry import Backoff, StopAtDeadline
from .spooling import NO_COPY, SPOOL_AFTER, Copy, SpoolLink
from .transport import Aborted, Reply, Transport


class _ToSpool(Exception):
    """The batch was not acknowledged in time (or an outage holds it): to disk."""


class _Split(Exception):
    def __init__(self, reply: Reply) -> None:
        self.reply = reply


def new_batch_id() -> str:
    return uuid.uuid4().hex


class Shipper:
    """Delivers batches of pieces for one Drain and settles their records."""

    def __init__(
        self,
        settings: Settings,
        transport: Transport,
        queue: RecordQueue,
        reporter: Reporter,
        frame: Callable[[list[Any]], bytes],
        *,
        burial: Burial | None = None,
        spool: SpoolLink | None = None,
    ) -> None:
        self._s = settings
        self._transport = transport
        self._queue = queue
        self._reporter = reporter
        self._frame = frame
        self._lines = settings.preset.lines  # a record's lines in a chunk (0: not lines)
        self._burial = burial
        self._spool = spool
        self._outage_until = 0.0

    @property
    def in_outage(self) -> bool:
        """True while batches are held back (or, with a spool, sent to disk)."""
        return self._outage_until > time.monotonic()

    def reset_after_fork(self) -> None:
        self._outage_until = 0.0

    # -- a batch --

    def ship(self, lot: Lot, pieces: list[Piece], batch_id: str | None = None) -> None:
        """Deliver ``pieces`` (splitting when told) and settle every record
        in them. Never raises."""
        work = [(pieces, batch_id or new_batch_id())]
        while work:
            pieces, batch_id = work.pop()
            halves = self._ship_one(lot, pieces, batch_id)
            work.extend((half, new_batch_id()) for half in reversed(halves))

    def _ship_one(
        self, lot: Lot, pieces: list[Piece], batch_id: str, *, may_spool: bool = True
    ) -> list[list[Piece]]:
        """One batch id's story: settles its records, or returns the halves
        to ship next (a split). With a spool, records not acknowledged within
        SPOOL_AFTER seconds go to disk (rows read back from it go back there
        at once); what the disk does not take is retried in memory."""
        state = _Pending(pieces)
        if self._spool is not None and may_spool:
            state.spool_at = time.monotonic() + (0.0 if lot.disk is not None else SPOOL_AFTER)
        try:
            self._retrying(state)(self._attempt, lot, state, batch_id)
        except _ToSpool:
            if lot.disk is not None:  # read back from disk: the rows stay there
                self._settle(lot, state, "retry", "")
                return []
            if self._to_disk(lot, state):
                return self._ship_one(lot, state.pieces, batch_id, may_spool=False)
        except _Split as split:
            pending = state.pieces
            if len(pending) == 1:
                pending = explode(pending[0], self._lines)
            if len(pending) > 1:
                middle = len(pending) // 2
                return [pending[:middle], pending[middle:]]
            reply = split.reply
            self._bury(state, "rejected", reply.verdict.reason, reply.status, reply.excerpt)
            self._settle(lot, state, "rejected", _rejected_line(1, reply.describe()))
        except Aborted:
            if state.spool_at is not None and lot.disk is None and not self._to_disk(lot, state):
                return []  # the close deadline: kept on disk
            if self._s.dead_letter_on_close and lot.disk is None:
                why = "not delivered by the close deadline"
                self._bury(state, "dropped_closed", why, None, "")
            self._settle(lot, state, "dropped_closed", "")
        except PermanentError as exc:
            self._bury(state, "rejected", exc.reason, exc.status, exc.body)
            line = _rejected_line(state.count, exc.describe())
            self._settle(lot, state, "rejected", line)
        except TransientError as exc:
            self._outage(exc)
            if state.spool_at is not None and lot.disk is None:
                if self._to_disk(lot, state):  # the rest: retried in memory
                    return self._ship_one(lot, state.pieces, batch_id, may_spool=False)
                return []
            if lot.disk is not None:
                self._settle(lot, state, "retry", "")  # the rows stay on disk
                return []
            self._bury(state, "failed", exc.reason, exc.status, exc.body)
            line = f"gave up on {state.count} record(s) after retries: {exc.describe()}"
            self._settle(lot, state, "failed", line)
        except Exception as exc:  # noqa: BLE001 - the sender must survive anything
            why = f"{type(exc).__name__}: {safe_text(exc)}"
            self._bury(state, "failed", why, None, "")
            self._settle(lot, state, "failed", f"{state.count} record(s) failed: {why}")
        else:
            self._outage_until = 0.0
        return []

    def _retrying(self, state: _Pending) -> tenacity.Retrying:
        s = self._s
        transport = self._transport
        stops: list[tenacity.stop.stop_base] = [
            tenacity.stop_after_attempt(s.max_attempts),
            tenacity.stop_before_delay(s.max_retry_time),
            StopAtDeadline(transport),
        ]
        if state.spool_at is not None:  # a wait past it: to disk instead (_ship_one)
            stops.append(_StopAtSpool(state))
        return tenacity.Retrying(
            stop=tenacity.stop_any(*stops),
            wait=Backoff(s.backoff_initial, s.backoff_max, s.retry_after_max),
            retry=tenacity.retry_if_exception_type(TransientError),
            sleep=transport.sleep,
            before_sleep=lambda _state: self._queue.count_retry(),
            reraise=True,
        )

    def _attempt(self, lot: Lot, state: _Pending, batch_id: str) -> None:
        """One POST of the pending records; applies the verdict."""
        if state.attempt == 0:
            if state.spool_at is not None and self.in_outage:
                raise _ToSpool  # an outage: straight to disk, no attempt
            self._wait_out_outage()
        state.attempt += 1
        state.tried.tried()
        if state.framed is not state.pieces:  # framed once per set of pieces, not per attempt
            state.body = self._frame(list(map(_part, state.pieces)))
            state.framed = state.pieces
        try:
            reply = self._post(lot, state, batch_id)
            verdict = reply.verdict
            if verdict.outcome == "delivered":
                self._settle(lot, state, "delivered", "")
            elif verdict.outcome == "split":
                raise _Split(reply)
            elif verdict.outcome == "partial":
                self._partial(lot, state, reply)
            else:  # the transport raises for retry and rejected; a custom verdict may not
                raise PermanentError(f"unknown verdict {verdict.outcome!r}", reply.status)
        except TransientError as exc:
            spool_at = state.spool_at
            if state.copy.rows or (
                spool_at is not None
                and (time.monotonic() >= spool_at or self._transport.deadline is not None)
            ):
                self._outage(exc)  # the next batches go to disk at once for a while
                raise _ToSpool from exc
            raise

    def _post(self, lot: Lot, state: _Pending, batch_id: str) -> Reply:
        """One request. With a spool, an attempt still running when the batch's
        second is up gets a copy on disk (the keeper's); the copy is kept when
        the attempt fails in a way that sends the batch to disk (``_to_disk``
        uses it) and deleted otherwise, before the verdict settles anything."""
        post = self._transport.post_once
        spool = self._spool
        if spool is None or state.spool_at is None or lot.disk is not None:
            return post(state.body, batch_id, state.count, state.attempt)
        watch = spool.watch(state.pieces, state.spool_at)
        try:
            reply = post(state.body, batch_id, state.count, state.attempt)
        except (TransientError, Aborted):
            state.copy = spool.unwatch(watch)
            raise
        except BaseException:
            spool.discard(spool.unwatch(watch))
            raise
        spool.discard(spool.unwatch(watch))  # answered: whatever it says, not kept
        return reply

    def _partial(self, lot: Lot, state: _Pending, reply: Reply) -> None:
        verdict: Verdict = reply.verdict
        if not verdict.records:  # a count only: that many refused, the rest taken
            refused = max(0, min(verdict.rejected, state.count))
            if refused:
                line = _rejected_line(refused, reply.describe())
                self._settle_n(lot, refused, "rejected", line, done=False)
            self._settle_n(lot, state.count - refused, "delivered", "", done=True)
            state.pieces = []
            return
        lines = self._lines
        pieces = [one for piece in state.pieces for one in explode(piece, lines)]
        outcomes = list(verdict.records[: len(pieces)])
        outcomes += ["delivered"] * (len(pieces) - len(outcomes))  # unnamed: taken
        refused = outcomes.count("rejected")
        again = [piece for piece, what in zip(pieces, outcomes, strict=True) if what == "retry"]
        if refused:
            if self._burial is not None:
                gone = [p for p, what in zip(pieces, outcomes, strict=True) if what == "rejected"]
                refusal = _Pending(gone, state.tried)
                self._bury(refusal, "rejected", verdict.reason, reply.status, reply.excerpt)
            line = _rejected_line(refused, reply.describe())
            self._settle_n(lot, refused, "rejected", line, done=False)
        self._settle_n(lot, outcomes.count("delivered"), "delivered", "", done=not again)
        state.pieces = again
        if again:
            raise TransientError(
                verdict.reason or f"{len(again)} record(s) to send again",
                reply.status,
                reply.excerpt,
                verdict.retry_after,
            )

    # -- the spool --

    def _to_disk(self, lot: Lot, state: _Pending) -> bool:
        """Write ``state``'s pieces to the spool, those that fit; settled
        ``spooled``. True when some are left (to retry in memory)."""
        spool = self._spool
        if spool is None:
            return bool(state.pieces)
        copy, state.copy = state.copy, NO_COPY
        if copy.rows:  # written while the attempt hung: settled, then read back
            self._settle_n(lot, copy.records, "spooled", "", done=False)
            spool.keep(copy)
            state.pieces = state.pieces[copy.pieces :]
            if not state.pieces:
                return False
        done, records = spool.put(state.pieces)
        if records:
            self._settle_n(lot, records, "spooled", "", done=False)
        state.pieces = state.pieces[done:]
        return bool(state.pieces)

    # -- the dead-letter file --

    def _bury(
        self, state: _Pending, outcome: str, reason: str, status: int | None, answer: str
    ) -> None:
        """Records about to be settled ``outcome`` go to the dead-letter file
        first (so once flush() sees them accounted for, they are written)."""
        burial = self._burial
        if burial is None or not state.pieces:
            return
        pieces = state.pieces
        if self._lines:  # a record a line (or two) in the file, as the per-record path has them
            pieces = [one for piece in pieces for one in explode(piece, self._lines)]
        written = burial.bury(
            pieces, outcome, reason=reason, status=status, answer=answer, attempts=state.tried
        )
        self._queue.count_dead_lettered(written)

    # -- the ledger --

    def _settle(self, lot: Lot, state: _Pending, outcome: Outcome, line: str) -> None:
        self._settle_n(lot, state.count, outcome, line, done=True)
        state.pieces = []

    def _settle_n(self, lot: Lot, count: int, outcome: Outcome, line: str, *, done: bool) -> None:
        """Settle ``count`` records, their stderr line first (so once flush()
        or close() sees them accounted for, the line is out)."""
        if count <= 0 and not done:
            return
        if line and not lot.abandoned:  # abandoned: counted dropped_closed, and it stays
            self._reporter.warn(outcome if outcome != "delivered" else "partial", line)
        self._queue.settle(lot, max(0, count), outcome, batch_done=done)

    # -- outages --

    def _outage(self, exc: TransientError) -> None:
        """The collector stayed down for a whole retry budget: hold the next
        batches back for about one backoff_max, so a day-long outage sees
        about one attempt per sender per backoff_max, not a fresh burst."""
        spread = random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not crypto
        self._outage_until = time.monotonic() + self._s.backoff_max * spread

    def _wait_out_outage(self) -> None:
        transport = self._transport
        delay = self._outage_until - time.monotonic()
        if delay <= 0:
            return
        if transport.deadline is not None:
            delay = min(delay, transport.deadline - time.monotonic())
            if delay <= 0:
                raise Aborted
        transport.sleep(delay)
        transport.remaining()


class _StopAtSpool(tenacity.stop.stop_base):
    """Stop retrying in memory when the next wait would end past ``spool_at``
    (a backoff, a ``Retry-After``): the batch goes to disk at once."""

    def __init__(self, state: _Pending) -> None:
        self.state = state

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        spool_at = self.state.spool_at
        if spool_at is None:
            return False
        return time.monotonic() + (retry_state.upcoming_sleep or 0.0) >= spool_at


class _Pending:
    """The records of one batch id not yet settled, and its attempt count."""

    __slots__ = ("attempt", "body", "copy", "framed", "pieces", "spool_at", "tried")

    def __init__(self, pieces: list[Piece], tried: Attempts | None = None) -> None:
        self.pieces = pieces
        self.attempt = 0
        self.tried = tried if tried is not None else Attempts()  # for the dead-letter file
        # The request body of ``framed`` (the pieces it was framed from): a
        # retry sends the same bytes without framing (copying) them again.
        self.body = b""
        self.framed: list[Piece] | None = None
        #: With a spool: when a failed attempt sends the batch to disk (None: never).
        self.spool_at: float | None = None
        #: The copy the spool's keeper wrote while an attempt hung (held rows).
        self.copy: Copy = NO_COPY

    @property
    def count(self) -> int:
        return sum(map(_count, self.pieces))


_count = operator.itemgetter(0)  # a piece's record count
_part = operator.itemgetter(1)  # ... and its part


def _rejected_line(count: int, why: str) -> str:
    return f"{count} record(s) rejected, not retried: {why}"


def safe_text(exc: BaseException) -> str:
    """``str(exc)`` on one line, shortened; never raises."""
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - a hostile exception's __str__
        return "<unprintable>"
    return " ".join(text.split())[:300]
