"""The generic presets: a JSON array, NDJSON, or one object per request,
each judged by its status alone (any 2xx is success)."""

from __future__ import annotations

from .base import Preset, enclosed


def _array(parts: list[bytes]) -> bytes:
    return enclosed(b"[", b",", parts, b"]")


def _array_size(total: int, count: int) -> int:
    return total + count + 1  # "[", "]" and count - 1 commas


def _lines(parts: list[bytes]) -> bytes:
    return enclosed(b"", b"\n", parts, b"\n")


def _lines_size(total: int, count: int) -> int:
    return total + count  # one newline after each


def single(parts: list[bytes]) -> bytes:
    if len(parts) != 1:
        raise ValueError(f"one record per request, got {len(parts)}")
    return parts[0]


def single_size(total: int, count: int) -> int:
    return total


JSON = Preset("json", "application/json", _array, _array_size, json_array=True)
NDJSON = Preset("ndjson", "application/x-ndjson", _lines, _lines_size, lines=1)
OBJECT = Preset(
    "object",
    "application/json",
    single,
    single_size,
    one_per_request=True,
    defaults={"batch_size": 1},
)
