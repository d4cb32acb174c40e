"""A pre-forking server with the app preloaded: gunicorn --preload, for real."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from logdrain.testing import Collector

from . import proc

T = TypeVar("T")

pytest.importorskip("gunicorn")
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="gunicorn is POSIX-only")

APP = """
import logging, os
import logdrain

log = logging.getLogger("app")
log.setLevel(logging.INFO)
log.propagate = False
log.addHandler(logdrain.DrainHandler(os.environ["COLLECTOR"], flush_interval=30))
log.info("preload in master %d", os.getpid())   # queued in the master before the fork

def app(environ, start_response):
    log.info("request in worker %d", os.getpid())
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/")
        return conn.getresponse().status
    finally:
        conn.close()


def wait_answering(
    master: proc.subprocess.Popen[str], collector: Collector, get: Callable[[], T]
) -> T:
    """``get()``'s result once the server answers (retried while it refuses
    connections; 600 tries: a cap, not a timing); fails if the master exits."""
    for _ in range(600):
        try:
            return get()
        except OSError:
            if master.poll() is not None:
                break
            collector.wait_for(lambda c: False, timeout=0.05)
    raise AssertionError(master.stderr.read() if master.poll() is not None else "no answer")


def start_gunicorn(
    tmp_path: Path, collector: Collector, module: str, source: str, port: int, *args: str
) -> proc.subprocess.Popen[str]:
    """gunicorn with two workers on ``port`` serving ``source`` (written as
    ``module``.py in ``tmp_path``); ``args`` end with the app (``module:app``)."""
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
    env = proc.child_env(COLLECTOR=collector.url)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    return proc.subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}",
            "--graceful-timeout", "20", *args,
        ],
        env=env,
        cwd=tmp_path,
        stdout=proc.subprocess.PIPE,
        stderr=proc.subprocess.PIPE,
        text=True,
    )  # fmt: skip


def stop_gracefully(master: proc.subprocess.Popen[str]) -> None:
    """SIGTERM the master (each worker's exit hook drains) and wait for a clean
    exit; killed if it does not end within a minute (a cap, not a timing)."""
    try:
        master.send_signal(signal.SIGTERM)
        _, err = master.communicate(timeout=60)
    finally:
        if master.poll() is None:
            master.kill()
            master.communicate()
    assert master.returncode == 0, err


def test_preloaded_workers_each_deliver_once(collector: Collector, tmp_path: Path) -> None:
    """Records queued in the master before the fork arrive once; every worker's arrive."""
    port = _free_port()
    master = start_gunicorn(tmp_path, collector, "preapp", APP, port, "--preload", "preapp:app")
    try:
        # Wait (generously) until the server answers, then make some requests.
        assert wait_answering(master, collector, lambda: _get(port)) == 200
        for _ in range(19):
            assert _get(port) == 200
    finally:
        stop_gracefully(master)
    assert collector.wait_for_count(21)
    messages = [r["message"] for r in collector.records]
    preload = [m for m in messages if m.startswith("preload in master")]
    requests_logged = [m for m in messages if m.startswith("request in worker")]
    assert len(preload) == 1  # not re-sent by the forked workers
    assert len(requests_logged) == 20
    assert collector.duplicates == 0
