"""Splunk's HTTP Event Collector, JSON event endpoint, strictly.

Sources: https://docs.splunk.com/Documentation/Splunk/latest/Data/FormateventsforHTTPEventCollector
(``Authorization: Splunk <token>``, concatenated event objects, the
envelope keys, flat ``fields``), the HEC status-code table in
https://docs.splunk.com/Documentation/Splunk/latest/Data/TroubleshootHTTPEventCollector,
https://docs.splunk.com/Documentation/Splunk/latest/Admin/Limitsconf
(``[http_input] max_content_length``) and
https://docs.splunk.com/Documentation/Splunk/latest/Data/AboutHECIDXAck
(``X-Splunk-Request-Channel``, ``ackId``). That the events before an
invalid one are stored is not in Splunk's documentation (a third-party
probe of Splunk 10.4 reports it); the 413's text body is an approximation.
"""

from __future__ import annotations

import gzip
import json
import threading
import uuid
from collections.abc import Collection
from typing import Any, ClassVar
from urllib.parse import parse_qs

from ._base import Answer, Batch, Dialect, Play, Request, json_answer, text_answer

#: ``limits.conf [http_input] max_content_length`` of Splunk Enterprise 7.x and later
#: (1 MB on Splunk Cloud Platform and before 7.x).
MAX_CONTENT_LENGTH = 838_860_800

#: The health endpoint: 200 with code 17 "HEC is healthy" (no token needed).
HEALTH_PATH = "/services/collector/health"
EVENT_PATHS = ("/services/collector", "/services/collector/event", "/services/collector/event/1.0")

#: HEC status codes: code -> (HTTP status, text), from Splunk's "Troubleshoot
#: HTTP Event Collector" / "HEC status codes" table.
CODES: dict[int, tuple[int, str]] = {
    0: (200, "Success"),
    1: (403, "Token disabled"),
    2: (401, "Token is required"),
    3: (401, "Invalid authorization"),
    4: (403, "Invalid token"),
    5: (400, "No data"),
    6: (400, "Invalid data format"),
    7: (400, "Incorrect index"),
    8: (500, "Internal server error"),
    9: (503, "Server is busy"),
    10: (400, "Data channel is missing"),
    11: (400, "Invalid data channel"),
    12: (400, "Event field is required"),
    13: (400, "Event field cannot be blank"),
    14: (400, "ACK is disabled"),
    15: (400, "Error in handling indexed fields"),
    16: (400, "Query string authorization is not enabled"),
    17: (200, "HEC is healthy"),
    18: (503, "HEC is unhealthy, queues are full"),
    19: (503, "HEC is unhealthy, ack service unavailable"),
    20: (503, "HEC is unhealthy, queues are full, ack service unavailable"),
}


#: Codes of one invalid event (they carry ``invalid-event-number``).
EVENT_ERRORS = frozenset({6, 7, 12, 13, 15})


def hec_answer(code: int, **extra: Any) -> Answer:
    status, text = CODES[code]
    return json_answer(status, {"text": text, "code": code, **extra})


class _Bad(ValueError):
    def __init__(self, code: int, number: int) -> None:
        super().__init__(code)
        self.code, self.number = code, number


class SplunkHEC(Dialect):
    """Splunk HEC's ``/services/collector[/event[/1.0]]``: concatenated JSON events.

    Options: ``tokens`` (valid ``Authorization: Splunk <token>`` tokens,
    default ``("00000000-0000-0000-0000-000000000000",)``), ``disabled_tokens``,
    ``indexes`` (indexes the token may write to, default ``("main",)``; an event
    naming another gets code 7), ``max_content_length`` (bytes of a request
    body, as sent, at most: ``limits.conf [http_input]``, default 838860800;
    a larger one gets 413 and nothing is stored), ``require_channel`` (the
    token has indexer acknowledgement: a request without an
    ``X-Splunk-Request-Channel`` header or ``channel`` query parameter gets
    code 10, one that is not a GUID code 11, and a success carries the
    channel's next ``ackId``, counted from 0).  An invalid event ends the
    request with its code and ``invalid-event-number``; the events before it
    are stored.

    Plays: ``code`` (``code``: answer that HEC code with its HTTP status,
    default 9 "Server is busy"/503; nothing stored), ``invalid_event``
    (``number``, default 0, and ``code``, default 6: that event of the
    request (the last one if it has fewer) is refused as invalid, with
    ``invalid-event-number``; the events before it are stored, it and the
    rest are not).  ``GET /services/collector/health`` answers code 17
    "HEC is healthy" without a token.  Any other answer:
    :meth:`~logdrain.testing.Collector.script`.
    """

    name = "splunk_hec"
    path = "/services/collector/event"
    plays: ClassVar[dict[str, frozenset[str]]] = {
        "code": frozenset({"code"}),
        "invalid_event": frozenset({"number", "code"}),
    }

    def __init__(
        self,
        *,
        tokens: Collection[str] = ("00000000-0000-0000-0000-000000000000",),
        disabled_tokens: Collection[str] = (),
        indexes: Collection[str] = ("main",),
        max_content_length: int = MAX_CONTENT_LENGTH,
        require_channel: bool = False,
    ) -> None:
        self.tokens = frozenset(tokens)
        self.disabled_tokens = frozenset(disabled_tokens)
        self.indexes = frozenset(indexes)
        self.max_content_length = max_content_length
        self.require_channel = require_channel
        self._lock = threading.Lock()
        self._acks: dict[str, int] = {}  # channel -> next ackId

    def make_play(self, kind: str, params: dict[str, Any]) -> Play:
        play = super().make_play(kind, params)
        if kind == "code" and int(params.get("code", 9)) not in CODES:
            raise ValueError(f"splunk_hec: unknown HEC code {params['code']!r}")
        if kind == "invalid_event" and int(params.get("code", 6)) not in EVENT_ERRORS:
            raise ValueError(f"splunk_hec: code {params['code']!r} names no event")
        return play

    def check(self, request: Request) -> Answer | Batch:
        path = request.path.rstrip("/") or "/"
        if path == HEALTH_PATH and request.method == "GET":
            return hec_answer(17)  # no token needed (``logdrain doctor``'s probe)
        if path not in EVENT_PATHS or request.method != "POST":
            return json_answer(
                404, {"text": "The requested URL was not found on this server.", "code": 404}
            )
        header = request.header("Authorization")
        if header is None:
            return hec_answer(2)
        scheme, _, token = header.partition(" ")
        if scheme != "Splunk" or not token.strip():
            return hec_answer(3)
        token = token.strip()
        if token in self.disabled_tokens:
            return hec_answer(1)
        if token not in self.tokens:
            return hec_answer(4)
        if len(request.body) > self.max_content_length:
            # Approximation: splunkd's wording, as text (its exact body is not documented).
            return text_answer(
                413,
                f"Content-Length of {len(request.body)} too large "
                f"(maximum is {self.max_content_length})",
            )
        channel = request.header("X-Splunk-Request-Channel")
        if channel is None:
            channel = next(iter(parse_qs(request.query).get("channel", [])), None)
        if self.require_channel:
            if not channel:
                return hec_answer(10)
            try:
                channel = str(uuid.UUID(channel))
            except ValueError:
                return hec_answer(11)
        body = request.body
        if (request.header("Content-Encoding") or "").lower() == "gzip":
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError):
                return hec_answer(6, **{"invalid-event-number": 0})
        if not body.strip():
            return hec_answer(5)
        events, error = self._parse(body.decode("utf-8", "replace"))
        return Batch(events, list(events), len(events), {"error": error, "channel": channel})

    def _parse(self, text: str) -> tuple[list[dict[str, Any]], _Bad | None]:
        decoder = json.JSONDecoder()
        events: list[dict[str, Any]] = []
        position = 0
        while True:
            while position < len(text) and text[position] in " \t\r\n":
                position += 1
            if position >= len(text):
                return events, None
            number = len(events)
            try:
                event, position = decoder.raw_decode(text, position)
            except ValueError:
                return events, _Bad(6, number)
            try:
                self._validate(event, number)
            except _Bad as bad:
                return events, bad
            events.append(event)

    def _validate(self, event: Any, number: int) -> None:
        if not isinstance(event, dict):
            raise _Bad(6, number)
        if "event" not in event:
            raise _Bad(12, number)
        value = event["event"]
        if value is None or value == "" or (isinstance(value, (dict, list)) and not value):
            raise _Bad(13, number)
        if "time" in event:
            stamp = event["time"]
            if isinstance(stamp, bool) or not isinstance(stamp, (int, float, str)):
                raise _Bad(6, number)
            try:
                float(stamp)
            except ValueError:
                raise _Bad(6, number) from None
        for key in ("host", "source", "sourcetype", "index"):
            if key in event and not isinstance(event[key], str):
                raise _Bad(6, number)
        if "index" in event and event["index"] not in self.indexes:
            raise _Bad(7, number)
        if "fields" in event:
            fields = event["fields"]
            if not isinstance(fields, dict) or any(
                isinstance(v, dict) or (isinstance(v, list) and any(
                    isinstance(x, (dict, list)) for x in v))
                for v in fields.values()
            ):  # fmt: skip
                raise _Bad(15, number)

    def accept(self, request: Request, batch: Batch, play: Play | None) -> Answer:
        if play is not None and play.kind == "code":
            return hec_answer(int(play.params.get("code", 9)))
        stored = [dict(event) for event in batch.items]
        error: _Bad | None = batch.extra["error"]
        if play is not None and play.kind == "invalid_event":
            number = int(play.params.get("number", 0))
            if error is None or number < error.number:
                error = _Bad(int(play.params.get("code", 6)), min(number, len(stored) - 1))
                stored = stored[: error.number]
        if error is not None:
            answer = hec_answer(error.code, **{"invalid-event-number": error.number})
            return Answer(answer.status, answer.body, answer.headers, stored)
        extra: dict[str, Any] = {}
        if self.require_channel:
            with self._lock:
                extra["ackId"] = self._acks.get(batch.extra["channel"], 0)
                self._acks[batch.extra["channel"]] = extra["ackId"] + 1
        answer = hec_answer(0, **extra)
        return Answer(answer.status, answer.body, answer.headers, stored)
