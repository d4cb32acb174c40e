"""A queued item's own time and level, read on the sender threads: the
record's where it has them (a stdlib snapshot, a structlog event's clock
reading), else its ``timestamp`` and ``level`` fields (a submitted mapping)."""

from __future__ import annotations

import math
import re
import time
from datetime import datetime, timezone
from typing import Any

from .records import EVENT, STDLIB, level_number

_ISO = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:[.,](\d+))?(?:([Zz])|([+-])(\d{2}):?(\d{2}))?"
)


def _parse_time(value: Any) -> float | None:
    """Epoch seconds of a number or an RFC 3339 / ISO 8601 string (any
    fraction length: Python 3.10's ``fromisoformat`` takes only 3 or 6
    digits); None when it is neither. No offset means UTC."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    match = _ISO.fullmatch(value.strip())
    if match is None:
        return None
    day, clock, fraction, _zulu, sign, hours, minutes = match.groups()
    try:
        when = datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    seconds = when.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)
    if sign:
        offset = int(hours) * 3600 + int(minutes) * 60
        seconds -= offset if sign == "+" else -offset
    return seconds


def item_facts(item: Any) -> tuple[float, int | None]:
    """(created, levelno) of a queued item: from the record where it has
    them, else from its ``timestamp``/``level`` fields, else now."""
    try:
        if type(item) is tuple:
            tag, data, extra = item
            if tag == STDLIB:
                return float(data["created"]), data.get("levelno")
            if tag == EVENT:
                return float(extra), level_number(data.get("level"))
        if "created" in item and "levelno" in item:  # a StdlibSnapshot
            return float(item["created"]), item["levelno"]
        created = _parse_time(item.get("timestamp"))
        return (time.time() if created is None else created), level_number(item.get("level"))
    except Exception:  # noqa: BLE001 - a malformed item: what is known
        return time.time(), None


def item_created(item: Any) -> float | None:
    """A queued item's own time (epoch seconds), None when it has none (a
    submitted mapping without a ``timestamp``, or a malformed item)."""
    try:
        if type(item) is tuple:
            tag, data, extra = item
            if tag == STDLIB:
                return float(data["created"])
            return float(extra)  # EVENT: the caller's clock; RESEND: the record's time
        if "created" in item and "levelno" in item:  # a StdlibSnapshot
            return float(item["created"])
        return _parse_time(item.get("timestamp"))
    except Exception:  # noqa: BLE001 - a malformed item: no time, so it never expires
        return None
