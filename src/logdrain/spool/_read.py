"""Reading the spool for delivery: the :class:`RowId` handed out, and the merge
of the parts held, oldest ``created`` first.

Within a part, rows go in the order they were written; the parts are merged
by ``created`` (a stable merge: each part's order is kept). A take stops at
its record or byte limit, after at least one row (so that a row larger than
the limit is delivered alone rather than never).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import NamedTuple

from ._part import Part
from ._schema import Spooled, nbytes


class RowId(NamedTuple):
    """A row handed out by :meth:`Spool.take`: the part it is in, its id there."""

    part: str
    row: int


def merge(
    heads: list[tuple[Part, list[tuple[int, Spooled]]]],
    limit_records: int,
    limit_bytes: int,
    *,
    strict: bool = False,
) -> list[tuple[RowId, Spooled]]:
    """The rows to take from ``heads`` (each part's next rows), marked taken there;
    ``strict``: none when the first row alone passes a limit."""
    if len(heads) == 1:  # the usual case: no merge
        merged: Iterable[tuple[Part, int, Spooled]] = (
            (heads[0][0], rid, item) for rid, item in heads[0][1]
        )
    else:
        streams = (
            [(item.created, order, rid, item, part) for rid, item in rows]
            for order, (part, rows) in enumerate(heads)
        )
        merged = ((part, rid, item) for _c, _o, rid, item, part in heapq.merge(*streams))
    out: list[tuple[RowId, Spooled]] = []
    chosen: dict[Part, list[tuple[int, Spooled]]] = {}
    records = size = 0
    for part, rid, item in merged:
        cost = nbytes(item)
        if (out or strict) and (records + item.count > limit_records or size + cost > limit_bytes):
            break
        out.append((RowId(part.stem, rid), item))
        chosen.setdefault(part, []).append((rid, item))
        records += item.count
        size += cost
    for part, taken in chosen.items():
        part.taken(taken)
    return out


def by_part(row_ids: Iterable[RowId]) -> dict[str, list[int]]:
    """Row ids grouped by the part they are in."""
    out: dict[str, list[int]] = {}
    for part, row in row_ids:
        out.setdefault(part, []).append(row)
    return out
