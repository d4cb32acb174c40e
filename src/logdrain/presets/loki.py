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

import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .base import DELIVERED, Answer, Context, Keyed, Preset, Verdict, status_verdict

PUSH_PATH = "/loki/api/v1/push"
#: Loki's defaults (limits_config): max_label_names_per_series,
#: max_label_name_length, max_label_value_length (Go ``len``: bytes).
MAX_LABEL_NAMES = 15
MAX_LABEL_NAME_LENGTH = 1024
MAX_LABEL_VALUE_BYTES = 2048
#: max_structured_metadata_entries_count and max_structured_metadata_size
#: (names and values, bytes).
MAX_METADATA_ENTRIES = 128
MAX_METADATA_BYTES = 64 * 1024
#: dskit's tenant ID rules (``tenant.ValidTenantID``).
MAX_TENANT_LENGTH = 150
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

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_TENANT = re.compile(r"[a-zA-Z0-9!\-_.*'()]+")
_IGNORED = re.compile(rb"total ignored: (\d+) out of (\d+)")
_MAX_SECONDS = (2**63 - 1) // 1_000_000_000  # int64 nanoseconds

# -------------------------------------------------------------------- options


def _label_name(name: Any) -> str:
    if not isinstance(name, str) or not _LABEL_NAME.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a valid Prometheus label name "
            "(letters, digits and '_', not starting with a digit)"
        )
    if name.startswith("__"):
        raise ValueError(f"{name!r}: label names starting with '__' are reserved")
    if len(name) > MAX_LABEL_NAME_LENGTH:
        raise ValueError(f"label name {name[:40]!r}... is longer than {MAX_LABEL_NAME_LENGTH}")
    return name


def _static_value(name: str, value: Any) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise ValueError(f"label {name!r}: give a string, not {type(value).__name__}")
    if not text:
        raise ValueError(f"label {name!r} has an empty value (an empty label is no label)")
    if len(_utf8(text)) > MAX_LABEL_VALUE_BYTES:
        raise ValueError(f"label {name!r}: value longer than {MAX_LABEL_VALUE_BYTES} bytes")
    return text


def _pairs(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"{item.strip()!r} is not name=value (or give a JSON object)")
        out[name.strip()] = value.strip()
    return out


def parse_labels(raw: Any) -> dict[str, str]:
    """The static labels: a mapping, a JSON object text or ``"k=v,k2=v2"``."""
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("{"):
            try:
                raw = json.loads(text)
            except ValueError as exc:
                raise ValueError(f"not a JSON object: {exc}") from None
        else:
            raw = _pairs(text)
    if not isinstance(raw, Mapping):
        raise ValueError(f"give a mapping of label names to values, not {type(raw).__name__}")
    labels = {_label_name(name): _static_value(name, value) for name, value in raw.items()}
    if len(labels) > MAX_LABEL_NAMES:
        raise ValueError(f"{len(labels)} labels; Loki takes at most {MAX_LABEL_NAMES} a stream")
    return labels


def _names(raw: Any, limit: int) -> tuple[str, ...]:
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("["):
            try:
                raw = json.loads(text)
            except ValueError as exc:
                raise ValueError(f"not a JSON array: {exc}") from None
        else:
            raw = [part.strip() for part in text.split(",") if part.strip()]
    if isinstance(raw, (str, bytes, Mapping)) or not isinstance(raw, Iterable):
        raise ValueError(f"give a list of record keys, not {type(raw).__name__}")
    names = list(dict.fromkeys(_label_name(name) for name in raw))
    if len(names) > limit:
        raise ValueError(f"{len(names)} keys; at most {limit}")
    return tuple(names)


def parse_label_keys(raw: Any) -> tuple[str, ...]:
    """Record keys allowed to become labels: a list, a JSON array or ``"a,b"``."""
    return _names(raw, MAX_LABEL_NAMES)


def parse_metadata_keys(raw: Any) -> tuple[str, ...]:
    """Record keys sent as structured metadata (Loki 3): like ``label_keys``."""
    return _names(raw, MAX_METADATA_ENTRIES)


def parse_tenant(raw: Any) -> str:
    """The ``X-Scope-OrgID`` tenant, per dskit's tenant ID rules."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("give the tenant ID as a non-empty string")
    tenant = raw.strip()
    if not _TENANT.fullmatch(tenant) or tenant in (".", ".."):
        raise ValueError(f"{tenant!r} is not a Loki tenant ID (letters, digits and !-_.*'() only)")
    if len(tenant) > MAX_TENANT_LENGTH:
        raise ValueError(f"tenant ID longer than {MAX_TENANT_LENGTH} characters")
    return tenant


OPTIONS = {
    "labels": parse_labels,
    "label_keys": parse_label_keys,
    "metadata_keys": parse_metadata_keys,
    "tenant": parse_tenant,
}


def headers(options: Mapping[str, Any]) -> dict[str, str]:
    tenant = options.get("tenant")
    return {"X-Scope-OrgID": tenant} if tenant else {}


# -------------------------------------------------------------------- records


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "replace")  # a lone surrogate becomes "?"


def _bounded(text: str, limit: int) -> str:
    """``text`` as valid UTF-8 of at most ``limit`` bytes (cut on a character)."""
    data = _utf8(text)
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
            budget -= len(key) + len(_utf8(text))
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
