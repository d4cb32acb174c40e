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
from .context import Capture
from .context import state as _CONTEXT
from .drain import Drain
from .jsonsafe import describe
from .records import EVENT, level_number
from .sizing import HUGE as _HUGE
from .sizing import SCALARS as _SCALARS
from .sizing import SMALL_VALUES as _SMALL_VALUES
from .sizing import charge

_GUARD = guard.state
_time = time.time


class DrainProcessor:
    """``structlog.configure(processors=[..., DrainProcessor(drain), renderer])``.

    The shipped record keeps the event dict's own keys; ``timestamp`` (RFC
    3339, taken on the caller's thread) and ``level`` are added only when the
    event has none, and ``exc_info`` becomes a formatted ``exception`` string.
    """

    __slots__ = ("_capture", "drain")

    def __init__(self, drain: Drain | None = None, **options: Any) -> None:
        self.drain = drain if drain is not None else Drain(**options)
        settings = self.drain.settings
        self._capture = Capture(settings) if settings.context or settings.trace else None

    def __repr__(self) -> str:
        return f"DrainProcessor({self.drain!r})"

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if _GUARD.sending:  # guard.active(), inlined
            return event_dict
        created = _time()
        try:
            snap = dict(event_dict)
            if _CONTEXT.look or _CONTEXT.structlog_vars:  # see context.Capture
                capture = self._capture
                if capture is not None:
                    capture.add(snap)
            # The byte estimate (sizing.charge's common case, inlined): the
            # event's values, when each is a str or a scalar (a level added
            # below is a short str).
            size = 0
            for value in snap.values():
                if type(value) is str:
                    size += len(value)
                elif type(value) not in _SCALARS:
                    size = _HUGE
                    break
            if "level" not in snap:
                snap["level"] = method_name.upper() if method_name != "exception" else "ERROR"
            if "exc_info" in snap:
                exc_info = snap.pop("exc_info")
                if exc_info:
                    snap.setdefault("exception", _format_exc(exc_info))
                    size = _HUGE  # the traceback: charged by the full look
        except Exception as exc:  # noqa: BLE001 - one bad value never loses the event
            snap = _salvage(event_dict, method_name, exc)
            size = _HUGE
        drain = self.drain
        if drain.min_level and (level_number(snap.get("level")) or 0) < drain.min_level:
            return event_dict  # below the preset's min_level (Slack): not shipped
        if size <= _SMALL_VALUES:
            drain.enqueue((EVENT, snap, created))
        else:  # a large record: charged its estimate, huge values reduced here
            drain.enqueue((EVENT, snap, created), charge(snap, drain.settings.max_record_bytes))
        return event_dict


def _salvage(event_dict: Any, method_name: Any, exc: Exception) -> dict[str, Any]:
    """The snapshot of an event dict whose copy or traceback formatting
    raised: what the dict holds (read from its storage, past a hostile
    ``keys()``/``__iter__``), the exception as far as it formats, and the error."""
    snap: dict[str, Any]
    try:
        snap = dict(dict.items(event_dict)) if isinstance(event_dict, dict) else {}
    except Exception as error:  # noqa: BLE001 - nothing readable: say so
        snap = {"event": f"<logdrain: event could not be copied: {describe(error)}>"}
    if not snap and not isinstance(event_dict, dict):
        snap["event"] = f"<logdrain: event could not be copied: {describe(exc)}>"
    if "level" not in snap:
        name = method_name if isinstance(method_name, str) else "info"
        snap["level"] = name.upper() if name != "exception" else "ERROR"
    exc_info = snap.pop("exc_info", None)
    if exc_info:
        try:
            snap.setdefault("exception", _format_exc(exc_info))
        except Exception as error:  # noqa: BLE001 - keep the event, say what failed
            snap["exception"] = f"<logdrain: exception formatting failed: {describe(error)}>"
    return snap


def _format_exc(exc_info: Any) -> str:
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    elif not isinstance(exc_info, tuple):
        exc_info = sys.exc_info()
    if exc_info[0] is None:
        return ""
    return "".join(traceback.format_exception(*exc_info))
