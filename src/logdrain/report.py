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
        write_stderr(f"logdrain[{self.name}]: {message}{suffix}")
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
