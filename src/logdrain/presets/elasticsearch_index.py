"""Elasticsearch's ``index`` option: a name, or a date pattern of the
record's UTC time, checked against Elasticsearch's index name rules
(https://www.elastic.co/guide/en/elasticsearch/reference/current/indices-create-index.html#indices-create-api-path-params:
lower case; none of ``\\ / * ? " < > | , # :`` or a space; not starting
with ``- _ +``; not ``.`` or ``..``; at most 255 bytes)."""

from __future__ import annotations

import functools
import re
from datetime import datetime, timezone
from typing import Any

_DIRECTIVES = frozenset("YmdHjGVy%")
_FORBIDDEN = frozenset('\\/*?"<>| ,#:')


def parse_index(raw: Any) -> str:
    """The ``index`` option: a name, or a pattern of the record's UTC time in
    strftime style (``logs-%Y.%m.%d``; directives ``%Y %y %m %d %H %j %G %V``
    and ``%%``), checked against Elasticsearch's index name rules."""
    if not isinstance(raw, str):
        raise ValueError(
            f"index must be a string such as 'logs-%Y.%m.%d', not {type(raw).__name__}"
        )
    text = raw.strip()
    if not text:
        raise ValueError("index is empty: give a name such as 'logs-app' or 'logs-%Y.%m.%d'")
    for match in re.finditer(r"%(.?)", text):
        if match.group(1) not in _DIRECTIVES:
            shown = "%" + match.group(1) if match.group(1) else "a lone %"
            raise ValueError(
                f"index {text!r} uses {shown}: use %Y %y %m %d %H %j %G %V, or %% for a %"
            )
    for sample in (0.0, 1735689599.0):  # 1970-01-01 and 2024-12-31T23:59:59 (week 1 of 2025)
        problem = _name_problem(render_index(text, sample))
        if problem:
            raise ValueError(f"index {text!r} {problem}")
    return text


def _name_problem(name: str) -> str | None:
    if name != name.lower():
        return "has upper-case letters (Elasticsearch index names are lower case)"
    bad = sorted({c for c in name if c in _FORBIDDEN or c < " "})
    if bad:
        hint = (
            " (strftime directives like %Y.%m.%d are logdrain's date pattern)" if "<" in bad else ""
        )
        return f"holds {' '.join(repr(c) for c in bad)}, not allowed in an index name{hint}"
    if name[0] in "-_+":
        return f"starts with {name[0]!r}, not allowed for an index name"
    if name in (".", ".."):
        return "is not a usable index name"
    if len(name.encode("utf-8")) > 255:
        return "is longer than 255 bytes"
    return None


def render_index(pattern: str, created: float) -> str:
    """The index name of a record created at ``created`` (epoch seconds, UTC)."""
    if "%" not in pattern:
        return pattern
    return _render_hour(pattern, int(created // 3600))


@functools.lru_cache(maxsize=256)
def _render_hour(pattern: str, hour: int) -> str:
    # Every directive allowed is constant within an hour: one strftime per hour.
    moment = datetime.fromtimestamp(hour * 3600, tz=timezone.utc)
    return moment.strftime(pattern)
