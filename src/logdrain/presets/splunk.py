"""Splunk HTTP Event Collector (``preset="splunk_hec"``).

``POST /services/collector/event`` with ``Authorization: Splunk <token>``;
the body is the batch's event objects one after another (a newline between
two), each ``{"time", "host", "source", "sourcetype", "index", "fields",
"event"}`` with the generic document as ``event``. ``time`` (epoch seconds
with microseconds) comes from the record's creation time and ``host`` from
the ``host`` option, by default this machine's name (read when the Drain is
built), so neither depends on the document's own keys.

HEC answers ``{"text": ..., "code": N}``. Code 0 is success; 8 (internal
error, 500), 9 (server busy, 503) and 18-20 (unhealthy, 503) are retried;
the token, format and index codes are permanent and reported with HEC's
text. A per-event error (codes 6, 12, 13, 15) names the event in
``invalid-event-number``: the events before it were indexed (as the strict
fake, and a probe of Splunk 10.4, behave; Splunk's documentation does not
say so), so they count as delivered, the named event is rejected and the
events after it are sent again. A split would send the indexed ones twice.
413 (over ``max_content_length``) splits the batch.

Sources: https://docs.splunk.com/Documentation/Splunk/latest/Data/FormateventsforHTTPEventCollector
(the event envelope, concatenated events, flat ``fields``),
https://docs.splunk.com/Documentation/Splunk/latest/Data/TroubleshootHTTPEventCollector
(the status-code table), https://docs.splunk.com/Documentation/Splunk/latest/Admin/Limitsconf
(``[http_input] max_content_length``, 838860800 on Splunk Enterprise; 1 MB
on Splunk Cloud and Enterprise before 7.x: hence ``batch_bytes`` below 1 MB,
as Vector's ``splunk_hec_logs`` sink, ``MAX_BYTES = 1_000_000``).
"""

from __future__ import annotations

import json
import math
import socket
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .base import (
    DELIVERED,
    Answer,
    BatchMapping,
    Context,
    ListEncoder,
    Preset,
    RecordOutcome,
    Unsendable,
    Verdict,
    one_line,
    status_verdict,
)

PATH = "/services/collector/event"

#: Below Splunk Cloud's 1 MB ``max_content_length`` (and Enterprise's before 7.x).
BATCH_BYTES = 900_000

#: HEC codes worth sending again: internal error, busy, unhealthy (queues, ack service).
RETRY_CODES = frozenset({8, 9, 18, 19, 20})
#: Codes that name one event (``invalid-event-number``); the events before it were indexed.
EVENT_CODES = frozenset({6, 12, 13, 15})

# -- options --------------------------------------------------------------------


def _fields(raw: Any) -> dict[str, str | list[str]]:
    """Static indexed fields: a mapping (or its JSON text) of names to
    strings, numbers or lists of them; HEC takes them flat."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise ValueError('indexed_fields: not a JSON object; write {"env": "prod"}') from None
    if not isinstance(raw, Mapping):
        raise ValueError(f"indexed_fields must be a mapping, got {type(raw).__name__}")
    out: dict[str, str | list[str]] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not key.strip():
            raise ValueError(f"indexed_fields: a field name must be a non-empty string: {key!r}")
        flat = _flat(value)
        if flat is None:
            raise ValueError(
                f"indexed_fields: {key!r} must be a string, a number or a list of them "
                f"(HEC's indexed fields are flat), got {type(value).__name__}"
            )
        out[key.strip()] = flat
    return out


def _flat(value: Any) -> str | list[str] | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return str(value)
    if isinstance(value, (list, tuple)):
        items = [_flat(item) for item in value]
        if all(isinstance(item, str) for item in items):
            return items  # type: ignore[return-value]
    return None


def _keys(raw: Any) -> tuple[str, ...]:
    """Record keys copied into ``fields``: a list or ``"a,b"``."""
    items: Iterable[Any]
    if isinstance(raw, str):
        items = raw.split(",")
    elif isinstance(raw, (list, tuple, set, frozenset)):
        items = raw
    else:
        raise ValueError(f'field_keys must be a list of names or "a,b", got {type(raw).__name__}')
    names = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"field_keys: names must be strings, got {item!r}")
        if item.strip():
            names.append(item.strip())
    return tuple(dict.fromkeys(names))


def _channel(raw: Any) -> str:
    """``X-Splunk-Request-Channel``: a GUID, for a token with indexer acknowledgement."""
    try:
        return str(uuid.UUID(str(raw).strip()))
    except ValueError:
        raise ValueError(f"channel must be a GUID such as {uuid.uuid4()}, got {raw!r}") from None


OPTIONS = {
    "host": one_line("host"),
    "source": one_line("source"),
    "sourcetype": one_line("sourcetype"),
    "index": one_line("index"),
    "indexed_fields": _fields,
    "field_keys": _keys,
    "channel": _channel,
}


def _environment(environ: Mapping[str, str], options: Mapping[str, Any]) -> dict[str, Any]:
    """The default ``host``: this machine's name, read once per Drain."""
    if "host" in options:
        return {}
    name = socket.gethostname().strip()
    return {"host": name} if name else {}


def _headers(options: Mapping[str, Any]) -> dict[str, str]:
    channel = options.get("channel")
    return {"X-Splunk-Request-Channel": channel} if channel else {}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Splunk {token}"}


# -- records and bodies ---------------------------------------------------------


def _record(doc: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """One HEC event object around the generic document."""
    return _bind(ctx.options)(doc, ctx)


def _bind(options: Mapping[str, Any]) -> Callable[[dict[str, Any], Context], dict[str, Any]]:
    """:func:`_record` for one Drain's options (the envelope's fixed fields
    looked up once)."""
    static = [(k, options[k]) for k in ("host", "source", "sourcetype", "index") if options.get(k)]
    indexed = dict(options.get("indexed_fields") or {})
    field_keys = tuple(options.get("field_keys") or ())

    def mapped(doc: dict[str, Any], ctx: Context) -> dict[str, Any]:
        if not doc:
            raise Unsendable("the record has no fields left to send (HEC refuses a blank event)")
        created = ctx.created
        # Epoch seconds to the microsecond (round(created, 6) costs 4x as much;
        # this may differ from it by 1 us, below the float's own resolution).
        when = int(created * 1e6 + 0.5) / 1e6 if 0 <= created < 1e11 else round(created, 6)
        event: dict[str, Any] = {"time": when}
        event.update(static)
        if indexed or field_keys:
            fields = dict(indexed)
            for key in field_keys:
                if key in doc and doc[key] is not None:
                    value = _flat(doc[key])
                    fields[key] = value if value is not None else ctx.json(doc[key])
            if fields:
                event["fields"] = fields
        event["event"] = doc
        return event

    return mapped


def _bind_batch(
    options: Mapping[str, Any], ctx: Context, encode_list: ListEncoder
) -> BatchMapping | None:
    """:func:`_bind`'s mapping of a run of plain stdlib records at once
    (``Preset.bind_batch``), with no indexed fields: the events built in
    one comprehension and encoded in one call."""
    if options.get("indexed_fields") or options.get("field_keys"):
        return None
    static = {k: options[k] for k in ("host", "source", "sourcetype", "index") if options.get(k)}

    def mapped(
        docs: list[dict[str, Any]],
        created: list[float],
        levelnos: list[Any],
        record_ids: list[str] | None,
    ) -> list[Any] | None:
        if max(created) >= 1e11:
            return None
        # _bind's time (the record times are from 0 on), and its event's key order.
        events = [
            {"time": int(when * 1e6 + 0.5) / 1e6, **static, "event": doc}
            for when, doc in zip(created, docs, strict=True)
        ]
        return encode_list(events, False)

    return mapped


def _bind_included(
    options: Mapping[str, Any], included: tuple[str, ...]
) -> Callable[[dict[str, Any], Context], dict[str, Any]]:
    """:func:`_bind` for a Drain whose records carry included attributes:
    their keys are copied into the indexed ``fields`` too (after ``field_keys``)."""
    keys = tuple(dict.fromkeys((*(options.get("field_keys") or ()), *included)))
    return _bind({**options, "field_keys": keys})


def _frame(parts: list[bytes]) -> bytes:
    return b"\n".join(parts)


def _framed_size(total: int, count: int) -> int:
    return total + max(0, count - 1)


# -- answers --------------------------------------------------------------------


def _reply(body: bytes) -> dict[str, Any] | None:
    try:
        reply = json.loads(body)
    except ValueError:
        return None
    if isinstance(reply, dict) and isinstance(reply.get("code"), int):
        return reply
    return None


def classify(answer: Answer) -> Verdict:
    """HEC's answer: its ``code`` decides, the HTTP status where it has none."""
    status = answer.status
    if 200 <= status < 300:
        return DELIVERED
    if status == 413:
        return Verdict("split", "HEC: the request is larger than max_content_length")
    reply = _reply(answer.body) if answer.complete else None
    if reply is None:
        return status_verdict(answer)
    code: int = reply["code"]
    text = f"HEC code {code}: {reply.get('text') or 'no text'}"
    if code in RETRY_CODES:
        return Verdict("retry", text)
    number = reply.get("invalid-event-number")
    if (
        code in EVENT_CODES
        and isinstance(number, int)
        and not isinstance(number, bool)
        and 0 <= number < answer.sent
    ):
        taken: list[RecordOutcome] = ["delivered"] * number
        again: list[RecordOutcome] = ["retry"] * (answer.sent - number - 1)
        outcomes = (*taken, "rejected", *again)
        return Verdict("partial", f"{text} (event {number} of the request)", records=outcomes)
    return Verdict("rejected", text)


PRESET = Preset(
    "splunk_hec",
    "application/json",
    _frame,
    _framed_size,
    classify=classify,
    record=_record,
    bind=_bind,
    bind_included=_bind_included,
    bind_batch=_bind_batch,
    defaults={"batch_bytes": BATCH_BYTES},
    path=PATH,
    options=OPTIONS,
    environment=_environment,
    headers=_headers,
    auth=_auth,
    requires_token=True,
    lines=1,  # events one after another, a newline between
)
