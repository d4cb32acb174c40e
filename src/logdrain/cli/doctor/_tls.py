"""Step 6, TLS: the trust source, the chain the server presented (subject,
issuer, expiry) and, when verification fails, why: the issuer no trusted
root covers, a hostname mismatch, an expired certificate, a client
certificate asked for or refused.

Python 3.13 hands out the chain itself (``get_verified_chain`` /
``get_unverified_chain``); before that only the leaf is available, fetched on
failure by a second handshake without verification."""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
import time
from collections.abc import Mapping
from typing import Any

from ...config import Settings
from ...errors import ConfigError
from ...trust import build_ssl_context
from ._network import Route
from ._report import Check
from ._tunnel import TunnelRefused, open_tunnel

#: Seconds the client waits after the handshake for a TLS 1.3 server's verdict
#: on the client certificate (an alert arrives at once, or not at all).
ALERT_WAIT = 0.5
EXPIRY_WARN_DAYS = 14

_EXPIRED = 10
_HOSTNAME = (62, 64)  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
_SELF_SIGNED_LEAF = 18
_SELF_SIGNED_IN_CHAIN = 19


def trust_source(s: Settings, environ: Mapping[str, str]) -> str:
    if s.ssl_context is not None:
        return "your ssl_context"
    if s.insecure:
        return "none: verification OFF (insecure)"
    extra = f" + ca_bundle={s.ca_bundle}" if s.ca_bundle else ""
    if s.trust == "system":
        return "the system store (trust=system, through truststore)" + extra
    if s.ca_bundle and s.ca_mode == "replace":
        return f"only ca_bundle={s.ca_bundle} (ca_mode=replace)"
    if s.trust_env and not s.ca_bundle and not s.trust:
        for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            if environ.get(variable):
                return f"{variable}={environ[variable]} (from the environment)"
    base = "certifi + the Windows stores" if s.trust == "windows" else "certifi"
    return base + extra


def _name(rdns: Any) -> str:
    fields: dict[str, str] = {}
    for rdn in rdns or ():
        for key, value in rdn:
            fields.setdefault(key, value)
    if "commonName" in fields:
        return fields["commonName"]
    parts = [fields[k] for k in ("organizationName", "organizationalUnitName") if k in fields]
    return ", ".join(parts) or "(no name)"


def decode_der(der: bytes) -> dict[str, Any] | None:
    """A certificate's fields as ``getpeercert()`` gives them (CPython's
    ``_test_decode_cert``, the only decoder in the standard library)."""
    decoder = getattr(getattr(ssl, "_ssl", None), "_test_decode_cert", None)
    if decoder is None:
        return None
    fd, path = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(ssl.DER_cert_to_PEM_cert(der))
        return dict(decoder(path))
    except (OSError, ssl.SSLError, ValueError):
        return None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _der_chain(sock: ssl.SSLSocket, verified: bool) -> list[bytes]:
    getter = getattr(sock, "get_verified_chain" if verified else "get_unverified_chain", None)
    if getter is not None:  # Python 3.13+
        with contextlib.suppress(Exception):
            chain = getter() or []
            out = [cert for cert in chain if isinstance(cert, bytes)]  # DER, per the docs
            if out:
                return out
    leaf = sock.getpeercert(binary_form=True)
    return [leaf] if leaf else []


def describe(cert: Mapping[str, Any]) -> str:
    return (
        f"subject {_name(cert.get('subject'))!r}, issuer {_name(cert.get('issuer'))!r}, "
        f"expires {cert.get('notAfter', '?')}"
    )


def _expires(cert: Mapping[str, Any]) -> float | None:
    try:
        return float(ssl.cert_time_to_seconds(cert["notAfter"]))
    except (KeyError, ValueError):
        return None


def _unverified_chain(route: Route, s: Settings) -> list[dict[str, Any]]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with ctx.wrap_socket(open_tunnel(route), server_hostname=route.host) as sock:
            ders = _der_chain(sock, verified=False)
    except (OSError, TunnelRefused):
        return []
    return [cert for cert in map(decode_der, ders) if cert is not None]


def _alert(exc: ssl.SSLError) -> str:
    return str(getattr(exc, "reason", "") or exc).upper()


def _client_cert_check(exc: ssl.SSLError, s: Settings, trust: str) -> Check | None:
    reason = _alert(exc)
    if "CERTIFICATE_REQUIRED" in reason or (
        s.client_cert is None and "HANDSHAKE_FAILURE" in reason
    ):
        return Check(
            "tls",
            "FAIL",
            f"the server asks for a client certificate and none was sent ({reason.lower()})",
            "give yours: client_cert=('cert.pem', 'key.pem') (--client-cert, --client-key)",
            [f"trust: {trust}"],
        )
    if s.client_cert is not None and any(
        word in reason
        for word in (
            "UNKNOWN_CA",
            "BAD_CERTIFICATE",
            "CERTIFICATE_UNKNOWN",
            "ACCESS_DENIED",
            "CERTIFICATE_EXPIRED",
            "HANDSHAKE_FAILURE",
        )
    ):
        return Check(
            "tls",
            "FAIL",
            f"the server refused the client certificate {s.client_cert[0]} ({reason.lower()})",
            "client_cert= must be issued by a CA the server trusts, unexpired, for this client",
            [f"trust: {trust}"],
        )
    return None


def check_tls(route: Route, s: Settings, environ: Mapping[str, str]) -> Check:
    if route.scheme != "https":
        return Check("tls", "SKIP", "plain http://: no TLS")
    trust = trust_source(s, environ)
    try:
        ctx = build_ssl_context(s, environ)
    except (ConfigError, ssl.SSLError, OSError) as exc:
        return Check(
            "tls", "FAIL", f"cannot build the TLS context: {exc}", "fix the trust settings"
        )
    try:
        raw = open_tunnel(route)
    except TunnelRefused as refused:
        return Check("tls", "SKIP", f"no tunnel: {refused.check.evidence}")
    except OSError as exc:
        return Check("tls", "FAIL", f"no connection: {exc.strerror or exc}", "see the tcp step")
    try:
        sock = ctx.wrap_socket(raw, server_hostname=route.host)
    except ssl.SSLCertVerificationError as exc:
        raw.close()
        return _verify_failure(exc, route, s, trust)
    except ssl.SSLError as exc:
        raw.close()
        found = _client_cert_check(exc, s, trust)
        if found is not None:
            return found
        if "WRONG_VERSION_NUMBER" in _alert(exc) or "RECORD_LAYER" in _alert(exc):
            return Check(
                "tls",
                "FAIL",
                f"{route.host}:{route.port} does not speak TLS ({_alert(exc).lower()})",
                "use http:// for this port, or the collector's TLS port in url=",
                [f"trust: {trust}"],
            )
        return Check(
            "tls",
            "FAIL",
            f"TLS handshake failed: {exc}",
            "check the collector's TLS setup",
            [f"trust: {trust}"],
        )
    except OSError as exc:
        raw.close()
        return Check(
            "tls",
            "FAIL",
            f"the connection broke during the handshake: {exc}",
            "check the collector's TLS port",
            [f"trust: {trust}"],
        )
    with sock:
        version = sock.version() or "TLS"
        verified = s.ssl_context is None and not s.insecure
        ders = _der_chain(sock, verified=verified)
        refusal = _wait_for_alert(sock)
    if refusal is not None:
        found = _client_cert_check(refusal, s, trust)
        if found is not None:
            return found
    chain = [cert for cert in map(decode_der, ders) if cert is not None]
    details = [f"trust: {trust}"] + [f"cert {i}: {describe(c)}" for i, c in enumerate(chain)]
    if s.client_cert is not None:
        details.append(f"client certificate: {s.client_cert[0]} (accepted)")
    leaf_end = _expires(chain[0]) if chain else None
    evidence = f"{version}, verified with {trust}" if verified else f"{version}, NOT verified"
    if leaf_end is not None and leaf_end - time.time() < EXPIRY_WARN_DAYS * 86400:
        return Check(
            "tls",
            "WARN",
            f"{evidence}; the certificate expires soon ({chain[0]['notAfter']})",
            "the collector's owner must renew its certificate",
            details,
        )
    return Check(
        "tls",
        "PASS" if verified else "WARN",
        evidence,
        "" if verified else "drop insecure= and trust the collector's CA",
        details,
    )


def _wait_for_alert(sock: ssl.SSLSocket) -> ssl.SSLError | None:
    """A TLS 1.3 server judges the client certificate after the handshake:
    its alert arrives on the first read."""
    sock.settimeout(ALERT_WAIT)
    try:
        sock.recv(1)
    except ssl.SSLError as exc:
        return exc
    except OSError:  # TimeoutError among them: no alert came
        return None
    return None


def _verify_failure(
    exc: ssl.SSLCertVerificationError, route: Route, s: Settings, trust: str
) -> Check:
    chain = _unverified_chain(route, s)
    details = [f"trust: {trust}"] + [f"cert {i}: {describe(c)}" for i, c in enumerate(chain)]
    code = exc.verify_code
    message = exc.verify_message or str(exc)
    if code in _HOSTNAME:
        names = [value for _, value in (chain[0].get("subjectAltName", ()) if chain else ())]
        shown = ", ".join(names) or "(no names shown)"
        return Check(
            "tls",
            "FAIL",
            f"hostname mismatch: the certificate is for {shown}, not {route.host!r}",
            f"use a URL with one of its names ({shown}) in url=, or ask for a certificate "
            f"naming {route.host}",
            details,
        )
    if code == _EXPIRED:
        now = time.time()
        expired = [c for c in chain if (_expires(c) or now) < now]
        which = expired[0] if expired else (chain[0] if chain else {})
        return Check(
            "tls",
            "FAIL",
            f"certificate expired: {_name(which.get('subject'))!r} "
            f"ended {which.get('notAfter', '?')}",
            "the collector's owner must renew it (insecure= is no fix)",
            details,
        )
    if chain:
        top = chain[-1]
        if code in (_SELF_SIGNED_LEAF, _SELF_SIGNED_IN_CHAIN):
            missing = _name(top.get("subject"))
        else:
            missing = _name(top.get("issuer"))
        return Check(
            "tls",
            "FAIL",
            f"the chain is issued by {missing!r}, which no trusted root covers ({message})",
            f"add it with ca_bundle=/path/to/that-ca.pem (--ca-bundle), or trust=system "
            f"if your OS store has it (trust in use: {trust})",
            details,
        )
    return Check(
        "tls",
        "FAIL",
        f"certificate verification failed: {message}",
        "add the issuing CA with ca_bundle= or use trust=system",
        details,
    )
