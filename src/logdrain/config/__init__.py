"""Settings: explicit argument, else ``LOGDRAIN_<NAME>`` from the environment,
else the named default; then cross-checks whose messages name the field and
the fix. Every wrong setting fails here, at construction, never at the first
batch; no message echoes a secret.

Everything a ``dictConfig`` user writes is a plain string or number, so every
setting also accepts its string form ("200", "0.5", "true", "SIGTERM,SIGINT").

Modules: ``settings`` (the value, defaults, masking, secrets), ``parse`` (one
parser per setting), ``files`` (PEM files loaded at construction),
``validate`` (cross-checks, the plain-HTTP warning).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError
from ..presets import PRESETS
from .checks import header_value_problem, url_problem
from .files import check_ca_file, check_client_cert, load_client_cert
from .parse import UNCATCHABLE_SIGNALS
from .parsers import NOT_FROM_ENV, PARSERS
from .settings import (
    BUFFER_RECORDS,
    CA_MODES,
    DEFAULT_BACKOFF_INITIAL,
    DEFAULT_BACKOFF_MAX,
    DEFAULT_BATCH_BYTES,
    DEFAULT_BATCH_ID_HEADER,
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONCURRENCY,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_CRASH_TIMEOUT,
    DEFAULT_FLUSH_INTERVAL,
    DEFAULT_FLUSH_TIMEOUT,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_BUFFER_BYTES,
    DEFAULT_MAX_RECORD_BYTES,
    DEFAULT_MAX_RETRY_TIME,
    DEFAULT_QUEUE_SIZE,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_RETRY_AFTER_MAX,
    DEFAULT_SHUTDOWN_TIMEOUT,
    DEFAULT_WARN_INTERVAL,
    ENV_PREFIX,
    FORMATS,
    JSON_ENCODERS,
    MIN_FLUSH_INTERVAL,
    OVERFLOW_POLICIES,
    TRUST_MODES,
    Settings,
    env_name,
    mask_text_url,
    mask_url,
    query_values,
)
from .validate import RESERVED_HEADERS, is_loopback, plain_http_secret_warning, validate

__all__ = [
    "BUFFER_RECORDS",
    "CA_MODES",
    "DEFAULT_BACKOFF_INITIAL",
    "DEFAULT_BACKOFF_MAX",
    "DEFAULT_BATCH_BYTES",
    "DEFAULT_BATCH_ID_HEADER",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_CRASH_TIMEOUT",
    "DEFAULT_FLUSH_INTERVAL",
    "DEFAULT_FLUSH_TIMEOUT",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_BUFFER_BYTES",
    "DEFAULT_MAX_RECORD_BYTES",
    "DEFAULT_MAX_RETRY_TIME",
    "DEFAULT_QUEUE_SIZE",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_REQUEST_TIMEOUT",
    "DEFAULT_RETRY_AFTER_MAX",
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "DEFAULT_WARN_INTERVAL",
    "ENV_PREFIX",
    "FORMATS",
    "JSON_ENCODERS",
    "MIN_FLUSH_INTERVAL",
    "OVERFLOW_POLICIES",
    "RESERVED_HEADERS",
    "SETTING_NAMES",
    "TRUST_MODES",
    "UNCATCHABLE_SIGNALS",
    "Settings",
    "check_ca_file",
    "check_client_cert",
    "env_name",
    "header_value_problem",
    "is_loopback",
    "load_client_cert",
    "mask_text_url",
    "mask_url",
    "plain_http_secret_warning",
    "query_values",
    "resolve",
    "url_problem",
]

SETTING_NAMES = frozenset(PARSERS)


def resolve(explicit: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    """Build validated :class:`Settings` from explicit keywords and the environment.

    ``None`` as an explicit value means "not given" (falls back to the
    environment, then the default).
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    bad_url: ConfigError | None = None
    for name, parse in PARSERS.items():
        raw = explicit.get(name)
        if raw is None:
            raw = None if name in NOT_FROM_ENV else environ.get(env_name(name))
            if raw is None:
                continue
        try:
            values[name] = parse(name, raw)
        except ConfigError as exc:
            if name != "url":
                raise
            bad_url = exc  # raised once the preset says whether the URL is a secret
    given = set(values)  # what the user set, before the preset's defaults
    _choose_preset(values)
    if bad_url is not None:
        if values["preset"].secret_url:
            raise ConfigError(
                "url", "not a valid webhook URL (not shown: it is a secret)", bad_url.fix
            ) from None
        raise bad_url
    preset = values["preset"]
    options = _preset_options(preset, explicit, environ)
    _ecosystem(preset, values, options, environ, given)
    values["options"] = options
    if not values.get("naming"):  # the preset's own convention unless one is picked
        values["naming"] = getattr(preset, "naming", "plain")
    if values.get("url") is None:
        values["url"] = _derived_url(preset, options)
    try:
        path = preset.path(options) if callable(preset.path) else preset.path
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            "preset", f"preset {preset.name!r} cannot build its path: {exc}", "set its options"
        ) from None
    if path and urlsplit(values["url"]).path in ("", "/"):
        values["url"] = values["url"].rstrip("/") + path
    if (
        "batch_size" not in given
        and "queue_size" in values
        and values["queue_size"] < values.get("batch_size", DEFAULT_BATCH_SIZE)
    ):
        values["batch_size"] = values["queue_size"]  # a small queue alone is a valid request
    if (
        "max_record_bytes" not in given
        and "batch_bytes" in given
        and values.get("max_record_bytes", DEFAULT_MAX_RECORD_BYTES) >= values["batch_bytes"]
    ):  # a small batch_bytes alone is a valid request too
        values["max_record_bytes"] = max(1024, values["batch_bytes"] // 2)
    if (
        "max_record_bytes" not in given
        and "max_buffer_bytes" in given
        and values.get("max_record_bytes", DEFAULT_MAX_RECORD_BYTES) * BUFFER_RECORDS
        > values["max_buffer_bytes"]
    ):  # and so is a small max_buffer_bytes: records are shortened to fit it
        values["max_record_bytes"] = max(1024, values["max_buffer_bytes"] // BUFFER_RECORDS)
    settings = Settings(**values)
    validate(settings)
    return settings


def _derived_url(preset: Any, options: Mapping[str, Any]) -> str:
    """The preset's URL from its options (Datadog's ``site``), else a
    ConfigError asking for one."""
    try:
        derived = preset.url(options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            "url", f"preset {preset.name!r} cannot derive it: {exc}", "pass url="
        ) from None
    if derived is None:
        raise ConfigError(
            "url",
            "no collector URL given",
            f"pass url='https://collector.example/ingest' or set {env_name('url')}",
        )
    return PARSERS["url"]("url", derived)  # type: ignore[no-any-return]


#: Settings a preset's ``environment`` may supply besides its options: where
#: none is given, and (the batching ones) where the user gave none, above the
#: preset's defaults (the OpenTelemetry SDKs' ``OTEL_BLRP_*``).
_ECOSYSTEM_SETTINGS = ("url", "token", "headers")
_ECOSYSTEM_BATCHING = ("batch_size", "queue_size", "flush_interval")


def _ecosystem(
    preset: Any,
    values: dict[str, Any],
    options: dict[str, Any],
    environ: Mapping[str, str],
    given: set[str],
) -> None:
    """The ecosystem's own variables (``OTEL_*``, ``DD_*``), read by the
    preset, below explicit settings and ``LOGDRAIN_*``."""
    try:
        found = preset.environment(environ, options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            "preset", f"preset {preset.name!r}: {exc}", "fix the environment variable"
        ) from None
    for key, raw in found.items():
        if key == "token" and values.get("token_provider") is not None:
            continue  # yours wins over the ecosystem's key
        if key in _ECOSYSTEM_SETTINGS:
            if values.get(key) is None:
                values[key] = PARSERS[key](key, raw)
        elif key in _ECOSYSTEM_BATCHING:
            if key not in given:  # set in code or LOGDRAIN_*: yours wins
                values[key] = PARSERS[key](key, raw)
        elif key in preset.options:
            if key not in options:
                options[key] = _parse_option(preset, key, raw)
        else:
            raise ConfigError(key, f"preset {preset.name!r} read an unknown setting", "report it")


def _parse_option(preset: Any, name: str, raw: Any) -> Any:
    try:
        return preset.options[name](raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            name, f"{exc} (preset {preset.name!r})", f"see the {preset.name} preset's options"
        ) from None


def _choose_preset(values: dict[str, Any]) -> None:
    """``preset=`` (a name or a Preset), else the old ``format=`` spelling of
    the generic ones, else ``json``; then the preset's default settings for
    whatever was not given."""
    chosen = values.get("preset")
    fmt = values.get("format")
    if chosen is None:
        if fmt is not None and fmt not in FORMATS:
            raise ConfigError(
                "format", f"{fmt!r} is not a format", f"use one of {', '.join(FORMATS)}"
            )
        chosen = PRESETS[fmt or "json"]
    elif fmt is not None and fmt != chosen.name:
        raise ConfigError(
            "format",
            f"{fmt!r} given together with preset={chosen.name!r} (which decides the body)",
            "drop format=",
        )
    values["preset"] = chosen
    if chosen.name in FORMATS:  # the generic ones keep ``format`` telling the truth
        values["format"] = chosen.name
    for key, value in chosen.defaults.items():
        values.setdefault(key, value)


def _preset_options(
    preset: Any, explicit: Mapping[str, Any], environ: Mapping[str, str]
) -> dict[str, Any]:
    """The chosen preset's own settings (explicit, else ``LOGDRAIN_<NAME>``);
    any other unknown keyword is a ConfigError naming the preset and the
    closest setting or option. A variable for an option this preset does
    not take is ignored."""
    known = SETTING_NAMES | set(preset.options)
    for key in explicit:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            fix = f"did you mean {close[0]!r}?" if close else "see the settings table in README.md"
            raise ConfigError(key, f"unknown setting (preset {preset.name!r})", fix)
    options: dict[str, Any] = {}
    for name in preset.options:
        raw = explicit.get(name)
        if raw is None:
            raw = environ.get(env_name(name))
            if raw is None:
                continue
        options[name] = _parse_option(preset, name, raw)
    return options
