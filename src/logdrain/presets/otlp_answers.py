"""The ``otlp`` preset's reading of an answer (specification, "OTLP/HTTP
Response"): any 2xx is success; a ``partialSuccess`` with
``rejectedLogRecords`` > 0 counts that many records rejected and the rest
delivered, never retried; 429, 502, 503 and 504 are retried (``Retry-After``,
or a ``google.rpc.RetryInfo`` delay, honoured); 413 splits the batch; any
other status is rejected, with the ``google.rpc.Status`` message when the
body has one."""

from __future__ import annotations

import json
import re
from typing import Any

from .base import DELIVERED, Answer, Verdict

#: Statuses the specification says to retry ("Retryable Response Codes").
RETRYABLE = frozenset({429, 502, 503, 504})
_DIGITS = re.compile(r"[0-9]+")
_DURATION = re.compile(r"[0-9]+(\.[0-9]+)?s")  # a google.protobuf.Duration in JSON


def _json(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body) if body.lstrip()[:1] == b"{" else {}
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _either(doc: dict[str, Any], camel: str, snake: str) -> Any:
    return doc[camel] if camel in doc else doc.get(snake)  # proto3 JSON parsers accept both


def _count(raw: Any) -> int:
    """An int64 of the JSON encoding: a decimal string or a number."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and float(raw).is_integer():
        return max(0, int(raw))
    return int(raw.strip()) if isinstance(raw, str) and _DIGITS.fullmatch(raw.strip()) else 0


def _retry_delay(status: dict[str, Any]) -> float | None:
    """A ``google.rpc.RetryInfo`` detail's ``retryDelay`` ("1.5s"), in seconds."""
    details = status.get("details")
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("rpc.RetryInfo"):
            delay = _either(detail, "retryDelay", "retry_delay")
            if isinstance(delay, str) and _DURATION.fullmatch(delay):
                return float(delay[:-1])
    return None


def classify(answer: Answer) -> Verdict:
    """The OTLP/HTTP answer rules (see the module docstring)."""
    status = answer.status
    if 200 <= status < 300:
        partial = _either(_json(answer.body), "partialSuccess", "partial_success")
        if not isinstance(partial, dict):
            return DELIVERED
        rejected = _count(_either(partial, "rejectedLogRecords", "rejected_log_records"))
        if rejected <= 0:  # none, or a warning only: everything was taken
            return DELIVERED
        message = _either(partial, "errorMessage", "error_message")
        reason = message if isinstance(message, str) and message else ""
        return Verdict("partial", reason or f"{rejected} log record(s) rejected", rejected=rejected)
    rpc = _json(answer.body)
    message = rpc.get("message")
    reason = message.strip() if isinstance(message, str) and message.strip() else ""
    if status == 413:
        return Verdict("split", reason or answer.reason or "request body too large")
    if status in RETRYABLE:
        return Verdict("retry", reason or answer.reason or "unavailable", _retry_delay(rpc))
    return Verdict("rejected", reason or answer.reason or "rejected")
