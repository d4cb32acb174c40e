"""The dead-letter file as a Drain uses it: what is rejected or fails after its
retries is buried with its reason, as it was sent, and counted."""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

import logdrain
from logdrain.deadletter import DeadLetter, read
from logdrain.testing import Collector
from logdrain.testing.dialects import Elasticsearch, Loki, StrictCollector

pytestmark = pytest.mark.timeout(120)

FAST: dict[str, Any] = {
    "backoff_initial": 0.01,
    "backoff_max": 0.05,
    "flush_interval": 0.05,
    "capture_crashes": False,
}
TOKEN = "s3cr3t-token-value"


def dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def entries(path: Path) -> list[Any]:
    """Every entry of the dead-letter set at ``path`` (its parts, then the live file)."""
    dead = DeadLetter(path)
    try:
        return [entry for name in dead.paths() for entry in read(name)]
    finally:
        dead.close()


def test_rejected_records_are_buried_with_the_collectors_reason(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    with Collector() as collector:
        collector.script(400, times=1, body=b'{"error": "bad field [n]"}')
        with logdrain.Drain(collector.url, dead_letter=str(path), token=TOKEN, **FAST) as drain:
            for n in range(3):
                drain.submit({"message": f"r{n}", "n": n})
            assert drain.flush(30)
            stats = drain.stats()
    assert stats.rejected == 3
    assert stats.dead_lettered == 3
    assert stats.balanced
    buried = entries(path)
    assert [b.record["message"] for b in buried] == ["r0", "r1", "r2"]
    for b in buried:
        assert b.outcome == "rejected"
        assert b.status == 400
        assert "bad field [n]" in b.answer
        assert b.preset == "json"
        assert b.attempts == 1
        assert 0 < b.first_attempt <= b.last_attempt
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert TOKEN not in path.read_text(encoding="utf-8")


def test_records_failed_after_retries_are_buried_without_a_status(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    url = f"http://127.0.0.1:{dead_port()}/ingest"
    with logdrain.Drain(url, dead_letter=str(path), max_attempts=2, **FAST) as drain:
        drain.submit({"message": "lost?"})
        assert drain.flush(30)
        stats = drain.stats()
    assert (stats.failed, stats.dead_lettered) == (1, 1)
    (only,) = entries(path)
    assert only.outcome == "failed"
    assert only.status is None
    assert only.attempts == 2
    assert only.record["message"] == "lost?"


def test_only_the_refused_items_of_a_partial_answer_are_buried(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    with StrictCollector(Elasticsearch()) as es:
        es.play("items", mapper_parsing=[1], reason="failed to parse field [n]")
        drain = logdrain.Drain(
            es.base_url,
            preset="elasticsearch",
            dead_letter=str(path),
            batch_size=3,
            concurrency=1,
            **{**FAST, "flush_interval": 30.0},
        )
        with drain:
            for n in range(3):
                drain.submit({"message": f"r{n}", "n": n})
            assert drain.flush(30)
            stats = drain.stats()
    assert (stats.delivered, stats.rejected, stats.dead_lettered) == (2, 1, 1)
    (only,) = entries(path)
    assert only.record["message"] == "r1"
    assert "@timestamp" in only.record  # as it was sent: the preset's document
    assert only.key is not None and json.loads(only.key)["create"]["_index"]
    assert "failed to parse field [n]" in only.reason


def test_without_a_dead_letter_file_nothing_is_written(tmp_path: Path) -> None:
    with Collector() as collector:
        collector.script(400, times=1)
        with logdrain.Drain(collector.url, **FAST) as drain:
            drain.submit({"message": "m"})
            assert drain.flush(30)
            assert drain.stats().dead_lettered == 0
    assert list(tmp_path.iterdir()) == []


def test_a_dead_letter_directory_that_does_not_exist_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(logdrain.ConfigError) as info:
        logdrain.Drain("http://127.0.0.1:9/x", dead_letter=str(tmp_path / "no" / "dead.jsonl"))
    assert info.value.field == "dead_letter"


def test_dead_letter_from_dictconfig_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "env.jsonl"
    monkeypatch.setenv("LOGDRAIN_DEAD_LETTER", str(path))
    monkeypatch.setenv("LOGDRAIN_DEAD_LETTER_MAX_BYTES", "1MB")
    with Collector() as collector:
        collector.script(422, times=1)
        handler = logdrain.DrainHandler(collector.url, **FAST)
        try:
            assert handler.drain.settings.dead_letter == str(path)
            assert handler.drain.settings.dead_letter_max_bytes == 1_000_000
            drain = handler.drain
            drain.submit({"message": "via env"})
            assert drain.flush(30)
        finally:
            handler.close()
    assert [b.record["message"] for b in entries(path)] == ["via env"]


def test_the_collectors_answer_echoing_the_token_is_redacted(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    with Collector() as collector:
        collector.script(401, times=1, body=f'{{"error": "bad token {TOKEN}"}}'.encode())
        with logdrain.Drain(collector.url, dead_letter=str(path), token=TOKEN, **FAST) as drain:
            drain.submit({"message": "m"})
            assert drain.flush(30)
            assert drain.stats().dead_lettered == 1
    text = path.read_text(encoding="utf-8")
    assert "bad token ***" in text
    assert TOKEN not in text


def test_the_close_summary_names_the_dead_letter_file(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "dead.jsonl"
    with Collector() as collector:
        collector.script(400, times=1)
        drain = logdrain.Drain(collector.url, dead_letter=str(path), **FAST)
        drain.submit({"message": "m"})
        assert drain.flush(30)
        assert drain.close(10)
    err = capfd.readouterr().err
    assert f"1 of them kept in {path}" in err


def test_a_buried_keyed_record_resent_as_it_is_reaches_loki(tmp_path: Path) -> None:
    """What replay builds on: the buried record and its key (a Loki label
    set), resent through a drain of the same preset, arrive as first sent."""
    path = tmp_path / "dead.jsonl"
    with StrictCollector(Loki()) as loki:
        loki.play("error", status=400, text="entry has timestamp too new")
        drain = logdrain.Drain(
            loki.base_url, preset="loki", labels={"service": "pay"}, dead_letter=str(path), **FAST
        )
        with drain:
            drain.submit({"message": "first", "level": "warning"})
            assert drain.flush(30)
            assert drain.stats().dead_lettered == 1
        (buried,) = entries(path)
        assert buried.key is not None
        again = logdrain.Drain(loki.base_url, preset="loki", labels={"service": "pay"}, **FAST)
        with again:
            part = json.dumps(buried.record, separators=(",", ":")).encode()
            assert again.resend((buried.key.encode(), part), created=buried.first_attempt)
            assert again.flush(30)
            stats = again.stats()
        assert (stats.delivered, stats.balanced) == (1, True)
        (got,) = loki.records
    assert got["stream"] == {"service": "pay", "level": "warning"}
    assert json.loads(got["line"])["message"] == "first"


def test_resent_and_new_records_share_a_batch(tmp_path: Path) -> None:
    with Collector() as collector:
        with logdrain.Drain(collector.url, concurrency=1, **FAST) as drain:
            drain.submit({"message": "new"})
            assert drain.resend(b'{"message":"old","n":1}')
            drain.submit({"message": "new again"})
            assert drain.flush(30)
            assert drain.stats().delivered == 3
        messages = sorted(r["message"] for r in collector.records)
    assert messages == ["new", "new again", "old"]


def test_the_cap_removes_the_oldest_part_and_says_so(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "dead.jsonl"
    with Collector() as collector:
        collector.script(400, times=40)
        drain = logdrain.Drain(
            collector.url,
            dead_letter=str(path),
            dead_letter_max_bytes=8192,
            batch_size=1,
            concurrency=1,
            **FAST,
        )
        with drain:
            for n in range(40):
                drain.submit({"message": "x" * 200, "n": n})
            assert drain.flush(60)
            stats = drain.stats()
    assert (stats.rejected, stats.dead_lettered) == (40, 40)
    left = entries(path)
    assert 0 < len(left) < 40
    assert left[-1].record["n"] == 39  # the newest are kept
    total = sum(p.stat().st_size for p in tmp_path.iterdir() if p.name.startswith("dead.jsonl"))
    assert total <= 8192 + 1024
    assert "was removed to stay within dead_letter_max_bytes=8192" in capfd.readouterr().err


# A hanging collector and one sender taking 10 at a time: at the close deadline
# one request is in flight (cut) and three batches were never taken.
AT_CLOSE: dict[str, Any] = {**FAST, "concurrency": 1, "batch_size": 10}


def test_dead_letter_on_close_keeps_what_the_deadline_leaves_and_replay_sends_it(
    tmp_path: Path,
) -> None:
    from logdrain.cli.replay import replay

    path = tmp_path / "dead.jsonl"
    with Collector() as collector:
        collector.hang()
        drain = logdrain.Drain(
            collector.url, dead_letter=str(path), dead_letter_on_close=True, **AT_CLOSE
        )
        for n in range(40):
            drain.submit({"message": f"c{n}", "n": n})
        assert not drain.close(timeout=2)
        stats = drain.stats()
        assert stats.balanced and stats.dropped_closed == 40
        assert stats.dead_lettered == 40  # each one written before it was counted
        buried = entries(path)
        assert sorted(b.record["n"] for b in buried) == list(range(40))
        assert {b.outcome for b in buried} == {"dropped_closed"}
        assert {b.reason for b in buried} == {"not delivered by the close deadline"}
        collector.hang(False)
        result = replay(str(path), {"url": collector.url, **FAST})
        assert (result.delivered, result.ok) == (40, True)
        assert sorted(r["n"] for r in collector.records) == list(range(40))
    assert entries(path) == []


def test_without_dead_letter_on_close_the_deadline_drops_are_not_buried(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    with Collector() as collector:
        collector.hang()
        drain = logdrain.Drain(collector.url, dead_letter=str(path), **AT_CLOSE)
        for n in range(40):
            drain.submit({"message": f"d{n}"})
        assert not drain.close(timeout=1)
        collector.hang(False)
    stats = drain.stats()
    assert (stats.dropped_closed, stats.dead_lettered) == (40, 0)
    assert entries(path) == []


def test_dead_letter_on_close_needs_a_dead_letter_file() -> None:
    with pytest.raises(logdrain.ConfigError, match=r"dead_letter_on_close.*dead_letter="):
        logdrain.Drain("http://127.0.0.1:9/x", dead_letter_on_close=True)


def test_a_wrong_dead_letter_on_close_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(logdrain.ConfigError, match=r"dead_letter_on_close.*not a boolean"):
        logdrain.Drain(
            "http://127.0.0.1:9/x",
            dead_letter=str(tmp_path / "d.jsonl"),
            dead_letter_on_close="maybe",
        )
