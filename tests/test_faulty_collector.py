"""The fault-injecting side of logdrain.testing.Collector, seen from plain clients.

Each fault is observed on 127.0.0.1 with a raw socket or http.client (never
logdrain), with socket timeouts on every read so a broken fault fails instead
of hanging.
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from logdrain.testing import BATCH_ID_HEADER, Collector

pytestmark = pytest.mark.timeout(60)

_TIMEOUT = 10.0  # cap on any single client read; generous, never a measured duration
_FAST = 0.01  # trickle interval in these tests


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector() as c:
        yield c


def _body(n: int) -> bytes:
    return json.dumps([{"msg": f"record {i}", "seq": i} for i in range(n)]).encode()


def _raw_request(n: int = 3, *, body: bytes | None = None) -> bytes:
    payload = _body(n) if body is None else body
    head = (
        "POST /ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"{BATCH_ID_HEADER}: b-1\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


def _connect(c: Collector) -> socket.socket:
    return socket.create_connection(("127.0.0.1", c.port), timeout=_TIMEOUT)


def _http(c: Collector) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", c.port, timeout=_TIMEOUT)


def _post(conn: http.client.HTTPConnection, n: int = 3) -> http.client.HTTPResponse:
    headers = {"Content-Type": "application/json", BATCH_ID_HEADER: "b-1"}
    conn.request("POST", "/ingest", body=_body(n), headers=headers)
    return conn.getresponse()


def _read_until(sock: socket.socket, marker: bytes) -> tuple[bytes, int]:
    """Read until ``marker`` is in the data; (data, number of non-empty reads)."""
    data, reads = b"", 0
    while marker not in data:
        piece = sock.recv(65536)
        assert piece, f"connection closed after {data!r}"
        data, reads = data + piece, reads + 1
    return data, reads


def _read_exactly(sock: socket.socket, n: int) -> tuple[bytes, int]:
    data, reads = b"", 0
    while len(data) < n:
        piece = sock.recv(n - len(data))
        assert piece, f"connection closed after {data!r}"
        data, reads = data + piece, reads + 1
    return data, reads


def _read_until_error(sock: socket.socket) -> tuple[bytes, BaseException | None]:
    """Read until EOF (None) or an error (returned); the data read before it."""
    data = b""
    while True:
        try:
            piece = sock.recv(65536)
        except OSError as exc:
            return data, exc
        if not piece:
            return data, None
        data += piece


# ---------------------------------------------------------------- each fault


def test_trickle_status_sends_head_byte_by_byte(collector: Collector) -> None:
    collector.fault("trickle_status", interval=_FAST)
    with _connect(collector) as sock:
        sock.sendall(_raw_request(3))
        head, reads = _read_until(sock, b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert reads >= 20, reads  # sent at once, it would come in one or two reads
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        rest = head.split(b"\r\n\r\n", 1)[1]
        body, _ = _read_exactly(sock, length - len(rest))
        assert json.loads(rest + body) == {"accepted": 3}
    assert [r.status for r in collector.requests] == [200]
    assert collector.count == 3  # 2xx: ingested
    assert collector.batch_ids == ["b-1"]


def test_trickle_body_content_length(collector: Collector) -> None:
    collector.fault("trickle_body", interval=_FAST, body=b"0123456789" * 4)
    with _connect(collector) as sock:
        sock.sendall(_raw_request(2))
        head, _ = _read_until(sock, b"\r\n\r\n")
        assert b"Content-Length: 40\r\n" in head
        assert head.endswith(b"\r\n\r\n")  # the head came at once, no body byte yet
        body, reads = _read_exactly(sock, 40)
        assert body == b"0123456789" * 4
        assert reads >= 10, reads


def test_trickle_body_chunked(collector: Collector) -> None:
    collector.fault("trickle_body", interval=_FAST, body=b"abcdefghijklmnopqrst", chunked=True)
    expected = b"".join(b"1\r\n%c\r\n" % b for b in b"abcdefghijklmnopqrst") + b"0\r\n\r\n"
    with _connect(collector) as sock:
        sock.sendall(_raw_request(2))
        head, _ = _read_until(sock, b"\r\n\r\n")
        assert b"Transfer-Encoding: chunked\r\n" in head
        body, reads = _read_exactly(sock, len(expected) - len(head.split(b"\r\n\r\n", 1)[1]))
        assert head.split(b"\r\n\r\n", 1)[1] + body == expected
        assert reads >= 5, reads


def test_huge_body(collector: Collector) -> None:
    size = 20 * 1024 * 1024 + 7
    collector.fault("huge_body", size=size, status=503)
    conn = _http(collector)
    try:
        resp = _post(conn)
        assert resp.status == 503
        assert resp.getheader("Content-Length") == str(size)
        total = 0
        while chunk := resp.read(1 << 20):
            assert chunk.count(b"x") == len(chunk)
            total += len(chunk)
        assert total == size
    finally:
        conn.close()
    assert collector.count == 0  # not 2xx: nothing stored
    # Complete answer: the connection was kept, and is closed once the client closes it.
    assert collector.wait_for(lambda c: c.open_connections == 0, timeout=_TIMEOUT)


def test_endless_body_keeps_going_until_client_leaves(
    collector: Collector, capfd: pytest.CaptureFixture[str]
) -> None:
    collector.fault("endless_body")
    conn = _http(collector)
    try:
        resp = _post(conn)
        assert resp.status == 200
        assert resp.getheader("Transfer-Encoding") == "chunked"
        total = 0
        while total < 30 * 1024 * 1024:
            chunk = resp.read(1 << 20)
            assert len(chunk) == 1 << 20  # never short: the body does not end
            total += len(chunk)
        assert collector.open_connections == 1
    finally:
        conn.close()
    assert collector.wait_for(lambda c: c.open_connections == 0, timeout=_TIMEOUT)
    assert collector.connections == 1
    assert "Traceback" not in capfd.readouterr().err


def test_cut_chunked_raises_incomplete_read(collector: Collector) -> None:
    collector.fault("cut_chunked", status=503)
    conn = _http(collector)
    try:
        resp = _post(conn)
        assert resp.status == 503
        with pytest.raises(http.client.IncompleteRead) as info:
            resp.read()
        assert info.value.partial.startswith(b'{"error": 503}')
    finally:
        conn.close()
    assert [r.status for r in collector.requests] == [503]
    assert collector.count == 0


def test_reset_without_answer(collector: Collector) -> None:
    collector.fault("reset")
    with _connect(collector) as sock:
        sock.sendall(_raw_request(3))
        data, error = _read_until_error(sock)
    assert data == b""
    assert isinstance(error, ConnectionResetError), error
    assert [(r.method, r.status, r.record_count) for r in collector.requests] == [("POST", 0, 3)]
    assert collector.count == 0


def test_reset_mid_answer(collector: Collector) -> None:
    collector.fault("reset", after=20)
    with _connect(collector) as sock:
        sock.sendall(_raw_request(3))
        data, error = _read_until_error(sock)
    assert isinstance(error, ConnectionResetError), error
    assert len(data) <= 20
    assert b"HTTP/1.1 200 OK\r\nServer: logdrain"[: len(data)] == data
    assert [r.status for r in collector.requests] == [200]
    assert collector.count == 3  # 2xx status sent: ingested before the reset


def test_silent_fresh_connection_reads_nothing(collector: Collector) -> None:
    collector.fault("silent")
    big = _raw_request(body=b"[" + b" " * (32 * 1024 * 1024) + b"]")
    with _connect(collector) as sock:
        sock.settimeout(1.0)
        # Not reading: the kernel buffers fill and the send cannot complete.
        with pytest.raises(TimeoutError):
            sock.sendall(big)
        assert collector.wait_for(lambda c: len(c.requests) == 1, timeout=_TIMEOUT)
        with pytest.raises(TimeoutError):
            sock.recv(1)
        assert collector.open_connections == 1
        # Unsent bytes hold the client's FIN back for good: only a reset gets through.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    info = collector.requests[0]
    assert (info.method, info.path, info.body, info.status) == ("", "", b"", 0)
    assert collector.wait_for(lambda c: c.open_connections == 0, timeout=_TIMEOUT)
    assert collector.count == 0


def test_silent_sees_the_client_leave(collector: Collector) -> None:
    collector.fault("silent")
    with _connect(collector) as sock:
        sock.sendall(_raw_request(3))
        assert collector.wait_for(lambda c: len(c.requests) == 1, timeout=_TIMEOUT)
        assert collector.open_connections == 1
    assert collector.wait_for(lambda c: c.open_connections == 0, timeout=_TIMEOUT)
    assert [r.status for r in collector.requests] == [0]


def test_silent_on_kept_alive_connection(collector: Collector) -> None:
    conn = _http(collector)
    try:
        assert _post(conn).read() == b'{"accepted": 3}'
        collector.fault("silent")
        assert conn.sock is not None
        conn.sock.settimeout(0.5)
        headers = {"Content-Type": "application/json"}
        conn.request("POST", "/ingest", body=_body(2), headers=headers)
        with pytest.raises(TimeoutError):
            conn.getresponse()
    finally:
        conn.close()
    assert [(r.method, r.status, r.record_count) for r in collector.requests] == [
        ("POST", 200, 3),
        ("POST", 0, 2),
    ]
    assert collector.connections == 1
    assert collector.count == 3


def test_partial_stores_keep_records(collector: Collector) -> None:
    collector.fault("partial", keep=4)
    conn = _http(collector)
    try:
        resp = _post(conn, 10)
        assert resp.status == 503
        assert resp.read() == b'{"error": 503}'
        assert _post(conn, 2).status == 200  # kept alive, and back to normal
    finally:
        conn.close()
    assert [r["seq"] for r in collector.records] == [0, 1, 2, 3, 0, 1]
    assert [(r.status, r.record_count) for r in collector.requests] == [(503, 10), (200, 2)]
    assert collector.batch_ids == ["b-1"]  # only the 2xx one
    assert collector.connections == 1


def test_gzip_bomb(collector: Collector) -> None:
    size = 256 * 1024 * 1024 + 12345
    collector.fault("gzip_bomb", size=size)
    conn = _http(collector)
    try:
        resp = _post(conn)
        assert resp.status == 200
        assert resp.getheader("Content-Encoding") == "gzip"
        compressed = resp.read()
    finally:
        conn.close()
    assert len(compressed) == int(resp.getheader("Content-Length") or -1)
    assert len(compressed) < size // 500
    inflate = zlib.decompressobj(31)  # gzip framing, CRC and length checked at the end
    total, data = 0, compressed
    while data:
        out = inflate.decompress(data, 4 << 20)
        assert out.count(0) == len(out)
        total += len(out)
        data = inflate.unconsumed_tail
    assert inflate.eof and not inflate.unused_data
    assert total == size


def test_faults_and_scripts_share_one_fifo(collector: Collector) -> None:
    collector.script(429, headers={"Retry-After": "1"})
    collector.fault("partial", keep=1, times=2)
    conn = _http(collector)
    try:
        statuses = []
        for _ in range(4):
            resp = _post(conn, 2)
            resp.read()
            statuses.append(resp.status)
    finally:
        conn.close()
    assert statuses == [429, 503, 503, 200]
    assert collector.count == 1 + 1 + 2


def test_fault_arguments_are_checked(collector: Collector) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        collector.fault("slow")
    with pytest.raises(TypeError, match="takes no size"):
        collector.fault("silent", size=3)
    with pytest.raises(TypeError, match="needs keep"):
        collector.fault("partial")
    with pytest.raises(ValueError, match="status"):
        collector.fault("reset", status=99)
    conn = _http(collector)
    try:
        assert _post(conn).status == 200  # nothing was queued by the bad calls
    finally:
        conn.close()


# ---------------------------------------------------------------- stop() mid-way


def _mid_trickle(c: Collector, sock: socket.socket) -> None:
    sock.sendall(_raw_request())
    assert sock.recv(1) == b"H"


def _mid_head(c: Collector, sock: socket.socket) -> None:
    sock.sendall(_raw_request())
    _read_until(sock, b"\r\n\r\n")


def _mid_silent(c: Collector, sock: socket.socket) -> None:
    sock.sendall(_raw_request())
    assert c.wait_for(lambda c: len(c.requests) == 1, timeout=_TIMEOUT)


_MIDWAY: dict[str, tuple[dict[str, Any], Callable[[Collector, socket.socket], None]]] = {
    "trickle_status": ({"interval": 1.0}, _mid_trickle),
    "trickle_body": ({"interval": 1.0}, _mid_head),
    "huge_body": ({"size": 10**12}, _mid_head),  # the client stops reading: the write blocks
    "endless_body": ({}, _mid_head),
    "silent": ({}, _mid_silent),
}


@pytest.mark.parametrize("how", ["stop", "down"])
@pytest.mark.parametrize("kind", sorted(_MIDWAY))
def test_stop_or_down_ends_a_fault_midway(
    kind: str, how: str, capfd: pytest.CaptureFixture[str]
) -> None:
    params, get_midway = _MIDWAY[kind]
    with Collector() as c, _connect(c) as sock:
        c.fault(kind, **params)
        get_midway(c, sock)
        assert c.open_connections == 1
        stopper = threading.Thread(target=getattr(c, how), daemon=True)
        stopper.start()
        stopper.join(timeout=10.0)
        assert not stopper.is_alive(), f"{how}() did not return during {kind}"
        assert c.wait_for(lambda c: c.open_connections == 0, timeout=_TIMEOUT)
        # The client sees the connection end (EOF or reset), not a stall.
        _read_until_error(sock)
    assert "Traceback" not in capfd.readouterr().err
