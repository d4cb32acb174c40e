"""Slack incoming webhooks: warnings and errors as chat messages.

Several records fold into one message, one line each (an emoji for the
level, the level, the logger, the message, and the traceback's last lines in
a code block)::

    {"text": "<line 1>\\n<line 2>\\n..."}

``record`` returns each line as a string, which the encoder writes as a JSON
string literal; ``frame`` joins the literals' contents with an escaped
newline, without parsing them again. The whole webhook URL is the credential
(``secret_url``): it is never shown.

Limits followed (see docs/presets/slack.md): Slack truncates ``text`` above
40,000 characters and asks to keep messages under 4,000; a body here stays
within ``batch_bytes`` = 3,500 bytes of JSON, and JSON text is never shorter
than the text it carries, so a message stays below 4,000 characters. About
one message a second per webhook (``min_interval``); a 429 waits out its
``Retry-After``.

Answers: 200 ``ok``; errors are plain text, ``invalid_payload`` (400),
``action_prohibited`` (403), ``channel_not_found`` (404),
``channel_is_archived`` (410), ``rollup_error`` (500)... 429 and 5xx are
retried, 413 split into smaller messages, every other refusal is permanent
and reported with Slack's word.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from .base import DELIVERED, TRANSIENT_STATUSES, Answer, Context, Preset, Verdict

LEVELS = {
    "CRITICAL": 50, "FATAL": 50, "ERROR": 40, "WARNING": 30, "WARN": 30,
    "INFO": 20, "DEBUG": 10, "NOTSET": 0,
}  # fmt: skip
_NAMES = {50: "CRITICAL", 40: "ERROR", 30: "WARNING", 20: "INFO", 10: "DEBUG", 0: "NOTSET"}
#: Emoji by level, highest first.
EMOJI = ((50, ":fire:"), (40, ":red_circle:"), (30, ":warning:"), (20, ":information_source:"))

MESSAGE_CHARS = 700  # of one record's message, at most
LOGGER_CHARS = 100
TRACEBACK_LINES = 6  # the traceback's last lines shown...
TRACEBACK_CHARS = 500  # ...and at most this many characters of them

#: One message: ~3,500 bytes of JSON (Slack: keep messages under 4,000 characters).
BATCH_BYTES = 3500
MAX_RECORD_BYTES = 1500

_HEAD = b'{"text":"'
_TAIL = b'"}'
_SEPARATOR = b"\\n"  # an escaped newline inside the JSON string


def parse_level(raw: Any) -> int:
    """``"warning"``, ``"WARN"``, ``30`` or ``"30"`` -> 30."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        if raw < 0:
            raise ValueError(f"min_level must not be negative, got {raw}")
        return raw
    if isinstance(raw, str):
        text = raw.strip()
        if text.isdigit():
            return int(text)
        if text.upper() in LEVELS:
            return LEVELS[text.upper()]
    raise ValueError(
        f"min_level must be a level name (DEBUG, INFO, WARNING, ERROR, CRITICAL) "
        f"or a number, got {raw!r}"
    )


def _default_level(environ: Mapping[str, str], options: Mapping[str, Any]) -> dict[str, Any]:
    """``min_level`` is always among the parsed options (WARNING unless given),
    so the front ends that skip lower records find it there."""
    return {} if "min_level" in options else {"min_level": "WARNING"}


def escape(text: str) -> str:
    """Slack's three control characters, escaped (no ``<!channel>`` from a log)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _tail(traceback: str) -> str:
    """The last lines of a traceback (where the exception is named)."""
    lines = traceback.rstrip().splitlines()[-TRACEBACK_LINES:]
    text = "\n".join(lines)
    if len(text) > TRACEBACK_CHARS:
        text = "\u2026" + text[-(TRACEBACK_CHARS - 1) :]
    return text.replace("```", "'''")


def _level(doc: dict[str, Any], levelno: int | None) -> tuple[int, str]:
    name = doc.get("level")
    if levelno is None and isinstance(name, str):
        levelno = LEVELS.get(name.upper())
    if not isinstance(name, str) or not name:
        name = _NAMES.get(levelno or 0, f"Level {levelno}")
    return (levelno or 0), name.upper()  # structlog's "warning" shows as WARNING


def _clock(created: float) -> str:
    """A Slack date token (shown in the reader's time zone), UTC as fallback."""
    seconds = int(created)
    fallback = time.strftime("%H:%M:%S", time.gmtime(seconds))
    return f"<!date^{seconds}^{{time_secs}}|{fallback} UTC>"


def line(doc: dict[str, Any], ctx: Context) -> str:
    """One record as one line of the message (mrkdwn)."""
    levelno, level = _level(doc, ctx.levelno)
    emoji = next((mark for floor, mark in EMOJI if levelno >= floor), ":speech_balloon:")
    logger = _clip(str(doc.get("logger") or "root"), LOGGER_CHARS).replace("`", "'")
    message = escape(_clip(str(doc.get("message", "")), MESSAGE_CHARS))
    text = f"{emoji} {_clock(ctx.created)} *{escape(level)}* `{escape(logger)}` {message}"
    traceback = doc.get("exception") or doc.get("stack")
    if isinstance(traceback, str) and traceback.strip():
        text += f"\n```\n{escape(_tail(traceback))}\n```"
    return text


def frame(parts: list[bytes]) -> bytes:
    """``{"text": "..."}`` from string literals (``b'"line"'``), unparsed."""
    return _HEAD + _SEPARATOR.join(part[1:-1] for part in parts) + _TAIL


def framed_size(total: int, count: int) -> int:
    # Each part loses its two quotes; count - 1 separators of 2 bytes; head and tail.
    return total + len(_HEAD) + len(_TAIL)


def _text(answer: Answer) -> str:
    words = answer.body[:200].decode("utf-8", "replace").split()
    return " ".join(words) or answer.reason


def classify(answer: Answer) -> Verdict:
    """200 ``ok`` delivered; 429 and 5xx retried; anything else refused for
    good, with Slack's own word (``channel_not_found``)."""
    status = answer.status
    if 200 <= status < 300:
        return DELIVERED
    why = _text(answer) or f"HTTP {status}"
    if status in TRANSIENT_STATUSES or status >= 500:  # 429: Retry-After is honoured
        return Verdict("retry", why)
    if status == 413:
        return Verdict("split", why)
    return Verdict("rejected", why)


PRESET = Preset(
    "slack",
    "application/json",
    frame,
    framed_size,
    classify=classify,
    record=line,
    defaults={
        "batch_size": 20,
        "batch_bytes": BATCH_BYTES,
        "max_record_bytes": MAX_RECORD_BYTES,
        "concurrency": 1,
        "flush_interval": 2.0,
    },
    options={"min_level": parse_level},
    environment=_default_level,
    min_interval=1.0,
    secret_url=True,
)
