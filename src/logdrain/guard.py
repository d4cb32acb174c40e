"""The recursion guard: records emitted on logdrain's own threads (its
sender threads, a synchronous drain in progress) never re-enter a
queue, so urllib3's debug lines cannot feed back into the pipeline."""

from __future__ import annotations

import contextlib
import signal
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
    """Mark the current thread as a logdrain thread for its whole life, and
    keep the application's signals away from it: a process-directed signal
    that lands on a background thread does not interrupt the main thread's
    blocking call (``time.sleep``), so its Python handler would wait for it."""
    _state.sending = True
    block_signals()


#: Asynchronous signals an application may handle; logdrain's threads block
#: them so the kernel delivers them to the application's threads.
_ASYNC_SIGNALS = tuple(
    getattr(signal, name)
    for name in (
        "SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2",
        "SIGALRM", "SIGCHLD", "SIGWINCH",
    )
    if hasattr(signal, name)
)  # fmt: skip


def block_signals() -> None:
    """Block :data:`_ASYNC_SIGNALS` in the calling thread (POSIX; else nothing)."""
    mask = getattr(signal, "pthread_sigmask", None)
    if mask is not None:
        with contextlib.suppress(OSError, ValueError):
            mask(signal.SIG_BLOCK, _ASYNC_SIGNALS)


@contextmanager
def sending() -> Iterator[None]:
    """Mark the current thread while it ships records synchronously."""
    previous = active()
    _state.sending = True
    try:
        yield
    finally:
        _state.sending = previous
