"""The spool's cap: ``max_bytes`` caps the directory, every process's parts
with their ``-wal`` and ``-shm`` files, as that is what a user sizes.

Each process keeps a running estimate: the sizes found by a scan of the
directory (its own part's database only), plus what it wrote since (each
row's bytes and ``ROW_OVERHEAD``), plus a reserve for its own WAL and shared
memory (the WAL grows to about ``wal_bytes`` and one transaction before
SQLite checkpoints and trims it). The scan is redone every ``STAT_EVERY``
puts, after an acknowledgement, and before a put is cut short, so the
directory can pass the cap by what other processes wrote since this one last
looked. A put that would pass it writes the items that fit, in order.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate

from ._dir import dir_bytes
from ._schema import Spooled, nbytes

STAT_EVERY = 64  # puts between two scans of the directory
ROW_OVERHEAD = 48  # bytes a row costs on disk beside its key and part (estimate)
_SHM_RESERVE = 64 * 1024


class Cap:
    """The running estimate of one process; the caller holds the spool's lock."""

    def __init__(self, directory: str, max_bytes: int, wal_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.reserve = 2 * wal_bytes + _SHM_RESERVE
        self.scanned: int | None = None  # bytes found by the last scan; None: scan next time
        self.written = 0  # bytes written since
        self.puts = 0  # puts since

    @property
    def due(self) -> bool:
        """Whether the next put scans the directory."""
        return self.scanned is None or self.puts >= STAT_EVERY

    def estimate(self, own: str | None) -> int:
        """The directory's bytes as this process believes them (without the reserve)."""
        if self.scanned is None:
            return dir_bytes(self.directory)
        return self.scanned + self.written

    def fit(self, items: Sequence[Spooled], own: str | None) -> tuple[int, int]:
        """How many of ``items`` (not empty), in order, fit, and what they cost."""
        if self.due:
            self.scan(own)
        costs = list(accumulate(cost(item) for item in items))
        room = self.max_bytes - self._current(own)
        if costs[-1] > room:
            self.scan(own)  # before cutting a put short: what is really there
            room = self.max_bytes - self._current(own)
        fit = bisect_right(costs, room)
        return fit, costs[fit - 1] if fit else 0

    def wrote(self, size: int) -> None:
        self.written += size
        self.puts += 1

    def scan(self, own: str | None) -> None:
        self.scanned = dir_bytes(self.directory, own)
        self.written = self.puts = 0

    def _current(self, own: str | None) -> int:
        if self.scanned is None:
            self.scan(own)
        return (self.scanned or 0) + self.written + self.reserve


def cost(item: Spooled) -> int:
    return nbytes(item) + ROW_OVERHEAD
