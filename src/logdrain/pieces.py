"""A batch's pieces back as single records: the fast paths hand ``frame``
chunks of several records (comma-joined JSON, bare or under one key; or a
``lines`` preset's records' lines joined by newlines), and a split, a
per-record verdict or the dead-letter file must name single records."""

from __future__ import annotations

import json

from .mapping import Piece


def explode(piece: Piece, lines: int = 0) -> list[Piece]:
    """A chunk of several JSON records (the fast paths: comma-joined records,
    bare or under one key; or, for a preset whose records are ``lines``
    lines of the body, their lines joined by newlines) as one piece per
    record: only when a split or a verdict must name single records."""
    count, data, _ = piece
    key = None
    if type(data) is tuple:
        key, data = data
    if not isinstance(data, bytes):
        return [piece]
    if lines and key is None and (count > 1 or lines == 2):
        return _lines_apart(count, data, lines)
    if count == 1:
        return [piece]
    out: list[Piece] = []
    for doc in json.loads(b"[" + data + b"]"):
        part = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        out.append((1, part, len(part)) if key is None else (1, (key, part), len(key) + len(part)))
    return out


def _lines_apart(count: int, data: bytes, lines: int) -> list[Piece]:
    """A chunk of ``count`` records of ``lines`` lines each, cut at its
    newlines: one line a record as bytes, two as ``(key, json)``, as the
    per-record path makes them (the mapper writes no chunk that cuts otherwise)."""
    found = data.split(b"\n")
    if len(found) != count * lines or lines not in (1, 2):
        raise ValueError(f"a chunk of {count} record(s) of {lines} line(s) has {len(found)}")
    if lines == 1:
        return [(1, line, len(line)) for line in found]
    return [
        (1, pair, len(pair[0]) + len(pair[1])) for pair in zip(found[::2], found[1::2], strict=True)
    ]
