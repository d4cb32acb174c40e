"""Confluent REST Proxy for Kafka, producing to a topic (v2 and v3), strictly.

Sources each rule follows:

* REST Proxy API reference, https://docs.confluent.io/platform/current/kafka-rest/api.html
  (v2 ``POST /topics/{topic}``: ``application/vnd.kafka.json.v2+json`` with
  ``{"records": [{"key", "value", "partition"}]}``, ``Accept:
  application/vnd.kafka.v2+json``; the answer ``{"key_schema_id",
  "value_schema_id", "offsets": [{"partition", "offset", "error_code",
  "error"}]}``; errors ``{"error_code", "message"}``).
* Produce Records (v3), https://docs.confluent.io/cloud/current/ccloud/produce-record/
  (``POST /v3/clusters/{cluster_id}/topics/{topic_name}/records``,
  ``application/json``; records "streamed to and from the server as
  Concatenated JSON", one delivery report per record, in order, each with its
  ``error_code``, 200 for success; the HTTP status is 200 once the stream is
  established).
* confluentinc/kafka-rest sources: ``resources/v3/ProduceAction.java`` (the
  body read as a ``MappingIterator`` of ``ProduceRequest``: ``partition_id``,
  ``headers``, ``key``/``value`` ``{"type", "data", ...}``, ``timestamp``),
  ``response/StreamingResponse.java`` and ``ChunkedOutputFactory.java``
  (results or ``{"error_code", "message"}`` errors, ``\\r\\n`` after each),
  ``entities/v3/ProduceResponse.java`` (``cluster_id``, ``topic_name``,
  ``partition_id``, ``offset``, ``timestamp``, ``key``/``value`` ``{"type",
  "size"}``), ``Errors.java`` (40401 "Topic not found.", 40402 "Partition
  not found.", per-record 50002 Kafka error / 50003 retriable Kafka error);
  confluentinc/rest-utils ``KafkaExceptionMapper`` (50302 broker not
  available); apache/kafka ``Utils.murmur2`` (the default partitioner).

Approximations, marked so nobody takes them for the proxy's words: Jersey's
texts for 404/405/406/413/415 ("HTTP 415 Unsupported Media Type"); Jackson's
wording for malformed JSON and unknown fields; 422 "records may not be empty";
v3's unknown cluster ("Cluster ... cannot be found.") and unknown topic
(a 404 for the whole request, as Confluent Cloud does); a null key goes
round-robin (Kafka's sticky partitioner spreads batches); only the JSON
embedded format in v2, and JSON, STRING, BINARY (no Schema Registry) in v3.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Collection, Mapping
from datetime import datetime, timezone
from typing import Any, ClassVar

from ._base import Answer, Batch, Dialect, Play, Request, json_answer

V2_TYPE = "application/vnd.kafka.json.v2+json"
V2_ANSWER_TYPE = "application/vnd.kafka.v2+json"
V2_ACCEPTED = {V2_ANSWER_TYPE, "application/vnd.kafka+json", "application/json", "*/*"}
RETRIABLE = "Messages are rejected since there are fewer in-sync replicas than required."
FATAL = "The request included a message larger than the max message size the server will accept."
_INSTANT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")
_V2_PATH = re.compile(r"^/topics/([^/]+)$")
_V3_PATH = re.compile(r"^(?:/kafka)?/v3/clusters/([^/]+)/topics/([^/]+)/records$")
_V2_FIELDS = frozenset(
    {"records", "key_schema", "key_schema_id", "value_schema", "value_schema_id"}
)
_V2_RECORD = frozenset({"key", "value", "partition"})
_V3_FIELDS = frozenset({"partition_id", "headers", "key", "value", "timestamp"})
_DATA_FIELDS = frozenset(
    {"type", "data", "subject", "subject_name_strategy", "schema_id", "schema_version", "schema"}
)


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2`` (a signed 32-bit result)."""
    m, mask = 0x5BD1E995, 0xFFFFFFFF
    h = (0x9747B28C ^ len(data)) & mask
    whole = len(data) - len(data) % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & mask
        k ^= k >> 24
        k = (k * m) & mask
        h = ((h * m) & mask) ^ k
    rest = data[whole:]
    if rest:
        for shift, byte in reversed(list(enumerate(rest))):
            h ^= byte << (8 * shift)
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner for a keyed record."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def rest_error(status: int, code: int, message: str, **headers: str) -> Answer:
    return json_answer(status, {"error_code": code, "message": message}, headers)


def _jersey(status: int, text: str) -> Answer:
    return rest_error(status, status, f"HTTP {status} {text}")


def _media(request: Request, name: str) -> str:
    return (request.header(name) or "").split(";")[0].strip().lower()


class _Bad(ValueError):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class KafkaRest(Dialect):
    """The REST Proxy's produce endpoints: v2 ``/topics/{topic}`` and v3
    ``[/kafka]/v3/clusters/{cluster}/topics/{topic}/records``.

    Options: ``topics`` (known topics: names, or name -> partition count;
    default ``{"logs": 3}``; another topic: 404), ``cluster_id`` (the v3
    cluster, default ``lkc-abc123``), ``max_body`` (bytes; above: 413).
    Records are stored as ``{"api", "topic", "partition", "offset", "key",
    "value", "timestamp"}`` (v3 ``key``/``value``: the data, decoded by type;
    ``timestamp``: v3's, else None); offsets count per partition.

    Plays: ``record_errors`` (``retriable`` and ``fatal``: indices of the
    request's records answered with 50003 / 50002 and not stored),
    ``unavailable`` (503, ``code`` default 50302, ``message``),
    ``too_large`` (413), ``rate_limited`` (429, ``retry_after`` optional),
    ``error`` (``status``, ``code``, ``message``).
    """

    name = "kafka_rest"
    path = "/topics/logs"
    plays: ClassVar[dict[str, frozenset[str]]] = {
        "record_errors": frozenset({"retriable", "fatal"}),
        "unavailable": frozenset({"code", "message"}),
        "too_large": frozenset(),
        "rate_limited": frozenset({"retry_after"}),
        "error": frozenset({"status", "code", "message"}),
    }

    def __init__(
        self,
        *,
        topics: Collection[str] | Mapping[str, int] = ("logs",),
        cluster_id: str = "lkc-abc123",
        max_body: int | None = None,
    ) -> None:
        known = topics if isinstance(topics, Mapping) else dict.fromkeys(topics, 3)
        self.topics = dict(known)
        self.cluster_id = cluster_id
        self.max_body = max_body
        self._lock = threading.Lock()
        self._offsets: dict[tuple[str, int], int] = {}
        self._round_robin: dict[str, int] = {}

    # -- request-level checks --

    def check(self, request: Request) -> Answer | Batch:
        v2, v3 = _V2_PATH.match(request.path), _V3_PATH.match(request.path)
        if v2 is None and v3 is None:
            return _jersey(404, "Not Found")
        if request.method != "POST":
            return _jersey(405, "Method Not Allowed")
        if self.max_body is not None and len(request.body) > self.max_body:
            return _jersey(413, "Request Entity Too Large")
        if v3 is not None:
            return self._check_v3(request, v3.group(1), v3.group(2))
        return self._check_v2(request, v2.group(1))  # type: ignore[union-attr]

    def _check_v2(self, request: Request, topic: str) -> Answer | Batch:
        if _media(request, "Content-Type") != V2_TYPE:
            return _jersey(415, "Unsupported Media Type")
        accept = {
            part.split(";")[0].strip().lower()
            for part in (request.header("Accept") or "*/*").split(",")
        }
        if not accept & V2_ACCEPTED:
            return _jersey(406, "Not Acceptable")
        if topic not in self.topics:
            return rest_error(404, 40401, "Topic not found.")
        try:
            payload = json.loads(request.body)
        except ValueError as exc:
            return rest_error(400, 400, f"Unexpected character: {exc}")
        if not isinstance(payload, dict):
            return rest_error(422, 422, "Cannot deserialize a produce request from a non-object")
        extra = set(payload) - _V2_FIELDS
        records = payload.get("records")
        if extra:
            return rest_error(422, 422, f'Unrecognized field "{sorted(extra)[0]}"')
        if not isinstance(records, list) or not records:
            return rest_error(422, 422, "records may not be empty")
        for item in records:
            if not isinstance(item, dict):
                return rest_error(422, 422, "Cannot deserialize a record from a non-object")
            if set(item) - _V2_RECORD:
                field = sorted(set(item) - _V2_RECORD)[0]
                return rest_error(422, 422, f'Unrecognized field "{field}"')
            partition = item.get("partition")
            if partition is not None and (
                not isinstance(partition, int) or not 0 <= partition < self.topics[topic]
            ):
                return rest_error(404, 40402, "Partition not found.")
        return Batch(list(records), [], len(records), {"api": "v2", "topic": topic})

    def _check_v3(self, request: Request, cluster: str, topic: str) -> Answer | Batch:
        if _media(request, "Content-Type") != "application/json":
            return _jersey(415, "Unsupported Media Type")
        if cluster != self.cluster_id:
            return rest_error(404, 404, f"Cluster {cluster} cannot be found.")
        if topic not in self.topics:
            return rest_error(404, 404, "This server does not host this topic-partition.")
        items: list[Any] = []
        text = request.body.decode("utf-8", "replace")
        decoder, position = json.JSONDecoder(), 0
        while True:
            while position < len(text) and text[position] in " \t\r\n":
                position += 1
            if position >= len(text):
                break
            try:
                item, position = decoder.raw_decode(text, position)
            except json.JSONDecodeError as exc:
                items.append(_Bad(400, f"Error processing JSON: {exc.msg}"))
                break  # the stream cannot be read past it
            items.append(item)
        return Batch(items, [], len(items), {"api": "v3", "topic": topic, "cluster": cluster})

    # -- producing --

    def accept(self, request: Request, batch: Batch, play: Play | None) -> Answer:
        retriable: set[int] = set()
        fatal: set[int] = set()
        if play is not None:
            params = play.params
            if play.kind == "record_errors":
                retriable, fatal = set(params.get("retriable", ())), set(params.get("fatal", ()))
            elif play.kind == "unavailable":
                code = int(params.get("code", 50302))
                return rest_error(503, code, str(params.get("message", "Broker not available.")))
            elif play.kind == "too_large":
                return _jersey(413, "Request Entity Too Large")
            elif play.kind == "rate_limited":
                extra = (
                    {"Retry-After": str(params["retry_after"])} if "retry_after" in params else {}
                )
                return rest_error(429, 429, "Request rate limit exceeded", **extra)
            else:
                status = int(params.get("status", 500))
                return rest_error(
                    status,
                    int(params.get("code", status)),
                    str(params.get("message", "Internal Server Error")),
                )
        if batch.extra["api"] == "v2":
            return self._produce_v2(batch, retriable, fatal)
        return self._produce_v3(batch, retriable, fatal)

    def _place(self, topic: str, key: bytes | None, partition: int | None) -> tuple[int, int]:
        """(partition, offset) of the next record, like the producer would."""
        with self._lock:
            count = self.topics[topic]
            if partition is None and key is not None:
                partition = partition_for(key, count)
            elif partition is None:
                partition = self._round_robin.get(topic, 0) % count
                self._round_robin[topic] = partition + 1
            offset = self._offsets.get((topic, partition), 0)
            self._offsets[(topic, partition)] = offset + 1
            return partition, offset

    def _produce_v2(self, batch: Batch, retriable: set[int], fatal: set[int]) -> Answer:
        topic = batch.extra["topic"]
        offsets: list[dict[str, Any]] = []
        stored: list[dict[str, Any]] = []
        for i, item in enumerate(batch.items):
            if i in retriable or i in fatal:
                code, text = (50003, RETRIABLE) if i in retriable else (50002, FATAL)
                offsets.append(
                    {"partition": None, "offset": None, "error_code": code, "error": text}
                )
                continue
            key = item.get("key")
            raw = None if key is None else json.dumps(key, separators=(",", ":")).encode()
            partition, offset = self._place(topic, raw, item.get("partition"))
            offsets.append(
                {"partition": partition, "offset": offset, "error_code": None, "error": None}
            )
            stored.append(_stored("v2", topic, (partition, offset), key, item.get("value"), None))
        payload = {"key_schema_id": None, "value_schema_id": None, "offsets": offsets}
        answer = json_answer(200, payload, {"Content-Type": V2_ANSWER_TYPE})
        return Answer(200, answer.body, answer.headers, stored)

    def _produce_v3(self, batch: Batch, retriable: set[int], fatal: set[int]) -> Answer:
        topic, cluster = batch.extra["topic"], batch.extra["cluster"]
        reports: list[dict[str, Any]] = []
        stored: list[dict[str, Any]] = []
        for i, item in enumerate(batch.items):
            try:
                if isinstance(item, _Bad):
                    raise item
                key, key_bytes, value, value_bytes, stamp = self._record_v3(item, topic)
                if i in retriable or i in fatal:
                    raise _Bad(50003, RETRIABLE) if i in retriable else _Bad(50002, FATAL)
            except _Bad as bad:
                reports.append({"error_code": bad.code, "message": str(bad)})
                continue
            partition, offset = self._place(topic, key_bytes, item.get("partition_id"))
            report: dict[str, Any] = {
                "error_code": 200, "cluster_id": cluster, "topic_name": topic,
                "partition_id": partition, "offset": offset, "timestamp": stamp,
            }  # fmt: skip
            for which, raw in (("key", key_bytes), ("value", value_bytes)):
                if isinstance(item.get(which), dict):
                    kind = item[which].get("type", "BINARY")
                    report[which] = {"type": kind, "size": len(raw or b"")}
            reports.append(report)
            stored.append(_stored("v3", topic, (partition, offset), key, value, stamp))
        body = b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\r\n" for r in reports)
        return Answer(200, body, {"Content-Type": "application/json"}, stored)

    def _record_v3(self, item: Any, topic: str) -> tuple[Any, bytes | None, Any, bytes | None, str]:
        if not isinstance(item, dict):
            raise _Bad(400, "Cannot deserialize a produce request from a non-object")
        unknown = set(item) - _V3_FIELDS
        if unknown:
            raise _Bad(400, f'Unrecognized field "{sorted(unknown)[0]}"')
        partition = item.get("partition_id")
        if partition is not None and (
            not isinstance(partition, int) or not 0 <= partition < self.topics[topic]
        ):
            raise _Bad(40402, "Partition not found.")
        headers = item.get("headers", [])
        if not isinstance(headers, list) or not all(
            isinstance(h, dict) and isinstance(h.get("name"), str) and set(h) <= {"name", "value"}
            for h in headers
        ):
            raise _Bad(400, "headers must be a list of {name, value}")
        key, key_bytes = _data(item.get("key"), "key")
        value, value_bytes = _data(item.get("value"), "value")
        stamp = item.get("timestamp")
        if stamp is None:
            stamp = (
                datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            )
        elif not isinstance(stamp, str) or not _instant(stamp):
            raise _Bad(400, f"Cannot deserialize value of type `java.time.Instant` from {stamp!r}")
        return key, key_bytes, value, value_bytes, stamp


def _instant(text: str) -> bool:
    """An ISO-8601 instant as Jackson reads ``java.time.Instant`` (RFC 3339)."""
    return _INSTANT.match(text) is not None


def _data(data: Any, which: str) -> tuple[Any, bytes | None]:
    """``{"type", "data"}`` -> (the data as stored, the record bytes)."""
    if data is None:
        return None, None
    if not isinstance(data, dict) or set(data) - _DATA_FIELDS:
        raise _Bad(400, f"{which} must be an object of type and data")
    kind = data.get("type", "BINARY")
    value = data.get("data")
    if kind == "JSON":
        return value, None if value is None else json.dumps(value, separators=(",", ":")).encode()
    if kind == "STRING":
        if value is not None and not isinstance(value, str):
            raise _Bad(400, f"{which}: STRING data must be a string")
        return value, None if value is None else value.encode()
    if kind == "BINARY":
        try:
            raw = None if value is None else base64.b64decode(value, validate=True)
        except (TypeError, ValueError):
            raise _Bad(400, f"{which}: data={value!r} is not a valid base64 string") from None
        return raw, raw
    raise _Bad(400, f"{which}: type {kind!r} needs a Schema Registry, which is not configured")


def _stored(api: str, topic: str, place: tuple[int, int], *values: Any) -> dict[str, Any]:
    """A stored record; ``values``: key, value, timestamp."""
    key, value, stamp = values
    partition, offset = place
    return {
        "api": api, "topic": topic, "partition": partition, "offset": offset,
        "key": key, "value": value, "timestamp": stamp,
    }  # fmt: skip
