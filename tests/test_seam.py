"""The preset seam's verdicts as the senders apply them: split on 413,
partial outcomes per record and by count, records a preset calls
unsendable, Keyed framing, pacing, compression, ecosystem variables,
derived URLs, a secret URL and a preset's minimum level."""

from __future__ import annotations

import gzip
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import pytest

import logdrain
from logdrain.presets import Answer, Context, Keyed, Preset, Unsendable, Verdict, status_verdict
from logdrain.testing import BATCH_ID_HEADER, Collector

pytestmark = pytest.mark.timeout(120)

FAST = {"flush_interval": 0.02, "backoff_initial": 0.01, "backoff_max": 0.05}


def _messages(collector: Collector) -> list[str]:
    return [r["message"] for r in collector.records]


def _ids(collector: Collector) -> list[str]:
    return [r.headers[BATCH_ID_HEADER] for r in collector.requests]


# -- split ------------------------------------------------------------------------------------


def test_413_splits_in_halves_down_to_one_record(collector: Collector) -> None:
    """A 413 sends the batch again as halves, each with a batch id of its
    own; a half refused again splits further; every record arrives once."""
    collector.script(413)  # the batch of 8
    collector.script(413)  # its first half (4)
    with logdrain.Drain(collector.url, batch_size=8, concurrency=1, **FAST) as drain:
        for i in range(8):
            drain.submit({"message": f"r{i}"})
        assert drain.flush(10)
        stats = drain.stats()
    assert (stats.delivered, stats.rejected, stats.failed, stats.retries) == (8, 0, 0, 0)
    assert stats.balanced
    assert sorted(_messages(collector)) == [f"r{i}" for i in range(8)]
    sizes = [r.record_count for r in collector.requests]
    assert sizes == [8, 4, 2, 2, 4]
    ids = _ids(collector)
    assert len(set(ids)) == len(ids)  # every part its own id


def test_a_single_record_still_too_large_is_rejected_with_the_reason(
    collector: Collector, capfd: pytest.CaptureFixture[str]
) -> None:
    for _ in range(3):
        collector.script(413, body=b"entity too large: limit 10 bytes")
    with logdrain.Drain(collector.url, batch_size=2, concurrency=1, **FAST) as drain:
        drain.submit({"message": "big"})
        drain.submit({"message": "small"})
        assert drain.flush(10)
        stats = drain.stats()
    assert (stats.delivered, stats.rejected) == (0, 2)
    assert stats.balanced
    err = capfd.readouterr().err
    assert "limit 10 bytes" in err and "rejected" in err


def test_retries_of_a_half_keep_its_batch_id(collector: Collector) -> None:
    collector.script(413)
    collector.script(503)  # the first half, once
    with logdrain.Drain(collector.url, batch_size=4, concurrency=1, **FAST) as drain:
        for i in range(4):
            drain.submit({"message": f"r{i}"})
        assert drain.flush(10)
        assert drain.stats().delivered == 4
    ids = _ids(collector)
    assert len(ids) == 4  # 413, 503 (half 1), half 1 again, half 2
    assert ids[1] == ids[2] and len({ids[0], ids[1], ids[3]}) == 3


# -- partial verdicts -------------------------------------------------------------------------


def _per_record(answer: Answer) -> Verdict:
    """200 with {"items": ["ok" | "again" | "no", ...]}, one per record."""
    if answer.status == 200 and answer.body.startswith(b'{"items"'):
        items = json.loads(answer.body)["items"]
        named = {"ok": "delivered", "again": "retry", "no": "rejected"}
        outcomes = tuple(named[i] for i in items)
        return Verdict("partial", "item refused: bad field", records=outcomes)  # type: ignore[arg-type]
    if answer.status == 200 and answer.body.startswith(b'{"refused"'):
        return Verdict("partial", "some ignored", rejected=json.loads(answer.body)["refused"])
    return status_verdict(answer)


ITEMS = Preset(
    "items",
    "application/x-ndjson",
    frame=lambda parts: b"\n".join(parts) + b"\n",
    framed_size=lambda total, count: total + count,
    classify=_per_record,
)


def test_partial_per_record_outcomes_settle_exactly(
    collector: Collector, capfd: pytest.CaptureFixture[str]
) -> None:
    """Taken records settle at once, refused ones are rejected with the
    reason, and only the ones to send again are retried, alone."""
    collector.script(200, body=b'{"items": ["ok", "again", "no", "ok", "again"]}')
    collector.script(200, body=b'{"items": ["ok", "no"]}')
    with logdrain.Drain(collector.url, preset=ITEMS, batch_size=5, concurrency=1, **FAST) as d:
        for i in range(5):
            d.submit({"message": f"r{i}"})
        assert d.flush(10)
        stats = d.stats()
    assert (stats.delivered, stats.rejected, stats.failed, stats.retries) == (3, 2, 0, 1)
    assert stats.balanced
    second = collector.requests[1]
    assert [json.loads(line)["message"] for line in second.body.splitlines()] == ["r1", "r4"]
    assert _ids(collector)[0] == _ids(collector)[1]
    assert "item refused: bad field" in capfd.readouterr().err


def test_partial_by_count_rejects_that_many_and_never_retries(
    collector: Collector, capfd: pytest.CaptureFixture[str]
) -> None:
    collector.script(200, body=b'{"refused": 2}')
    with logdrain.Drain(collector.url, preset=ITEMS, batch_size=5, concurrency=1, **FAST) as d:
        for i in range(5):
            d.submit({"message": f"r{i}"})
        assert d.flush(10)
        stats = d.stats()
    assert (stats.delivered, stats.rejected, stats.retries) == (3, 2, 0)
    assert stats.balanced and len(collector.requests) == 1
    assert "some ignored" in capfd.readouterr().err


def test_ledger_balances_while_a_partial_batch_waits_for_its_retry(collector: Collector) -> None:
    collector.script(200, body=b'{"items": ["ok", "again"]}')
    collector.fault("silent")  # the retry is never answered: cut by request_timeout
    with logdrain.Drain(
        collector.url, preset=ITEMS, batch_size=2, concurrency=1, request_timeout=5, **FAST
    ) as drain:
        drain.submit({"message": "a"})
        drain.submit({"message": "b"})
        cap = time.monotonic() + 10
        while len(collector.requests) < 2 and time.monotonic() < cap:
            time.sleep(0.01)
        stats = drain.stats()
        assert (stats.delivered, stats.in_flight) == (1, 1)
        assert stats.balanced
        assert drain.flush(20)
        assert drain.stats().delivered == 2


# -- record mapping ---------------------------------------------------------------------------


def _keyed_record(doc: dict[str, Any], ctx: Context) -> Any:
    if doc.get("message") == "poison":
        raise Unsendable("the collector would drop it silently")
    if doc.get("boom"):
        raise RuntimeError("preset bug")
    key = json.dumps({"level": doc.get("level", "?")}).encode()
    return Keyed(key, {"m": doc.get("message"), "t": ctx.created, "n": ctx.levelno})


def _grouped(parts: list[Any]) -> bytes:
    groups: dict[bytes, list[bytes]] = {}
    for key, data in parts:
        groups.setdefault(key, []).append(data)
    streams = [b'{"key":%s,"values":[%s]}' % (k, b",".join(v)) for k, v in groups.items()]
    return b'{"streams":[' + b",".join(streams) + b"]}"


GROUPED = Preset(
    "grouped",
    "application/json",
    frame=_grouped,
    framed_size=lambda total, count: total + 30 * count + 14,
    record=_keyed_record,
)


def test_keyed_records_are_grouped_by_the_frame(logger: logging.Logger) -> None:
    with Collector() as collector:
        handler = logdrain.DrainHandler(collector.url, preset=GROUPED, **FAST)
        logger.addHandler(handler)
        logger.info("one")
        logger.warning("two")
        logger.info("three")
        assert handler.drain.flush(10)
        body = json.loads(collector.requests[0].body)
    assert [s["key"] for s in body["streams"]] == [{"level": "INFO"}, {"level": "WARNING"}]
    assert [v["m"] for v in body["streams"][0]["values"]] == ["one", "three"]
    assert [v["n"] for v in body["streams"][1]["values"]] == [30]
    assert abs(body["streams"][0]["values"][0]["t"] - time.time()) < 3600


def test_unsendable_and_failing_mappings_are_accounted(
    collector: Collector, capfd: pytest.CaptureFixture[str]
) -> None:
    with logdrain.Drain(collector.url, preset=GROUPED, batch_size=3, **FAST) as drain:
        for message in ("fine", "poison", "bug"):
            drain.submit({"message": message, "level": "INFO", "boom": message == "bug"})
        assert drain.flush(10)
        stats = drain.stats()
    assert (stats.delivered, stats.rejected, stats.failed) == (2, 1, 0)
    assert stats.balanced
    assert "drop it silently" in capfd.readouterr().err
    values = json.loads(collector.requests[0].body)["streams"][0]["values"]
    assert [v["m"] for v in values] == ["fine", "bug"]  # the bug got the core fields


def test_a_mapped_record_above_max_record_bytes_is_shortened(collector: Collector) -> None:
    with logdrain.Drain(collector.url, preset=GROUPED, max_record_bytes=2000, **FAST) as drain:
        drain.submit({"message": "x" * 10_000, "level": "INFO"})
        assert drain.flush(10)
        assert drain.stats().truncated == 1
    (request,) = collector.requests
    assert len(request.body) < 2300
    assert "truncated" in json.loads(request.body)["streams"][0]["values"][0]["m"]


# -- transport rules ----------------------------------------------------------------------------


PACED = Preset(
    "paced", "application/json", frame=lambda p: b"[" + p[0] + b"]", framed_size=lambda t, c: t + 2,
    one_per_request=True, defaults={"batch_size": 1}, min_interval=0.2,
)  # fmt: skip


def test_min_interval_spaces_requests_across_senders(collector: Collector) -> None:
    with logdrain.Drain(collector.url, preset=PACED, concurrency=4, **FAST) as drain:
        start = time.monotonic()
        for i in range(4):
            drain.submit({"message": f"p{i}"})
        assert drain.flush(20)
        elapsed = time.monotonic() - start
    assert len(collector.requests) == 4
    assert elapsed >= 0.6  # three gaps of at least min_interval: a lower bound only


def test_compress_gzip_sends_gzip_bodies(collector: Collector) -> None:
    with logdrain.Drain(collector.url, compress="gzip", **FAST) as drain:
        for i in range(50):
            drain.submit({"message": f"zip {i}", "n": i})
        assert drain.flush(10)
    (request,) = collector.requests
    assert request.headers["Content-Encoding"] == "gzip"
    assert [d["message"] for d in json.loads(gzip.decompress(request.body))][:2] == [
        "zip 0",
        "zip 1",
    ]
    assert _messages(collector) == [f"zip {i}" for i in range(50)]


def test_compress_setting_is_checked() -> None:
    with pytest.raises(logdrain.ConfigError) as info:
        logdrain.Drain("http://127.0.0.1:9/x", compress="brotli", capture_crashes=False)
    assert info.value.field == "compress"


# -- settings a preset supplies -----------------------------------------------------------------


def _eco(environ: Mapping[str, str], options: Mapping[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if "ECO_SITE" in environ:
        found["site"] = environ["ECO_SITE"]
    if "ECO_KEY" in environ:
        found["token"] = environ["ECO_KEY"]
    return found


ECO = Preset(
    "eco",
    "application/json",
    frame=b",".join,
    framed_size=lambda total, count: total + count,
    options={"site": str, "topic": str},
    environment=_eco,
    url=lambda options: f"http://127.0.0.1:{options['site']}" if "site" in options else None,
    path=lambda options: f"/topics/{options['topic']}",
    auth=lambda token: {"X-Key": token},
)


def test_ecosystem_variables_apply_below_explicit_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ECO_SITE", "9")
    monkeypatch.setenv("ECO_KEY", "eco-key-1234")
    drain = logdrain.Drain(preset=ECO, topic="logs", capture_crashes=False)
    try:
        assert drain.settings.url == "http://127.0.0.1:9/topics/logs"
        assert drain.settings.token == "eco-key-1234"
        assert "eco-key-1234" not in repr(drain.settings)
    finally:
        drain.close(0)
    monkeypatch.setenv("LOGDRAIN_SITE", "10")
    explicit = logdrain.Drain(preset=ECO, topic="t", token="mine-5678", capture_crashes=False)
    try:
        assert explicit.settings.url == "http://127.0.0.1:10/topics/t"  # LOGDRAIN_ beats ECO_
        assert explicit.settings.token == "mine-5678"
    finally:
        explicit.close(0)


def test_a_path_the_preset_cannot_build_names_the_fix() -> None:
    with pytest.raises(logdrain.ConfigError) as info:
        logdrain.Drain("http://127.0.0.1:9", preset=ECO, capture_crashes=False)
    assert "cannot build its path" in str(info.value)


def test_no_url_and_none_derivable_asks_for_one() -> None:
    with pytest.raises(logdrain.ConfigError) as info:
        logdrain.Drain(preset=ECO, topic="t", capture_crashes=False)
    assert info.value.field == "url"


SECRET = Preset(
    "webhook",
    "application/json",
    frame=lambda parts: b"[" + b",".join(parts) + b"]",
    framed_size=lambda total, count: total + count + 1,
    options={"min_level": int},
    secret_url=True,
)


def test_a_secret_url_is_never_shown(capfd: pytest.CaptureFixture[str]) -> None:
    url = "http://127.0.0.1:9/services/T0001/B0002/abcdefghijklmnopqrstuvwx"
    drain = logdrain.Drain(url, preset=SECRET, max_attempts=1, capture_crashes=False, **FAST)
    try:
        drain.submit({"message": "m"})
        drain.flush(10)
        shown = [repr(drain), repr(drain.settings), str(drain.stats())]
    finally:
        drain.close(2)
    shown.append(capfd.readouterr().err)
    assert "refused" in shown[-1] or "gave up" in shown[-1]  # the connection failure was reported
    for text in shown:
        assert "abcdefghijklmnopqrstuvwx" not in text
        assert "/services/T0001" not in text


def test_min_level_keeps_lower_records_out(collector: Collector, logger: logging.Logger) -> None:
    structlog = pytest.importorskip("structlog")
    handler = logdrain.DrainHandler(collector.url, preset=SECRET, min_level=30, **FAST)
    handler.setLevel("INFO")  # what dictConfig does: never below min_level
    logger.addHandler(handler)
    logger.info("quiet")
    logger.warning("loud")
    drain = handler.drain
    assert drain.submit({"message": "dict info", "level": "info"}) is False
    assert drain.submit({"message": "dict error", "level": "error"}) is True
    processor = logdrain.DrainProcessor(drain)
    processor(structlog.get_logger(), "debug", {"event": "s debug"})
    processor(structlog.get_logger(), "error", {"event": "s error"})
    assert drain.flush(10)
    assert handler.level == 30
    shipped = sorted(r.get("message", r.get("event")) for r in collector.records)
    assert shipped == ["dict error", "loud", "s error"]


# -- every collector preset: its token scheme, refreshed on a 401 --------------------------------

_NEEDS = {"loki": {"labels": {"app": "t"}}, "kafka_rest": {"topic": "logs"}}
_SCHEME = {
    "splunk_hec": ("Authorization", "Splunk {}"),
    "datadog": ("DD-API-KEY", "{}"),
    "seq": ("X-Seq-ApiKey", "{}"),
    "elasticsearch": ("Authorization", "ApiKey {}"),
    "opensearch": ("Authorization", "ApiKey {}"),
    "gelf": ("Authorization", "{}"),
}


@pytest.mark.parametrize(
    "preset",
    ["loki", "elasticsearch", "opensearch", "splunk_hec", "datadog", "seq", "otlp", "gelf",
     "kafka_rest"],
)  # fmt: skip
def test_token_provider_refresh_works_with_every_preset(collector: Collector, preset: str) -> None:
    """A 401 fetches a fresh token, sent again in the preset's own scheme."""
    tokens = iter(["stale-token-1", "fresh-token-2"])
    collector.script(401, body=b"expired")
    collector.script(200, body=b"{}")
    with logdrain.Drain(
        collector.url,  # a URL with a path: the preset adds none
        preset=preset,
        token_provider=lambda: next(tokens),
        capture_crashes=False,
        **_NEEDS.get(preset, {}),
        **FAST,
    ) as drain:
        drain.submit({"message": "m", "level": "INFO"})
        assert drain.flush(10)
    first, second = collector.requests[:2]
    header, form = _SCHEME.get(preset, ("Authorization", "Bearer {}"))
    assert first.headers[header] == form.format("stale-token-1")
    assert second.headers[header] == form.format("fresh-token-2")


def test_batches_are_cut_by_a_framing_of_its_own(collector: Collector) -> None:
    """A framed_size that is not linear (200 bytes more past 3 records) is
    asked for every record; a linear one is computed. Both keep every body
    within batch_bytes: a record is 316 bytes, so 6 fit by their bytes
    (1,902 of 2,048), 5 with the extra 200."""
    from logdrain.cutting import linear_framing as _linear_framing

    assert _linear_framing(lambda total, count: total + count + 1) == (1, 1)
    assert _linear_framing(lambda total, count: total + count + 200 * (count > 3)) is None
    bumpy = Preset(
        "bumpy",
        "application/x-ndjson",
        frame=lambda parts: b"\n".join(parts) + b"\n",
        framed_size=lambda total, count: total + count + 200 * (count > 3),
    )
    with logdrain.Drain(collector.url, preset=bumpy, batch_bytes=2048, **FAST) as drain:
        for i in range(10):
            drain.submit({"message": f"r{i}" + "x" * 300})
        assert drain.flush(10)
    assert max(r.record_count for r in collector.requests) == 5
    assert all(len(r.body) + 200 <= 2048 for r in collector.requests)
    assert len(collector.records) == 10
