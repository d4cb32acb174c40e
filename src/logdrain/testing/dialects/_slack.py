"""A Slack incoming webhook (``POST https://hooks.slack.com/services/...``), strictly.

Sources each rule follows:

* Sending messages using incoming webhooks,
  https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks
  (a JSON payload with ``text``, or ``blocks`` / ``attachments``; the answer
  ``ok``; the "Handling errors" table: plain-text error strings with their
  HTTP statuses).
* Improving error conditions for incoming webhooks,
  https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks
  (400 ``invalid_payload`` / ``user_not_found``, 403 ``action_prohibited``,
  404 ``channel_not_found``, 410 ``channel_is_archived``, 500
  ``rollup_error``).
* Rate limits, https://api.slack.com/docs/rate-limits (about one message a
  second per webhook, short bursts allowed; past it, 429 Too Many Requests
  with ``Retry-After`` in seconds).
* Truncating really long messages,
  https://api.slack.com/changelog/2018-04-truncating-really-long-messages
  (``text`` above 40,000 characters is truncated, the message still posted;
  the earlier advice: keep messages under 4,000).

Approximations, marked so nobody takes them for Slack's words: the body of a
429 is ``rate_limited``; a method other than POST gets 405
``invalid_method``; the statuses of ``no_text``, ``too_many_attachments``,
``no_service_id``, ``invalid_token``, ``team_disabled``,
``posting_to_general_channel_denied``, ``no_service`` and ``no_team`` are
the ones the webhook page's table and common clients give (400/403/404);
answers are ``text/html`` as Slack serves them.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import parse_qs

from ._base import Answer, Batch, Dialect, Play, Request

DEFAULT_PATH = "/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
TEXT_LIMIT = 40_000  # characters: longer text is truncated, still posted
ATTACHMENT_LIMIT = 100

#: Slack's incoming-webhook error strings -> HTTP status.
ERRORS: dict[str, int] = {
    "invalid_payload": 400,
    "user_not_found": 400,
    "no_text": 400,
    "too_many_attachments": 400,
    "no_service_id": 400,
    "action_prohibited": 403,
    "posting_to_general_channel_denied": 403,
    "invalid_token": 403,
    "team_disabled": 403,
    "channel_not_found": 404,
    "no_service": 404,
    "no_team": 404,
    "channel_is_archived": 410,
    "rollup_error": 500,
}


def slack_answer(status: int, text: str, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, text.encode(), {"Content-Type": "text/html", **(headers or {})})


def slack_error(error: str, status: int | None = None) -> Answer:
    return slack_answer(status or ERRORS.get(error, 400), error)


class Slack(Dialect):
    """One incoming webhook at ``webhook_path`` (any other path: 404 ``no_service``).

    A POST takes ``application/json`` (or a form with ``payload=<json>``):
    a JSON object with a non-empty ``text``, or ``blocks`` / ``attachments``
    (else 400 ``no_text``; an unparsable body or another content type, 400
    ``invalid_payload``; above 100 attachments, 400 ``too_many_attachments``).
    Text above 40,000 characters is stored truncated (``truncated``), as
    Slack posts it. Stored messages: ``{"text", "blocks", "attachments",
    "truncated"}``.

    Options: ``archived`` (every valid post gets 410 ``channel_is_archived``),
    ``min_interval`` (seconds between two accepted posts; a post sooner gets
    429 ``rate_limited`` with ``Retry-After``; None, the default, lets bursts
    through as Slack does briefly), ``clock`` (a ``time.monotonic``-like clock).

    Plays: ``rate_limited`` (429 with ``Retry-After: retry_after``, default 1),
    ``error`` (``text``, a Slack error string, default ``rollup_error``, with
    its status from :data:`ERRORS` unless ``status`` is given).
    """

    name = "slack"
    path = DEFAULT_PATH
    plays: ClassVar[dict[str, frozenset[str]]] = {
        "rate_limited": frozenset({"retry_after"}),
        "error": frozenset({"status", "text"}),
    }

    def __init__(
        self,
        *,
        webhook_path: str = DEFAULT_PATH,
        archived: bool = False,
        min_interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = webhook_path
        self.archived = archived
        self.min_interval = min_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._last_post: float | None = None

    def make_play(self, kind: str, params: dict[str, Any]) -> Play:
        play = super().make_play(kind, params)
        if kind == "error" and "status" not in params and params.get("text") not in (None, *ERRORS):
            raise ValueError(f"slack: unknown error {params['text']!r}: give its status too")
        return play

    def check(self, request: Request) -> Answer | Batch:
        if request.path != self.path:
            return slack_error("no_service")
        if request.method != "POST":
            return slack_answer(405, "invalid_method")
        payload = self._payload(request)
        if not isinstance(payload, dict):
            return slack_error("invalid_payload")
        text = payload.get("text")
        blocks = payload.get("blocks")
        attachments = payload.get("attachments")
        if text is not None and not isinstance(text, str):
            return slack_error("invalid_payload")
        if (blocks is not None and not isinstance(blocks, list)) or (
            attachments is not None and not isinstance(attachments, list)
        ):
            return slack_error("invalid_payload")
        if not (text and text.strip()) and not blocks and not attachments:
            return slack_error("no_text")
        if attachments and len(attachments) > ATTACHMENT_LIMIT:
            return slack_error("too_many_attachments")
        truncated = text is not None and len(text) > TEXT_LIMIT
        message = {
            "text": text[:TEXT_LIMIT] if text else text,
            "blocks": blocks,
            "attachments": attachments,
            "truncated": truncated,
        }
        return Batch([payload], [message], 1)

    @staticmethod
    def _payload(request: Request) -> Any:
        kind = (request.header("Content-Type") or "").split(";")[0].strip().lower()
        try:
            if kind == "application/json":
                return json.loads(request.body.decode("utf-8"))
            if kind == "application/x-www-form-urlencoded":
                form = parse_qs(request.body.decode("utf-8"), strict_parsing=True)
                return json.loads(form["payload"][0])
        except (ValueError, KeyError):
            return None
        return None

    def accept(self, request: Request, batch: Batch, play: Play | None) -> Answer:
        if play is not None:
            if play.kind == "rate_limited":
                wait = play.params.get("retry_after", 1)
                return slack_answer(429, "rate_limited", {"Retry-After": str(wait)})
            text = str(play.params.get("text", "rollup_error"))
            return slack_error(text, play.params.get("status"))
        if self.archived:
            return slack_error("channel_is_archived")
        with self._lock:
            now = self._clock()
            if self.min_interval is not None and self._last_post is not None:
                wait = self._last_post + self.min_interval - now
                if wait > 0:
                    retry = str(max(1, math.ceil(wait)))
                    return slack_answer(429, "rate_limited", {"Retry-After": retry})
            self._last_post = now
        return Answer(200, b"ok", {"Content-Type": "text/html"}, list(batch.records))
