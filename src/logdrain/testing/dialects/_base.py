"""The strict fake's server side: a :class:`Collector` whose answers come from a dialect."""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .._collector import Collector
from .._faults import Fault
from .._http import HOST, Handler, RequestInfo, Scripted


@dataclass(frozen=True)
class Request:
    """One request as a dialect sees it (``headers`` keys are lower case)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Answer:
    """What the fake answers and which normalised records it stores."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    stored: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Play:
    """One scripted product answer, queued by :meth:`StrictCollector.play`."""

    kind: str
    params: dict[str, Any]


@dataclass
class Batch:
    """A request that passed the dialect's request-level checks, parsed."""

    items: list[Any]
    #: The normalised records, as stored if every item were accepted.
    records: list[dict[str, Any]]
    size: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def json_answer(status: int, payload: Any, headers: dict[str, str] | None = None) -> Answer:
    body = json.dumps(payload, separators=(",", ":")).encode()
    out = {"Content-Type": "application/json; charset=UTF-8", **(headers or {})}
    return Answer(status, body, out)


def text_answer(status: int, text: str) -> Answer:
    """Go's ``http.Error``: text/plain, a trailing newline."""
    body = (text + "\n").encode() if text else b""
    return Answer(status, body, {"Content-Type": "text/plain; charset=utf-8"} if text else {})


class Dialect:
    """A product's intake rules.  Subclasses implement the three methods below."""

    name = "dialect"
    #: The main intake path (``StrictCollector.url`` points at it).
    path = "/"
    #: Play kinds this dialect accepts, with their allowed parameters.
    plays: ClassVar[dict[str, frozenset[str]]] = {}

    def check(self, request: Request) -> Answer | Batch:
        """Request-level validation: an error :class:`Answer`, or the parsed batch."""
        raise NotImplementedError

    def accept(self, request: Request, batch: Batch, play: Play | None) -> Answer:
        """Ingest a valid batch (applying ``play`` if one is due) and answer."""
        raise NotImplementedError

    def make_play(self, kind: str, params: dict[str, Any]) -> Play:
        if kind not in self.plays:
            raise ValueError(f"{self.name}: unknown play {kind!r}; known: {sorted(self.plays)}")
        unknown = set(params) - self.plays[kind]
        if unknown:
            raise TypeError(f"{self.name}: play {kind!r} takes no {sorted(unknown)}")
        return Play(kind, dict(params))


class StrictCollector(Collector):
    """A :class:`Collector` that speaks one product's intake API, strictly.

    ``dialect`` (a :class:`~logdrain.testing.dialects.Loki`,
    :class:`~logdrain.testing.dialects.Elasticsearch` or
    :class:`~logdrain.testing.dialects.SplunkHEC`) validates every request and
    answers as the product does.  :attr:`records` holds the normalised
    entries/documents/events the product would have stored (including the
    stored part of a partly rejected request); :attr:`requests` every request.

    One FIFO serves :meth:`play` (the dialect's own scripted answers) and the
    inherited :meth:`script` / :meth:`fault`; an entry is taken by the next
    request that passes the request-level checks (an invalid request gets its
    error and leaves the FIFO alone).  :meth:`hang`, :attr:`delay`,
    :meth:`down` and :meth:`up` work as on :class:`Collector`.
    """

    def __init__(self, dialect: Dialect, *, port: int = 0, tls: ssl.SSLContext | None = None):
        super().__init__(dialect.path, port=port, tls=tls)
        self.dialect = dialect

    def __enter__(self) -> StrictCollector:
        self.start()
        return self

    def __repr__(self) -> str:
        state = "listening" if self._server is not None else "not listening"
        return f"<StrictCollector {self.dialect.name} {state} records={self.count}>"

    @property
    def base_url(self) -> str:
        """``http(s)://127.0.0.1:<port>``, without a path."""
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://{HOST}:{self.port}"

    def play(self, kind: str, *, times: int = 1, **params: Any) -> None:
        """Queue ``times`` scripted product answers of ``kind`` (see the dialect's doc)."""
        item = self.dialect.make_play(kind, params)
        with self._cond:
            self._scripted.extend([item] * times)  # type: ignore[list-item]

    def _handle(self, handler: Handler, body: bytes) -> None:
        path, _, query = handler.path.partition("?")
        headers = {k.lower(): v for k, v in handler.headers.items()}
        request = Request(handler.command, path, query, headers, body)

        def info(status: int, count: int = 0) -> RequestInfo:
            return RequestInfo(
                handler.command, handler.path, dict(handler.headers.items()), body, status, count
            )

        if self._hanging:
            self._record(info(0))
            self._pause(None)
            handler.close_connection = True
            return
        if self.delay > 0 and not self._pause(self.delay):
            handler.close_connection = True
            return

        checked = self.dialect.check(request)
        if isinstance(checked, Answer):
            self._answer(handler, info(checked.status), checked)
            return
        with self._cond:
            entry: Any = self._scripted.popleft() if self._scripted else None
        if isinstance(entry, Fault):
            self._run_fault(handler, entry, checked.records, info(0, checked.size), None)
            return
        if isinstance(entry, Scripted):
            answer = Answer(entry.status, entry.body, entry.headers)
        else:
            answer = self.dialect.accept(request, checked, entry)
        self._answer(handler, info(answer.status, checked.size), answer)

    def _answer(self, handler: Handler, request: RequestInfo, answer: Answer) -> None:
        self._record(request, answer.stored or None)
        handler._answer(answer.status, answer.headers, answer.body)
