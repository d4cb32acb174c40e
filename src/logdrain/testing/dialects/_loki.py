"""Grafana Loki's push API (``POST /loki/api/v1/push``, JSON), strictly.

Sources besides those in :mod:`logdrain.testing.dialects`: structured
metadata limits and texts (``allow_structured_metadata``,
``max_structured_metadata_size`` 64 KB, ``max_structured_metadata_entries_count``
128) from grafana/loki ``pkg/validation/limits.go`` and ``validate.go``;
blocked ingestion (``block_ingestion_until``, status
``block_ingestion_status_code``, default 260; with 200 Loki answers success
and stores nothing) from ``pkg/distributor/distributor.go``; a body above
the push size limit (``distributor.max-recv-msg-size``, 100 MiB) is 413 with
``request body too large`` (the exact wording after it is an approximation,
taken from ``validation.RequestBodyTooLargeErrorMsg``). Line and label
lengths are counted in UTF-8 bytes, as Go's ``len`` does.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import re
import threading
import time
from datetime import datetime, timezone
from email.message import Message
from typing import Any, ClassVar

from ._base import Answer, Batch, Dialect, Play, Request, text_answer

PUSH_PATH = "/loki/api/v1/push"
_NS = 1_000_000_000
_HOUR = 3600 * _NS
# github.com/buger/jsonparser errors, as Loki's pkg/loghttp/entry.go returns them.
MALFORMED_STRING = "Value is string, but can't find closing '\"' symbol"
MALFORMED_OBJECT = "Value looks like object, but can't find closing '}' symbol"
MALFORMED_VALUE = "Value looks like Number/Boolean/None, but can't find its end: ',' or '}' symbol"
OVERFLOW = "Value is number, but overflowed while parsing"
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_INT64 = re.compile(r"^-?[0-9]+$")


class _Bad(ValueError):
    pass


def go_time(ns: int) -> str:
    """Go's ``time.Time.String()`` in UTC: ``2006-01-02 15:04:05.999999999 +0000 UTC``."""
    seconds, frac = divmod(ns, _NS)
    text = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + " +0000 UTC"


def rfc3339(ns: int) -> str:
    """Go's ``time.RFC3339`` (whole seconds) in UTC."""
    return datetime.fromtimestamp(ns // _NS, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def label_string(labels: dict[str, str]) -> str:
    """Prometheus ``labels.String()``: sorted, values quoted."""
    inner = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items()))
    return "{" + inner + "}"


class Loki(Dialect):
    """Loki's ``/loki/api/v1/push`` with ``application/json`` bodies.

    Options: ``multi_tenant`` (Loki's ``auth_enabled``: ``X-Scope-OrgID`` is
    required, else 401 ``no org id``; otherwise the tenant is ``fake``),
    ``max_line_size`` (256 KB), ``max_label_names_per_series`` (15),
    ``max_label_name_length`` (1024), ``max_label_value_length`` (2048),
    ``reject_old_samples_max_age_ns`` (168 h), ``creation_grace_period_ns``
    (10 min), ``max_chunk_age_ns`` (2 h: with unordered writes, an entry older
    than the stream's newest minus half of it is "too far behind"), ``now``
    (a ``time.time_ns``-like clock).

    ``allow_structured_metadata`` (Loki 3's default True; False refuses
    entries carrying metadata), ``max_structured_metadata_size`` (64 KB) and
    ``max_structured_metadata_entries`` (128), ``max_push_bytes`` (100 MiB:
    a larger body, compressed or not, is 413).

    Plays: ``rate_limited`` (429, Loki's ingestion-rate text; ``limit``),
    ``stream_limit`` (429), ``error`` (``status``, default 500, and ``text``),
    ``too_far_behind`` (``count`` entries, from the end of the request, are
    refused as if older than the cutoff; the rest is stored), ``too_large``
    (413 as if the body were above ``limit``, default its size - 1),
    ``blocked`` (a blocked tenant: ``status``, default 260, ``until`` an
    RFC 3339 time; nothing stored, and status 200 is answered 204).
    ``GET /ready`` (the readiness probe) answers 200 ``ready``.
    """

    name = "loki"
    path = PUSH_PATH
    plays: ClassVar[dict[str, frozenset[str]]] = {
        "rate_limited": frozenset({"limit"}),
        "stream_limit": frozenset(),
        "error": frozenset({"status", "text"}),
        "too_far_behind": frozenset({"count"}),
        "too_large": frozenset({"limit"}),
        "blocked": frozenset({"status", "until"}),
    }

    def __init__(
        self,
        *,
        multi_tenant: bool = False,
        max_line_size: int = 256 * 1024,
        max_label_names_per_series: int = 15,
        max_label_name_length: int = 1024,
        max_label_value_length: int = 2048,
        reject_old_samples_max_age_ns: int = 168 * _HOUR,
        creation_grace_period_ns: int = 600 * _NS,
        max_chunk_age_ns: int = 2 * _HOUR,
        allow_structured_metadata: bool = True,
        max_structured_metadata_size: int = 64 * 1024,
        max_structured_metadata_entries: int = 128,
        max_push_bytes: int = 100 * 1024 * 1024,
        now: Any = time.time_ns,
    ) -> None:
        self.multi_tenant = multi_tenant
        self.max_line_size = max_line_size
        self.max_label_names = max_label_names_per_series
        self.max_name = max_label_name_length
        self.max_value = max_label_value_length
        self.max_age = reject_old_samples_max_age_ns
        self.grace = creation_grace_period_ns
        self.window = max_chunk_age_ns // 2
        self.allow_metadata = allow_structured_metadata
        self.max_metadata_size = max_structured_metadata_size
        self.max_metadata_entries = max_structured_metadata_entries
        self.max_push_bytes = max_push_bytes
        self.now = now
        self._lock = threading.Lock()
        self._newest: dict[tuple[str, str], int] = {}  # (tenant, stream) -> newest ts

    # ------------------------------------------------------------------ request level

    def check(self, request: Request) -> Answer | Batch:
        if request.path == "/ready" and request.method == "GET":
            return text_answer(200, "ready")  # the readiness probe (``logdrain doctor``'s)
        if request.path != PUSH_PATH:
            return text_answer(404, "404 page not found")
        if request.method != "POST":
            return Answer(405)
        tenant = request.header("X-Scope-OrgID")
        if self.multi_tenant and not tenant:
            return text_answer(401, "no org id")
        tenant = tenant if self.multi_tenant and tenant else "fake"
        body = request.body
        encoding = (request.header("Content-Encoding") or "").lower()
        if encoding == "gzip":
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError) as exc:
                return text_answer(400, str(exc))
        elif encoding:
            return text_answer(415, f'Content-Encoding "{encoding}" not supported')
        if max(len(request.body), len(body)) > self.max_push_bytes:
            return too_large(max(len(request.body), len(body)), self.max_push_bytes)
        message = Message()
        message["content-type"] = request.header("Content-Type") or ""
        if message.get_content_type() != "application/json" or not request.header("Content-Type"):
            # Loki decodes any other type as snappy-compressed protobuf.
            return text_answer(400, "snappy: corrupt input")
        try:
            streams = self._parse(body)
        except _Bad as exc:
            return text_answer(400, str(exc))
        entries = [e for s in streams for e in s["values"]]
        records = [
            {"tenant": tenant, "stream": s["stream"], "ts": ts, "line": line, "metadata": meta}
            for s in streams
            for ts, line, meta in s["values"]
        ]
        return Batch(streams, records, len(entries), {"tenant": tenant})

    def _parse(self, body: bytes) -> list[dict[str, Any]]:
        try:
            doc = json.loads(body)
        except ValueError as exc:
            raise _Bad(f"ReadObjectCB: expect {{ or n, but found invalid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise _Bad("ReadObjectCB: expect { or n")
        raw_streams = doc.get("streams") or []
        if not isinstance(raw_streams, list):
            raise _Bad("loghttp.PushRequest.Streams: []*loghttp.Stream: decode slice: expect [")
        streams = []
        for raw in raw_streams:
            if not isinstance(raw, dict):
                raise _Bad("loghttp.PushRequest.Streams: ReadObjectCB: expect { or n")
            labels = raw.get("stream") or {}
            if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
                raise _Bad('loghttp.Stream.Labels: ReadString: expects " or n')
            values = raw.get("values") or []
            if not isinstance(values, list):
                raise _Bad("loghttp.Stream.Values: []loghttp.Entry: decode slice: expect [")
            streams.append({"stream": dict(labels), "values": [self._entry(v) for v in values]})
        return streams

    @staticmethod
    def _entry(value: Any) -> tuple[str, str, dict[str, str]]:
        # pkg/loghttp/entry.go: [ts string, line string, (structured metadata object)]
        if not isinstance(value, list):
            raise _Bad("loghttp.Entry: Value is array, but can't find closing ']' symbol")
        if len(value) < 1 or not isinstance(value[0], str):
            raise _Bad(MALFORMED_STRING)
        ts = value[0]
        if not _INT64.match(ts):
            raise _Bad(MALFORMED_VALUE)
        if not -(2**63) <= int(ts) < 2**63:
            raise _Bad(OVERFLOW)
        if len(value) < 2 or not isinstance(value[1], str):
            raise _Bad(MALFORMED_STRING)
        meta: Any = {}
        if len(value) > 2:
            meta = value[2]
            if not isinstance(meta, dict):
                raise _Bad(MALFORMED_OBJECT)
            if not all(isinstance(v, str) for v in meta.values()):
                raise _Bad(MALFORMED_STRING)
        return ts, value[1], dict(meta)

    # ------------------------------------------------------------------ ingest

    def accept(self, request: Request, batch: Batch, play: Play | None) -> Answer:
        tenant = batch.extra["tenant"]
        if play is not None and play.kind == "too_large":
            size = len(request.body)
            return too_large(size, int(play.params.get("limit", size - 1)))
        if play is not None and play.kind == "blocked":
            status = int(play.params.get("status", 260))
            until = str(play.params.get("until") or rfc3339(int(self.now()) + _HOUR))
            if status == 200:  # Loki: "If the status code is 200, return success."
                return Answer(204)
            return text_answer(
                status,
                f"ingestion blocked for user {tenant} until '{until}' with status code '{status}'",
            )
        if play is not None and play.kind == "rate_limited":
            limit = int(play.params.get("limit", 4 * 1024 * 1024))
            size = sum(_len(r["line"]) for r in batch.records)
            return text_answer(
                429,
                f"Ingestion rate limit exceeded for user {tenant} (limit: {limit} bytes/sec) "
                f"while attempting to ingest '{batch.size}' lines totaling '{size}' bytes, "
                "reduce log volume or contact your Loki administrator to see if the limit "
                "can be increased",
            )
        if play is not None and play.kind == "stream_limit":
            first = label_string(batch.items[0]["stream"]) if batch.items else "{}"
            return text_answer(
                429,
                f"Maximum active stream limit exceeded when trying to create stream {first}, "
                "reduce the number of active streams (reduce labels or reduce label values), "
                "or contact your Loki administrator to see if the limit can be increased, "
                f"user: '{tenant}'",
            )
        if play is not None and play.kind == "error":
            return text_answer(
                int(play.params.get("status", 500)),
                str(
                    play.params.get(
                        "text", "rpc error: code = Unavailable desc = connection refused"
                    )
                ),
            )
        forced = int(play.params.get("count", 0)) if play is not None else 0
        forced_from = batch.size - forced
        now = int(self.now())
        stored: list[dict[str, Any]] = []
        validation: str | None = None  # the distributor keeps the last error
        ingester: str | None = None
        index = 0
        with self._lock:
            for stream in batch.items:
                labels = stream["stream"]
                name = label_string(labels)
                entries = stream["values"]
                offset, index = index, index + len(entries)
                error = self._validate_labels(labels, name)
                if error:
                    validation = error
                    continue
                failed: list[str] = []
                key = (tenant, name)
                for n, (ts, line, meta) in enumerate(entries):
                    t = int(ts)
                    if _len(line) > self.max_line_size:
                        validation = (
                            f"Max entry size '{self.max_line_size}' bytes exceeded for stream "
                            f"'{name}' while adding an entry with length '{_len(line)}' bytes"
                        )
                        continue
                    problem = self._validate_metadata(meta, name)
                    if problem:
                        validation = problem
                        continue
                    if t < now - self.max_age:
                        validation = (
                            f"entry for stream '{name}' has timestamp too old: {go_time(t)}, "
                            f"oldest acceptable timestamp is: {go_time(now - self.max_age)}"
                        )
                        continue
                    if t > now + self.grace:
                        validation = (
                            f"entry for stream '{name}' has timestamp too new: {go_time(t)}"
                        )
                        continue
                    newest = self._newest.get(key)
                    cutoff = (newest - self.window) if newest is not None else None
                    if offset + n >= forced_from:  # the too_far_behind play
                        cutoff = t + 1 if cutoff is None else max(cutoff, t + 1)
                    if cutoff is not None and t < cutoff:
                        reason = (
                            f"entry too far behind, entry timestamp is: {rfc3339(t)}, "
                            f"oldest acceptable timestamp is: {rfc3339(cutoff)}"
                        )
                        failed.append(
                            f"entry with timestamp {go_time(t)} ignored, reason: '{reason}' "
                            f"for stream: {name},\n"
                        )
                        continue
                    self._newest[key] = max(newest or t, t)
                    stored.append(
                        {
                            "tenant": tenant,
                            "stream": dict(labels),
                            "ts": ts,
                            "line": line,
                            "metadata": meta,
                        }
                    )
                if failed:
                    ingester = "".join(failed) + (
                        f"user '{tenant}', total ignored: {len(failed)} out of {len(entries)}"
                    )
        error = ingester or validation
        if error:
            return dataclasses.replace(text_answer(400, error), stored=stored)
        return Answer(204, stored=stored)

    def _validate_labels(self, labels: dict[str, str], name: str) -> str | None:
        if not labels:
            return "error at least one label pair is required per stream"
        for key in labels:
            if not _LABEL_NAME.match(key):
                return f"Error parsing labels '{name}' with error: invalid label name {key!r}"
        if len(labels) > self.max_label_names:
            return (
                f"entry for stream '{name}' has {len(labels)} label names; "
                f"limit {self.max_label_names}"
            )
        for key, value in labels.items():
            if len(key) > self.max_name:
                return f"stream '{name}' has label name too long: '{key}'"
            if _len(value) > self.max_value:
                return f"stream '{name}' has label value too long: '{value}'"
        return None

    def _validate_metadata(self, meta: dict[str, str], name: str) -> str | None:
        if not meta:
            return None
        if not self.allow_metadata:
            return (
                f"stream '{name}' includes structured metadata, but this feature is "
                "disallowed. Please see `limits_config.allow_structured_metadata` or contact "
                "your Loki administrator to enable it."
            )
        size = sum(_len(k) + _len(v) for k, v in meta.items())
        if size > self.max_metadata_size:
            return (
                f"stream '{name}' has structured metadata too large: '{size}' bytes, limit: "
                f"'{self.max_metadata_size}' bytes. Please see "
                "`limits_config.max_structured_metadata_size` or contact your Loki "
                "administrator to increase it."
            )
        if len(meta) > self.max_metadata_entries:
            return (
                f"stream '{name}' has too many structured metadata labels: '{len(meta)}', "
                f"limit: '{self.max_metadata_entries}'. Please see "
                "`limits_config.max_structured_metadata_entries_count` or contact your Loki "
                "administrator to increase it."
            )
        return None


def _len(text: str) -> int:
    """Go's ``len`` of a string: UTF-8 bytes."""
    return len(text.encode("utf-8", "surrogatepass"))


def too_large(size: int, limit: int) -> Answer:
    """Loki's 413 for a push above its size limit (wording approximated)."""
    return text_answer(413, f"request body too large: {size} bytes, limit: {limit} bytes")
