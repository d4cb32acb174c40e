"""PEM files checked at construction by loading them into a throwaway
``ssl.SSLContext``: a wrong file fails here, naming its setting, not at the
first batch."""

from __future__ import annotations

import os
import ssl

from ..errors import ConfigError


class _EncryptedKey(Exception):
    """Raised from the password callback: logdrain has no key password setting,
    and OpenSSL's fallback would prompt on the terminal (a hang in a service)."""


def _no_password() -> str:
    raise _EncryptedKey


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or exc.strerror or "not PEM")
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return type(exc).__name__


def check_ca_file(field: str, path: str, *, allow_dir: bool = False) -> None:
    """``path`` exists and holds PEM CA certificates (or is a directory, when allowed)."""
    if not os.path.exists(path):
        raise ConfigError(field, f"{path!r} does not exist", "give the path of a PEM file")
    if os.path.isdir(path):
        if allow_dir:
            return
        raise ConfigError(
            field,
            f"{path!r} is a directory",
            "give the path of a PEM file (for a directory of hashed CA files, "
            "pass your own ssl_context)",
        )
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(
            field,
            f"{path!r} holds no PEM CA certificate ({_reason(exc)})",
            "give a PEM file ('-----BEGIN CERTIFICATE-----'); convert DER with "
            "'openssl x509 -inform der -in ca.der -out ca.pem'",
        ) from None


def load_client_cert(ctx: ssl.SSLContext, cert: str, key: str | None) -> None:
    """Load the client certificate (and key) into ``ctx``, or raise a ConfigError
    naming ``client_cert``. Never prompts for a password."""
    for path in (cert, key):
        if path is None:
            continue
        if not os.path.isfile(path):
            problem = "is a directory" if os.path.isdir(path) else "does not exist"
            raise ConfigError("client_cert", f"{path!r} {problem}", "give the path of a PEM file")
    try:
        ctx.load_cert_chain(cert, key, password=_no_password)
    except _EncryptedKey:
        raise ConfigError(
            "client_cert",
            "the private key is encrypted (logdrain has no key password setting)",
            "decrypt it ('openssl pkey -in key.pem -out plain.pem'), or pass your own "
            "ssl_context with the key loaded",
        ) from None
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(
            "client_cert",
            f"cannot load the certificate and key ({_reason(exc)})",
            "give a PEM certificate and the PEM private key that matches it, "
            'e.g. ("client.pem", "client.key"), or one PEM file holding both',
        ) from None


def check_client_cert(cert: str, key: str | None) -> None:
    """The pair loads and matches (into a throwaway context)."""
    load_client_cert(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), cert, key)
