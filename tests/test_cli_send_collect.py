"""``logdrain send`` and ``logdrain collect`` end to end, each in its own
subprocess on 127.0.0.1 (timeouts are safety caps, never assertions)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from logdrain.testing import Collector

from .proc import child_env, run_cli

CHILD_TIMEOUT = 60.0


class CollectProcess:
    """``python -m logdrain collect ARGS`` until stopped; ``url`` from its first line."""

    def __init__(self, *args: str, **env: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "logdrain", "collect", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(**env),
        )
        assert self.proc.stderr is not None
        first = self.proc.stderr.readline()  # written once it listens (EOF if it exits)
        if "listening on " not in first:
            self.stop()
            raise AssertionError(f"collect did not start: {first!r}")
        self.url = first.split("listening on ", 1)[1].split()[0]
        self.out = self.err = ""

    def stop(self) -> tuple[list[dict[str, object]], str]:
        """SIGTERM, then the JSON lines it printed and its stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.out, self.err = self.proc.communicate(timeout=CHILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.out, self.err = self.proc.communicate()
            raise AssertionError("collect did not stop on SIGTERM") from None
        assert self.proc.returncode == 0, self.err
        return [json.loads(line) for line in self.out.splitlines() if line.strip()], self.err


@pytest.fixture
def generic() -> Iterator[CollectProcess]:
    collect = CollectProcess()
    yield collect
    collect.stop()


def test_send_stdin_json_and_text_lines_to_collect(generic: CollectProcess) -> None:
    """JSON objects go as records, other lines as messages; exit 0; collect prints both."""
    lines = '{"message": "one", "level": "ERROR", "n": 1}\nplain two\n\n[1, 2]\n'
    proc = run_cli("send", "--url", generic.url, stdin=lines)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # a pipe: no progress, no summary when all went well
    records, err = generic.stop()
    assert records == [
        {"message": "one", "level": "ERROR", "n": 1},
        {"message": "plain two", "level": "INFO"},
        {"message": "[1, 2]", "level": "INFO"},
    ], err


def test_send_files_to_a_strict_loki(tmp_path: Path) -> None:
    """--preset loki through collect's strict Loki fake: every line stored."""
    first, second = tmp_path / "a.log", tmp_path / "b.log"
    first.write_text("alpha\nbeta\n")
    second.write_text('{"message": "gamma", "level": "WARNING"}\n')
    collect = CollectProcess("--preset", "loki")
    try:
        proc = run_cli("send", "--preset", "loki", "--url", collect.url, str(first), str(second))
    finally:
        records, err = collect.stop()
    assert proc.returncode == 0, proc.stderr
    assert len(records) == 3, (records, err)
    lines = [str(record["line"]) for record in records]
    for word in ("alpha", "beta", "gamma"):
        assert sum(word in line for line in lines) == 1, lines


def test_send_exit_1_when_the_collector_refuses(tmp_path: Path) -> None:
    """A strict HEC that wants another token: send exits 1 and says why; collect logs it."""
    (tmp_path / "token").write_text("11111111-2222-3333-4444-555555555555\n")
    collect = CollectProcess(
        "--preset", "splunk_hec", "--accept-token-file", str(tmp_path / "token")
    )
    try:
        proc = run_cli(
            "send",
            "--preset",
            "splunk_hec",
            "--url",
            collect.url,
            "--token-env",
            "HEC",
            stdin="hello\n",
            HEC="99999999-0000-0000-0000-000000000000",
        )
    finally:
        records, err = collect.stop()
    assert proc.returncode == 1
    assert "0 delivered, 1 rejected" in proc.stderr
    assert "99999999-0000-0000-0000-000000000000" not in proc.stderr
    assert records == []
    assert "refused POST /services/collector/event: 403" in err


def test_send_json_format_counts_bad_lines(collector: Collector) -> None:
    """--format json: a line that is no JSON object is reported and makes the exit 1."""
    proc = run_cli("send", "--format", "json", "--url", collector.url, stdin='{"a": 1}\nnope\n')
    assert proc.returncode == 1
    assert "-:2: not a JSON object" in proc.stderr
    assert collector.wait_for_count(1)


def test_send_and_collect_usage_errors() -> None:
    """Bad usage is exit 2 with one line."""
    proc = run_cli("collect", "--preset", "nosuch")
    assert proc.returncode == 2 and "--preset" in proc.stderr
    proc = run_cli("send", "--url", "http://127.0.0.1:9/ingest", "/no/such/file")
    assert proc.returncode == 2 and "cannot read" in proc.stderr
    proc = run_cli("send", "--url", "not a url")
    assert proc.returncode == 2 and "url" in proc.stderr


def test_collect_readable_line() -> None:
    """On a terminal a record reads as level, message, then key=value."""
    from logdrain.cli.collect import readable

    line = readable({"message": "shipped", "level": "info", "order": 7, "tags": ["a"]})
    assert line == 'INFO     shipped  order=7 tags=["a"]'
    assert readable({"line": "raw"}) == "raw"
