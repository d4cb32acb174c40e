"""Step 5, the proxy's CONNECT: a tunnel, 407 (with the schemes the proxy
offers: Basic, or NTLM/Negotiate and the advice that fits), 403, or a proxy
that does not answer. :func:`open_tunnel` is also how the TLS step reaches
the collector."""

from __future__ import annotations

import base64
import socket
from urllib.parse import unquote, urlsplit

from ...config import mask_url
from ._network import Route, connect
from ._report import Check

#: Bytes of a CONNECT answer's head read at most.
_HEAD_CAP = 16 * 1024


class TunnelRefused(Exception):
    """The proxy answered CONNECT with a refusal: ``check`` says which and the fix."""

    def __init__(self, check: Check) -> None:
        super().__init__(check.evidence)
        self.check = check


def _proxy_auth(proxy: str) -> str | None:
    parts = urlsplit(proxy)
    if parts.username is None and parts.password is None:
        return None
    raw = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    return "Basic " + base64.b64encode(raw.encode()).decode()


def _read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < _HEAD_CAP:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def open_tunnel(route: Route) -> socket.socket:
    """A socket to the collector: direct, or through the proxy's CONNECT.
    Raises OSError (no connection) or :class:`TunnelRefused` (the proxy said no)."""
    sock = connect(route)
    if not (route.via_proxy and route.scheme == "https"):
        return sock
    proxy = route.proxy or ""
    target = f"{route.host}:{route.port}"
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
    auth = _proxy_auth(proxy)
    if auth:
        lines.append(f"Proxy-Authorization: {auth}")
    try:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head = _read_head(sock)
    except OSError:
        sock.close()
        raise
    check = judge_connect(head, route, given=auth is not None)
    if check.status != "PASS":
        sock.close()
        raise TunnelRefused(check)
    return sock


def _schemes(headers: list[tuple[str, str]]) -> list[str]:
    found = []
    for name, value in headers:
        if name.lower() == "proxy-authenticate":
            for piece in value.split(","):
                word = piece.strip().split(" ", 1)[0]
                if word and "=" not in word:
                    found.append(word)
    return list(dict.fromkeys(found))


def judge_connect(head: bytes, route: Route, *, given: bool) -> Check:
    shown = mask_url(route.proxy or "")
    target = f"{route.host}:{route.port}"
    text = head.decode("latin-1", "replace")
    status_line, _, rest = text.partition("\r\n")
    words = status_line.split(" ", 2)
    if len(words) < 2 or not words[1].isdigit():
        return Check(
            "connect",
            "FAIL",
            f"proxy {shown} closed the connection without answering CONNECT {target}",
            "check that proxy= names an HTTP proxy (not the collector, not a SOCKS port)",
        )
    status, reason = int(words[1]), (words[2] if len(words) > 2 else "").strip()
    headers = [
        (name.strip(), value.strip())
        for name, sep, value in (line.partition(":") for line in rest.split("\r\n"))
        if sep
    ]
    if 200 <= status < 300:
        return Check("connect", "PASS", f"proxy {shown} opened a tunnel to {target} ({status})")
    if status in (401, 407):
        schemes = _schemes(headers)
        offered = ", ".join(schemes) or "no scheme named"
        basic = any(s.lower() == "basic" for s in schemes)
        windows = [s for s in schemes if s.lower() in ("ntlm", "negotiate", "kerberos")]
        if given and basic:
            return Check(
                "connect",
                "FAIL",
                f"proxy {shown} refused the credentials ({status} {reason}; offers {offered})",
                "check user and password in proxy= (percent-encode : / @ ? # in the password)",
            )
        if basic:
            return Check(
                "connect",
                "FAIL",
                f"proxy {shown} wants credentials ({status} {reason}; offers {offered})",
                "put them in the proxy URL: proxy='http://USER:PASSWORD@host:port' "
                "(or in HTTPS_PROXY)",
            )
        if windows:
            return Check(
                "connect",
                "FAIL",
                f"proxy {shown} wants Windows sign-in ({status}; offers only {offered})",
                "logdrain speaks Basic only: run a local relay that signs in for you "
                "(cntlm or px for NTLM, px for Negotiate/Kerberos) and set "
                "proxy='http://127.0.0.1:3128', or ask for a Basic or allow-listed proxy port",
            )
        return Check(
            "connect",
            "FAIL",
            f"proxy {shown} wants credentials ({status} {reason}; offers {offered})",
            "ask the proxy's admins which sign-in it takes; logdrain speaks Basic",
        )
    if status == 403:
        return Check(
            "connect",
            "FAIL",
            f"proxy {shown} forbids the tunnel to {target} (403 {reason}): "
            "a policy, not credentials",
            f"ask the proxy's admins to allow CONNECT to {target}, or bypass it with "
            "no_proxy= if the collector is reachable directly",
        )
    return Check(
        "connect",
        "FAIL",
        f"proxy {shown} could not open a tunnel to {target} ({status} {reason})",
        "the proxy cannot reach the collector: check the host and port in url=",
    )


def check_connect(route: Route) -> Check:
    if not route.via_proxy:
        return Check("connect", "SKIP", "no proxy: nothing to tunnel through")
    if route.scheme != "https":
        return Check(
            "connect",
            "SKIP",
            "plain http:// goes through the proxy without a tunnel (see step record)",
        )
    try:
        sock = open_tunnel(route)
    except TunnelRefused as refused:
        return refused.check
    except OSError as exc:
        return Check(
            "connect",
            "FAIL",
            f"proxy {mask_url(route.proxy or '')}: {exc.strerror or exc} during CONNECT",
            "check that proxy= names a running HTTP proxy",
        )
    sock.close()
    return Check(
        "connect",
        "PASS",
        f"proxy {mask_url(route.proxy or '')} opened a tunnel to {route.host}:{route.port}",
    )
