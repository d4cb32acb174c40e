"""Elasticsearch (and OpenSearch): the ``_bulk`` API, ``create`` actions.

The body is NDJSON ending in a newline: per record an action line
``{"create":{"_index":...,"_id":...}}`` and the document, which carries
``@timestamp`` (the record's creation time, RFC 3339 UTC with microseconds)
and the generic document's fields. ``create`` is the one action a data
stream takes, and with logdrain's own ``_id`` (stable across retries and
splits) it makes every retry idempotent: a document Elasticsearch already
stored answers 409 instead of being stored twice.

The answer is asked for compactly, with ``filter_path`` (Logstash's
``bulk_path`` does the same); ``items.*.status`` keeps one entry per action,
in request order, since the filter drops array elements left empty. A 200
is judged per item: 2xx delivered; 429 and 5xx sent again, alone; other 4xx
rejected with ``error.type: error.reason``; a ``create`` answered 409 on a
retry of the body is the earlier, unanswered attempt's document: delivered.
A 200 logdrain cannot read to its end (cut at ``response_cap``, or not a
bulk answer) sends the whole batch again. 413 splits, 429/5xx retry the
request, anything else rejects it with Elasticsearch's own reason.

Sources:

* Bulk API: https://www.elastic.co/guide/en/elasticsearch/reference/current/docs-bulk.html
  (NDJSON with a final newline, ``application/x-ndjson``; ``create`` fails
  with 409 if a document with the ``_id`` exists; data streams take only
  ``create``; ``errors`` and ``items`` "in the order they were submitted",
  each with ``status`` and ``error.type`` / ``error.reason``).
* ``filter_path``: https://www.elastic.co/guide/en/elasticsearch/reference/current/common-options.html#common-options-response-filtering;
  error answers are never filtered (``AbstractRestChannel.newErrorBuilder``
  in elastic/elasticsearch); Logstash's default ``bulk_path``
  ``/_bulk?filter_path=errors,items.*.error,items.*.status``
  (logstash-plugins/logstash-output-elasticsearch, docs/index.asciidoc).
* Retries: elasticsearch-py ``helpers/actions.py`` (``streaming_bulk``
  retries the items answered 429, alone, with backoff; an item is ok when
  ``200 <= status < 300``, a missing status counts as 500); Logstash's retry
  policy (non-200 requests retried; 400/404 items dropped; 409 not retried);
  "Tune for indexing speed" (429 ``es_rejected_execution_exception``: back
  off and send again; bulk requests of "a couple tens of megabytes" at most):
  https://www.elastic.co/guide/en/elasticsearch/reference/current/tune-for-indexing-speed.html.
* Index names: https://www.elastic.co/guide/en/elasticsearch/reference/current/indices-create-index.html#indices-create-api-path-params
  (lower case; none of ``\\ / * ? " < > | , # :`` or a space; not starting
  with ``- _ +``; not ``.`` or ``..``; at most 255 bytes).
* API keys: ``Authorization: ApiKey <encoded>``, the ``encoded`` value of
  https://www.elastic.co/guide/en/elasticsearch/reference/current/security-api-create-api-key.html.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from itertools import chain
from typing import Any

from .base import (
    DELIVERED,
    RFC3339_LAST_SECOND,
    TRANSIENT_STATUSES,
    Answer,
    Context,
    Keyed,
    Preset,
    RecordOutcome,
    Verdict,
    enclosed,
    rfc3339,
)
from .elasticsearch_index import parse_index, render_index

#: The index when none is given: the data stream naming scheme
#: ``<type>-<dataset>-<namespace>``. Elasticsearch 8's built-in ``logs-*-*``
#: index template makes it a data stream (with a lifecycle); elsewhere
#: (OpenSearch, a cluster without that template) it is a plain index.
DEFAULT_INDEX = "logs-logdrain-default"

#: What the answer is cut down to: ``errors``, and per item its status and
#: error type and reason (``status`` keeps every item, hence the positions).
FILTER_PATH = "errors,items.*.status,items.*.error.type,items.*.error.reason"
BULK_PATH = f"/_bulk?filter_path={FILTER_PATH}"

#: Bytes of an answer read at most. A filtered item is about 26 bytes when it
#: succeeded and 150-400 with an error; unfiltered (a URL naming its own
#: path) about 230 and 300-700: a full batch of 1000 stays far below.
RESPONSE_CAP = 4 * 1024 * 1024

#: About 5 MiB of NDJSON a request: Elasticsearch's bulk sizing advice is to
#: benchmark from small requests up and stay below "a couple tens of
#: megabytes"; a few MB get most of the gain and keep one request well below
#: indexing pressure's rejections, ``http.max_content_length`` and a proxy's
#: body limit. 1600 records: Beats' bulk_max_size (the Python client's
#: chunk_size is 500); log records of a few hundred bytes fill about 0.5 MB,
#: and each request costs the sending process 1-2 ms of CPU.
DEFAULTS: Mapping[str, Any] = {"batch_bytes": 5 * 1024 * 1024, "batch_size": 1600}

_REASON_CHARS = 300
#: The start of a bulk answer whose every item succeeded, as Elasticsearch
#: writes it (``took`` first unless filter_path drops it, then ``errors``):
#: parsing a thousand items' answer costs about a millisecond here, so the
#: usual answer is told from its first bytes. Anything else is parsed.
_NO_ERRORS = re.compile(rb'\{\s*(?:"took"\s*:\s*-?\d+\s*,\s*)?"errors"\s*:\s*false\s*[,}]')


# -- records and framing -----------------------------------------------------------------


timestamp = rfc3339  # the record time, as logdrain's own ``timestamp`` field


def record(doc: Any, ctx: Context) -> Keyed:
    """One record: its ``create`` action line and its document, whose
    ``@timestamp`` comes from the record's creation time."""
    return bind(ctx.options)(doc, ctx)


_new = tuple.__new__  # a Keyed without NamedTuple's Python-level __new__ (once a record)


def _actions(options: Mapping[str, Any]) -> Callable[[float, str, Context], bytes]:
    """The ``create`` action line of a record (its time picks a dated index,
    its id is ``_id``), the line's start made once per index name (once per
    hour for a date pattern)."""
    pattern = options.get("index", DEFAULT_INDEX)
    dated = "%" in pattern  # else one index name: render_index() is the pattern
    heads: dict[str, bytes] = {}  # index name -> b'{"create":{"_index":"<name>"'

    def action(created: float, rid: str, ctx: Context) -> bytes:
        index = render_index(pattern, created) if dated else pattern
        head = heads.get(index)
        if head is None:
            if len(heads) >= 64:
                heads.clear()
            head = heads[index] = b'{"create":{"_index":' + ctx.json(index).encode("utf-8")
        if not rid:
            return head + b"}}"
        if rid.isascii():  # (str.isalnum() looks up each character's Unicode class)
            data = rid.encode("ascii")
            if data.isalnum():  # logdrain's own ids: hex and digits
                return b'%s,"_id":"%s"}}' % (head, data)
        return head + b',"_id":' + ctx.json(rid).encode("utf-8") + b"}}"

    return action


def bind(options: Mapping[str, Any]) -> Callable[[Any, Context], Keyed]:
    """:func:`record` for one Drain's options."""
    action = _actions(options)

    def mapped(doc: Any, ctx: Context) -> Keyed:
        created = ctx.created
        stamp = ctx.timestamp or timestamp(created)
        source: dict[str, Any] = {"@timestamp": stamp}
        if type(doc) is dict or isinstance(doc, dict):
            source.update(doc)
            if "@timestamp" in doc:  # the record's own time wins, in first place
                source["@timestamp"] = stamp
        else:
            source["message"] = doc
        return _new(Keyed, (action(created, ctx.record_id, ctx), source))

    return mapped


def bind_stdlib(
    options: Mapping[str, Any], ctx: Context
) -> Callable[[Mapping[str, Any], str, list[str], str], Keyed | None]:
    """A plain stdlib record's action line and document straight from its
    attributes (``Preset.bind_stdlib``): what :func:`bind`'s mapping makes
    of its generic document. None for a time out of range. The usual case
    inline (one index name, logdrain's own ids, the second of the last
    record): the senders' hottest code for this preset."""
    action = _actions(options)
    pattern = options.get("index", DEFAULT_INDEX)
    # b'{"create":{"_index":"<name>"' of a fixed index name, None for a date pattern.
    head = None if "%" in pattern else b'{"create":{"_index":' + ctx.json(pattern).encode("utf-8")
    # (second, its RFC 3339 text), one tuple swapped whole: safe with several senders.
    second: list[tuple[int, str]] = [(-1, "")]

    def mapped(
        attrs: Mapping[str, Any], message: str, extras: list[str], record_id: str
    ) -> Keyed | None:
        created = attrs["created"]
        if type(created) is not float or not 0.0 <= created < RFC3339_LAST_SECOND:
            return None
        sec = int(created)  # rfc3339(created), inline
        cached = second[0]
        if cached[0] != sec:
            cached = second[0] = (sec, timestamp(float(sec))[:19])
        stamp = "%s.%06dZ" % (cached[1], (created - sec) * 1e6)  # noqa: UP031 - as rfc3339()
        source = {
            "@timestamp": stamp,
            "timestamp": stamp,
            "level": attrs["levelname"],
            "logger": attrs["name"],
            "message": message,
        }
        for key in extras:
            if key != "@timestamp":  # the record's own time wins, in first place
                source[key] = attrs[key]
        if head is not None and record_id.isascii():
            rid = record_id.encode("ascii")
            if rid.isalnum():  # logdrain's own ids (hex and digits): no escaping
                return _new(Keyed, (b'%s,"_id":"%s"}}' % (head, rid), source))
        return _new(Keyed, (action(created, record_id, ctx), source))

    return mapped


def frame(parts: list[Any]) -> bytes:
    """Action line and document per record, each line ending in a newline;
    a bytes part is a chunk of several records' lines (``lines=2``)."""
    if not parts:
        return b""
    kinds = set(map(type, parts))
    if kinds == {tuple}:
        if set(map(len, parts)) != {2}:  # (join() would take a longer tuple's items)
            raise ValueError("elasticsearch: every part must be an (action, document) pair")
        return enclosed(b"", b"\n", list(chain.from_iterable(parts)), b"\n")
    if not kinds <= {tuple, bytes}:
        raise ValueError("elasticsearch: a part must be an (action, document) pair or lines")
    lines: list[bytes] = []
    for part in parts:
        if type(part) is bytes:
            lines.append(part)
        elif len(part) == 2:
            lines += part
        else:
            raise ValueError("elasticsearch: every part must be an (action, document) pair")
    return enclosed(b"", b"\n", lines, b"\n")


def framed_size(total: int, count: int) -> int:
    return total + 2 * count  # two newlines a record


def api_key(token: str) -> dict[str, str]:
    """``token`` is the ``encoded`` value of Elasticsearch's create API key answer."""
    return {"Authorization": f"ApiKey {token}"}


# -- the answer --------------------------------------------------------------------------


def classify(answer: Answer) -> Verdict:
    """The verdict on one ``_bulk`` answer (see the module doc)."""
    status = answer.status
    if 200 <= status < 300:
        return _bulk(answer)
    reason = _error_reason(answer.body) or answer.reason or f"HTTP {status}"
    if status == 413:
        return Verdict("split", f"request too large (http.max_content_length): {reason}")
    if status in TRANSIENT_STATUSES or status >= 500:
        return Verdict("retry", reason)
    return Verdict("rejected", reason)


def _bulk(answer: Answer) -> Verdict:
    if not answer.complete:
        return Verdict(
            "retry",
            f"the bulk answer did not arrive whole (more than {len(answer.body)} bytes, or "
            "cut off): the batch goes again, its _ids keep that from storing twice",
        )
    body = answer.body
    if _NO_ERRORS.match(body.lstrip()) and body.rstrip().endswith(b"}"):
        return DELIVERED  # every item stored: the items need no reading
    doc = _json(body)
    if not isinstance(doc, dict) or not isinstance(doc.get("errors"), bool):
        return Verdict("retry", 'HTTP 2xx without a bulk answer ({"errors": ...}): sent again')
    if doc["errors"] is False:
        return DELIVERED
    items = doc.get("items")
    if not isinstance(items, list) or len(items) != answer.sent:
        count = len(items) if isinstance(items, list) else 0
        return Verdict(
            "retry", f"the bulk answer names {count} item(s) for {answer.sent} sent: sent again"
        )
    outcomes: list[RecordOutcome] = []
    first: dict[str, str] = {}
    for item in items:
        outcome, why = _item(item, answer.attempt)
        outcomes.append(outcome)
        if why:
            first.setdefault(outcome, why)
    if all(outcome == "delivered" for outcome in outcomes):
        return DELIVERED
    notes = []
    labels: tuple[tuple[RecordOutcome, str], ...] = (
        ("rejected", "rejected"),
        ("retry", "to send again"),
    )
    for outcome, label in labels:
        n = outcomes.count(outcome)
        if n:
            notes.append(f"{n} item(s) {label} (first: {first.get(outcome, 'no reason given')})")
    return Verdict("partial", "; ".join(notes), records=tuple(outcomes))


def _item(item: Any, attempt: int) -> tuple[RecordOutcome, str]:
    """(outcome, reason) of one bulk item ``{"<op>": {"status": ..., "error": ...}}``."""
    if not isinstance(item, dict) or len(item) != 1:
        return "retry", "an item logdrain cannot read"
    ((op, result),) = item.items()
    if not isinstance(result, dict):
        return "retry", "an item logdrain cannot read"
    status = result.get("status")
    if not isinstance(status, int) or isinstance(status, bool):
        status = 500  # as elasticsearch-py's helpers read an item without one
    why = _describe(result.get("error"), status)
    if 200 <= status < 300:
        return "delivered", ""
    if status == 409 and op == "create" and attempt > 1:
        return "delivered", ""  # stored by an earlier attempt whose answer was lost
    if status in TRANSIENT_STATUSES or status >= 500:
        return "retry", why
    return "rejected", why


def _describe(error: Any, status: int) -> str:
    """``type: reason`` of an Elasticsearch error object (or its text)."""
    if isinstance(error, dict):
        kind, reason = error.get("type"), error.get("reason")
        text = ": ".join(str(part) for part in (kind, reason) if part)
    elif isinstance(error, str):
        text = error
    else:
        text = ""
    text = " ".join((text or f"status {status}").split())
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 3] + "..."


def _error_reason(body: bytes) -> str:
    """The reason in Elasticsearch's error envelope ``{"error": {...}, "status": N}``
    (or ``{"error": "text"}``); "" when the body is something else."""
    doc = _json(body)
    error = doc.get("error") if isinstance(doc, dict) else None
    return _describe(error, 0) if isinstance(error, (dict, str)) else ""


def _json(body: bytes) -> Any:
    """``body`` parsed, or None (not JSON, not UTF-8, or nested past the stack)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


PRESET = Preset(
    "elasticsearch",
    "application/x-ndjson",
    frame,
    framed_size,
    classify=classify,
    record=record,
    bind=bind,
    bind_stdlib=bind_stdlib,
    defaults=DEFAULTS,
    path=BULK_PATH,
    options={"index": parse_index},
    auth=api_key,
    uses_record_id=True,
    lines=2,  # an action line and a document a record
    response_cap=RESPONSE_CAP,
    naming="ecs",  # included attributes and trace ids under their ECS names
)
