"""Developer and CI sessions. ``nox`` alone runs what CI runs: ``tests`` (every
Python 3.10-3.13 found), ``lint``, ``typecheck`` and ``tls_inspection``;
``demo`` and ``bench`` on request."""

from __future__ import annotations

import os

import nox

# pyenv's python3.X shims refuse to run unless these versions are selected.
os.environ.setdefault("PYENV_VERSION", "3.11.7:3.10.13:3.12.1:3.13.0")

nox.options.sessions = ["tests", "lint", "typecheck", "tls_inspection"]
nox.options.error_on_missing_interpreters = False
nox.options.reuse_existing_virtualenvs = True

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
TEST_DEPS = [
    "pytest>=8",
    "pytest-timeout>=2.3",
    "hypothesis>=6.100",
    "structlog>=23.1",
    "numpy>=1.26",
    "orjson>=3.9",
    "trustme>=1.1",
    "proxy.py>=2.4",
    "gunicorn>=22; sys_platform != 'win32'",
    # tests/test_celery.py: a real worker on a real redis-server (.ci/run installs it)
    "celery>=5.4; sys_platform != 'win32'",
    "redis>=5.0; sys_platform != 'win32'",
    # tests/test_preset_otlp.py: the OTLP fake validates bodies with the official messages
    "opentelemetry-proto>=1.27",
    # tests/test_context.py: trace correlation with real SDK spans
    "opentelemetry-api>=1.27",
    "opentelemetry-sdk>=1.27",
    # tests/test_integrations_django.py: a real Django through its test client
    "django>=4.2",
]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole test suite against the installed package."""
    session.install(".", *TEST_DEPS)
    session.run("pytest", *(session.posargs or ["-q", "-p", "no:cacheprovider"]))


@nox.session(python="3.11")
def tls_inspection(session: nox.Session) -> None:
    """Through a real TLS-inspecting proxy (mitmproxy): too heavy for every Python."""
    session.install(".", "pytest>=8", "pytest-timeout>=2.3", "trustme>=1.1", "mitmproxy>=10")
    session.run("pytest", "-q", "-p", "no:cacheprovider", "tests/test_tls_inspection.py")


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", "src", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks", "noxfile.py")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package."""
    session.install(".[structlog,orjson]", "mypy>=1.10", "types-requests")
    session.run("mypy", "--strict", "src/logdrain")


@nox.session(python="3.11")
def demo(session: nox.Session) -> None:
    """python -m logdrain demo: embedded collector, outage, report."""
    session.install(".[structlog]")
    session.run("python", "-m", "logdrain", "demo", *session.posargs)


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Benchmarks: figures printed, not pass/fail. The peers measured side by
    side (benchmarks/compare.py) are installed here only: never dependencies."""
    peers = [
        "python-logstash-async==4.1.0",
        "opentelemetry-sdk==1.45.2",
        "opentelemetry-exporter-otlp-proto-http==1.45.2",
        "seqlog==0.4.3",
    ]
    session.install(".[structlog,orjson]", "numpy", *peers)
    session.run("python", "benchmarks/run.py", *session.posargs)
