"""``python -m logdrain demo``: the README's first command, run for real."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from logdrain.__main__ import main

REPO = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    """The test's environment, with ``src`` on PYTHONPATH unless logdrain is installed."""
    env = dict(os.environ)
    installed = importlib.util.find_spec("logdrain")
    src = REPO / "src"
    if installed is None or installed.origin is None or Path(installed.origin).is_relative_to(src):
        existing = env.get("PYTHONPATH", "")
        env["PYTHONPATH"] = os.pathsep.join([str(src), existing]) if existing else str(src)
    return env


def _number(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    assert match is not None, f"{pattern!r} not in:\n{text}"
    return int(match.group(1))


@pytest.mark.timeout(150)
def test_demo_runs_and_accounts_for_every_record() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "logdrain", "demo", "--records", "600", "--outage", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
        cwd=REPO,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{proc.stderr}"
    assert "collector DOWN" in out
    assert "collector UP again" in out
    assert re.search(r"^OK +accounting: 600 log calls, 600 submitted == ", out, re.M), out
    collector = re.search(r"^OK +collector: +received (\d+) .*== delivered (\d+)", out, re.M)
    assert collector is not None, out
    delivered = _number(r"delivered \(2xx answers\) +(\d+)", out)
    received = _number(r"received by collector +(\d+)", out)
    repeated = re.search(r"duplicate batches +\d+ +\((\d+) records stored twice\)", out)
    assert received - (int(repeated.group(1)) if repeated else 0) == delivered
    assert int(collector.group(2)) == delivered
    assert re.search(r"^OK +delivery: +0 rejected, 0 failed after retries, 0 abandoned", out, re.M)
    assert "Every record is accounted for" in out
    assert "FAIL" not in out


def test_help_exits_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "demo" in capsys.readouterr().out


def test_demo_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for option in ("--records", "--outage", "--quiet"):
        assert option in text


@pytest.mark.parametrize(
    "argv",
    [["frobnicate"], ["demo", "--records", "0"], ["demo", "--outage", "soon"]],
)
def test_bad_usage_exits_with_status_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "usage: logdrain" in capsys.readouterr().err


def test_no_command_prints_help_and_returns_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "demo" in capsys.readouterr().err
