"""``DrainProcessor``: the structlog front end.

Sits anywhere before the renderer: it queues a snapshot of the event dict
and returns the event dict unchanged, so the rest of the chain is unaffected.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import MutableMapping
from typing import Any

from . import guard
from .drain import Drain
from .records import EVENT


class DrainProcessor:
    """``structlog.configure(processors=[..., DrainProcessor(drain), renderer])``.

    The shipped record keeps the event dict's own keys; ``timestamp`` (RFC
    3339, taken on the caller's thread) and ``level`` are added only when the
    event has none, and ``exc_info`` becomes a formatted ``exception`` string.
    """

    __slots__ = ("drain",)

    def __init__(self, drain: Drain | None = None, **options: Any) -> None:
        self.drain = drain if drain is not None else Drain(**options)

    def __repr__(self) -> str:
        return f"DrainProcessor({self.drain!r})"

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if guard.active():
            return event_dict
        created = time.time()
        snap = dict(event_dict)
        if "level" not in snap:
            snap["level"] = method_name.upper() if method_name != "exception" else "ERROR"
        exc_info = snap.pop("exc_info", None)
        if exc_info:
            snap.setdefault("exception", _format_exc(exc_info))
        self.drain.enqueue((EVENT, snap, created))
        return event_dict


def _format_exc(exc_info: Any) -> str:
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    elif not isinstance(exc_info, tuple):
        exc_info = sys.exc_info()
    if exc_info[0] is None:
        return ""
    return "".join(traceback.format_exception(*exc_info))
