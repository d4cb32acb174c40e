"""Process edges: interpreter exit, crashes, signals and fork.

These hooks only call ``flush``/``close`` on live drains; they own no
delivery logic.

Exit: CPython joins ``ThreadPoolExecutor`` workers with no timeout in a
``threading`` exit callback that runs *before* ``atexit`` handlers, and
``submit()`` fails from then on. logdrain registers its own ``threading``
exit callback after importing ``concurrent.futures``; those callbacks run in
reverse order, so logdrain's runs first: it closes every live drain under one
total deadline (``shutdown_timeout``), cutting retries and hung sockets short.
(logdrain's sender threads are daemon threads, so that join never waits on
them; it is the exit order that matters.)
"""

from __future__ import annotations

import atexit
import concurrent.futures.thread  # noqa: F401 - must register its exit hook before ours
import logging
import os
import signal
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .records import snapshot
from .sizing import stdlib_charge

if TYPE_CHECKING:
    from .drain import Drain

# Strong references: an open Drain is a resource that holds records, so it stays
# reachable until closed (by you, by its handler, or at exit), never lost to GC.
_live: set[Drain] = set()
# Reentrant: a signal handler runs between two bytecodes of the main thread,
# possibly while it holds this lock, and may reach it again (logging, closing).
_lock = threading.RLock()


def live_drains() -> list[Drain]:
    with _lock:
        return list(_live)


def register(drain: Drain) -> None:
    """Track ``drain`` until it is closed; all or nothing: if a hook cannot
    be installed, the drain is not left registered half-built."""
    with _lock:
        _live.add(drain)
    try:
        if drain.settings.capture_crashes:
            install_crash_hooks()
        if drain.settings.flush_on_signals:
            install_signal_handlers(drain, drain.settings.flush_on_signals)
    except BaseException:
        unregister(drain)
        raise


def unregister(drain: Drain) -> None:
    with _lock:
        _live.discard(drain)
    _forget_signal_drain(drain)


# -- exit ----------------------------------------------------------------------


def _close_all_at_exit() -> None:
    """Close every live drain under one deadline: first every drain stops
    taking records and its senders start shipping the rest (in parallel,
    on threads that already run: a thread may not start this late), then
    this thread waits for each in turn, never longer than the deadline."""
    drains = live_drains()
    if not drains:
        return
    deadline = time.monotonic() + min(d.settings.shutdown_timeout for d in drains)
    for drain in drains:
        drain.begin_close(deadline)
    for drain in drains:
        drain.close(max(0.0, deadline - time.monotonic()))


def _register_exit_hook() -> None:
    register_at_thread_exit: Callable[[Callable[[], None]], None] | None = getattr(
        threading, "_register_atexit", None
    )
    if register_at_thread_exit is not None:
        register_at_thread_exit(_close_all_at_exit)
    else:  # pragma: no cover - every supported CPython has it
        atexit.register(_close_all_at_exit)


# -- fork ----------------------------------------------------------------------


def _after_fork_in_child() -> None:
    global _lock  # noqa: PLW0603 - the parent's lock may be held by a thread that is gone
    _lock = threading.RLock()
    for drain in list(_live):
        drain._after_fork_in_child()


# -- crashes -------------------------------------------------------------------

_prev_excepthook: Callable[..., Any] | None = None
_prev_threading_hook: Callable[..., Any] | None = None


def _ship_crash(
    exc_type: type[BaseException],
    exc: BaseException | None,
    tb: TracebackType | None,
    thread_name: str,
) -> None:
    drains = [d for d in live_drains() if d.settings.capture_crashes and not d.closed]
    if not drains:
        return
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    record = logging.LogRecord(
        name="logdrain.crash",
        level=logging.CRITICAL,
        pathname=__file__,
        lineno=0,
        msg="Uncaught exception in thread %s: %s: %s",
        args=(thread_name, exc_type.__name__, exc),
        exc_info=None,
    )
    record.exc_text = text
    record.threadName = thread_name
    for drain in drains:  # charged what it holds: a deep traceback may be large
        snap = snapshot(record)
        limit = drain.settings.max_record_bytes
        size, snap["message"] = stdlib_charge(snap, snap["message"], limit)
        drain.enqueue(snap, size)
    budget = min(d.settings.crash_timeout for d in drains)
    deadline = time.monotonic() + budget
    for drain in drains:
        drain.flush(max(0.0, deadline - time.monotonic()))


def _excepthook(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    try:
        if not issubclass(exc_type, KeyboardInterrupt):
            _ship_crash(exc_type, exc, tb, threading.current_thread().name)
    finally:
        (_prev_excepthook or sys.__excepthook__)(exc_type, exc, tb)


def _threading_excepthook(args: threading.ExceptHookArgs) -> None:
    try:
        if args.exc_type is not SystemExit:
            name = args.thread.name if args.thread is not None else "<unknown>"
            _ship_crash(args.exc_type, args.exc_value, args.exc_traceback, name)
    finally:
        (_prev_threading_hook or threading.__excepthook__)(args)


def install_crash_hooks() -> None:
    """Wrap ``sys.excepthook`` and ``threading.excepthook`` (idempotent)."""
    global _prev_excepthook, _prev_threading_hook  # noqa: PLW0603
    with _lock:
        if sys.excepthook is not _excepthook:
            _prev_excepthook = sys.excepthook
            sys.excepthook = _excepthook
        if threading.excepthook is not _threading_excepthook:
            _prev_threading_hook = threading.excepthook
            threading.excepthook = _threading_excepthook


def uninstall_crash_hooks() -> None:
    """Restore the previous hooks, but only where logdrain's is still installed."""
    global _prev_excepthook, _prev_threading_hook  # noqa: PLW0603
    with _lock:
        if sys.excepthook is _excepthook:
            sys.excepthook = _prev_excepthook or sys.__excepthook__
            _prev_excepthook = None
        if threading.excepthook is _threading_excepthook:
            threading.excepthook = _prev_threading_hook or threading.__excepthook__
            _prev_threading_hook = None


# -- signals -------------------------------------------------------------------

_signal_drains: dict[int, weakref.WeakSet[Drain]] = {}
_prev_signal_handlers: dict[int, Any] = {}


def _on_signal(signum: int, frame: FrameType | None) -> None:
    drains = [d for d in _signal_drains.get(signum, ()) if not d.closed]
    if drains:
        budget = min(d.settings.shutdown_timeout for d in drains)
        deadline = time.monotonic() + budget
        for drain in drains:
            drain.flush(max(0.0, deadline - time.monotonic()))
    previous = _prev_signal_handlers.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_DFL:
        # End the process the way the default action would (status: killed by signum).
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    # SIG_IGN: the signal was being ignored before; keep ignoring it.


def install_signal_handlers(drain: Drain, names: tuple[str, ...]) -> None:
    """Flush ``drain`` on each named signal, then chain to the previous handler."""
    if threading.current_thread() is not threading.main_thread():
        raise ConfigError(
            "flush_on_signals",
            "signal handlers can only be installed from the main thread",
            "create this Drain on the main thread, or leave flush_on_signals empty",
        )
    for name in names:
        signum = int(getattr(signal, name))
        with _lock:
            if signum not in _signal_drains:
                _prev_signal_handlers[signum] = signal.getsignal(signum)
                signal.signal(signum, _on_signal)
                _signal_drains[signum] = weakref.WeakSet()
            _signal_drains[signum].add(drain)


def _forget_signal_drain(drain: Drain) -> None:
    with _lock:
        for drains in _signal_drains.values():
            drains.discard(drain)


_register_exit_hook()
os.register_at_fork(after_in_child=_after_fork_in_child)
