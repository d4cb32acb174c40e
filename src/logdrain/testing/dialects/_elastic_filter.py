"""Elasticsearch's response filtering, ``filter_path``, for the ``_bulk`` fake.

It follows https://www.elastic.co/guide/en/elasticsearch/reference/current/common-options.html#common-options-response-filtering:
comma-separated inclusions, ``*`` within a name, ``**`` any depth; what
matches no path is left out, and so are the elements an array is left with
no match for (the Bulk API page's ``filter_path=items.*.error`` answer lists
failed items only); nothing matched at all is ``{}``. Approximation: ``-``
exclusions leave the answer whole. Which answers are filtered (successful
ones only, as ``AbstractRestChannel.newErrorBuilder`` leaves errors whole) is
the caller's business.
"""

from __future__ import annotations

import functools
import re
from typing import Any


def filter_path(doc: Any, spec: str) -> Any:
    """``doc`` as Elasticsearch's ``filter_path=spec`` leaves it (inclusions:
    ``a.b``, ``*`` within a name, ``**`` any depth; exclusions with ``-``
    are not implemented and leave the answer whole)."""
    paths = tuple(tuple(p.split(".")) for p in spec.split(",") if p)
    if any(p[0].startswith("-") for p in paths):
        return doc
    kept = _kept(doc, paths)
    return {} if kept is _DROP else kept


_DROP = object()
_Paths = tuple[tuple[str, ...], ...]


@functools.lru_cache(maxsize=1024)
def _glob(pattern: str, name: str) -> bool:
    regex = ".*".join(re.escape(piece) for piece in pattern.split("*"))
    return re.fullmatch(regex, name) is not None


def _kept(value: Any, paths: _Paths) -> Any:
    if () in paths:
        return value  # a path ends here: the whole value
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, rest, whole in _plan(paths, tuple(value)):
            kept = value[key] if whole else _kept(value[key], rest)
            if kept is not _DROP:
                out[key] = kept
        return out if out else _DROP
    if isinstance(value, list):
        items = [k for k in (_kept(v, paths) for v in value) if k is not _DROP]
        return items if items else _DROP
    return _DROP


@functools.lru_cache(maxsize=1024)
def _plan(paths: _Paths, keys: tuple[str, ...]) -> tuple[tuple[str, _Paths, bool], ...]:
    """The keys some path goes into, each with the paths left for its value and
    whether one ends there (the whole value kept): alike for all items, so cached."""
    plan: list[tuple[str, _Paths, bool]] = []
    for key in keys:
        rest: list[tuple[str, ...]] = []
        for head, *tail in paths:
            if head == "**":
                rest.append((head, *tail))
                if not tail:
                    rest.append(())
                elif _glob(tail[0], key):
                    rest.append(tuple(tail[1:]))
            elif _glob(head, key):
                rest.append(tuple(tail))
        if rest:
            plan.append((key, tuple(rest), () in rest))
    return tuple(plan)
