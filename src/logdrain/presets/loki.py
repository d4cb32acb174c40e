"""Grafana Loki: ``POST /loki/api/v1/push`` with JSON streams.

One record becomes one Loki entry ``["<unix ns>", "<line>"]`` (plus a third
element, the entry's structured metadata, when ``metadata_keys`` finds any),
keyed by its stream's label set; :func:`frame` groups the entries of a batch
into ``{"streams": [{"stream": {...}, "values": [...]}, ...]}``, one stream
per label set in first-seen order. The line is the whole record document as
JSON text.

Labels come only from the static ``labels`` option and the record keys named
in ``label_keys`` (``["level"]`` unless told otherwise): never from arbitrary
extras, since every distinct label set is a stream of its own (Loki's
cardinality). Names must be Prometheus label names; record-derived values are
strings bounded to Loki's ``max_label_value_length`` (2048 bytes).

Sources: the push API
(https://grafana.com/docs/loki/latest/reference/loki-http-api/#ingest-logs),
labels (https://grafana.com/docs/loki/latest/get-started/labels/ and the
Prometheus data model, https://prometheus.io/docs/concepts/data_model/),
structured metadata
(https://grafana.com/docs/loki/latest/get-started/labels/structured-metadata/),
multi-tenancy (https://grafana.com/docs/loki/latest/operations/multi-tenancy/,
dskit ``tenant.ValidTenantID``), limits and texts (grafana/loki
``pkg/validation/limits.go``, ``pkg/validation/validate.go``,
``pkg/ingester/stream.go``, ``pkg/ingester/instance.go``,
``pkg/distributor/distributor.go``) and promtail's 1 MiB batch (grafana/loki
PR 2710).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from itertools import repeat
from operator import itemgetter, mul
from typing import Any

from .base import (
    DELIVERED,
    Answer,
    BatchMapping,
    Context,
    Keyed,
    ListEncoder,
    Preset,
    Verdict,
    status_verdict,
)
from .loki_options import (
    MAX_LABEL_NAMES,
    MAX_LABEL_VALUE_BYTES,
    MAX_METADATA_BYTES,
    OPTIONS,
    utf8,
)

PUSH_PATH = "/loki/api/v1/push"
#: Loki's max_line_size (256 KB, datasize: KiB) and promtail's batch size.
MAX_LINE_SIZE = 256 * 1024
BATCH_BYTES = 1024 * 1024
#: Loki refuses samples older than reject_old_samples_max_age (default 1 week);
#: logdrain stops sending one 10 minutes earlier (retries, clock skew).
MAX_AGE = 7 * 86400 - 600
DEFAULT_LABEL_KEYS: tuple[str, ...] = ("level",)
#: The label set of a record that has none (Loki refuses a stream without
#: labels): Loki 3's own name for a service it cannot tell.
FALLBACK_LABELS = {"service_name": "unknown_service"}

_IGNORED = re.compile(rb"total ignored: (\d+) out of (\d+)")
_MAX_SECONDS = (2**63 - 1) // 1_000_000_000  # int64 nanoseconds


def headers(options: Mapping[str, Any]) -> dict[str, str]:
    tenant = options.get("tenant")
    return {"X-Scope-OrgID": tenant} if tenant else {}


# -------------------------------------------------------------------- records


def _bounded(text: str, limit: int) -> str:
    """``text`` as valid UTF-8 of at most ``limit`` bytes (cut on a character)."""
    data = utf8(text)
    if len(data) > limit:
        data = data[: max(0, limit)]
    return data.decode("utf-8", "ignore")


def _text(value: Any, ctx: Context) -> str:
    return value if isinstance(value, str) else ctx.json(value)


def _level(doc: Mapping[str, Any], ctx: Context) -> Any:
    value = doc.get("level")
    if value is None or value == "":
        return "unknown" if ctx.levelno is None else logging.getLevelName(ctx.levelno)
    return value


def stream_labels(doc: Mapping[str, Any], ctx: Context) -> dict[str, str]:
    """The label set of one record: the static labels, then the allowed
    record keys (a static label wins; the level falls back to the record's
    own), at most :data:`MAX_LABEL_NAMES`."""
    labels = dict(ctx.options.get("labels") or {})
    for key in ctx.options.get("label_keys", DEFAULT_LABEL_KEYS):
        if len(labels) >= MAX_LABEL_NAMES:
            break
        if key in labels:
            continue
        value = _level(doc, ctx) if key == "level" else doc.get(key)
        if value is None:
            continue
        text = _bounded(_text(value, ctx), MAX_LABEL_VALUE_BYTES)
        if text:
            labels[key] = text
    return labels or dict(FALLBACK_LABELS)


def metadata(doc: Mapping[str, Any], ctx: Context) -> dict[str, str]:
    """Structured metadata of one record, within Loki's size limit."""
    out: dict[str, str] = {}
    budget = MAX_METADATA_BYTES
    for key in ctx.options.get("metadata_keys", ()):
        value = doc.get(key)
        if value is None:
            continue
        text = _bounded(_text(value, ctx), budget - len(key))
        if text:
            out[key] = text
            budget -= len(key) + len(utf8(text))
    return out


def nanoseconds(created: float) -> int:
    """Epoch seconds -> Loki's nanoseconds (now for a time Loki cannot hold).
    The float's own resolution near today's epoch is about 240 ns, so the
    product loses nothing the record had."""
    if not math.isfinite(created) or abs(created) >= _MAX_SECONDS:
        created = time.time()
    return int(created * 1e9)


def record(doc: dict[str, Any], ctx: Context) -> Keyed:
    """One Loki entry, keyed by the canonical JSON of its label set."""
    return bind(ctx.options)(doc, ctx)


def bind(options: Mapping[str, Any]) -> Callable[[dict[str, Any], Context], Keyed]:
    """:func:`record` for one Drain's options. A record's label-set key is
    remembered by the values it is made of (its label keys' values, when
    they are plain strings or missing, as they nearly always are, and its
    level number): a batch works out its few label sets once each."""
    keys = tuple(options.get("label_keys", DEFAULT_LABEL_KEYS))
    only = keys[0] if len(keys) == 1 else None
    with_metadata = bool(options.get("metadata_keys"))
    memo: dict[tuple[Any, ...], bytes] = {}

    def mapped(doc: dict[str, Any], ctx: Context) -> Keyed:
        fields: Mapping[str, Any] = doc if type(doc) is dict or isinstance(doc, Mapping) else {}
        if only is not None:
            value = fields.get(only)
            values: tuple[Any, ...] = (value, ctx.levelno)
            plain = value is None or type(value) is str
        else:
            values = (*[fields.get(k) for k in keys], ctx.levelno)
            plain = all(v is None or type(v) is str for v in values[:-1])
        level = values[-1]
        plain = plain and (level is None or type(level) is int)
        # Only plain values make a memo key (1, 1.0 and True are one key but
        # three label values; a dict is no key at all).
        key = memo.get(values) if plain else None
        if key is None:
            key = label_key(stream_labels(fields, ctx))
            if plain:
                if len(memo) >= _KEYS_MAX:
                    memo.clear()
                memo[values] = key
        created = ctx.created
        # The usual case of nanoseconds(), inline.
        ns = int(created * 1e9) if 0 <= created < _MAX_SECONDS else nanoseconds(created)
        # The entry, encoded here: the line is JSON text in a JSON string,
        # and JSON text holds no raw control character, so escaping its
        # backslashes and quotes is the whole of that string's encoding.
        line = ctx.dumps(doc).replace(b"\\", b"\\\\").replace(b'"', b'\\"')
        extra = metadata(fields, ctx) if with_metadata else None
        if extra:
            entry = b'["%d","%s",%s]' % (ns, line, ctx.dumps(extra))
        else:
            entry = b'["%d","%s"]' % (ns, line)
        return _new(Keyed, (key, entry))

    return mapped


_new = tuple.__new__  # a Keyed without NamedTuple's Python-level __new__ (once a record)
_keyed = functools.partial(tuple.__new__, Keyed)  # ... over pairs, from C
_first = itemgetter(0)
_KEY_TYPES = frozenset({str, type(None)})  # label values a memo key holds (see bind)
_LEVEL_TYPES = frozenset({int, type(None)})


def bind_batch(
    options: Mapping[str, Any], ctx: Context, encode_list: ListEncoder
) -> BatchMapping | None:
    """:func:`bind`'s mapping of a run of plain stdlib records at once
    (``Preset.bind_batch``), for one label key and no structured metadata
    (the defaults): the lines encoded and escaped in one call, the entries
    made in C-level loops, a label set worked out once per new one."""
    keys = tuple(options.get("label_keys", DEFAULT_LABEL_KEYS))
    if len(keys) != 1 or options.get("metadata_keys"):
        return None
    only = keys[0]
    memo: dict[tuple[Any, Any], bytes] = {}
    json_text, dumps = ctx.json, ctx.dumps

    def mapped(
        docs: list[dict[str, Any]],
        created: list[float],
        levelnos: list[Any],
        record_ids: list[str] | None,
    ) -> list[Any] | None:
        values = list(zip(map(dict.get, docs, repeat(only)), levelnos, strict=True))
        # Memo keys only of plain values, as bind's (1, 1.0 and True are one key).
        if not _KEY_TYPES.issuperset(map(type, map(_first, values))):
            return None
        if not _LEVEL_TYPES.issuperset(map(type, levelnos)) or max(created) >= _MAX_SECONDS:
            return None
        lines = encode_list(docs, True)
        if lines is None:
            return None
        found = list(map(memo.get, values))
        if not all(found):  # a label set not seen yet (keys are never empty)
            if len(memo) >= _KEYS_MAX:
                memo.clear()
            for i, known in enumerate(found):
                if known is None:
                    key = memo.get(values[i])
                    if key is None:
                        one = Context(options, "", created[i], levelnos[i], json_text, dumps)
                        key = memo[values[i]] = label_key(stream_labels(docs[i], one))
                    found[i] = key
        ns = map(int, map(mul, created, repeat(1e9)))
        entries = map(b'["%d","%s"]'.__mod__, zip(ns, lines, strict=True))
        return list(map(_keyed, zip(found, entries, strict=True)))

    return mapped


_KEYS: dict[tuple[tuple[str, str], ...], bytes] = {}
_KEYS_MAX = 4096  # distinct label sets remembered (a batch rarely has more than a few)


def label_key(labels: dict[str, str]) -> bytes:
    """The canonical JSON of a label set (sorted keys, ASCII), remembered:
    a batch's records share a handful of label sets."""
    items = tuple(labels.items())
    key = _KEYS.get(items)
    if key is None:
        text = json.dumps(labels, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        key = text.encode("ascii")
        if len(_KEYS) >= _KEYS_MAX:
            _KEYS.clear()
        _KEYS[items] = key
    return key


# -------------------------------------------------------------------- bodies

_HEAD, _TAIL = b'{"streams":[', b"]}"
_STREAM, _VALUES, _END = b'{"stream":', b',"values":[', b"]}"
#: Bytes a part adds at most: its own stream's framing and a comma.
_PER_PART = len(_STREAM) + len(_VALUES) + len(_END) + 1


def frame(parts: list[Any]) -> bytes:
    """``(labels, entry)`` parts -> one push body, a stream per label set in
    first-seen order, entries in the order given. Built from the bytes."""
    streams: dict[bytes, list[bytes]] = {}
    try:
        for key, value in parts:
            values = streams.get(key)
            if values is None:
                streams[key] = [value]
            else:
                values.append(value)
    except (TypeError, ValueError):
        raise ValueError("loki: every part must be a (labels, entry) pair") from None
    body = [_HEAD]
    for i, (key, values) in enumerate(streams.items()):
        if i:
            body.append(b",")
        body += (_STREAM, key, _VALUES, b",".join(values), _END)
    body.append(_TAIL)
    return b"".join(body)


def framed_size(total: int, count: int) -> int:
    """An upper bound: every part its own stream (keys are in ``total``)."""
    return total + _PER_PART * count + len(_HEAD) + len(_TAIL)


# -------------------------------------------------------------------- answers


def classify(answer: Answer) -> Verdict:
    """204 (or a gateway's 200) delivered; any other 2xx rejected (Loki's
    260 is a blocked tenant); a 400 naming ``total ignored: N out of M``
    rejected as a whole (Loki stored the rest without saying which); other
    4xx rejected, 413 split, 408/425/429/5xx retried."""
    status = answer.status
    if status in (200, 204):
        return DELIVERED
    if 200 <= status < 300:
        return Verdict(
            "rejected",
            f"Loki answered {status} instead of 204 (260: ingestion blocked); not delivered",
        )
    if status == 400:
        found = _IGNORED.findall(answer.body)
        if found:
            ignored = sum(int(n) for n, _ in found)
            of = sum(int(m) for _, m in found)
            return Verdict(
                "rejected",
                f"Loki ignored {ignored} of {of} entries (total ignored: {ignored} out of "
                f"{of}) and stored the rest without saying which; the whole batch counts "
                "rejected and is not retried",
            )
        return Verdict("rejected", "Loki refused the push")
    return status_verdict(answer)


PRESET = Preset(
    "loki",
    "application/json",
    frame,
    framed_size,
    classify=classify,
    record=record,
    bind=bind,
    bind_batch=bind_batch,
    keyed_array=True,  # a stream's entries: comma-joined in its values
    defaults={
        "batch_bytes": BATCH_BYTES,
        "max_record_bytes": MAX_LINE_SIZE - 1024,
        "max_age": MAX_AGE,
    },
    path=PUSH_PATH,
    options=OPTIONS,
    headers=headers,
)
