"""A strict corporate collector from our users' reports, on 127.0.0.1.

It wants one JSON object per POST holding exactly ``bucket`` (which must be
the expected one) and ``payload`` (the record, JSON-encoded as a string),
``Authorization: Bearer <token>``, and a record with only the allowed fields.
Any deviation is answered 404 with a body naming it, as the real one does.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ALLOWED = {"ts", "severity", "msg", "service"}


class PickyCollector:
    def __init__(self, bucket: str, token: str) -> None:
        self.bucket = bucket
        self.token = token
        self.accepted: list[dict[str, Any]] = []
        self.refusals: list[str] = []
        self.cond = threading.Condition()
        picky = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                problem = picky.check(self.headers.get("Authorization", ""), body)
                status, answer = (404, problem.encode()) if problem else (200, b"{}")
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1/logs"

    def check(self, authorization: str, body: bytes) -> str | None:
        problem = self._problem(authorization, body)
        with self.cond:
            if problem:
                self.refusals.append(problem)
            self.cond.notify_all()
        return problem

    def _problem(self, authorization: str, body: bytes) -> str | None:
        if authorization != f"Bearer {self.token}":
            return "not found (auth)"
        try:
            doc = json.loads(body)
        except ValueError:
            return "not found: body is not JSON"
        if not isinstance(doc, dict):
            return "not found: expected one object"
        unexpected = set(doc) - {"bucket", "payload"}
        if unexpected:
            return f"not found: unexpected field {sorted(unexpected)[0]}"
        if doc.get("bucket") != self.bucket:
            return f"not found: bucket {doc.get('bucket')!r}"
        if not isinstance(doc.get("payload"), str):
            return "not found: payload must be a JSON string"
        record = json.loads(doc["payload"])
        extra = set(record) - ALLOWED
        if extra:
            return f"not found: unexpected field {sorted(extra)[0]}"
        with self.cond:
            self.accepted.append(record)
        return None

    def wait_for(self, n_accepted: int, n_refused: int = 0, timeout: float = 30.0) -> bool:
        with self.cond:
            return self.cond.wait_for(
                lambda: len(self.accepted) >= n_accepted and len(self.refusals) >= n_refused,
                timeout,
            )

    def __enter__(self) -> PickyCollector:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
