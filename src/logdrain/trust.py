"""TLS trust and proxy selection for one Drain, resolved once at construction.

Precedence (explicit settings always win; requests' habit of letting the
environment override a Session's settings is switched off with
``session.trust_env = False`` and re-done here, on purpose):

TLS verification
    1. ``ssl_context=`` (an ``ssl.SSLContext`` you built) is used as it is.
    2. ``insecure=True`` turns verification off (one loud stderr line).
    3. ``trust=`` picks the roots: ``"default"`` (certifi, as requests does),
       ``"system"`` (the OS store through truststore, scoped to this drain),
       ``"windows"`` (ROOT and CA system stores read with wincertstore).
       ``ca_bundle=`` adds a PEM file to those roots (``ca_mode="add"``, the
       default) or replaces them (``ca_mode="replace"``).
    4. Only when neither ``ca_bundle`` nor ``trust`` is given and
       ``trust_env`` is true: ``REQUESTS_CA_BUNDLE``, else ``CURL_CA_BUNDLE``,
       replaces the default roots (as requests would). ``SSL_CERT_FILE`` and
       ``SSL_CERT_DIR`` are OpenSSL's and apply to ``trust="system"``.
    ``client_cert=`` (a path, or a (cert, key) pair) is loaded for mutual TLS.

Proxy
    1. ``proxy=`` (``http://user:pass@host:port``) is used for the collector
       unless the collector's host matches ``no_proxy=``.
    2. Otherwise, when ``trust_env`` is true, ``HTTPS_PROXY``/``HTTP_PROXY``/
       ``ALL_PROXY`` and ``NO_PROXY`` decide, as they would for requests.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import requests.utils

from .config import Settings, check_ca_file, load_client_cert
from .errors import ConfigError
from .report import write_stderr


def _certifi_bundle() -> str:
    return requests.utils.DEFAULT_CA_BUNDLE_PATH


def windows_store_pem(
    store_names: Iterable[str] = ("ROOT", "CA"),
    store_factory: Callable[[str], Any] | None = None,
) -> str:
    """PEM text of every server-auth certificate in the Windows system stores.

    ``store_factory`` is ``wincertstore.CertSystemStore`` on Windows; tests pass
    a stand-in, since no Windows store exists elsewhere.
    """
    usage: Any = None
    if store_factory is None:
        try:
            import wincertstore  # type: ignore[import-not-found]  # noqa: PLC0415 - Windows only
        except ImportError:
            raise ConfigError(
                "trust",
                "'windows' needs the wincertstore package (installed on Windows only)",
                "use trust='system' on this platform",
            ) from None
        store_factory = wincertstore.CertSystemStore
        usage = wincertstore.SERVER_AUTH
    pems: list[str] = []
    for name in store_names:
        store = store_factory(name)
        try:
            for cert in store.itercerts(usage=usage):
                pems.append(cert.get_pem())
        finally:
            close = getattr(store, "close", None)
            if close is not None:
                close()
    return "\n".join(pems)


def build_ssl_context(
    s: Settings,
    environ: Any = None,
    windows_store_factory: Callable[[str], Any] | None = None,
) -> ssl.SSLContext:
    """The SSLContext this drain verifies collectors (and proxies' CONNECT peers) with."""
    environ = os.environ if environ is None else environ
    if s.ssl_context is not None:
        return s.ssl_context
    if s.insecure:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        write_stderr(
            f"logdrain[{s.name}]: WARNING: TLS verification is OFF (insecure=True): "
            "anyone on the network path can read and alter these logs"
        )
    elif s.trust == "system":
        import truststore  # noqa: PLC0415 - only when asked for

        ctx = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if s.ca_bundle:
            ctx.load_verify_locations(cafile=s.ca_bundle)
    else:
        env_bundle = None
        if s.trust_env and not s.ca_bundle and not s.trust:
            env_bundle = _env_bundle(environ)
        if s.ca_bundle and s.ca_mode == "replace":
            ctx = ssl.create_default_context(cafile=s.ca_bundle)
        elif env_bundle:
            ctx = _context_from_path(env_bundle)
        else:
            ctx = ssl.create_default_context(cafile=_certifi_bundle())
            if s.trust == "windows":
                pem = windows_store_pem(store_factory=windows_store_factory)
                if pem:
                    ctx.load_verify_locations(cadata=pem)
            if s.ca_bundle:
                ctx.load_verify_locations(cafile=s.ca_bundle)
    if s.client_cert is not None:
        load_client_cert(ctx, *s.client_cert)  # never prompts for a key password
    return ctx


def _env_bundle(environ: Any) -> str | None:
    """``REQUESTS_CA_BUNDLE``, else ``CURL_CA_BUNDLE``, checked now: a missing or
    non-PEM file fails at construction, naming the variable, not at each batch."""
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        path = environ.get(variable)
        if path:
            try:
                check_ca_file(variable, str(path), allow_dir=True)
            except ConfigError as exc:
                raise ConfigError(
                    variable,
                    f"{exc.problem} (set in the environment)",
                    "fix or unset the variable, or pass ca_bundle= or trust_env=False",
                ) from None
            return str(path)
    return None


def _context_from_path(path: str) -> ssl.SSLContext:
    if os.path.isdir(path):
        return ssl.create_default_context(capath=path)
    return ssl.create_default_context(cafile=path)


def select_proxy(s: Settings, environ: Any = None) -> str | None:
    """The proxy URL for this drain's collector, or None for a direct connection."""
    environ = os.environ if environ is None else environ
    parts = urlsplit(s.url)
    if s.proxy is not None:
        no_proxy = s.no_proxy
        proxy: str | None = s.proxy or None
    elif s.trust_env:
        no_proxy = s.no_proxy or _env(environ, "no_proxy")
        proxy = _env(environ, f"{parts.scheme}_proxy") or _env(environ, "all_proxy")
    else:
        return None
    # A NO_PROXY entry "host:8443" must not match "https://host/" (port 443), as in curl.
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if proxy and no_proxy and _bypass(parts.hostname or "", port, no_proxy):
        return None
    return proxy


def _env(environ: Any, name: str) -> str | None:
    value = environ.get(name.lower()) or environ.get(name.upper())
    return str(value) if value else None


def _bypass(host: str, port: int | None, no_proxy: str) -> bool:
    """``NO_PROXY`` semantics as curl and requests use them (names, suffixes, ``*``, CIDR)."""
    host = host.lower().strip("[]")
    for raw in no_proxy.replace(" ", "").split(","):
        entry = raw.lower().strip("[]")
        if not entry:
            continue
        if entry == "*":
            return True
        if "/" in entry and requests.utils.is_valid_cidr(entry):
            if requests.utils.is_ipv4_address(host) and requests.utils.address_in_network(
                host, entry
            ):
                return True
            continue
        entry_host, _, entry_port = (
            entry.partition(":") if entry.count(":") == 1 else (entry, "", "")
        )
        if entry_port and port is not None and entry_port != str(port):
            continue
        entry_host = entry_host.lstrip(".")
        if host == entry_host or host.endswith("." + entry_host):
            return True
    return False
