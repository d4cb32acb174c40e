"""A batch's pieces grouped into request bodies within ``batch_bytes``, the
preset's framing counted (``framed_size``): by arithmetic for a linear
framing (every built-in preset's), else by asking it for each piece."""

from __future__ import annotations

import operator
from bisect import bisect_right
from collections.abc import Callable
from itertools import accumulate, repeat
from typing import Any

from .mapping import Piece


def cut(
    pieces: list[Piece],
    limit: int,
    body_size: Callable[[int, int], int],
    linear: tuple[int, int] | None,
) -> list[list[Piece]]:
    """Group pieces into batches within ``batch_bytes`` (the framing
    counted, per the preset's ``framed_size``; a linear one, as every
    built-in is, by arithmetic: see :func:`linear_framing`)."""
    if linear is not None and linear[1] >= 0 and len(pieces) > 1:
        return _cut_linear(pieces, limit - linear[0], linear[1])
    batches: list[list[Piece]] = []
    group: list[Piece] = []
    size = 0
    for piece in pieces:
        n = len(group) + 1
        total = size + piece[2]
        if group:
            if linear is not None:
                too_large = total + linear[0] + linear[1] * n > limit
            else:
                too_large = body_size(total, n) > limit
            if too_large:
                batches.append(group)
                group, total = [], piece[2]
        group.append(piece)
        size = total
    if group:
        batches.append(group)
    return batches


def _cut_linear(pieces: list[Piece], room: int, per_part: int) -> list[list[Piece]]:
    """:func:`cut` for a linear framing (``per_part`` >= 0): each
    batch the longest run of pieces whose sizes plus ``per_part`` each come
    to ``room`` at most (a piece alone when it is larger), found by bisecting
    the running totals rather than by a step per piece."""
    ends = list(accumulate(map(operator.add, map(_size, pieces), repeat(per_part)), initial=0))
    batches: list[list[Piece]] = []
    start, count = 0, len(pieces)
    while start < count:
        stop = max(start + 1, bisect_right(ends, ends[start] + room, start) - 1)
        batches.append(pieces[start:stop])
        start = stop
    return batches


_size = operator.itemgetter(2)  # a piece's size


def linear_framing(body_size: Any) -> tuple[int, int] | None:
    """(fixed, per part) when ``body_size(total, count)`` is ``total + fixed
    + per_part * count`` on every sample with a part or more (then no call
    per record is needed), else None: ``body_size`` decides each time."""
    try:  # a batch holds one part at least: counts from 1
        per_part = body_size(0, 2) - body_size(0, 1)
        fixed = body_size(0, 1) - per_part
        samples = ((0, 7), (1000, 1), (123_456, 250), (10**7, 2000))
        if all(body_size(t, c) == t + fixed + per_part * c for t, c in samples):
            return fixed, per_part
    except Exception:  # noqa: BLE001 - a framing that cannot count zero parts
        return None
    return None
