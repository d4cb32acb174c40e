"""Context on every record (issue 13): record attributes opted in by name
(``include``, ``naming``), context variables (logdrain's own and
``structlog.contextvars``) across threads and asyncio tasks, OpenTelemetry
trace correlation with real SDK spans, and the fields a handler's formatter
sets on the record."""

from __future__ import annotations

import asyncio
import json
import logging
import logging.config
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

import logdrain
from logdrain import ConfigError
from logdrain.config import resolve
from logdrain.encode import Encoder
from logdrain.mapping import Mapper
from logdrain.records import stdlib_item
from logdrain.testing import Collector

from . import proc

pytestmark = pytest.mark.timeout(60)

trace = pytest.importorskip("opentelemetry.trace")
sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
sampling = pytest.importorskip("opentelemetry.sdk.trace.sampling")


@pytest.fixture
def tracer() -> Any:
    """A tracer of its own provider (the global one is left alone)."""
    return sdk_trace.TracerProvider().get_tracer("test.context")


@pytest.fixture(autouse=True)
def no_structlog_context() -> Iterator[None]:
    structlog.contextvars.clear_contextvars()
    yield
    structlog.contextvars.clear_contextvars()


def ship(collector: Collector, logger: logging.Logger, **settings: Any) -> logdrain.DrainHandler:
    handler = logdrain.DrainHandler(collector.url, flush_interval=30, **settings)
    logger.addHandler(handler)
    return handler


def shipped(collector: Collector, handler: logdrain.DrainHandler) -> list[dict[str, Any]]:
    assert handler.drain.flush(20)
    return list(collector.records)


def record(**extra: Any) -> logging.LogRecord:
    rec = logging.LogRecord("app.db", logging.INFO, "/srv/app/db.py", 42, "query %s", ("x",), None)
    rec.funcName = "run"
    rec.__dict__.update(extra)
    return rec


def mapped(item: Any, **settings: Any) -> Any:
    """What the preset makes of one queued item (its JSON, parsed)."""
    resolved = resolve({"url": "https://collector.example", "token": "t0ken", **settings})
    encoder = Encoder(resolved)
    mapper = Mapper(resolved, encoder)
    part, _, _ = mapper.part(item, "0")
    data = part[1] if isinstance(part, tuple) else part
    return json.loads(data)


# -- include and naming ------------------------------------------------------------


def test_include_adds_record_attributes_under_their_names(
    collector: Collector, logger: logging.Logger
) -> None:
    names = ["process", "processName", "thread", "threadName", "module", "funcName", "lineno"]
    handler = ship(collector, logger, include=[*names, "pathname", "filename"])
    logger.info("hello", extra={"user": "u"})
    line = sys._getframe().f_lineno - 1
    (doc,) = shipped(collector, handler)
    assert doc["user"] == "u"
    assert doc["process"] == os.getpid()
    assert doc["processName"] == "MainProcess"
    assert doc["thread"] == threading.get_ident()
    assert doc["threadName"] == threading.current_thread().name
    assert doc["module"] == "test_context"
    assert doc["funcName"] == "test_include_adds_record_attributes_under_their_names"
    assert doc["lineno"] == line
    assert doc["pathname"] == __file__
    assert doc["filename"] == "test_context.py"


def test_nothing_is_included_by_default(collector: Collector, logger: logging.Logger) -> None:
    handler = ship(collector, logger)
    logger.info("hello")
    (doc,) = shipped(collector, handler)
    assert set(doc) == {"timestamp", "level", "logger", "message"}


def test_the_document_builder_is_untouched_when_nothing_is_included() -> None:
    """The sender's hot path: no per-record work for the feature when it is off."""
    plain = Encoder(resolve({"url": "https://c.example"}))
    assert plain._stdlib_document == plain._base_document
    assert plain.included == ()
    included = Encoder(resolve({"url": "https://c.example", "include": "lineno"}))
    assert included._stdlib_document != included._base_document


@pytest.mark.parametrize(
    ("naming", "expected"),
    [
        ("plain", {"process": os.getpid(), "threadName": "MainThread", "lineno": 42}),
        (
            "otel",
            {
                "process.pid": os.getpid(),
                "thread.name": "MainThread",
                "code.line.number": 42,
                "code.function.name": "run",
            },
        ),
        (
            "ecs",
            {
                "process.pid": os.getpid(),
                "process.thread.name": "MainThread",
                "log.origin.file.line": 42,
                "log.origin.function": "run",
            },
        ),
    ],
)
def test_naming_conventions(naming: str, expected: dict[str, Any]) -> None:
    settings = resolve(
        {
            "url": "https://c.example",
            "include": [
                "process",
                "threadName",
                "lineno",
                *(["funcName"] if naming != "plain" else []),
            ],
            "naming": naming,
        }
    )
    rec = record()
    rec.threadName = "MainThread"
    doc = Encoder(settings).document(stdlib_item(rec))
    assert {k: doc[k] for k in expected} == expected


def test_an_extra_field_of_the_same_name_wins_and_none_is_left_out() -> None:
    settings = resolve(
        {"url": "https://c.example", "include": ["lineno", "taskName"], "naming": "otel"}
    )
    rec = record(**{"code.line.number": "mine"})
    rec.taskName = None
    doc = Encoder(settings).document(stdlib_item(rec))
    assert doc["code.line.number"] == "mine"
    assert "taskName" not in doc


def test_the_fields_allow_list_keeps_included_attributes(
    collector: Collector, logger: logging.Logger
) -> None:
    handler = ship(collector, logger, include="process,lineno", fields=["message", "process"])
    logger.info("hello")
    assert shipped(collector, handler) == [{"message": "hello", "process": os.getpid()}]


def test_include_from_dictconfig_and_the_environment(
    collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {
                "drain": {
                    "class": "logdrain.DrainHandler",
                    "url": collector.url,
                    "include": ["process", "threadName"],
                    "naming": "otel",
                }
            },
            "loggers": {"test.context.dict": {"handlers": ["drain"], "propagate": False}},
        }
    )
    log = logging.getLogger("test.context.dict")
    try:
        handler = log.handlers[0]
        assert isinstance(handler, logdrain.DrainHandler)
        assert handler.drain.settings.include == ("process", "threadName")
        log.warning("from dictConfig")
        (doc,) = shipped(collector, handler)
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
        log.handlers.clear()
    assert doc["process.pid"] == os.getpid()
    assert doc["thread.name"] == threading.current_thread().name
    monkeypatch.setenv("LOGDRAIN_INCLUDE", "lineno, funcName")
    monkeypatch.setenv("LOGDRAIN_NAMING", "ECS")
    settings = resolve({"url": "https://c.example"})
    assert (settings.include, settings.naming) == (("lineno", "funcName"), "ecs")


def test_wrong_include_and_naming_name_the_field_and_the_fix() -> None:
    with pytest.raises(ConfigError) as err:
        resolve({"url": "https://c.example", "include": ["proces"]})
    assert err.value.field == "include"
    assert "did you mean 'process'" in str(err.value)
    with pytest.raises(ConfigError) as err:
        resolve({"url": "https://c.example", "include": 5})
    assert err.value.field == "include"
    with pytest.raises(ConfigError) as err:
        resolve({"url": "https://c.example", "naming": "semconv"})
    assert err.value.field == "naming"
    assert "plain, otel, ecs" in str(err.value)


@pytest.mark.parametrize(
    ("preset", "naming"),
    [("json", "plain"), ("otlp", "otel"), ("elasticsearch", "ecs"), ("gelf", "gelf")],
)
def test_each_preset_picks_its_collectors_naming(preset: str, naming: str) -> None:
    assert resolve({"url": "https://c.example", "preset": preset}).naming == naming
    assert resolve({"url": "https://c.example", "preset": preset, "naming": "plain"}).naming == (
        "plain"
    )


def test_presets_map_included_attributes_to_their_fields() -> None:
    include = ["process", "threadName", "lineno", "funcName"]
    item = stdlib_item(record(threadName="worker-1"))
    pid = os.getpid()

    otlp = mapped(item, preset="otlp", include=include)
    attrs = {a["key"]: a["value"] for a in otlp["attributes"]}
    assert attrs["process.pid"] == {"intValue": str(pid)}
    assert attrs["thread.name"] == {"stringValue": "worker-1"}
    assert attrs["code.line.number"] == {"intValue": "42"}
    assert attrs["code.function.name"] == {"stringValue": "run"}
    # LogRecord's names, picked by hand, map to the same conventions.
    plain = mapped(item, preset="otlp", include=include, naming="plain")
    assert {a["key"]: a["value"] for a in plain["attributes"]} == attrs

    gelf = mapped(item, preset="gelf", include=include)
    assert (gelf["_pid"], gelf["_thread_name"], gelf["_line"], gelf["_function"]) == (
        pid,
        "worker-1",
        42,
        "run",
    )

    hec = mapped(item, preset="splunk_hec", include=include, field_keys="user")
    assert hec["fields"] == {
        "process": str(pid),
        "threadName": "worker-1",
        "lineno": "42",
        "funcName": "run",
    }
    assert hec["event"]["process"] == pid
    hec_renamed = mapped(item, preset="splunk_hec", include=["lineno"], rename={"lineno": "line"})
    assert hec_renamed["fields"] == {"line": "42"}
    assert "fields" not in mapped(item, preset="splunk_hec")

    es = mapped(item, preset="elasticsearch", include=include)
    assert (es["process.pid"], es["process.thread.name"], es["log.origin.file.line"]) == (
        pid,
        "worker-1",
        42,
    )

    dd = mapped(item, preset="datadog", include=include)
    assert (dd["logger.thread_name"], dd["logger.method_name"], dd["process"]) == (
        "worker-1",
        "run",
        pid,
    )


# -- context variables --------------------------------------------------------------


def test_bound_values_reach_every_record_and_leave_with_the_block(
    collector: Collector, logger: logging.Logger
) -> None:
    handler = ship(collector, logger)
    with logdrain.bound(request_id="r-1", user="ann"):
        logger.info("inside", extra={"user": "own"})  # the record's own field wins
        with logdrain.bound(step=2):
            logger.info("nested")
        assert logdrain.get_context() == {"request_id": "r-1", "user": "ann"}
    logger.info("after")
    token = logdrain.bind(job="j-9")
    logger.info("bound")
    logdrain.unbind(token)
    logger.info("unbound")
    docs = shipped(collector, handler)
    assert [(d["message"], d.get("request_id"), d.get("user"), d.get("step")) for d in docs] == [
        ("inside", "r-1", "own", None),
        ("nested", "r-1", "ann", 2),
        ("after", None, None, None),
        ("bound", None, None, None),
        ("unbound", None, None, None),
    ]
    assert [d.get("job") for d in docs] == [None, None, None, "j-9", None]


def test_threads_each_see_their_own_context(collector: Collector, logger: logging.Logger) -> None:
    handler = ship(collector, logger)
    both = threading.Barrier(2)

    def work(n: int) -> None:
        with logdrain.bound(worker=n):
            structlog.contextvars.bind_contextvars(slot=n * 10)
            both.wait()  # both bound at once
            logger.info("from %d", n)
            both.wait()

    threads = [threading.Thread(target=work, args=(n,)) for n in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    logger.info("main")
    docs = {d["message"]: d for d in shipped(collector, handler)}
    assert (docs["from 1"]["worker"], docs["from 1"]["slot"]) == (1, 10)
    assert (docs["from 2"]["worker"], docs["from 2"]["slot"]) == (2, 20)
    assert "worker" not in docs["main"]
    assert "slot" not in docs["main"]


def test_asyncio_tasks_each_see_their_own_context(
    collector: Collector, logger: logging.Logger
) -> None:
    handler = ship(collector, logger)

    async def request(n: int) -> None:
        structlog.contextvars.bind_contextvars(request_id=f"req-{n}")
        with logdrain.bound(task=n):
            await asyncio.sleep(0.01)  # the other task binds meanwhile
            logger.info("task %d", n)

    async def main() -> None:
        await asyncio.gather(request(1), request(2))
        logger.info("loop")

    asyncio.run(main())
    docs = {d["message"]: d for d in shipped(collector, handler)}
    assert (docs["task 1"]["request_id"], docs["task 1"]["task"]) == ("req-1", 1)
    assert (docs["task 2"]["request_id"], docs["task 2"]["task"]) == ("req-2", 2)
    assert "request_id" not in docs["loop"]


def test_structlog_contextvars_reach_stdlib_records_of_third_party_libraries(
    collector: Collector, logger: logging.Logger
) -> None:
    handler = ship(collector, logger)
    structlog.contextvars.bind_contextvars(request_id="abc")
    logger.info("from a library")
    structlog.contextvars.unbind_contextvars("request_id")
    logger.info("after unbind")
    docs = shipped(collector, handler)
    assert docs[0]["request_id"] == "abc"
    assert "request_id" not in docs[1]


def test_context_reaches_structlog_events_through_the_processor(collector: Collector) -> None:
    drain = logdrain.Drain(collector.url, flush_interval=30)
    try:
        log = structlog.wrap_logger(
            structlog.testing.ReturnLogger(),
            processors=[logdrain.DrainProcessor(drain), structlog.processors.JSONRenderer()],
        )
        structlog.contextvars.bind_contextvars(request_id="abc")
        with logdrain.bound(tenant="t1"):
            log.info("event", tenant="own")
            log.info("plain")
        assert drain.flush(20)
    finally:
        drain.close()
    docs = collector.records
    assert [(d["event"], d["request_id"], d["tenant"]) for d in docs] == [
        ("event", "abc", "own"),
        ("plain", "abc", "t1"),
    ]


def test_context_off(collector: Collector, logger: logging.Logger) -> None:
    handler = ship(collector, logger, context=False)
    structlog.contextvars.bind_contextvars(request_id="abc")
    with logdrain.bound(tenant="t1"):
        logger.info("hello")
    (doc,) = shipped(collector, handler)
    assert "request_id" not in doc
    assert "tenant" not in doc


def test_context_with_a_formatter_and_an_exception(
    collector: Collector, logger: logging.Logger
) -> None:
    handler = ship(collector, logger)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    with logdrain.bound(request_id="r-2"):
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    (doc,) = shipped(collector, handler)
    assert doc["request_id"] == "r-2"
    assert doc["message"].startswith("ERROR failed\nTraceback")


# -- trace correlation ----------------------------------------------------------------


def test_trace_ids_of_a_recording_span(
    collector: Collector, logger: logging.Logger, tracer: Any
) -> None:
    handler = ship(collector, logger)
    with tracer.start_as_current_span("request") as span:
        logger.info("in span")
        with tracer.start_as_current_span("child") as child:
            logger.info("in child")
    logger.info("no span")
    docs = shipped(collector, handler)
    ctx, child_ctx = span.get_span_context(), child.get_span_context()
    assert docs[0]["trace_id"] == f"{ctx.trace_id:032x}"
    assert docs[0]["span_id"] == f"{ctx.span_id:016x}"
    assert docs[0]["trace_flags"] == f"{int(ctx.trace_flags):02x}"
    assert int(docs[0]["trace_flags"], 16) & 1  # sampled
    assert docs[1]["trace_id"] == docs[0]["trace_id"]
    assert docs[1]["span_id"] == f"{child_ctx.span_id:016x}"
    assert not {"trace_id", "span_id", "trace_flags"} & set(docs[2])


def test_no_trace_ids_when_the_span_is_not_recording_or_trace_is_off(
    collector: Collector, logger: logging.Logger, tracer: Any
) -> None:
    handler = ship(collector, logger)
    off = logdrain.DrainHandler(collector.url, flush_interval=30, trace=False)
    logger.addHandler(off)
    unsampled = sdk_trace.TracerProvider(sampler=sampling.ALWAYS_OFF).get_tracer("off")
    with unsampled.start_as_current_span("dropped"):
        logger.info("unsampled")
    with tracer.start_as_current_span("kept"):
        logger.info("sampled")
    assert off.drain.flush(20)
    docs = shipped(collector, handler)
    by_handler = {(d["message"], "trace_id" in d) for d in docs}
    # Two records each: the default handler's carries ids only in the sampled span.
    assert by_handler == {("unsampled", False), ("sampled", True), ("sampled", False)}
    assert sum("trace_id" in d for d in docs) == 1


def test_trace_ids_on_structlog_events(collector: Collector, tracer: Any) -> None:
    drain = logdrain.Drain(collector.url, flush_interval=30)
    try:
        log = structlog.wrap_logger(
            structlog.testing.ReturnLogger(), processors=[logdrain.DrainProcessor(drain)]
        )
        with tracer.start_as_current_span("request") as span:
            log.info("event")
        assert drain.flush(20)
    finally:
        drain.close()
    (doc,) = collector.records
    assert doc["trace_id"] == f"{span.get_span_context().trace_id:032x}"


def test_trace_ids_in_each_presets_form(tracer: Any) -> None:
    with tracer.start_as_current_span("request") as span:
        handler = logdrain.DrainHandler("https://c.example", flush_interval=30)
        item = stdlib_item(record())
        handler._add_context(item)  # what handle() adds on the caller's thread
        handler.close()
        es_item = stdlib_item(record())
        logdrain.context.trace_writer("ecs")(es_item[1], *_ids(span))
        dd_item = stdlib_item(record())
        logdrain.context.trace_writer("datadog")(dd_item[1], *_ids(span))
    ctx = span.get_span_context()
    otlp = mapped(item, preset="otlp")
    assert (otlp["traceId"], otlp["spanId"], otlp["flags"]) == (
        f"{ctx.trace_id:032x}",
        f"{ctx.span_id:016x}",
        int(ctx.trace_flags),
    )
    assert "attributes" not in otlp or not any(
        a["key"].startswith(("trace", "span")) for a in otlp["attributes"]
    )
    es = mapped(es_item, preset="elasticsearch")
    assert (es["trace.id"], es["span.id"]) == (f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}")
    dd = mapped(dd_item, preset="datadog")
    assert dd["dd.trace_id"] == str(ctx.trace_id & (2**64 - 1))
    assert dd["dd.span_id"] == str(ctx.span_id)
    gelf = mapped(item, preset="gelf")
    assert gelf["_trace_id"] == f"{ctx.trace_id:032x}"


def _ids(span: Any) -> tuple[int, int, int]:
    ctx = span.get_span_context()
    return ctx.trace_id, ctx.span_id, int(ctx.trace_flags)


def test_the_handler_writes_the_drains_convention(
    collector: Collector, logger: logging.Logger, tracer: Any
) -> None:
    handler = ship(collector, logger, naming="datadog")
    with tracer.start_as_current_span("request") as span:
        logger.info("in span")
    (doc,) = shipped(collector, handler)
    assert doc["dd.trace_id"] == str(span.get_span_context().trace_id & (2**64 - 1))
    assert "trace_id" not in doc


def test_nothing_is_imported_and_nothing_added_without_structlog_or_opentelemetry() -> None:
    """In a fresh interpreter: logging through a handler imports neither,
    and a record gets no context keys."""
    code = """
import logging, sys, logdrain
from logdrain.context import state
from logdrain.records import stdlib_item
h = logdrain.DrainHandler("http://127.0.0.1:9/", flush_interval=3600)
seen = []
h.drain.enqueue = lambda item, size=0: seen.append(item) or True
log = logging.getLogger("x"); log.addHandler(h); log.propagate = False
log.warning("hello %s", "you", extra={"user": "u"})
assert "opentelemetry" not in sys.modules and "structlog" not in sys.modules, sorted(sys.modules)
assert not state.look and state.structlog_vars is None
(item,) = seen
assert "user" in item[1] and "trace_id" not in item[1]
print("ok")
"""
    out = proc.run(code, timeout=30)
    assert out.stdout.strip() == "ok", out.stderr


def test_a_module_imported_after_logdrain_is_noticed() -> None:
    code = """
import logging, sys, logdrain
from logdrain.context import state
h = logdrain.DrainHandler("http://127.0.0.1:9/", flush_interval=3600)
seen = []
h.drain.enqueue = lambda item, size=0: seen.append(item) or True
log = logging.getLogger("x"); log.addHandler(h); log.propagate = False
log.warning("before")
import structlog.contextvars
assert state.look
log.warning("loaded")
assert not state.look and state.structlog_vars == {}
structlog.contextvars.bind_contextvars(request_id="r")
log.warning("bound")
from opentelemetry.sdk.trace import TracerProvider
assert state.otel and state.look
with TracerProvider().get_tracer("t").start_as_current_span("s"):
    log.warning("span")
print([sorted(set(item[1]) & {"request_id", "trace_id"}) for item in seen])
"""
    out = proc.run(code, timeout=30)
    assert out.stdout.strip() == "[[], [], ['request_id'], ['request_id', 'trace_id']]", out.stderr


def test_a_broken_tracer_never_loses_the_record(
    collector: Collector, logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = ship(collector, logger)

    def broken() -> Any:
        raise RuntimeError("tracer down")

    monkeypatch.setattr(trace, "get_current_span", broken)
    logger.info("still here")
    (doc,) = shipped(collector, handler)
    assert doc["message"] == "still here"


# -- formatter-added fields ------------------------------------------------------------


class TaskFormatter(logging.Formatter):
    """As Celery's: sets task_id and task_name on the record while formatting."""

    def format(self, record: logging.LogRecord) -> str:
        record.__dict__.update(task_id="t-1", task_name="tasks.add")
        return super().format(record)


def test_fields_a_formatter_sets_ship(collector: Collector, logger: logging.Logger) -> None:
    handler = ship(collector, logger)
    handler.setFormatter(TaskFormatter("%(task_name)s[%(task_id)s]: %(message)s"))
    logger.info("done")
    try:
        raise KeyError("k")
    except KeyError:
        logger.exception("failed")
    docs = shipped(collector, handler)
    assert [(d["message"].splitlines()[0], d["task_id"], d["task_name"]) for d in docs] == [
        ("tasks.add[t-1]: done", "t-1", "tasks.add"),
        ("tasks.add[t-1]: failed", "t-1", "tasks.add"),
    ]
    assert "asctime" not in docs[0]
