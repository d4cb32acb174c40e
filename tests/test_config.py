"""Settings: validation with helpful messages, environment fallback, string forms,
secrets kept out of reprs, and the token on the wire."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from logdrain import ConfigError, Drain, Settings
from logdrain.config import DEFAULT_REQUEST_TIMEOUT, resolve
from logdrain.testing import Collector

pytestmark = pytest.mark.timeout(60)

URL = "http://127.0.0.1:9/ingest"
SECRET = "s3cr3t-t0ken-value"
HEADER_SECRET = "hdr-s3cr3t-value"


# (settings, field named in the error, a fragment of the suggested fix)
BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"queue_size": 0}, "queue_size", "raise it"),
    ({"queue_size": -5}, "queue_size", "raise it"),
    ({"batch_size": 0}, "batch_size", "raise it"),
    ({"batch_bytes": -1}, "batch_bytes", "raise it"),
    ({"max_record_bytes": 0}, "max_record_bytes", "raise it"),
    ({"max_record_bytes": 512}, "max_record_bytes", "raise it"),
    ({"concurrency": 0}, "concurrency", "raise it"),
    ({"concurrency": 65}, "concurrency", "at most 64"),
    ({"max_attempts": 0}, "max_attempts", "use 1 to never retry"),
    ({"flush_interval": 0}, "flush_interval", "seconds >= 0.01"),
    ({"read_timeout": -1}, "read_timeout", "seconds > 0"),
    ({"connect_timeout": 0}, "connect_timeout", "seconds > 0"),
    ({"backoff_max": 0}, "backoff_max", "seconds > 0"),
    ({"block_timeout": -0.5}, "block_timeout", "seconds >= 0"),
    ({"shutdown_timeout": -1}, "shutdown_timeout", "seconds >= 0"),
    ({"backoff_initial": 2, "backoff_max": 1}, "backoff_initial", "raise backoff_max"),
    ({"url": "127.0.0.1:8080/ingest"}, "url", "https://host:port/path"),
    ({"url": "ftp://127.0.0.1/ingest"}, "url", "https://host:port/path"),
    ({"url": "collector/ingest"}, "url", "https://host:port/path"),
    ({"url": "http:///ingest"}, "url", "https://host:port/path"),
    ({"url": "http://user:pw@127.0.0.1/ingest"}, "url", "pass token= or headers="),
    ({"url": 42}, "url", "give a string"),
    ({"batch_size": 200, "queue_size": 100}, "batch_size", "raise queue_size"),
    ({"batchsize": 10}, "batchsize", "did you mean 'batch_size'?"),
    ({"flush_intervall": 1}, "flush_intervall", "did you mean 'flush_interval'?"),
    ({"zzzz": 1}, "zzzz", "README"),
    ({"overflow": "drop_all"}, "overflow", "drop_oldest, drop_newest, block"),
    ({"format": "xml"}, "format", "json, ndjson, object"),
    ({"json_encoder": "ujson"}, "json_encoder", "auto, orjson, stdlib"),
    ({"format": "object", "batch_size": 5}, "batch_size", "batch_size=1"),
    ({"max_record_bytes": 8192, "batch_bytes": 4096}, "max_record_bytes", "raise batch_bytes"),
    ({"queue_size": "lots"}, "queue_size", "give an integer"),
    ({"queue_size": 1.5}, "queue_size", "give an integer"),
    ({"queue_size": True}, "queue_size", "whole number"),
    ({"flush_interval": "soon"}, "flush_interval", "give seconds as a number"),
    ({"flush_interval": float("nan")}, "flush_interval", "finite"),
    ({"read_timeout": "inf"}, "read_timeout", "finite"),
    ({"capture_crashes": "maybe"}, "capture_crashes", "true or false"),
    ({"headers": "not json"}, "headers", '{"X-Api-Key": "..."}'),
    ({"headers": {"X-Key": 1}}, "headers", "quote the value"),
    ({"batch_id_header": "X Batch"}, "batch_id_header", "X-Batch-Id"),
    ({"flush_on_signals": "SIGNOPE"}, "flush_on_signals", "SIGTERM"),
    # -- issue 9 item 14: settings that failed late or obscurely --
    ({"flush_on_signals": "SIGKILL"}, "flush_on_signals", "use SIGTERM or SIGINT"),
    ({"flush_on_signals": ["SIGTERM", "stop"]}, "flush_on_signals", "use SIGTERM or SIGINT"),
    ({"flush_on_signals": 9}, "flush_on_signals", "use SIGTERM or SIGINT"),
    ({"flush_on_signals": 1.5}, "flush_on_signals", "SIGTERM"),
    ({"url": "http://127.0.0.1:99999/ingest"}, "url", "https://host:port/path"),
    ({"url": "http://127.0.0.1:abc/ingest"}, "url", "https://host:port/path"),
    ({"url": "http://127.0.0.1:0/ingest"}, "url", "https://host:port/path"),
    ({"url": "http://[::1/x"}, "url", "https://host:port/path"),
    ({"url": "http://[not-ipv6]/x"}, "url", "https://host:port/path"),
    ({"url": "http://exa mple.com/ingest"}, "url", "https://host:port/path"),
    ({"url": "http://example.com\n/ingest"}, "url", "https://host:port/path"),
    ({"url": "http://exa<mple.com/ingest"}, "url", "https://host:port/path"),
    ({"fields": 5}, "fields", "give a list"),
    ({"envelope_required": 5}, "envelope_required", "give a list"),
    ({"no_proxy": 5}, "no_proxy", "give a list"),
    ({"batch_id_header": "Content-Length"}, "batch_id_header", "X-Batch-Id"),
    ({"batch_id_header": "authorization"}, "batch_id_header", "X-Batch-Id"),
    ({"batch_id_header": "HOST"}, "batch_id_header", "X-Batch-Id"),
    ({"batch_id_header": "Transfer-Encoding"}, "batch_id_header", "X-Batch-Id"),
    ({"batch_id_header": "X-Batch:Id"}, "batch_id_header", "X-Batch-Id"),
    ({"name": "api\nlogdrain[forged]: all good"}, "name", "one-line name"),
    ({"name": "api\x1b[31m"}, "name", "one-line name"),
    ({"flush_interval": 1e-9}, "flush_interval", "flush()"),
    ({"flush_interval": 0.005}, "flush_interval", "seconds >= 0.01"),
    ({"request_timeout": 0}, "request_timeout", "seconds > 0"),
    ({"request_timeout": -1}, "request_timeout", "seconds > 0"),
    ({"request_timeout": "soon"}, "request_timeout", "give seconds as a number"),
    ({"headers": {"X Key": "v"}}, "headers", "X-Api-Key"),
    ({"headers": {"": "v"}}, "headers", "X-Api-Key"),
    ({"headers": {"X-Key:": "v"}}, "headers", "X-Api-Key"),
    ({"headers": {"X-Key": "a\r\nX-Injected: 1"}}, "headers", "check how the value is read"),
    ({"headers": {"X-Key": "a\x00b"}}, "headers", "check how the value is read"),
    ({"headers": {"X-Key": "caf\u20ac"}}, "headers", "check how the value is read"),
    ({"token": "abc\ndef"}, "token", "check how the token is read"),
    ({"token": "abc\tdef"}, "token", "check how the token is read"),
    ({"token": " \n"}, "token", "leave it unset"),
    ({"proxy": "http://pro xy:3128"}, "proxy", "http://user:pass@host:3128"),
    ({"proxy": "http://proxy:99999"}, "proxy", "http://user:pass@host:3128"),
    ({"proxy": "http://proxy:0"}, "proxy", "http://user:pass@host:3128"),
    ({"proxy": "http://[::1:3128"}, "proxy", "http://user:pass@host:3128"),
]


@pytest.mark.parametrize(("options", "field", "fix"), BAD, ids=[repr(b[0]) for b in BAD])
def test_wrong_setting_raises_config_error(options: dict[str, Any], field: str, fix: str) -> None:
    """Each wrong setting raises ConfigError naming the field and a fix, at construction."""
    kwargs = {"url": URL, **options}
    url = kwargs.pop("url")
    with pytest.raises(ConfigError) as info:
        Drain(url, **kwargs)
    assert info.value.field == field
    message = str(info.value)
    assert f"{field}:" in message
    assert fix in message
    assert isinstance(info.value, ValueError)


def test_missing_url_names_the_env_variable() -> None:
    """Without url= or LOGDRAIN_URL, the error says how to supply one."""
    with pytest.raises(ConfigError) as info:
        Drain()
    assert info.value.field == "url"
    assert "LOGDRAIN_URL" in str(info.value)


def test_bad_env_value_is_reported_under_its_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """A malformed LOGDRAIN_* variable fails like the keyword would."""
    monkeypatch.setenv("LOGDRAIN_BATCH_SIZE", "fifty")
    with pytest.raises(ConfigError) as info:
        resolve({"url": URL})
    assert info.value.field == "batch_size"
    assert "'fifty'" in str(info.value)


def test_env_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """LOGDRAIN_URL and LOGDRAIN_TOKEN are used when the arguments are absent."""
    monkeypatch.setenv("LOGDRAIN_URL", URL)
    monkeypatch.setenv("LOGDRAIN_TOKEN", SECRET)
    monkeypatch.setenv("LOGDRAIN_BATCH_SIZE", "50")
    with Drain(capture_crashes=False) as drain:
        assert drain.settings.url == URL
        assert drain.settings.token == SECRET
        assert drain.settings.batch_size == 50


def test_explicit_argument_wins_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit argument beats its environment variable; None means 'not given'."""
    monkeypatch.setenv("LOGDRAIN_URL", "http://127.0.0.1:1/env")
    monkeypatch.setenv("LOGDRAIN_TOKEN", "env-token")
    monkeypatch.setenv("LOGDRAIN_QUEUE_SIZE", "3000")
    settings = resolve({"url": URL, "token": SECRET, "queue_size": 700})
    assert (settings.url, settings.token, settings.queue_size) == (URL, SECRET, 700)
    fallback = resolve({"url": URL, "token": None, "queue_size": None})
    assert (fallback.token, fallback.queue_size) == ("env-token", 3000)


def test_string_forms_are_accepted() -> None:
    """Every setting takes its string form, as dictConfig and env variables give them."""
    settings = resolve(
        {
            "url": URL,
            "queue_size": "200",
            "batch_size": "1_00",
            "flush_interval": "0.5",
            "capture_crashes": "true",
            "headers": '{"X-Env": "prod"}',
            "flush_on_signals": "term, SIGINT",
        }
    )
    assert settings.queue_size == 200
    assert settings.batch_size == 100
    assert settings.flush_interval == 0.5
    assert settings.capture_crashes is True
    assert resolve({"url": URL, "capture_crashes": "off"}).capture_crashes is False
    assert dict(settings.headers) == {"X-Env": "prod"}
    assert settings.flush_on_signals == ("SIGTERM", "SIGINT")


def test_defaults_and_object_format_batch_size() -> None:
    """Unset settings take their defaults; format='object' alone implies batch_size=1."""
    settings = resolve({"url": URL})
    assert isinstance(settings, Settings)
    defaults = (settings.overflow, settings.format, settings.batch_size)
    assert defaults == ("drop_oldest", "json", 2000)
    assert resolve({"url": URL, "format": "object"}).batch_size == 1


def test_reprs_hide_token_and_header_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """repr() of settings and drain never show the token or header values."""
    monkeypatch.setenv("LOGDRAIN_TOKEN", SECRET)
    with Drain(URL, headers={"X-Api-Key": HEADER_SECRET}, capture_crashes=False) as drain:
        texts = [repr(drain.settings), str(drain.settings), repr(drain)]
        assert drain.settings.token == SECRET
    for text in texts:
        assert SECRET not in text
        assert HEADER_SECRET not in text
    assert "X-Api-Key" in texts[0]
    assert "token='***'" not in texts[0]
    assert "token=***" in texts[0]
    assert "127.0.0.1:9/ingest" in texts[2]


def test_token_and_headers_sent_on_the_wire(collector: Collector) -> None:
    """The token goes out as 'Authorization: Bearer <token>' along with custom headers."""
    with Drain(
        collector.url,
        token=SECRET,
        headers={"X-Api-Key": HEADER_SECRET},
        flush_interval=0.05,
        capture_crashes=False,
    ) as drain:
        assert drain.submit({"message": "hello"}) is True
        assert drain.flush(timeout=30) is True
        assert drain.stats().delivered == 1
    (request,) = collector.requests
    assert request.headers["Authorization"] == f"Bearer {SECRET}"
    assert request.headers["X-Api-Key"] == HEADER_SECRET
    assert request.headers["User-Agent"].startswith("logdrain/")
    assert collector.records == [{"message": "hello"}]


def test_env_token_sent_on_the_wire(collector: Collector, monkeypatch: pytest.MonkeyPatch) -> None:
    """LOGDRAIN_URL/LOGDRAIN_TOKEN alone are enough to deliver with authorization."""
    monkeypatch.setenv("LOGDRAIN_URL", collector.url)
    monkeypatch.setenv("LOGDRAIN_TOKEN", SECRET)
    with Drain(flush_interval=0.05, capture_crashes=False) as drain:
        assert drain.submit({"message": "from env"}) is True
        assert drain.flush(timeout=30) is True
    (request,) = collector.requests
    assert request.headers["Authorization"] == f"Bearer {SECRET}"


def test_orjson_encoder_without_orjson_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Asking for orjson where it is not installed fails at construction, naming the extra."""
    monkeypatch.setitem(sys.modules, "orjson", None)  # makes `import orjson` fail
    with pytest.raises(ConfigError) as info:
        resolve({"url": URL, "json_encoder": "orjson"})
    assert info.value.field == "json_encoder"
    assert "logdrain[orjson]" in str(info.value)
    assert resolve({"url": URL, "json_encoder": "auto"}).json_encoder == "auto"


def test_request_timeout_default_env_and_no_ordering(monkeypatch: pytest.MonkeyPatch) -> None:
    """request_timeout (total deadline of one attempt) defaults to 30 s, reads
    LOGDRAIN_REQUEST_TIMEOUT, and may be below connect/read_timeout (it caps them)."""
    assert resolve({"url": URL}).request_timeout == DEFAULT_REQUEST_TIMEOUT == 30.0
    monkeypatch.setenv("LOGDRAIN_REQUEST_TIMEOUT", "2.5")
    assert resolve({"url": URL}).request_timeout == 2.5
    capped = resolve({"url": URL, "request_timeout": 1, "read_timeout": 60})
    assert (capped.request_timeout, capped.read_timeout) == (1.0, 60.0)


def test_uncatchable_signal_is_refused_before_any_handler_is_touched() -> None:
    """flush_on_signals=SIGKILL is a ConfigError from parsing (no OSError from signal)."""
    with pytest.raises(ConfigError) as info:
        resolve({"url": URL, "flush_on_signals": "TERM,KILL"})
    assert info.value.field == "flush_on_signals"
    assert "SIGKILL cannot be caught" in str(info.value)


def test_names_accept_any_iterable_of_strings() -> None:
    """fields/envelope_required/no_proxy: lists, tuples, sets, strings."""
    settings = resolve(
        {"url": URL, "fields": ("message", "level"), "no_proxy": ["a.example", "b.example"]}
    )
    assert settings.fields == ("message", "level")
    assert settings.no_proxy == "a.example,b.example"
    assert resolve({"url": URL, "envelope_required": {"bucket"}, "envelope": {"bucket": "a"}})
