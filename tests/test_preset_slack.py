"""The ``slack`` preset against a strict fake incoming webhook: records folded
into one message, Slack's rate limit and refusals, and a webhook URL that is
never shown."""

from __future__ import annotations

import json
import logging
import logging.config
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests

import logdrain
from logdrain.presets import Answer, get
from logdrain.testing.dialects._base import StrictCollector
from logdrain.testing.dialects._slack import TEXT_LIMIT, Slack

pytestmark = pytest.mark.timeout(120)

FAST: dict[str, Any] = {"backoff_initial": 0.01, "backoff_max": 0.05}
#: Records wait for flush() (which sends them at once), so those logged
#: together fold into one message whatever the machine's speed.
FOLD: dict[str, Any] = {**FAST, "flush_interval": 30}
HOOK = "/services/TSECRET01/BSECRET02/abcdefSECRETtoken0123"
SECRET_PARTS = ("TSECRET01", "BSECRET02", "abcdefSECRETtoken0123")


@pytest.fixture
def slack() -> Iterator[StrictCollector]:
    with StrictCollector(Slack(webhook_path=HOOK)) as fake:
        yield fake


class Captured(logging.Handler):
    """Keeps the LogRecords, to know their creation times."""

    records: list[logging.LogRecord] = []  # noqa: RUF012 - shared on purpose, reset per test

    def emit(self, record: logging.LogRecord) -> None:
        Captured.records.append(record)


def _clock(record: logging.LogRecord) -> str:
    stamp = time.strftime("%H:%M:%S", time.gmtime(int(record.created)))
    return f"<!date^{int(record.created)}^{{time_secs}}|{stamp} UTC>"


def _warning(message: str, logger: str = "app") -> dict[str, Any]:
    return {"level": "WARNING", "logger": logger, "message": message}


def _no_secret(text: str) -> None:
    for part in SECRET_PARTS:
        assert part not in text


# -- the happy path, from dictConfig alone --


def test_dictconfig_alone_folds_warnings_into_one_exact_message(
    slack: StrictCollector, capfd: pytest.CaptureFixture[str]
) -> None:
    Captured.records = []
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {
                "slack": {
                    "class": "logdrain.DrainHandler",
                    "url": slack.url,
                    "preset": "slack",
                    **{k: str(v) for k, v in FOLD.items()},
                },
                "seen": {"()": Captured},
            },
            "loggers": {
                "app.payments": {
                    "handlers": ["slack", "seen"],
                    "level": "DEBUG",
                    "propagate": False,
                }
            },
        }
    )
    log = logging.getLogger("app.payments")
    handler = log.handlers[0]
    try:
        assert isinstance(handler, logdrain.DrainHandler)
        log.info("routine: below min_level, never sent")
        log.warning('card "declined" for order %s — retrying', 42)
        log.error("db <down> & out <!channel>")
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            log.exception("charge failed")
        assert handler.drain.flush(30)
        stats = handler.drain.stats()
    finally:
        for each in list(log.handlers):
            log.removeHandler(each)
            each.close()
    _, warning, error, crash = Captured.records
    tail = logging.Formatter().formatException(crash.exc_info).splitlines()[-6:]  # type: ignore[arg-type]
    expected = "\n".join(
        [
            f":warning: {_clock(warning)} *WARNING* `app.payments` "
            'card "declined" for order 42 — retrying',
            f":red_circle: {_clock(error)} *ERROR* `app.payments` "
            "db &lt;down&gt; &amp; out &lt;!channel&gt;",
            f":red_circle: {_clock(crash)} *ERROR* `app.payments` charge failed\n```\n"
            + "\n".join(tail).replace("<", "&lt;").replace(">", "&gt;")
            + "\n```",
        ]
    )
    (message,) = slack.records
    assert message == {"text": expected, "blocks": None, "attachments": None, "truncated": False}
    (request,) = slack.requests
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {"text": expected}
    assert (stats.submitted, stats.delivered, stats.rejected, stats.pending) == (3, 3, 0, 0)
    assert stats.balanced
    assert "logdrain" not in capfd.readouterr().err


def test_min_level_is_an_option_warning_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    preset = get("slack")
    parse = preset.options["min_level"]
    assert [parse(v) for v in ("warning", "WARN", " error ", 35, "35", "critical")] == [
        30,
        30,
        40,
        35,
        35,
        50,
    ]
    for bad in ("loud", -1, True, 2.5, None):
        with pytest.raises(ValueError, match="min_level must"):
            parse(bad)
    url = "http://127.0.0.1:9" + HOOK
    with logdrain.Drain(url, preset="slack", capture_crashes=False) as drain:
        assert drain.settings.options["min_level"] == logging.WARNING
        assert drain.settings.concurrency == 1
        assert drain.settings.batch_bytes == 3500
        assert drain.settings.max_record_bytes < drain.settings.batch_bytes
    monkeypatch.setenv("LOGDRAIN_MIN_LEVEL", "error")
    with logdrain.Drain(url, preset="slack", capture_crashes=False) as drain:
        assert drain.settings.options["min_level"] == logging.ERROR
    with pytest.raises(logdrain.ConfigError) as info:
        logdrain.Drain(url, preset="slack", min_level="loud", capture_crashes=False)
    assert info.value.field == "min_level"


def test_records_below_min_level_are_not_submitted(slack: StrictCollector) -> None:
    with logdrain.Drain(slack.url, preset="slack", min_level="ERROR", **FOLD) as drain:
        assert drain.submit(_warning("only a warning")) is False
        assert drain.submit({"level": "ERROR", "logger": "app", "message": "an error"})
        assert drain.flush(30)
        stats = drain.stats()
    (message,) = slack.records
    assert message["text"].endswith("*ERROR* `app` an error")
    assert (stats.submitted, stats.delivered) == (1, 1)
    assert stats.balanced


# -- Slack's limits and answers --


def test_long_records_are_clipped_and_messages_stay_under_4000_characters(
    slack: StrictCollector,
) -> None:
    with logdrain.Drain(slack.url, preset="slack", **FOLD) as drain:
        for i in range(6):
            drain.submit(_warning(f"{i}:" + "x" * 3000))
        assert drain.flush(60)
        stats = drain.stats()
    lines = [line for message in slack.records for line in message["text"].split("\n")]
    assert len(slack.records) >= 2  # 3,500 bytes a message: six long lines need two
    assert all(len(message["text"]) < 4000 for message in slack.records)
    assert [line.split("`app` ")[1][:2] for line in lines] == [f"{i}:" for i in range(6)]
    assert all(line.endswith("x\u2026") for line in lines)  # each clipped, visibly
    assert (stats.delivered, stats.rejected) == (6, 0)
    assert stats.balanced


def test_a_429_waits_out_retry_after_then_delivers(
    slack: StrictCollector, capfd: pytest.CaptureFixture[str]
) -> None:
    slack.play("rate_limited", retry_after=1)
    with logdrain.Drain(slack.url, preset="slack", **FOLD) as drain:
        drain.submit(_warning("first"))
        drain.submit(_warning("second"))
        assert drain.flush(60)
        stats = drain.stats()
    assert [r.status for r in slack.requests] == [429, 200]
    assert slack.requests[0].body == slack.requests[1].body  # the same message, again
    (message,) = slack.records
    assert [line.rsplit(" ", 1)[1] for line in message["text"].split("\n")] == ["first", "second"]
    assert (stats.delivered, stats.rejected, stats.failed, stats.retries) == (2, 0, 0, 1)
    assert stats.balanced
    assert "rejected" not in capfd.readouterr().err


def test_a_rollup_error_is_retried(slack: StrictCollector) -> None:
    slack.play("error", text="rollup_error")
    with logdrain.Drain(slack.url, preset="slack", **FOLD) as drain:
        drain.submit(_warning("after an outage"))
        assert drain.flush(60)
        stats = drain.stats()
    assert [r.status for r in slack.requests] == [500, 200]
    assert (stats.delivered, stats.retries) == (1, 1)
    assert stats.balanced


@pytest.mark.parametrize(
    ("error", "status"),
    [("channel_not_found", 404), ("channel_is_archived", 410), ("action_prohibited", 403)],
)
def test_a_refusal_is_permanent_and_names_slacks_error(
    slack: StrictCollector, capfd: pytest.CaptureFixture[str], error: str, status: int
) -> None:
    slack.play("error", text=error)
    with logdrain.Drain(slack.url, preset="slack", **FOLD) as drain:
        drain.submit(_warning("one"))
        drain.submit(_warning("two"))
        assert drain.flush(30)
        stats = drain.stats()
    assert [r.status for r in slack.requests] == [status]  # never sent again
    assert slack.records == []
    assert (stats.delivered, stats.rejected, stats.retries) == (0, 2, 0)
    assert stats.balanced
    err = capfd.readouterr().err
    assert "2 record(s) rejected" in err
    assert error in err
    assert f"HTTP {status}" in err
    _no_secret(err)


def test_the_classifier_reads_slacks_plain_text() -> None:
    classify = get("slack").classify

    def answer(status: int, body: bytes) -> str:
        verdict = classify(Answer(status, "", {}, body, True))
        return f"{verdict.outcome}:{verdict.reason}"

    assert answer(200, b"ok") == "delivered:"
    assert answer(400, b"invalid_payload") == "rejected:invalid_payload"
    assert answer(400, b"no_text") == "rejected:no_text"
    assert answer(429, b"rate_limited") == "retry:rate_limited"
    assert answer(503, b"") == "retry:HTTP 503"
    assert answer(413, b"too big") == "split:too big"


# -- the webhook URL is a secret --


def test_the_webhook_url_is_never_shown(
    slack: StrictCollector, capfd: pytest.CaptureFixture[str]
) -> None:
    handler = logdrain.DrainHandler(url=slack.url, preset="slack", **FOLD)
    try:
        assert get("slack").secret_url
        for shown in (repr(handler), repr(handler.drain), repr(handler.drain.settings)):
            assert "127.0.0.1" in shown
            _no_secret(shown)
        slack.play("error", text="invalid_payload")
        handler.drain.submit(_warning("refused"))
        assert handler.drain.flush(30)
    finally:
        handler.close()
    err = capfd.readouterr().err
    assert "invalid_payload" in err
    _no_secret(err)


def test_the_webhook_url_stays_hidden_in_connection_errors(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with StrictCollector(Slack(webhook_path=HOOK)) as gone:
        url = gone.url
    # Nothing listens there now: requests names the URL in its error text.
    with logdrain.Drain(url, preset="slack", max_attempts=1, **FOLD) as drain:
        drain.submit(_warning("lost"))
        assert drain.flush(30)
        assert drain.stats().failed == 1
    err = capfd.readouterr().err
    assert "gave up on 1 record(s)" in err
    _no_secret(err)


# PENDING (lead, shared config): the url setting is parsed before the preset
# is known, so its ConfigError quotes the whole webhook URL. Strict: once the
# redaction reaches config errors this XPASSes and fails; drop the marker then.
def test_a_config_error_never_echoes_the_webhook_url(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(logdrain.ConfigError) as info:
        logdrain.Drain("ftp://hooks.slack.com" + HOOK, preset="slack", capture_crashes=False)
    assert "url" in str(info.value)
    _no_secret(str(info.value))
    _no_secret(capfd.readouterr().err)


# -- the fake itself --


def _post(fake: StrictCollector, body: bytes, content_type: str = "application/json") -> Any:
    return requests.post(fake.url, data=body, headers={"Content-Type": content_type}, timeout=10)


def test_the_fake_refuses_what_slack_refuses(slack: StrictCollector) -> None:
    cases = [
        (b"{not json", "application/json", 400, "invalid_payload"),
        (b'["text"]', "application/json", 400, "invalid_payload"),
        (b'{"text": "hi"}', "text/plain", 400, "invalid_payload"),
        (b'{"text": 5}', "application/json", 400, "invalid_payload"),
        (b'{"text": "  "}', "application/json", 400, "no_text"),
        (b"{}", "application/json", 400, "no_text"),
        (json.dumps({"attachments": [{}] * 101}).encode(), "application/json", 400,
         "too_many_attachments"),
    ]  # fmt: skip
    for body, kind, status, text in cases:
        answer = _post(slack, body, kind)
        assert (answer.status_code, answer.text) == (status, text), body
    other = slack.base_url + "/services/T1/B1/other"
    assert requests.post(other, json={"text": "x"}, timeout=10).status_code == 404
    assert requests.post(other, json={"text": "x"}, timeout=10).text == "no_service"
    assert requests.get(slack.url, timeout=10).status_code == 405
    assert slack.records == []


def test_the_fake_accepts_text_form_and_blocks_and_truncates_like_slack(
    slack: StrictCollector,
) -> None:
    assert _post(slack, b'{"text": "plain"}').text == "ok"
    form = "payload=" + quote(json.dumps({"text": "from a form"}))
    assert _post(slack, form.encode(), "application/x-www-form-urlencoded").text == "ok"
    assert _post(slack, b'{"blocks": [{"type": "divider"}]}').text == "ok"
    assert _post(slack, json.dumps({"text": "y" * (TEXT_LIMIT + 5)}).encode()).text == "ok"
    texts = [m["text"] for m in slack.records]
    assert texts[:2] == ["plain", "from a form"]
    assert slack.records[2]["blocks"] == [{"type": "divider"}]
    assert len(texts[3]) == TEXT_LIMIT and slack.records[3]["truncated"]


def test_the_fake_rate_limits_and_archives_when_told() -> None:
    with StrictCollector(Slack(min_interval=60)) as fake:
        assert _post(fake, b'{"text": "a"}').status_code == 200
        limited = _post(fake, b'{"text": "b"}')
        assert (limited.status_code, limited.text) == (429, "rate_limited")
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert [m["text"] for m in fake.records] == ["a"]
    with StrictCollector(Slack(archived=True)) as fake:
        answer = _post(fake, b'{"text": "a"}')
        assert (answer.status_code, answer.text) == (410, "channel_is_archived")
    with pytest.raises(ValueError, match="unknown error"):
        Slack().make_play("error", {"text": "made_up"})
