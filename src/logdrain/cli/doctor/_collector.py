"""Steps 7 to 9: a harmless probe where the preset has one, one marked test
record through a real :class:`~logdrain.Drain` (its answer judged by the
preset's own rules), and the clock against the server's ``Date``."""

from __future__ import annotations

import email.utils
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from ...config import Settings
from ...drain import Drain
from ...errors import DeliveryError, LogdrainError
from ...presets import Answer
from ...transport import Transport
from ._report import Check

#: Preset -> (path of a harmless GET, what it shows).
PROBES: dict[str, tuple[str, str]] = {
    "loki": ("/ready", "Loki ready"),
    "splunk_hec": ("/services/collector/health", "HEC health"),
    "elasticsearch": ("/", "Elasticsearch root"),
    "opensearch": ("/", "OpenSearch root"),
    "seq": ("/api", "Seq API root"),
}
#: Collectors that refuse records whose timestamps are too old or too new.
CLOCK_SENSITIVE = frozenset({"loki", "datadog", "splunk_hec", "otlp", "seq"})
CLOCK_WARN = 300.0
EXCERPT = 200


@dataclass
class Seen:
    """What the collector answered, for the later steps."""

    date: str | None = None
    answers: list[Answer] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)


def _excerpt(body: bytes) -> str:
    return " ".join(body[: EXCERPT * 4].decode("utf-8", "replace").split())[:EXCERPT]


def status_fix(status: int, s: Settings) -> str:
    preset = s.preset.name
    if status == 401:
        return (
            "the collector refused the credentials: check the token (--token-file, "
            f"--token-env, LOGDRAIN_TOKEN) and that preset {preset!r} matches the collector"
        )
    if status == 403:
        return "the token is valid but may not write here: check its permissions, index or tenant"
    if status == 404:
        path = s.preset.path if isinstance(s.preset.path, str) else ""
        where = f"this preset's path is {path!r}" if path else "url= must be the full ingest URL"
        return (
            f"check the path in url= ({where}) and the record's shape for this collector "
            "(preset=, fields=, rename=, envelope=, record_key=, record_as_string=)"
        )
    if status == 407:
        return "the proxy wants credentials: proxy='http://USER:PASSWORD@host:port'"
    if status == 413:
        return (
            "even one small record is too large for the collector (or a proxy in front): "
            "raise its body limit (nginx client_max_body_size, Splunk max_content_length)"
        )
    if status in (400, 415, 422):
        return f"the collector refused the body: is preset={preset!r} its dialect? see the excerpt"
    if status == 429:
        return "the collector is rate limiting: try again later, or lower the sending rate"
    if status >= 500:
        return "the collector is failing or overloaded: try again later, or ask its owner"
    return "see the collector's answer above"


def _base(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def check_probe(s: Settings, seen: Seen) -> Check:
    found = PROBES.get(s.preset.name)
    if found is None:
        return Check(
            "probe",
            "SKIP",
            f"preset {s.preset.name}: no harmless probe; the test record checks auth",
        )
    path, what = found
    transport = Transport(s, content_type="application/json")
    try:
        headers = dict(s.preset.auth(s.token)) if s.token else {}
        response = transport.session.get(
            _base(s.url, path),
            headers=headers,
            timeout=(s.connect_timeout, s.read_timeout),
            allow_redirects=False,
        )
        body = response.content[: 64 * 1024]
    except requests.RequestException as exc:
        return Check(
            "probe", "FAIL", f"{what} ({path}): {type(exc).__name__}", "see the steps above"
        )
    finally:
        transport.close()
    seen.date = response.headers.get("Date") or seen.date
    status = response.status_code
    evidence = f"{what} GET {path}: HTTP {status}"
    if 200 <= status < 300:
        return Check("probe", "PASS", evidence)
    excerpt = _excerpt(body)
    if excerpt:
        evidence += f": {excerpt!r}"
    return Check(
        "probe", "FAIL" if status in (401, 403, 407) else "WARN", evidence, status_fix(status, s)
    )


def _watch(drain: Drain, seen: Seen) -> None:
    """Note every answer and error of the drain's requests (the verdict
    itself stays the preset's, applied by the real pipeline)."""

    def note(what: Any) -> None:
        if isinstance(what, BaseException):
            seen.errors.append(what)
        else:
            seen.answers.append(what)
            seen.date = what.headers.get("Date") or seen.date

    drain.observe(note)


def check_record(explicit: dict[str, Any], s: Settings, seen: Seen) -> Check:
    marker = uuid.uuid4().hex[:12]
    options = {
        **explicit,
        "name": "logdrain-doctor",
        "max_attempts": 1,  # one clear answer, not a minute of retries
        "capture_crashes": False,
        "flush_on_signals": None,
    }
    try:
        drain = Drain(**options)
    except LogdrainError as exc:
        return Check(
            "record", "FAIL", f"the Drain refused the settings: {exc}", "see step settings"
        )
    _watch(drain, seen)
    level = logging.getLevelName(max(drain.min_level, logging.INFO))
    record = {
        "message": f"logdrain doctor test record {marker}",
        "level": level,
        "logger": "logdrain.doctor",
        "logdrain_doctor": marker,
    }
    wait = s.connect_timeout + s.request_timeout + 5.0
    try:
        drain.submit(record)
        drain.flush(timeout=wait)
    finally:
        drain.close(timeout=5.0)
    stats = drain.stats()
    answer = seen.answers[-1] if seen.answers else None
    if stats.delivered == 1:
        status = answer.status if answer is not None else "?"
        return Check("record", "PASS", f"delivered (HTTP {status}): message {record['message']!r}")
    if answer is not None and not 200 <= answer.status < 300:
        excerpt = _excerpt(answer.body)
        verdict = s.preset.classify(answer)
        text = (
            f"refused: HTTP {answer.status} ({verdict.outcome}: {verdict.reason or answer.reason})"
        )
        if excerpt:
            text += f": {excerpt!r}"
        return Check("record", "FAIL", text, status_fix(answer.status, s))
    error = seen.errors[-1] if seen.errors else None
    if isinstance(error, DeliveryError):
        reason = error.reason
        if "timed out" in reason.lower() or "request_timeout" in reason:
            return Check(
                "record",
                "FAIL",
                f"no answer within read_timeout ({s.read_timeout:g} s): {reason}",
                "the collector took the request and did not answer: is it overloaded, or is "
                "something in between holding it? raise read_timeout= if it is only slow",
            )
        return Check("record", "FAIL", f"not delivered: {error.describe()}", _error_fix(reason))
    return Check(
        "record",
        "FAIL",
        f"not delivered within {wait:g} s (stats: {stats.as_dict()})",
        "see the steps above",
    )


def _error_fix(reason: str) -> str:
    if "TLS" in reason:
        return "see the tls step"
    if "proxy" in reason:
        return "check proxy= (see the connect step)"
    return "see the steps above"


def check_clock(s: Settings, seen: Seen) -> Check:
    if not seen.date:
        return Check("clock", "SKIP", "the collector sent no Date header")
    try:
        server = email.utils.parsedate_to_datetime(seen.date).timestamp()
    except (TypeError, ValueError):
        return Check("clock", "SKIP", f"unreadable Date header {seen.date!r}")
    skew = time.time() - server
    evidence = (
        f"this clock is {abs(skew):.0f} s {'ahead of' if skew >= 0 else 'behind'} the server's Date"
    )
    if abs(skew) > CLOCK_WARN and s.preset.name in CLOCK_SENSITIVE:
        return Check(
            "clock",
            "WARN",
            evidence + f"; {s.preset.name} refuses records too old or too new",
            "synchronise this machine's clock (NTP: timedatectl set-ntp true, w32tm /resync)",
        )
    return Check("clock", "PASS", evidence)
