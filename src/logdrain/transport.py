"""HTTP delivery of one body, one attempt at a time, over a ``requests.Session``.

urllib3's own retries and redirects are off: the one retry layer is
``shipping.py``'s. An attempt has a total deadline (``request_timeout``),
reads at most ``RESPONSE_CAP`` bytes of the answer, and hands the answer to
the preset's classifier; connection failures are transient, TLS failures
permanent. A shutdown cuts sleeps short and shuts open sockets, so a hung
request cannot outlive a close deadline.
"""

from __future__ import annotations

import contextlib
import gzip
import re
import ssl
import threading
import time
import weakref
import zlib
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import requests
import requests.auth
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from . import __about__
from .config import Settings, header_value_problem, mask_url
from .errors import DeliveryError, PermanentError, TransientError
from .presets import TRANSIENT_STATUSES, Answer, Verdict  # noqa: F401 - TRANSIENT_STATUSES re-exported
from .retry import parse_retry_after
from .trust import build_ssl_context, select_proxy
from .watchdog import Watchdog, shut, tracking_pools

_TUNNEL_REFUSED = re.compile(r"Tunnel connection failed: (\d{3})([^'\"),]*)")
BODY_EXCERPT = 200
#: Bytes of an answer's body read at most (counted before any decoding): an
#: excerpt is all the status-only verdict needs. Beyond it the connection is
#: dropped instead of read to its end (a 200 MB or endless answer costs this).
RESPONSE_CAP = 64 * 1024
#: gzip level for ``compress="gzip"`` (benchmarks/compression.py: level 1
#: already gets most of the ratio on log records, at a fraction of the CPU).
GZIP_LEVEL = 1


class Aborted(DeliveryError):
    """The drain's close deadline passed while this batch was being delivered."""

    def __init__(self) -> None:
        super().__init__("abandoned at the close deadline")


class Reply(NamedTuple):
    """An answer the transport did not turn into an error: the verdict
    (``delivered``, ``partial`` or ``split``), the status, and the start of
    the body, on one line."""

    verdict: Verdict
    status: int
    excerpt: str

    def describe(self) -> str:
        text = f"HTTP {self.status}: {self.verdict.reason or 'refused'}"
        return f"{text}: {self.excerpt!r}" if self.excerpt else text


class _Adapter(HTTPAdapter):
    """One retry layer (urllib3's retries off), sockets tracked for ``abort``,
    and logdrain's own SSLContext on every pool, so no ``verify=`` value (and no
    environment variable requests consults) can replace it."""

    def __init__(
        self, registry: weakref.WeakSet[Any], pool_size: int, ssl_context: ssl.SSLContext
    ) -> None:
        self._pool_classes = tracking_pools(registry)
        self._ssl_context = ssl_context
        super().__init__(
            pool_connections=1,
            pool_maxsize=pool_size,
            max_retries=Retry(
                total=0, redirect=False, raise_on_redirect=False, raise_on_status=False
            ),
        )

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pool_classes

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        manager.pool_classes_by_scheme = self._pool_classes
        return manager

    def build_connection_pool_key_attributes(  # type annotations differ across requests releases
        self, request: Any, verify: Any, cert: Any = None
    ) -> Any:
        host_params, _ = super().build_connection_pool_key_attributes(request, verify, cert)
        context = self._ssl_context
        cert_reqs = "CERT_NONE" if context.verify_mode == ssl.CERT_NONE else "CERT_REQUIRED"
        return host_params, {"ssl_context": context, "cert_reqs": cert_reqs}

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        """Leave the pool as built above. requests would set ``ca_certs`` to
        certifi (which urllib3 then loads into our SSLContext, undoing
        ca_mode='replace' and growing a caller's ssl_context) and force
        ``cert_reqs='CERT_REQUIRED'`` (undoing insecure=True)."""


class Transport:
    """Posts bodies for one Drain over one keep-alive ``requests.Session``."""

    def __init__(
        self,
        settings: Settings,
        *,
        content_type: str,
        on_secret: Callable[[str], None] = lambda value: None,
        response_cap: int | None = None,
    ) -> None:
        self._s = settings
        self._response_cap = settings.preset.response_cap if response_cap is None else response_cap
        self._classify = settings.preset.classify
        self._request_timeout = settings.request_timeout
        self._watchdog = Watchdog(settings.name)
        self._on_secret = on_secret
        self._content_type = content_type
        self.abort_event = threading.Event()
        self.deadline: float | None = None
        self._sockets: weakref.WeakSet[Any] = weakref.WeakSet()
        self._ssl_context = build_ssl_context(settings)
        proxy = select_proxy(settings)
        self.proxy = proxy
        self.proxy_shown = mask_url(proxy) if proxy else None
        self._proxies = {"http": proxy, "https": proxy} if proxy else {}
        self._token_lock = threading.Lock()
        self._token: str | None = settings.token
        self._gzip = settings.compress.strip().lower() == "gzip"
        self._pace_lock = threading.Lock()
        self._next_request = 0.0  # the preset's min_interval between requests
        #: Called with each answer read, and each error an attempt raises, on
        #: the sender thread (diagnostics: ``Drain.observe``); must not raise.
        self.observer: Callable[[Answer | BaseException], None] | None = None
        self.session = self._new_session()

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # the environment was consulted once, in trust.py
        adapter = _Adapter(self._sockets, self._s.concurrency + 1, self._ssl_context)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.proxies.update(self._proxies)
        session.headers["User-Agent"] = f"logdrain/{__about__.__version__}"
        session.headers["Content-Type"] = self._content_type
        session.headers["Accept-Encoding"] = "identity"  # answers are counted in raw bytes
        if self._gzip:
            session.headers["Content-Encoding"] = "gzip"
        session.headers.update(self._s.preset.headers(self._s.options))
        session.headers.update(self._s.headers)  # yours win
        if isinstance(self._s.auth, tuple):
            session.auth = requests.auth.HTTPBasicAuth(*self._s.auth)
        elif self._s.auth is not None:
            session.auth = self._s.auth
        return session

    # -- tokens --

    def _bearer(self, refresh: bool = False) -> dict[str, str]:
        """The token's header, in the preset's scheme (``Bearer`` unless it
        says otherwise): a static token, or the provider's, cached."""
        provider = self._s.token_provider
        if provider is None:
            return dict(self._s.preset.auth(self._token)) if self._token else {}
        with self._token_lock:
            if refresh or self._token is None:
                try:
                    token = provider()
                except Exception as exc:  # noqa: BLE001 - any provider failure is transient
                    raise TransientError(f"token_provider failed: {type(exc).__name__}") from None
                if not isinstance(token, str) or not token.strip():
                    raise PermanentError("token_provider returned no token (expected a string)")
                token = token.strip()  # read from a file, it often ends in a newline
                self._on_secret(token)  # redacted before anything can show it
                problem = header_value_problem(token, allow_tab=False)
                if problem:
                    raise PermanentError(f"token_provider returned a token that {problem}")
                self._token = token
            return dict(self._s.preset.auth(self._token))

    def reset_after_fork(self) -> None:
        """A forked child must not share the parent's sockets or events."""
        self.abort_event = threading.Event()
        self.deadline = None
        self._sockets = weakref.WeakSet()
        self._watchdog = Watchdog(self._s.name)
        self._token_lock = threading.Lock()
        self._pace_lock = threading.Lock()
        self._next_request = 0.0
        self.session = self._new_session()

    # -- one attempt --

    def remaining(self) -> float | None:
        if self.abort_event.is_set():
            raise Aborted
        if self.deadline is None:
            return None
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise Aborted
        return remaining

    def post_once(self, body: bytes, batch_id: str, count: int = 1, attempt: int = 1) -> Reply:
        """One POST of ``count`` records (the ``attempt``-th try of this
        body). Returns a ``delivered``, ``partial`` or ``split`` verdict;
        raises TransientError (retry) or PermanentError (rejected).

        With a ``token_provider``, a 401 fetches a fresh token and tries once
        more before the batch counts as rejected."""
        if self._gzip:
            body = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
        self._pace()
        answer = self._attempt(body, batch_id, self._bearer())
        if answer.status == 401 and self._s.token_provider is not None:
            answer = self._attempt(body, batch_id, self._bearer(refresh=True))
        return self._judge(answer._replace(sent=count, attempt=attempt))

    def _pace(self) -> None:
        """Keep the preset's ``min_interval`` between two requests of this
        drain (Slack's about one a second), whatever the sender."""
        interval = self._s.preset.min_interval
        if interval <= 0:
            return
        with self._pace_lock:
            now = time.monotonic()
            start = max(now, self._next_request)
            self._next_request = start + interval
        if start > now:
            if self.deadline is not None and start >= self.deadline:
                raise Aborted
            self.sleep(start - now)

    def _attempt(self, body: bytes, batch_id: str, auth: dict[str, str]) -> Answer:
        """One request under one total deadline (``request_timeout``, and
        never past the close deadline): status, headers and at most
        ``response_cap`` bytes of the body."""
        remaining = self.remaining()
        total = (
            self._request_timeout if remaining is None else min(self._request_timeout, remaining)
        )
        attempt = self._watchdog.begin(time.monotonic() + total)
        try:
            try:
                response = self._post(body, batch_id, auth, total)
                answer = self._read_answer(response)
            except (TransientError, PermanentError) as exc:
                # Whatever the cut socket looked like (a reset, a TLS error),
                # an attempt the deadline ended is a transient failure.
                error = self._expired(total) if attempt.expired else exc
                if self.observer is not None:
                    self.observer(error)
                if error is exc:
                    raise
                raise error from None
            if self.observer is not None:
                self.observer(answer)
            return answer
        finally:
            self._watchdog.end(attempt)

    def _expired(self, total: float) -> TransientError:
        self.remaining()  # the close deadline: Aborted, not a transient failure
        return TransientError(f"no complete answer within request_timeout ({total:.3g} s)")

    def _post(
        self, body: bytes, batch_id: str, auth: dict[str, str], total: float
    ) -> requests.Response:
        connect, read = min(self._s.connect_timeout, total), min(self._s.read_timeout, total)
        try:
            return self.session.post(
                self._s.url,
                data=body,
                headers={self._s.batch_id_header: batch_id, **auth},
                timeout=(connect, read),
                allow_redirects=False,
                stream=True,  # the body is read below, bounded
            )
        except requests.exceptions.SSLError as exc:
            self.remaining()
            raise PermanentError(f"TLS failure: {_exc_line(exc)}") from None
        except requests.exceptions.ProxyError as exc:
            tunnel = _TUNNEL_REFUSED.search(str(exc))
            if tunnel and tunnel.group(1) in ("401", "403", "407"):
                # tinyproxy says 401 where the standard says 407; both mean credentials.
                raise PermanentError(
                    f"proxy {self.proxy_shown} refused the credentials "
                    f"({tunnel.group(1)} {tunnel.group(2).strip()}); "
                    "check user and password in proxy="
                ) from None
            self.remaining()
            raise TransientError(f"proxy {self.proxy_shown}: {_exc_line(exc)}") from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            self.remaining()  # an abort shows up as a connection error: report it as one
            raise TransientError(_exc_line(exc)) from None
        except requests.exceptions.ChunkedEncodingError as exc:
            self.remaining()
            raise TransientError(_exc_line(exc)) from None
        except requests.RequestException as exc:
            self.remaining()
            raise PermanentError(_exc_line(exc)) from None

    def _read_answer(self, response: requests.Response) -> Answer:
        """Read at most ``response_cap`` raw bytes of the body (``identity``
        was asked for; a compressed answer is still counted before it is
        inflated). The connection is kept only when the whole body fit and
        arrived."""
        raw = response.raw
        cap = self._response_cap
        complete = False
        data = b""
        try:
            data = raw.read(cap + 1, decode_content=False)
            complete = len(data) <= cap
        except Exception:  # noqa: BLE001 - a body cut off or reset: the status still stands
            complete = False
        finally:
            if not complete:
                conn = getattr(raw, "connection", None) or getattr(raw, "_connection", None)
                shut(conn)
                with contextlib.suppress(Exception):
                    raw.close()
            with contextlib.suppress(Exception):
                raw.release_conn()
        self.remaining()
        encoding = response.headers.get("Content-Encoding", "")
        return Answer(
            response.status_code,
            response.reason or "",
            response.headers,
            _inflate(data[:cap], encoding, cap),
            complete,
        )

    def _judge(self, answer: Answer) -> Reply:
        """Apply the preset's verdict: raise TransientError (retry) or
        PermanentError (rejected), quoting the body, else return it. A 407
        is the proxy's answer, not the collector's."""
        if answer.status == 407:
            given = bool(self.proxy and urlsplit(self.proxy).password is not None)
            verdict = "refused the credentials" if given else "wants credentials"
            raise PermanentError(
                f"proxy {self.proxy_shown} {verdict} (407); check user:pass in proxy=",
                407,
                _excerpt(answer.body),
            )
        judged = self._classify(answer)
        if judged.outcome == "delivered":
            return Reply(judged, answer.status, "")
        excerpt = _excerpt(answer.body)
        if judged.outcome in ("partial", "split"):
            return Reply(judged, answer.status, excerpt)
        if judged.outcome == "retry":
            retry_after = parse_retry_after(answer.headers.get("Retry-After"))
            if judged.retry_after is not None:
                retry_after = max(retry_after or 0.0, judged.retry_after)
            raise TransientError(judged.reason, answer.status, excerpt, retry_after)
        raise PermanentError(judged.reason, answer.status, excerpt)

    # -- waiting --

    def sleep(self, seconds: float) -> None:
        """Sleep, cut short (raising Aborted) when the drain is aborted."""
        if self.abort_event.wait(seconds):
            raise Aborted

    def abort(self) -> None:
        """Cut backoff sleeps short and shut every open socket."""
        self.abort_event.set()
        for conn in list(self._sockets):
            shut(conn)

    def close(self) -> None:
        self._watchdog.close()
        self.session.close()


def _excerpt(body: bytes) -> str:
    """The start of a refusal's body, on one line, for the stderr report."""
    text = body[: BODY_EXCERPT * 4].decode("utf-8", "replace")
    return " ".join(text.split())[:BODY_EXCERPT]


def _inflate(data: bytes, encoding: str, cap: int) -> bytes:
    """``data`` decoded per ``Content-Encoding`` (gzip, deflate), at most
    ``cap`` bytes out: a small compressed answer cannot inflate past it."""
    encoding = encoding.strip().lower()
    if encoding not in ("gzip", "x-gzip", "deflate") or not data:
        return data
    try:
        return zlib.decompressobj(wbits=47).decompress(data, cap)  # gzip or zlib header
    except zlib.error:
        return data


def _exc_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{type(exc).__name__}: {text[:300]}"
