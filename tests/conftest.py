"""Shared fixtures: a clean environment around every test and a live collector."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from logdrain.testing import Collector

_ENV_PREFIXES = ("LOGDRAIN_", "OTEL_", "DD_")
_ENV_NAMES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's proxy, CA or LOGDRAIN_* variables never change a test's meaning."""
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES) or name in _ENV_NAMES:
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def collector() -> Iterator[Collector]:
    """A live collector on 127.0.0.1 (ephemeral port), stopped after the test."""
    with Collector() as c:
        yield c


@pytest.fixture
def logger(request: pytest.FixtureRequest) -> Iterator[logging.Logger]:
    """A private, non-propagating logger at DEBUG; its handlers are closed after."""
    name = request.module.__name__.rpartition(".")[2].removeprefix("test_")
    log = logging.getLogger(f"test.{name}")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()
