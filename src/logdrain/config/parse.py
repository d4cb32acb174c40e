"""Parsers: one per setting, each taking the value as given (code, dictConfig
string or environment variable) and returning it typed, or raising a
ConfigError that names the field and the fix and never echoes a secret."""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import json
import math
import os
import re
import signal
import ssl
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError
from ..presets import Preset, get, names
from .checks import CONTROL, check_header_name, header_value_problem, url_problem
from .files import check_ca_file, check_client_cert
from .settings import Settings, mask_text_url

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

UNCATCHABLE_SIGNALS = frozenset({"SIGKILL", "SIGSTOP"})


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


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)(b?)", re.IGNORECASE)
_SIZE_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}
_SIZE_FIX = "give bytes as a whole number such as 67108864, or a size such as '64MiB' or '64MB'"


def _as_size(name: str, value: Any) -> int:
    """Bytes: a whole number, or a size with a unit: ``KB``/``MB``/``GB``
    (powers of 1000), ``KiB``/``MiB``/``GiB`` and ``K``/``M``/``G`` (powers of
    1024), ``B``; case and spaces do not matter."""
    if isinstance(value, bool):
        raise ConfigError(name, f"got a bool ({value!r})", _SIZE_FIX)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        try:
            return int(text)
        except ValueError:
            pass
        match = _SIZE.fullmatch(text)
        if match:
            number, unit, binary, suffix = match.groups()
            if (unit or suffix) and (unit or not binary):  # "64MiB", "64M", "64MB", "100B"
                base = 1024 if binary or not suffix else 1000
                size = float(number) * base ** _SIZE_POWERS[unit.lower()]
                if size.is_integer() or size >= 1024:
                    return int(size)
    raise ConfigError(name, f"{value!r} is not a size", _SIZE_FIX)


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


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])", re.IGNORECASE)
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION_FIX = "give seconds such as 64800, or a duration such as '18h', '7d'; 0 turns it off"


def as_duration(name: str, value: Any) -> float:
    """Seconds: a number, or a number with a unit ``s``/``m``/``h``/``d``;
    never negative (0 turns the setting off)."""
    if isinstance(value, str):
        match = _DURATION.fullmatch(value.strip())
        if match:
            value = float(match.group(1)) * _DURATION_UNITS[match.group(2).lower()]
    try:
        seconds = _as_float(name, value)
    except ConfigError:
        raise ConfigError(name, f"{value!r} is not a duration", _DURATION_FIX) from None
    if seconds < 0:
        raise ConfigError(name, f"{value!r} is negative", _DURATION_FIX)
    return seconds


def _as_path(name: str, value: Any) -> str | None:
    """A file path (str or os.PathLike); None or empty: not set."""
    if value is None:
        return None
    if not isinstance(value, str) and hasattr(value, "__fspath__"):
        value = value.__fspath__()
    text = _as_opt_str(name, value)
    if text is None:
        return None
    if CONTROL.search(text):
        raise ConfigError(name, f"{text!r} holds a control character", "give a plain file path")
    return os.path.expanduser(text)


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


def _as_name(name: str, value: Any) -> str:
    text = _as_str(name, value)
    if CONTROL.search(text):
        raise ConfigError(
            name,
            f"{text!r} holds a newline or control character (it names threads and stderr lines)",
            "give a one-line name such as 'orders-api'",
        )
    return text


def _as_token(name: str, value: Any) -> str | None:
    """Surrounding whitespace is dropped (a token read from a file ends in a newline)."""
    text = _as_opt_str(name, value)
    if text is None:
        return None
    token = text.strip()
    if not token:
        raise ConfigError(name, "is only whitespace", "give the token itself, or leave it unset")
    problem = header_value_problem(token, allow_tab=False)
    if problem:
        raise ConfigError(name, f"the token {problem}", "check how the token is read or pasted")
    return token


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
    for key, given in value.items():
        if not isinstance(key, str) or not isinstance(given, str):
            shown = key if isinstance(key, str) else type(key).__name__
            raise ConfigError(
                name, f"header {shown!r} must map a string to a string", "quote the value"
            )
        check_header_name(name, key)
        val = given.strip()  # a value read from a file ends in a newline
        problem = header_value_problem(val)
        if problem:
            raise ConfigError(
                name, f"the value of header {key!r} {problem}", "check how the value is read"
            )
        out[key] = val
    return out


def _as_signals(name: str, value: Any) -> tuple[str, ...]:
    if value is None or value is False:
        return ()
    if value is True:
        return ("SIGTERM",)
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, int):
        items = [value]
    elif isinstance(value, Iterable) and not isinstance(value, Mapping):
        items = list(value)
    else:
        raise ConfigError(
            name, f"expected signal names, got {type(value).__name__}", 'give e.g. ["SIGTERM"]'
        )
    out: list[str] = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            try:
                text = signal.Signals(item).name
            except ValueError:
                raise ConfigError(name, f"{item} is not a signal", "use e.g. 'SIGTERM'") from None
        elif isinstance(item, str):
            text = item.strip().upper()
        else:
            raise ConfigError(name, f"{item!r} is not a signal", "use e.g. 'SIGTERM'")
        if not text:
            continue
        if not text.startswith("SIG"):
            text = "SIG" + text
        if text not in signal.Signals.__members__:
            raise ConfigError(name, f"{item!r} is not a signal here", "use e.g. 'SIGTERM'")
        if text in UNCATCHABLE_SIGNALS:
            raise ConfigError(
                name,
                f"{text} cannot be caught (no process can run code on it)",
                "use SIGTERM or SIGINT, and send those before SIGKILL",
            )
        out.append(text)
    return tuple(dict.fromkeys(out))


#: The example each names setting's fix gives (the default: a ``fields`` list).
_NAMES_EXAMPLE = {"redact_keys": ("password", "ssn"), "include": ("process", "lineno")}


def _as_names(name: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    first, second = _NAMES_EXAMPLE.get(name, ("message", "level"))
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, Iterable) and not isinstance(value, Mapping | bytes):
        items = list(value)
    else:
        raise ConfigError(
            name,
            f"expected names, got {type(value).__name__}",
            f'give a list such as ["{first}", "{second}"] or a string "{first},{second}"',
        )
    if not all(isinstance(i, str) for i in items):
        raise ConfigError(name, "expected names (strings)", f'give e.g. ["{first}", "{second}"]')
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


def _as_url(name: str, value: Any) -> str:
    text = _as_str(name, value).strip()
    problem = url_problem(text)
    if problem:
        raise ConfigError(
            name, f"{mask_text_url(text)!r} {problem}", "write it as 'https://host:port/path'"
        )
    parts = urlsplit(text)
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            name, "credentials inside the URL would leak into logs", "pass token= or headers="
        )
    return text


def _as_proxy(name: str, value: Any) -> str | None:
    text = _as_opt_str(name, value)
    if text is None:
        return None
    text = text.strip()
    problem = url_problem(text)
    parts = urlsplit(text) if problem is None else None
    if parts is not None and "@" in parts.path + parts.query + parts.fragment:
        problem = "has an '@' after the host (a password with / ? or # in it)"
    if problem:
        raise ConfigError(
            name,
            f"{mask_text_url(text)!r} is not a proxy URL: it {problem}",
            "write it as 'http://user:pass@host:3128' (percent-encode / ? # @ in the password)",
        )
    return text


def _as_no_proxy(name: str, value: Any) -> str | None:
    if value is None:
        return None
    return ",".join(_as_names(name, value)) if not isinstance(value, str) else value


def _as_ca_bundle(name: str, value: Any) -> str | None:
    text = _as_opt_str(name, value)
    if text is not None:
        check_ca_file(name, text)
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
    pair = (items[0], items[1] if len(items) == 2 else None)
    check_client_cert(*pair)
    return pair


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


def _as_preset(name: str, value: Any) -> Preset:
    if isinstance(value, Preset):
        return value
    if not isinstance(value, str):
        raise ConfigError(
            name, f"expected a preset name or a Preset, got {type(value).__name__}", "give a name"
        )
    key = value.strip().lower().replace("-", "_")
    known = names()
    if key in known:
        return get(key)
    close = difflib.get_close_matches(key, known, n=1)
    fix = f"did you mean {close[0]!r}?" if close else f"use one of {', '.join(known)}"
    raise ConfigError(name, f"{value!r} is not a preset", fix)


def _as_naming(name: str, value: Any) -> str:
    return _as_str(name, value).strip().lower()


_SPECIAL: dict[str, Callable[[str, Any], Any]] = {
    "preset": _as_preset,
    "max_buffer_bytes": _as_size,
    "dead_letter_max_bytes": _as_size,
    "dead_letter": _as_path,
    "spool_max_bytes": _as_size,
    "spool_dir": _as_path,
    "max_age": as_duration,
    "url": _as_url,
    "token": _as_token,
    "headers": _as_headers,
    "name": _as_name,
    "flush_on_signals": _as_signals,
    "proxy": _as_proxy,
    "no_proxy": _as_no_proxy,
    "ca_bundle": _as_ca_bundle,
    "client_cert": _as_client_cert,
    "ssl_context": _as_ssl_context,
    "auth": _as_auth,
    "token_provider": _as_callable,
    "fields": _as_names,
    "redact_keys": _as_names,
    "envelope_required": _as_names,
    "rename": _as_rename,
    "envelope": _as_mapping,
    "include": _as_names,
    "naming": _as_naming,
}
# Settings that only make sense as objects are never read from the environment.
NOT_FROM_ENV = frozenset({"ssl_context", "auth", "token_provider"})

PARSERS: dict[str, Callable[[str, Any], Any]] = {}
for _f in dataclasses.fields(Settings):
    _type = str(_f.type)
    if _f.name in _SPECIAL:
        PARSERS[_f.name] = _SPECIAL[_f.name]
    elif _type == "int":
        PARSERS[_f.name] = _as_int
    elif _type == "float":
        PARSERS[_f.name] = _as_float
    elif _type == "bool":
        PARSERS[_f.name] = _as_bool
    elif _type == "str | None":
        PARSERS[_f.name] = _as_opt_str
    else:
        PARSERS[_f.name] = _as_str
