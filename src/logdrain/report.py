"""Rate-limited one-line warnings to stderr, never through ``logging``.

logdrain must not log into the pipeline it feeds, so its own complaints go
straight to ``sys.stderr``: at most one line per kind per ``interval``; lines
held back in between are counted and mentioned in the next one.
"""

from __future__ import annotations

import sys
import threading
import time


class Reporter:
    """One per Drain; thread-safe."""

    def __init__(self, name: str, interval: float) -> None:
        self.name = name
        self.interval = interval
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._secrets: list[str] = []

    def add_secret(self, value: str) -> None:
        """Never print ``value`` (a token handed out by a provider, say)."""
        with self._lock:
            if value and value not in self._secrets:
                self._secrets.append(value)
                del self._secrets[:-32]  # providers rotate; keep the recent ones

    def redact(self, text: str) -> str:
        """``text`` with every known secret replaced by ``***``."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def warn(self, kind: str, message: str, *, force: bool = False) -> bool:
        """Write ``message`` unless a line of this ``kind`` went out recently."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(kind)
            if not force and last is not None and now - last < self.interval:
                self._held[kind] = self._held.get(kind, 0) + 1
                return False
            self._last[kind] = now
            held = self._held.pop(kind, 0)
        suffix = f" ({held} similar line(s) held back)" if held else ""
        write_stderr(self.redact(f"logdrain[{self.name}]: {message}{suffix}"))
        return True


def write_stderr(line: str) -> None:
    """One line to stderr; a closed or broken stderr is ignored."""
    try:
        stream = sys.stderr
        if stream is not None:
            stream.write(line + "\n")
            stream.flush()
    except Exception:  # noqa: BLE001, S110 - nowhere left to report to
        pass
