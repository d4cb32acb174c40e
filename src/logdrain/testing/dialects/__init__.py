"""Strict local fakes of real collectors' intake APIs, one per preset.

:class:`StrictCollector` is a :class:`~logdrain.testing.Collector` (same
127.0.0.1 server, ledger, ``script``/``fault``/``hang``/``delay``/``down``)
whose requests are judged by a *dialect* that validates path, method,
content type, auth and body shape as the product does, answers with that
product's status and error body, and stores what the product would have
stored, normalised::

    with StrictCollector(Loki(multi_tenant=True)) as loki:
        requests.post(loki.url, json=push, headers={"X-Scope-OrgID": "a"})
        loki.records  # [{"tenant", "stream", "ts", "line", "metadata"}, ...]
        loki.play("rate_limited")  # the next valid push gets Loki's 429

Dialects: :class:`Loki`, :class:`Elasticsearch`, :class:`SplunkHEC`,
:class:`Datadog`, :class:`Seq`, :class:`OTLP` (bodies checked against the
official ``opentelemetry-proto`` messages, imported when used),
:class:`Graylog` (GELF over HTTP: 202 to anything, invalid messages kept
apart in ``dropped``), :class:`Slack` (incoming webhooks) and
:class:`KafkaRest` (Confluent REST Proxy v2 and v3).
:meth:`StrictCollector.play` queues a dialect's scripted answers in the same
FIFO as ``script``/``fault``; a request that fails validation gets its error
and takes nothing from the FIFO. Each dialect's module docstring lists the
published sources it follows and the approximations it makes; the three
oldest are summarised here.

Sources each rule follows
-------------------------
Loki (:class:`Loki`)
    Push API: https://grafana.com/docs/loki/latest/reference/loki-http-api/#ingest-logs
    (``POST /loki/api/v1/push``, ``application/json``, ``values`` of
    ``["<unix ns as string>", "<line>", {structured metadata}]``, 204).
    Multi-tenancy: https://grafana.com/docs/loki/latest/operations/multi-tenancy/
    (``X-Scope-OrgID``; without auth the tenant is ``fake``; dskit's
    ``no org id``).  Limits and texts: grafana/loki ``pkg/validation/validate.go``
    (missing/invalid labels, label name/value length, label count, line too
    long, too old/too new, rate limit, stream limit) and
    https://grafana.com/docs/loki/latest/operations/request-validation-rate-limits/;
    entry decoding ``pkg/loghttp/entry.go`` (buger/jsonparser errors for a
    non-string timestamp or line, or a non-object metadata); per-entry
    rejection ``pkg/ingester/stream.go`` ("entry with timestamp ... ignored,
    reason: '...' for stream: ...," then "user '...', total ignored: N out of
    M", 400, the rest stored); unordered writes cutoff (newest minus half of
    ``max_chunk_age``) https://grafana.com/docs/loki/latest/configure/#accept-out-of-order-writes
    and ``chunkenc.ErrTooFarBehind``.  Any other content type is decoded by
    Loki as snappy protobuf, hence ``snappy: corrupt input``.
Elasticsearch (:class:`Elasticsearch`)
    https://www.elastic.co/guide/en/elasticsearch/reference/current/docs-bulk.html
    (``POST``/``PUT`` ``/_bulk`` and ``/<target>/_bulk``, NDJSON ending with a
    newline, ``application/x-ndjson`` or ``application/json``, ``create`` /
    ``index`` with ``_index`` / ``_id``, the ``took``/``errors``/``items``
    answer, per-item ``status`` and ``error``; 409 for ``create`` of an
    existing ``_id``); errors as ``BulkRequestParser`` and ``BulkRequest.validate``
    word them (terminating newline, malformed action line, unknown
    parameter, index missing, no requests added); ``http.max_content_length``
    (100mb) -> 413: https://www.elastic.co/guide/en/elasticsearch/reference/current/modules-network.html;
    ``es_rejected_execution_exception`` (indexing pressure) and
    ``mapper_parsing_exception`` items; 406 for a missing or unsupported
    Content-Type; ``security_exception`` 401 with ``WWW-Authenticate`` for
    ApiKey/Basic: https://www.elastic.co/guide/en/elasticsearch/reference/current/security-api-create-api-key.html.
Splunk HEC (:class:`SplunkHEC`)
    https://docs.splunk.com/Documentation/Splunk/latest/Data/FormateventsforHTTPEventCollector
    (``Authorization: Splunk <token>``, concatenated event objects with
    ``time``/``host``/``source``/``sourcetype``/``index``/``event``/``fields``,
    flat ``fields``), https://docs.splunk.com/Documentation/Splunk/latest/RESTREF/RESTinput#services.2Fcollector.2Fevent
    (endpoints) and the HEC status-code table in "Troubleshoot HTTP Event
    Collector" (codes 0-20 with their HTTP statuses, ``{"text", "code"}``,
    ``invalid-event-number`` for a bad event).

Approximations (marked so nobody mistakes them for the product's words):
jsoniter's decode-path prefixes on Loki's malformed-JSON texts and the
Prometheus parser's wording for an invalid label name are simplified, and
an unsupported Content-Encoding gets 415; for Elasticsearch, a missing
source line is reported as the terminating-newline error, an unparsable
action line as ``x_content_parse_exception`` with a short reason, a
non-object source as ``mapper_parsing_exception`` "failed to parse",
``delete``/``update`` actions are refused as not implemented, and index
names are not validated;
HEC stores the events before an invalid one (Splunk's documented partial
indexing is not confirmed) and answers 404 to a non-POST method.
"""

from __future__ import annotations

from ._base import Answer, Batch, Dialect, Play, Request, StrictCollector
from ._datadog import Datadog
from ._elastic import Elasticsearch
from ._gelf import Graylog
from ._kafka_rest import KafkaRest
from ._loki import Loki
from ._otlp import OTLP
from ._seq import Seq
from ._slack import ERRORS as SLACK_ERRORS
from ._slack import Slack
from ._splunk import CODES as HEC_CODES
from ._splunk import SplunkHEC

__all__ = [
    "HEC_CODES",
    "OTLP",
    "SLACK_ERRORS",
    "Answer",
    "Batch",
    "Datadog",
    "Dialect",
    "Elasticsearch",
    "Graylog",
    "KafkaRest",
    "Loki",
    "Play",
    "Request",
    "Seq",
    "Slack",
    "SplunkHEC",
    "StrictCollector",
]
