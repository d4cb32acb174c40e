"""Snapshots taken on the caller's thread: the only work a log call pays for.

A snapshot is a plain ``dict`` subclass so the queue holds one object per
record, and so the encoder (on the dispatcher thread) can tell a stdlib
record from a structlog event from a user's mapping by its type alone.
"""

from __future__ import annotations

import logging
from typing import Any


class StdlibSnapshot(dict[str, Any]):
    """A copy of ``LogRecord.__dict__`` with the message already formatted."""

    __slots__ = ()


class EventSnapshot(dict[str, Any]):
    """A copy of a structlog event dict, with the caller's clock reading."""

    __slots__ = ("created",)

    def __init__(self, event: Any, created: float) -> None:
        super().__init__(event)
        self.created = created


_plain_formatter = logging.Formatter()


def snapshot(
    record: logging.LogRecord, formatter: logging.Formatter | None = None
) -> StdlibSnapshot:
    """The caller-side copy of ``record`` that goes into the queue.

    The message is formatted now, so a later change to ``args`` cannot change
    what ships; the traceback is formatted now and ``exc_info`` dropped, so the
    queue does not keep frames alive.
    """
    snap = StdlibSnapshot(record.__dict__)
    msg = record.msg
    if formatter is not None:
        snap["message"] = formatter.format(record)
    elif type(msg) is dict:  # structlog's stdlib integration: msg is the event dict
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
