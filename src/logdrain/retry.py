"""The retry policy's parts: tenacity's wait and stop, and ``Retry-After``.

Backoff is exponential with jitter, capped, and never shorter than a
(capped) ``Retry-After``; attempts stop at the drain's close deadline, or
at once when it was aborted.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from typing import Protocol

import tenacity

from .errors import TransientError


class _Deadlines(Protocol):
    abort_event: threading.Event
    deadline: float | None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class Backoff(tenacity.wait.wait_base):
    """``initial * 2**(n-1)`` capped at ``maximum``, times U(0.5, 1.0); never
    shorter than a (capped) ``Retry-After`` the collector sent."""

    def __init__(self, initial: float, maximum: float, retry_after_max: float) -> None:
        self.initial = initial
        self.maximum = maximum
        self.retry_after_max = retry_after_max

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exp = min(self.maximum, self.initial * 2 ** (retry_state.attempt_number - 1))
        wait = exp * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not crypto
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, TransientError) and exc.retry_after is not None:
            wait = max(wait, min(exc.retry_after, self.retry_after_max))
        return float(wait)


class StopAtDeadline(tenacity.stop.stop_base):
    """Stop once aborted, or when the next sleep would cross the close deadline."""

    def __init__(self, transport: _Deadlines) -> None:
        self.transport = transport

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        transport = self.transport
        if transport.abort_event.is_set():
            return True
        if transport.deadline is None:
            return False
        sleep = retry_state.upcoming_sleep or 0.0
        return time.monotonic() + sleep >= transport.deadline
