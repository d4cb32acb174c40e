"""Shared TLS fixtures built with ``trustme``: a test CA, certificates it issues,
and server contexts for ``logdrain.testing.Collector(tls=...)``.

Import the fixtures you use into your test module (pytest registers fixtures
found in a test module's namespace)::

    from .tls_helpers import ca_pem_fixture, tls_ca_fixture  # noqa: F401 - fixtures

Fixtures (session-scoped unless noted):

``tls_ca``           the ``trustme.CA`` every server and client certificate comes from
``server_cert``      a leaf for ``127.0.0.1`` and ``localhost`` issued by ``tls_ca``
``ca_pem``           path (str) of ``tls_ca``'s certificate as a PEM file
``client_cert``      a client leaf issued by ``tls_ca``
``client_cert_files`` a :class:`ClientCertFiles` (cert, key and combined PEM paths)
``other_ca_pem``     path of a second, unrelated CA's PEM (a "wrong" bundle)
``tls_collector``    (function-scoped) an HTTPS ``Collector`` serving ``server_cert``
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import trustme

from logdrain.testing import Collector


def make_server_context(
    ca: trustme.CA, server_cert: trustme.LeafCert, *, require_client_cert: bool = False
) -> ssl.SSLContext:
    """A server SSLContext presenting ``server_cert``; with ``require_client_cert``
    it demands a client certificate issued by ``ca`` (mutual TLS)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_cert.configure_cert(ctx)
    if require_client_cert:
        ca.configure_trust(ctx)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def make_client_context(ca: trustme.CA) -> ssl.SSLContext:
    """A client SSLContext that trusts ``ca`` only (hostname checking on)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname, no roots
    ca.configure_trust(ctx)
    return ctx


def ca_der(ca: trustme.CA) -> bytes:
    """``ca``'s certificate in DER form, as ``SSLContext.get_ca_certs(True)`` lists it."""
    return ssl.PEM_cert_to_DER_cert(ca.cert_pem.bytes().decode("ascii"))


@dataclass(frozen=True)
class ClientCertFiles:
    """A client certificate on disk: separate cert and key, and both in one file."""

    cert: str
    key: str
    combined: str


@pytest.fixture(scope="session", name="tls_ca")
def tls_ca_fixture() -> trustme.CA:
    """The test CA."""
    return trustme.CA()


@pytest.fixture(scope="session", name="server_cert")
def server_cert_fixture(tls_ca: trustme.CA) -> trustme.LeafCert:
    """A server certificate for 127.0.0.1 and localhost."""
    return tls_ca.issue_cert("127.0.0.1", "localhost")


@pytest.fixture(scope="session", name="ca_pem")
def ca_pem_fixture(tls_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path of the test CA's certificate (PEM)."""
    path = tmp_path_factory.mktemp("tls-ca") / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="session", name="other_ca_pem")
def other_ca_pem_fixture(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path of a second CA's certificate: a bundle that does not vouch for ``server_cert``."""
    path = tmp_path_factory.mktemp("tls-other-ca") / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="session", name="client_cert")
def client_cert_fixture(tls_ca: trustme.CA) -> trustme.LeafCert:
    """A client certificate issued by the test CA."""
    return tls_ca.issue_cert("logdrain-client@example.org")


@pytest.fixture(scope="session", name="client_cert_files")
def client_cert_files_fixture(
    client_cert: trustme.LeafCert, tmp_path_factory: pytest.TempPathFactory
) -> ClientCertFiles:
    """The client certificate written as cert.pem, key.pem and combined.pem."""
    folder = tmp_path_factory.mktemp("tls-client")
    cert, key, combined = folder / "cert.pem", folder / "key.pem", folder / "combined.pem"
    for blob in client_cert.cert_chain_pems:
        blob.write_to_path(str(cert), append=True)
    client_cert.private_key_pem.write_to_path(str(key))
    client_cert.private_key_and_cert_chain_pem.write_to_path(str(combined))
    return ClientCertFiles(str(cert), str(key), str(combined))


@pytest.fixture(name="tls_collector")
def tls_collector_fixture(tls_ca: trustme.CA, server_cert: trustme.LeafCert) -> Iterator[Collector]:
    """A live HTTPS collector on 127.0.0.1 presenting ``server_cert``."""
    with Collector(tls=make_server_context(tls_ca, server_cert)) as collector:
        yield collector
