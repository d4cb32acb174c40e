"""Rate-limited one-line warnings to stderr, never through ``logging``.

logdrain must not log into the pipeline it feeds, so its own complaints go
straight to ``sys.stderr``: at most one line per kind per ``interval``; lines
held back in between are counted and mentioned in the next one.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from urllib.parse import quote, quote_plus


class Reporter:
    """One per Drain; thread-safe."""

    def __init__(self, name: str, interval: float) -> None:
        self.name = name
        self.interval = interval
        self._lock = threading.RLock()  # reentrant: a signal handler may report too
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._secrets: list[str] = []
        self._pattern: re.Pattern[str] | None = None  # every form of every secret

    def add_secret(self, value: str) -> None:
        """Never print ``value`` (a token handed out by a provider, say), in any of
        the forms a message can show it in (see :func:`secret_forms`)."""
        with self._lock:
            if value and value not in self._secrets:
                self._secrets.append(value)
                del self._secrets[:-32]  # providers rotate; keep the recent ones
                forms = {form for secret in self._secrets for form in secret_forms(secret)}
                ordered = sorted(forms, key=len, reverse=True)  # longest first wins
                self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def redact(self, text: str) -> str:
        """``text`` with every form of every known secret replaced by ``***``."""
        pattern = self._pattern
        return pattern.sub("***", text) if pattern is not None else text

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
    """One line to stderr; a closed or broken stderr is ignored.

    When ``sys.stderr`` feeds ``logging`` (Celery's ``LoggingProxy``, set by
    ``worker_redirect_stdouts``, or any stream that holds a ``logger``), the
    line goes to the real stderr, ``sys.__stderr__``, instead: through
    logging it would come back into the drain it complains about."""
    import logging  # noqa: PLC0415 - imported already by any front end

    try:
        stream = sys.stderr
        if stream is not None and (
            isinstance(getattr(stream, "logger", None), logging.Logger)
            or any(cls.__name__ == "LoggingProxy" for cls in type(stream).__mro__)
        ):
            stream = sys.__stderr__
        if stream is not None:
            stream.write(line + "\n")
            stream.flush()
    except Exception:  # noqa: BLE001, S110 - nowhere left to report to
        pass


def secret_forms(value: str) -> list[str]:
    """Every form in which ``value`` can appear in a message: as is, stripped,
    JSON-escaped, percent-encoded (``quote`` and ``quote_plus``), and each of
    those repr-escaped (str or bytes, inside either quote, once or twice) or
    ``ascii()``-escaped. Derived forms under 3 characters are left out
    (replacing them would shred messages)."""
    base = [
        value,
        value.strip(),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value, safe=""),
        quote(value),
        quote_plus(value, safe=""),
        quote_plus(value),
    ]
    forms: list[str] = []
    for form in base:
        raw = form.encode("utf-8", "surrogatepass")
        escaped = repr(form)[1:-1]
        forms += [
            form,
            escaped,
            repr("'\"" + form)[4:-1],  # with both quotes present, repr escapes '
            repr(raw)[2:-1],
            repr(b"'\"" + raw)[5:-1],
            ascii(form)[1:-1],
            repr(escaped)[1:-1],  # a repr inside a repr
        ]
    return list(dict.fromkeys(form for form in forms if len(form) >= 3 or form == value))
