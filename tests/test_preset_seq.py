"""The ``seq`` preset against the strict Seq fake: CLEF on the wire, Seq's
answers, one bad event found by halving, the API key kept secret."""

from __future__ import annotations

import gzip
import json
import logging
import logging.config
import traceback
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any, ClassVar

import pytest
import requests

import logdrain
from logdrain.presets import Answer, Context
from logdrain.presets.seq import PRESET, classify
from logdrain.testing.dialects._base import StrictCollector
from logdrain.testing.dialects._seq import Seq

pytestmark = pytest.mark.timeout(120)

FAST: dict[str, Any] = {"flush_interval": 0.05, "backoff_initial": 0.01, "backoff_max": 0.05}
KEY = "seq-key-0123456789abcdef"
CLEF = "application/vnd.serilog.clef"
TIMEOUT = 10


def clef_time(created: float) -> str:
    """The record's time cut (not rounded) to the microsecond, as logdrain's
    own ``timestamp`` field."""
    whole = int(created)
    moment = datetime.fromtimestamp(whole, timezone.utc)
    micros = int((created - whole) * 1e6)
    return (
        moment.replace(microsecond=micros).isoformat(timespec="microseconds").replace("+00:00", "Z")
    )


def lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("logdrain[")]


class Keep(logging.Filter):
    """Keeps every record it sees (for the expected times and tracebacks)."""

    seen: ClassVar[list[logging.LogRecord]] = []

    def filter(self, record: logging.LogRecord) -> bool:
        Keep.seen.append(record)
        return True


@pytest.fixture
def seq() -> Iterator[StrictCollector]:
    with StrictCollector(Seq(api_keys=[KEY])) as fake:
        yield fake


def post(fake: StrictCollector, body: bytes, path: str = "/ingest/clef", **headers: str) -> Any:
    merged = {"X-Seq-ApiKey": KEY, "Content-Type": CLEF, **headers}
    sent = {k: v for k, v in merged.items() if v}
    return requests.post(fake.base_url + path, data=body, headers=sent, timeout=TIMEOUT)


# -- the preset, from dictConfig alone --------------------------------------------------


def test_dictconfig_ships_exact_clef_events(seq: StrictCollector) -> None:
    """A dictConfig handler posts CLEF to /ingest/clef with the API key:
    @t is the record's time, @l its level, @x its traceback, @ names doubled."""
    Keep.seen = []
    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"keep": {"()": Keep}},
        "handlers": {"seq": {
            "class": "logdrain.DrainHandler",
            "url": seq.base_url,  # no path: the preset's /ingest/clef is appended
            "preset": "seq",
            "token": KEY,
            "concurrency": 1,
            "flush_interval": "0.05",
            "backoff_initial": 0.01,
            "backoff_max": 0.05,
        }},
        "loggers": {"app.seq": {"handlers": ["seq"], "filters": ["keep"], "level": "DEBUG"}},
    })  # fmt: skip
    log = logging.getLogger("app.seq")
    handler = log.handlers[0]
    try:
        assert isinstance(handler, logdrain.DrainHandler)
        assert handler.drain.settings.url == seq.url
        log.debug("debugging %d", 1)
        log.info("hello", extra={"@user": "alice", "@@odd": 2, "n": 3})
        log.warning("careful")
        try:
            raise ValueError("bad value")
        except ValueError:
            log.exception("failed")
        log.critical("down", extra={"nested": {"a": [1, "x"]}})
        assert handler.drain.flush(timeout=10) is True
        stats = handler.drain.stats()
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
    assert (stats.delivered, stats.rejected, stats.failed, stats.retries) == (5, 0, 0, 0)
    assert stats.balanced
    debug, info, warning, error, critical = Keep.seen
    assert error.exc_info is not None
    trace = "".join(traceback.format_exception(*error.exc_info)).rstrip("\n")
    base = {"logger": "app.seq"}
    assert seq.records == [
        {"@t": clef_time(debug.created), "@m": "debugging 1", "@l": "Debug", **base},
        {"@t": clef_time(info.created), "@m": "hello", "@l": "Information", **base,
         "@@user": "alice", "@@@odd": 2, "n": 3},
        {"@t": clef_time(warning.created), "@m": "careful", "@l": "Warning", **base},
        {"@t": clef_time(error.created), "@m": "failed", "@l": "Error", "@x": trace, **base},
        {"@t": clef_time(critical.created), "@m": "down", "@l": "Fatal", **base,
         "nested": {"a": [1, "x"]}},
    ]  # fmt: skip
    assert "Traceback (most recent call last)" in trace and trace.endswith("bad value")
    for request in seq.requests:
        assert request.path == "/ingest/clef"
        assert request.headers["Content-Type"] == CLEF
        assert request.headers["X-Seq-ApiKey"] == KEY
        assert "Authorization" not in request.headers
        assert request.body.endswith(b"\n")
        assert all(json.loads(line) for line in request.body.splitlines())


def test_levels_custom_and_python_names(seq: StrictCollector) -> None:
    """Thresholds map any level number; level_names='python' keeps Python's
    names (custom ones included); a record without a level has no @l."""
    levels = [5, 10, 20, 25, 30, 40, 50]
    with logdrain.Drain(seq.base_url, preset="seq", token=KEY, **FAST) as drain:
        for number in levels:
            drain.submit({"message": f"at {number}", "level": number})
        drain.submit({"message": "no level"})
        assert drain.flush(timeout=10) is True
    names = {e["@m"]: e.get("@l") for e in seq.records}
    assert names == {
        "at 5": "Verbose", "at 10": "Debug", "at 20": "Information", "at 25": "Information",
        "at 30": "Warning", "at 40": "Error", "at 50": "Fatal", "no level": None,
    }  # fmt: skip
    seq.clear()
    with logdrain.Drain(seq.url, preset="seq", token=KEY, level_names="Python", **FAST) as drain:
        drain.submit({"message": "custom", "level": "NOTICE"})  # not a number logdrain knows
        drain.submit({"message": "warned", "level": "warning"})
        drain.submit({"message": "five", "level": 5})
        assert drain.flush(timeout=10) is True
    names = {e["@m"]: e.get("@l") for e in seq.records}
    assert names == {"custom": "NOTICE", "warned": "warning", "five": "NOTSET"}


def test_structlog_event_is_the_message(seq: StrictCollector) -> None:
    """A structlog event's ``event`` key becomes @m; its level comes from add_log_level."""
    structlog = pytest.importorskip("structlog")
    drain = logdrain.Drain(seq.base_url, preset="seq", token=KEY, **FAST)
    try:
        slog = structlog.wrap_logger(
            structlog.testing.ReturnLogger(),
            processors=[
                structlog.processors.add_log_level,
                logdrain.DrainProcessor(drain),
                structlog.processors.JSONRenderer(),
            ],
        )
        slog.warning("user signed in", user="bob", **{"@id": 7})
        assert drain.flush(timeout=10) is True
    finally:
        drain.close()
    (event,) = seq.records
    assert {k: v for k, v in event.items() if k != "@t"} == {
        "@m": "user signed in", "@l": "Warning", "user": "bob", "@@id": 7,
    }  # fmt: skip


# -- Seq's answers ------------------------------------------------------------------------


def test_one_bad_event_among_eight_is_found_by_halving(capfd: pytest.CaptureFixture[str]) -> None:
    """Seq refuses the whole batch with 400 for one event: logdrain halves it
    down to that event, delivers the other seven and rejects it alone."""
    with StrictCollector(Seq(refuse=["poison"])) as fake:
        drain = logdrain.Drain(
            fake.url, preset="seq", batch_size=8, concurrency=1, flush_interval=30,
            backoff_initial=0.01, backoff_max=0.05,
        )  # fmt: skip
        with drain:
            for i in range(8):
                drain.submit({"message": "poison pill" if i == 5 else f"event {i}"})
            assert drain.flush(timeout=10) is True
            stats = drain.stats()
        statuses = [r.status for r in fake.requests]
        sizes = [r.body.count(b"\n") for r in fake.requests]
        assert isinstance(fake.dialect, Seq)
        refused = fake.dialect.refused
        stored = [e["@m"] for e in fake.records]
    assert (stats.delivered, stats.rejected, stats.failed, stats.retries) == (7, 1, 0, 0)
    assert stats.balanced and stats.pending == 0
    assert stored == [f"event {i}" for i in range(8) if i != 5]
    # 8 -> 4 + 4 -> the bad 4 as 2 + 2 -> the bad 2 as 1 + 1, depth first
    assert sizes == [8, 4, 4, 2, 1, 1, 2]
    assert statuses == [400, 201, 400, 400, 201, 400, 201]
    assert refused[-1] == "The event on line 1 was rejected: excessive message template expansion."
    rejected = [line for line in lines(capfd.readouterr().err) if "rejected, not retried" in line]
    assert len(rejected) == 1
    assert rejected[0].count("1 record(s) rejected") == 1
    assert "excessive message template expansion" in rejected[0]


def test_503_is_retried(seq: StrictCollector) -> None:
    seq.play("unavailable")
    settings = {**FAST, "flush_interval": 30}  # one batch: flush() sends it
    with logdrain.Drain(seq.url, preset="seq", token=KEY, **settings) as drain:
        for i in range(3):
            drain.submit({"message": f"m {i}"})
        assert drain.flush(timeout=10) is True
        stats = drain.stats()
    assert (stats.delivered, stats.retries, stats.rejected, stats.failed) == (3, 1, 0, 0)
    assert stats.balanced
    assert [r.status for r in seq.requests] == [503, 201]
    assert sorted(e["@m"] for e in seq.records) == ["m 0", "m 1", "m 2"]


def test_413_splits_and_an_oversized_event_is_rejected(capfd: pytest.CaptureFixture[str]) -> None:
    """413 halves the batch; an event over Seq's event body limit ends rejected."""
    with StrictCollector(Seq(event_body_limit=2048)) as fake:
        fake.play("too_large")
        with logdrain.Drain(
            fake.url, preset="seq", batch_size=4, flush_interval=30, concurrency=1,
            max_record_bytes=8192, backoff_initial=0.01, backoff_max=0.05,
        ) as drain:  # fmt: skip
            drain.submit({"message": "a"})
            drain.submit({"message": "b"})
            drain.submit({"message": "x" * 4000})
            drain.submit({"message": "c"})
            assert drain.flush(timeout=10) is True
            stats = drain.stats()
        stored = sorted(e["@m"] for e in fake.records)
    assert (stats.delivered, stats.rejected, stats.failed) == (3, 1, 0)
    assert stats.balanced
    assert stored == ["a", "b", "c"]
    err = " ".join(lines(capfd.readouterr().err))
    assert "exceeds the event body limit (2048 bytes)" in err


def test_api_key_header_and_never_shown(capfd: pytest.CaptureFixture[str]) -> None:
    """The key goes in X-Seq-ApiKey; a wrong key is rejected with Seq's 401
    text; the key never shows in reprs or stderr, even when Seq echoes it."""
    with StrictCollector(Seq(api_keys=[KEY])) as fake:
        fake.play("error", status=403, error=f"The API key {KEY} may not ingest.")
        with logdrain.Drain(fake.url, preset="seq", token=KEY, **FAST) as drain:
            drain.submit({"message": "refused"})
            assert drain.flush(timeout=10) is True
            drain.submit({"message": "taken"})
            assert drain.flush(timeout=10) is True
            shown = [repr(drain), repr(drain.settings), str(drain.stats())]
            stats = drain.stats()
        wrong = "wrong-key-for-this-seq-0001"
        with logdrain.Drain(fake.url, preset="seq", token=wrong, **FAST) as other:
            other.submit({"message": "no key"})
            assert other.flush(timeout=10) is True
            shown += [repr(other), repr(other.settings)]
            other_stats = other.stats()
        headers = [r.headers.get("X-Seq-ApiKey") for r in fake.requests]
        stored = [e["@m"] for e in fake.records]
    assert (stats.delivered, stats.rejected) == (1, 1) and stats.balanced
    assert (other_stats.delivered, other_stats.rejected) == (0, 1) and other_stats.balanced
    assert headers == [KEY, KEY, wrong]
    assert stored == ["taken"]
    err = lines(capfd.readouterr().err)
    text = " ".join(err)
    assert "The API key *** may not ingest." in text
    assert "An API key is not valid." in text
    for secret in (KEY, wrong):
        assert all(secret not in s for s in shown + err), secret


def test_wrong_option_names_the_option_and_preset(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(logdrain.ConfigError) as info:
        logdrain.Drain("http://127.0.0.1:9", preset="seq", level_names="loud")
    assert info.value.field == "level_names"
    assert "preset 'seq'" in str(info.value) and "'serilog' or 'python'" in str(info.value)
    monkeypatch.setenv("LOGDRAIN_LEVEL_NAMES", "python")
    drain = logdrain.Drain("http://127.0.0.1:9", preset="seq", capture_crashes=False)
    try:
        assert drain.settings.options == {"level_names": "python"}
        assert drain.settings.url == "http://127.0.0.1:9/ingest/clef"
        assert drain.settings.max_record_bytes == 240 * 1024
        assert drain.settings.batch_bytes == 2 * 1024 * 1024
    finally:
        drain.close(0)


def test_classifier_table() -> None:
    """Seq's statuses: 201 delivered, 400/413 split with Seq's text, 401/403 rejected."""

    def verdict(status: int, body: bytes = b"") -> tuple[str, str]:
        judged = classify(Answer(status, "", {}, body, True, sent=2))
        return judged.outcome, judged.reason

    error = json.dumps({"Error": "The event on line 2 has no @t timestamp."}).encode()
    assert verdict(201) == ("delivered", "")
    assert verdict(400, error) == ("split", "Seq refused an event: " + json.loads(error)["Error"])
    assert verdict(413)[0] == "split"
    assert verdict(401, b'{"Error": "An API key is required to ingest events."}') == (
        "rejected", "Seq: no valid API key: An API key is required to ingest events."
    )  # fmt: skip
    assert verdict(403)[0] == "rejected"
    assert [verdict(s)[0] for s in (408, 425, 429, 500, 502, 503, 504, 507)] == ["retry"] * 8
    assert verdict(404)[0] == "rejected"


def test_record_mapping_edges() -> None:
    """Non-string keys, a key colliding after conversion, a non-dict document, NaN time."""
    assert PRESET.record is not None
    doc: dict[Any, Any] = {"message": 5, 1: "a", "1": "b", "@": "at"}
    event = PRESET.record(doc, Context({}, created=0.5))
    assert event == {"@t": "1970-01-01T00:00:00.500000Z", "@m": "5", "1": "a", "1_": "b",
                     "@@": "at"}  # fmt: skip
    text: Any = "just text"  # not a dict: a preset may be handed anything
    odd = PRESET.record(text, Context({}, created=float("nan"), levelno=40))
    assert odd["@m"] == "just text" and odd["@l"] == "Error" and odd["@t"].endswith("Z")


# -- the fake itself ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b'{"@m": "x"}\n', 400, "The event on line 1 has no @t timestamp."),
        (b'{"@t": "2024-01-01T00:00:00Z"}\n{"@t": "noon"}\n', 400,
         "The event on line 2 has an invalid @t timestamp: 'noon'."),
        (b'{"@t": "2024-01-01T00:00:00"}\n', 400,
         "The event on line 1 has an invalid @t timestamp: '2024-01-01T00:00:00'."),
        (b'{"@t": "2024-01-01T00:00:00Z", "@l": 3}\n', 400,
         "The @l property of the event on line 1 must be a string."),
        (b'{"@t": "2024-01-01T00:00:00Z", "@user": "a"}\n', 400,
         "The event on line 1 has an unknown reified property '@user'; "
         "escape a property name starting with @ as @@."),
        (b'{"@t": "2024-01-01T00:00:00Z", "@r": ["a"]}\n', 400,
         "The event on line 1 has @r renderings but no @mt template."),
        (b'{"@t": "2024-01-01T00:00:00Z", "@i": "zz"}\n', 400,
         "The @i event type on line 1 must be a number or a hexadecimal string."),
        (b"[1]\n", 400, "The event on line 1 is not a JSON object."),
        (b"\n\n", 400, "The request body contains no events."),
    ],
)  # fmt: skip
def test_fake_refuses_invalid_clef(
    seq: StrictCollector, body: bytes, status: int, error: str
) -> None:
    answer = post(seq, body)
    assert (answer.status_code, answer.json()) == (status, {"Error": error})
    assert seq.records == []


def test_fake_accepts_valid_clef_forms(seq: StrictCollector) -> None:
    events = [
        {"@t": "2016-06-07T03:44:57.8532799Z", "@mt": "Hello, {User}", "User": "alice",
         "@r": ["x"], "@i": "0xBEEF", "@@escaped": 1, "@tr": "abc123", "@sp": "0f"},
        {"@t": "2016-06-07T04:10:00+02:00", "@m": "plain", "@l": "Warning", "@x": "trace"},
    ]  # fmt: skip
    body = b"\r\n".join(json.dumps(e).encode() for e in events)  # CRLF, no final newline
    answer = post(seq, body)
    assert (answer.status_code, answer.json()) == (201, {"MinimumLevelAccepted": None})
    one = {"@t": "2024-01-01T00:00:00.000Z", "@m": "single"}
    assert post(seq, json.dumps(one).encode(), **{"Content-Type": "application/json"}).ok
    legacy = requests.post(seq.base_url + f"/api/events/raw?clef&apiKey={KEY}",
                           data=json.dumps(one), timeout=TIMEOUT)  # fmt: skip
    assert legacy.status_code == 201
    gz = post(seq, gzip.compress(json.dumps(one).encode()), **{"Content-Encoding": "gzip"})
    assert gz.status_code == 201
    assert seq.records == [*events, one, one, one]


def test_fake_request_level_errors() -> None:
    with StrictCollector(Seq(api_keys=[KEY], read_only_keys=["reader"])) as fake:
        event = b'{"@t": "2024-01-01T00:00:00Z"}\n'
        assert post(fake, event, **{"X-Seq-ApiKey": ""}).json() == {
            "Error": "An API key is required to ingest events."
        }
        assert post(fake, event, **{"X-Seq-ApiKey": "nope"}).status_code == 401
        assert post(fake, event, **{"X-Seq-ApiKey": "reader"}).status_code == 403
        assert post(fake, event, "/api/events").status_code == 404
        assert post(fake, event, **{"Content-Type": "text/plain"}).status_code == 415
        got = requests.get(fake.url, headers={"X-Seq-ApiKey": KEY}, timeout=TIMEOUT)
        assert got.status_code == 405
        assert fake.records == []
    with StrictCollector(Seq(raw_payload_limit=100)) as small:
        assert post(small, event * 5).status_code == 413


def test_fake_plays(seq: StrictCollector) -> None:
    good = b'{"@t": "2024-01-01T00:00:00Z", "@m": "ok"}\n'
    bad = b'{"@t": "2024-01-01T00:00:00Z", "@m": "needle"}\n'
    seq.play("bad_event", match="needle", error="too odd")
    seq.play("bad_event", match="needle")  # no line matches: accepted as usual
    seq.play("too_large")
    seq.play("error", status=500, error="Storage is full.")
    assert post(seq, b"{}\n").status_code == 400  # invalid: the plays stay queued
    answer = post(seq, good + bad)
    assert (answer.status_code, answer.json()) == (
        400, {"Error": "The event on line 2 was rejected: too odd."}
    )  # fmt: skip
    assert post(seq, good).status_code == 201
    assert post(seq, good).status_code == 413
    assert post(seq, good).json() == {"Error": "Storage is full."}
    assert post(seq, good).status_code == 201
    assert len(seq.records) == 2
    with pytest.raises(ValueError, match="unknown play"):
        seq.play("nap")
    with pytest.raises(TypeError, match="takes no"):
        seq.play("bad_event", colour="red")
