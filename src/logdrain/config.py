"""Settings: explicit argument, else ``LOGDRAIN_<NAME>`` from the environment,
else the named default below; then cross-checks whose messages name the field
and the fix.

Everything a ``dictConfig`` user writes is a plain string or number, so every
setting also accepts its string form ("200", "0.5", "true", "SIGTERM,SIGINT").
"""

from __future__ import annotations

import base64
import dataclasses
import difflib
import importlib
import json
import math
import os
import signal
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .errors import ConfigError

ENV_PREFIX = "LOGDRAIN_"

OVERFLOW_POLICIES = ("drop_oldest", "drop_newest", "block")
TRUST_MODES = ("", "default", "system", "windows")
CA_MODES = ("add", "replace")
FORMATS = ("json", "ndjson", "object")
JSON_ENCODERS = ("auto", "orjson", "stdlib")

# Named defaults (class-level constants a reader can find and cite).
DEFAULT_QUEUE_SIZE = 10_000
DEFAULT_BATCH_SIZE = 2000  # fewer requests: each costs the process ~1 ms of GIL time
DEFAULT_BATCH_BYTES = 2 * 1024 * 1024
DEFAULT_MAX_RECORD_BYTES = 256 * 1024
DEFAULT_FLUSH_INTERVAL = 1.0
DEFAULT_CONCURRENCY = 4  # more requests overlap while the app holds the GIL
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
    json_encoder: str = "auto"
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
    # -- corporate networks: proxy, trust, auth (see trust.py for precedence) --
    proxy: str | None = field(default=None, repr=False)
    no_proxy: str | None = None
    trust_env: bool = True
    trust: str = ""
    ca_bundle: str | None = None
    ca_mode: str = "add"
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)
    client_cert: tuple[str, str | None] | None = None
    insecure: bool = False
    auth: Any = field(default=None, repr=False)
    token_provider: Callable[[], str] | None = field(default=None, repr=False)
    # -- payload shaping for picky collectors --
    fields: tuple[str, ...] = ()
    rename: Mapping[str, str] = field(default_factory=dict)
    envelope: Mapping[str, Any] = field(default_factory=dict)
    envelope_required: tuple[str, ...] = ()
    record_key: str | None = None
    record_as_string: bool = False

    def __repr__(self) -> str:
        shown = [f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if f.repr]
        shown.insert(1, f"token={'***' if self.token else None}")
        shown.insert(2, f"headers={_mask_headers(self.headers)}")
        shown.append(f"proxy={mask_url(self.proxy) if self.proxy else None!r}")
        shown.append(f"auth={'***' if self.auth is not None else None}")
        shown.append(f"token_provider={'<callable>' if self.token_provider else None}")
        shown.append(f"ssl_context={'<SSLContext>' if self.ssl_context else None}")
        return f"Settings({', '.join(shown)})"

    def secrets(self, proxy: str | None = None) -> list[str]:
        """Values that must never appear in any output (see ``report.Reporter.redact``).

        ``proxy``: the proxy actually used (it may come from the environment)."""
        found = [self.token or "", *self.headers.values()]
        for url in {self.proxy, proxy}:
            parts = urlsplit(url or "")
            if parts.password:
                found += [parts.password, _basic(parts.username or "", parts.password)]
        user, password = None, None
        if isinstance(self.auth, tuple):
            user, password = self.auth
        elif isinstance(getattr(self.auth, "password", None), str):
            user, password = getattr(self.auth, "username", ""), self.auth.password
        if password:
            found += [password, _basic(str(user or ""), password)]
        return [value for value in found if len(value) >= 3]


def _basic(user: str, password: str) -> str:
    """The base64 form a Basic Authorization header carries."""
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def mask_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


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


def _as_names(name: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    if not all(isinstance(i, str) for i in items):
        raise ConfigError(name, "expected names (strings)", 'give e.g. ["message", "level"]')
    return tuple(i.strip() for i in items if i.strip())


def _as_mapping(name: str, value: Any) -> Mapping[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError:
            raise ConfigError(name, "not a JSON object", 'write it as {"key": "value"}') from None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigError(name, "expected a mapping with string keys", 'give e.g. {"key": "value"}')
    return dict(value)


def _as_rename(name: str, value: Any) -> Mapping[str, str]:
    mapping = _as_mapping(name, value)
    for key, new in mapping.items():
        if not isinstance(new, str) or not new:
            raise ConfigError(name, f"{key!r} must be renamed to a non-empty string", "fix it")
    return mapping


def _as_proxy(name: str, value: Any) -> str | None:
    text = _as_opt_str(name, value)
    if text is None:
        return None
    parts = urlsplit(text)
    try:
        valid = (
            parts.scheme in ("http", "https")
            and bool(parts.hostname)
            and (parts.port is None or parts.port > 0)  # raises ValueError on a bad port
            and "@" not in parts.path + parts.query + parts.fragment  # a mangled password
        )
    except ValueError:
        valid = False
    if not valid:
        raise ConfigError(
            name,
            f"{_mask_userinfo(text)!r} is not a proxy URL",
            "write it as 'http://user:pass@host:3128' (percent-encode / ? # @ in the password)",
        )
    return text


def _mask_userinfo(text: str) -> str:
    """``text`` with everything before its last ``@`` (after any scheme) as ``***``:
    safe to show even when the URL is too malformed for :func:`mask_url`."""
    if "@" not in text:
        return text
    scheme, sep, _ = text.partition("://")
    return f"{scheme + sep if sep else ''}***@{text.rpartition('@')[2]}"


def _as_no_proxy(name: str, value: Any) -> str | None:
    if value is None:
        return None
    return ",".join(_as_names(name, value)) if not isinstance(value, str) else value


def _as_existing_file(name: str, value: Any) -> str | None:
    text = _as_opt_str(name, value)
    if text is not None and not os.path.exists(text):
        raise ConfigError(name, f"{text!r} does not exist", "give the path of a PEM file")
    return text


def _as_client_cert(name: str, value: Any) -> tuple[str, str | None] | None:
    if value is None:
        return None
    if isinstance(value, str):
        items: list[Any] = [v.strip() for v in value.split(",")]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ConfigError(
            name, "expected a path or a (cert, key) pair", 'give ("cert.pem", "key.pem")'
        )
    if not 1 <= len(items) <= 2 or not all(isinstance(i, str) and i for i in items):
        raise ConfigError(
            name, "expected a path or a (cert, key) pair", 'give ("cert.pem", "key.pem")'
        )
    for path in items:
        if not os.path.exists(path):
            raise ConfigError(name, f"{path!r} does not exist", "give the path of a PEM file")
    return (items[0], items[1] if len(items) == 2 else None)


def _as_ssl_context(name: str, value: Any) -> ssl.SSLContext | None:
    if value is None or isinstance(value, ssl.SSLContext):
        return value
    raise ConfigError(name, f"expected an ssl.SSLContext, got {type(value).__name__}", "pass one")


def _as_auth(name: str, value: Any) -> Any:
    if value is None or callable(value):
        return value
    if (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, str) for v in value)
    ):
        return (value[0], value[1])
    raise ConfigError(
        name, "expected a requests auth object or a (user, password) pair", "pass one"
    )


def _as_callable(name: str, value: Any) -> Any:
    if value is None or callable(value):
        return value
    if isinstance(value, str) and ":" in value:
        module, _, attr = value.partition(":")
        try:
            found = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                name, f"cannot import {value!r} ({exc})", "give 'module:function'"
            ) from None
        if callable(found):
            return found
    raise ConfigError(
        name, "expected a callable returning a token", "give a function or 'module:function'"
    )


_SPECIAL: dict[str, Callable[[str, Any], Any]] = {
    "headers": _as_headers,
    "flush_on_signals": _as_signals,
    "proxy": _as_proxy,
    "no_proxy": _as_no_proxy,
    "ca_bundle": _as_existing_file,
    "client_cert": _as_client_cert,
    "ssl_context": _as_ssl_context,
    "auth": _as_auth,
    "token_provider": _as_callable,
    "fields": _as_names,
    "envelope_required": _as_names,
    "rename": _as_rename,
    "envelope": _as_mapping,
}
# Settings that only make sense as objects are never read from the environment.
_NOT_FROM_ENV = frozenset({"ssl_context", "auth", "token_provider"})

_PARSERS: dict[str, Callable[[str, Any], Any]] = {}
for _f in dataclasses.fields(Settings):
    _type = str(_f.type)
    if _f.name in _SPECIAL:
        _PARSERS[_f.name] = _SPECIAL[_f.name]
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
            raw = None if name in _NOT_FROM_ENV else environ.get(env_name(name))
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
    elif (
        "batch_size" not in values
        and values.get("queue_size", DEFAULT_BATCH_SIZE) < DEFAULT_BATCH_SIZE
    ):
        values["batch_size"] = values["queue_size"]  # a small queue alone is a valid request
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
    if s.max_record_bytes >= s.batch_bytes:
        raise ConfigError(
            "max_record_bytes",
            f"{s.max_record_bytes} is not below batch_bytes {s.batch_bytes} (a body adds framing)",
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
    if s.json_encoder not in JSON_ENCODERS:
        raise ConfigError(
            "json_encoder",
            f"{s.json_encoder!r} is not an encoder",
            f"use one of {', '.join(JSON_ENCODERS)}",
        )
    if s.json_encoder == "orjson" and not _importable("orjson"):
        raise ConfigError(
            "json_encoder",
            "'orjson' is not installed",
            "pip install 'logdrain[orjson]', or use json_encoder='auto' or 'stdlib'",
        )
    if s.format == "object" and s.batch_size != 1:
        raise ConfigError(
            "batch_size",
            f"format='object' sends one record per request but batch_size is {s.batch_size}",
            "set batch_size=1 or use format='json'",
        )
    _validate_network(s)
    _validate_shaping(s)
    if not s.batch_id_header.strip() or any(c in s.batch_id_header for c in ":\r\n "):
        raise ConfigError(
            "batch_id_header",
            f"{s.batch_id_header!r} is not a header name",
            "use e.g. 'X-Batch-Id'",
        )


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _validate_network(s: Settings) -> None:
    if s.trust not in TRUST_MODES:
        raise ConfigError(
            "trust", f"{s.trust!r} is not a trust mode", "use 'default', 'system' or 'windows'"
        )
    if s.ca_mode not in CA_MODES:
        raise ConfigError("ca_mode", f"{s.ca_mode!r} is not a mode", "use 'add' or 'replace'")
    if s.ca_mode == "replace" and s.trust in ("system", "windows"):
        raise ConfigError(
            "ca_mode",
            f"'replace' replaces certifi's roots, not trust={s.trust!r}",
            "drop trust to use only the bundle, or use ca_mode='add'",
        )
    if s.ca_mode == "replace" and not s.ca_bundle:
        raise ConfigError(
            "ca_mode", "'replace' needs a bundle to replace the roots with", "set ca_bundle"
        )
    if s.insecure and (s.ca_bundle or s.ssl_context is not None or s.trust):
        raise ConfigError(
            "insecure",
            "turns verification off, yet trust settings are given",
            "drop one or the other",
        )
    if s.ssl_context is not None and (s.ca_bundle or s.trust or s.client_cert):
        raise ConfigError(
            "ssl_context",
            "given together with ca_bundle/trust/client_cert",
            "load CAs and client certificates into your SSLContext, or drop ssl_context",
        )
    if s.token and s.token_provider is not None:
        raise ConfigError("token_provider", "given together with token", "use one of them")
    if s.token and s.auth is not None:
        raise ConfigError("auth", "given together with token (both set Authorization)", "use one")
    if s.token_provider is not None and s.auth is not None:
        raise ConfigError(
            "auth", "given together with token_provider (both set Authorization)", "use one"
        )


def _validate_shaping(s: Settings) -> None:
    for key in (*s.envelope_required, *s.envelope):
        value = s.envelope.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ConfigError(
                "envelope",
                f"{key!r} is {'missing' if key not in s.envelope else 'empty'}",
                f"give it a value, e.g. envelope={{{key!r}: 'team-a'}} (or {env_name('envelope')})",
            )
    if s.record_as_string and not s.record_key:
        raise ConfigError(
            "record_as_string",
            "needs record_key to name the field holding the string",
            "set record_key",
        )
    if s.record_key and s.record_key in s.envelope:
        raise ConfigError("record_key", f"{s.record_key!r} is also an envelope key", "rename one")
    targets = list(s.rename.values())
    if len(set(targets)) != len(targets):
        raise ConfigError(
            "rename", "two fields are renamed to the same name", "make targets unique"
        )
