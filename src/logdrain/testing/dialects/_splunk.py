"""Splunk's HTTP Event Collector, JSON event endpoint, strictly."""

from __future__ import annotations

import gzip
import json
from collections.abc import Collection
from typing import Any, ClassVar

from ._base import Answer, Batch, Dialect, Play, Request, json_answer

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
    naming another gets code 7).  An invalid event ends the request with its
    code and ``invalid-event-number``; the events before it are stored.

    Plays: ``code`` (``code``: answer that HEC code with its HTTP status,
    default 9 "Server is busy"/503; nothing stored).  Any other answer:
    :meth:`~logdrain.testing.Collector.script`.
    """

    name = "splunk_hec"
    path = "/services/collector/event"
    plays: ClassVar[dict[str, frozenset[str]]] = {"code": frozenset({"code"})}

    def __init__(
        self,
        *,
        tokens: Collection[str] = ("00000000-0000-0000-0000-000000000000",),
        disabled_tokens: Collection[str] = (),
        indexes: Collection[str] = ("main",),
    ) -> None:
        self.tokens = frozenset(tokens)
        self.disabled_tokens = frozenset(disabled_tokens)
        self.indexes = frozenset(indexes)

    def make_play(self, kind: str, params: dict[str, Any]) -> Play:
        play = super().make_play(kind, params)
        if kind == "code" and int(params.get("code", 9)) not in CODES:
            raise ValueError(f"splunk_hec: unknown HEC code {params['code']!r}")
        return play

    def check(self, request: Request) -> Answer | Batch:
        path = request.path.rstrip("/") or "/"
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
        body = request.body
        if (request.header("Content-Encoding") or "").lower() == "gzip":
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError):
                return hec_answer(6, **{"invalid-event-number": 0})
        if not body.strip():
            return hec_answer(5)
        events, error = self._parse(body.decode("utf-8", "replace"))
        return Batch(events, list(events), len(events), {"error": error})

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
        if error is not None:
            answer = hec_answer(error.code, **{"invalid-event-number": error.number})
            return Answer(answer.status, answer.body, answer.headers, stored)
        answer = hec_answer(0)
        return Answer(answer.status, answer.body, answer.headers, stored)
