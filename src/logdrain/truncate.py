"""Shorten a record document to ``max_record_bytes``, keeping what matters.

The core fields (timestamp, level, logger, message, exception, stack) have
the first claim on the room: each is kept whole when it fits, else cut with
the marker, leaving at most half the room to the fields after it (so a long
message and a long traceback both ship, cut, and small fields still fit).
The other fields follow in the record's own order: each is kept whole if it
still fits; then the first ones that did not fit are cut, while
room remains, and the rest are dropped. A string is cut as it is; another
value (a large list or object) becomes its JSON text, cut. The note field
says what happened::

    "logdrain_truncated": {"original_bytes": 310512, "shortened_fields": 1, "dropped_fields": 87}

A string that ends in logdrain's marker was cut before (on the caller's
thread, see ``sizing``): cut again, it carries one marker counting from the
original, and ``original_bytes`` includes what was cut then.

Linear in the record's size: each field is encoded once to learn its size,
and only the fields that are cut are encoded again (a few times, each at
most ``limit`` bytes).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .jsonsafe import TRUNCATION_MARK

CORE_FIELDS = ("timestamp", "level", "logger", "message", "exception", "stack")
NOTE_KEY = "logdrain_truncated"
MIN_CUT = 32  # bytes of text below which a field is dropped rather than cut
_CUT_TRIES = 8

Dumps = Callable[[Any], bytes]

# A string logdrain already cut (on the caller's thread: see ``sizing``) ends in its marker.
_MARKED = re.compile(re.escape(TRUNCATION_MARK).replace(r"\{\}", r"(\d+)") + r"\Z")
_MARK_MAX = len(TRUNCATION_MARK.format(10**20))


def marked(text: str) -> tuple[int, int]:
    """(the length of ``text`` without a trailing truncation marker, the
    characters that marker says were cut before), or (``len(text)``, 0).
    Cutting it again then counts from the original: one marker, the total."""
    if not text.endswith("]"):
        return len(text), 0
    found = _MARKED.search(text, max(0, len(text) - _MARK_MAX))
    if found is None:
        return len(text), 0
    return found.start(), int(found.group(1))


def note(original: int, shortened: int, dropped: int) -> dict[str, int]:
    return {"original_bytes": original, "shortened_fields": shortened, "dropped_fields": dropped}


def shorten(
    doc: dict[str, Any], limit: int, dumps: Dumps, *, original: int, with_note: bool = True
) -> dict[str, Any]:
    """A copy of ``doc`` (plain JSON values, as ``jsonsafe.clean`` makes)
    whose JSON fits ``limit`` bytes, with the note field when ``with_note``.

    Below about 200 bytes not even the core fields fit: the result is then
    as small as it can be, and may exceed ``limit``."""
    keys = [k for k in doc if k != NOTE_KEY]
    # Bytes each field takes inside the object: "key":value plus a separator.
    sizes = {k: len(dumps({k: doc[k]})) - 1 for k in keys}
    # Characters cut before (a marker at a string's end): the original was that larger.
    earlier = {}
    for key in keys:
        value = doc[key]
        if type(value) is str:
            count = marked(value)[1]
            if count:
                earlier[key] = count
    room = limit - 1  # the braces, less the separator the last field does not need
    if with_note:
        most = original + sum(earlier.values())
        room -= len(dumps({NOTE_KEY: note(most, len(keys), len(keys))})) - 1
    kept: dict[str, Any] = {}
    shortened = dropped = 0

    core = [k for k in CORE_FIELDS if k in sizes]
    core_set = frozenset(core)
    later = sum(sizes.values())  # what the fields after this one would take whole
    for key in core:
        later -= sizes[key]
        # A core field that must be cut leaves at most half the room to the rest.
        share = room - min(later, room // 2)
        if sizes[key] <= share:
            kept[key] = doc[key]
            room -= sizes[key]
            continue
        value = cut(key, doc[key], share, dumps)
        if value is None:
            dropped += 1
        else:
            kept[key] = value
            room -= len(dumps({key: value})) - 1
            shortened += 1

    did_not_fit = []
    for key in keys:
        if key in core_set:
            continue
        if sizes[key] <= room:
            kept[key] = doc[key]
            room -= sizes[key]
        else:
            did_not_fit.append(key)
    for key in did_not_fit:
        value = cut(key, doc[key], room, dumps)
        if value is None:
            dropped += 1
            continue
        kept[key] = value
        room -= len(dumps({key: value})) - 1
        shortened += 1

    out = {k: kept[k] for k in keys if k in kept}  # the record's own order
    if with_note:
        # Fields cut (or dropped) now that had been cut before add what was cut then.
        original += sum(n for k, n in earlier.items() if kept.get(k) is not doc[k])
        out[NOTE_KEY] = note(original, shortened, dropped)
    return out


def cut(key: str, value: Any, room: int, dumps: Dumps) -> str | None:
    """``value`` (its JSON text when not a string) shortened with the marker
    so that ``"key":"..."`` and a separator take at most ``room`` bytes; None
    when not even a short piece fits."""
    text_room = room - (len(dumps({key: ""})) - 1)  # bytes for the escaped text
    if text_room < MIN_CUT:
        return None
    if type(value) is str:
        text = value
        length, earlier = marked(value)  # cut before: the marker counts from the original
    else:
        text = dumps(value).decode("utf-8")
        length, earlier = len(text), 0
    keep = min(length, text_room)
    for _ in range(_CUT_TRIES):
        marker = TRUNCATION_MARK.format(length - keep + earlier)
        piece = text[:keep]
        piece += marker  # in place where CPython can: no second long copy
        need = len(dumps(piece)) - 2
        if need <= text_room:
            return piece
        if keep == 0:
            return None
        # Bytes per kept character once escaped ("é" takes 2, '"' takes 2).
        ratio = max(1.0, (need - len(marker)) / keep)
        keep = max(0, min(keep - 1, int(keep - (need - text_room) / ratio) - 1))
    marker = TRUNCATION_MARK.format(length + earlier)
    return marker if len(marker) <= text_room else None
