"""What a collector preset is: data plus pure functions.

A preset says how one collector wants a batch (content type, body framing)
and how to read its answer (the classifier); the transport and the senders
apply what it says and never name a collector. A preset imports nothing of
logdrain's pipeline, nor requests or tenacity.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

#: Statuses worth retrying for any HTTP collector (RFC 9110 and common practice).
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class Answer(NamedTuple):
    """What a verdict is made from: the status, the headers and the start of
    the body (``complete`` when the whole body fit and arrived)."""

    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes
    complete: bool


@dataclass(frozen=True)
class Verdict:
    """A classifier's judgement of one answer about a whole batch.

    ``delivered``: every record arrived. ``retry``: send the batch again
    (after ``retry_after`` seconds at least, when given). ``rejected``: the
    collector refused it for good."""

    outcome: Literal["delivered", "retry", "rejected"]
    reason: str = ""
    retry_after: float | None = None


DELIVERED = Verdict("delivered")


def status_verdict(answer: Answer) -> Verdict:
    """The rule of a collector that says everything with its status: 2xx
    delivered, :data:`TRANSIENT_STATUSES` retried, anything else rejected."""
    status = answer.status
    if 200 <= status < 300:
        return DELIVERED
    if status in TRANSIENT_STATUSES:
        return Verdict("retry", answer.reason or "transient")
    return Verdict("rejected", answer.reason or "rejected")


def bearer(token: str) -> dict[str, str]:
    """The usual token scheme: ``Authorization: Bearer <token>``."""
    return {"Authorization": f"Bearer {token}"}


def no_headers(options: Mapping[str, Any]) -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class Preset:
    """One collector's dialect.

    ``frame`` joins the encoded records of one request into its body and
    ``framed_size`` tells, from the records' total size and count, how large
    that body will be (so batches are cut below ``batch_bytes``).
    ``one_per_request``: the collector takes one record per request.
    ``json_array``: the body is a JSON array of the records, which lets the
    encoder build it in chunks (the fast path). ``defaults``: settings this
    collector wants unless the user says otherwise.

    ``path`` is appended to a URL that has none (``https://loki:3100``).
    ``options`` are the preset's own settings, plain keywords from code,
    dictConfig or ``LOGDRAIN_<NAME>``: each name maps to a parser taking the
    raw value and returning the parsed one, or raising ValueError with what
    is wrong. ``headers`` turns the parsed options into fixed request
    headers (a tenant header, say); ``auth`` turns a token into the header
    that carries it, in the collector's own scheme."""

    name: str
    content_type: str
    frame: Callable[[list[bytes]], bytes]
    framed_size: Callable[[int, int], int]
    classify: Callable[[Answer], Verdict] = status_verdict
    one_per_request: bool = False
    json_array: bool = False
    defaults: Mapping[str, Any] = field(default_factory=dict)
    path: str = ""
    options: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    headers: Callable[[Mapping[str, Any]], Mapping[str, str]] = no_headers
    auth: Callable[[str], Mapping[str, str]] = bearer
