"""Forked children that end with a bare ``os._exit`` (no hook runs): what
they logged more than FORKED_LINGER before the end has already gone out.
Checked by which records arrived, never by timing."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from logdrain.testing import Collector

from . import proc

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="os.fork is POSIX-only")

CHILDREN = 4
RECORDS = 50

FORK_AND_EXIT = """
import json, logging, os, sys, time
import logdrain

log = logging.getLogger("app")
log.setLevel(logging.INFO)
log.propagate = False
# flush_interval=30: the parent's senders would linger 30 s; a child's no more
# than FORKED_LINGER.
log.addHandler(logdrain.DrainHandler(sys.argv[1], flush_interval=30))
log.info("parent before fork")  # the parent's own record: the children never send it

pids = []
for child in range({children}):
    pid = os.fork()
    if pid == 0:
        for i in range({records}):
            log.info("child %d record %d", child, i)
        time.sleep(1.0)  # ten times worker.FORKED_LINGER
        log.info("child %d last", child)  # may or may not arrive
        os._exit(0)  # no hook runs here
    pids.append(pid)
codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
print(json.dumps(codes))
"""


def test_forked_child_ending_in_os_exit_loses_only_its_last_moment(collector: Collector) -> None:
    code = FORK_AND_EXIT.format(children=CHILDREN, records=RECORDS)
    result = proc.run(f"import sys; sys.argv[1:] = [{collector.url!r}]\n{code}", timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [0] * CHILDREN

    expected = {f"child {c} record {i}" for c in range(CHILDREN) for i in range(RECORDS)}
    assert collector.wait_for(
        lambda c: expected <= {r.get("message") for r in c.records}, timeout=30
    ), sorted(expected - {r.get("message") for r in collector.records})[:10]
    messages = [r.get("message") for r in collector.records]
    # Each record once; the parent's (flushed at its exit) never from a child.
    assert messages.count("parent before fork") == 1
    assert all(messages.count(m) == 1 for m in expected)


# -- uwsgi: a real server, workers forked from a master that loaded the app --

UWSGI_APP = """
import logging, os
import logdrain

log = logging.getLogger("app")
log.setLevel(logging.INFO)
log.propagate = False
handler = logdrain.DrainHandler(os.environ["COLLECTOR"], flush_interval=30)
log.addHandler(handler)
log.info("loaded in the master")
handler.flush()  # the master runs no uwsgi.atexit: only workers do

def application(environ, start_response):
    log.info("request %s", environ["QUERY_STRING"])
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
"""
REQUESTS = 50


def _uwsgi() -> str | None:
    beside = Path(sys.executable).with_name("uwsgi")
    return str(beside) if beside.exists() else shutil.which("uwsgi")


def _get(port: int, query: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", f"/?{query}")
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_uwsgi_workers_flush_in_uwsgi_atexit(collector: Collector, tmp_path: Path) -> None:
    """``skip-atexit-teardown``: workers end without Py_Finalize, so without
    logdrain's ``uwsgi.atexit`` every record still lingering is lost (all 50
    here: flush_interval=30 in the master, FORKED_LINGER in the workers)."""
    binary = _uwsgi()
    if binary is None:
        pytest.skip("uwsgi not installed (pip install uwsgi: it compiles C)")
    (tmp_path / "uwapp.py").write_text(textwrap.dedent(UWSGI_APP))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = proc.child_env(COLLECTOR=collector.url)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    log = tmp_path / "uwsgi.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [
                binary, "--http-socket", f"127.0.0.1:{port}", "--module", "uwapp:application",
                "--master", "--processes", "2", "--enable-threads", "--py-call-osafterfork",
                "--skip-atexit-teardown", "--die-on-term",
            ],
            env=env, cwd=tmp_path, stdout=sink, stderr=sink,
        )  # fmt: skip
    try:

        def answers() -> bool:  # the first answer; a server that exits fails at once
            try:
                return _get(port, "warmup") == 200
            except OSError:
                assert server.poll() is None, log.read_text(errors="replace")
                return False

        assert proc.wait_until(answers, 60.0), log.read_text(errors="replace")
        assert [_get(port, str(i)) for i in range(REQUESTS)] == [200] * REQUESTS
    finally:
        server.terminate()  # at once: the last records are still lingering
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)
            raise AssertionError(f"uwsgi did not stop\n{log.read_text(errors='replace')}") from None

    expected = {f"request {i}" for i in range(REQUESTS)}
    assert collector.wait_for(
        lambda c: expected <= {r.get("message") for r in c.records}, timeout=30
    ), (sorted(expected - {r.get("message") for r in collector.records}), log.read_text()[-3000:])
    messages = [r.get("message") for r in collector.records]
    assert messages.count("loaded in the master") == 1  # the fork hooks ran in the workers
    assert all(messages.count(m) == 1 for m in expected)


def test_celery_hook_connected_once_and_only_when_celery_is_in_use() -> None:
    pytest.importorskip("celery")
    result = proc.run(
        """
        import os, sys
        import logdrain
        from logdrain import prefork
        first = logdrain.Drain("http://127.0.0.1:9/ingest")
        assert "celery" not in sys.modules      # logdrain never imports it
        import celery.signals                   # imported after the Drain, as apps often do
        def ours():
            return [r for r in celery.signals.worker_process_shutdown.receivers
                    if r[1] is prefork._on_worker_process_shutdown]
        assert ours() == []
        pid = os.fork()                         # the pool forks after celery is imported
        if pid == 0:
            os._exit(0 if len(ours()) == 1 else 3)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
        second = logdrain.Drain("http://127.0.0.1:9/ingest")
        third = logdrain.Drain("http://127.0.0.1:9/ingest")
        assert len(ours()) == 1, celery.signals.worker_process_shutdown.receivers
        for d in (first, second, third):
            d.close(0.1)
        print("ok")
        """,
        timeout=60,
    )
    assert result.stdout.strip() == "ok", result.stderr
