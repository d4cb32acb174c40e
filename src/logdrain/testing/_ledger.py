"""What a :class:`~logdrain.testing.Collector` received: records, requests, batch ids."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ._http import RequestInfo

_WAIT_SLICE = 0.05  # wait_for() re-evaluates its predicate at least this often

_L = TypeVar("_L", bound="Ledger")


class Ledger:
    """The received data, under one lock notified on every request (see wait_for())."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._seq = 0
        self._records: list[dict[str, Any]] = []
        self._requests: list[RequestInfo] = []
        self._batch_ids: list[str] = []
        self._seen_batch_ids: set[str] = set()
        self._duplicates = 0

    @property
    def records(self) -> list[dict[str, Any]]:
        """Every record of every 2xx-answered request, in arrival order (a copy)."""
        with self._cond:
            return list(self._records)

    @property
    def count(self) -> int:
        """Number of stored records."""
        return len(self._records)

    @property
    def requests(self) -> list[RequestInfo]:
        """Every request received, whatever its answer, in arrival order (a copy)."""
        with self._cond:
            return list(self._requests)

    @property
    def batch_ids(self) -> list[str]:
        """``X-Logdrain-Batch-Id`` of every 2xx-answered request that had one, repeats included."""
        with self._cond:
            return list(self._batch_ids)

    @property
    def duplicates(self) -> int:
        """Number of 2xx-answered requests whose batch id had already been answered 2xx."""
        return self._duplicates

    def wait_for(self: _L, predicate: Callable[[_L], bool], timeout: float = 30.0) -> bool:
        """Wait until ``predicate(self)`` is true or ``timeout`` passes; return its last value.

        The predicate is re-evaluated after every request (and at least every
        50 ms, in case it also looks at state outside the collector).
        """
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                seq = self._seq
            if predicate(self):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return bool(predicate(self))
            with self._cond:
                if self._seq == seq:
                    self._cond.wait(min(remaining, _WAIT_SLICE))

    def wait_for_count(self, n: int, timeout: float = 30.0) -> bool:
        """Wait until at least ``n`` records have been stored."""
        return self.wait_for(lambda c: c.count >= n, timeout)

    def clear(self) -> None:
        """Forget received records, requests and batch ids (scripting is kept)."""
        with self._cond:
            self._records.clear()
            self._requests.clear()
            self._batch_ids.clear()
            self._seen_batch_ids.clear()
            self._duplicates = 0
            self._seq += 1
            self._cond.notify_all()

    def _record(
        self,
        info: RequestInfo,
        records: list[dict[str, Any]] | None = None,
        batch_id: str | None = None,
    ) -> None:
        with self._cond:
            self._requests.append(info)
            if records is not None:
                self._records.extend(records)
                if batch_id is not None:
                    self._batch_ids.append(batch_id)
                    if batch_id in self._seen_batch_ids:
                        self._duplicates += 1
                    else:
                        self._seen_batch_ids.add(batch_id)
            self._seq += 1
            self._cond.notify_all()
