"""The subjects of the side-by-side comparison (``compare.py``): logdrain and
four peers, each set up with its own defaults except what points it at the
collector. One table, ``SUBJECTS``; one builder per subject.

A builder gets the subject run's base URL (``http://127.0.0.1:PORT/<tag>``)
and returns a :class:`Peer`: the ``logging.Handler`` to attach, a
``settle(logged, timeout)`` that brings the subject back to idle (its own
flush where it has one), and its own ``close``. Peers are imported only
here, inside the subject's own subprocess, so the parent never needs them.
"""

from __future__ import annotations

import http.client
import json
import logging
import queue
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Peer:
    handler: logging.Handler
    #: (records logged so far, timeout in s) -> True when back to idle in time
    settle: Callable[[int, float], bool]
    #: the subject's own close / shutdown (it may block: that is the subject's design)
    close: Callable[[], None]


@dataclass(frozen=True)
class Subject:
    name: str
    label: str
    config: str  # the setup, as a reader would write it
    distributions: tuple[str, ...]  # for the versions line
    build: Callable[[str], Peer]


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


def delivered(base: str) -> int:
    """Unique records the collector holds for this run (``GET /<tag>/_tally``)."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=5)
    try:
        conn.request("GET", f"{parts.path}/_tally")
        return int(json.loads(conn.getresponse().read())["unique"])
    finally:
        conn.close()


# -- builders --


def _logdrain(base: str) -> Peer:
    from logdrain import DrainHandler

    handler = DrainHandler(url=f"{base}/ingest")
    drain = handler.drain
    return Peer(handler, lambda n, timeout: drain.flush(timeout), drain.close)


def _stdlib(base: str) -> Peer:
    from logging.handlers import HTTPHandler, QueueHandler, QueueListener

    parts = urlsplit(base)
    q: queue.Queue[Any] = queue.Queue()
    listener = QueueListener(q, HTTPHandler(parts.netloc, f"{parts.path}/form", method="POST"))
    listener.start()
    # QueueListener calls task_done() per record: idle when nothing is unfinished.
    return Peer(
        QueueHandler(q),
        lambda n, timeout: wait_until(lambda: q.unfinished_tasks == 0, timeout),
        listener.stop,
    )


def _logstash_async(base: str) -> Peer:
    from logstash_async.handler import AsynchronousLogstashHandler

    parts = urlsplit(base)
    handler = AsynchronousLogstashHandler(
        parts.hostname,
        parts.port,
        database_path=None,
        transport="logstash_async.transport.HttpTransport",
        path=parts.path.lstrip("/") + "/",
    )

    def settle(n: int, timeout: float) -> bool:
        # flush() only asks the worker to send; there is no way to wait for it,
        # so wait until the collector holds everything logged so far.
        handler.flush()
        return wait_until(lambda: delivered(base) >= n, timeout, 0.05)

    return Peer(handler, settle, handler.close)


def _otel(base: str) -> Peer:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    provider = LoggerProvider()
    provider.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{base}/v1/logs"))
    )
    with warnings.catch_warnings():  # LoggingHandler is deprecated in favour of a contrib package
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(logger_provider=provider)
    # force_flush exports everything queued, on the calling thread (it ignores its timeout).
    return Peer(
        handler,
        lambda n, timeout: bool(provider.force_flush(int(timeout * 1000))),
        provider.shutdown,
    )


def _seqlog(base: str) -> Peer:
    from seqlog import SeqLogHandler

    handler = SeqLogHandler(base)  # batch_size=10, auto_flush_timeout=None, as log_to_seq

    def settle(n: int, timeout: float) -> bool:
        # The consumer thread marks each record done once it is in a batch
        # (and a full batch posted); flush() posts the partial batch.
        done = wait_until(lambda: handler.log_queue.unfinished_tasks == 0, timeout)
        handler.flush()
        return done

    return Peer(handler, settle, handler.close)


SUBJECTS: dict[str, Subject] = {
    s.name: s
    for s in (
        Subject(
            "logdrain",
            "logdrain DrainHandler",
            'DrainHandler(url=".../ingest"), default settings',
            ("requests",),
            _logdrain,
        ),
        Subject(
            "stdlib",
            "stdlib QueueHandler + QueueListener + HTTPHandler",
            'QueueHandler(q); QueueListener(q, HTTPHandler("127.0.0.1:PORT", ".../form", '
            'method="POST")).start(); stop() is not called at exit',
            (),
            _stdlib,
        ),
        Subject(
            "logstash_async",
            "python-logstash-async (HTTP, memory)",
            'AsynchronousLogstashHandler("127.0.0.1", PORT, database_path=None, '
            'transport="logstash_async.transport.HttpTransport", path=".../")',
            ("python-logstash-async",),
            _logstash_async,
        ),
        Subject(
            "otel",
            "OpenTelemetry BatchLogRecordProcessor + OTLP/HTTP",
            "LoggerProvider() + BatchLogRecordProcessor(OTLPLogExporter("
            'endpoint=".../v1/logs")) + LoggingHandler(logger_provider=provider)',
            ("opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http", "protobuf"),
            _otel,
        ),
        Subject(
            "seqlog",
            "seqlog SeqLogHandler",
            "SeqLogHandler(base_url) (log_to_seq's defaults: batch_size=10, no auto-flush, "
            "raw events format)",
            ("seqlog",),
            _seqlog,
        ),
    )
}
