"""The dead-letter file format and its version marker; the tolerant reader.

Format: UTF-8 JSON lines, each file headed ``{"logdrain_dead_letter":1,...}``;
a reader refuses a version it does not know, a writer never appends to one.
An entry is a line, the why before the what: outcome, reason, status, answer,
preset, attempts, first_attempt, last_attempt (epoch seconds), key, record.
Record and key are as they would have been sent: what JSON cannot hold (NaN,
a non-str key, an object) is what :mod:`logdrain.jsonsafe` ships (``"NaN"``, a
repr), a lone surrogate U+FFFD. Reason and answer go through ``redact`` (the
drain's: tokens, header values, proxy passwords) before they are cut, never
half a secret.

Readers skip and count the lines that are not entries: a torn last line (a
writer killed, the disk full), a line that is not JSON. A torn header with
nothing after it is replaced by the next writer.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .._files import pread, write_all
from ..errors import LogdrainError
from ..jsonsafe import clean, fix_surrogates, to_jsonable

VERSION = 1
MARKER = "logdrain_dead_letter"
MAX_REASON = 1024  # characters kept of a reason, after redaction
MAX_ANSWER = 512  # characters kept of the collector's answer, after redaction
_HEADER_START = b'{"' + MARKER.encode() + b'":'
_HEAD_PEEK = 4096  # a header is shorter


class DeadLetterFormatError(LogdrainError, ValueError):
    """Not a dead-letter file, or one of a version this logdrain cannot read."""


@dataclass(frozen=True)
class Buried:
    """One record that was not delivered, and why."""

    record: Any  # the JSON document as it would have been sent
    key: str | None  # framing beside it (a Loki label set, an ES action line), as text
    reason: str
    status: int | None  # of the last answer; None when none came (connection failed)
    answer: str  # the start of the collector's answer
    preset: str
    attempts: int
    first_attempt: float  # epoch seconds
    last_attempt: float
    outcome: str  # "rejected", "failed", "dropped_closed"


_STR, _NUM, _OPT_STR, _OPT_INT = (str,), (int, float), (str, type(None)), (int, type(None))
_KINDS: dict[str, tuple[type, ...]] = {
    **dict.fromkeys(("outcome", "reason", "answer", "preset"), _STR),
    **dict.fromkeys(("first_attempt", "last_attempt"), _NUM),
    **{"status": _OPT_INT, "attempts": (int,), "key": _OPT_STR, "record": (object,)},
}


def _dumps(value: Any) -> str:
    try:
        return json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=to_jsonable
        )
    except Exception:  # noqa: BLE001 - NaN, a non-str key, a cycle: the slow path, as when sent
        return json.dumps(clean(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _seconds(value: float) -> float:
    number = float(value)
    return number if math.isfinite(number) else 0.0


def entry_line(entry: Buried, redact: Callable[[str], str]) -> bytes:
    """The entry as one JSON line, newline included."""
    meta = {
        "outcome": str(entry.outcome),
        "reason": str(redact(str(entry.reason)))[:MAX_REASON],
        "status": None if entry.status is None else int(entry.status),
        "answer": str(redact(str(entry.answer)))[:MAX_ANSWER],
        "preset": str(entry.preset),
        "attempts": int(entry.attempts),
        "first_attempt": _seconds(entry.first_attempt),
        "last_attempt": _seconds(entry.last_attempt),
        "key": None if entry.key is None else str(entry.key),
    }
    text = f'{_dumps(meta)[:-1]},"record":{_dumps(entry.record)}}}\n'
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return fix_surrogates(text)


def _check_header(line: bytes, name: str) -> None:
    try:
        head = json.loads(line)
    except ValueError:
        head = None
    if not isinstance(head, dict) or MARKER not in head:
        raise DeadLetterFormatError(f"{name} is not a logdrain dead-letter file (no {MARKER} line)")
    version = head[MARKER]
    if type(version) is not int or version != VERSION:
        raise DeadLetterFormatError(
            f"{name} is a dead-letter file of version {version!r}; this logdrain reads version "
            f"{VERSION} only: use the logdrain that wrote it"
        )


def header_end(fd: int, name: str) -> int:
    """Where the header of the file open at ``fd`` ends; written when missing or torn."""
    start = pread(fd, _HEAD_PEEK, 0) if os.fstat(fd).st_size else b""
    end = start.find(b"\n") + 1
    if end or not _HEADER_START.startswith(start[: len(_HEADER_START)]):
        _check_header(start[:end], name)  # never append to a file of another version
        return end
    if start:
        os.ftruncate(fd, 0)  # a torn header with nothing after it
    head = {MARKER: VERSION, "created": round(time.time(), 3)}
    header = json.dumps(head, separators=(",", ":")).encode() + b"\n"
    write_all(fd, header)
    return len(header)


def _entry(line: bytes) -> Buried | None:
    try:
        doc = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    if not all(name in doc and isinstance(doc[name], kinds) for name, kinds in _KINDS.items()):
        return None
    values = {name: doc[name] for name in _KINDS}
    values["first_attempt"] = float(values["first_attempt"])
    values["last_attempt"] = float(values["last_attempt"])
    return Buried(**values)


class Reader:
    """The entries of one file, oldest first (iterate once). ``skipped`` counts
    the lines that are not entries: a torn last line, a line that is not JSON."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.name = os.fspath(path)
        self.skipped = 0
        self._file = open(path, "rb")  # noqa: SIM115 - closed when iterated to the end
        try:
            first = self._file.readline()
            if first.endswith(b"\n"):
                _check_header(first, self.name)
            elif first:  # a torn header: nothing was written after it
                self.skipped = 1
        except BaseException:
            self._file.close()
            raise

    def __iter__(self) -> Iterator[Buried]:
        with self._file:
            for line in self._file:
                entry = _entry(line)
                if entry is None:
                    self.skipped += 1
                else:
                    yield entry


def read(path: str | os.PathLike[str]) -> Reader:
    """The entries of one dead-letter file; raises :class:`DeadLetterFormatError`
    for a file that is not one, or of a version this logdrain does not know."""
    return Reader(path)


def count_entries(path: str) -> int:
    lines = 0
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            lines += chunk.count(b"\n")
    return max(lines - 1, 0)  # the header is no entry
