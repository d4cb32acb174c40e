"""Confluent REST Proxy for Kafka: log records produced to a topic.

Two APIs, chosen by the ``cluster`` option:

* v2 (no ``cluster``): ``POST /topics/{topic}``, ``Content-Type:
  application/vnd.kafka.json.v2+json``, ``Accept: application/vnd.kafka.v2+json``,
  ``{"records": [{"key": ..., "value": {...}}, ...]}``; the answer names an
  offset, or an ``error_code`` and ``error``, per record, in order.
* v3 (``cluster`` given): ``POST /v3/clusters/{cluster}/topics/{topic}/records``,
  ``Content-Type: application/json``; the records as concatenated JSON
  objects ``{"key": {"type": "JSON", "data": ...}, "value": {"type": "JSON",
  "data": {...}}, "timestamp": ...}`` in one body, answered by one delivery
  report per record, in order, each with its ``error_code`` (200: produced).

The value is the generic document; the key is the record's ``key_field``
value (a string; other values as their JSON text; null without one), for
partitioning. In v3 the key is JSON-typed like v2's, so the key bytes, and
the partition, are the same in both.

Per-record errors: Kafka's retriable ones (v2 ``error_code`` 2 or 50003; v3
50003, 50302, 429, 5xx) are sent again alone, the others (1, 50002, 4xx)
rejected with the proxy's message. Whole-request errors (``{"error_code":
40401, "message": "Topic not found."}``): 413 splits, 408/429/5xx retry,
the rest (404, 415, 422...) are rejected.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from .base import (
    DELIVERED,
    TRANSIENT_STATUSES,
    Answer,
    Context,
    Keyed,
    Preset,
    RecordOutcome,
    Verdict,
    enclosed,
)

V2_CONTENT_TYPE = "application/vnd.kafka.json.v2+json"
V2_ACCEPT = "application/vnd.kafka.v2+json"
V3_CONTENT_TYPE = "application/json"

#: Per-record codes Kafka may succeed with when asked again: v2's legacy 2,
#: kafka-rest's Retriable Kafka error (50003) and Broker not available (50302).
RETRIABLE_CODES = frozenset({2, 50003, 50302})
#: Per-record codes that will not change: v2's legacy 1, Kafka error (50002).
FATAL_CODES = frozenset({1, 50002})

_TOPIC = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
_V3 = b"3"  # the Keyed key of a v3 record (v2 records are plain)
_V2_HEAD = b'{"records":['
_V2_TAIL = b"]}"


def parse_topic(raw: Any) -> str:
    """A Kafka topic name: 1-249 of ``a-z A-Z 0-9 . _ -``, not ``.`` or ``..``."""
    if not isinstance(raw, str) or not _TOPIC.match(raw.strip()) or raw.strip() in (".", ".."):
        raise ValueError(
            f"topic must be a Kafka topic name (1-249 of a-z, A-Z, 0-9, '.', '_', '-'), got {raw!r}"
        )
    return raw.strip()


def parse_name(option: str) -> Callable[[Any], str]:
    """A parser of a name that goes into the path (``cluster``) or names a field."""

    def parse(raw: Any) -> str:
        if not isinstance(raw, str) or not raw.strip() or any(c in raw for c in "/?#"):
            raise ValueError(f"{option} must be a non-empty name without '/', '?', '#'")
        return raw.strip()

    return parse


def path(options: Mapping[str, Any]) -> str:
    """``/topics/{topic}`` (v2) or ``/v3/clusters/{cluster}/topics/{topic}/records``."""
    topic = options.get("topic")
    if not topic:
        raise ValueError(
            "the topic option is required (topic='logs' or LOGDRAIN_TOPIC): the Kafka "
            "topic the records are produced to"
        )
    cluster = options.get("cluster")
    if cluster:
        return f"/v3/clusters/{quote(cluster, safe='')}/topics/{topic}/records"
    return f"/topics/{topic}"


def headers(options: Mapping[str, Any]) -> dict[str, str]:
    """v3 speaks plain JSON; v2 its own media types (the body's is the preset's)."""
    if options.get("cluster"):
        return {"Content-Type": V3_CONTENT_TYPE, "Accept": V3_CONTENT_TYPE}
    return {"Accept": V2_ACCEPT}


def _key(doc: dict[str, Any], ctx: Context) -> str | None:
    field = ctx.options.get("key_field")
    if not field:
        return None
    value = doc.get(field)
    if value is None:
        return None
    return value if isinstance(value, str) else ctx.json(value)


def _timestamp(created: float) -> str:
    """RFC 3339 UTC with milliseconds (Kafka's record timestamp precision)."""
    # Half a microsecond up: 0.124 held as 0.12399999... still shows .124.
    seconds, millis = divmod(int(created * 1000 + 0.0005), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def record(doc: dict[str, Any], ctx: Context) -> Keyed | dict[str, Any]:
    """The generic document as the value, ``key_field`` as the key (v3: a
    Keyed record, for its framing)."""
    key = _key(doc, ctx)
    if not ctx.options.get("cluster"):
        # No key: none sent (the proxy takes a record without one), and no
        # null in the part, which would send the encoder looking for NaN. A
        # plain object: v2's records are a JSON array, built in chunks.
        return {"value": doc} if key is None else {"key": key, "value": doc}
    out: dict[str, Any] = {}
    if key is not None:
        out["key"] = {"type": "JSON", "data": key}
    out["value"] = {"type": "JSON", "data": doc}
    if ctx.created:
        out["timestamp"] = _timestamp(ctx.created)
    return Keyed(_V3, out)


def frame(parts: list[Any]) -> bytes:
    """v2 (JSON parts, or chunks of them): ``{"records": [...]}``; v3
    (``(key, json)`` parts): the records as concatenated JSON."""
    if parts and type(parts[0]) is tuple:
        return b"\n".join(data for _, data in parts)
    return enclosed(_V2_HEAD, b",", parts, _V2_TAIL)


def framed_size(total: int, count: int) -> int:
    # A comma (v2) or newline (v3) per part at most, and v2's head and tail
    # (v3's 1-byte keys, counted in ``total``, are not sent).
    return total + count + len(_V2_HEAD) + len(_V2_TAIL)


# -- answers --


def outcome(code: Any) -> RecordOutcome:
    """One record's fate from its ``error_code`` (None or 2xx: produced)."""
    if code is None:
        return "delivered"
    if not isinstance(code, int) or isinstance(code, bool):
        return "rejected"
    if code in RETRIABLE_CODES:
        return "retry"
    if code in FATAL_CODES:
        return "rejected"
    status = code if code < 1000 else code // 100  # 40403 -> 404, 50301 -> 503
    if 200 <= status < 300:
        return "delivered"
    return "retry" if status in TRANSIENT_STATUSES or status >= 500 else "rejected"


def _reports(body: bytes) -> list[Any] | None:
    """The delivery reports of an answer: v2's ``offsets``, or v3's
    concatenated objects. None when the body is neither."""
    text = body.decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    found: list[Any] = []
    position = 0
    while True:
        while position < len(text) and text[position] in " \t\r\n":
            position += 1
        if position >= len(text):
            break
        try:
            item, position = decoder.raw_decode(text, position)
        except ValueError:
            break  # a cut stream: what arrived counts, the rest is sent again
        if not isinstance(item, dict):
            return None
        found.append(item)
    if len(found) == 1 and isinstance(found[0].get("offsets"), list):
        offsets: list[Any] = found[0]["offsets"]
        return offsets
    if found and all("offsets" not in item for item in found):
        return found
    return None


def _message(report: Any) -> str:
    if not isinstance(report, dict):
        return "malformed delivery report"
    text = report.get("error") or report.get("message") or "no message"
    return f"{text} (error_code {report.get('error_code')})"


def _refusal(answer: Answer) -> str:
    """``{"error_code": 40401, "message": "Topic not found."}`` as one line."""
    try:
        payload = json.loads(answer.body)
    except ValueError:
        payload = None
    if isinstance(payload, dict) and ("message" in payload or "error_code" in payload):
        return _message(payload)
    return " ".join(answer.body[:200].decode("utf-8", "replace").split()) or answer.reason


def classify(answer: Answer) -> Verdict:
    """Per-record outcomes from a 2xx answer; the status rule otherwise."""
    status = answer.status
    if not 200 <= status < 300:
        why = _refusal(answer) or f"HTTP {status}"
        if status == 413:
            return Verdict("split", why)
        if status in TRANSIENT_STATUSES or status >= 500:
            return Verdict("retry", why)
        return Verdict("rejected", why)
    if _all_produced(answer.body, answer.sent):
        return DELIVERED
    reports = _reports(answer.body)
    if reports is None:
        return Verdict("retry", "the proxy's answer names no delivery reports")
    outcomes: list[RecordOutcome] = [
        outcome(r.get("error_code")) if isinstance(r, dict) else "rejected" for r in reports
    ][: answer.sent]
    missing = answer.sent - len(outcomes)
    if not missing and all(o == "delivered" for o in outcomes):
        return DELIVERED
    again: list[RecordOutcome] = ["retry"] * missing
    records = tuple(outcomes + again)
    return Verdict("partial", _partial_reason(reports, records), records=records)


def _all_produced(body: bytes, sent: int) -> bool:
    """True for the usual answer, every record produced, told by counting
    keys instead of parsing (a 2,000-report answer takes a few milliseconds
    to parse here, as much as encoding a quarter of the batch): v2, one
    ``"offset":`` per record sent and no ``error_code`` but null; v3, one
    ``"error_code":200`` per record and no other code. A key in quotes can
    only be a key (a quote inside a JSON string is escaped), so the counts
    are exact; any other spelling (spaces after the colons) goes the long way."""
    codes = body.count(b'"error_code"')
    if b'"offsets":' in body:
        return codes == body.count(b'"error_code":null') and body.count(b'"offset":') == sent
    return codes == sent and body.count(b'"error_code":200') == sent


def _partial_reason(reports: list[Any], records: tuple[str, ...]) -> str:
    """The first refused record's message (what the "rejected" line shows),
    then how many go again and why."""
    parts: list[str] = []
    refused = [i for i, o in enumerate(records) if o == "rejected"]
    again = [i for i, o in enumerate(records) if o == "retry"]
    if refused:
        parts.append(_message(reports[refused[0]]))
    if again:
        first = reports[again[0]] if again[0] < len(reports) else None
        why = _message(first) if first is not None else "no delivery report"
        parts.append(f"{len(again)} to send again: {why}")
    return "; ".join(parts)


PRESET = Preset(
    "kafka_rest",
    V2_CONTENT_TYPE,
    frame,
    framed_size,
    classify=classify,
    record=record,
    json_array=True,  # v2; v3's Keyed records take the per-record path
    defaults={"batch_bytes": 1024 * 1024, "max_record_bytes": 256 * 1024},
    path=path,
    options={
        "topic": parse_topic,
        "key_field": parse_name("key_field"),
        "cluster": parse_name("cluster"),
    },
    headers=headers,
    response_cap=1024 * 1024,
)
