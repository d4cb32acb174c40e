"""Datadog's log intake (``preset="datadog"``).

``POST https://http-intake.logs.<site>/api/v2/logs`` with ``DD-API-KEY:
<key>`` (the ``token``); the body is a JSON array of log objects. Each is
the generic document's fields as attributes plus Datadog's reserved ones:
``ddsource`` (option ``source``, default ``python``), ``ddtags`` (option
``tags``), ``hostname`` (option ``host``, default this machine's name, read
when the Drain is built), ``service`` (option), ``status`` (from the
record's level: ``debug`` ... ``critical``) and ``timestamp`` (epoch
milliseconds, from the record's creation time). A record field with one of
these names is replaced where the preset sets it (``rename=`` keeps it
under another name).

``DD_API_KEY``, ``DD_SITE``, ``DD_SERVICE``, ``DD_ENV``, ``DD_VERSION`` and
``DD_TAGS`` apply below explicit settings and ``LOGDRAIN_*``: the key is the
token, the site picks the URL, ``env:``/``version:`` and ``DD_TAGS`` make the
tags.

Datadog answers 202 when it took the batch; 400 (the payload) and 401/403
(the API key) are permanent, 408, 429 and 5xx are retried (``Retry-After``
honoured), 413 splits. Limits: 1000 logs, 5 MB uncompressed per request,
1 MB per log (Datadog truncates a larger one): the defaults stay below them.

Sources: https://docs.datadoghq.com/api/latest/logs/#send-logs (endpoint
per site, limits, status codes, ``HTTPLogItem``),
https://docs.datadoghq.com/logs/log_configuration/processors/log_date_remapper/
(``timestamp`` as epoch milliseconds), https://docs.datadoghq.com/getting_started/tagging/
(``key:value`` tags), https://docs.datadoghq.com/getting_started/tagging/unified_service_tagging/
(``DD_ENV``/``DD_SERVICE``/``DD_VERSION``); the Datadog Agent's
``pkg/logs/client/http/destination.go`` (400/401/403/413 dropped, other
errors retried), Vector's ``sinks/datadog`` (5 MB, 1000 events, retries)
and Fluent Bit's ``out_datadog`` (``timestamp`` in milliseconds).
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Mapping
from itertools import repeat
from operator import mul
from typing import Any

from .base import (
    DELIVERED,
    Answer,
    BatchMapping,
    Context,
    ListEncoder,
    Preset,
    Verdict,
    enclosed,
    one_line,
    status_verdict,
)

PATH = "/api/v2/logs"
DEFAULT_SITE = "datadoghq.com"

#: Datadog's limits per request (decimal megabytes, the stricter reading), less a margin.
MAX_ENTRIES = 1000
BATCH_BYTES = 4_750_000  # 5 MB per payload, uncompressed
MAX_RECORD_BYTES = 950_000  # 1 MB per log
#: Datadog refuses a log dated more than 18 h in the past; logdrain stops
#: sending one 10 minutes earlier (room for retries and clock skew).
MAX_AGE = 18 * 3600 - 600

#: Datadog's status values; a level name among them is kept as it is.
_STATUSES = frozenset(
    {"emergency", "alert", "critical", "error", "warning", "notice", "info", "debug", "ok"}
)
_LEVEL_ALIASES = {"warn": "warning", "fatal": "critical", "exception": "error", "trace": "debug"}
_SITE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")
_TAG_SEPARATORS = re.compile(r"[,\s]+")

# -- options --------------------------------------------------------------------


def _site(raw: Any) -> str:
    """``datadoghq.com``, ``us3.datadoghq.com``, ``datadoghq.eu``, ``ddog-gov.com``..."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"site must be a Datadog site such as 'datadoghq.eu', got {raw!r}")
    site = raw.strip().lower().rstrip("/")
    if site.startswith("app."):
        raise ValueError(
            f"{raw!r} is the web app's address; the site is {site.removeprefix('app.')!r}"
        )
    if not _SITE.match(site):
        raise ValueError(
            f"site must be a Datadog site such as 'datadoghq.eu' (no scheme, no path), got {raw!r}"
        )
    return site


def _tags(raw: Any) -> str:
    """``{"env": "prod"}``, ``["env:prod", "team:a"]`` or ``"env:prod,team:a"``
    (commas or spaces, as ``DD_TAGS``) -> ``"env:prod,team:a"``."""
    if isinstance(raw, str):
        items = [item for item in _TAG_SEPARATORS.split(raw) if item]
    elif isinstance(raw, Mapping):
        items = []
        for key, value in raw.items():
            if not isinstance(key, str) or not key.strip():
                raise ValueError(f"tags: a tag name must be a non-empty string: {key!r}")
            if value is None or value == "":
                items.append(key.strip())
            elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
                items.append(f"{key.strip()}:{str(value).strip()}")
            else:
                raise ValueError(f"tags: the value of {key!r} must be a string or a number")
    elif isinstance(raw, (list, tuple)):
        items = []
        for item in raw:
            if not isinstance(item, str):
                raise ValueError(f"tags: each tag must be a string such as 'env:prod': {item!r}")
            items.append(item.strip())
    else:
        raise ValueError(f'tags must be a mapping, a list or "k:v,k2:v2", got {type(raw).__name__}')
    for tag in items:
        if not tag or "," in tag or any(ch.isspace() or ord(ch) < 32 for ch in tag):
            raise ValueError(f"tags: {tag!r} is not a tag (no commas or spaces inside one)")
        if len(tag) > 200:
            raise ValueError(f"tags: {tag[:40]!r}... is longer than Datadog's 200 characters")
    return ",".join(dict.fromkeys(items))


OPTIONS = {
    "site": _site,
    "source": one_line("source"),
    "service": one_line("service"),
    "host": one_line("host"),
    "tags": _tags,
}


def _environment(environ: Mapping[str, str], options: Mapping[str, Any]) -> dict[str, Any]:
    """Datadog's own variables, below explicit settings; the default host."""
    found: dict[str, Any] = {}
    key = environ.get("DD_API_KEY", "").strip()
    if key:
        found["token"] = key
    for variable, option in (("DD_SITE", "site"), ("DD_SERVICE", "service")):
        value = environ.get(variable, "").strip()
        if value and option not in options:
            found[option] = value
    if "tags" not in options:
        tags = [tag for tag in _TAG_SEPARATORS.split(environ.get("DD_TAGS", "")) if tag]
        for variable, name in (("DD_ENV", "env"), ("DD_VERSION", "version")):
            value = environ.get(variable, "").strip()
            if value and not any(tag.startswith(f"{name}:") for tag in tags):
                tags.append(f"{name}:{value}")
        if tags:
            found["tags"] = ",".join(tags)
    if "host" not in options:
        name = socket.gethostname().strip()
        if name:
            found["host"] = name
    return found


def _url(options: Mapping[str, Any]) -> str:
    return f"https://http-intake.logs.{options.get('site', DEFAULT_SITE)}{PATH}"


def _auth(token: str) -> dict[str, str]:
    return {"DD-API-KEY": token}


# -- records and bodies ---------------------------------------------------------


def _status(levelno: int | None, level: Any) -> str:
    if levelno is None:
        if isinstance(level, str):
            name = level.strip().lower()
            name = _LEVEL_ALIASES.get(name, name)
            if name in _STATUSES:
                return name
        return "info"
    if levelno >= 50:
        return "critical"
    if levelno >= 40:
        return "error"
    if levelno >= 30:
        return "warning"
    if levelno >= 20:
        return "info"
    return "debug"


def _record(doc: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """One Datadog log object: the document's fields, then the reserved attributes."""
    options = ctx.options
    log = dict(doc)
    message = log.get("message")
    if message is not None and not isinstance(message, str):
        log["message"] = ctx.json(message)  # HTTPLogItem.message is a string
    log["ddsource"] = options.get("source", "python")
    tags = options.get("tags")
    if tags:
        log["ddtags"] = tags
    if options.get("host"):
        log["hostname"] = options["host"]
    if options.get("service"):
        log["service"] = options["service"]
    log["status"] = _status(ctx.levelno, doc.get("level"))
    log["timestamp"] = round(ctx.created * 1000)
    return log


def _bind_batch(options: Mapping[str, Any], ctx: Context, encode_list: ListEncoder) -> BatchMapping:
    """:func:`_record` of a run of plain stdlib records at once
    (``Preset.bind_batch``): the reserved attributes set on the mapper's
    own documents (their keys where :func:`_record`'s copy has them), the
    status of a level number worked out once."""
    fixed = {"ddsource": options.get("source", "python")}
    for key, name in (("tags", "ddtags"), ("host", "hostname"), ("service", "service")):
        if options.get(key):
            fixed[name] = options[key]
    statuses = {n: _status(n, None) for n in range(0, 60)}  # the usual level numbers

    def mapped(
        docs: list[dict[str, Any]],
        created: list[float],
        levelnos: list[Any],
        record_ids: list[str] | None,
    ) -> list[Any] | None:
        found = list(map(statuses.get, levelnos))
        if not all(found) or not _INTS.issuperset(map(type, levelnos)):
            return None  # a level number beyond the usual (or not an int): one at a time
        millis = map(round, map(mul, created, repeat(1000)))
        for doc, status, ms in zip(docs, found, millis, strict=False):
            doc.update(fixed)
            doc["status"] = status
            doc["timestamp"] = ms
        return docs

    return mapped


_INTS = frozenset({int})


def _array(parts: list[bytes]) -> bytes:
    return enclosed(b"[", b",", parts, b"]")


def _array_size(total: int, count: int) -> int:
    return total + count + 1  # "[", "]" and count - 1 commas


# -- answers --------------------------------------------------------------------


def _detail(body: bytes) -> str:
    """Datadog's words: ``{"errors": [{"detail": ...}]}``, ``{"errors": ["..."]}``
    or ``{"detail": ...}``; empty when the body says nothing."""
    try:
        reply = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(reply, dict):
        return ""
    errors = reply.get("errors")
    if isinstance(errors, list) and errors:
        first = errors[0]
        if isinstance(first, dict):
            text = first.get("detail") or first.get("title")
            return str(text) if text else ""
        return str(first)
    detail = reply.get("detail")
    return str(detail) if detail else ""


def classify(answer: Answer) -> Verdict:
    status = answer.status
    if 200 <= status < 300:
        return DELIVERED
    detail = _detail(answer.body) if answer.complete else ""
    said = f": {detail}" if detail else ""
    if status == 413:
        return Verdict("split", f"Datadog: payload too large{said}")
    if status in (401, 403):
        return Verdict(
            "rejected", f"Datadog refused the API key{said} (check DD-API-KEY and the site)"
        )
    if status == 400:
        return Verdict("rejected", f"Datadog: bad request{said}")
    if status in (408, 429) or status >= 500:
        return Verdict("retry", f"Datadog: {answer.reason or 'try again later'}{said}")
    return status_verdict(answer)


PRESET = Preset(
    "datadog",
    "application/json",
    _array,
    _array_size,
    classify=classify,
    record=_record,
    bind_batch=_bind_batch,
    json_array=True,
    defaults={
        "batch_size": MAX_ENTRIES,
        "batch_bytes": BATCH_BYTES,
        "max_record_bytes": MAX_RECORD_BYTES,
        "max_age": MAX_AGE,
    },
    path=PATH,
    url=_url,
    options=OPTIONS,
    environment=_environment,
    auth=_auth,
    requires_token=True,
    naming="datadog",  # dd.trace_id / dd.span_id, logger.thread_name, ...
)
