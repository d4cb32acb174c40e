"""Snapshots taken on the caller's thread: the only work a log call pays for.

The common cases are small tagged tuples (``STDLIB``: a copy of the record's
``__dict__`` and the formatted message; ``EVENT``: a copy of a structlog event
dict and the caller's clock reading). Records with an exception or a
structlog event dict as ``msg`` take the fuller :class:`StdlibSnapshot`. The
encoder, on a sender thread, tells them apart by type alone; anything
else in the queue is a user's mapping from ``Drain.submit()``.
"""

from __future__ import annotations

import logging
from typing import Any

from .jsonsafe import describe, safe_repr


class StdlibSnapshot(dict[str, Any]):
    """A copy of ``LogRecord.__dict__`` with the message already formatted."""

    __slots__ = ()


_plain_formatter = logging.Formatter()

#: Tags of the cheap queue items, ``(tag, mapping, extra)`` tuples, that the
#: front ends enqueue (see :func:`stdlib_item` and ``DrainProcessor``).
STDLIB = 1  # (STDLIB, copy of LogRecord.__dict__, formatted message); the lowest tag
EVENT = 2  # (EVENT, copy of a structlog event dict, time.time() on the caller's thread)
#: (RESEND, part, the record's time): a record as it was sent once, sent again
#: as it is (``logdrain replay``); the part is JSON bytes, or (key, JSON bytes).
RESEND = 3


def part_size(part: Any) -> int:
    """The bytes of a part as sent: JSON bytes, or ``(key, JSON bytes)``."""
    return len(part[0]) + len(part[1]) if type(part) is tuple else len(part)


def stdlib_item(
    record: logging.LogRecord, formatter: logging.Formatter | None = None
) -> tuple[int, dict[str, Any], str] | StdlibSnapshot:
    """The cheapest caller-side copy of ``record``, with the guarantees of
    :func:`snapshot`: the message is formatted now and ``args`` is not kept.

    ``record.__dict__.copy()`` keeps CPython's shared-key layout of instance
    dicts: about 5x faster than ``dict(record.__dict__)`` (what building a
    dict subclass such as :class:`StdlibSnapshot` does) and a third of the
    memory per queued record. Records carrying an exception, or whose ``msg``
    is a structlog event dict, still take :func:`snapshot`.
    """
    if record.exc_info or type(record.msg) is dict:
        return snapshot(record, formatter)
    if formatter is not None:
        # Formatted first: what the formatter sets on the record (Celery's
        # task_id and task_name) is in the copy, and ships.
        message = formatter.format(record)
        attrs = record.__dict__.copy()
        attrs["args"] = None
        # The copy the formatter leaves in record.message is not shipped (the
        # formatted message is): not kept, nor counted twice in the charge.
        attrs["message"] = None
        return STDLIB, attrs, message
    attrs = record.__dict__.copy()
    attrs["args"] = None
    return STDLIB, attrs, record.getMessage()


def snapshot(
    record: logging.LogRecord, formatter: logging.Formatter | None = None
) -> StdlibSnapshot:
    """The caller-side copy of ``record`` that goes into the queue.

    The message is formatted now, so a later change to ``args`` cannot change
    what ships; the traceback is formatted now and ``exc_info`` dropped, so the
    queue does not keep frames alive.
    """
    msg = record.msg
    if formatter is not None:
        # Formatted first, so the attributes the formatter sets ship too; the
        # traceback it caches in exc_text is in its message, not shipped twice.
        exc_text = record.exc_text
        message = formatter.format(record)
        snap = StdlibSnapshot(record.__dict__)
        snap["message"] = message
        snap["exc_text"] = exc_text
        if record.exc_info:
            if not record.exc_text:  # a formatter that left no traceback text
                snap["exc_text"] = _plain_formatter.formatException(record.exc_info)
            snap["exc_info"] = None
        snap["args"] = None
        return snap
    snap = StdlibSnapshot(record.__dict__)
    if type(msg) is dict:  # structlog's stdlib integration: msg is the event dict
        snap["msg"] = dict(msg)
        snap["message"] = msg["event"] if "event" in msg else record.getMessage()
    else:
        snap["message"] = record.getMessage()
    if record.exc_info:
        if not record.exc_text:
            snap["exc_text"] = _plain_formatter.formatException(record.exc_info)
        snap["exc_info"] = None
    snap["args"] = None
    return snap


def failed_item(record: logging.LogRecord, exc: BaseException) -> tuple[int, dict[str, Any], str]:
    """The queue item for a record whose message (or handler formatter)
    raised: its template and the reprs of its arguments, with the error, so
    one bad value never loses the record. Only on that failure; never raises."""
    attrs = record.__dict__.copy()
    attrs["args"] = None
    if record.exc_info:
        if not record.exc_text:
            try:
                attrs["exc_text"] = _plain_formatter.formatException(record.exc_info)
            except Exception as error:  # noqa: BLE001 - the record still ships
                attrs["exc_text"] = f"<logdrain: traceback formatting failed: {describe(error)}>"
        attrs["exc_info"] = None
    return STDLIB, attrs, failed_message(record, exc)


def failed_message(record: logging.LogRecord, exc: BaseException) -> str:
    """``<logdrain: message formatting failed: TypeError: ...> '%d' % ('x',)``."""
    text = f"<logdrain: message formatting failed: {describe(exc)}> {safe_repr(record.msg)}"
    args = record.__dict__.get("args")
    if args is None or (type(args) is tuple and not args):
        return text
    return f"{text} % {safe_repr(args)}"


_LEVELS = {
    "CRITICAL": 50, "FATAL": 50, "ERROR": 40, "EXCEPTION": 40, "WARN": 30, "WARNING": 30,
    "INFO": 20, "DEBUG": 10, "TRACE": 5, "NOTSET": 0,
}  # fmt: skip


def level_number(level: Any) -> int | None:
    """``"warning"`` or ``30`` -> 30; None when it is no level."""
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    if isinstance(level, str):
        return _LEVELS.get(level.upper())
    return None
