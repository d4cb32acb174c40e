"""Parsers of the connection settings: the collector's URL, the proxy, TLS
trust and client certificates, and auth (see :mod:`.parse` for the others)."""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError
from .checks import url_problem
from .files import check_ca_file, check_client_cert
from .parse import as_names, as_opt_str, as_str
from .settings import mask_text_url


def as_url(name: str, value: Any) -> str:
    text = as_str(name, value).strip()
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


def as_proxy(name: str, value: Any) -> str | None:
    text = as_opt_str(name, value)
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


def as_no_proxy(name: str, value: Any) -> str | None:
    if value is None:
        return None
    return ",".join(as_names(name, value)) if not isinstance(value, str) else value


def as_ca_bundle(name: str, value: Any) -> str | None:
    text = as_opt_str(name, value)
    if text is not None:
        check_ca_file(name, text)
    return text


def as_client_cert(name: str, value: Any) -> tuple[str, str | None] | None:
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


def as_ssl_context(name: str, value: Any) -> ssl.SSLContext | None:
    if value is None or isinstance(value, ssl.SSLContext):
        return value
    raise ConfigError(name, f"expected an ssl.SSLContext, got {type(value).__name__}", "pass one")


def as_auth(name: str, value: Any) -> Any:
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
