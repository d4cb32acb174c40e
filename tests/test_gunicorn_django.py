"""A real Django project served by a real gunicorn (two workers, no preload):
every record logged during a request carries its request id, method and
path, the worker's process id (``include``), ``django.request``'s status, and
no secret a view logged; each arrives once."""

from __future__ import annotations

import http.client
import json
import sys
from pathlib import Path

import pytest

from logdrain.testing import Collector

from .test_gunicorn import _free_port, start_gunicorn, stop_gracefully, wait_answering

pytest.importorskip("gunicorn")
pytest.importorskip("django")
pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="gunicorn is POSIX-only"),
    pytest.mark.timeout(240),
]

PROJECT = """
import logging, os
import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="test-only",
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["127.0.0.1"],
    DATABASES={},
    INSTALLED_APPS=[],
    MIDDLEWARE=["logdrain.integrations.django.RequestContextMiddleware"],
    LOGGING={
        "version": 1,
        "filters": {"request": {"()": "logdrain.integrations.django.RequestFilter"}},
        "handlers": {"drain": {"class": "logdrain.DrainHandler", "url": os.environ["COLLECTOR"],
                               "filters": ["request"], "include": ["process", "funcName"],
                               "flush_interval": 0.05}},
        "loggers": {"app": {"handlers": ["drain"], "level": "INFO", "propagate": False},
                    "django.request": {"handlers": ["drain"], "level": "WARNING",
                                       "propagate": False}},
    },
)
django.setup()

from django.core.wsgi import get_wsgi_application
from django.http import HttpResponse
from django.urls import path

log = logging.getLogger("app")

def hello(request):
    log.info("hello", extra={"headers": dict(request.headers)})
    return HttpResponse(str(os.getpid()))

def boom(request):
    raise ValueError("boom")

urlpatterns = [path("hello/", hello), path("boom/", boom)]
application = get_wsgi_application()
"""


def _get(port: int, target: str, headers: dict[str, str]) -> tuple[int, str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", target, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode(), response.getheader("X-Request-ID", "")
    finally:
        conn.close()


def test_django_under_gunicorn_ships_request_fields_and_the_workers_pid(
    collector: Collector, tmp_path: Path
) -> None:
    port = _free_port()
    master = start_gunicorn(
        tmp_path, collector, "djproject", PROJECT, port, "djproject:application"
    )
    secret = {"Authorization": "Bearer s3cr3t-value", "Cookie": "sessionid=s3cr3t-value"}
    served: dict[str, str] = {}  # request id -> the worker's pid that answered
    try:
        status, pid, rid = wait_answering(
            master, collector, lambda: _get(port, "/hello/", {"X-Request-ID": "warmup", **secret})
        )
        assert status == 200
        served[rid] = pid
        for i in range(29):
            status, pid, rid = _get(port, "/hello/", {"X-Request-ID": f"req-{i}", **secret})
            assert status == 200 and rid == f"req-{i}"
            served[rid] = pid
        status, _, boom_rid = _get(port, "/boom/?i=0", {"User-Agent": "probe/1.0"})
        assert status == 500
    finally:
        stop_gracefully(master)  # SIGTERM: each worker's exit hook drains
    assert collector.wait_for_count(31)
    hellos = [r for r in collector.records if r["message"] == "hello"]
    assert len(hellos) == 30 and collector.duplicates == 0
    for record in hellos:
        rid = record["request_id"]
        assert (record["http_method"], record["http_path"]) == ("GET", "/hello/")
        assert str(record["process"]) == served[rid]  # the worker that answered it
        assert record["funcName"] == "hello"
        assert record["headers"]["Authorization"] == "***"
        assert record["headers"]["Cookie"] == "***"
    assert master.pid not in {r["process"] for r in hellos}
    (boom,) = [r for r in collector.records if r.get("logger") == "django.request"]
    assert (boom["http_status"], boom["http_path"], boom["user_agent"]) == (
        500,
        "/boom/",
        "probe/1.0",
    )
    assert boom["request_id"] == boom_rid and "ValueError: boom" in boom["exception"]
    assert "s3cr3t" not in json.dumps(collector.records)
