"""Run a snippet of Python, or the ``logdrain`` command, in a real subprocess
with logdrain importable; and wait on a condition with a cap."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGDRAIN_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def start(code: str, **env: str) -> subprocess.Popen[str]:
    """Start ``code`` (dedented) in a fresh interpreter; stdout/stderr piped."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=child_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def start_piped(code: str, *args: str) -> subprocess.Popen[str]:
    """Start ``code`` with ``args`` (its ``sys.argv[1:]``), stdin, stdout and
    stderr piped: for a child driven line by line."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=child_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run(code: str, timeout: float = 120.0, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` to completion (killed after ``timeout`` as a safety cap)."""
    proc = start(code, **env)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"child did not finish within {timeout}s\n{out}\n{err}") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


#: Variables that would change a child's network or output: a developer's
#: proxy, CA bundle or NO_COLOR (kept only when passed explicitly).
_UNSET_IN_CHILD = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


def run_cli(
    *args: str, stdin: str | None = None, timeout: float = 120.0, **env: str
) -> subprocess.CompletedProcess[str]:
    """``python -m logdrain ARGS`` in a fresh interpreter, with no proxy, CA
    bundle or NO_COLOR variable of the developer's (``env`` adds some back)."""
    base = child_env()
    for name in list(base):
        if name.lower().endswith("_proxy") or name in (*_UNSET_IN_CHILD, "NO_COLOR"):
            del base[name]
    base.update(env)
    return subprocess.run(
        [sys.executable, "-m", "logdrain", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=base,
        timeout=timeout,
        check=False,
    )


def wait_until(check: Callable[[], object], cap: float = 120.0) -> bool:
    """Whether ``check()`` came true within ``cap`` seconds (a safety cap,
    never a measured duration), asked every 5 ms and once more at the end."""
    deadline = time.monotonic() + cap
    while not check():
        if time.monotonic() >= deadline:
            return bool(check())
        time.sleep(0.005)
    return True
