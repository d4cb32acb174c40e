"""What a queued record costs in bytes, estimated on the caller's thread,
and the reduction of values that are already huge (see docs/delivery.md#memory).

The estimate is O(1) per value and never walks a container: ``len()`` of a
string or bytes, ``nbytes`` of an array (anything with ``dtype`` and
``tolist``, as the encoder sees it), ``len()`` of a list, tuple, dict or set
times a constant, and a constant for anything else. A record is charged
:data:`OVERHEAD` (its snapshot's own dict, tuple and standard fields) plus
its values, and at least :data:`SMALL`: the common small record is charged
exactly ``SMALL``, which lets the queue keep it on its count-only path.

Reductions happen here only for values already over a threshold, and give
what the encoder would ship anyway:

* a string above ``max_record_bytes`` characters keeps its first
  ``max_record_bytes`` and gets logdrain's marker
  (``...[logdrain: truncated N chars]``, N counted from the original); the
  encoder cuts it further to fit the record, and its marker then counts from
  the original too (see :func:`logdrain.truncate.marked`);
* bytes above ``max_record_bytes`` become their text (as the encoder would
  write them), cut the same way;
* an array of more than ``MAX_ARRAY_ITEMS`` items becomes the summary the
  encoder writes (``<array shape=... dtype=... (N items, not shipped)>``), and
  a small numpy view becomes a copy, so the queue never keeps the caller's
  big array alive.

Nothing here raises: a value that fails while it is measured is charged a
constant and left as it is.
"""

from __future__ import annotations

import logging
from typing import Any

from .encode import RECORD_ATTRS
from .jsonsafe import MAX_ARRAY_ITEMS, TRUNCATION_MARK, to_jsonable

#: Bytes every queued record is charged at least; the charge of a record
#: whose own values take at most ``SMALL - OVERHEAD`` (the usual log call).
SMALL = 1024
#: A record's fixed part: its snapshot dict, the tuple, the standard fields.
OVERHEAD = 512
#: The most a small record's own values may take (message and extras).
SMALL_VALUES = SMALL - OVERHEAD
#: Per value of another kind (an object, a datetime, ...), and per item of a container.
OTHER = 64
ITEM = 16
#: Marks a record whose values need the full look (a value that is not a
#: str or a scalar); far above any charge.
HUGE = 1 << 62

#: Types whose values take a few bytes and never need reducing.
SCALARS = frozenset({int, float, bool, type(None)})
_CONTAINERS = frozenset({list, tuple, dict, set, frozenset})
#: Record attributes that ship (as ``exception`` and ``stack``) and may be long.
_SHIPPED_ATTRS = frozenset({"exc_text", "stack_info"})

#: How many attributes ``LogRecord.__init__`` sets: the keys of a record's
#: ``__dict__`` beyond these (at its end) are its extras.
RECORD_KEYS = len(logging.LogRecord("", 0, "", 0, "", None, None).__dict__)


def cut_text(text: str, limit: int) -> str:
    """``text`` (longer than ``limit``) as its first ``limit`` characters and the marker."""
    cut = text[:limit]
    cut += TRUNCATION_MARK.format(len(text) - limit)  # in place where CPython can
    return cut


def measure(value: Any, limit: int) -> tuple[int, Any]:
    """(estimated bytes, the value to keep) for one value: the value itself,
    or its reduced form when it is over a threshold. Never raises."""
    kind = type(value)
    if kind is str:
        if len(value) > limit:
            value = cut_text(value, limit)
        return len(value), value
    if kind in SCALARS:
        return 0, value
    try:
        if kind is bytes or kind is bytearray or kind is memoryview:
            size = value.nbytes if kind is memoryview else len(value)
            if size <= limit:
                return size, value
            text = cut_text(to_jsonable(value), limit)
            return len(text), text
        if kind in _CONTAINERS:
            return OTHER + ITEM * len(value), value
        if isinstance(value, str):  # a subclass: an enum member, a markup string
            if len(value) > limit:
                value = cut_text(str.__str__(value), limit)
            return len(value), value
        return _measure_object(value, limit)
    except KeyboardInterrupt:
        raise
    except BaseException:  # noqa: BLE001 - a hostile value: charged, kept, encoded later
        return OTHER, value


def _measure_object(value: Any, limit: int) -> tuple[int, Any]:
    """Arrays (what the encoder treats as one: ``dtype`` and ``tolist``) by
    ``nbytes``; other objects by a constant."""
    if not (hasattr(value, "dtype") and hasattr(value, "tolist")):
        return OTHER, value
    size = getattr(value, "size", 1)
    if isinstance(size, int) and size > MAX_ARRAY_ITEMS:
        summary = to_jsonable(value)  # what the encoder would ship: the summary
        if type(summary) is str:
            return len(summary), summary
    nbytes = getattr(value, "nbytes", None)
    if type(nbytes) is not int or nbytes < 0:
        return OTHER, value
    base = getattr(value, "base", None)
    if base is not None and type(getattr(base, "nbytes", None)) is int and base.nbytes > nbytes:
        value = value.copy()  # a small view would keep its whole base alive in the queue
    return OTHER + nbytes, value


def tail_size(attrs: dict[str, Any], size: int) -> int:
    """``size`` plus the lengths of a stdlib snapshot's extras (the keys after
    ``LogRecord``'s own), when each is a str or a scalar; else :data:`HUGE`
    (a value that needs the full look, or a record with attributes deleted).
    ``DrainHandler.handle`` inlines this."""
    extras = len(attrs) - RECORD_KEYS
    if extras > 0:
        for value in reversed(attrs.values()):
            if type(value) is str:
                size += len(value)
            elif type(value) not in SCALARS:
                return HUGE
            extras -= 1
            if not extras:
                break
    elif extras:
        return HUGE
    return size


def values_size(values: dict[str, Any], limit: int, keys: Any = None) -> int:
    """Estimated bytes of the values of ``values`` (those under ``keys``, or
    all), reducing huge ones in place (``values`` is the snapshot's own dict)."""
    size = 0
    replaced = []
    for key in values if keys is None else keys:
        value = values[key]
        n, kept = measure(value, limit)
        size += n
        if kept is not value:
            replaced.append((key, kept))
    for key, kept in replaced:
        values[key] = kept
    return size


def charge(values: dict[str, Any], limit: int) -> int:
    """The charge of a record whose fields are ``values`` (a structlog event
    dict's snapshot, a submitted mapping's copy), reducing huge values in
    place; 0 for a small record (charged :data:`SMALL`)."""
    size = OVERHEAD + values_size(values, limit)
    return size if size > SMALL else 0


def stdlib_charge(attrs: dict[str, Any], message: str, limit: int) -> tuple[int, str]:
    """(charge, message) of a stdlib record's snapshot ``attrs`` and its
    formatted ``message``, reducing both in place when huge: the message,
    the extras, ``exc_text``, ``stack_info``, and ``msg`` (not shipped: the
    message is) unless it is the structlog event dict, whose values ship.
    The charge is 0 for a small record."""
    if len(message) > limit:
        message = cut_text(message, limit)
    size = OVERHEAD + len(message)
    msg = attrs.get("msg")
    if type(msg) is dict:  # structlog's stdlib integration: the event dict's values ship
        size += values_size(msg, limit)
    elif msg is not message and (type(msg) is not str or len(msg) > limit):
        attrs["msg"] = message  # not shipped (the message is): the caller's object is not kept
    left = attrs.get("message")  # another handler's formatter left the whole message here
    if type(left) is str and len(left) > limit and left is not message:
        attrs["message"] = message
    keys = [k for k in attrs if k not in RECORD_ATTRS or k in _SHIPPED_ATTRS]
    size += values_size(attrs, limit, keys)
    return (size if size > SMALL else 0), message
