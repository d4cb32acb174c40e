"""The recursion guard: records emitted on logdrain's own threads (its
dispatcher, its senders, a synchronous drain in progress) never re-enter a
queue, so urllib3's debug lines cannot feed back into the pipeline."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_state = threading.local()


def active() -> bool:
    """True on a thread that is currently shipping records."""
    return getattr(_state, "sending", False)


def mark_thread() -> None:
    """Mark the current thread as a logdrain thread for its whole life."""
    _state.sending = True


@contextmanager
def sending() -> Iterator[None]:
    """Mark the current thread while it ships records synchronously."""
    previous = active()
    _state.sending = True
    try:
        yield
    finally:
        _state.sending = previous
