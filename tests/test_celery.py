"""A real Celery worker (prefork pool, recycled processes) on a real redis broker.

billiard ends every pool process with ``os._exit``, and a recycled one
right after its last task: the parent answers its DEATH message with SIGTERM,
which cuts billiard's 1 s pause short. A process that ran its ten tasks
within FORKED_LINGER still holds their records then; only logdrain's
``worker_process_shutdown`` hook (logdrain.prefork) delivers them. Without
it 10-30 of the 500 records were lost in each of 6 runs out of 6.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from logdrain.testing import Collector

from . import proc

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="Celery's prefork pool is POSIX-only"),
    pytest.mark.timeout(180),
]
celery = pytest.importorskip("celery")
redis = pytest.importorskip("redis")

TASKS = 500
MARKER = "logdrain[celery-test]: a line of logdrain's own"

# The recipe of docs/lifecycle.md ("Celery"): keep Celery's logging setup and
# add the handler in after_setup_logger (Celery has just replaced the root
# logger's handlers, and then redirects sys.stdout/sys.stderr into logging).
APP = f"""
import logging, os
from celery import Celery
from celery.signals import after_setup_logger
import logdrain
from logdrain.report import write_stderr

app = Celery("celeryapp", broker=os.environ["BROKER"], backend=os.environ["BROKER"])
app.conf.broker_connection_retry_on_startup = True

@after_setup_logger.connect
def add_logdrain(logger, **kwargs):
    logger.addHandler(logdrain.DrainHandler(os.environ["COLLECTOR"]))

log = logging.getLogger("tasks")

@app.task
def work(i):
    log.info("task %d", i)
    return i

@app.task
def complain():
    write_stderr({MARKER!r})   # as logdrain's Reporter does, from a pool process
    return os.getpid()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway redis-server on 127.0.0.1 (no persistence)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server not on PATH (apt-get install redis-server; .ci/run does)")
    port = _free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path_factory.mktemp("redis"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url, socket_timeout=5)
        for _ in range(300):  # up to ~30 s
            try:
                if client.ping():
                    break
            except redis.exceptions.ConnectionError:
                if server.poll() is not None:
                    pytest.fail(f"redis-server exited with {server.returncode}")
                time.sleep(0.1)
        else:
            pytest.fail("redis-server did not answer PING within 30 s")
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def _start(
    app: str, source: str, collector: Collector, broker: str, tmp_path: Path, *options: str
) -> tuple[subprocess.Popen[bytes], Path]:
    """A real worker of the app ``source`` (module ``app``), prefork pool, its
    output in a file (not a pipe: a full pipe would block the worker)."""
    (tmp_path / f"{app}.py").write_text(textwrap.dedent(source))
    env = proc.child_env(COLLECTOR=collector.url, BROKER=broker)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    log = tmp_path / "worker.log"
    with log.open("wb") as sink:
        worker = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", app, "worker", "--pool", "prefork",
                "--concurrency", "2", *options, "--loglevel", "INFO", "--without-gossip",
                "--without-mingle", "--without-heartbeat", "--hostname", f"logdrain-{app}@%h",
            ],
            env=env, cwd=tmp_path, stdout=sink, stderr=sink,
        )  # fmt: skip
    return worker, log


def _stop(worker: subprocess.Popen[bytes], log: Path) -> str:
    """Warm shutdown (the pool processes end through os._exit); the worker's output."""
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=60)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(timeout=30)
        raise AssertionError(f"celery worker did not stop within 60 s\n{_tail(log)}") from None
    return log.read_text(errors="replace")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]


def _delivered(collector: Collector) -> set[int]:
    found = set()
    for record in collector.records:
        match = re.fullmatch(r"task (\d+)", str(record.get("message", "")))
        if record.get("logger") == "tasks" and match:
            found.add(int(match.group(1)))
    return found


def test_recycled_pool_processes_deliver_everything(
    collector: Collector, broker: str, tmp_path: Path
) -> None:
    worker, log = _start(
        "celeryapp", APP, collector, broker, tmp_path, "--max-tasks-per-child", "10"
    )
    client = celery.Celery("client", broker=broker, backend=broker)
    try:
        results = [client.send_task("celeryapp.work", args=(i,)) for i in range(TASKS)]
        assert [r.get(timeout=90) for r in results] == list(range(TASKS))
        assert client.send_task("celeryapp.complain").get(timeout=60) > 0
        collector.wait_for(lambda c: len(_delivered(c)) == TASKS, timeout=60)
    finally:
        client.close()
        output = _stop(worker, log)
    missing = sorted(set(range(TASKS)) - _delivered(collector))
    assert not missing, f"{len(missing)} task record(s) lost: {missing[:20]}\n{output[-3000:]}"

    # logdrain's own stderr line went to the real stderr as it is, not
    # through Celery's LoggingProxy into logging (and so into the drain).
    lines = output.splitlines()
    assert MARKER in lines, output[-3000:]
    assert not [r for r in collector.records if MARKER in str(r.get("message", ""))]
    fed_back = [ln for ln in lines if "logdrain[" in ln and not ln.startswith("logdrain[")]
    assert not fed_back, fed_back


CONTEXT_APP = """
import logging, os
from celery import Celery
from celery.signals import after_setup_logger
import logdrain
from logdrain.integrations import celery as logdrain_celery

app = Celery("ctxapp", broker=os.environ["BROKER"], backend=os.environ["BROKER"])
app.conf.broker_connection_retry_on_startup = True
logdrain_celery.install()

@after_setup_logger.connect
def add_logdrain(logger, **kwargs):
    logger.addHandler(logdrain.DrainHandler(os.environ["COLLECTOR"]))

log = logging.getLogger("tasks")

@app.task
def tagged(i):
    log.info("tagged %d", i)
    return i
"""


def test_records_inside_a_task_carry_its_id_and_name(
    collector: Collector, broker: str, tmp_path: Path
) -> None:
    """logdrain.integrations.celery: task_id and task_name on every record
    logged inside a task, in the prefork pool, with no formatter."""
    worker, log = _start("ctxapp", CONTEXT_APP, collector, broker, tmp_path)
    client = celery.Celery("client", broker=broker, backend=broker)
    try:
        results = [client.send_task("ctxapp.tagged", args=(i,)) for i in range(20)]
        assert [r.get(timeout=90) for r in results] == list(range(20))
        ids = {f"tagged {i}": r.id for i, r in enumerate(results)}
        assert collector.wait_for(
            lambda c: sum(str(r.get("message")) in ids for r in c.records) == 20, timeout=60
        ), _tail(log)
    finally:
        client.close()
        _stop(worker, log)
    for record in collector.records:
        if record.get("message") in ids:
            assert record["task_id"] == ids[record["message"]]
            assert record["task_name"] == "ctxapp.tagged"
    # Celery's own record of a task's end ("Task ... succeeded") is logged
    # inside it too; the worker's records outside tasks carry no task id.
    inside = ("tasks", "celery.app.trace")
    outside = [r for r in collector.records if r.get("logger") not in inside]
    assert outside and not [r for r in outside if "task_id" in r]
