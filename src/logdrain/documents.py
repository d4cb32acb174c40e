"""The generic document of a queued item: a stdlib record's core fields and
extras (``include``'s attributes added, ``redact_keys``' values masked), a
structlog event, a submitted mapping. :class:`Documents` is the part of
:class:`~logdrain.encode.Encoder` that builds them, on the sender threads."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from itertools import repeat
from typing import Any

from .config import Settings
from .context import include_names
from .records import STDLIB, StdlibSnapshot
from .redact import PLAIN as _PLAIN
from .redact import Redactor

# LogRecord attributes that are not "extra" fields.
RECORD_ATTRS = frozenset(
    {
        "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module",
        "exc_info", "exc_text", "stack_info", "lineno", "funcName", "created", "msecs",
        "relativeCreated", "thread", "threadName", "processName", "process", "message",
        "asctime", "taskName",
        # structlog's stdlib integration (ProcessorFormatter.wrap_for_formatter)
        "_logger", "_name", "_from_structlog", "_record",
    }
)  # fmt: skip

# The attributes ``LogRecord.__init__`` sets, in order. Extra fields come
# after them in a record's ``__dict__`` (insertion order), so the document
# builder looks only past the last one when it is where it should be.
_INIT_KEYS = tuple(logging.LogRecord("", 0, "", 0, "", None, None).__dict__)
_INIT_LAST = len(_INIT_KEYS) - 1
_INIT_LAST_KEY = _INIT_KEYS[-1]

_CORE_FIELDS = frozenset({"timestamp", "level", "logger", "message", "exception", "stack"})


def extra_keys(attrs: dict[str, Any]) -> list[str]:
    """The keys of a stdlib record snapshot's extra fields, in order. Walks
    back from the end to the last key ``LogRecord.__init__`` set: what lies
    beyond it are the extras (and formatter leftovers such as "message");
    all keys are looked at when some were set before ``__init__``."""
    extras = []
    seen = 0
    for key in reversed(attrs):
        if key == _INIT_LAST_KEY:
            if len(attrs) - seen - 1 != _INIT_LAST:  # keys set before __init__: look at all
                extras = [k for k in reversed(attrs) if k not in RECORD_ATTRS]
            break
        seen += 1  # noqa: SIM113 - 10% cheaper than enumerate() here
        if key not in RECORD_ATTRS:
            extras.append(key)
    extras.reverse()
    return extras


def _second(sec: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))


class Documents:
    """Builds documents; the :class:`~logdrain.encode.Encoder` is one."""

    _stdlib_document: Callable[[dict[str, Any], str], dict[str, Any]]

    def _init_documents(self, settings: Settings) -> None:
        self._ts_cache: tuple[int, str] = (-1, "")
        #: ``redact_keys``: masks sensitive values (None: none listed).
        redactor = Redactor(settings.redact_keys)
        self._redactor: Redactor | None = redactor if redactor.names else None
        self._clean_keys = None if self._redactor is None else self._redactor.clean
        self._mask_extras = redactor.extras
        #: (LogRecord attribute, document key) the ``include`` setting adds.
        self.included = include_names(settings.naming, tuple(dict.fromkeys(settings.include)))
        #: A stdlib snapshot's document (what ``Mapper`` and the fast path call):
        #: the plain builder itself unless something is included, so the usual
        #: case pays nothing per record for the feature.
        self._stdlib_document: Callable[[dict[str, Any], str], dict[str, Any]] = (
            self._with_included(self.included) if self.included else self._base_document
        )

    # -- documents --

    def timestamp(self, created: float) -> str:
        """RFC 3339, UTC, microseconds; the date part is cached per second."""
        try:
            sec = int(created)
        except (TypeError, ValueError, OverflowError):  # not a time: now
            created = time.time()
            sec = int(created)
        cached = self._ts_cache  # one tuple, swapped whole: safe if two threads encode
        if cached[0] != sec:
            cached = self._ts_cache = (sec, _second(sec))
        return "%s.%06dZ" % (cached[1], (created - sec) * 1e6)  # noqa: UP031 - 2x faster than :06d

    def document(self, item: Any) -> dict[str, Any]:
        """The JSON object for one queued item, sensitive values masked."""
        return self._document(item, masked=True)

    def _document(self, item: Any, *, masked: bool) -> dict[str, Any]:
        """The JSON object for one queued item; ``masked=False`` leaves the
        masking of a structlog event's or a mapping's keys to the caller (the
        fast path does it for a whole batch; a stdlib record's extras are
        masked as its document is built)."""
        kind = type(item)
        if kind is tuple:  # the front ends' cheap items (records.STDLIB / records.EVENT)
            tag, data, extra = item
            if tag == STDLIB:
                return self._stdlib_document(data, extra)
            doc = dict(data)
            if "timestamp" not in doc:
                doc["timestamp"] = self.timestamp(extra)
            return self._masked(doc) if masked else doc
        if kind is not StdlibSnapshot:
            return self._masked(dict(item)) if masked else dict(item)
        doc = self._stdlib_document(item, item.get("message"))
        msg = item.get("msg")
        if isinstance(msg, dict):  # structlog's stdlib integration: the event dict
            event = dict(msg)
            doc["message"] = event.pop("event", doc["message"])
            for key, value in event.items():
                if key not in _CORE_FIELDS:
                    doc[key] = value
            return self._masked(doc) if masked else doc
        return doc

    def _masked(self, doc: dict[str, Any]) -> dict[str, Any]:
        """``doc`` (a structlog event or submitted mapping: every key the
        caller's) with sensitive values masked (``redact_keys``)."""
        redactor = self._redactor
        return doc if redactor is None else redactor.document(doc)

    def _with_included(
        self, included: tuple[tuple[str, str], ...]
    ) -> Callable[[dict[str, Any], str], dict[str, Any]]:
        """The document builder that adds the included record attributes after
        the extra fields (an extra or a context value of the same name wins;
        an attribute the record lacks or holds as None is left out)."""
        base = self._base_document

        def document(attrs: dict[str, Any], message: str) -> dict[str, Any]:
            doc = base(attrs, message)
            for attr, key in included:
                if key not in doc:
                    value = attrs.get(attr)
                    if value is not None:
                        doc[key] = value
            return doc

        return document

    def plain_extras(self, attrs: dict[str, Any]) -> list[str] | None:
        """The keys of a stdlib record's extra fields when its generic
        document is just the four core fields and those extras as they are:
        no exception or stack text, no extra named as a core field, each
        extra's key clean of ``redact_keys`` and its value plain (str, int,
        bool, None). None for any other record. (What a preset's
        ``bind_stdlib`` mapping is given; see :class:`~logdrain.presets.Preset`.)"""
        if attrs.get("exc_text") or attrs.get("stack_info"):
            return None
        # extra_keys(attrs), inline (as in _base_document), each extra checked
        # on the way: a call fewer a record on the rich presets' senders.
        extras = []
        seen = 0
        clean = self._clean_keys
        for key in reversed(attrs):
            if key == _INIT_LAST_KEY:
                if len(attrs) - seen - 1 != _INIT_LAST:  # keys set before __init__: look at all
                    extras = [k for k in reversed(attrs) if k not in RECORD_ATTRS]
                    if not all(map(self._plain_extra, extras, repeat(attrs))):
                        return None
                break
            seen += 1  # noqa: SIM113 - cheaper than enumerate() here
            if key not in RECORD_ATTRS:
                if key in _CORE_FIELDS or type(attrs[key]) not in _PLAIN:
                    return None
                if clean is not None and key not in clean:
                    return None
                extras.append(key)
        extras.reverse()
        return extras

    def _plain_extra(self, key: str, attrs: dict[str, Any]) -> bool:
        """Whether extra ``key`` of ``attrs`` goes into a document as it is."""
        clean = self._clean_keys
        if key in _CORE_FIELDS or type(attrs[key]) not in _PLAIN:
            return False
        return clean is None or key in clean

    def _base_document(self, attrs: dict[str, Any], message: str) -> dict[str, Any]:
        """The document of a stdlib record: core fields, then every extra field.

        The hottest code on the sender threads: the timestamp is inlined,
        and only the keys after ``LogRecord.__init__``'s own are looked at."""
        created = attrs["created"]
        try:
            sec = int(created)
        except (TypeError, ValueError, OverflowError):  # a filter set it to NaN, None, ...
            created = time.time()
            sec = int(created)
        cached = self._ts_cache
        if cached[0] != sec:
            cached = self._ts_cache = (sec, _second(sec))
        doc = {
            "timestamp": "%s.%06dZ" % (cached[1], (created - sec) * 1e6),  # noqa: UP031
            "level": attrs["levelname"],
            "logger": attrs["name"],
            "message": message,
        }
        if attrs.get("exc_text"):
            doc["exception"] = attrs["exc_text"]
        if attrs.get("stack_info"):
            doc["stack"] = attrs["stack_info"]
        # extra_keys(attrs), inline: the call costs about 470 instructions a
        # record here (callgrind: 2.7% of the json preset's senders).
        extras = []
        seen = 0
        for key in reversed(attrs):
            if key == _INIT_LAST_KEY:
                if len(attrs) - seen - 1 != _INIT_LAST:  # keys set before __init__: look at all
                    extras = [k for k in reversed(attrs) if k not in RECORD_ATTRS]
                break
            seen += 1  # noqa: SIM113 - 10% cheaper than enumerate() here
            if key not in RECORD_ATTRS:
                extras.append(key)
        if extras:
            extras.reverse()
            # redact_keys: of the document, only the extras hold keys of the caller's
            # choosing; their usual case (known, clean keys, plain values) is
            # checked inline, a call only for the rest.
            clean = self._clean_keys
            odd = False
            for key in extras:
                if key not in doc:
                    value = doc[key] = attrs[key]
                    if clean is not None and (key not in clean or type(value) not in _PLAIN):
                        odd = True
            if odd:
                self._mask_extras(doc, extras)
        return doc
