"""Turn queued snapshots into JSON documents and request bodies.

Runs on the sender threads, never on the caller's. The contract: every
record produces a body part. Values JSON cannot hold are converted; NaN,
cycles, unencodable keys, too-deep nesting and bad UTF-8 take a slower
sanitising path; an oversized record is shortened with a visible marker.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import enum
import json
import logging
import math
import re
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Any

from .config import Settings
from .records import STDLIB, StdlibSnapshot

_STDLIB_CHUNK = 100  # records per stdlib encoder call on the fast path

# LogRecord attributes that are not "extra" fields.
RECORD_ATTRS = frozenset(
    {
        "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module",
        "exc_info", "exc_text", "stack_info", "lineno", "funcName", "created", "msecs",
        "relativeCreated", "thread", "threadName", "processName", "process", "message",
        "asctime", "taskName",
        # structlog's stdlib integration (ProcessorFormatter.wrap_for_formatter)
        "_logger", "_name", "_from_structlog", "_record",
    }
)  # fmt: skip

# The attributes ``LogRecord.__init__`` sets, in order. Extra fields come
# after them in a record's ``__dict__`` (insertion order), so the document
# builder looks only past the last one when it is where it should be.
_INIT_KEYS = tuple(logging.LogRecord("", 0, "", 0, "", None, None).__dict__)
_INIT_LAST = len(_INIT_KEYS) - 1
_INIT_LAST_KEY = _INIT_KEYS[-1]

_CORE_FIELDS = frozenset({"timestamp", "level", "logger", "message", "exception", "stack"})
MAX_REPR = 10_000
MAX_ARRAY_ITEMS = 10_000
MAX_DEPTH = 64
TRUNCATION_MARK = "...[logdrain: truncated {} chars]"

_SURROGATES = re.compile("[\ud800-\udfff]")


def safe_repr(obj: object) -> str:
    """``repr(obj)``, shortened; a placeholder if ``repr`` itself raises."""
    try:
        text = repr(obj)
    except Exception:  # noqa: BLE001 - any user __repr__ may raise anything
        return f"<unrepresentable {type(obj).__qualname__} object>"
    if not isinstance(text, str):
        return f"<unrepresentable {type(obj).__qualname__} object>"
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
    except Exception:  # noqa: BLE001 - conversion of a hostile object must not fail
        return safe_repr(obj)
    return safe_repr(obj)


def _clean(obj: Any, depth: int, seen: set[int]) -> Any:
    """Slow path: a structure the JSON encoder accepts with ``allow_nan=False``."""
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int):
        try:
            int.__repr__(obj)
        except ValueError:
            return f"<int of {obj.bit_length()} bits>"
        return obj
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if depth >= MAX_DEPTH:
        return "<too deep>"
    if isinstance(obj, dict | list | tuple):
        if id(obj) in seen:
            return "<cycle>"
        seen.add(id(obj))
        try:
            if isinstance(obj, dict):
                return {
                    (k if isinstance(k, str) else _key(k)): _clean(v, depth + 1, seen)
                    for k, v in obj.items()
                }
            return [_clean(v, depth + 1, seen) for v in obj]
        finally:
            seen.discard(id(obj))
    return _clean(to_jsonable(obj), depth + 1, seen)


def _second(sec: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))


def _key(key: object) -> str:
    if isinstance(key, int | float | bool) or key is None:
        return json.dumps(key)
    return safe_repr(key)


def _fix_surrogates(text: str) -> bytes:
    return _SURROGATES.sub("\ufffd", text).encode("utf-8", "replace")


_PLAIN = (str, int, bool, type(None))


def _needs_stdlib(obj: Any, depth: int = 0) -> bool:
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
        return any(_needs_stdlib(v, depth + 1) for v in obj.values())
    if kind is list or kind is tuple:
        return any(_needs_stdlib(v, depth + 1) for v in obj)
    return True


def orjson_dumps() -> Callable[[Any], bytes] | None:
    """orjson's ``dumps`` set up to write what the stdlib encoder writes
    (datetimes and dataclasses through the same ``default`` hook), or None
    when orjson is not installed."""
    try:
        import orjson  # noqa: PLC0415 - an optional extra, imported on demand
    except ImportError:
        return None
    dumps = orjson.dumps
    option = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS

    def encode(obj: Any) -> bytes:
        return dumps(obj, default=to_jsonable, option=option)

    return encode


class Encoder:
    """Record snapshots -> JSON bytes -> request bodies, per the settings."""

    def __init__(self, settings: Settings) -> None:
        self._max_bytes = settings.max_record_bytes
        self._batch_bytes = settings.batch_bytes
        self.format = settings.format
        self.content_type = (
            "application/x-ndjson" if settings.format == "ndjson" else "application/json"
        )
        self._dumps: Callable[[Any], str] = json.JSONEncoder(
            default=to_jsonable, allow_nan=False, ensure_ascii=False, separators=(",", ":")
        ).encode
        # The fast path's encoder: orjson when chosen and installed.
        fast = orjson_dumps() if settings.json_encoder in ("auto", "orjson") else None
        self.json_encoder = "orjson" if fast is not None else "stdlib"
        self._fast_dumps: Callable[[Any], bytes] | None = fast
        self._ts_cache: tuple[int, str] = (-1, "")
        self._rename = dict(settings.rename)
        self._fields = frozenset(settings.fields)
        self._envelope = dict(settings.envelope)
        self._record_key = settings.record_key
        self._as_string = settings.record_as_string
        self._wraps = bool(self._envelope) or self._record_key is not None

    # -- documents --

    def timestamp(self, created: float) -> str:
        """RFC 3339, UTC, microseconds; the date part is cached per second."""
        sec = int(created)
        cached = self._ts_cache  # one tuple, swapped whole: safe if two threads encode
        if cached[0] != sec:
            cached = self._ts_cache = (sec, _second(sec))
        return "%s.%06dZ" % (cached[1], (created - sec) * 1e6)  # noqa: UP031 - 2x faster than :06d

    def document(self, item: Any) -> dict[str, Any]:
        """The JSON object for one queued item."""
        kind = type(item)
        if kind is tuple:  # the front ends' cheap items (records.STDLIB / records.EVENT)
            tag, data, extra = item
            if tag == STDLIB:
                return self._stdlib_document(data, extra)
            doc = dict(data)
            if "timestamp" not in doc:
                doc["timestamp"] = self.timestamp(extra)
            return doc
        if kind is not StdlibSnapshot:
            return dict(item)
        doc = self._stdlib_document(item, item.get("message"))
        msg = item.get("msg")
        if isinstance(msg, dict):  # structlog's stdlib integration: the event dict
            event = dict(msg)
            doc["message"] = event.pop("event", doc["message"])
            for key, value in event.items():
                if key not in _CORE_FIELDS:
                    doc[key] = value
        return doc

    def _stdlib_document(self, attrs: dict[str, Any], message: str) -> dict[str, Any]:
        """The document of a stdlib record: core fields, then every extra field.

        The hottest code on the sender threads: the timestamp is inlined,
        and only the keys after ``LogRecord.__init__``'s own are looked at."""
        created = attrs["created"]
        sec = int(created)
        cached = self._ts_cache
        if cached[0] != sec:
            cached = self._ts_cache = (sec, _second(sec))
        doc = {
            "timestamp": "%s.%06dZ" % (cached[1], (created - sec) * 1e6),  # noqa: UP031
            "level": attrs["levelname"],
            "logger": attrs["name"],
            "message": message,
        }
        if attrs.get("exc_text"):
            doc["exception"] = attrs["exc_text"]
        if attrs.get("stack_info"):
            doc["stack"] = attrs["stack_info"]
        # Walk back from the end to the last key __init__ set: what lies
        # beyond it are the extras (and formatter leftovers such as "message").
        extras = []
        seen = 0
        for key in reversed(attrs):
            if key == _INIT_LAST_KEY:
                if len(attrs) - seen - 1 != _INIT_LAST:  # keys set before __init__: look at all
                    extras = [k for k in reversed(attrs) if k not in RECORD_ATTRS]
                break
            seen += 1  # noqa: SIM113 - 10% cheaper than enumerate() here
            if key not in RECORD_ATTRS:
                extras.append(key)
        for key in reversed(extras):
            if key not in doc:
                doc[key] = attrs[key]
        return doc

    # -- bytes --

    def dumps(self, doc: Any) -> bytes:
        """JSON bytes for ``doc``: fast path first, the sanitising path on any failure."""
        try:
            text = self._dumps(doc)
        except (ValueError, TypeError, RecursionError):
            try:
                text = self._dumps(_clean(doc, 0, set()))
            except Exception as exc:  # noqa: BLE001 - last resort keeps the record
                text = self._dumps(
                    {"message": "<logdrain: record could not be encoded>", "error": safe_repr(exc)}
                )
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            return _fix_surrogates(text)

    def encode(self, item: Mapping[str, Any]) -> tuple[bytes, bool]:
        """One record's JSON bytes (shaped, wrapped) and whether it was truncated."""
        try:
            doc = self.shape(self.document(item))
        except Exception as exc:  # noqa: BLE001 - a malformed snapshot still ships
            doc = {"message": "<logdrain: malformed record>", "error": safe_repr(exc)}
        data = self.dumps(doc)
        if not self._wraps:
            if len(data) <= self._max_bytes:
                return data, False
            return self._truncate(_clean(doc, 0, set()), self._max_bytes), True
        overhead = len(self._wrap({}, b"{}")) - 2  # the envelope around the record
        truncated = False
        for _ in range(8):
            wrapped = self._wrap(doc, data)
            if len(wrapped) <= self._max_bytes:
                return wrapped, truncated
            # Wrapping can inflate the record (a JSON string escapes every quote).
            inflation = (len(wrapped) - overhead) / max(1, len(data))
            target = int((self._max_bytes - overhead) / inflation) - 16
            if truncated:
                target = min(target, len(data) - 16)
            data = self._truncate(_clean(doc, 0, set()), max(256, target))
            truncated = True
        return self._wrap({}, self._truncate({"message": ""}, 256)), True

    # -- payload shaping (picky collectors) --

    def shape(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Apply ``rename`` then the ``fields`` allow-list."""
        if self._rename:
            doc = {self._rename.get(k, k): v for k, v in doc.items()}
        if self._fields:
            doc = {k: v for k, v in doc.items() if k in self._fields}
        return doc

    def _wrap(self, doc: dict[str, Any], data: bytes) -> bytes:
        """Put the record into the envelope: as an object, or as a JSON string."""
        if self._record_key is None:
            return self.dumps({**doc, **self._envelope})
        inner: Any = data.decode("utf-8") if self._as_string else json.loads(data)
        return self.dumps({**self._envelope, self._record_key: inner})

    def _truncate(self, doc: dict[str, Any], limit: int) -> bytes:
        """Shorten the largest fields until the record fits ``limit`` bytes."""
        for _ in range(16):
            data = self.dumps(doc)
            excess = len(data) - limit
            if excess <= 0:
                return data
            sizes = {
                k: len(v) if isinstance(v, str) else len(self.dumps(v)) for k, v in doc.items()
            }
            key = max(sizes, key=sizes.__getitem__)
            value = doc[key] if isinstance(doc[key], str) else self.dumps(doc[key]).decode()
            # Bytes per character once JSON-escaped (1 for ASCII, 2 for "é", 2 for '"').
            ratio = max(1.0, len(self.dumps(value)) / max(1, len(value)))
            keep = int((len(value) * ratio - excess - 64 - len(TRUNCATION_MARK)) / ratio)
            keep = max(0, min(keep, len(value) // 2 if keep >= len(value) else keep))
            doc[key] = value[:keep] + TRUNCATION_MARK.format(len(value) - keep)
        return self.dumps(
            {
                "timestamp": doc.get("timestamp"),
                "level": doc.get("level"),
                "message": "<logdrain: record too large, not shipped>",
            }
        )

    def encode_batch(self, items: list[Any]) -> list[tuple[int, bytes]] | None:
        """Fast path for ``json`` bodies: (record count, body) pairs made
        without the per-record bookkeeping of :meth:`encode`. None sends the
        batch down the per-record path: another format or an envelope,
        anything the fast encoder refuses (NaN, cycles, odd keys, surrogates,
        huge ints), or a chunk above ``max_record_bytes`` (a record in it may
        need truncating)."""
        if self.format != "json" or self._wraps:
            return None
        limit = self._max_bytes
        fast = self._fast_dumps
        try:
            document = self.document
            stdlib_document = self._stdlib_document
            docs = [
                stdlib_document(item[1], item[2])
                if type(item) is tuple and item[0] == STDLIB
                else document(item)
                for item in items
            ]
            if self._rename or self._fields:
                docs = [self.shape(doc) for doc in docs]
            # One encoder call per chunk amortises its setup (about half the
            # cost of a call per record); a chunk within the limit proves each
            # of its records is, and fits any one body.
            parts: list[tuple[int, bytes]] = []
            for start in range(0, len(docs), _STDLIB_CHUNK):
                chunk = docs[start : start + _STDLIB_CHUNK]
                if fast is None:
                    data = self._dumps(chunk).encode("utf-8")
                else:
                    data = fast(chunk)
                    # orjson writes NaN as null: where a null appears, make
                    # sure it is not one (else the stdlib path says "NaN").
                    if b"null" in data and _needs_stdlib(chunk):
                        return None
                if len(data) > limit:
                    return None
                parts.append((len(chunk), data[1:-1]))
        except Exception:  # noqa: BLE001 - the per-record path handles every case
            return None
        bodies: list[tuple[int, bytes]] = []
        group: list[bytes] = []
        count, size = 0, 1  # size: the body's length so far, "[" and separators included
        for n, part in parts:
            if group and size + len(part) + 1 > self._batch_bytes:
                bodies.append((count, b"[" + b",".join(group) + b"]"))
                group, count, size = [], 0, 1
            group.append(part)
            count += n
            size += len(part) + 1
        bodies.append((count, b"[" + b",".join(group) + b"]"))
        return bodies

    # -- bodies --

    def body(self, parts: list[bytes]) -> bytes:
        """The request body for a batch of encoded records."""
        if self.format == "ndjson":
            return b"\n".join(parts) + b"\n"
        if self.format == "object":
            return parts[0]
        return b"[" + b",".join(parts) + b"]"

    def body_size(self, part_sizes: int, count: int) -> int:
        """Bytes a body of ``count`` parts totalling ``part_sizes`` will take."""
        return part_sizes + count + 1
