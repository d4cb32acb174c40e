"""A preset's record mapping, applied on the sender threads.

The generic document (shaped: ``rename``, ``fields``, ``envelope``) goes
through the preset's ``record`` function and becomes one body part: JSON
bytes, or ``(key, JSON bytes)`` for a :class:`~logdrain.presets.Keyed`
record. A part stays within ``max_record_bytes`` when it can: the generic
document is shortened (with the ``logdrain_truncated`` note) until the
mapped record fits. A mapping that raises gets the record's core fields
instead; a record the preset calls :class:`~logdrain.presets.Unsendable`
is handed back to be counted ``rejected``.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain, groupby, repeat
from operator import add, contains, itemgetter
from typing import Any

from .config import Settings
from .encode import Encoder
from .itemfacts import item_facts
from .jsonsafe import clean, describe, needs_stdlib, orjson_lists, orjson_map
from .presets import Context, Keyed, Unsendable
from .presets.base import RFC3339_LAST_SECOND, BatchMapping
from .records import STDLIB
from .truncate import CORE_FIELDS

#: A piece of a batch: (records in it, the part frame() receives, its size in bytes).
Piece = tuple[int, Any, int]


class Mapper:
    """Queued items -> the preset's parts, for presets with a ``record``."""

    def __init__(self, settings: Settings, encoder: Encoder) -> None:
        self._enc = encoder
        self._preset = settings.preset
        # The included attributes' document keys, as the preset receives them (renamed).
        rename = settings.rename
        included = tuple(rename.get(key, key) for _, key in encoder.included)
        self._record: Callable[[Any, Context], Any] = settings.preset.record_for(
            settings.options, included
        )
        self._options = settings.options
        self._limit = settings.max_record_bytes
        self._encode_all = orjson_map() if encoder._fast_dumps is not None else None
        # A plain stdlib record mapped from its attributes (no generic document),
        # where the preset can and nothing reshapes documents.
        bind_stdlib = settings.preset.bind_stdlib
        base = Context(settings.options, json=encoder.text, dumps=encoder.checked)
        self._stdlib: Callable[[dict[str, Any], str, list[str], str], Any] | None = (
            bind_stdlib(settings.options, base)
            if bind_stdlib is not None and encoder.plain and not encoder.included
            else None
        )
        # A run of plain stdlib records mapped at once, where the preset can.
        bind_batch = settings.preset.bind_batch
        encode_list = orjson_lists() if encoder._fast_dumps is not None else None
        self._batch: BatchMapping | None = (
            bind_batch(settings.options, base, encode_list)
            if bind_batch is not None
            and encode_list is not None
            and encoder.plain
            and not encoder.included
            else None
        )

    def _context(self, item: Any, record_id: str) -> Context:
        created, levelno = item_facts(item)
        enc = self._enc
        return Context(self._options, record_id, created, levelno, enc.text, enc.checked)

    def _dump(self, mapped: Any) -> tuple[Any, int]:
        """A mapped record's part and size (bytes: encoded by the preset)."""
        if type(mapped) is Keyed:
            value = mapped.value
            data = value if type(value) is bytes else self._enc.dumps(value)
            return (mapped.key, data), len(mapped.key) + len(data)
        data = mapped if type(mapped) is bytes else self._enc.dumps(mapped)
        return data, len(data)

    def _map(self, doc: Any, ctx: Context) -> tuple[Any, int]:
        """The mapped part of ``doc``; a failing mapping gets the core fields,
        and a preset that fails on those too makes the record unsendable."""
        try:
            return self._dump(self._record(doc, ctx))
        except Unsendable:
            raise
        except Exception as exc:  # noqa: BLE001 - a preset's bug must not lose the record
            cleaned = clean(doc) if isinstance(doc, dict) else {}
            core = {k: v for k, v in cleaned.items() if k in CORE_FIELDS}
            core["logdrain_error"] = f"preset {self._preset.name!r} record mapping: {describe(exc)}"
            try:
                return self._dump(self._record(core, ctx))
            except Exception:  # noqa: BLE001
                raise Unsendable(core["logdrain_error"]) from None

    def _mapped(self, items: list[Any], prefix: str, first: int = 0) -> list[Any]:
        """Each item's mapped record, in one tight loop (raises what the
        mapping raises); ``first``: the batch position of ``items[0]``."""
        batch = self._batch
        if batch is not None:
            found = self._batch_mapped(batch, items, prefix, first)
            if found is not None:
                return found
        enc = self._enc
        record = self._record
        options = self._options
        text = enc.text
        checked = enc.checked
        wrapped = enc.wrapped
        # A stdlib record's document, built directly when nothing reshapes it.
        direct = enc._stdlib_document if enc.plain else None
        new = tuple.__new__  # a Context without NamedTuple's Python-level __new__
        # The record ids: the prefix and the record's position in the batch.
        ids = (
            map(prefix.__add__, map(str, range(first, first + len(items))))
            if prefix
            else repeat("")
        )
        out: list[Any] = []
        append = out.append
        stdlib = self._stdlib
        plain_extras = enc.plain_extras
        for item, rid in zip(items, ids, strict=False):
            stamp = ""
            if type(item) is tuple and item[0] == STDLIB:
                attrs = item[1]
                if stdlib is not None:
                    extras = plain_extras(attrs)
                    mapped = None if extras is None else stdlib(attrs, item[2], extras, rid)
                    if mapped is not None:
                        append(mapped)
                        continue
                raw = attrs["created"]
                created, levelno = float(raw), attrs.get("levelno")
                if direct is not None:
                    doc = direct(attrs, item[2])
                    # Its "timestamp" is rfc3339(created) where both write the same.
                    if type(raw) is float and 0.0 <= raw < RFC3339_LAST_SECOND:
                        stamp = doc["timestamp"]
                else:
                    doc = wrapped(item)
            else:
                created, levelno = item_facts(item)
                doc = wrapped(item)
            append(
                record(doc, new(Context, (options, rid, created, levelno, text, checked, stamp)))
            )
        return out

    def _batch_mapped(
        self, batch: BatchMapping, items: list[Any], prefix: str, first: int
    ) -> list[Any] | None:
        """The preset's ``bind_batch`` mapping of ``items`` when every one is
        a stdlib record with a time rfc3339() writes, else None."""
        try:
            if set(map(_tag, items)) != {STDLIB}:
                return None
            attrs = list(map(_attrs, items))
            created = list(map(_created, attrs))
        except (KeyError, IndexError, TypeError):  # another kind of item
            return None
        if set(map(type, created)) != {float}:
            return None
        if not (min(created) >= 0.0 and max(created) < RFC3339_LAST_SECOND):
            return None
        docs = list(map(self._enc._stdlib_document, attrs, map(_message, items)))
        levelnos = list(map(dict.get, attrs, repeat("levelno")))
        ids = (
            list(map(prefix.__add__, map(str, range(first, first + len(items)))))
            if prefix
            else None
        )
        return batch(docs, created, levelnos, ids)

    def parts(self, items: list[Any], prefix: str = "") -> list[Piece] | None:
        """The usual case of a whole batch: every record maps, fits
        ``max_record_bytes`` and needs no shortening. None (a record that
        raises, is unsendable or too large) sends the batch to :meth:`part`,
        one record at a time. Mapped and encoded a slice at a time (see
        :meth:`chunks`)."""
        out: list[Piece] = []
        try:
            for start in range(0, len(items), _SLICE):
                found = self._slice_parts(
                    self._mapped(items[start : start + _SLICE], prefix, start)
                )
                if found is None:
                    return None
                out += found
        except Exception:  # noqa: BLE001 - the per-record path handles every case
            return None
        return out

    def _slice_parts(self, records: list[Any]) -> list[Piece] | None:
        kinds = set(map(type, records))
        keyed = kinds == {Keyed}
        if not keyed and Keyed in kinds:
            return self._mixed_parts(records)
        keys = list(map(_key, records)) if keyed else None
        values = list(map(_value, records)) if keyed else records
        datas = self._encoded(values)
        sizes = list(map(len, datas))
        if keys is not None:
            sizes = list(map(add, map(len, keys), sizes))
        if max(sizes, default=0) > self._limit:
            return None
        parts = datas if keys is None else zip(keys, datas, strict=True)
        return list(zip(repeat(1), parts, sizes, strict=False))  # repeat(1) never ends

    def _encoded(self, values: list[Any]) -> list[bytes]:
        """Each value's JSON, in C-level loops where orjson writes them: bytes
        (encoded by the preset) as they are, and a value whose JSON holds a
        null checked (a NaN is written as null there) through ``dumps``."""
        kinds = set(map(type, values))
        if kinds == {bytes}:
            return values
        encode_all = self._encode_all
        if encode_all is None or bytes in kinds:
            dumps = self._enc.dumps
            return [v if type(v) is bytes else dumps(v) for v in values]
        datas = encode_all(values)
        if max(map(bytes.find, datas, repeat(b"null")), default=-1) >= 0:  # find(), not in
            dumps = self._enc.dumps
            datas = [
                dumps(v) if d.find(b"null") >= 0 and needs_stdlib(v) else d
                for v, d in zip(values, datas, strict=True)
            ]
        return datas

    def _mixed_parts(self, records: list[Any]) -> list[Piece] | None:
        """:meth:`parts` for a batch mixing Keyed and plain records."""
        out: list[Piece] = []
        for mapped in records:
            part, size = self._dump(mapped)
            if size > self._limit:
                return None
            out.append((1, part, size))
        return out

    def part(self, item: Any, record_id: str = "") -> tuple[Any, int, bool]:
        """(part, size, shortened) for one item. Raises Unsendable."""
        doc = self._enc.wrapped(item)
        ctx = self._context(item, record_id)
        part, size = self._map(doc, ctx)
        if size <= self._limit or not isinstance(doc, dict):
            return part, size, False
        return (*self._shortened(clean(doc), ctx, size), True)

    def _shortened(self, doc: dict[str, Any], ctx: Context, size: int) -> tuple[Any, int]:
        """Shorten the generic document until its mapped part fits."""
        limit = self._limit
        original = len(self._enc.dumps(doc))
        overhead = max(0, size - original)
        target = limit - min(overhead, limit // 2)  # the loop narrows it down
        for _ in range(8):
            if target < 64:
                break
            short = self._enc._shorten(doc, target, original)
            part, size = self._map(short, ctx)
            if size <= limit:
                return part, size
            target -= size - limit + 16
        core = {k: doc[k] for k in CORE_FIELDS[:4] if k in doc}
        return self._map(self._enc._shorten(core, 256, original), ctx)

    def chunks(self, items: list[Any], prefix: str = "") -> list[Piece] | None:
        """The fast path of presets whose parts hold runs of records: map
        every record, encode in chunks of up to 100. A ``json_array``
        preset's plain records become comma-joined chunks; a ``keyed_array``
        preset's Keyed records, grouped by runs of one key, ``(key,
        comma-joined values)`` chunks (neither with record ids); a ``lines``
        preset's records, their lines joined by newlines (``prefix``: the
        batch's record id prefix). None leaves the batch to :meth:`parts` (a
        record that raises, is unsendable or too large)."""
        preset = self._preset
        chunked: Callable[[list[Any]], list[Piece] | None]
        if preset.lines:
            chunked = self._line_chunks
        elif preset.uses_record_id or not (preset.json_array or preset.keyed_array):
            return None
        else:
            chunked = self._keyed_chunks if preset.keyed_array else self._array_chunks
        # A slice at a time, mapped then encoded: its records' containers are
        # freed before the next slice is mapped. A whole batch's (OTLP: four
        # GC-tracked containers a record) outlived a few young collections,
        # each of which walked them (callgrind: 17% of OTLP's sender work).
        out: list[Piece] = []
        for start in range(0, len(items), _SLICE):
            try:
                found = chunked(self._mapped(items[start : start + _SLICE], prefix, start))
            except Exception:  # noqa: BLE001 - Unsendable or a bug: the per-record path
                return None
            if found is None:
                return None
            out += found
        return out

    def _line_chunks(self, records: list[Any]) -> list[Piece] | None:
        """A ``lines`` preset's records (one slice: up to 100) as one chunk:
        their lines (one a record, or a Keyed record's key and value) joined
        by newlines. A chunk above ``max_record_bytes`` (it might not fit a
        body) stays a piece a record."""
        two = self._preset.lines == 2
        keys: list[bytes] = []
        if two:
            if set(map(type, records)) != {Keyed}:
                return None
            keys = list(map(_key, records))
            datas = self._encoded(list(map(_value, records)))
        else:
            if Keyed in set(map(type, records)):
                return None
            datas = self._encoded(records)
        if not datas:
            return []
        # A newline in a part (a custom preset's own bytes) would not cut back
        # into its records: left to the per-record path. (``10 in part``: one
        # memchr; count() walks every byte, and ``b"\n" in`` fails an int
        # conversion first, raising and clearing a TypeError each time.)
        newline = repeat(10)
        if any(map(contains, datas, newline)) or any(map(contains, keys, newline)):
            return None
        chunk = b"\n".join(chain.from_iterable(zip(keys, datas, strict=True)) if two else datas)
        limit = self._limit
        if len(chunk) <= limit:  # and so is each record in it
            return [(len(datas), chunk, len(chunk))]
        sizes = list(map(add, map(len, keys), map(len, datas))) if two else list(map(len, datas))
        if max(sizes) > limit:  # a record to shorten: one at a time
            return None
        parts = zip(keys, datas, strict=True) if two else datas
        return list(zip(repeat(1), parts, sizes, strict=False))

    def _array_chunks(self, docs: list[Any]) -> list[Piece] | None:
        """A ``json_array`` preset's plain records as comma-joined chunks."""
        if any(type(doc) is Keyed or type(doc) is bytes for doc in docs):
            return None
        found = self._enc.chunks(docs)
        return None if found is None else [(n, part, len(part)) for n, part in found]

    def _keyed_chunks(self, records: list[Any]) -> list[Piece] | None:
        """Keyed records as ``(count, (key, chunk), size)`` pieces: each run of
        consecutive records with one key (an OTLP scope, a Loki stream) in
        chunks, their values encoded in one call per chunk (values the preset
        encoded itself are joined). The preset's ``frame`` groups by key."""
        if set(map(type, records)) != {Keyed}:
            return None
        kinds = set(map(type, map(_value, records)))
        if len(kinds) != 1:  # mixed: left to the per-record path
            return None
        encoded = kinds == {bytes}
        limit = self._limit
        out: list[Piece] = []
        append = out.append
        for key, run in groupby(records, _key):
            values = list(map(_value, run))
            found: list[tuple[int, bytes]] | None = (
                [
                    (len(values[i : i + _CHUNK]), b",".join(values[i : i + _CHUNK]))
                    for i in range(0, len(values), _CHUNK)
                ]
                if encoded
                else self._enc.chunks(values)
            )
            if found is None:
                return None
            for count, data in found:
                size = len(key) + len(data)
                if size > limit:  # a record may need shortening: one at a time
                    return None
                append((count, (key, data), size))
        return out


_CHUNK = 100  # records per chunk (the encoder's own chunk size)
#: Records mapped at a time by :meth:`Mapper.chunks`: a few chunks, fewer
#: GC-tracked containers than a young collection's threshold (700).
_SLICE = _CHUNK
_key = itemgetter(0)  # a Keyed record's key
_value = itemgetter(1)  # ... and its value
_tag = itemgetter(0)  # a queued tuple's tag
_attrs = itemgetter(1)  # a stdlib item's attribute snapshot
_message = itemgetter(2)  # ... and its message
_created = itemgetter("created")
