"""Django: request fields on every record logged during a request.

``RequestContextMiddleware`` (add it near the top of ``MIDDLEWARE``) binds
``request_id``, ``http_method`` and ``http_path`` with :func:`logdrain.bind`
for the request's duration: every record logged meanwhile carries them,
stdlib and structlog alike, in whatever thread or task serves it. The request
id is the incoming ``X-Request-ID`` header when it is a plain short token
(letters, digits, ``-_.:``, at most 128), else a fresh one; the response
carries it back in ``X-Request-ID``.

``RequestFilter`` (a ``logging.Filter``: put it on the DrainHandler) adds, to
the records it sees:

- ``user_id``: the authenticated user's primary key, only when the request's
  user was already loaded (``request.user`` was read before the log call): a
  log call never runs a database query;
- for ``django.request`` (and ``django.server``) records, whose ``request``
  attribute is the request object: ``http_method``, ``http_path``,
  ``http_status`` (the record's ``status_code``), ``user_agent``,
  ``remote_addr`` and the request id, and ``request`` becomes ``None`` so its
  repr does not ship. Header values other than the user agent never ship
  (``Authorization`` and ``Cookie`` included).
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

from ..context import bind, unbind

_REQUEST: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "logdrain_django_request", default=None
)
_PLAIN_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
HEADER = "X-Request-ID"


def request_id(request: Any) -> str:
    """The request's id: its ``X-Request-ID`` when plain, else a new one."""
    given = getattr(request, "headers", {}).get(HEADER)
    if isinstance(given, str) and _PLAIN_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """Binds the request's id, method and path for the request's duration."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        rid = request_id(request)
        request.logdrain_request_id = rid
        token = bind(request_id=rid, http_method=request.method, http_path=request.path)
        current = _REQUEST.set(request)
        try:
            response = self.get_response(request)
        finally:
            _REQUEST.reset(current)
            unbind(token)
        if HEADER not in response:
            response[HEADER] = rid
        return response


def _user_id(request: Any) -> Any:
    """The loaded user's pk, or None: ``request.user`` is lazy, and reading it
    first would query the database; Django keeps a loaded one in ``_cached_user``."""
    user = getattr(request, "__dict__", {}).get("_cached_user")
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return getattr(user, "pk", None)


def _client(request: Any) -> tuple[Any, Any]:
    meta = getattr(request, "META", {})
    return meta.get("HTTP_USER_AGENT"), meta.get("REMOTE_ADDR")


class RequestFilter(logging.Filter):
    """Adds request fields to records (see the module's doc); never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            attrs = record.__dict__
            request = attrs.get("request")
            if request is not None and hasattr(request, "method"):  # django.request's own
                agent, addr = _client(request)
                attrs.setdefault("http_method", request.method)
                attrs.setdefault("http_path", getattr(request, "path", None))
                if "status_code" in attrs:
                    attrs.setdefault("http_status", attrs["status_code"])
                attrs.setdefault("user_agent", agent)
                attrs.setdefault("remote_addr", addr)
                rid = getattr(request, "logdrain_request_id", None)
                if rid is not None:
                    attrs.setdefault("request_id", rid)
                attrs["request"] = None  # its repr would ship otherwise
            else:
                request = _REQUEST.get()
            if request is not None and "user_id" not in attrs:
                user = _user_id(request)
                if user is not None:
                    attrs["user_id"] = user
        except Exception:  # noqa: BLE001, S110 - a filter must never lose the record
            pass
        return True
