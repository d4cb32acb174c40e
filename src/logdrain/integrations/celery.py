"""Celery: the task id and name on every record logged inside a task.

``install()`` (call it once where the Celery app is defined) connects to
Celery's ``task_prerun`` and ``task_postrun`` signals: for the task's run,
``task_id`` and ``task_name`` are bound with :func:`logdrain.bind`, so every
record logged inside it carries them (stdlib and structlog alike, no
formatter needed), in the pool process or thread that runs it. Idempotent.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from typing import Any

from celery import signals  # type: ignore[import-untyped, import-not-found, unused-ignore]

from ..context import bind, unbind

_tokens: dict[str, contextvars.Token[Any]] = {}
_lock = threading.Lock()
_connected: list[bool] = []


def _prerun(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    if task_id is None:
        return
    token = bind(task_id=task_id, task_name=getattr(task, "name", None))
    with _lock:
        _tokens[task_id] = token


def _postrun(task_id: str | None = None, **_: Any) -> None:
    with _lock:
        token = _tokens.pop(task_id, None) if task_id is not None else None
    if token is not None:
        with contextlib.suppress(ValueError):  # bound in another context: let it go
            unbind(token)


def install() -> None:
    """Connect the signal handlers (strong references: Celery's are weak by default)."""
    with _lock:
        if _connected:
            return
        signals.task_prerun.connect(_prerun, weak=False)
        signals.task_postrun.connect(_postrun, weak=False)
        _connected.append(True)
