"""The recursion guard: records emitted on logdrain's own threads (its
sender threads, a synchronous drain in progress) never re-enter a
queue, so urllib3's debug lines cannot feed back into the pipeline."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _State(threading.local):
    # A class-level default: reading it on a thread that never set it is a
    # plain attribute hit, where getattr(local, name, default) raises and
    # swallows an AttributeError inside every log call.
    sending = False


#: Read directly by the front ends' hot paths (``state.sending``).
state = _State()
_state = state


def active() -> bool:
    """True on a thread that is currently shipping records."""
    return _state.sending


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
