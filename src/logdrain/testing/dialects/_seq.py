"""Seq's HTTP ingestion API (``POST /ingest/clef``, CLEF), strictly.

Sources each rule follows:

* https://docs.datalust.co/docs/posting-raw-events ("Ingestion with HTTP"):
  ``POST /ingest/clef`` (``/api/events/raw`` with ``?clef`` or the CLEF
  content type on older servers), ``application/vnd.serilog.clef`` with
  newline-delimited events (a single event may come as
  ``application/json``), the API key in ``X-Seq-ApiKey`` or ``?apiKey=``,
  the reified properties (``@t`` required; ``@l`` and ``@x`` strings;
  ``@i`` a number or a hexadecimal string; ``@r`` only with ``@mt``) and
  Seq's tracing ones (``@tr``, ``@sp``, ``@ps``, ``@st``, ``@sk``,
  ``@ra``, ``@sa``).
* https://clef-json.org (one JSON object per line, a line ends with ``\\n``,
  ``\\r\\n`` or the end of the stream; ``@@name`` escapes a property ``@name``).
* datalust/serilog-sinks-seq (``SeqIngestionApiClient``: success is 201 with
  ``{"MinimumLevelAccepted": null}``; ``eventBodyLimitBytes`` 256 KB) and
  datalust/seq-api (``SeqApiClient``: an error answer is ``{"Error": "..."}``).
* Seq's raw ingestion payload limit, 10 MB by default; over it, 413.
* datalust/seq-tickets#2453 ("Rejecting CLEF payload ... due to excessive
  message template expansion"): Seq refuses a whole payload for one event.

Approximations (Seq is closed source; its exact texts are not published):
the ``Error`` texts are logdrain's wording in Seq's shape; an event over the
event body limit gets 413 like an oversized payload; an unknown ``@`` name,
a timestamp without an offset and an empty body are refused with 400; a
wrong content type gets 415; gzip bodies are inflated; the legacy
``{"Events": [...]}`` format of ``/api/events/raw`` is not implemented.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
import threading
from collections.abc import Callable, Collection
from datetime import date
from email.message import Message
from typing import Any, ClassVar
from urllib.parse import parse_qs

from ._base import Answer, Batch, Dialect, Play, Request, json_answer

CLEF_TYPE = "application/vnd.serilog.clef"
PATHS = ("/ingest/clef", "/api/events/raw")
EVENT_BODY_LIMIT = 256 * 1024
RAW_PAYLOAD_LIMIT = 10 * 1024 * 1024
#: Reified properties Seq reads; any other name starting with a single ``@`` is refused.
REIFIED = frozenset(
    {"@t", "@m", "@mt", "@l", "@x", "@i", "@r", "@tr", "@sp", "@ps", "@st", "@sk", "@ra", "@sa"}
)
_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?"
    r"(?:Z|[+-](\d{2}):?(\d{2}))$",
    re.ASCII,
)
_HEX = re.compile(r"^(0x)?[0-9a-fA-F]+$", re.ASCII)
#: A real Seq refusal of one event (seq-tickets#2453), the default of ``bad_event``.
DEFAULT_BAD_EVENT = "excessive message template expansion"


def seq_answer(status: int, error: str) -> Answer:
    """Seq's error shape: ``{"Error": "..."}``."""
    return json_answer(status, {"Error": error})


class _Bad(ValueError):
    def __init__(self, error: str, status: int = 400) -> None:
        super().__init__(error)
        self.error, self.status = error, status


def valid_time(value: Any) -> bool:
    """An ISO 8601 date-time with an offset (``Z`` or ``+hh:mm``)."""
    found = _ISO.match(value) if isinstance(value, str) else None
    if found is None:
        return False
    year, month, day, hour, minute, second, off_h, off_m = found.groups(default="0")
    # (two ASCII digits, or the default "0", compare as their numbers do)
    if hour > "23" or minute > "59" or second > "59" or off_h > "23" or off_m > "59":
        return False
    return _valid_date(year, month, day)


@functools.lru_cache(maxsize=1024)
def _valid_date(year: str, month: str, day: str) -> bool:
    try:
        date(int(year), int(month), int(day))
    except ValueError:
        return False
    return True


def check_event(event: Any, number: int) -> None:
    """Raise _Bad naming line ``number`` when ``event`` is no valid CLEF event."""
    where = f"line {number}"
    if not isinstance(event, dict):
        raise _Bad(f"The event on {where} is not a JSON object.")
    if "@t" not in event:
        raise _Bad(f"The event on {where} has no @t timestamp.")
    if not valid_time(event["@t"]):
        raise _Bad(f"The event on {where} has an invalid @t timestamp: {event['@t']!r}.")
    for name in ("@m", "@mt", "@l", "@x", "@sk"):
        if name in event and not isinstance(event[name], str):
            raise _Bad(f"The {name} property of the event on {where} must be a string.")
    if "@i" in event:
        value = event["@i"]
        number_ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        if not number_ok and not (isinstance(value, str) and _HEX.match(value)):
            raise _Bad(f"The @i event type on {where} must be a number or a hexadecimal string.")
    if "@r" in event:
        renderings = event["@r"]
        if "@mt" not in event:
            raise _Bad(f"The event on {where} has @r renderings but no @mt template.")
        if not isinstance(renderings, list) or not all(isinstance(r, str) for r in renderings):
            raise _Bad(f"The @r renderings of the event on {where} must be an array of strings.")
    for name in ("@tr", "@sp", "@ps"):
        if name in event and not (isinstance(event[name], str) and _HEX.match(event[name])):
            raise _Bad(f"The {name} property of the event on {where} must be a hexadecimal id.")
    if "@st" in event and not valid_time(event["@st"]):
        raise _Bad(f"The @st span start of the event on {where} is not a valid timestamp.")
    for name in ("@ra", "@sa"):
        if name in event and not isinstance(event[name], dict):
            raise _Bad(f"The {name} attributes of the event on {where} must be an object.")
    for name in event:
        if name.startswith("@") and not name.startswith("@@") and name not in REIFIED:
            raise _Bad(
                f"The event on {where} has an unknown reified property {name!r}; "
                "escape a property name starting with @ as @@."
            )


#: Reified properties whose only rule is to be a string.
_STRINGS = frozenset({"@m", "@mt", "@l", "@x", "@sk"})


@functools.lru_cache(maxsize=1024)
def _string_props(names: tuple[str, ...]) -> frozenset[str] | None:
    """For an event with these property names and a valid ``@t``: the ones
    that must be strings, if that is all check_event asks of them; else None
    (another reified property, an unknown one, no ``@t``)."""
    reified = {n for n in names if n.startswith("@") and not n.startswith("@@")}
    if "@t" not in reified or not reified - {"@t"} <= _STRINGS:
        return None
    return frozenset(reified - {"@t"})


def _plainly_valid(event: Any) -> bool:
    """True only for events check_event passes: a quick look at the usual ones."""
    if type(event) is not dict:
        return False
    strings = _string_props(tuple(event))
    if strings is None or not valid_time(event["@t"]):
        return False
    return all(type(event[name]) is str for name in strings)


class Seq(Dialect):
    """Seq's ``/ingest/clef`` (and ``/api/events/raw?clef``), CLEF only.

    Options: ``api_keys`` (with any, an ``X-Seq-ApiKey`` header or
    ``?apiKey=`` from them is required, else 401), ``read_only_keys`` (keys
    without ingest permission: 403), ``refuse`` (substrings: an event line
    containing one is refused with 400 naming it, in every request, as Seq
    refuses the same bad event every time), ``event_body_limit`` (256 KB) and
    ``raw_payload_limit`` (10 MB), both answered with 413. Records are the
    events as sent (escaped names kept), in body order.

    Plays: ``bad_event`` (the next valid request is refused with 400 naming
    its first line containing ``match``, or its first line when no
    ``match`` is given; ``error`` the reason; no line matches: accepted as
    usual),
    ``too_large`` (413), ``unavailable`` (503), ``error`` (``status``,
    default 500, and ``error``, the text). Any other answer:
    :meth:`~logdrain.testing.Collector.script`.
    """

    name = "seq"
    path = "/ingest/clef"
    plays: ClassVar[dict[str, frozenset[str]]] = {
        "bad_event": frozenset({"match", "error"}),
        "too_large": frozenset(),
        "unavailable": frozenset(),
        "error": frozenset({"status", "error"}),
    }

    def __init__(
        self,
        *,
        api_keys: Collection[str] = (),
        read_only_keys: Collection[str] = (),
        refuse: Collection[str] = (),
        event_body_limit: int = EVENT_BODY_LIMIT,
        raw_payload_limit: int = RAW_PAYLOAD_LIMIT,
    ) -> None:
        self.api_keys = frozenset(api_keys)
        self.read_only_keys = frozenset(read_only_keys)
        self.refuse = tuple(refuse)
        self.event_body_limit = event_body_limit
        self.raw_payload_limit = raw_payload_limit
        self._lock = threading.Lock()
        self.refused: list[str] = []  # the Error text of every refused request, in order

    # ------------------------------------------------------------------ request level

    def check(self, request: Request) -> Answer | Batch:
        path = request.path.rstrip("/") or "/"
        query = parse_qs(request.query, keep_blank_values=True)
        if path not in PATHS:
            return seq_answer(404, f"No ingestion endpoint at {request.path}; use /ingest/clef.")
        if request.method != "POST":
            return seq_answer(405, f"The {request.method} method is not allowed here; POST.")
        denied = self._authenticate(request, query)
        if denied is not None:
            return denied
        message = Message()
        message["content-type"] = request.header("Content-Type") or ""
        content_type = message.get_content_type() if request.header("Content-Type") else ""
        clef = content_type == CLEF_TYPE or (path == "/api/events/raw" and "clef" in query)
        single = content_type == "application/json" and path == "/ingest/clef"
        if not clef and not single:
            return seq_answer(
                415, f"Unsupported content type {content_type or 'none'!r}; send {CLEF_TYPE}."
            )
        body = request.body
        if (request.header("Content-Encoding") or "").lower() == "gzip":
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError):
                return seq_answer(400, "The request body could not be decompressed.")
        if len(body) > self.raw_payload_limit:
            return seq_answer(
                413,
                f"The payload of {len(body)} bytes exceeds the raw ingestion payload limit "
                f"({self.raw_payload_limit} bytes).",
            )
        try:
            events, lines = self._parse(body, single)
        except _Bad as bad:
            return self._refused(bad.error, bad.status)
        return Batch(events, [dict(e) for e in events], len(events), {"lines": lines})

    def _authenticate(self, request: Request, query: dict[str, list[str]]) -> Answer | None:
        if not self.api_keys and not self.read_only_keys:
            return None
        key = request.header("X-Seq-ApiKey") or (query.get("apiKey") or [""])[0]
        if key in self.read_only_keys:
            return seq_answer(403, "The API key does not have permission to ingest events.")
        if key not in self.api_keys:
            what = "is not valid" if key else "is required to ingest events"
            return seq_answer(401, f"An API key {what}.")
        return None

    def _parse(
        self, body: bytes, single: bool
    ) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise _Bad("The request body is not valid UTF-8.") from None
        lines = [text] if single else text.replace("\r\n", "\n").split("\n")
        events: list[dict[str, Any]] = []
        kept: list[tuple[int, str]] = []
        limit = self.event_body_limit
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            # (UTF-8 takes at most 4 bytes a character)
            if len(line) * 4 > limit and len(line.encode("utf-8")) > limit:
                raise _Bad(
                    f"The event on line {number} exceeds the event body limit ({limit} bytes).",
                    413,
                )
            try:
                event = _loads(line)
            except ValueError as exc:
                raise _Bad(f"The event on line {number} is not valid JSON: {exc}.") from None
            if not _plainly_valid(event):
                check_event(event, number)
            for needle in self.refuse:
                if needle in line:
                    raise _Bad(f"The event on line {number} was rejected: {DEFAULT_BAD_EVENT}.")
            events.append(event)
            kept.append((number, line))
        if not events:
            raise _Bad("The request body contains no events.")
        return events, kept

    def _refused(self, error: str, status: int = 400) -> Answer:
        with self._lock:
            self.refused.append(error)
        return seq_answer(status, error)

    # ------------------------------------------------------------------ ingest

    def accept(self, request: Request, batch: Batch, play: Play | None) -> Answer:
        if play is not None:
            answer = self._play(play, batch)
            if answer is not None:
                return answer
        answer = json_answer(201, {"MinimumLevelAccepted": None})
        return Answer(answer.status, answer.body, answer.headers, batch.records)

    def _play(self, play: Play, batch: Batch) -> Answer | None:
        params = play.params
        if play.kind == "too_large":
            return seq_answer(413, "The payload exceeds the raw ingestion payload limit.")
        if play.kind == "unavailable":
            return seq_answer(503, "The Seq server is not ready to ingest events.")
        if play.kind == "error":
            return seq_answer(int(params.get("status", 500)), str(params.get("error", "Error.")))
        match = params.get("match")
        lines: list[tuple[int, str]] = batch.extra["lines"]
        found = next((n for n, line in lines if match is None or str(match) in line), None)
        if found is None:
            return None
        why = str(params.get("error", DEFAULT_BAD_EVENT))
        return self._refused(f"The event on line {found} was rejected: {why}.")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_no_constant)
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


def _loads(line: str) -> Any:
    """``json.loads(line, parse_constant=_no_constant)``: the same value or error,
    cheaper for the usual line (``{`` first, only whitespace after the value:
    all json.loads would do is run this scanner)."""
    if line[:1] == "{":
        try:
            value, end = _SCAN(line, 0)
        except (ValueError, StopIteration, RecursionError):
            pass  # json.loads says what is wrong
        else:
            if end == len(line) or not line[end:].strip(" \t\n\r"):
                return value
    elif line.startswith("\ufeff"):
        return json.loads(line, parse_constant=_no_constant)  # its BOM error
    return _DECODER.decode(line)
