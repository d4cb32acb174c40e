"""Collector presets by name (see :mod:`logdrain.presets.base`).

``Drain(preset="loki")``, or a :class:`Preset` object for a collector of
your own. The generic presets are ``json`` (the default), ``ndjson`` and
``object`` (the old ``format=`` setting names the same three); each
collector preset lives in its own module, imported when first named.
"""

from __future__ import annotations

import importlib

from .base import (
    DELIVERED,
    TRANSIENT_STATUSES,
    Answer,
    Context,
    Keyed,
    Preset,
    Unsendable,
    Verdict,
    bearer,
    status_verdict,
)
from .generic import JSON, NDJSON, OBJECT

#: The generic presets, always loaded.
PRESETS: dict[str, Preset] = {p.name: p for p in (JSON, NDJSON, OBJECT)}

#: Collector presets: name -> module of logdrain.presets holding ``PRESET``.
COLLECTORS: dict[str, str] = {
    "loki": "loki",
    "elasticsearch": "elasticsearch",
    "opensearch": "elasticsearch",
    "splunk_hec": "splunk",
    "datadog": "datadog",
    "seq": "seq",
    "otlp": "otlp",
    "gelf": "gelf",
    "slack": "slack",
    "kafka_rest": "kafka_rest",
}

__all__ = [
    "COLLECTORS",
    "DELIVERED",
    "PRESETS",
    "TRANSIENT_STATUSES",
    "Answer",
    "Context",
    "Keyed",
    "Preset",
    "Unsendable",
    "Verdict",
    "bearer",
    "get",
    "names",
    "status_verdict",
]


def names() -> list[str]:
    """Every preset name, sorted."""
    return sorted({*PRESETS, *COLLECTORS})


def get(name: str) -> Preset:
    """The preset called ``name`` (KeyError when there is none)."""
    if name in PRESETS:
        return PRESETS[name]
    module = importlib.import_module(f"{__name__}.{COLLECTORS[name]}")
    preset: Preset = module.PRESET
    return preset
