"""What a collector preset is: data plus pure functions.

A preset says how one collector wants a batch (record mapping, content type,
body framing) and how to read its answer (the classifier); the transport and
the senders apply what it says and never name a collector. A preset imports
nothing of logdrain's pipeline, nor requests or tenacity.

The flow a preset plugs into, on the sender threads::

    document (generic, shaped) -> record(doc, ctx) -> JSON part -> frame(parts)
    -> POST -> classify(answer) -> verdict -> ledger
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import chain, islice
from typing import Any, Literal, NamedTuple

#: Statuses worth retrying for any HTTP collector (RFC 9110 and common practice).
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

RecordOutcome = Literal["delivered", "retry", "rejected"]


class Answer(NamedTuple):
    """What a verdict is made from: the status, the headers and the start of
    the body (``complete`` when the whole body fit and arrived), plus what
    was sent: ``sent`` records, on the ``attempt``-th try of this body
    (1 for the first; a retry of part of a batch counts on)."""

    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes
    complete: bool
    sent: int = 1
    attempt: int = 1


@dataclass(frozen=True)
class Verdict:
    """A classifier's judgement of one answer.

    ``delivered``: every record arrived. ``retry``: send the batch again
    (after ``retry_after`` seconds at least, when given). ``rejected``: the
    collector refused it for good. ``split``: the body is too large, or one
    of its records spoils it (Seq's 400): send it again in halves, each with
    its own batch id, down to single records; a single record is rejected
    with ``reason``. ``partial``: either ``records`` gives one outcome per
    record in body order (Elasticsearch's items), or ``rejected`` says how
    many were refused without saying which (OTLP's ``partial_success``),
    the rest being delivered."""

    outcome: Literal["delivered", "retry", "rejected", "split", "partial"]
    reason: str = ""
    retry_after: float | None = None
    records: tuple[RecordOutcome, ...] = ()
    rejected: int = 0


DELIVERED = Verdict("delivered")


def status_verdict(answer: Answer) -> Verdict:
    """The rule of a collector that says everything with its status: 2xx
    delivered, 413 split, :data:`TRANSIENT_STATUSES` retried, anything else
    rejected."""
    status = answer.status
    if 200 <= status < 300:
        return DELIVERED
    if status == 413:
        return Verdict("split", answer.reason or "payload too large")
    if status in TRANSIENT_STATUSES:
        return Verdict("retry", answer.reason or "transient")
    return Verdict("rejected", answer.reason or "rejected")


class Keyed(NamedTuple):
    """A mapped record that carries framing data beside its JSON document:
    ``key`` is bytes the preset's ``frame`` uses as it likes (the label set
    of a Loki stream, an Elasticsearch action line), ``value`` the document
    the encoder turns into JSON. Parts reach ``frame`` as ``(key, json)``."""

    key: bytes
    value: Any


class Unsendable(Exception):
    """Raised by a preset's ``record`` for a record the collector would take
    but silently lose (GELF to Graylog): the record is counted ``rejected``
    with this reason and never sent."""


def _no_json(obj: Any) -> str:
    import json  # noqa: PLC0415 - only for contexts built by hand (tests)

    return json.dumps(obj, default=repr, separators=(",", ":"), ensure_ascii=False)


def _no_dumps(obj: Any) -> bytes:
    return _no_json(obj).encode("utf-8", "surrogatepass")


class Context(NamedTuple):
    """What a preset's ``record`` function may use besides the document:
    its parsed ``options``; a ``record_id`` unique to this record and stable
    across retries and splits (set when the preset says ``uses_record_id``:
    Elasticsearch's ``_id``); the record's ``created`` time (epoch seconds)
    and ``levelno`` (None when the record has no level); ``json``, the
    encoder's own JSON text of any value (a Loki line), which never raises;
    and ``dumps``, the same as UTF-8 bytes, for a preset that encodes its
    records itself (a mapping may return such bytes, or a :class:`Keyed`
    holding them, as the record's JSON: the encoder takes them as they are);
    ``timestamp``, ``rfc3339(created)`` when the mapper has it already (the
    generic document's own ``timestamp``), else "" (then work it out)."""

    options: Mapping[str, Any]
    record_id: str = ""
    created: float = 0.0
    levelno: int | None = None
    json: Callable[[Any], str] = _no_json
    dumps: Callable[[Any], bytes] = _no_dumps
    timestamp: str = ""


#: A ``bind_stdlib`` mapping: (attrs, message, extras, record_id) -> part or None.
StdlibMapping = Callable[[Mapping[str, Any], str, list[str], str], Any]

#: A ``bind_batch`` mapping: (documents, created, levelnos, record ids or
#: None) -> the records, or None.
BatchMapping = Callable[
    [list[dict[str, Any]], list[float], list[Any], list[str] | None], list[Any] | None
]

#: Encodes a list of values in one call: (values, escaped) -> each value's
#: JSON as ``Context.dumps`` writes it (escaped: as a JSON string's contents),
#: or None when it cannot be sure (then the records are mapped one at a time).
ListEncoder = Callable[[list[Any], bool], list[bytes] | None]


def one_line(what: str) -> Callable[[Any], str]:
    """A parser for a plain one-line string option (``source``, ``index``...)."""

    def parse(raw: Any) -> str:
        if not isinstance(raw, str) or not raw.strip():
            raise ValueError(f"{what} must be a non-empty string, got {raw!r}")
        text = raw.strip()
        if any(ord(ch) < 32 for ch in text):
            raise ValueError(f"{what} must be one line without control characters")
        return text

    return parse


def as_text(value: Any, ctx: Context) -> str:
    """``value`` as text: a string as it is (a str subclass as a plain str),
    anything else as the encoder's JSON."""
    if type(value) is str:
        return value
    if isinstance(value, str):
        return str.__str__(value)
    return ctx.json(value)


#: Epoch seconds of 10000-01-01: below it (and from 0 on) logdrain's own
#: ``timestamp`` field of a record is ``rfc3339()`` of the record's time.
RFC3339_LAST_SECOND = 253402300800.0


def rfc3339(created: float) -> str:
    """Epoch seconds as RFC 3339 UTC with microseconds
    (``2024-05-01T12:00:00.123456Z``), cut (not rounded) to the microsecond
    as logdrain's own ``timestamp`` field is; the date part is cached per
    second. A time that is no time (NaN, out of range) becomes now."""
    try:
        sec = math.floor(created)
        cached = _SECOND[0]  # one tuple, swapped whole: safe with several senders
        if cached[0] != sec:
            text = datetime.fromtimestamp(sec, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
            cached = _SECOND[0] = (sec, text)
    except (TypeError, ValueError, OverflowError, OSError):
        return rfc3339(time.time())
    return "%s.%06dZ" % (cached[1], (created - sec) * 1e6)  # noqa: UP031 - as encode.py


_SECOND: list[tuple[int, str]] = [(-1, "")]


def enclosed(head: bytes, separator: bytes, parts: list[bytes], tail: bytes) -> bytes:
    """``head + separator.join(parts) + tail``, copying the parts once: each
    ``+`` of a body copies all of it again (megabytes a request); here only
    the first and the last part are copied twice."""
    if not parts:
        return head + tail
    if len(parts) == 1:
        return head + parts[0] + tail
    inner = islice(parts, 1, len(parts) - 1)
    return separator.join(chain((head + parts[0],), inner, (parts[-1] + tail,)))


def bearer(token: str) -> dict[str, str]:
    """The usual token scheme: ``Authorization: Bearer <token>``."""
    return {"Authorization": f"Bearer {token}"}


def no_headers(options: Mapping[str, Any]) -> dict[str, str]:
    return {}


def no_environment(environ: Mapping[str, str], options: Mapping[str, Any]) -> dict[str, Any]:
    return {}


def no_url(options: Mapping[str, Any]) -> str | None:
    return None


@dataclass(frozen=True)
class Preset:
    """One collector's dialect.

    ``record`` maps one shaped generic document (plus a :class:`Context`) to
    the collector's own object, a :class:`Keyed` one, or raises
    :class:`Unsendable`; None sends the document as it is. ``frame`` joins
    the encoded parts of one request into its body (bytes, or ``(key,
    json)`` pairs for :class:`Keyed` records, always in the order given) and
    ``framed_size`` tells, from the parts' total size (keys included) and
    count, how large that body will be at most (so batches are cut below
    ``batch_bytes``). ``one_per_request``: the collector takes one record
    per request. ``json_array``: the (mapped, unkeyed) records are joined by
    commas in the body (a JSON array, or one inside an object: Kafka REST
    v2), which lets the encoder build it in chunks (the fast path).
    ``keyed_array``: likewise for :class:`Keyed` records: ``frame`` takes a
    ``(key, json)`` part whose JSON is several records of that key joined by
    commas (the log records of one OTLP scope, the entries of one Loki
    stream), so runs of records with one key are encoded in chunks; such a
    preset names no single record in a verdict (no ``records`` outcomes).
    ``lines``: each record is that many lines of the body (1: one event a
    line, NDJSON; 2: a :class:`Keyed` record's key and value, Elasticsearch's
    action line and document), and ``frame`` joins its parts with newlines
    (a bytes part as it is). JSON holds no raw newline, so the senders may
    hand ``frame`` a chunk of several records' lines as one bytes part, and
    cut a chunk at its newlines where a split or a verdict names single
    records (the pieces a record at a time make: bytes, or ``(key, json)``).
    ``defaults``: settings this collector wants unless the user says
    otherwise (its limits: batch_size, batch_bytes, max_record_bytes).

    ``path`` (a string, or a function of the options: Kafka REST's topic)
    is appended to a URL that has none (``https://loki:3100``);
    ``url`` derives the whole URL from the options when none is given
    (Datadog's ``site``). ``options`` are the preset's own settings, plain
    keywords from code, dictConfig or ``LOGDRAIN_<NAME>``: each name maps to
    a parser taking the raw value and returning the parsed one, or raising
    ValueError with what is wrong. ``environment`` reads the ecosystem's own
    variables (``OTEL_*``, ``DD_*``) into settings and options that apply
    below explicit ones and ``LOGDRAIN_*`` (its keys: option names, or
    ``url``, ``token``, ``headers``). ``headers`` turns the parsed options
    into fixed request headers (a tenant header, say); ``auth`` turns a
    token into the header that carries it, in the collector's own scheme.
    ``min_interval``: seconds between two requests of one drain at least
    (Slack's rate limit); ``levelno`` below ``min_level`` never reach the
    preset (``min_level`` the option, when the preset takes it).
    ``response_cap``: bytes of an answer's body read at most (an
    Elasticsearch bulk answer names every item).
    ``requires_token``: the collector refuses every request without one
    (Splunk HEC, Datadog): its absence is a ConfigError at construction.
    ``secret_url``: the whole URL is a credential (a Slack webhook): it is
    redacted everywhere and never shown.

    ``bind`` (optional) returns ``record`` made once for one Drain's parsed
    options: what depends on the options alone (Loki's static labels, HEC's
    envelope fields) is worked out once, not per record. The bound function
    must map exactly as ``record`` does with those options; a preset with a
    ``bind`` usually defines ``record`` as ``bind(ctx.options)(doc, ctx)``.

    ``bind_stdlib`` (optional): given the parsed options and a Context
    carrying the encoder's ``json`` and ``dumps``, returns a mapping of a
    plain stdlib record straight from its attributes, skipping the generic
    document (the costliest step of a rich mapping such as OTLP's). It is
    called as ``(attrs, message, extras, record_id)``: the LogRecord's
    attribute snapshot, its formatted message, the keys of its extra fields
    and its record id (as ``Context.record_id``), for a record whose generic
    document is exactly ``timestamp``, ``level``
    (``levelname``), ``logger`` (``name``), ``message`` and those extras as
    they are (no exception or stack text, nothing masked, nothing included,
    nothing renamed). It must return what the record mapping makes of that
    document, or None to leave the record to it.

    ``bind_batch`` (optional): given the parsed options, a Context carrying
    ``json`` and ``dumps``, and a :data:`ListEncoder` (orjson's: the hook is
    not used without orjson), returns a mapping of a run of plain stdlib
    records at once (the C-level loops a record at a time cannot use), or
    None for options it does not cover. It is called as ``(documents,
    created, levelnos, record_ids)``: the records' generic documents as the
    encoder builds them (nothing renamed, shaped or included; ``timestamp``
    is ``rfc3339(created)``), their times (floats from 0 to
    :data:`RFC3339_LAST_SECOND`), levels and ids (None unless
    ``uses_record_id``); the documents are the mapper's own, which the
    mapping may change and return. It must return, in order, exactly what
    the record mapping makes of each, or None to leave them to it.

    ``naming``: the convention the collector's own field names follow, used
    for the record attributes ``include`` adds and for the trace keys unless
    the user picks one (``plain``, ``otel``, ``ecs``, ``datadog``, ``gelf``:
    see docs/context.md). ``bind_included`` (optional): as ``bind``, for a
    Drain whose documents carry included attributes, given their document
    keys (HEC copies them into its indexed ``fields``); used only when
    something is included, so the usual mapping is not touched."""

    name: str
    content_type: str
    frame: Callable[[list[Any]], bytes]
    framed_size: Callable[[int, int], int]
    classify: Callable[[Answer], Verdict] = status_verdict
    record: Callable[[dict[str, Any], Context], Any] | None = None
    one_per_request: bool = False
    json_array: bool = False
    keyed_array: bool = False
    lines: int = 0
    defaults: Mapping[str, Any] = field(default_factory=dict)
    path: str | Callable[[Mapping[str, Any]], str] = ""
    url: Callable[[Mapping[str, Any]], str | None] = no_url
    options: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    environment: Callable[[Mapping[str, str], Mapping[str, Any]], Mapping[str, Any]] = (
        no_environment
    )
    headers: Callable[[Mapping[str, Any]], Mapping[str, str]] = no_headers
    auth: Callable[[str], Mapping[str, str]] = bearer
    min_interval: float = 0.0
    uses_record_id: bool = False
    secret_url: bool = False
    response_cap: int = 64 * 1024
    requires_token: bool = False
    bind: Callable[[Mapping[str, Any]], Callable[[dict[str, Any], Context], Any]] | None = None
    bind_stdlib: Callable[[Mapping[str, Any], Context], StdlibMapping] | None = None
    bind_batch: Callable[[Mapping[str, Any], Context, ListEncoder], BatchMapping | None] | None = (
        None
    )
    naming: str = "plain"
    bind_included: (
        Callable[[Mapping[str, Any], tuple[str, ...]], Callable[[dict[str, Any], Context], Any]]
        | None
    ) = None

    def __post_init__(self) -> None:
        if self.lines not in (0, 1, 2):
            raise ValueError(f"preset {self.name!r}: lines must be 0, 1 or 2, got {self.lines!r}")

    @property
    def maps(self) -> bool:
        """True when records go through a mapping (``record`` or ``bind``)."""
        return self.record is not None or self.bind is not None

    def record_for(
        self, options: Mapping[str, Any], included: tuple[str, ...] = ()
    ) -> Callable[[dict[str, Any], Context], Any]:
        """The record mapping for a Drain with these parsed options (its
        ``bind_included`` when ``included`` names document keys and it has
        one, else its ``bind``, else ``record``, else the document as it is)."""
        if included and self.bind_included is not None:
            return self.bind_included(options, included)
        if self.bind is not None:
            return self.bind(options)
        return self.record or _as_is


def _as_is(doc: dict[str, Any], ctx: Context) -> Any:
    return doc
