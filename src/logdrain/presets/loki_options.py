"""Loki's options: the static ``labels``, the record keys allowed to become
labels (``label_keys``) or structured metadata (``metadata_keys``), and the
``tenant``, checked against Loki's and Prometheus' rules (the sources are
named in :mod:`logdrain.presets.loki`)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

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

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_TENANT = re.compile(r"[a-zA-Z0-9!\-_.*'()]+")


def utf8(text: str) -> bytes:
    return text.encode("utf-8", "replace")  # a lone surrogate becomes "?"


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
    if len(utf8(text)) > MAX_LABEL_VALUE_BYTES:
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
