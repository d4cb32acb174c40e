"""Prefork pools whose processes end with ``os._exit``: Celery and uwsgi.

Celery's pool (billiard) and uwsgi end their worker processes without
running the interpreter's exit (no ``threading`` exit callbacks, no
``atexit``), so logdrain's exit hook never runs there. Both give a hook of
their own just before the end; when the framework is in use (found in
``sys.modules``, never imported here otherwise) logdrain connects to it, so
each pool process closes its drains under :data:`POOL_EXIT_TIMEOUT`:

- Celery: ``celery.signals.worker_process_shutdown`` (connected once, with
  ``weak=False``), sent by billiard in the pool process right before
  ``os._exit``;
- uwsgi: ``uwsgi.atexit``, chained (an ``atexit`` set before keeps running).

:func:`install` runs when a Drain is created and again in every forked
child, since a pool usually forks after the framework is imported. Like the
rest of lifecycle, these hooks only call ``close`` on live drains.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from . import lifecycle

#: The deadline for closing the drains of a pool process that is ending
#: (capped by each drain's ``shutdown_timeout``). With the collector up and
#: quick, closing takes milliseconds; the cap only matters while it is slow
#: or down. It is shorter than ``shutdown_timeout`` (sized for one exit of the
#: whole program) because a pool recycles its processes again and again
#: (``--max-tasks-per-child``) and each one holds its pool slot until it has
#: ended: 2 s leaves room for a slow answer and a quick retry without letting
#: an outage stall the pool for long (billiard itself waits 1 s more).
POOL_EXIT_TIMEOUT = 2.0

_celery_connected = False
_install_lock = threading.Lock()


def close_live_drains(budget: float = POOL_EXIT_TIMEOUT) -> None:
    """Close every live drain concurrently, within ``budget`` seconds at most
    (and each drain's ``shutdown_timeout``). Never raises."""
    try:
        drains = [d for d in lifecycle.live_drains() if not d.closed]
        if not drains:
            return
        budget = min([budget, *(d.settings.shutdown_timeout for d in drains)])
        deadline = time.monotonic() + budget
        closers = []
        for drain in drains[1:]:
            t = threading.Thread(target=drain.close, args=(budget,), daemon=True)
            try:
                t.start()
                closers.append(t)
            except RuntimeError:
                drain.close(max(0.0, deadline - time.monotonic()))
        drains[0].close(budget)
        for t in closers:
            t.join(max(0.0, deadline - time.monotonic()))
    except Exception:  # noqa: BLE001, S110 - the pool's own exit must go on
        pass


# -- Celery --------------------------------------------------------------------


def _on_worker_process_shutdown(*args: Any, **kwargs: Any) -> None:
    """Receiver of Celery's ``worker_process_shutdown`` (sent in the pool
    process, just before billiard's ``os._exit``)."""
    close_live_drains()


def _install_celery() -> None:
    global _celery_connected  # noqa: PLW0603
    if _celery_connected or "celery" not in sys.modules:
        return
    try:
        signals = importlib.import_module("celery.signals")
        signals.worker_process_shutdown.connect(
            _on_worker_process_shutdown, weak=False, dispatch_uid="logdrain.prefork"
        )
    except Exception:  # noqa: BLE001 - a broken or partial celery: no hook, nothing else
        return
    _celery_connected = True


# -- uwsgi ---------------------------------------------------------------------


class _UwsgiAtexit:
    """``uwsgi.atexit``: close the drains, then run the ``atexit`` set before."""

    def __init__(self, previous: Callable[[], object] | None) -> None:
        self.previous = previous

    def __call__(self) -> None:
        close_live_drains()
        if self.previous is not None:
            self.previous()


def _install_uwsgi() -> None:
    uwsgi = sys.modules.get("uwsgi")  # only inside a uwsgi server
    if uwsgi is None:
        return
    try:
        previous = getattr(uwsgi, "atexit", None)
        if not isinstance(previous, _UwsgiAtexit):
            uwsgi.atexit = _UwsgiAtexit(previous if callable(previous) else None)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001, S110 - leave uwsgi as it was
        pass


# -- entry points --------------------------------------------------------------


def install() -> None:
    """Connect the pool hooks of the frameworks in use (idempotent, cheap)."""
    with _install_lock:
        _install_celery()
        _install_uwsgi()


def _after_fork_in_child() -> None:
    global _install_lock  # noqa: PLW0603 - the parent's may be held by a thread that is gone
    _install_lock = threading.Lock()
    if lifecycle.live_drains():
        install()


os.register_at_fork(after_in_child=_after_fork_in_child)
