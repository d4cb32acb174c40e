"""Burying what could not be delivered: pieces of a batch -> dead-letter entries.

The senders call :meth:`Burial.bury` where they settle records ``rejected``
or ``failed`` (and ``dropped_closed``, when ``dead_letter_on_close`` asks
for it): each record goes to the dead-letter file (:mod:`logdrain.deadletter`) as
the JSON it was sent as (after the preset's mapping, so that ``logdrain
replay`` sends it again as it is), with its key (a Loki label set, an
Elasticsearch action line), the reason, the last answer's status and start,
the preset, the attempts and their times. A chunk of several records (the
JSON-array fast path) is taken apart first. Only the failure path pays for
this; the file's own failures are counted and said once on stderr, and never
reach the sender.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from .deadletter import Buried, DeadLetter
from .mapping import Piece
from .report import Reporter


class Attempts:
    """When a batch was first and last tried, and how often."""

    __slots__ = ("count", "first", "last")

    def __init__(self) -> None:
        self.count = 0
        self.first = 0.0
        self.last = 0.0

    def tried(self) -> None:
        now = time.time()
        if not self.count:
            self.first = now
        self.count += 1
        self.last = now


class Burial:
    """The dead-letter file of one Drain, as the senders use it."""

    def __init__(self, dead_letter: DeadLetter, preset: str, reporter: Reporter) -> None:
        self._file = dead_letter
        self._preset = preset
        self._reporter = reporter
        self._lock = threading.Lock()
        self._buried = 0
        self._seen_failed = 0
        self._seen_removed = 0

    @property
    def buried(self) -> int:
        """Records written to the dead-letter file."""
        return self._buried

    @property
    def file(self) -> DeadLetter:
        return self._file

    def bury(
        self,
        pieces: list[Piece],
        outcome: str,
        *,
        reason: str,
        status: int | None,
        answer: str,
        attempts: Attempts,
    ) -> int:
        """Write the records of ``pieces``; how many were written. Never raises."""
        try:
            entries = [
                Buried(
                    record=record,
                    key=key,
                    reason=reason,
                    status=status,
                    answer=answer,
                    preset=self._preset,
                    attempts=attempts.count,
                    first_attempt=attempts.first,
                    last_attempt=attempts.last,
                    outcome=outcome,
                )
                for key, record in _records(pieces)
            ]
            written = self._file.bury(entries)
        except Exception as exc:  # noqa: BLE001 - the sender must survive anything
            self._reporter.warn("dead_letter", f"dead_letter: could not bury records: {exc!r}")
            return 0
        with self._lock:
            self._buried += written
            failed = self._file.failed
            fresh = failed - self._seen_failed
            self._seen_failed = failed
            removed = self._file.removed
            gone = removed - self._seen_removed
            self._seen_removed = removed
        if gone:
            self._reporter.warn(
                "dead_letter_cap",
                f"dead_letter: the oldest part of {self._file.path} was removed to stay within "
                f"dead_letter_max_bytes={self._file.max_bytes}: {gone} buried record(s) gone, "
                f"{removed} in total",
            )
        if fresh:
            self._reporter.warn(
                "dead_letter",
                f"dead_letter: {fresh} record(s) could not be written to {self._file.path}: "
                f"{self._file.last_error}",
            )
        return written


def _records(pieces: list[Piece]) -> list[tuple[str | None, Any]]:
    """(key text or None, JSON value) per record of ``pieces``."""
    out: list[tuple[str | None, Any]] = []
    for count, part, _size in pieces:
        key: bytes | None = None
        data = part
        if type(part) is tuple:
            key, data = part
        if not isinstance(data, (bytes, bytearray)):
            out.append((None, data))  # not encoded: as it is (the store makes it safe)
            continue
        text = bytes(data).decode("utf-8", "replace")
        key_text = None if key is None else bytes(key).decode("utf-8", "replace")
        try:
            value = json.loads(f"[{text}]") if count > 1 else [json.loads(text)]
        except ValueError:  # not JSON (a custom preset's framing): the text itself
            value = [text]
        out.extend((key_text, one) for one in value)
    return out
