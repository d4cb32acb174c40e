"""Secrets never leak (issue 9, items 13 and 15): not in any form a message can
show them in (as is, repr- or JSON-escaped, percent-encoded, base64 of
``user:password``), not through a URL's userinfo or query string, not through
a value read from a file with its trailing newline; and one warning when
credentials would travel over plain ``http://`` beyond loopback."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

import logdrain
from logdrain import ConfigError
from logdrain.config import mask_url, plain_http_secret_warning, resolve
from logdrain.report import Reporter
from logdrain.testing import Collector

from .proxy_helpers import dead_port

pytestmark = pytest.mark.timeout(60)

TOKEN = "T0KEN-s3cr3t-value"
HEADER_SECRET = "hdr-s3cr3t-value"
PASSWORD = "hunter2-pw"
QUERY_SECRET = "qs-s3cr3t-key"
FAST: dict[str, Any] = {
    "flush_interval": 0.05,
    "backoff_initial": 0.01,
    "backoff_max": 0.05,
    "capture_crashes": False,
    "max_attempts": 1,
}


def ship_one(url: str, **options: Any) -> logdrain.DrainStats:
    """One record through a fresh drain, closed before returning (its stderr written)."""
    with logdrain.Drain(url, **{**FAST, **options}) as drain:
        drain.submit({"message": "hello"})
        drain.flush(timeout=30)
    return drain.stats()


# -- values read from files: the trailing newline -------------------------------------


def test_token_read_from_a_file_is_stripped_and_delivers(
    collector: Collector, capsys: pytest.CaptureFixture[str]
) -> None:
    """token='...\\n' (read from a file) ships as the token itself: delivered, not
    rejected with the token printed in its repr-escaped form."""
    settings = resolve({"url": collector.url, "token": f"  {TOKEN}\n"})
    assert settings.token == TOKEN
    stats = ship_one(collector.url, token=f"{TOKEN}\n")
    assert stats.delivered == 1, stats
    (request,) = collector.requests
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in capsys.readouterr().err


def test_header_value_read_from_a_file_is_stripped(collector: Collector) -> None:
    """A header value's surrounding whitespace (a file's newline) is dropped."""
    stats = ship_one(collector.url, headers={"X-Api-Key": f"{HEADER_SECRET}\r\n"})
    assert stats.delivered == 1, stats
    (request,) = collector.requests
    assert request.headers["X-Api-Key"] == HEADER_SECRET


# -- refusals never echo the secret -----------------------------------------------------

REFUSED: list[tuple[dict[str, Any], str, str]] = [
    ({"token": f"{TOKEN}\nX-Injected: 1"}, "token", TOKEN),
    ({"token": f"{TOKEN}\x00"}, "token", TOKEN),
    ({"token": f"{TOKEN}\u2028x"}, "token", TOKEN),
    ({"headers": {"X-Api-Key": f"{HEADER_SECRET}\r\nX-Injected: 1"}}, "headers", HEADER_SECRET),
    ({"headers": {"X-Api-Key": f"{HEADER_SECRET}\u20ac"}}, "headers", HEADER_SECRET),
    ({"url": f"ftp://alice:{PASSWORD}@127.0.0.1/ingest"}, "url", PASSWORD),
    ({"url": f"http://alice:{PASSWORD}@/ingest"}, "url", PASSWORD),
    ({"url": f"http://alice:{PASSWORD}@127.0.0.1:99999/ingest"}, "url", PASSWORD),
    ({"url": f"http://alice:{PASSWORD}@[::1/ingest"}, "url", PASSWORD),
    ({"url": f"http://alice:{PASSWORD} x@127.0.0.1/ingest"}, "url", PASSWORD),
    ({"url": f"http://alice:{PASSWORD}@127.0.0.1/ingest"}, "url", PASSWORD),
    ({"url": f"ftp://127.0.0.1/ingest?api_key={QUERY_SECRET}"}, "url", QUERY_SECRET),
    ({"url": f"http://127.0.0.1:0/ingest?api_key={QUERY_SECRET}"}, "url", QUERY_SECRET),
    ({"proxy": f"http://alice:{PASSWORD}@proxy:99999"}, "proxy", PASSWORD),
    ({"proxy": f"http://alice:{PASSWORD}\n@proxy:3128"}, "proxy", PASSWORD),
    ({"proxy": f"http://alice:{PASSWORD}@pro xy:3128"}, "proxy", PASSWORD),
]


@pytest.mark.parametrize(
    ("options", "field", "secret"), REFUSED, ids=[repr(r[0])[:60] for r in REFUSED]
)
def test_refused_setting_never_echoes_its_secret(
    options: dict[str, Any], field: str, secret: str
) -> None:
    """Each is a ConfigError naming the field; neither message nor repr holds the secret."""
    with pytest.raises(ConfigError) as info:
        resolve({"url": "https://127.0.0.1/ingest", **options})
    assert info.value.field == field
    for text in (str(info.value), repr(info.value)):
        assert secret not in text
        assert secret[:8] not in text


# -- redaction of every form ------------------------------------------------------------

ODD_SECRET = "Tk/+ \"q' \u00e9\\x=y&z"


def forms(secret: str) -> dict[str, str]:
    """The forms a message can carry ``secret`` in, computed independently."""
    return {
        "as is": secret,
        "str repr": repr(secret)[1:-1],
        "repr in a dict": repr({"h": secret}),
        "repr of repr": repr(repr(secret)),
        "bytes repr": repr(secret.encode()),
        "ascii": ascii(secret),
        "json": json.dumps(secret),
        "json (utf-8)": json.dumps({"t": secret}, ensure_ascii=False),
        "quote": quote(secret, safe=""),
        "quote (path)": quote(secret),
        "quote_plus": quote_plus(secret, safe=""),
    }


@pytest.mark.parametrize("secret", [ODD_SECRET, f"{TOKEN}\n", "pl\u00e4in-t0ken"])
@pytest.mark.parametrize("form", list(forms("x")))
def test_redact_catches_every_form(secret: str, form: str) -> None:
    """Reporter.redact replaces the secret in each of its forms."""
    reporter = Reporter("t", 10.0)
    reporter.add_secret(secret)
    shown = forms(secret)[form]
    text = reporter.redact(f"before {shown} after")
    assert "***" in text
    assert text.startswith("before ")
    assert text.endswith(" after")
    for piece in ("T0KEN-s3cr3t", "Tk/+", "Tk%2F", "pl\u00e4in", "pl\\xe4in", "pl%C3%A4in"):
        assert piece not in text, (form, text)


def test_basic_auth_base64_is_a_secret() -> None:
    """The base64 of user:password (a Basic header) is redacted, for auth and a proxy."""
    settings = resolve(
        {"url": "https://h/ingest", "auth": ("alice", PASSWORD), "proxy": "http://bob:pw%40x@p:1"}
    )
    reporter = Reporter("t", 10.0)
    for secret in settings.secrets():
        reporter.add_secret(secret)
    for user, password in (("alice", PASSWORD), ("bob", "pw%40x"), ("bob", "pw@x")):
        encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
        assert encoded not in reporter.redact(f"Authorization: Basic {encoded}")
    assert "pw@x" not in reporter.redact("password pw@x")


def test_provider_token_with_a_newline_never_reaches_stderr(
    collector: Collector, capsys: pytest.CaptureFixture[str]
) -> None:
    """requests shows a bad header value as its repr ('...\\n'): still redacted."""
    stats = ship_one(collector.url, token_provider=lambda: f"{TOKEN}\n")
    err = capsys.readouterr().err
    assert TOKEN not in err
    assert stats.delivered == 1 or "logdrain[" in err, (stats, err)


def test_secret_echoed_by_the_collector_is_redacted(
    collector: Collector, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 401 whose body quotes the token JSON-escaped is shown without it."""
    token = 'tok/with"quote'
    collector.script(401, body=json.dumps({"error": f"bad token {token}"}).encode())
    stats = ship_one(collector.url, token=token)
    assert stats.rejected == 1, stats
    err = capsys.readouterr().err
    assert "HTTP 401" in err
    assert "tok/with" not in err


# -- the URL's query string ---------------------------------------------------------------


def test_query_string_secret_is_masked_in_repr_and_redacted() -> None:
    """?api_key=... is masked in repr(Settings) and is one of Settings.secrets()."""
    url = f"https://collector.example/ingest?api_key={QUERY_SECRET}&region=eu"
    settings = resolve({"url": url})
    assert settings.url == url
    assert QUERY_SECRET not in repr(settings)
    assert "api_key=***" in repr(settings)
    assert QUERY_SECRET in settings.secrets()
    assert QUERY_SECRET not in repr(logdrain.Drain(url, capture_crashes=False))


def test_query_string_secret_never_reaches_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    """requests' connection errors name the URL with its query: redacted."""
    url = f"http://127.0.0.1:{dead_port()}/ingest?api_key={QUERY_SECRET}&sig=a%2Fb%2Bc"
    stats = ship_one(url)
    assert stats.failed + stats.rejected == 1, stats
    err = capsys.readouterr().err
    assert "logdrain[" in err
    for secret in (QUERY_SECRET, "a%2Fb%2Bc", "a/b+c"):
        assert secret not in err


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://h/p?k=v&x=1", "https://h/p?k=***&x=***"),
        ("https://h/p?lonely", "https://h/p?***"),
        ("https://h/p?k=", "https://h/p?k="),
        ("http://u:pw@h:81/p", "http://u:***@h:81/p"),
        ("http://u:pw@[::1]:81/p", "http://u:***@[::1]:81/p"),
        ("http://u:pw@h:99999/p?k=v", "http://***@h:99999/p?k=***"),
        ("http://u:pw@[::1/p", "http://***@[::1/p"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    """Passwords and query values masked, also in URLs too broken to parse."""
    assert mask_url(url) == shown


# -- item 15: plain HTTP -------------------------------------------------------------


def always() -> str:
    return TOKEN


SENT: list[tuple[dict[str, Any], str]] = [
    ({"token": TOKEN}, "the token"),
    ({"token_provider": always}, "token_provider"),
    ({"auth": ("alice", PASSWORD)}, "auth"),
    ({"headers": {"X-Api-Key": HEADER_SECRET}}, "X-Api-Key"),
]


@pytest.mark.parametrize(("options", "named"), SENT, ids=[s[1] for s in SENT])
@pytest.mark.parametrize(
    "url", ["http://10.0.0.5/ingest", "http://logs.example.com:8080/x", "http://[fe80::1]/x"]
)
def test_plain_http_secret_warning(options: dict[str, Any], named: str, url: str) -> None:
    """Credentials over http:// beyond loopback: one line naming what, never the value."""
    settings = resolve({"url": url, "name": "orders", **options})
    line = plain_http_secret_warning(settings)
    assert line is not None
    assert line.startswith("logdrain[orders]: WARNING:")
    assert named in line
    assert "https://" in line
    assert "\n" not in line
    for secret in (TOKEN, HEADER_SECRET, PASSWORD):
        assert secret not in line


@pytest.mark.parametrize(
    ("url", "proxy"),
    [
        ("https://logs.example.com/ingest", None),
        ("https://logs.example.com/ingest", "http://proxy.example:3128"),
        ("http://127.0.0.1:8080/ingest", None),
        ("http://127.9.9.9/ingest", None),
        ("http://[::1]:8080/ingest", None),
        ("http://localhost/ingest", None),
        ("http://LOCALHOST./ingest", "http://127.0.0.1:3128"),
    ],
)
def test_no_plain_http_warning_when_encrypted_or_local(url: str, proxy: str | None) -> None:
    """https://, or a collector (and proxy) on loopback: no warning."""
    settings = resolve({"url": url, "token": TOKEN, "headers": {"X-Api-Key": HEADER_SECRET}})
    assert plain_http_secret_warning(settings, proxy) is None


def test_plain_http_warning_through_a_remote_proxy_or_without_secrets() -> None:
    """A loopback collector reached through a remote proxy still crosses the network;
    nothing to protect, nothing to say."""
    local = resolve({"url": "http://127.0.0.1/ingest", "token": TOKEN})
    line = plain_http_secret_warning(local, "http://alice:pw@proxy.example:3128")
    assert line is not None
    assert "proxy.example" in line
    assert "pw" not in line.replace("plain", "")
    assert plain_http_secret_warning(resolve({"url": "http://10.0.0.5/ingest"})) is None
