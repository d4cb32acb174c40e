"""Text checks shared by the parsers: control characters, HTTP header names and
values, and URLs. None of them quotes the value it refuses."""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_BUT_TAB = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_HOST_CHARS = re.compile(r"[\s<>\"{}|\\^`%]")
_WHITESPACE = re.compile(r"\s")


def header_value_problem(value: str, *, allow_tab: bool = True) -> str | None:
    """Why ``value`` cannot be sent as an HTTP header value, or None. Never quotes it."""
    if (_CONTROL_BUT_TAB if allow_tab else CONTROL).search(value):
        return "holds a newline or control character"
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return "holds a character HTTP headers cannot carry (outside Latin-1)"
    return None


def check_header_name(name: str, header: Any, example: str = "X-Api-Key") -> str:
    """``header`` is an HTTP token (RFC 9110 field name), else a ConfigError for ``name``."""
    if not isinstance(header, str) or not _HEADER_NAME.fullmatch(header):
        raise ConfigError(
            name,
            f"{header!r} is not a valid HTTP header name",
            f"use letters, digits and - only, e.g. {example!r}",
        )
    return header


def url_problem(text: str) -> str | None:
    """Why ``text`` is not a usable http(s) URL, or None. Never quotes a secret."""
    if _WHITESPACE.search(text) or CONTROL.search(text):
        return "holds a space, newline or control character (percent-encode it, e.g. %20)"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        if "port" in str(exc).lower():
            return "has a port that is not a number from 1 to 65535"
        return "cannot be parsed (check the [brackets] of an IPv6 address)"
    if parts.scheme not in ("http", "https"):
        return "has no http:// or https:// scheme"
    host = parts.hostname or ""
    if not host:
        return "has no host"
    if port == 0:
        return "has port 0 (give a port from 1 to 65535)"
    if "[" in parts.netloc:
        try:
            ipaddress.IPv6Address(host.partition("%")[0])
        except ValueError:
            return "has a bracketed host that is not an IPv6 address"
    elif _BAD_HOST_CHARS.search(host):
        return "has a host with a character no host name holds"
    return None
