"""JSON-safe stand-ins for whatever a record holds. Nothing here raises.

:func:`to_jsonable` is the JSON encoders' ``default`` hook; :func:`clean`
is the slow path taken when an encoder refuses a document: it rebuilds it
from plain JSON values, and a value that raises while it is read (a dict
subclass whose ``items()`` raises, a ``__repr__`` that raises, a container
another thread changes meanwhile) is replaced by a placeholder naming its
type and the error, so the rest of the record still ships.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import enum
import json
import math
import re
import uuid
from collections.abc import Callable, Mapping
from itertools import chain, repeat
from pathlib import PurePath
from typing import Any

MAX_REPR = 10_000
MAX_ARRAY_ITEMS = 10_000
MAX_DEPTH = 64
MAX_ERROR = 200  # characters of an error message quoted in a placeholder
TRUNCATION_MARK = "...[logdrain: truncated {} chars]"
_COPY_TRIES = 3  # a container changed by another thread while copied: tries

_SURROGATES = re.compile("[\ud800-\udfff]")


def type_name(obj: object) -> str:
    """The qualified name of ``obj``'s real type (``__class__`` is not consulted)."""
    try:
        name = type(obj).__qualname__
        return name if type(name) is str else "object"
    except Exception:  # noqa: BLE001 - a metaclass may do anything
        return "object"


def describe(exc: BaseException) -> str:
    """``Type: message`` for an exception, shortened; never raises."""
    name = type_name(exc)
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - a hostile __str__
        text = ""
    if len(text) > MAX_ERROR:
        text = text[:MAX_ERROR] + "..."
    return f"{name}: {text}" if text else name


def unencodable(obj: object, exc: BaseException) -> str:
    """The placeholder for a value that raised while it was read."""
    return f"<unencodable {type_name(obj)}: {describe(exc)}>"


def safe_repr(obj: object) -> str:
    """``repr(obj)``, shortened; a placeholder if ``repr`` raises or returns a non-str."""
    try:
        text = repr(obj)
        if type(text) is not str:
            text = str.__str__(text)  # a str subclass becomes a str; anything else raises
    except KeyboardInterrupt:
        raise
    except BaseException:  # noqa: BLE001 - any user __repr__ may raise anything
        return f"<unrepresentable {type_name(obj)} object>"
    if len(text) > MAX_REPR:
        text = text[:MAX_REPR] + TRUNCATION_MARK.format(len(text) - MAX_REPR)
    return text


def to_jsonable(obj: object) -> Any:
    """The ``default`` hook: a JSON-safe stand-in for ``obj`` (never raises)."""
    try:
        if isinstance(obj, _dt.datetime | _dt.date | _dt.time):
            return obj.isoformat()
        if isinstance(obj, decimal.Decimal | uuid.UUID | PurePath):
            return str(obj)
        if isinstance(obj, bytes | bytearray | memoryview):
            return bytes(obj).decode("utf-8", "backslashreplace")
        if isinstance(obj, set | frozenset):
            try:
                return sorted(obj)
            except TypeError:
                return list(obj)
        if isinstance(obj, BaseException):
            return f"{type(obj).__name__}: {safe_repr(obj) if not str(obj) else obj}"
        if isinstance(obj, enum.Enum):
            return obj.value if isinstance(obj.value, str | int | float) else obj.name
        if isinstance(obj, Mapping):
            return dict(obj)
        if hasattr(obj, "dtype") and hasattr(obj, "tolist"):  # numpy scalars and arrays
            size = getattr(obj, "size", 1)
            if isinstance(size, int) and size > MAX_ARRAY_ITEMS:
                shape = getattr(obj, "shape", "?")
                return f"<array shape={shape} dtype={obj.dtype} ({size} items, not shipped)>"
            return obj.tolist()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - conversion of a hostile object must not fail
        text = safe_repr(obj)
        return unencodable(obj, exc) if text.startswith("<unrepresentable ") else text
    return safe_repr(obj)


def clean(obj: Any, depth: int = 0, seen: set[int] | None = None) -> Any:
    """``obj`` rebuilt from plain JSON values (str keys, finite floats,
    printable ints), which any JSON encoder accepts. Never raises: a value
    that raises while it is read becomes a placeholder, alone."""
    try:
        return _clean(obj, depth, set() if seen is None else seen)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - only this value is lost
        return unencodable(obj, exc)


def _clean(obj: Any, depth: int, seen: set[int]) -> Any:
    kind = type(obj)  # the real type: a hostile __class__ is never consulted
    if obj is None or kind is bool or kind is str:
        return obj
    if issubclass(kind, str):
        return str.__str__(obj)
    if issubclass(kind, int):
        try:
            int.__repr__(obj)
        except ValueError:  # too many digits to print
            return f"<int of {int.bit_length(obj)} bits>"
        return obj if kind is int else int.__int__(obj)
    if issubclass(kind, float):
        value = float.__float__(obj)
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if depth >= MAX_DEPTH:
        return "<too deep>"
    if issubclass(kind, dict | list | tuple):
        if id(obj) in seen:
            return "<cycle>"
        # A copy first: a value read below may run code that changes ``obj``.
        is_dict = issubclass(kind, dict)
        items = _copy(obj, _items) if is_dict else enumerate(_copy(obj, _values))
        seen.add(id(obj))
        try:
            if is_dict:
                return {
                    (k if type(k) is str else _key(k)): clean(v, depth + 1, seen) for k, v in items
                }
            return [clean(v, depth + 1, seen) for _, v in items]
        finally:
            seen.discard(id(obj))
    return clean(to_jsonable(obj), depth + 1, seen)


def _items(obj: Any) -> list[tuple[Any, Any]]:
    """What the stdlib encoder reads from a dict (a subclass's ``items()``);
    when that raises, what the dict holds (what orjson reads)."""
    if type(obj) is dict:
        return list(obj.items())
    try:
        return list(obj.items())
    except RuntimeError:
        raise
    except Exception:  # noqa: BLE001 - a hostile override: read the storage
        return list(dict.items(obj))


def _values(obj: Any) -> list[Any]:
    """The items of a list or tuple; a subclass whose ``__iter__`` raises is
    read from its storage."""
    if type(obj) is list or type(obj) is tuple:
        return list(obj)
    try:
        return list(obj)
    except RuntimeError:
        raise
    except Exception:  # noqa: BLE001 - a hostile override: read the storage
        base = list if isinstance(obj, list) else tuple
        return list(base.__iter__(obj))


def _copy(obj: Any, how: Any) -> Any:
    """``how(obj)``, tried again when another thread changed ``obj`` meanwhile."""
    for attempt in range(_COPY_TRIES):
        try:
            return how(obj)
        except RuntimeError:  # "dictionary changed size during iteration"
            if attempt == _COPY_TRIES - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _key(key: object) -> str:
    """A JSON object key for a non-str key: JSON spelling for scalars, else the repr."""
    kind = type(key)
    try:
        if issubclass(kind, str):
            return str.__str__(key)
        if key is None or issubclass(kind, int | float):
            plain = clean(key)  # a huge int or NaN becomes a str
            return plain if type(plain) is str else json.dumps(plain)
    except Exception:  # noqa: BLE001 - a hostile key still becomes a key
        return safe_repr(key)
    return safe_repr(key)


def fix_surrogates(text: str) -> bytes:
    """UTF-8 for ``text`` with each lone surrogate replaced by U+FFFD."""
    return _SURROGATES.sub("\ufffd", text).encode("utf-8", "replace")


def last_resort(doc: object, exc: BaseException) -> dict[str, Any]:
    """What ships when even the slow path failed: the core fields that are
    strings, and the error."""
    out: dict[str, Any] = {}
    if isinstance(doc, dict):
        for key in ("timestamp", "level", "logger", "message"):
            try:
                value = dict.get(doc, key)
                out[key] = value if value is None or type(value) is str else safe_repr(value)
            except Exception:  # noqa: BLE001 - the last resort must not fail
                out[key] = None
    out["logdrain_error"] = f"<logdrain: record could not be encoded: {describe(exc)}>"
    return out


_PLAIN = (str, int, bool, type(None))


def needs_stdlib(obj: Any, depth: int = 0) -> bool:
    """True if ``obj`` holds a value orjson would write differently from the
    stdlib encoder: a non-finite float (orjson writes ``null``, logdrain
    ``"NaN"``), or an object converted by ``default`` that may turn into one."""
    kind = type(obj)
    if kind in _PLAIN:
        return False
    if kind is float:
        return not math.isfinite(obj)
    if depth >= MAX_DEPTH:
        return True
    if kind is dict:
        return any(needs_stdlib(v, depth + 1) for v in obj.values())
    if kind is list or kind is tuple:
        return any(needs_stdlib(v, depth + 1) for v in obj)
    return True


#: Copies of orjson's outputs, made right-sized: ``copied_out((data, b""))`` (a
#: join of two parts always copies; measured the cheapest copy CPython makes
#: here). orjson writes into a buffer of a few KiB and shrinks it in place
#: when done, leaving the buffer's tail a hole the next call's buffer does
#: not fit: while outputs are held (a batch's parts, thousands of them),
#: every call takes fresh heap, and in a heap glibc has just trimmed that is
#: a page fault a record. Measured here (glibc, 2,000 records of about 160
#: bytes, benchmarks/held_outputs.py): 1.4-1.7 us a record with the outputs held,
#: 0.2 us copied out. Copied, each buffer is freed before the next call,
#: which reuses it.
copied_out = b"".join
_NOTHING = repeat(b"")  # the empty second part (infinite: shared, never used up)


def orjson_dumps(*, held: bool = True) -> Callable[[Any], bytes] | None:
    """orjson's ``dumps`` set up to write what the stdlib encoder writes
    (datetimes and dataclasses through the same ``default`` hook), or None
    when orjson is not installed. ``held``: the output is kept (a record's
    part), so it is copied out of orjson's buffer (see ``copied_out``); a
    chunk of records' JSON, a few of them a batch, need not be."""
    try:
        import orjson  # noqa: PLC0415 - an optional extra, imported on demand
    except ImportError:
        return None
    dumps = orjson.dumps
    option = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS

    if not held:

        def encode_chunk(obj: Any) -> bytes:
            return dumps(obj, default=to_jsonable, option=option)

        return encode_chunk

    def encode(obj: Any) -> bytes:
        return copied_out((dumps(obj, default=to_jsonable, option=option), b""))

    return encode


def orjson_call() -> tuple[Callable[..., bytes], int] | None:
    """orjson's ``dumps`` and the option of :func:`orjson_dumps`, for a caller
    that calls it inline (``dumps(obj, default=to_jsonable, option=option)``:
    no Python frame between), or None when orjson is not installed."""
    try:
        import orjson  # noqa: PLC0415 - an optional extra, imported on demand
    except ImportError:
        return None
    return orjson.dumps, orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def orjson_lists() -> Callable[[list[Any], bool], list[bytes] | None] | None:
    """An encoder of a list of values in one orjson call (a batch mapping's
    ``encode_list``): each value's JSON, what :func:`orjson_dumps` writes of
    it alone, or with ``escaped`` the same as the contents of a JSON string
    (backslashes and quotes escaped: JSON text holds no raw control
    character, so that is the whole escape). None for a list it cannot be
    sure of (a value the stdlib path must write: a NaN, written ``null``
    here; a value orjson refuses); None when orjson is not installed.

    The values are written with a marker after each and the output cut at
    the markers: what lies between two is exactly one value's JSON (orjson
    writes a value the same wherever it stands), each piece a right-sized
    copy (``bytes.split``). A marker's bytes inside a value (a list holding
    the marker string) make more pieces than values, hence None."""
    try:
        import orjson  # noqa: PLC0415 - an optional extra, imported on demand
    except ImportError:
        return None
    dumps = orjson.dumps
    option = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
    marker = _MARKER
    sep = b"," + dumps(marker) + b","
    escaped_sep = _escaped(sep)

    def encode_list(values: list[Any], escaped: bool = False) -> list[bytes] | None:
        if not values:
            return []
        marked = list(chain.from_iterable(zip(values, repeat(marker))))
        try:
            data = dumps(marked, default=to_jsonable, option=option)
        except Exception:  # noqa: BLE001 - one value at a time decides
            return None
        if data.find(b"null") >= 0 and needs_stdlib(values):
            return None
        inner = data[1 : -len(sep)]  # '[' ... ',"<marker>"]'
        found = _escaped(inner).split(escaped_sep) if escaped else inner.split(sep)
        return found if len(found) == len(values) else None

    return encode_list


def _escaped(data: bytes) -> bytes:
    """JSON text as the contents of a JSON string."""
    return data.replace(b"\\", b"\\\\").replace(b'"', b'\\"')


#: The marker :func:`orjson_lists` puts after each value: NULs (written as
#: ``\\u0000``) around a name no log record holds by chance.
_MARKER = "\x00logdrain-cut\x00"


def orjson_map() -> Callable[[list[Any]], list[bytes]] | None:
    """:func:`orjson_dumps` over a list, one C-level call per value (no
    Python frame per value), each output copied out (``copied_out``), or None
    when orjson is not installed. Raises what orjson raises for any value."""
    try:
        import orjson  # noqa: PLC0415 - an optional extra, imported on demand
    except ImportError:
        return None
    dumps = orjson.dumps
    default = repeat(to_jsonable)
    option = repeat(orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS)

    def encode_all(values: list[Any]) -> list[bytes]:
        # infinite repeats: shared, never used up
        return list(
            map(copied_out, zip(map(dumps, values, default, option), _NOTHING, strict=False))
        )

    return encode_all
