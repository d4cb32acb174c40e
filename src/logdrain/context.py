"""Context on every record, taken on the caller's thread (see docs/context.md).

* **Context variables**: values bound with :func:`bound` / :func:`bind`
  (logdrain's own, one :class:`contextvars.ContextVar`, so each thread and
  asyncio task sees its own) and with ``structlog.contextvars`` are merged
  into every record, stdlib and structlog alike. A record's own fields win.
  Nothing is looked at until something was bound: logdrain's side by a
  flag set on the first :func:`bind`, structlog's once its
  ``structlog.contextvars`` module is loaded and its registry of variables
  is not empty (``get_contextvars()`` would walk every context variable of
  the context: this reads only structlog's own ones).
* **Trace correlation**: when OpenTelemetry's trace API is already loaded
  (``opentelemetry.trace`` in ``sys.modules``; never imported here) and the
  current span is recording, the record gets its trace id, span id and
  trace flags, named and written as the drain's naming convention says.
* **Naming conventions** for the record attributes the ``include`` setting
  adds (on the sender side: the snapshot already holds them) and for the
  trace keys: ``plain`` (LogRecord's names), ``otel`` (OpenTelemetry
  semantic conventions), ``ecs`` (Elastic Common Schema), ``datadog`` and
  ``gelf``; each preset picks its collector's own by default.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = [
    "CONVENTIONS",
    "INCLUDABLE",
    "bind",
    "bound",
    "get_context",
    "unbind",
]

# -- naming conventions ------------------------------------------------------------

#: LogRecord attributes the ``include`` setting may add.
INCLUDABLE = (
    "process",
    "processName",
    "thread",
    "threadName",
    "taskName",
    "module",
    "funcName",
    "lineno",
    "pathname",
    "filename",
)

#: Convention -> {LogRecord attribute: document key}; an attribute a
#: convention has no name for keeps its LogRecord name.
_NAMES: dict[str, dict[str, str]] = {
    "plain": {},
    # OpenTelemetry semantic conventions (process, thread, code; the code.*
    # names of semconv 1.30+, as the otlp preset maps structlog's keys).
    "otel": {
        "process": "process.pid",
        "thread": "thread.id",
        "threadName": "thread.name",
        "funcName": "code.function.name",
        "lineno": "code.line.number",
        "pathname": "code.file.path",
    },
    # Elastic Common Schema (process.*, log.origin.*; as ecs-logging-python).
    "ecs": {
        "process": "process.pid",
        "processName": "process.name",
        "thread": "process.thread.id",
        "threadName": "process.thread.name",
        "funcName": "log.origin.function",
        "lineno": "log.origin.file.line",
        "filename": "log.origin.file.name",
    },
    # Datadog's standard attributes (the "logger" group).
    "datadog": {
        "threadName": "logger.thread_name",
        "funcName": "logger.method_name",
    },
    # GELF additional fields as graypy names them (the preset adds the "_").
    "gelf": {
        "process": "pid",
        "processName": "process_name",
        "thread": "thread_id",
        "threadName": "thread_name",
        "funcName": "function",
        "lineno": "line",
        "pathname": "file",
    },
}

#: The naming conventions a user may pick (``naming=``).
CONVENTIONS = tuple(_NAMES)


def include_names(convention: str, include: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(attribute, document key) for each included attribute."""
    names = _NAMES.get(convention, {})
    return tuple((attr, names.get(attr, attr)) for attr in include)


_LOW64 = (1 << 64) - 1

#: A trace writer: (target, trace_id, span_id, trace_flags) -> None; it sets
#: only keys the target does not hold yet (a record's own fields win).
TraceWriter = Callable[[dict[str, Any], int, int, int], None]


def _plain_trace(target: dict[str, Any], trace_id: int, span_id: int, flags: int) -> None:
    if "trace_id" not in target:
        target["trace_id"] = "%032x" % trace_id  # noqa: UP031 - faster than format()
    if "span_id" not in target:
        target["span_id"] = "%016x" % span_id  # noqa: UP031
    if "trace_flags" not in target:
        target["trace_flags"] = "%02x" % flags  # noqa: UP031


def _ecs_trace(target: dict[str, Any], trace_id: int, span_id: int, flags: int) -> None:
    if "trace.id" not in target:
        target["trace.id"] = "%032x" % trace_id  # noqa: UP031
    if "span.id" not in target:
        target["span.id"] = "%016x" % span_id  # noqa: UP031


def _datadog_trace(target: dict[str, Any], trace_id: int, span_id: int, flags: int) -> None:
    # Datadog correlates on the decimal of the low 64 bits (as ddtrace's log injection).
    if "dd.trace_id" not in target:
        target["dd.trace_id"] = str(trace_id & _LOW64)
    if "dd.span_id" not in target:
        target["dd.span_id"] = str(span_id)


_TRACE_WRITERS: dict[str, TraceWriter] = {
    "plain": _plain_trace,
    "otel": _plain_trace,  # the otlp preset moves them to the LogRecord's own fields
    "ecs": _ecs_trace,
    "datadog": _datadog_trace,
    "gelf": _plain_trace,
}


def trace_writer(convention: str) -> TraceWriter:
    return _TRACE_WRITERS.get(convention, _plain_trace)


# -- logdrain's own context variables ----------------------------------------------------


class _State:
    """Read by the front ends' hot paths: ``look or structlog_vars`` is false
    (two attribute reads) while nothing can be bound and no tracer is loaded."""

    __slots__ = ("bound", "look", "otel", "pairs", "size", "structlog_pending", "structlog_vars")

    def __init__(self) -> None:
        #: True while a record may have something to add: once :func:`bind`
        #: was called, once ``opentelemetry.trace`` is loaded, and while
        #: ``structlog.contextvars`` is loaded but its registry not yet read.
        self.look = False
        #: True once :func:`bind` was first called (in any thread or task).
        self.bound = False
        #: True once ``opentelemetry.trace`` was seen being imported.
        self.otel = False
        self.structlog_pending = False
        #: structlog's registry of context variables once its module is loaded
        #: (a dict that stays empty until something is bound), else None.
        self.structlog_vars: dict[str, contextvars.ContextVar[Any]] | None = None
        #: (key, variable) pairs of that registry, made again when it grows.
        self.pairs: tuple[tuple[str, contextvars.ContextVar[Any]], ...] = ()
        self.size = 0

    def update(self) -> None:
        self.look = self.bound or self.otel or self.structlog_pending


state = _State()

_VAR: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "logdrain_context", default=None
)
_STRUCTLOG_MODULE = "structlog.contextvars"
_STRUCTLOG_PREFIX = len("structlog_")
_OTEL_TRACE = "opentelemetry.trace"
_WATCHED = frozenset({_STRUCTLOG_MODULE, _OTEL_TRACE})
_modules = sys.modules


def _seen(name: str) -> None:
    if name == _STRUCTLOG_MODULE:
        if state.structlog_vars is None:
            state.structlog_pending = True
    elif name == _OTEL_TRACE:
        state.otel = True
    state.update()


class _ImportWatch:
    """A meta path finder that finds nothing: it notes the first import of
    ``structlog.contextvars`` and ``opentelemetry.trace`` (never importing
    either), so a log call need not look into ``sys.modules`` each time."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name in _WATCHED:
            _seen(name)

    def invalidate_caches(self) -> None:
        pass


def _watch_imports() -> None:
    for name in (_STRUCTLOG_MODULE, _OTEL_TRACE):
        if name in _modules:
            _seen(name)
    if not any(type(finder).__name__ == "_ImportWatch" for finder in sys.meta_path):
        sys.meta_path.insert(0, _ImportWatch())


def bind(**values: Any) -> contextvars.Token[Mapping[str, Any] | None]:
    """Add ``values`` to the current context (this thread's, this asyncio
    task's); every record logged in it carries them. Returns the token that
    :func:`unbind` takes to restore the context as it was before."""
    current = _VAR.get()
    merged = {**current, **values} if current else dict(values)
    if not state.bound:
        state.bound = True
        state.update()
    return _VAR.set(merged)


def unbind(token: contextvars.Token[Mapping[str, Any] | None]) -> None:
    """Restore the context as it was before the :func:`bind` that gave ``token``."""
    _VAR.reset(token)


@contextlib.contextmanager
def bound(**values: Any) -> Iterator[None]:
    """``with logdrain.bound(request_id=rid): ...``: the values are on every
    record logged inside the block (in this thread or task), and gone after it."""
    token = bind(**values)
    try:
        yield
    finally:
        _VAR.reset(token)


def get_context() -> dict[str, Any]:
    """A copy of the values logdrain itself has bound in the current context."""
    return dict(_VAR.get() or {})


def _find_structlog() -> None:
    """structlog's registry of variables, once its module is loaded."""
    registry = getattr(_modules.get(_STRUCTLOG_MODULE), "_CONTEXT_VARS", None)
    if isinstance(registry, dict):
        state.structlog_vars = registry
        state.structlog_pending = False
        state.update()


def _structlog_pairs(
    registry: dict[str, contextvars.ContextVar[Any]],
) -> tuple[tuple[str, contextvars.ContextVar[Any]], ...]:
    """structlog's variables as (key, variable), remade when it has more."""
    if len(registry) != state.size:
        items = tuple(registry.items())  # one C call: safe while another thread binds
        state.pairs = tuple((name[_STRUCTLOG_PREFIX:], var) for name, var in items)
        state.size = len(items)
    return state.pairs


# -- trace correlation ---------------------------------------------------------------


def current_trace() -> tuple[int, int, int] | None:
    """(trace_id, span_id, trace_flags) of the current span when
    OpenTelemetry's trace API is loaded and the span is recording, else
    None. Never imports OpenTelemetry; never raises."""
    otel = _modules.get(_OTEL_TRACE)
    if otel is None:
        return None
    try:
        span = otel.get_current_span()
        if not span.is_recording():
            return None
        ctx = span.get_span_context()
        return ctx.trace_id, ctx.span_id, int(ctx.trace_flags)
    except Exception:  # noqa: BLE001 - a broken tracer never loses the record
        return None


class Capture:
    """What one front end adds on the caller's thread, decided once from its
    Drain's settings (``context``, ``trace``, the naming convention)."""

    __slots__ = ("context", "trace", "write_trace")

    def __init__(self, settings: Any) -> None:
        self.context: bool = bool(settings.context)
        self.trace: bool = bool(settings.trace)
        self.write_trace: TraceWriter = trace_writer(settings.naming)

    def add(self, target: dict[str, Any]) -> None:
        """Merge the bound values and the trace ids into ``target``. The
        front ends call it only when ``state.look or state.structlog_vars``."""
        if state.structlog_pending:
            _find_structlog()
        if self.context:  # logdrain's values first, then structlog's; the record's own win
            if state.bound:
                mine = _VAR.get()
                if mine:
                    for key, value in mine.items():
                        if key not in target:
                            target[key] = value
            registry = state.structlog_vars
            if registry:
                pairs = state.pairs if len(registry) == state.size else _structlog_pairs(registry)
                for key, var in pairs:
                    value = var.get(Ellipsis)
                    if value is not Ellipsis and key not in target:
                        target[key] = value
        if self.trace and state.otel:
            ids = current_trace()
            if ids is not None:
                self.write_trace(target, *ids)


_watch_imports()
