"""The :class:`Settings` value, its named defaults, and the masking that keeps
its secrets out of reprs and messages."""

from __future__ import annotations

import base64
import dataclasses
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from ..redact import DEFAULT_KEYS as DEFAULT_REDACT_KEYS

ENV_PREFIX = "LOGDRAIN_"

OVERFLOW_POLICIES = ("drop_oldest", "drop_newest", "block")
TRUST_MODES = ("", "default", "system", "windows")
CA_MODES = ("add", "replace")
FORMATS = ("json", "ndjson", "object")
JSON_ENCODERS = ("auto", "orjson", "stdlib")
COMPRESSIONS = ("", "none", "gzip")

# Named defaults (class-level constants a reader can find and cite).
DEFAULT_QUEUE_SIZE = 10_000
DEFAULT_BATCH_SIZE = 2000  # fewer requests: each costs the process ~1 ms of GIL time
DEFAULT_BATCH_BYTES = 2 * 1024 * 1024
DEFAULT_MAX_RECORD_BYTES = 256 * 1024
DEFAULT_MAX_BUFFER_BYTES = 64 * 1024 * 1024  # everything one Drain holds: queue + in flight
#: max_buffer_bytes must hold this many of the largest records (see validate).
BUFFER_RECORDS = 4
DEFAULT_FLUSH_INTERVAL = 1.0
MIN_FLUSH_INTERVAL = 0.01  # an idle drain wakes at most 100 times a second
DEFAULT_CONCURRENCY = 4  # more requests overlap while the app holds the GIL
DEFAULT_MAX_ATTEMPTS = 6
DEFAULT_MAX_RETRY_TIME = 60.0
DEFAULT_BACKOFF_INITIAL = 0.5
DEFAULT_BACKOFF_MAX = 30.0
DEFAULT_RETRY_AFTER_MAX = 60.0
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 10.0
DEFAULT_REQUEST_TIMEOUT = 30.0  # total deadline of one attempt: connect + send + answer
DEFAULT_FLUSH_TIMEOUT = 5.0
DEFAULT_SHUTDOWN_TIMEOUT = 5.0
DEFAULT_CRASH_TIMEOUT = 3.0
DEFAULT_WARN_INTERVAL = 10.0
DEFAULT_BATCH_ID_HEADER = "X-Logdrain-Batch-Id"
DEFAULT_DEAD_LETTER_MAX_BYTES = 64 * 1024 * 1024  # every part of the dead-letter file
DEFAULT_SPOOL_MAX_BYTES = 256 * 1024 * 1024  # the whole spool directory, every process's parts

MASK = "***"


def env_name(name: str) -> str:
    """The environment variable that supplies setting ``name``."""
    return ENV_PREFIX + name.upper()


def _mask_headers(headers: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{k!r}: '***'" for k in headers) + "}"


@dataclass(frozen=True)
class Settings:
    """Resolved, validated settings of one Drain. Build with :func:`resolve`."""

    url: str = field(repr=False)
    token: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    name: str = ""
    queue_size: int = DEFAULT_QUEUE_SIZE
    overflow: str = "drop_oldest"
    block_timeout: float = 1.0
    batch_size: int = DEFAULT_BATCH_SIZE
    batch_bytes: int = DEFAULT_BATCH_BYTES
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    max_buffer_bytes: int = DEFAULT_MAX_BUFFER_BYTES
    flush_interval: float = DEFAULT_FLUSH_INTERVAL
    concurrency: int = DEFAULT_CONCURRENCY
    format: str = "json"
    preset: Any = field(default=None, repr=False)  # a presets.Preset once resolved
    options: Mapping[str, Any] = field(default_factory=dict)  # the preset's own settings
    json_encoder: str = "auto"
    compress: str = ""  # "gzip": Content-Encoding: gzip request bodies
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_retry_time: float = DEFAULT_MAX_RETRY_TIME
    backoff_initial: float = DEFAULT_BACKOFF_INITIAL
    backoff_max: float = DEFAULT_BACKOFF_MAX
    retry_after_max: float = DEFAULT_RETRY_AFTER_MAX
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
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
    # -- what is not sent now: expiry and the dead-letter file (docs/durability.md) --
    max_age: float = 0.0  # seconds; a record older than this when taken is not sent (0: off)
    dead_letter: str | None = None  # path of the dead-letter file (None: none)
    dead_letter_max_bytes: int = DEFAULT_DEAD_LETTER_MAX_BYTES
    dead_letter_on_close: bool = False  # also records the close deadline leaves unsent
    # -- the disk spool (docs/durability.md): records not acknowledged within about 1 s --
    spool_dir: str | None = None  # directory of the spool (None: no spool)
    spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES
    spool_fsync: str = "off"  # "off" | "normal" | "full" (SQLite's synchronous)
    # -- context on every record (see docs/context.md) --
    include: tuple[str, ...] = ()  # LogRecord attributes added to the document
    #: Keys whose values are masked wherever they appear in a record (see redact.py).
    redact_keys: tuple[str, ...] = DEFAULT_REDACT_KEYS
    naming: str = ""  # "" until resolved: the preset's convention
    context: bool = True  # merge logdrain's and structlog's context variables
    trace: bool = True  # OpenTelemetry trace and span ids, when a span is recording

    def __repr__(self) -> str:
        shown = [f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if f.repr]
        shown.insert(0, f"url={self.shown_url()!r}")
        shown.insert(1, f"token={'***' if self.token else None}")
        shown.insert(2, f"headers={_mask_headers(self.headers)}")
        shown.append(f"preset={getattr(self.preset, 'name', None)!r}")
        shown.append(f"proxy={mask_url(self.proxy) if self.proxy else None!r}")
        shown.append(f"auth={'***' if self.auth is not None else None}")
        shown.append(f"token_provider={'<callable>' if self.token_provider else None}")
        shown.append(f"ssl_context={'<SSLContext>' if self.ssl_context else None}")
        return f"Settings({', '.join(shown)})"

    def shown_url(self) -> str:
        """The URL as it may be shown: credentials and query values masked,
        and only ``scheme://host/***`` when the preset says the whole URL is
        a secret (a Slack webhook)."""
        if getattr(self.preset, "secret_url", False):
            try:
                parts = urlsplit(self.url)
                return f"{parts.scheme}://{parts.hostname or ''}/{MASK}"
            except ValueError:
                return MASK
        return mask_url(self.url)

    def secrets(self, proxy: str | None = None) -> list[str]:
        """Values that must never appear in any output (see ``report.Reporter.redact``,
        which also catches their escaped, encoded and quoted forms).

        ``proxy``: the proxy actually used (it may come from the environment)."""
        found = [self.token or "", *self.headers.values(), *query_values(self.url)]
        if getattr(self.preset, "secret_url", False):
            found += _url_secrets(self.url)
        for url in {self.proxy, proxy}:
            found += query_values(url or "")
            try:
                parts = urlsplit(url or "")
                user, password = parts.username, parts.password
            except ValueError:
                continue
            if password:
                found += [password, unquote_plus(password), _basic(user or "", password)]
                found.append(_basic(unquote_plus(user or ""), unquote_plus(password)))
        user, password = None, None
        if isinstance(self.auth, tuple):
            user, password = self.auth
        elif isinstance(getattr(self.auth, "password", None), str):
            user, password = getattr(self.auth, "username", ""), self.auth.password
        if password:
            found += [password, _basic(str(user or ""), password)]
        return list(dict.fromkeys(value for value in found if len(value) >= 3))


def _basic(user: str, password: str) -> str:
    """The base64 form a Basic Authorization header carries."""
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def query_values(url: str) -> list[str]:
    """The values of ``url``'s query string, as written and decoded: an API key
    in ``?api_key=...`` is a secret like a token."""
    _, _, rest = url.partition("?")
    query = rest.partition("#")[0]
    out: list[str] = []
    for piece in query.replace(";", "&").split("&"):
        key, eq, value = piece.partition("=")
        raw = value if eq else key
        if raw:
            out += [raw, unquote_plus(raw)]
    return out


def _mask_query(query: str) -> str:
    pieces = []
    for piece in query.split("&"):
        key, eq, value = piece.partition("=")
        pieces.append(f"{key}={MASK if value else ''}" if eq else (MASK if piece else ""))
    return "&".join(pieces)


def _url_secrets(url: str) -> list[str]:
    """A secret URL's forms: whole, its path, and every long path segment
    (the part of a webhook that is the credential)."""
    found = [url, url.rstrip("/")]
    try:
        parts = urlsplit(url)
    except ValueError:
        return found
    found.append(parts.path)
    # The credential parts: long segments, leaving plain words ("services") alone.
    found += [
        segment
        for segment in parts.path.split("/")
        if len(segment) >= 8 and not (segment.isalpha() and segment.islower())
    ]
    return found


def mask_url(url: str) -> str:
    """``url`` with its password (if any) and its query values replaced by ``***``.

    Safe on a malformed URL too (everything before the last ``@`` is masked then)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return mask_text_url(url)
    netloc = parts.netloc
    if parts.password is not None:
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        if port is not None:
            host = f"{host}:{port}"
        netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit(parts._replace(netloc=netloc, query=_mask_query(parts.query)))


def mask_text_url(text: str) -> str:
    """``text`` with everything before its last ``@`` (after any scheme) and every
    query value as ``***``: safe to show even when the URL is too malformed to parse."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    if "@" in rest:
        rest = f"***@{rest.rpartition('@')[2]}"
    head, qmark, query = rest.partition("?")
    if qmark:
        query, hash_, fragment = query.partition("#")
        head += f"?{_mask_query(query)}{hash_}{fragment}"
    return f"{scheme}{sep}{head}"
