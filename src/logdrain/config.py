"""Settings: explicit argument, else ``LOGDRAIN_<NAME>`` from the environment,
else the named default below; then cross-checks whose messages name the field
and the fix.

Everything a ``dictConfig`` user writes is a plain string or number, so every
setting also accepts its string form ("200", "0.5", "true", "SIGTERM,SIGINT").
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError

ENV_PREFIX = "LOGDRAIN_"

OVERFLOW_POLICIES = ("drop_oldest", "drop_newest", "block")
FORMATS = ("json", "ndjson", "object")

# Named defaults (class-level constants a reader can find and cite).
DEFAULT_QUEUE_SIZE = 10_000
DEFAULT_BATCH_SIZE = 500
DEFAULT_BATCH_BYTES = 2 * 1024 * 1024
DEFAULT_MAX_RECORD_BYTES = 256 * 1024
DEFAULT_FLUSH_INTERVAL = 1.0
DEFAULT_CONCURRENCY = 2
DEFAULT_MAX_ATTEMPTS = 6
DEFAULT_MAX_RETRY_TIME = 60.0
DEFAULT_BACKOFF_INITIAL = 0.5
DEFAULT_BACKOFF_MAX = 30.0
DEFAULT_RETRY_AFTER_MAX = 60.0
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 10.0
DEFAULT_FLUSH_TIMEOUT = 5.0
DEFAULT_SHUTDOWN_TIMEOUT = 5.0
DEFAULT_CRASH_TIMEOUT = 3.0
DEFAULT_WARN_INTERVAL = 10.0
DEFAULT_BATCH_ID_HEADER = "X-Logdrain-Batch-Id"


def _mask_headers(headers: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{k!r}: '***'" for k in headers) + "}"


@dataclass(frozen=True)
class Settings:
    """Resolved, validated settings of one Drain. Build with :func:`resolve`."""

    url: str
    token: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    name: str = ""
    queue_size: int = DEFAULT_QUEUE_SIZE
    overflow: str = "drop_oldest"
    block_timeout: float = 1.0
    batch_size: int = DEFAULT_BATCH_SIZE
    batch_bytes: int = DEFAULT_BATCH_BYTES
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    flush_interval: float = DEFAULT_FLUSH_INTERVAL
    concurrency: int = DEFAULT_CONCURRENCY
    format: str = "json"
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_retry_time: float = DEFAULT_MAX_RETRY_TIME
    backoff_initial: float = DEFAULT_BACKOFF_INITIAL
    backoff_max: float = DEFAULT_BACKOFF_MAX
    retry_after_max: float = DEFAULT_RETRY_AFTER_MAX
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    flush_timeout: float = DEFAULT_FLUSH_TIMEOUT
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT
    crash_timeout: float = DEFAULT_CRASH_TIMEOUT
    capture_crashes: bool = True
    flush_on_signals: tuple[str, ...] = ()
    batch_id_header: str = DEFAULT_BATCH_ID_HEADER
    warn_interval: float = DEFAULT_WARN_INTERVAL

    def __repr__(self) -> str:
        shown = [f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if f.repr]
        shown.insert(1, f"token={'***' if self.token else None}")
        shown.insert(2, f"headers={_mask_headers(self.headers)}")
        return f"Settings({', '.join(shown)})"


# -- parsing ---------------------------------------------------------------------

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _as_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ConfigError(name, f"got a bool ({value!r})", "give a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip().replace("_", ""))
        except ValueError:
            pass
    raise ConfigError(name, f"{value!r} is not a whole number", "give an integer such as 500")


def _as_float(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ConfigError(name, f"got a bool ({value!r})", "give a number of seconds")
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise ConfigError(
                name, f"{value!r} is not a number", "give seconds as a number such as 2.5"
            ) from None
    else:
        raise ConfigError(name, f"{value!r} is not a number", "give seconds as a number")
    if not math.isfinite(result):
        raise ConfigError(name, f"{value!r} is not a finite number", "give a finite number")
    return result


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigError(name, f"{value!r} is not a boolean", "give true or false")


def _as_str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(name, f"expected a string, got {type(value).__name__}", "give a string")
    return value


def _as_opt_str(name: str, value: Any) -> str | None:
    if value is None:
        return None
    return _as_str(name, value) or None


def _as_headers(name: str, value: Any) -> Mapping[str, str]:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError:
            raise ConfigError(
                name, "not a JSON object", 'write it as {"X-Api-Key": "..."}'
            ) from None
    if not isinstance(value, Mapping):
        raise ConfigError(name, f"expected a mapping, got {type(value).__name__}", "give a dict")
    out: dict[str, str] = {}
    for key, val in value.items():
        if not isinstance(key, str) or not isinstance(val, str):
            raise ConfigError(
                name, f"header {key!r} must map a string to a string", "quote the value"
            )
        out[key] = val
    return out


def _as_signals(name: str, value: Any) -> tuple[str, ...]:
    if value is None or value is False:
        return ()
    if value is True:
        return ("SIGTERM",)
    items = value.split(",") if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in items:
        if isinstance(item, int):
            try:
                text = signal.Signals(item).name
            except ValueError:
                raise ConfigError(name, f"{item} is not a signal", "use e.g. 'SIGTERM'") from None
        else:
            text = str(item).strip().upper()
        if not text:
            continue
        if not text.startswith("SIG"):
            text = "SIG" + text
        if not hasattr(signal, text) or text.startswith("SIG_"):
            raise ConfigError(name, f"{item!r} is not a signal here", "use e.g. 'SIGTERM'")
        out.append(text)
    return tuple(dict.fromkeys(out))


_PARSERS: dict[str, Callable[[str, Any], Any]] = {}
for _f in dataclasses.fields(Settings):
    _type = str(_f.type)
    if _f.name == "headers":
        _PARSERS[_f.name] = _as_headers
    elif _f.name == "flush_on_signals":
        _PARSERS[_f.name] = _as_signals
    elif _type == "int":
        _PARSERS[_f.name] = _as_int
    elif _type == "float":
        _PARSERS[_f.name] = _as_float
    elif _type == "bool":
        _PARSERS[_f.name] = _as_bool
    elif _type == "str | None":
        _PARSERS[_f.name] = _as_opt_str
    else:
        _PARSERS[_f.name] = _as_str

SETTING_NAMES = frozenset(_PARSERS)


def env_name(name: str) -> str:
    """The environment variable that supplies setting ``name``."""
    return ENV_PREFIX + name.upper()


def resolve(explicit: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    """Build validated :class:`Settings` from explicit keywords and the environment.

    ``None`` as an explicit value means "not given" (falls back to the
    environment, then the default).
    """
    environ = os.environ if environ is None else environ
    unknown = [k for k in explicit if k not in SETTING_NAMES]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, sorted(SETTING_NAMES), n=1)
        fix = f"did you mean {close[0]!r}?" if close else "see the settings table in README.md"
        raise ConfigError(key, "unknown setting", fix)
    values: dict[str, Any] = {}
    for name, parse in _PARSERS.items():
        raw = explicit.get(name)
        if raw is None:
            raw = environ.get(env_name(name))
            if raw is None:
                continue
        values[name] = parse(name, raw)
    if "url" not in values:
        raise ConfigError(
            "url",
            "no collector URL given",
            f"pass url='https://collector.example/ingest' or set {env_name('url')}",
        )
    if values.get("format") == "object" and "batch_size" not in values:
        values["batch_size"] = 1
    settings = Settings(**values)
    _validate(settings)
    return settings


def _validate(s: Settings) -> None:
    parts = urlsplit(s.url)
    if parts.scheme not in ("http", "https"):
        raise ConfigError(
            "url",
            f"{s.url!r} has no http:// or https:// scheme",
            "write it as 'https://host:port/path'",
        )
    if not parts.hostname:
        raise ConfigError("url", f"{s.url!r} has no host", "write it as 'https://host:port/path'")
    if parts.username or parts.password:
        raise ConfigError(
            "url", "credentials inside the URL would leak into logs", "pass token= or headers="
        )
    for name in ("queue_size", "batch_size", "batch_bytes", "max_record_bytes", "concurrency"):
        if getattr(s, name) < 1:
            raise ConfigError(name, f"must be at least 1, got {getattr(s, name)}", "raise it")
    if s.max_attempts < 1:
        raise ConfigError(
            "max_attempts", f"must be at least 1, got {s.max_attempts}", "use 1 to never retry"
        )
    for name in (
        "flush_interval",
        "connect_timeout",
        "read_timeout",
        "backoff_max",
        "warn_interval",
    ):
        if getattr(s, name) <= 0:
            raise ConfigError(name, f"must be above 0, got {getattr(s, name)}", "give seconds > 0")
    for name in (
        "block_timeout",
        "max_retry_time",
        "backoff_initial",
        "retry_after_max",
        "flush_timeout",
        "shutdown_timeout",
        "crash_timeout",
    ):
        if getattr(s, name) < 0:
            raise ConfigError(
                name, f"must not be negative, got {getattr(s, name)}", "give seconds >= 0"
            )
    if s.batch_size > s.queue_size:
        raise ConfigError(
            "batch_size",
            f"{s.batch_size} is larger than queue_size {s.queue_size}",
            "lower batch_size or raise queue_size",
        )
    if s.max_record_bytes > s.batch_bytes:
        raise ConfigError(
            "max_record_bytes",
            f"{s.max_record_bytes} is larger than batch_bytes {s.batch_bytes}",
            "lower max_record_bytes or raise batch_bytes",
        )
    if s.max_record_bytes < 1024:
        raise ConfigError("max_record_bytes", "must be at least 1024", "raise it")
    if s.concurrency > 64:
        raise ConfigError("concurrency", f"{s.concurrency} is above 64", "use at most 64")
    if s.backoff_initial > s.backoff_max:
        raise ConfigError(
            "backoff_initial",
            f"{s.backoff_initial} is above backoff_max {s.backoff_max}",
            "lower backoff_initial or raise backoff_max",
        )
    if s.overflow not in OVERFLOW_POLICIES:
        raise ConfigError(
            "overflow",
            f"{s.overflow!r} is not a policy",
            f"use one of {', '.join(OVERFLOW_POLICIES)}",
        )
    if s.format not in FORMATS:
        raise ConfigError(
            "format", f"{s.format!r} is not a format", f"use one of {', '.join(FORMATS)}"
        )
    if s.format == "object" and s.batch_size != 1:
        raise ConfigError(
            "batch_size",
            f"format='object' sends one record per request but batch_size is {s.batch_size}",
            "set batch_size=1 or use format='json'",
        )
    if not s.batch_id_header.strip() or any(c in s.batch_id_header for c in ":\r\n "):
        raise ConfigError(
            "batch_id_header",
            f"{s.batch_id_header!r} is not a header name",
            "use e.g. 'X-Batch-Id'",
        )
