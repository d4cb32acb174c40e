"""Collector presets by name (see :mod:`logdrain.presets.base`).

``Drain(preset="ndjson")``, or a :class:`Preset` object for a collector of
your own. Today's presets are the generic ones, ``json`` (the default),
``ndjson`` and ``object``; the old ``format=`` setting names the same three.
"""

from __future__ import annotations

from .base import (
    DELIVERED,
    TRANSIENT_STATUSES,
    Answer,
    Preset,
    Verdict,
    bearer,
    status_verdict,
)
from .generic import JSON, NDJSON, OBJECT

PRESETS: dict[str, Preset] = {p.name: p for p in (JSON, NDJSON, OBJECT)}

__all__ = [
    "DELIVERED",
    "PRESETS",
    "TRANSIENT_STATUSES",
    "Answer",
    "Preset",
    "Verdict",
    "bearer",
    "get",
    "status_verdict",
]


def get(name: str) -> Preset:
    """The preset called ``name`` (KeyError when there is none)."""
    return PRESETS[name]
