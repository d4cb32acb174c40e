"""Turn queued snapshots into JSON documents and request bodies.

Runs on the sender threads, never on the caller's. The contract: every
record produces a body part. Values JSON cannot hold are converted; NaN,
cycles, unencodable keys, too-deep nesting and bad UTF-8 take a slower
sanitising path; an oversized record is shortened with a visible marker.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from .config import Settings
from .context import include_names
from .jsonsafe import (
    MAX_ARRAY_ITEMS,
    MAX_DEPTH,
    MAX_REPR,
    TRUNCATION_MARK,
    clean,
    describe,
    fix_surrogates,
    last_resort,
    needs_stdlib,
    orjson_dumps,
    safe_repr,
    to_jsonable,
)
from .records import STDLIB, StdlibSnapshot
from .redact import PLAIN as _PLAIN
from .redact import Redactor
from .truncate import CORE_FIELDS, NOTE_KEY, shorten

__all__ = [  # the names other modules and tests import from here
    "MAX_ARRAY_ITEMS",
    "MAX_DEPTH",
    "MAX_REPR",
    "RECORD_ATTRS",
    "TRUNCATION_MARK",
    "Encoder",
    "orjson_dumps",
    "safe_repr",
    "to_jsonable",
]

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


def _second(sec: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))


class Encoder:
    """Record snapshots -> JSON bytes -> request bodies, per the settings."""

    def __init__(self, settings: Settings) -> None:
        self._max_bytes = settings.max_record_bytes
        self._batch_bytes = settings.batch_bytes
        self._preset = settings.preset
        self.content_type: str = settings.preset.content_type
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
        #: ``redact_keys``: masks sensitive values (None: none listed).
        redactor = Redactor(settings.redact_keys)
        self._redactor: Redactor | None = redactor if redactor.names else None
        self._clean_keys = None if self._redactor is None else self._redactor.clean
        self._mask_extras = redactor.extras
        #: (LogRecord attribute, document key) the ``include`` setting adds.
        self.included = include_names(settings.naming, tuple(dict.fromkeys(settings.include)))
        #: A stdlib snapshot's document (what ``Mapper`` and the fast path call):
        #: the plain builder itself unless something is included, so the usual
        #: case pays nothing per record for the feature.
        self._stdlib_document: Callable[[dict[str, Any], str], dict[str, Any]] = (
            self._with_included(self.included) if self.included else self._base_document
        )
        #: JSON bytes of any value, never raising (what presets get as ``ctx.dumps``).
        self.checked: Callable[[Any], bytes] = self._checked_function()
        checked = self.checked
        #: The same as text (a Loki line; ``ctx.json``).
        self.text: Callable[[Any], str] = lambda obj: checked(obj).decode("utf-8")

    # -- documents --

    def timestamp(self, created: float) -> str:
        """RFC 3339, UTC, microseconds; the date part is cached per second."""
        try:
            sec = int(created)
        except (TypeError, ValueError, OverflowError):  # not a time: now
            created = time.time()
            sec = int(created)
        cached = self._ts_cache  # one tuple, swapped whole: safe if two threads encode
        if cached[0] != sec:
            cached = self._ts_cache = (sec, _second(sec))
        return "%s.%06dZ" % (cached[1], (created - sec) * 1e6)  # noqa: UP031 - 2x faster than :06d

    def document(self, item: Any) -> dict[str, Any]:
        """The JSON object for one queued item, sensitive values masked."""
        return self._document(item, masked=True)

    def _document(self, item: Any, *, masked: bool) -> dict[str, Any]:
        """The JSON object for one queued item; ``masked=False`` leaves the
        masking of a structlog event's or a mapping's keys to the caller (the
        fast path does it for a whole batch; a stdlib record's extras are
        masked as its document is built)."""
        kind = type(item)
        if kind is tuple:  # the front ends' cheap items (records.STDLIB / records.EVENT)
            tag, data, extra = item
            if tag == STDLIB:
                return self._stdlib_document(data, extra)
            doc = dict(data)
            if "timestamp" not in doc:
                doc["timestamp"] = self.timestamp(extra)
            return self._masked(doc) if masked else doc
        if kind is not StdlibSnapshot:
            return self._masked(dict(item)) if masked else dict(item)
        doc = self._stdlib_document(item, item.get("message"))
        msg = item.get("msg")
        if isinstance(msg, dict):  # structlog's stdlib integration: the event dict
            event = dict(msg)
            doc["message"] = event.pop("event", doc["message"])
            for key, value in event.items():
                if key not in _CORE_FIELDS:
                    doc[key] = value
            return self._masked(doc) if masked else doc
        return doc

    def _masked(self, doc: dict[str, Any]) -> dict[str, Any]:
        """``doc`` (a structlog event or submitted mapping: every key the
        caller's) with sensitive values masked (``redact_keys``)."""
        redactor = self._redactor
        return doc if redactor is None else redactor.document(doc)

    def _with_included(
        self, included: tuple[tuple[str, str], ...]
    ) -> Callable[[dict[str, Any], str], dict[str, Any]]:
        """The document builder that adds the included record attributes after
        the extra fields (an extra or a context value of the same name wins;
        an attribute the record lacks or holds as None is left out)."""
        base = self._base_document

        def document(attrs: dict[str, Any], message: str) -> dict[str, Any]:
            doc = base(attrs, message)
            for attr, key in included:
                if key not in doc:
                    value = attrs.get(attr)
                    if value is not None:
                        doc[key] = value
            return doc

        return document

    def _base_document(self, attrs: dict[str, Any], message: str) -> dict[str, Any]:
        """The document of a stdlib record: core fields, then every extra field.

        The hottest code on the sender threads: the timestamp is inlined,
        and only the keys after ``LogRecord.__init__``'s own are looked at."""
        created = attrs["created"]
        try:
            sec = int(created)
        except (TypeError, ValueError, OverflowError):  # a filter set it to NaN, None, ...
            created = time.time()
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
        if extras:
            extras.reverse()
            # redact_keys: of the document, only the extras hold keys of the caller's
            # choosing; their usual case (known, clean keys, plain values) is
            # checked inline, a call only for the rest.
            clean = self._clean_keys
            odd = False
            for key in extras:
                if key not in doc:
                    value = doc[key] = attrs[key]
                    if clean is not None and (key not in clean or type(value) not in _PLAIN):
                        odd = True
            if odd:
                self._mask_extras(doc, extras)
        return doc

    # -- bytes --

    def dumps(self, doc: Any) -> bytes:
        """JSON bytes for ``doc``: fast path first, the sanitising path on any
        failure. Never raises: a value that raises while it is read is
        replaced by a placeholder, alone. With orjson, it writes first (4-8x
        faster per record); the stdlib path takes over where orjson refuses
        a value or would write it differently (NaN as null)."""
        fast = self._fast_dumps
        if fast is not None:
            try:
                data = fast(doc)
            except KeyboardInterrupt:
                raise
            except BaseException:  # noqa: BLE001, S110 - the stdlib path below decides
                pass
            else:
                if b"null" not in data or not needs_stdlib(doc):
                    return data
        try:
            text = self._dumps(doc)
        except KeyboardInterrupt:
            raise
        except BaseException:  # noqa: BLE001 - whatever a value raises: the slow path
            try:
                text = self._dumps(clean(doc))
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - last resort keeps the core fields
                text = self._dumps(last_resort(doc, exc))
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            return fix_surrogates(text)

    def _shaped(self, item: Any) -> dict[str, Any]:
        """The document of ``item`` after ``rename`` and ``fields``; a
        snapshot that cannot be read becomes a placeholder record."""
        try:
            doc = self.shape(self.document(item))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - a malformed snapshot still ships
            doc = {"message": "<logdrain: malformed record>", "error": describe(exc)}
        return doc

    def encode(self, item: Mapping[str, Any]) -> tuple[bytes, bool]:
        """One record's JSON bytes (shaped, wrapped, at most ``max_record_bytes``
        when it can be) and whether it was shortened. Never raises."""
        doc = self._shaped(item)
        data = self.dumps(doc)
        if not self._wraps:
            if len(data) <= self._max_bytes:
                return data, False
            return self.dumps(self._shorten(clean(doc), self._max_bytes, len(data))), True
        wrapped = self._wrap(doc, data)
        if len(wrapped) <= self._max_bytes:
            return wrapped, False
        return self._wrap_shortened(clean(doc), len(data)), True

    # -- shortening (max_record_bytes) --

    def _shorten(self, doc: dict[str, Any], limit: int, original: int) -> dict[str, Any]:
        """``doc`` (clean) shortened to ``limit`` bytes; see :mod:`.truncate`."""
        # The note field is left out when a ``fields`` allow-list would not ship it.
        with_note = not self._fields or NOTE_KEY in self._fields
        return shorten(doc, limit, self.dumps, original=original, with_note=with_note)

    def _wrap_shortened(self, doc: dict[str, Any], original: int) -> bytes:
        """The wrapped record within ``max_record_bytes``: shorten the record
        to what the envelope leaves (wrapping may inflate it: a JSON string
        escapes every quote), measure, and shorten further by the excess."""
        limit = self._max_bytes
        overhead = len(self._wrap({}, b"{}")) - 2
        target = limit - overhead
        for _ in range(8):
            if target < 64:
                break
            short = self._shorten(doc, target, original)
            data = self.dumps(short)
            wrapped = self._wrap(short, data)
            if len(wrapped) <= limit:
                return wrapped
            inflation = max(1.0, (len(wrapped) - overhead) / max(1, len(data)))
            target = min(target - 16, int((limit - overhead) / inflation) - 16)
        core = {k: doc[k] for k in CORE_FIELDS[:4] if k in doc}
        short = self._shorten(core, 256, original)
        return self._wrap(short, self.dumps(short))

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

    def _wrap_obj(self, doc: dict[str, Any], data: bytes) -> dict[str, Any]:
        """The envelope as an object (``data``: the record's JSON, for
        ``record_as_string``)."""
        if self._record_key is None:
            return {**doc, **self._envelope}
        inner: Any = data.decode("utf-8") if self._as_string else doc
        return {**self._envelope, self._record_key: inner}

    def encode_batch(self, items: list[Any]) -> list[tuple[int, bytes]] | None:
        """Fast path for JSON-array bodies (``preset.json_array``, no record
        mapping): (record count, part) pieces, each part a chunk of up to
        100 records' JSON joined by commas, made without the per-record
        bookkeeping of :meth:`encode`. None sends the batch down the
        per-record path: another format or an envelope, anything the fast
        encoder refuses (NaN, cycles, odd keys, surrogates, huge ints), or a
        chunk above ``max_record_bytes`` (a record in it may need truncating)."""
        if not self._preset.json_array or self._wraps or self._preset.maps:
            return None
        redactor = self._redactor
        others: list[dict[str, Any]] = []  # the documents of events and mappings
        document = self._document

        def other(item: Any) -> dict[str, Any]:
            doc = document(item, masked=False)
            others.append(doc)
            return doc

        try:
            stdlib_document = self._stdlib_document
            docs = [
                stdlib_document(item[1], item[2])
                if type(item) is tuple and item[0] == STDLIB
                else other(item)
                for item in items
            ]
            if others and redactor is not None:  # their keys, in one pass
                redactor.keys_of(others)
            if self._rename or self._fields:
                docs = [self.shape(doc) for doc in docs]
        except Exception:  # noqa: BLE001 - the per-record path handles every case
            return None
        return self.chunks(docs, nested=bool(others) and redactor is not None)

    def chunks(self, docs: list[Any], *, nested: bool = False) -> list[tuple[int, bytes]] | None:
        """``docs`` as JSON in chunks: (count, comma-joined records) pieces,
        or None when any chunk needs the per-record path. ``nested``: a chunk
        whose JSON holds an object or array inside a record (or a brace or
        bracket in a string: a false alarm, costing only time) has the values
        nested in its records masked and is written again."""
        limit = self._max_bytes
        fast = self._fast_dumps
        # One encoder call per chunk amortises its setup (about half the
        # cost of a call per record); a chunk within the limit proves each
        # of its records is, and fits any one body.
        parts: list[tuple[int, bytes]] = []
        try:
            for start in range(0, len(docs), _STDLIB_CHUNK):
                chunk = docs[start : start + _STDLIB_CHUNK]
                if fast is None:
                    data = self._dumps(chunk).encode("utf-8")
                else:
                    data = fast(chunk)
                    # orjson writes NaN as null: where a null appears, make
                    # sure it is not one (else the stdlib path says "NaN").
                    if b"null" in data and needs_stdlib(chunk):
                        return None
                if nested and (data.count(b"{") != len(chunk) or data.count(b"[") != 1):
                    redactor = self._redactor
                    if redactor is not None:
                        chunk = [redactor.containers(doc) for doc in chunk]
                        data = self._dumps(chunk).encode("utf-8") if fast is None else fast(chunk)
                if len(data) > limit:
                    return None
                parts.append((len(chunk), data[1:-1]))
        except Exception:  # noqa: BLE001 - the per-record path handles every case
            return None
        return parts

    def wrapped(self, item: Any) -> Any:
        """The shaped, enveloped generic document of ``item`` as an object
        (what a preset's record mapping receives). Never raises."""
        doc = self._shaped(item)
        if not self._wraps:
            return doc
        return self._wrap_obj(doc, self.dumps(doc) if self._as_string else b"")

    def _checked_function(self) -> Callable[[Any], bytes]:
        """:attr:`checked`: :meth:`dumps` with orjson's common case first
        and inline; a closure, as presets call it once a record."""
        fast = self._fast_dumps
        dumps = self.dumps
        if fast is None:
            return dumps

        def checked(obj: Any) -> bytes:
            try:
                data = fast(obj)
            except Exception:  # noqa: BLE001 - dumps() decides
                return dumps(obj)
            if b"null" in data and needs_stdlib(obj):
                return dumps(obj)
            return data

        return checked

    @property
    def plain(self) -> bool:
        """True when documents go out as built: no rename, fields or envelope."""
        return not (self._rename or self._fields or self._wraps)

    # -- bodies --

    def body(self, parts: list[Any]) -> bytes:
        """The request body for a batch of encoded parts (the preset's framing)."""
        body: bytes = self._preset.frame(parts)
        return body

    def body_size(self, part_sizes: int, count: int) -> int:
        """Bytes a body of ``count`` parts totalling ``part_sizes`` will take."""
        size: int = self._preset.framed_size(part_sizes, count)
        return size
