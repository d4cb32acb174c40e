"""Elasticsearch's ``_bulk`` API (``POST /_bulk``, ``POST /<index>/_bulk``), strictly.

This module owns the ``Elasticsearch`` dialect: the request checks, the bulk
body's lines and the items' answers. ``filter_path`` itself (what it keeps,
and its approximations) is ``_elastic_filter``'s; as
``AbstractRestChannel.newErrorBuilder`` does, only successful answers are
filtered, error answers never. Unknown URL parameters get
``BaseRestHandler``'s "contains unrecognized parameter" 400. Approximations:
no "did you mean" suffix on that error, and the ``answer_lost`` play's 502
body stands for whatever a proxy would say.
"""

from __future__ import annotations

import base64
import gzip
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Collection, Mapping
from email.message import Message
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from ._base import Answer, Batch, Dialect, Play, Request, json_answer
from ._elastic_filter import filter_path
from ._json import UNSURE, orjson_sure, orjson_value

_TYPES = {"application/json", "application/x-ndjson"}
_VENDOR = {"application/vnd.elasticsearch+json", "application/vnd.elasticsearch+x-ndjson"}
_ACTIONS = ("create", "delete", "index", "update")
_PARAMS = {
    "_index", "_id", "routing", "pipeline", "require_alias", "require_data_stream",
    "dynamic_templates", "if_seq_no", "if_primary_term", "version", "version_type",
}  # fmt: skip
#: URL parameters ``POST /_bulk`` takes (its own and the common options).
_QUERY = {
    "filter_path", "pretty", "human", "error_trace", "pipeline", "refresh", "routing",
    "timeout", "wait_for_active_shards", "_source", "_source_excludes", "_source_includes",
    "require_alias", "require_data_stream", "list_executed_pipelines", "include_source_on_error",
}  # fmt: skip
_NEWLINE = "The bulk request must be terminated by a newline [\\n]"
_INDEX_UUID = "fakeIndexUuid0000000A"
#: What json.loads runs, without its per-call setup.
_SCAN: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _loads(line: bytes, sure: bool = False) -> Any:
    """``json.loads(line)`` (the same value or error), cheaper for the usual line:
    ``{`` first, UTF-8, only whitespace after the value, json.loads' own case
    (orjson's value when it reads it and ``sure``: the body passed ``orjson_sure``)."""
    if line[:1] == b"{":
        if sure:
            value = orjson_value(line)
            if value is not UNSURE:
                return value
        try:
            text = line.decode()
            value, end = _SCAN(text, 0)
        except (ValueError, StopIteration, RecursionError):  # json.loads says what is wrong
            pass
        else:
            if end == len(text) or not text[end:].strip(" \t\n\r"):
                return value
    return json.loads(line)


def es_error(status: int, kind: str, reason: str, **extra: Any) -> Answer:
    """Elasticsearch's REST error envelope."""
    cause = {"type": kind, "reason": reason, **extra}
    return json_answer(status, {"error": {"root_cause": [cause], **cause}, "status": status})


class Elasticsearch(Dialect):
    """Elasticsearch 8's bulk API, ``create`` and ``index`` actions.

    Options: ``api_keys`` (accepted ``Authorization: ApiKey <value>``
    values), ``users`` (Basic ``{user: password}``); with neither, security
    is off and any Authorization header is ignored.  ``max_content_length``
    (``http.max_content_length``, 100 MB): a larger body gets 413.

    Plays: ``rejected`` (``items``: positions answered 429
    ``es_rejected_execution_exception``, default all), ``mapper_parsing``
    (``items``, ``reason``: 400 ``mapper_parsing_exception`` items),
    ``items`` (several kinds in one answer: positions ``rejected`` 429,
    ``mapper_parsing`` 400 with ``reason``, ``unavailable`` 503
    ``unavailable_shards_exception``), ``error`` (the whole request:
    ``status`` default 503, ``type``, ``reason``), ``too_large`` (413, empty
    body), ``answer_lost`` (the batch is stored as usual, then its answer
    is lost on the way: ``status`` default 502 with a proxy's text body;
    with ``cut=True`` a 200 whose JSON body stops halfway; with ``pad=N`` a
    200 whose true answer is followed by N spaces, longer than a client
    with a smaller cap reads).

    ``filter_path`` (comma-separated paths, ``*`` within a name, ``**`` any
    depth) filters a successful answer as Elasticsearch does: what matches
    no path is left out, array elements left empty included; error answers
    are never filtered. Any other URL parameter a bulk request does not take
    gets Elasticsearch's 400 "contains unrecognized parameter".
    """

    name = "elasticsearch"
    path = "/_bulk"
    plays: ClassVar[dict[str, frozenset[str]]] = {
        "rejected": frozenset({"items"}),
        "mapper_parsing": frozenset({"items", "reason"}),
        "items": frozenset({"rejected", "mapper_parsing", "unavailable", "reason"}),
        "error": frozenset({"status", "type", "reason"}),
        "too_large": frozenset(),
        "answer_lost": frozenset({"status", "cut", "pad"}),
    }

    def __init__(
        self,
        *,
        api_keys: Collection[str] = (),
        users: Mapping[str, str] | None = None,
        max_content_length: int = 100 * 1024 * 1024,
    ) -> None:
        self.api_keys = frozenset(api_keys)
        self.users = dict(users or {})
        self.max_content_length = max_content_length
        self._lock = threading.Lock()
        self._versions: dict[tuple[str, str], int] = {}
        self._seq = itertools.count()
        self._ids = itertools.count(1)

    # ------------------------------------------------------------------ request level

    def check(self, request: Request) -> Answer | Batch:
        if len(request.body) > self.max_content_length:
            return Answer(413)
        parts = request.path.strip("/").split("/")
        if not (parts == ["_bulk"] or (len(parts) == 2 and parts[1] == "_bulk" and parts[0])):
            return json_answer(400, {
                "error": f"no handler found for uri [{request.path}] and method [{request.method}]"
            })  # fmt: skip
        if request.method not in ("POST", "PUT"):
            return json_answer(405, {
                "error": f"Incorrect HTTP method for uri [{request.path}] and method "
                f"[{request.method}], allowed: [POST, PUT]",
                "status": 405,
            })  # fmt: skip
        raw_type = request.header("Content-Type")
        if not raw_type:
            return json_answer(406, {"error": "Content-Type header is missing", "status": 406})
        message = Message()
        message["content-type"] = raw_type
        if message.get_content_type() not in _TYPES | _VENDOR:
            return json_answer(406, {
                "error": f"Content-Type header [{raw_type}] is not supported", "status": 406
            })  # fmt: skip
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        for key, _ in parse_qsl(request.query, keep_blank_values=True):
            if key not in _QUERY:
                return es_error(
                    400,
                    "illegal_argument_exception",
                    f"request [{request.path}] contains unrecognized parameter: [{key}]",
                )
        body = request.body
        if (request.header("Content-Encoding") or "").lower() == "gzip":
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError) as exc:
                return es_error(400, "illegal_argument_exception", str(exc))
        return self._parse(body, parts[0] if len(parts) == 2 else None)

    def _authenticate(self, request: Request) -> Answer | None:
        if not self.api_keys and not self.users:
            return None
        header = request.header("Authorization") or ""
        scheme, _, value = header.partition(" ")
        www = {"WWW-Authenticate": 'Basic realm="security", charset="UTF-8", ApiKey'}
        if not header:
            reason = f"missing authentication credentials for REST request [{request.path}]"
        elif scheme.lower() == "apikey" and value.strip() in self.api_keys:
            return None
        elif scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                user, password = "", "\0"
            if user in self.users and self.users[user] == password:
                return None
            reason = f"unable to authenticate user [{user}] for REST request [{request.path}]"
        else:
            reason = (
                "unable to authenticate with provided credentials and anonymous access is "
                "not allowed for this request"
            )
        answer = es_error(401, "security_exception", reason, header={"WWW-Authenticate": [
            'Basic realm="security", charset="UTF-8"', "ApiKey"]})  # fmt: skip
        answer.headers.update(www)
        return answer

    def _parse(self, body: bytes, path_index: str | None) -> Answer | Batch:
        if not body.strip():
            return es_error(400, "action_request_validation_exception",
                            "Validation Failed: 1: no requests added;")  # fmt: skip
        if not body.endswith(b"\n"):
            return _illegal(_NEWLINE)
        lines = body[:-1].split(b"\n")
        # One record per action, as stored if accepted ("source" None: not a document).
        items: list[dict[str, Any]] = []
        sources: list[bytes] = []
        number = 0
        while number < len(lines):
            line = lines[number]
            number += 1
            if not line.strip():
                continue
            action = _action(line, number)
            if isinstance(action, Answer):
                return action
            if number >= len(lines):  # no source line after the action
                return _illegal(_NEWLINE)
            sources.append(lines[number])
            number += 1
            op, meta = action
            items.append({"op": op, "_index": meta.get("_index", path_index),
                          "_id": meta.get("_id"), "source": None})  # fmt: skip
        missing = [i for i, item in enumerate(items, 1) if not item["_index"]]
        if missing:
            text = "".join(f"{n}: index is missing;" for n in range(1, len(missing) + 1))
            return es_error(
                400, "action_request_validation_exception", "Validation Failed: " + text
            )
        sure = orjson_sure(body)
        for item, line in zip(items, sources, strict=True):  # parsed once, for accept() too
            try:
                source = _loads(line, sure)
            except ValueError:
                source = None  # (a mapper_parsing_exception item)
            item["source"] = source if isinstance(source, dict) else None
        records = [item for item in items if item["source"] is not None]
        return Batch(items, records, len(items), {"lines": sources})

    # ------------------------------------------------------------------ ingest

    def accept(self, request: Request, batch: Batch, play: Play | None) -> Answer:
        started = time.monotonic()
        if play is not None and play.kind == "too_large":
            return Answer(413)
        if play is not None and play.kind == "error":
            status = int(play.params.get("status", 503))
            return es_error(
                status,
                str(play.params.get("type", "unavailable_shards_exception")),
                str(play.params.get("reason", "[logs][0] primary shard is not active")),
            )
        fates = _fates(play, batch.size)
        reason = str(play.params.get("reason", "failed to parse")) if play else "failed to parse"
        out: list[dict[str, Any]] = []
        stored: list[dict[str, Any]] = []
        with self._lock:
            versions, seq = self._versions, self._seq
            for position, item in enumerate(batch.items):
                op, index, source = item["op"], item["_index"], item["source"]
                doc_id = item["_id"] or self._auto_id()
                fate = fates.get(position)
                version = versions.get((index, doc_id))
                if fate is not None or source is None or (op == "create" and version is not None):
                    size = len(batch.extra["lines"][position])
                    failure = _failure(
                        item, doc_id, fate, reason=reason, version=version, size=size
                    )
                    out.append({op: {"_index": index, "_id": doc_id, **failure}})
                    continue
                version = (version or 0) + 1
                versions[(index, doc_id)] = version
                status, result = (201, "created") if version == 1 else (200, "updated")
                out.append({op: {"_index": index, "_id": doc_id, "_version": version,
                    "result": result, "_shards": {"total": 2, "successful": 1, "failed": 0},
                    "_seq_no": next(seq), "_primary_term": 1, "status": status}})  # fmt: skip
                stored.append(item if doc_id is item["_id"] else {**item, "_id": doc_id})
        took = int((time.monotonic() - started) * 1000)
        errors = len(stored) < len(out)  # every item not stored is an error item
        payload: Any = {"took": took, "errors": errors, "items": out}
        paths = dict(parse_qsl(request.query, keep_blank_values=True)).get("filter_path")
        if paths:
            payload = filter_path(payload, paths)
        answer = json_answer(200, payload)
        if play is not None and play.kind == "answer_lost":
            if play.params.get("cut"):
                return Answer(200, answer.body[: len(answer.body) // 2], answer.headers, stored)
            if play.params.get("pad"):
                body = answer.body + b" " * int(play.params["pad"])
                return Answer(200, body, answer.headers, stored)
            status = int(play.params.get("status", 502))
            text = b"<html><body><h1>502 Bad Gateway</h1></body></html>\n"
            return Answer(status, text, {"Content-Type": "text/html"}, stored)
        return Answer(answer.status, answer.body, answer.headers, stored)

    def _auto_id(self) -> str:
        raw = next(self._ids).to_bytes(15, "big")
        return base64.urlsafe_b64encode(raw).decode()


def _illegal(reason: str) -> Answer:
    return es_error(400, "illegal_argument_exception", reason)


#: The usual action line (logdrain's), read without the JSON parser: when it is
#: ASCII, json.loads would make just this of it (strings without escapes).
_PLAIN = re.compile(
    rb'\{"(create|index)":\{"_index":"([^"\\\x00-\x1f]*)","_id":"([^"\\\x00-\x1f]*)"\}\}'
)


def _action(line: bytes, number: int) -> tuple[str, dict[str, Any]] | Answer:
    """An action line's action and metadata, or the error answer."""
    plain = _PLAIN.fullmatch(line)
    if plain is not None and line.isascii():
        return plain[1].decode(), {"_index": plain[2].decode(), "_id": plain[3].decode()}
    try:
        action = _loads(line)
    except ValueError:
        return es_error(400, "x_content_parse_exception",
                        f"[{number}:1] Unexpected character in action/metadata line")  # fmt: skip
    malformed = f"Malformed action/metadata line [{number}], expected"
    if not isinstance(action, dict) or len(action) != 1:
        found = "START_ARRAY" if isinstance(action, list) else "VALUE_STRING"
        if isinstance(action, dict):
            found = "END_OBJECT" if not action else "FIELD_NAME"
        return _illegal(f"{malformed} START_OBJECT or END_OBJECT but found [{found}]")
    ((op, meta),) = action.items()
    if op not in _ACTIONS:
        return _illegal(f"{malformed} one of [create, delete, index, update] but found [{op}]")
    if op in ("delete", "update"):
        return _illegal(f"logdrain strict fake: [{op}] actions are not implemented")
    if not isinstance(meta, dict):
        return _illegal(f"{malformed} START_OBJECT but found [VALUE_STRING]")
    for key in meta:
        if key not in _PARAMS:
            return _illegal(
                f"Action/metadata line [{number}] contains an unknown parameter [{key}]"
            )
    return op, meta


def _failure(
    item: dict[str, Any], doc_id: str, fate: str | None, *, reason: str, version: int | None,
    size: int,
) -> dict[str, Any]:  # fmt: skip
    """The ``status`` and ``error`` of an item that is not stored (``size``: its source line's)."""
    index = item["_index"]
    if fate == "rejected":
        return {"status": 429, "error": {
            "type": "es_rejected_execution_exception",
            "reason": "rejected execution of coordinating operation "
            f"[coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes={size}, "
            f"coordinating_operation_bytes={size}, "
            "max_coordinating_and_primary_bytes=0]"}}  # fmt: skip
    if fate == "unavailable":
        return {"status": 503, "error": {"type": "unavailable_shards_exception",
            "reason": f"[{index}][0] primary shard is not active Timeout: [1m]"}}  # fmt: skip
    if item["source"] is None or fate == "mapper_parsing":
        why = reason if fate == "mapper_parsing" else "failed to parse"
        return {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": why}}
    return {"status": 409, "error": {"type": "version_conflict_engine_exception",
        "reason": f"[{doc_id}]: version conflict, document already exists "
        f"(current version [{version}])",
        "index_uuid": _INDEX_UUID, "shard": "0", "index": index}}  # fmt: skip


def _fates(play: Play | None, size: int) -> dict[int, str]:
    """Position -> ``rejected`` / ``mapper_parsing`` / ``unavailable`` for a play."""
    if play is None or play.kind not in ("rejected", "mapper_parsing", "items"):
        return {}
    if play.kind != "items":
        return {int(n): play.kind for n in play.params.get("items", range(size))}
    fates: dict[int, str] = {}
    for kind in ("rejected", "mapper_parsing", "unavailable"):
        fates.update((int(n), kind) for n in play.params.get(kind, ()))
    return fates
