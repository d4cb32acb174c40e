"""``json.loads``' value of a fake's usual body, made by orjson when it is
installed: 4.2 against 6.7 us a record of the OTLP preset's bodies on the
2-core VM of benchmarks/README.md, where a fake shares the cores with the
code under test.

orjson makes the same value as ``json.loads`` but in two cases, and neither
is taken from it: it refuses some texts ``json.loads`` takes (``NaN``,
``Infinity``, lone surrogates, numbers beyond a double's range), and it
reads an integer beyond 64 bits as a float, so a text with a number token of
19 digits or more is not given to it. Either way the caller's own
``json.loads`` reads the text (and says what is wrong with it).
"""

from __future__ import annotations

from typing import Any

try:
    import orjson
except ImportError:  # the plain path
    orjson = None  # type: ignore[assignment]

_ZEROS = bytes.maketrans(b"123456789", b"000000000")  # every digit a "0"
_RUN = b"0" * 19
#: A number token of 19 digits or more follows one of these (or "-").
_BEFORE = (b":", b"[", b",", b" ", b"\t", b"\n", b"\r", b"-")
#: What ``orjson_value`` gives when the caller's own ``json.loads`` must read the text.
UNSURE: Any = object()


def orjson_sure(data: bytes) -> bool:
    """Whether orjson, if installed, reads every JSON text within ``data``
    as ``json.loads`` does when it reads it at all: no number token of 19
    digits or more (a few C-level passes over the bytes: sre's search costs
    about 30 ns a byte here)."""
    if orjson is None:
        return False
    digits = data.translate(_ZEROS)
    return _RUN not in digits or not any(head + _RUN in digits for head in _BEFORE)


def orjson_value(data: bytes) -> Any:
    """``json.loads``' value of UTF-8 ``data`` (which ``orjson_sure`` passed)
    made by orjson, or UNSURE when orjson refuses it."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return UNSURE
