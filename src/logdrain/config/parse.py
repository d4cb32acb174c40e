"""Parsers: one per setting, each taking the value as given (code, dictConfig
string or environment variable) and returning it typed, or raising a
ConfigError that names the field and the fix and never echoes a secret.
The connection settings' parsers are in :mod:`.parse_network`; which setting
takes which parser, in :mod:`.parsers`."""

from __future__ import annotations

import difflib
import importlib
import json
import math
import os
import re
import signal
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import ConfigError
from ..presets import Preset, get, names
from .checks import CONTROL, check_header_name, header_value_problem

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

UNCATCHABLE_SIGNALS = frozenset({"SIGKILL", "SIGSTOP"})


def as_int(name: str, value: Any) -> int:
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


def as_size(name: str, value: Any) -> int:
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


def as_float(name: str, value: Any) -> float:
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
        seconds = as_float(name, value)
    except ConfigError:
        raise ConfigError(name, f"{value!r} is not a duration", _DURATION_FIX) from None
    if seconds < 0:
        raise ConfigError(name, f"{value!r} is negative", _DURATION_FIX)
    return seconds


def as_path(name: str, value: Any) -> str | None:
    """A file path (str or os.PathLike); None or empty: not set."""
    if value is None:
        return None
    if not isinstance(value, str) and hasattr(value, "__fspath__"):
        value = value.__fspath__()
    text = as_opt_str(name, value)
    if text is None:
        return None
    if CONTROL.search(text):
        raise ConfigError(name, f"{text!r} holds a control character", "give a plain file path")
    return os.path.expanduser(text)


def as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigError(name, f"{value!r} is not a boolean", "give true or false")


def as_str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(name, f"expected a string, got {type(value).__name__}", "give a string")
    return value


def as_opt_str(name: str, value: Any) -> str | None:
    if value is None:
        return None
    return as_str(name, value) or None


def as_name(name: str, value: Any) -> str:
    text = as_str(name, value)
    if CONTROL.search(text):
        raise ConfigError(
            name,
            f"{text!r} holds a newline or control character (it names threads and stderr lines)",
            "give a one-line name such as 'orders-api'",
        )
    return text


def as_token(name: str, value: Any) -> str | None:
    """Surrounding whitespace is dropped (a token read from a file ends in a newline)."""
    text = as_opt_str(name, value)
    if text is None:
        return None
    token = text.strip()
    if not token:
        raise ConfigError(name, "is only whitespace", "give the token itself, or leave it unset")
    problem = header_value_problem(token, allow_tab=False)
    if problem:
        raise ConfigError(name, f"the token {problem}", "check how the token is read or pasted")
    return token


def as_headers(name: str, value: Any) -> Mapping[str, str]:
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


def as_signals(name: str, value: Any) -> tuple[str, ...]:
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


def as_names(name: str, value: Any) -> tuple[str, ...]:
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


def as_mapping(name: str, value: Any) -> Mapping[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError:
            raise ConfigError(name, "not a JSON object", 'write it as {"key": "value"}') from None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigError(name, "expected a mapping with string keys", 'give e.g. {"key": "value"}')
    return dict(value)


def as_rename(name: str, value: Any) -> Mapping[str, str]:
    mapping = as_mapping(name, value)
    for key, new in mapping.items():
        if not isinstance(new, str) or not new:
            raise ConfigError(name, f"{key!r} must be renamed to a non-empty string", "fix it")
    return mapping


def as_callable(name: str, value: Any) -> Any:
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


def as_preset(name: str, value: Any) -> Preset:
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


def as_naming(name: str, value: Any) -> str:
    return as_str(name, value).strip().lower()
