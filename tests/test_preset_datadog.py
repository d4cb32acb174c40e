"""The ``datadog`` preset and the strict Datadog logs fake on 127.0.0.1: the
log objects, ``DD-API-KEY``, the URL from ``site``/``DD_SITE``, ``DD_*``
variables below explicit settings, 202/403/429/503/413 answers, options
checked at construction; and the fake itself, driven by plain requests."""

from __future__ import annotations

import gzip
import json
import logging
import logging.config
import socket
import zlib
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import requests

import logdrain
from logdrain.testing.dialects._base import StrictCollector
from logdrain.testing.dialects._datadog import Datadog

pytestmark = pytest.mark.timeout(120)

KEY = "5f0c3a6e9b2d4e81a7c6d5e4f3a2b1c0"
FAST: dict[str, Any] = {"flush_interval": 0.05, "backoff_initial": 0.01, "backoff_max": 0.05}
ONE_BATCH: dict[str, Any] = {"flush_interval": 30, "concurrency": 1}


class Keep(logging.Handler):
    """Keeps the records it sees, for their exact ``created``."""

    seen: ClassVar[list[logging.LogRecord]] = []

    def emit(self, record: logging.LogRecord) -> None:
        Keep.seen.append(record)


@pytest.fixture
def dd() -> Iterator[StrictCollector]:
    with StrictCollector(Datadog(api_keys=[KEY])) as fake:
        yield fake


def drain(fake: StrictCollector, **settings: Any) -> logdrain.Drain:
    merged = {"token": KEY, **FAST, **settings}
    return logdrain.Drain(fake.base_url, preset="datadog", **merged)


def test_dictconfig_ships_the_exact_logs(dd: StrictCollector) -> None:
    Keep.seen = []
    name = "test.preset_datadog.dictconfig"
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {
                "dd": {
                    "class": "logdrain.DrainHandler",
                    "url": dd.base_url,
                    "preset": "datadog",
                    "token": KEY,
                    "service": "orders",
                    "tags": "env:prod,team:core",
                    "host": "web-1",
                    "flush_interval": "0.05",
                },
                "keep": {"()": f"{__name__}.Keep"},
            },
            "loggers": {name: {"handlers": ["keep", "dd"], "level": "DEBUG"}},
        }
    )
    log = logging.getLogger(name)
    handler = log.handlers[1]
    try:
        assert isinstance(handler, logdrain.DrainHandler)
        assert handler.drain.settings.url == dd.url
        log.info("paid %s", "bob", extra={"user": "u1", "status": 200})
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
        assert handler.drain.flush(10) is True
        stats = handler.drain.stats()
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
    assert (stats.delivered, stats.rejected, stats.balanced) == (2, 0, True)
    first, second = Keep.seen
    reserved = {"ddsource": "python", "ddtags": "env:prod,team:core", "hostname": "web-1"}
    paid, failed = dd.records
    assert paid == {
        "timestamp": round(first.created * 1000),
        "level": "INFO",
        "logger": name,
        "message": "paid bob",
        "user": "u1",
        **reserved,
        "service": "orders",
        "status": "info",  # the level's, not the record's own "status" field
    }
    assert failed.pop("exception").splitlines()[-1] == "ValueError: boom"
    assert failed == {
        "timestamp": round(second.created * 1000),
        "level": "ERROR",
        "logger": name,
        "message": "failed",
        **reserved,
        "service": "orders",
        "status": "error",
    }
    (request,) = dd.requests
    assert request.path == "/api/v2/logs" and request.status == 202
    assert request.headers["DD-API-KEY"] == KEY and "Authorization" not in request.headers
    assert request.headers["Content-Type"] == "application/json"
    assert isinstance(json.loads(request.body), list)


def test_defaults_and_statuses_from_levels(dd: StrictCollector) -> None:
    with drain(dd, **ONE_BATCH) as d:
        settings = d.settings
        for level in ("debug", "info", "warning", "error", "critical", "notice"):
            d.submit({"message": level, "level": level})
        d.submit({"message": {"not": "a string"}, "level": 25})
        assert d.flush(10) is True
    assert (settings.batch_size, settings.batch_bytes, settings.max_record_bytes) == (
        1000,
        4_750_000,
        950_000,
    )
    assert settings.options == {"host": socket.gethostname()}
    statuses = [log["status"] for log in dd.records]
    assert statuses == ["debug", "info", "warning", "error", "critical", "notice", "info"]
    assert dd.records[-1]["message"] == '{"not":"a string"}'
    assert {log["hostname"] for log in dd.records} == {socket.gethostname()}
    assert all("ddtags" not in log and "service" not in log for log in dd.records)


def test_url_from_site_and_dd_site(monkeypatch: pytest.MonkeyPatch) -> None:
    def url(**settings: Any) -> str:
        d = logdrain.Drain(preset="datadog", token=KEY, capture_crashes=False, **settings)
        d.close(0)
        return d.settings.url

    assert url() == "https://http-intake.logs.datadoghq.com/api/v2/logs"
    assert url(site="datadoghq.eu") == "https://http-intake.logs.datadoghq.eu/api/v2/logs"
    monkeypatch.setenv("DD_SITE", "us5.datadoghq.com")
    assert url() == "https://http-intake.logs.us5.datadoghq.com/api/v2/logs"
    assert url(site="US3.datadoghq.com") == "https://http-intake.logs.us3.datadoghq.com/api/v2/logs"
    assert url(url="https://proxy.example:8443") == "https://proxy.example:8443/api/v2/logs"


def test_dd_api_key_is_the_token_unless_one_is_given(
    dd: StrictCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DD_API_KEY", KEY)
    with logdrain.Drain(dd.base_url, preset="datadog", **FAST) as d:
        d.submit({"message": "from DD_API_KEY"})
        assert d.flush(10) is True
        assert d.stats().delivered == 1
    monkeypatch.setenv("DD_API_KEY", "ffffffffffffffffffffffffffffffff")
    with drain(dd) as d:  # the explicit token wins
        d.submit({"message": "explicit"})
        assert d.flush(10) is True
        assert d.stats().delivered == 1
    monkeypatch.setenv("LOGDRAIN_TOKEN", KEY)
    with logdrain.Drain(dd.base_url, preset="datadog", **FAST) as d:  # LOGDRAIN_ wins too
        d.submit({"message": "LOGDRAIN_TOKEN"})
        assert d.flush(10) is True
    assert [r.headers["DD-API-KEY"] for r in dd.requests] == [KEY] * 3
    assert [log["message"] for log in dd.records] == [
        "from DD_API_KEY",
        "explicit",
        "LOGDRAIN_TOKEN",
    ]


def test_unified_service_tagging_variables(
    dd: StrictCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DD_SERVICE", "billing")
    monkeypatch.setenv("DD_ENV", "staging")
    monkeypatch.setenv("DD_VERSION", "1.4.2")
    monkeypatch.setenv("DD_TAGS", "team:pay region:eu")
    with drain(dd) as d:
        d.submit({"message": "env"})
        assert d.flush(10) is True
    with drain(dd, service="explicit", tags={"env": "prod"}) as d:
        d.submit({"message": "explicit"})
        assert d.flush(10) is True
    first, second = dd.records
    assert (first["service"], first["ddtags"]) == (
        "billing",
        "team:pay,region:eu,env:staging,version:1.4.2",
    )
    assert (second["service"], second["ddtags"]) == ("explicit", "env:prod")


def test_a_refused_api_key_is_rejected_and_never_shown(
    dd: StrictCollector, capfd: pytest.CaptureFixture[str]
) -> None:
    wrong = "0badbadbadbadbadbadbadbadbadbad0"
    with drain(dd, token=wrong, batch_size=2, **ONE_BATCH) as d:
        d.submit({"message": "a"})
        d.submit({"message": "b"})
        assert d.flush(10) is True
        stats = d.stats()
        shown = [repr(d), repr(d.settings)]
    assert (stats.delivered, stats.rejected, stats.retries, stats.balanced) == (0, 2, 0, True)
    assert dd.records == [] and dd.requests[0].status == 403
    err = capfd.readouterr().err
    assert "2 record(s) rejected" in err and "API key is missing or invalid" in err
    assert all(wrong not in text for text in [err, *shown])


@pytest.mark.parametrize(
    ("kind", "params", "status"),
    [("throttled", {"retry_after": "0.05"}, 429), ("unavailable", {}, 503)],
)
def test_throttled_and_unavailable_are_retried(
    dd: StrictCollector, kind: str, params: dict[str, Any], status: int
) -> None:
    dd.play(kind, times=2, **params)
    with drain(dd, batch_size=3, compress="gzip", **ONE_BATCH) as d:
        for i in range(3):
            d.submit({"message": f"m{i}"})
        assert d.flush(10) is True
        stats = d.stats()
    assert (stats.delivered, stats.retries, stats.rejected, stats.balanced) == (3, 2, 0, True)
    assert [r.status for r in dd.requests] == [status, status, 202]
    assert [log["message"] for log in dd.records] == ["m0", "m1", "m2"]
    assert dd.requests[0].headers["Content-Encoding"] == "gzip"


def test_a_bad_request_is_rejected_with_datadog_detail(
    dd: StrictCollector, capfd: pytest.CaptureFixture[str]
) -> None:
    error = {"errors": [{"status": "400", "title": "Bad Request", "detail": "Malformed payload"}]}
    dd.play("error", status=400, body=error)
    with drain(dd) as d:
        d.submit({"message": "m"})
        assert d.flush(10) is True
        assert (d.stats().rejected, d.stats().balanced) == (1, True)
    assert "Datadog: bad request: Malformed payload" in capfd.readouterr().err


def test_413_splits_and_every_log_arrives_once() -> None:
    with StrictCollector(Datadog(api_keys=[KEY], max_entries=4, max_payload=3000)) as dd:
        with drain(
            dd, batch_size=13, batch_bytes=100_000, max_record_bytes=50_000, **ONE_BATCH
        ) as d:
            for i in range(13):
                d.submit({"message": f"m{i:02d} " + "x" * 150})
            assert d.flush(10) is True
            stats = d.stats()
        got = sorted(log["message"][:3] for log in dd.records)
        taken = [r for r in dd.requests if r.status == 202]
    assert (stats.delivered, stats.rejected, stats.failed, stats.balanced) == (13, 0, 0, True)
    assert got == [f"m{i:02d}" for i in range(13)]  # each exactly once
    assert all(r.record_count <= 4 and len(r.body) <= 3000 for r in taken)
    assert any(r.status == 413 for r in dd.requests)


def test_a_log_above_1_mb_is_shortened_before_datadog_would_cut_it(dd: StrictCollector) -> None:
    with drain(dd) as d:
        d.submit({"message": "x" * 1_200_000})
        assert d.flush(10) is True
        assert (d.stats().delivered, d.stats().truncated) == (1, 1)
    (log,) = dd.records
    assert len(json.dumps(log)) <= 1_000_000 and "truncated" in log["message"]
    assert dd.dialect.truncated == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("options", "field", "says"),
    [
        ({"site": "app.datadoghq.com"}, "site", "the site is 'datadoghq.com'"),
        ({"site": "https://datadoghq.eu/"}, "site", "no scheme"),
        ({"tags": {"team": ["a"]}}, "tags", "string or a number"),
        ({"tags": ["env:prod,team:a"]}, "tags", "no commas"),
        ({"tags": 7}, "tags", "a mapping, a list"),
        ({"source": ""}, "source", "non-empty string"),
        ({"service": "a\tb"}, "service", "one line"),
        ({"sight": "datadoghq.eu"}, "sight", "did you mean 'site'?"),
    ],
)
def test_wrong_options_fail_at_construction(options: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(logdrain.ConfigError) as info:
        logdrain.Drain(preset="datadog", token=KEY, capture_crashes=False, **options)
    assert info.value.field == field
    assert says in str(info.value) and "preset 'datadog'" in str(info.value)


# -- the fake itself, from plain requests --


def post(fake: StrictCollector, body: bytes, **headers: str) -> requests.Response:
    sent = {"DD-API-KEY": KEY, "Content-Type": "application/json", **headers}
    return requests.post(
        fake.url, data=body, headers={k: v for k, v in sent.items() if v}, timeout=5
    )


def detail(answer: requests.Response) -> str:
    (error,) = answer.json()["errors"]
    assert error["status"] == str(answer.status_code)
    return str(error["detail"])


def test_the_fake_takes_arrays_objects_gzip_and_deflate(dd: StrictCollector) -> None:
    logs = [{"message": "a", "ddsource": "python"}, {"message": "b"}]
    array = json.dumps(logs).encode()
    answers = [
        post(dd, array),
        post(dd, json.dumps({"message": "c"}).encode()),
        post(dd, gzip.compress(array), **{"Content-Encoding": "gzip"}),
        post(dd, zlib.compress(array), **{"Content-Encoding": "deflate"}),
    ]
    assert [(a.status_code, a.json()) for a in answers] == [(202, {})] * 4
    assert dd.records == [*logs, {"message": "c"}, *logs, *logs]


@pytest.mark.parametrize(
    ("body", "headers", "status", "says"),
    [
        (b"[]", {"DD-API-KEY": ""}, 403, "API key is missing or invalid"),
        (b"[]", {"DD-API-KEY": "nope"}, 403, "API key is missing or invalid"),
        (b"[]", {"Content-Type": "text/plain"}, 400, "Content-Type"),
        (b"[{", {}, 400, "malformed JSON"),
        (b"[1]", {}, 400, "not a JSON object"),
        (b'[{"hostname": 5}]', {}, 400, "hostname must be a string"),
        (b"x", {"Content-Encoding": "gzip"}, 400, "gzip body"),
        (b"[]", {"Content-Encoding": "br"}, 400, "Content-Encoding"),
        (b"[" + b",".join([b"{}"] * 1001) + b"]", {}, 413, "1001 entries"),
        (b'[{"message": "' + b"x" * 5_000_000 + b'"}]', {}, 413, "uncompressed"),
    ],
)
def test_the_fake_refuses_as_datadog_does(
    dd: StrictCollector, body: bytes, headers: dict[str, str], status: int, says: str
) -> None:
    answer = post(dd, body, **headers)
    assert answer.status_code == status and says in detail(answer)
    assert dd.records == []


def test_the_fake_truncates_a_log_above_1_mb_and_plays(dd: StrictCollector) -> None:
    assert post(dd, json.dumps([{"message": "x" * 1_100_000}]).encode()).status_code == 202
    (log,) = dd.records
    assert len(json.dumps(log)) <= 1_000_000 and dd.dialect.truncated == 1  # type: ignore[attr-defined]
    dd.play("throttled", retry_after=3)
    dd.play("too_large")
    dd.play("error", status=502, body=b"bad gateway")
    throttled, too_large, other = (post(dd, b"[{}]") for _ in range(3))
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "3")
    assert (too_large.status_code, other.status_code, other.content) == (413, 502, b"bad gateway")
    assert requests.get(dd.url, timeout=5).status_code == 405
    assert requests.post(dd.base_url + "/v1/input", timeout=5).status_code == 404
    assert len(dd.records) == 1
    with pytest.raises(ValueError, match="unknown play"):
        dd.play("nap")
