"""The typed snapshot returned by ``Drain.stats()``."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class DrainStats:
    """Counters of one Drain, taken at one instant under one lock.

    Every record offered to ``submit()`` (or taken over from a dead
    process's spool: ``recovered``) is in exactly one bucket, so
    ``submitted + recovered == delivered + pending + dropped_overflow +
    dropped_closed + rejected + failed + expired`` holds for every snapshot
    (see :attr:`balanced`). ``dead_lettered`` is not a bucket: it counts the
    rejected and failed records that were written to the dead-letter file;
    nor is ``torn``: records found damaged on disk, outside the identity.
    """

    submitted: int
    """Records offered to ``submit()`` (accepted or refused)."""
    delivered: int
    """Records in batches the collector answered with 2xx."""
    queued: int
    """Records waiting in the queue."""
    in_flight: int
    """Records taken from the queue whose batch has no final outcome yet."""
    dropped_overflow: int
    """Records lost to a full queue: evicted (drop_oldest) or refused (drop_newest, block)."""
    dropped_closed: int
    """Records refused because the drain was closed, or abandoned at a close deadline."""
    rejected: int
    """Records in batches the collector refused permanently (4xx other than 408/425/429)."""
    failed: int
    """Records in batches still failing when the retry budget ran out."""
    retries: int
    """Retry attempts made (not records)."""
    batches: int
    """Requests (bodies) that reached a final outcome: delivered, rejected, failed or dropped."""
    truncated: int
    """Records shipped with a field shortened to fit ``max_record_bytes``."""
    queued_bytes: int = 0
    """Bytes the queued records are charged (their caller-side estimates, at
    least 1 KiB each; see ``max_buffer_bytes``)."""
    in_flight_bytes: int = 0
    """Bytes the senders hold: records taken (their estimates), then their
    encoded parts, until each batch has its outcome."""
    expired: int = 0
    """Records older than ``max_age`` when a sender took them: not sent."""
    dead_lettered: int = 0
    """Of ``rejected`` and ``failed``: records written to the ``dead_letter``
    file (they can be sent again with ``logdrain replay``)."""
    spooled: int = 0
    """Records on disk in the spool now (``spool_dir``), part of ``pending``:
    not acknowledged within about a second, or pending at the close deadline."""
    recovered: int = 0
    """Records taken over from the spool parts of processes that are gone (an
    inflow beside ``submitted``)."""
    torn: int = 0
    """Records found in damaged spool parts (moved aside as ``*.corrupt``):
    outside the identity, as they were never this process's."""

    @property
    def pending(self) -> int:
        """Records not yet finally accounted for: ``queued + in_flight + spooled``."""
        return self.queued + self.in_flight + self.spooled

    @property
    def buffered_bytes(self) -> int:
        """Everything logdrain holds, as counted against ``max_buffer_bytes``:
        ``queued_bytes + in_flight_bytes``."""
        return self.queued_bytes + self.in_flight_bytes

    @property
    def lost(self) -> int:
        """Every record that will never reach the collector."""
        return (
            self.dropped_overflow + self.dropped_closed + self.rejected + self.failed + self.expired
        )

    @property
    def balanced(self) -> bool:
        """True when the accounting identity holds."""
        return self.submitted + self.recovered == self.delivered + self.pending + self.lost

    def as_dict(self) -> dict[str, int]:
        """Counters plus ``pending`` and ``buffered_bytes`` as a plain dict
        (for JSON or metrics)."""
        out = asdict(self)
        out["pending"] = self.pending
        out["buffered_bytes"] = self.buffered_bytes
        return out
