"""Cross-checks on resolved :class:`Settings` (messages name the field and the
fix), and the plain-HTTP warning a Drain prints once at construction."""

from __future__ import annotations

import difflib
import importlib
import ipaddress
import os
from urllib.parse import urlsplit

from ..context import CONVENTIONS, INCLUDABLE
from ..errors import ConfigError
from .checks import check_header_name
from .settings import (
    BUFFER_RECORDS,
    CA_MODES,
    COMPRESSIONS,
    FORMATS,
    JSON_ENCODERS,
    MIN_FLUSH_INTERVAL,
    OVERFLOW_POLICIES,
    TRUST_MODES,
    Settings,
    env_name,
)

# Headers logdrain or HTTP itself sets: a batch id header must not replace one.
RESERVED_HEADERS = frozenset(
    {
        "content-length",
        "content-type",
        "content-encoding",
        "transfer-encoding",
        "authorization",
        "proxy-authorization",
        "host",
        "connection",
        "user-agent",
        "accept-encoding",
        "te",
        "trailer",
        "upgrade",
        "expect",
    }
)


def validate(s: Settings) -> None:
    for name in ("queue_size", "batch_size", "batch_bytes", "max_record_bytes", "concurrency"):
        if getattr(s, name) < 1:
            raise ConfigError(name, f"must be at least 1, got {getattr(s, name)}", "raise it")
    if s.max_attempts < 1:
        raise ConfigError(
            "max_attempts", f"must be at least 1, got {s.max_attempts}", "use 1 to never retry"
        )
    if s.flush_interval < MIN_FLUSH_INTERVAL:
        raise ConfigError(
            "flush_interval",
            f"must be at least {MIN_FLUSH_INTERVAL} s, got {s.flush_interval} "
            "(an idle drain would wake this often and burn a core)",
            f"give seconds >= {MIN_FLUSH_INTERVAL}; call flush() to send at once",
        )
    for name in (
        "connect_timeout",
        "read_timeout",
        "request_timeout",
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
    if s.max_buffer_bytes < 1:
        raise ConfigError(
            "max_buffer_bytes",
            f"must be above 0, got {s.max_buffer_bytes} (the bytes a drain may hold)",
            "give a size such as '64MiB' (the default)",
        )
    if s.max_buffer_bytes < BUFFER_RECORDS * s.max_record_bytes:
        raise ConfigError(
            "max_buffer_bytes",
            f"{s.max_buffer_bytes} holds fewer than {BUFFER_RECORDS} records of max_record_bytes "
            f"{s.max_record_bytes} (a record that size could then be refused while the "
            "collector is up)",
            f"raise max_buffer_bytes to at least {BUFFER_RECORDS * s.max_record_bytes}, "
            "or lower max_record_bytes",
        )
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
    if s.compress.strip().lower() not in COMPRESSIONS:
        raise ConfigError(
            "compress", f"{s.compress!r} is not a compression", "use 'gzip', or leave it out"
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
    if s.preset.requires_token and not (s.token or s.token_provider or s.auth or s.headers):
        raise ConfigError(
            "token",
            f"preset {s.preset.name!r} needs one (its collector refuses every request without)",
            f"pass token=... or token_provider=, or set {env_name('token')}",
        )
    if s.preset.one_per_request and s.batch_size != 1:
        raise ConfigError(
            "batch_size",
            f"preset {s.preset.name!r} sends one record per request but batch_size is "
            f"{s.batch_size}",
            "set batch_size=1 or use preset='json'",
        )
    _validate_network(s)
    _validate_shaping(s)
    _validate_dead_letter(s)
    _validate_spool(s)
    _validate_context(s)
    check_header_name("batch_id_header", s.batch_id_header, "X-Batch-Id")
    if s.batch_id_header.lower() in RESERVED_HEADERS:
        raise ConfigError(
            "batch_id_header",
            f"{s.batch_id_header!r} is a header logdrain or HTTP sets itself",
            "use a header of your own, e.g. 'X-Batch-Id'",
        )


#: The dead-letter file's smallest cap: four parts of a few entries each.
MIN_DEAD_LETTER_BYTES = 4096


def _validate_dead_letter(s: Settings) -> None:
    if s.dead_letter_max_bytes < MIN_DEAD_LETTER_BYTES:
        raise ConfigError(
            "dead_letter_max_bytes",
            f"{s.dead_letter_max_bytes} is below {MIN_DEAD_LETTER_BYTES}",
            "give a size such as '64MiB' (the default)",
        )
    if s.dead_letter is None:
        if s.dead_letter_on_close:
            raise ConfigError(
                "dead_letter_on_close",
                "is on without a dead-letter file",
                "set dead_letter='path/dead-letter.jsonl' too, or leave dead_letter_on_close off",
            )
        return
    path = os.path.abspath(os.path.expanduser(s.dead_letter))
    parent = os.path.dirname(path)
    if os.path.isdir(path):
        raise ConfigError(
            "dead_letter",
            f"{s.dead_letter!r} is a directory",
            f"give a file path in it, e.g. {os.path.join(s.dead_letter, 'dead-letter.jsonl')!r}",
        )
    _check_writable_dir("dead_letter", parent, "create it, or give a path in an existing directory")


#: ``spool.MIN_BYTES`` and ``spool.FSYNC``'s names (not imported: sqlite3 loads only
#: with a spool; tests/test_spool_drain.py checks they agree).
MIN_SPOOL_BYTES = 1 << 20
SPOOL_FSYNC = ("off", "normal", "full")


def _validate_spool(s: Settings) -> None:
    if s.spool_max_bytes < MIN_SPOOL_BYTES:
        raise ConfigError(
            "spool_max_bytes",
            f"{s.spool_max_bytes} is below {MIN_SPOOL_BYTES} (1 MiB)",
            "give a size such as '256MiB' (the default)",
        )
    if s.spool_fsync not in SPOOL_FSYNC:
        raise ConfigError(
            "spool_fsync",
            f"{s.spool_fsync!r} is not a policy",
            f"use one of {', '.join(map(repr, SPOOL_FSYNC))}",
        )
    if s.spool_dir is None:
        return
    path = os.path.abspath(os.path.expanduser(s.spool_dir))
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(
            "spool_dir", f"{s.spool_dir!r} is not a directory", "give a directory path"
        )
    where = path if os.path.isdir(path) else os.path.dirname(path)
    _check_writable_dir(
        "spool_dir",
        where,
        "create it, or give a directory in an existing one (the spool directory "
        "itself is created 0700 when missing)",
    )


def _check_writable_dir(name: str, directory: str, create_fix: str) -> None:
    """A ConfigError on ``name`` unless ``directory`` exists and this process may write it."""
    if not os.path.isdir(directory):
        raise ConfigError(name, f"the directory {directory!r} does not exist", create_fix)
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigError(
            name,
            f"the directory {directory!r} is not writable by this process",
            "give a path in a directory this process may write",
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


def _validate_context(s: Settings) -> None:
    for name in s.include:
        if name not in INCLUDABLE:
            close = difflib.get_close_matches(name, INCLUDABLE, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                "include",
                f"{name!r} is not a record attribute logdrain can include",
                f"{hint}use some of {', '.join(INCLUDABLE)}",
            )
    if s.naming not in CONVENTIONS:
        raise ConfigError(
            "naming",
            f"{s.naming!r} is not a naming convention",
            f"use one of {', '.join(CONVENTIONS)}, or leave it out for the preset's own",
        )


# -- plain HTTP ------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 (also IPv4-mapped) and ``localhost``."""
    host = host.strip("[]").partition("%")[0].rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


def plain_http_secret_warning(s: Settings, proxy: str | None = None) -> str | None:
    """One stderr line when credentials would cross a network in clear text, else None.

    That is: the collector URL is ``http://`` and a token, ``token_provider``,
    ``auth`` or header value is set, and the request leaves the machine (the
    collector is not loopback, or ``proxy``, the proxy actually used, is not).
    A warning, not a refusal: ``http://`` inside a private network keeps working.
    The line names what is sent, never its value."""
    parts = urlsplit(s.url)
    if parts.scheme != "http":
        return None
    sent = []
    if s.token:
        sent.append("the token")
    if s.token_provider is not None:
        sent.append("token_provider's tokens")
    if s.auth is not None:
        sent.append("auth credentials")
    if s.headers:
        sent.append(f"header(s) {', '.join(sorted(s.headers))}")
    if not sent:
        return None
    host = parts.hostname or ""
    proxy_host = urlsplit(proxy).hostname or "" if proxy else ""
    if is_loopback(host) and (not proxy or is_loopback(proxy_host)):
        return None
    via = f" (through proxy {proxy_host})" if proxy else ""
    return (
        f"logdrain[{s.name}]: WARNING: {' and '.join(sent)} will be sent to {host} over "
        f"plain http://{via}: anyone on the network path can read them; use https://"
    )
