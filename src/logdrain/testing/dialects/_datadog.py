"""Datadog's log intake, ``POST /api/v2/logs``, strictly.

Sources: https://docs.datadoghq.com/api/latest/logs/#send-logs (the v2
endpoint, ``DD-API-KEY``, ``Content-Type: application/json``, gzip and
deflate bodies, an array of ``HTTPLogItem`` whose ``ddsource``, ``ddtags``,
``hostname``, ``message`` and ``service`` are strings, the limits: 5 MB
uncompressed per payload, 1000 entries per array, 1 MB per log, a larger
log accepted and truncated; the statuses 202, 400, 401, 403, 408, 413, 429,
500, 503; the ``HTTPLogErrors`` body ``{"errors": [{"status", "title",
"detail"}]}``); the datadog-api-client cassette "Send logs returns Request
accepted for processing (always 202 empty JSON)" (``{}``); the 403 detail
"API key is missing or invalid" as DataDog/logstash-output-datadog_logs
PR #65 quotes the intake (earlier ``API key is invalid``, seen by
DataDog/datadog-ci-rb PR #500); the Datadog Agent's connectivity check
(``pkg/logs/client/http/destination.go``) posts ``{}`` and expects a 2xx.

Approximations (marked so nobody mistakes them for Datadog's words): the
``detail`` texts other than the 403's, 400 for another content type or
content encoding and for a reserved attribute that is not a string, 413
for more than 1000 entries (Datadog documents the limit, not the answer),
404/405 for another path or method, and truncation that cuts the
``message`` (Datadog does not say which part of a log it cuts).
"""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Collection
from typing import Any, ClassVar

from ._base import Answer, Batch, Dialect, Play, Request, json_answer

LOGS_PATH = "/api/v2/logs"
DEFAULT_API_KEY = "0123456789abcdef0123456789abcdef"

MAX_PAYLOAD = 5_000_000  # bytes, uncompressed ("5MB": the stricter, decimal reading)
MAX_ENTRIES = 1000
MAX_LOG = 1_000_000  # bytes of one log's JSON

#: Reserved attributes ``HTTPLogItem`` types as strings.
STRING_ATTRIBUTES = ("ddsource", "ddtags", "hostname", "message", "service", "status")
_BLANKS = ("",) * len(STRING_ATTRIBUTES)  # what log.get gives for an absent one
_STR = {str}  # (json.loads makes no str subclass)

_TITLES = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Request Entity Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def dd_error(status: int, detail: str, headers: dict[str, str] | None = None) -> Answer:
    """Datadog's ``HTTPLogErrors`` answer."""
    title = _TITLES.get(status, "Error")
    error = {"status": str(status), "title": title, "detail": detail}
    return json_answer(status, {"errors": [error]}, headers)


class _Refused(ValueError):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


class Datadog(Dialect):
    """Datadog's ``/api/v2/logs``: a JSON array (or one object) of logs.

    Options: ``api_keys`` (keys ``DD-API-KEY`` may carry, default
    ``(DEFAULT_API_KEY,)``), ``max_payload`` (uncompressed bytes, default
    5 000 000), ``max_entries`` (1000), ``max_log`` (bytes of one log's JSON,
    1 000 000: a larger one is stored with its ``message`` cut so it fits,
    counted in :attr:`truncated`).  Records are the logs as stored.

    Plays: ``throttled`` (429; ``retry_after`` seconds, sent as
    ``Retry-After``), ``unavailable`` (503), ``too_large`` (413), ``error``
    (``status``, default 500, and ``body``, a JSON-able value or bytes).
    Nothing is stored for a play.
    """

    name = "datadog"
    path = LOGS_PATH
    plays: ClassVar[dict[str, frozenset[str]]] = {
        "throttled": frozenset({"retry_after"}),
        "unavailable": frozenset(),
        "too_large": frozenset(),
        "error": frozenset({"status", "body"}),
    }

    def __init__(
        self,
        *,
        api_keys: Collection[str] = (DEFAULT_API_KEY,),
        max_payload: int = MAX_PAYLOAD,
        max_entries: int = MAX_ENTRIES,
        max_log: int = MAX_LOG,
    ) -> None:
        self.api_keys = frozenset(api_keys)
        self.max_payload = max_payload
        self.max_entries = max_entries
        self.max_log = max_log
        self._lock = threading.Lock()
        self.truncated = 0

    # -- request level --

    def check(self, request: Request) -> Answer | Batch:
        if request.path.rstrip("/") != LOGS_PATH:
            return dd_error(404, f"no such endpoint: {request.path}")
        if request.method != "POST":
            return dd_error(405, f"method {request.method} is not allowed")
        key = (request.header("DD-API-KEY") or "").strip()
        if not key or key not in self.api_keys:
            return dd_error(403, "API key is missing or invalid")
        content_type = (request.header("Content-Type") or "").partition(";")[0].strip().lower()
        if content_type != "application/json":
            return dd_error(400, f"unsupported Content-Type {content_type or 'none'!r}")
        try:
            body = self._inflate(request)
            logs = self._logs(body)
        except _Refused as refused:
            return dd_error(refused.status, refused.detail)
        return Batch(logs, logs, len(logs), {"none_too_long": self._none_too_long(body)})

    def _inflate(self, request: Request) -> bytes:
        encoding = (request.header("Content-Encoding") or "identity").strip().lower()
        if encoding == "identity":
            body = request.body
        elif encoding in ("gzip", "deflate"):
            # gzip: a gzip header; deflate: zlib's format (RFC 9110), or leniently gzip's.
            wbits = 31 if encoding == "gzip" else 47
            inflater = zlib.decompressobj(wbits=wbits)
            try:
                body = inflater.decompress(request.body, self.max_payload + 1)
            except zlib.error:
                raise _Refused(400, f"malformed {encoding} body") from None
            if len(body) <= self.max_payload and not inflater.eof:
                raise _Refused(400, f"truncated {encoding} body")
        else:
            raise _Refused(400, f"unsupported Content-Encoding {encoding!r}")
        if len(body) > self.max_payload:
            raise _Refused(413, f"payload above {self.max_payload} bytes uncompressed")
        return body

    def _logs(self, body: bytes) -> list[dict[str, Any]]:
        try:
            parsed = json.loads(body)
        except ValueError:
            raise _Refused(400, "malformed JSON payload") from None
        logs = parsed if isinstance(parsed, list) else [parsed]
        if len(logs) > self.max_entries:
            raise _Refused(413, f"{len(logs)} entries in one array, at most {self.max_entries}")
        for number, log in enumerate(logs):
            if not isinstance(log, dict):
                raise _Refused(400, f"log {number} is not a JSON object")
            if set(map(type, map(log.get, STRING_ATTRIBUTES, _BLANKS))) != _STR:
                for attribute in STRING_ATTRIBUTES:  # which one, in this order
                    if attribute in log and not isinstance(log[attribute], str):
                        raise _Refused(400, f"log {number}: {attribute} must be a string")
            stamp = log.get("timestamp")
            if stamp is not None and (
                isinstance(stamp, bool) or not isinstance(stamp, (int, float, str))
            ):
                raise _Refused(400, f"log {number}: timestamp must be epoch ms or ISO 8601")
        return logs

    # -- ingest --

    def accept(self, request: Request, batch: Batch, play: Play | None) -> Answer:
        if play is not None:
            return self._play(play)
        if batch.extra["none_too_long"]:
            stored = list(batch.items)
        else:
            stored = [self._truncate(log) for log in batch.items]
        answer = json_answer(202, {})
        return Answer(answer.status, answer.body, answer.headers, stored)

    def _play(self, play: Play) -> Answer:
        if play.kind == "throttled":
            after = play.params.get("retry_after")
            headers = {"Retry-After": str(after)} if after is not None else None
            return dd_error(429, "too many requests", headers)
        if play.kind == "unavailable":
            return dd_error(503, "service unavailable, try again later")
        if play.kind == "too_large":
            return dd_error(413, f"payload above {self.max_payload} bytes uncompressed")
        status = int(play.params.get("status", 500))
        body = play.params.get("body")
        if body is None:
            return dd_error(status, "internal error")
        if isinstance(body, bytes):
            return Answer(status, body, {"Content-Type": "application/json"})
        return json_answer(status, body)

    def _none_too_long(self, body: bytes) -> bool:
        """Whether no log of ``body`` can be over ``max_log`` as _truncate measures
        it, so that it need not dump each: a log's compact UTF-8 dump is no longer
        than its text in the body but for floats ("1e15" dumps as
        "1000000000000000.0": at most 21 bytes more; every float has a ".", "e"
        or "E"), if json.loads read the body as UTF-8 and no lone surrogate
        (made only by a "\\u" escape or an ED byte) can make the dump fail."""
        if json.detect_encoding(body) not in ("utf-8", "utf-8-sig"):
            return False
        if b"\\u" in body or b"\xed" in body:
            return False
        floats = body.count(b".") + body.count(b"e") + body.count(b"E")
        return len(body) + 21 * floats <= self.max_log

    def _truncate(self, log: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(log, separators=(",", ":"), ensure_ascii=False).encode())
        if size <= self.max_log:
            return log
        with self._lock:
            self.truncated += 1
        message = log.get("message")
        if not isinstance(message, str):
            return log
        data = message.encode()
        keep = max(0, len(data) - (size - self.max_log) - 16)
        return {**log, "message": data[:keep].decode("utf-8", "ignore")}
