"""Turn queued snapshots into JSON documents and request bodies.

Runs on the sender threads, never on the caller's. The contract: every
record produces a body part. Values JSON cannot hold are converted; NaN,
cycles, unencodable keys, too-deep nesting and bad UTF-8 take a slower
sanitising path; an oversized record is shortened with a visible marker.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from .config import Settings
from .documents import RECORD_ATTRS, Documents
from .jsonsafe import (
    MAX_ARRAY_ITEMS,
    MAX_DEPTH,
    MAX_REPR,
    TRUNCATION_MARK,
    clean,
    copied_out,
    describe,
    fix_surrogates,
    last_resort,
    needs_stdlib,
    orjson_call,
    orjson_dumps,
    orjson_map,
    safe_repr,
    to_jsonable,
)
from .records import STDLIB
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


class Encoder(Documents):
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
        use_orjson = settings.json_encoder in ("auto", "orjson")
        fast = orjson_dumps() if use_orjson else None
        self.json_encoder = "orjson" if fast is not None else "stdlib"
        #: A record's JSON (copied out of orjson's buffer) and a chunk's (not).
        self._fast_dumps: Callable[[Any], bytes] | None = fast
        self._fast_chunk = orjson_dumps(held=False) if fast is not None else None
        self._fast_lines = orjson_map() if fast is not None else None
        self._rename = dict(settings.rename)
        self._fields = frozenset(settings.fields)
        self._envelope = dict(settings.envelope)
        self._record_key = settings.record_key
        self._as_string = settings.record_as_string
        self._wraps = bool(self._envelope) or self._record_key is not None
        self._init_documents(settings)
        #: JSON bytes of any value, never raising (what presets get as ``ctx.dumps``).
        self.checked: Callable[[Any], bytes] = self._checked_function()
        checked = self.checked
        #: The same as text (a Loki line; ``ctx.json``).
        self.text: Callable[[Any], str] = lambda obj: checked(obj).decode("utf-8")

    # -- bytes --

    # A null is looked for with find(), never ``b"null" in data``: bytes'
    # ``in`` first tries its argument as an int, raising and clearing a
    # TypeError each time (about 1,500 instructions a test on 3.11).

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
                if data.find(b"null") < 0 or not needs_stdlib(doc):
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
        """Fast path for JSON-array and NDJSON bodies (``preset.json_array``
        or ``lines=1``, no record mapping): (record count, part) pieces, each
        part a chunk of up to 100 records' JSON joined by commas (by
        newlines), made without the per-record
        bookkeeping of :meth:`encode`. None sends the batch down the
        per-record path: another format or an envelope, anything the fast
        encoder refuses (NaN, cycles, odd keys, surrogates, huge ints), or a
        chunk above ``max_record_bytes`` (a record in it may need truncating)."""
        preset = self._preset
        lines = preset.lines == 1
        if not (preset.json_array or lines) or self._wraps or preset.maps:
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
                if lines:  # and what is nested in them (a chunk's JSON is not walked)
                    for doc in others:
                        redactor.containers(doc)
            if self._rename or self._fields:
                docs = [self.shape(doc) for doc in docs]
        except Exception:  # noqa: BLE001 - the per-record path handles every case
            return None
        if lines:
            return self._line_chunks(docs)
        return self.chunks(docs, nested=bool(others) and redactor is not None)

    def _line_chunks(self, docs: list[Any]) -> list[tuple[int, bytes]] | None:
        """``docs`` as (count, newline-joined records) pieces, a chunk of up
        to 100 each, or None when one needs the per-record path (as :meth:`chunks`)."""
        limit = self._max_bytes
        fast = self._fast_lines
        dumps = self._dumps
        parts: list[tuple[int, bytes]] = []
        try:
            for start in range(0, len(docs), _STDLIB_CHUNK):
                chunk = docs[start : start + _STDLIB_CHUNK]
                if fast is None:
                    data = "\n".join(map(dumps, chunk)).encode("utf-8")
                else:
                    data = b"\n".join(fast(chunk))
                    if data.find(b"null") >= 0 and needs_stdlib(chunk):  # NaN written as null
                        return None
                if len(data) > limit:
                    return None
                parts.append((len(chunk), data))
        except Exception:  # noqa: BLE001 - the per-record path handles every case
            return None
        return parts

    def chunks(self, docs: list[Any], *, nested: bool = False) -> list[tuple[int, bytes]] | None:
        """``docs`` as JSON in chunks: (count, comma-joined records) pieces,
        or None when any chunk needs the per-record path. ``nested``: a chunk
        whose JSON holds an object or array inside a record (or a brace or
        bracket in a string: a false alarm, costing only time) has the values
        nested in its records masked and is written again."""
        limit = self._max_bytes
        fast = self._fast_chunk
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
                    if data.find(b"null") >= 0 and needs_stdlib(chunk):
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
        call = orjson_call() if self._fast_dumps is not None else None
        dumps = self.dumps
        if call is None:
            return dumps
        fast, option = call  # orjson's own call, inline; the held copy made here

        def checked(obj: Any) -> bytes:
            try:
                data = fast(obj, default=to_jsonable, option=option)
            except Exception:  # noqa: BLE001 - dumps() decides
                return dumps(obj)
            if data.find(b"null") >= 0 and needs_stdlib(obj):
                return dumps(obj)
            return copied_out((data, b""))  # out of orjson's buffer: the caller may hold it

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
