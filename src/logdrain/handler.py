"""``DrainHandler``: the stdlib ``logging`` front end.

The caller's thread pays for one ``dict`` copy of the record and the
message formatting (so a later change to ``args`` cannot change what ships);
turning that snapshot into a document happens on a sender thread.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

from . import guard
from .context import Capture
from .context import state as _CONTEXT
from .drain import Drain
from .errors import ConfigError
from .records import STDLIB, StdlibSnapshot, failed_item, stdlib_item
from .sizing import HUGE as _HUGE
from .sizing import RECORD_KEYS as _RECORD_KEYS
from .sizing import SCALARS as _SCALARS
from .sizing import SMALL_VALUES as _SMALL_VALUES
from .sizing import stdlib_charge, tail_size

# What Filterer.filter() returns when no filter objects: True, or (3.12+) the record.
_PASS_RECORD = sys.version_info >= (3, 12)
_GUARD = guard.state
_LogRecord = logging.LogRecord


def _holds_logging_lock() -> bool:
    lock: Any = getattr(logging, "_lock", None)
    is_owned = getattr(lock, "_is_owned", None)
    return bool(is_owned()) if is_owned is not None else False


class DrainHandler(logging.Handler):
    """A ``logging.Handler`` that ships records through a :class:`Drain`.

    ``DrainHandler(url=..., batch_size=200, ...)`` makes and owns a Drain (every
    Drain setting is a keyword, so it works from ``dictConfig``);
    ``DrainHandler(drain=shared)`` feeds an existing one and never closes it.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        drain: Drain | None = None,
        level: int | str = logging.NOTSET,
        **options: Any,
    ) -> None:
        # Everything that can fail comes before Handler.__init__, which
        # registers the handler with logging: a half-built handler left in
        # logging's list breaks a later dictConfig and logging.shutdown().
        logging._checkLevel(level)  # type: ignore[attr-defined]  # ValueError/TypeError, as Handler would
        if drain is not None:
            if url is not None or options:
                raise ConfigError(
                    "drain",
                    "given together with Drain settings",
                    "pass either drain= or the settings, not both",
                )
            self._owns_drain = False
        else:
            drain = Drain(url, **options)
            self._owns_drain = True
        self.drain = drain
        self.flush_timeout = drain.settings.flush_timeout
        #: What the caller's thread adds to each record (context variables,
        #: trace ids); None when both are turned off.
        settings = drain.settings
        self._capture = Capture(settings) if settings.context or settings.trace else None
        try:
            super().__init__(level)
            self.level = max(self.level, drain.min_level)
        except BaseException:
            if self._owns_drain:
                drain.close(0)
            raise

    def setLevel(self, level: int | str) -> None:
        """As ``Handler.setLevel``, never below the preset's ``min_level``
        (dictConfig's ``"level": "INFO"`` keeps a Slack handler at WARNING;
        set ``min_level`` to go lower)."""
        super().setLevel(level)
        drain: Drain | None = getattr(self, "drain", None)
        if drain is not None and drain.min_level > self.level:
            self.level = drain.min_level

    def __repr__(self) -> str:
        level = logging.getLevelName(getattr(self, "level", logging.NOTSET))
        return f"<DrainHandler {getattr(self, 'drain', None)!r} ({level})>"

    def handle(self, record: logging.LogRecord) -> Any:
        """Like ``Handler.handle`` without the handler lock: the queue has its
        own, and a lock here is what deadlocks other shippers at shutdown.
        Records from logdrain's own threads are ignored (no feedback loop)."""
        if _GUARD.sending:
            return False
        if not self.filters and self.formatter is None:
            # The common case, inlined (each call saved is ~5% of the cost):
            # what emit() does through stdlib_item(), without filter().
            try:
                msg = record.msg
                if record.exc_info or type(msg) is not str:
                    item = stdlib_item(record)
                    if _CONTEXT.look or _CONTEXT.structlog_vars:
                        self._add_context(item)
                    self._enqueue_item(item)
                else:
                    attrs = record.__dict__.copy()
                    attrs["args"] = None
                    if type(record) is _LogRecord:  # getMessage(), inlined: msg is a str
                        args = record.args
                        message = msg % args if args else msg
                    else:
                        message = record.getMessage()
                    if _CONTEXT.look or _CONTEXT.structlog_vars:  # see context.Capture
                        capture = self._capture
                        if capture is not None:
                            capture.add(attrs)
                    # The byte estimate (sizing.tail_size, inlined): the
                    # message and the extras, the keys after LogRecord's own.
                    size = len(message)
                    extras = len(attrs) - _RECORD_KEYS
                    if extras > 0:
                        for value in reversed(attrs.values()):
                            if type(value) is str:
                                size += len(value)
                            elif type(value) not in _SCALARS:
                                size = _HUGE
                                break
                            extras -= 1
                            if not extras:
                                break
                    elif extras:
                        size = _HUGE  # attributes deleted: find the extras by name
                    if size <= _SMALL_VALUES:
                        self.drain.enqueue((STDLIB, attrs, message))
                    else:
                        self._enqueue_large(attrs, message)
            except RecursionError:
                raise
            except Exception as exc:  # noqa: BLE001 - the message's formatting failed
                self._enqueue_failed(record, exc)
            return record if _PASS_RECORD else True
        rv = self.filter(record)
        if isinstance(rv, logging.LogRecord):  # 3.12+: a filter may return a new record
            record = rv
        if rv:
            self.emit(record)
        return rv

    def emit(self, record: logging.LogRecord) -> None:
        try:
            item = stdlib_item(record, self.formatter)
            if _CONTEXT.look or _CONTEXT.structlog_vars:  # see context.Capture
                self._add_context(item)
            self._enqueue_item(item)
        except RecursionError:
            raise
        except Exception as exc:  # noqa: BLE001 - the message's formatting failed
            self._enqueue_failed(record, exc)

    def _add_context(self, item: tuple[int, dict[str, Any], str] | StdlibSnapshot) -> None:
        """The context variables and trace ids, into a snapshot from ``records``
        (the callers check ``_CONTEXT.look or _CONTEXT.structlog_vars`` first)."""
        if self._capture is not None:
            self._capture.add(item[1] if isinstance(item, tuple) else item)

    def _enqueue_item(self, item: tuple[int, dict[str, Any], str] | StdlibSnapshot) -> None:
        """Queue a snapshot from ``stdlib_item`` with its charge in bytes."""
        if isinstance(item, tuple):
            _, attrs, message = item
            # A msg that is not a str (log.info(obj)) is the caller's object: not kept.
            if type(attrs.get("msg")) is str and tail_size(attrs, len(message)) <= _SMALL_VALUES:
                self.drain.enqueue(item)
            else:
                self._enqueue_large(attrs, message)
            return
        limit = self.drain.settings.max_record_bytes
        size, item["message"] = stdlib_charge(item, item["message"], limit)
        self.drain.enqueue(item, size)

    def _enqueue_large(self, attrs: dict[str, Any], message: str) -> None:
        """Queue a record that is not small: charged its estimate, its huge
        values reduced first (on this thread: see ``sizing``)."""
        size, message = stdlib_charge(attrs, message, self.drain.settings.max_record_bytes)
        self.drain.enqueue((STDLIB, attrs, message), size)

    def _enqueue_failed(self, record: logging.LogRecord, exc: Exception) -> None:
        """A record whose message or formatter raised (``log.info("%d", "x")``)
        ships in a safe form: the template, the arguments' reprs, the error.
        Only if that fails too is it logging's ``handleError``."""
        try:
            item = failed_item(record, exc)
            self._add_context(item)
            self._enqueue_item(item)
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - logging's contract: report, never raise
            self.handleError(record)

    def flush(self) -> None:
        """Wait for delivery, at most ``flush_timeout`` seconds. Not under
        logging's module lock (``dictConfig`` replacing handlers, which then
        closes them on a helper thread): the senders may be waiting for that
        very lock (urllib3's debug logging takes it), so waiting there would
        stall for the whole ``flush_timeout``. Harmless on a half-built handler."""
        drain: Drain | None = getattr(self, "drain", None)
        if drain is not None and not guard.active() and not _holds_logging_lock():
            drain.flush(self.flush_timeout)

    def close(self) -> None:
        """Close an owned drain. Under logging's module lock (``dictConfig``
        replacing handlers) the drain is closed on a helper thread, so nothing
        waits on the network while holding that lock."""
        if getattr(self, "drain", None) is None:  # half-built: nothing to close
            if hasattr(self, "lock"):
                super().close()
            return
        if self._owns_drain and not self.drain.closed:
            if _holds_logging_lock():
                closer = threading.Thread(
                    target=self.drain.close, name="logdrain-closer", daemon=True
                )
                try:
                    closer.start()
                except RuntimeError:
                    self.drain.close()
            else:
                self.drain.close()
        super().close()
