"""Steps 2 to 4: which proxy applies and why, DNS of the host actually dialled,
and TCP connect (the proxy's CONNECT is in ``_tunnel``)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ...config import Settings, mask_url
from ._report import Check


@dataclass
class Route:
    """Where the bytes go: the collector, and the host dialled (the proxy's or
    the collector's), once DNS has answered."""

    scheme: str
    host: str
    port: int
    proxy: str | None
    dial_host: str
    dial_port: int
    addresses: list[tuple[str, int]]
    timeout: float

    @property
    def via_proxy(self) -> bool:
        return self.proxy is not None


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def route_for(s: Settings, proxy: str | None) -> Route:
    parts = urlsplit(s.url)
    scheme = parts.scheme
    host, port = parts.hostname or "", parts.port or _default_port(scheme)
    dial_host, dial_port = host, port
    if proxy:
        pparts = urlsplit(proxy)
        dial_host, dial_port = pparts.hostname or "", pparts.port or 80
    return Route(scheme, host, port, proxy, dial_host, dial_port, [], s.connect_timeout)


# -- step 2: proxy ---------------------------------------------------------------


def _env_value(environ: Mapping[str, str], name: str) -> tuple[str, str] | None:
    for variable in (name.lower(), name.upper()):
        if environ.get(variable):
            return variable, environ[variable]
    return None


def check_proxy(s: Settings, proxy: str | None, source: str, environ: Mapping[str, str]) -> Check:
    host = urlsplit(s.url).hostname or ""
    scheme = urlsplit(s.url).scheme
    if s.proxy is not None:
        if not s.proxy:
            return Check("proxy", "PASS", f"none: proxy='' ({source}) connects directly")
        if proxy is None:
            return Check(
                "proxy",
                "PASS",
                f"direct: {host} matches no_proxy={s.no_proxy!r}; proxy= is bypassed",
            )
        return _proxy_check(proxy, f"proxy= ({source})", scheme)
    if not s.trust_env:
        return Check("proxy", "PASS", "direct: trust_env is false, so no proxy variable applies")
    variable = None
    for name in (f"{scheme}_proxy", "all_proxy"):
        variable = _env_value(environ, name)
        if variable:
            break
    if variable is None:
        return Check(
            "proxy", "PASS", f"direct: no proxy= and no {scheme.upper()}_PROXY or ALL_PROXY set"
        )
    if proxy is None:
        no_proxy = s.no_proxy or (_env_value(environ, "no_proxy") or ("", ""))[1]
        where = "no_proxy=" if s.no_proxy else "NO_PROXY"
        return Check(
            "proxy",
            "PASS",
            f"direct: {host} is bypassed by {where} {no_proxy!r} (though {variable[0]} is set)",
        )
    return _proxy_check(proxy, f"the environment ({variable[0]})", scheme)


def _proxy_check(proxy: str, why: str, scheme: str) -> Check:
    pscheme = urlsplit(proxy).scheme.lower()
    shown = mask_url(proxy)
    if pscheme not in ("http", "https"):
        return Check(
            "proxy",
            "FAIL",
            f"{shown} from {why}: a {pscheme}:// proxy is not supported",
            "use an http:// proxy URL (a SOCKS proxy needs a local HTTP relay)",
        )
    how = "through a CONNECT tunnel" if scheme == "https" else "as absolute-form requests"
    return Check("proxy", "PASS", f"{shown} from {why}, {how}")


# -- step 3: DNS -----------------------------------------------------------------


def check_dns(route: Route) -> Check:
    what = "the proxy" if route.via_proxy else "the collector"
    try:
        infos = socket.getaddrinfo(route.dial_host, route.dial_port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        field = "proxy=" if route.via_proxy else "url="
        fix = f"check the host name in {field}"
        if not route.via_proxy:
            fix += " (if only your proxy can resolve outside names, set proxy= or HTTPS_PROXY)"
        return Check(
            "dns",
            "FAIL",
            f"{what} {route.dial_host!r} does not resolve: {exc.args[-1] if exc.args else exc}",
            fix,
        )
    route.addresses = list(dict.fromkeys((str(info[4][0]), route.dial_port) for info in infos))
    shown = ", ".join(address for address, _ in route.addresses[:4])
    return Check("dns", "PASS", f"{what} {route.dial_host} -> {shown}")


# -- step 4: TCP -----------------------------------------------------------------


def connect(route: Route) -> socket.socket:
    """A TCP connection to the first address that answers (the last error otherwise)."""
    error: OSError | None = None
    for address in route.addresses or [(route.dial_host, route.dial_port)]:
        try:
            return socket.create_connection(address, timeout=route.timeout)
        except OSError as exc:
            error = exc
    raise error if error is not None else OSError(f"no address for {route.dial_host}")


def check_tcp(route: Route) -> Check:
    what = "the proxy" if route.via_proxy else "the collector"
    where = f"{route.dial_host}:{route.dial_port}"
    try:
        sock = connect(route)
    except TimeoutError:
        return Check(
            "tcp",
            "FAIL",
            f"{what} {where}: no answer within connect_timeout ({route.timeout:g} s)",
            "a firewall drops the packets, or the host is down: check the port, and whether "
            "this network needs a proxy (proxy= or HTTPS_PROXY)",
        )
    except ConnectionRefusedError:
        fix = (
            f"the proxy at {where} is not listening (down?): check proxy= / HTTPS_PROXY"
            if route.via_proxy
            else f"nothing listens on {where}: check the port in url= and that the collector runs"
        )
        return Check("tcp", "FAIL", f"{what} {where} refused the connection", fix)
    except OSError as exc:
        return Check(
            "tcp",
            "FAIL",
            f"{what} {where}: {exc.strerror or exc}",
            "check the host and port, and the route to it",
        )
    with contextlib.closing(sock):
        local = sock.getsockname()
    return Check("tcp", "PASS", f"connected to {what} {where} (from {local[0]})")
