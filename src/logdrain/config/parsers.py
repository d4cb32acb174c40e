"""Which parser each setting takes (:data:`PARSERS`), and which settings are
never read from the environment."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from .parse import (
    as_bool,
    as_callable,
    as_duration,
    as_float,
    as_headers,
    as_int,
    as_mapping,
    as_name,
    as_names,
    as_naming,
    as_opt_str,
    as_path,
    as_preset,
    as_rename,
    as_signals,
    as_size,
    as_str,
    as_token,
)
from .parse_network import (
    as_auth,
    as_ca_bundle,
    as_client_cert,
    as_no_proxy,
    as_proxy,
    as_ssl_context,
    as_url,
)
from .settings import Settings

_SPECIAL: dict[str, Callable[[str, Any], Any]] = {
    "preset": as_preset,
    "max_buffer_bytes": as_size,
    "dead_letter_max_bytes": as_size,
    "dead_letter": as_path,
    "spool_max_bytes": as_size,
    "spool_dir": as_path,
    "max_age": as_duration,
    "url": as_url,
    "token": as_token,
    "headers": as_headers,
    "name": as_name,
    "flush_on_signals": as_signals,
    "proxy": as_proxy,
    "no_proxy": as_no_proxy,
    "ca_bundle": as_ca_bundle,
    "client_cert": as_client_cert,
    "ssl_context": as_ssl_context,
    "auth": as_auth,
    "token_provider": as_callable,
    "fields": as_names,
    "redact_keys": as_names,
    "envelope_required": as_names,
    "rename": as_rename,
    "envelope": as_mapping,
    "include": as_names,
    "naming": as_naming,
}
# Settings that only make sense as objects are never read from the environment.
NOT_FROM_ENV = frozenset({"ssl_context", "auth", "token_provider"})

PARSERS: dict[str, Callable[[str, Any], Any]] = {}
for _f in dataclasses.fields(Settings):
    _type = str(_f.type)
    if _f.name in _SPECIAL:
        PARSERS[_f.name] = _SPECIAL[_f.name]
    elif _type == "int":
        PARSERS[_f.name] = as_int
    elif _type == "float":
        PARSERS[_f.name] = as_float
    elif _type == "bool":
        PARSERS[_f.name] = as_bool
    elif _type == "str | None":
        PARSERS[_f.name] = as_opt_str
    else:
        PARSERS[_f.name] = as_str
