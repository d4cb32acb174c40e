"""Tests for logdrain.testing.Collector, the local HTTP log collector used by the suite."""

from __future__ import annotations

import errno
import gzip
import json
import socket
import threading
from collections.abc import Iterator

import pytest
import requests

from logdrain.testing import Collector, RequestInfo

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector() as c:
        yield c


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def _records(n: int, start: int = 0) -> list[dict[str, object]]:
    return [{"msg": f"record {i}", "seq": i} for i in range(start, start + n)]


def test_url_and_port(collector: Collector) -> None:
    assert collector.url == f"http://127.0.0.1:{collector.port}/ingest"
    assert collector.port > 0
    with Collector("custom") as other:
        assert other.url.endswith("/custom")
        assert other.port != collector.port


def test_json_array(collector: Collector, session: requests.Session) -> None:
    resp = session.post(collector.url, json=_records(3), timeout=5)
    assert resp.status_code == 200
    assert resp.json() == {"accepted": 3}
    assert resp.headers["Content-Length"] == str(len(resp.content))
    assert collector.count == 3
    assert collector.records == _records(3)
    (info,) = collector.requests
    assert isinstance(info, RequestInfo)
    assert (info.method, info.path, info.status, info.record_count) == ("POST", "/ingest", 200, 3)
    assert json.loads(info.body) == _records(3)
    assert info.headers["Content-Type"] == "application/json"


def test_ndjson(collector: Collector, session: requests.Session) -> None:
    body = b'{"a": 1}\n\n{"a": 2}\r\n{"a": 3}\n'
    resp = session.post(
        collector.url, data=body, headers={"Content-Type": "application/x-ndjson"}, timeout=5
    )
    assert resp.status_code == 200
    assert resp.json() == {"accepted": 3}
    assert collector.records == [{"a": 1}, {"a": 2}, {"a": 3}]


def test_single_object(collector: Collector, session: requests.Session) -> None:
    resp = session.post(collector.url, json={"msg": "one"}, timeout=5)
    assert resp.status_code == 200
    assert resp.json() == {"accepted": 1}
    assert collector.records == [{"msg": "one"}]


def test_gzip(collector: Collector, session: requests.Session) -> None:
    body = gzip.compress(json.dumps(_records(50)).encode())
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    resp = session.post(collector.url, data=body, headers=headers, timeout=5)
    assert resp.status_code == 200
    assert collector.records == _records(50)

    ndjson = "\n".join(json.dumps(r) for r in _records(5, start=50)).encode()
    headers = {"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}
    resp = session.post(collector.url, data=gzip.compress(ndjson), headers=headers, timeout=5)
    assert resp.status_code == 200
    assert collector.records == _records(55)


def test_chunked_body(collector: Collector, session: requests.Session) -> None:
    parts = [b"[", json.dumps(_records(1)[0]).encode(), b", ", b'{"msg": "x"}', b"]"]
    resp = session.post(
        collector.url, data=iter(parts), headers={"Content-Type": "application/json"}, timeout=5
    )
    assert resp.status_code == 200
    assert collector.count == 2


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"{not json", {"Content-Type": "application/json"}),
        (b'{"ok": 1}\nnope\n', {"Content-Type": "application/x-ndjson"}),
        (b"not gzip", {"Content-Type": "application/json", "Content-Encoding": "gzip"}),
        (b"[1, 2]", {"Content-Type": "application/json"}),
        (b"", {"Content-Type": "application/json"}),
    ],
)
def test_unparseable_body_is_400(
    collector: Collector, session: requests.Session, body: bytes, headers: dict[str, str]
) -> None:
    resp = session.post(collector.url, data=body, headers=headers, timeout=5)
    assert resp.status_code == 400
    assert resp.content
    assert collector.count == 0
    (info,) = collector.requests
    assert info.status == 400
    assert info.body == body
    # The keep-alive connection is still usable afterwards.
    assert session.post(collector.url, json=[{"a": 1}], timeout=5).status_code == 200
    assert collector.count == 1


def test_scripted_500_then_200(collector: Collector, session: requests.Session) -> None:
    collector.script(500, times=2, body=b"boom")
    first = session.post(collector.url, json=_records(2), timeout=5)
    second = session.post(collector.url, json=_records(2), timeout=5)
    third = session.post(collector.url, json=_records(2), timeout=5)
    assert (first.status_code, second.status_code, third.status_code) == (500, 500, 200)
    assert first.content == b"boom"
    assert collector.count == 2
    assert [r.status for r in collector.requests] == [500, 500, 200]
    assert [r.record_count for r in collector.requests] == [2, 2, 2]


def test_scripted_fifo_order(collector: Collector, session: requests.Session) -> None:
    collector.script(503)
    collector.script(202, body=b'{"queued": true}')
    statuses = [session.post(collector.url, json={"a": i}, timeout=5).status_code for i in range(3)]
    assert statuses == [503, 202, 200]
    # Scripted 2xx answers still store records.
    assert collector.records == [{"a": 1}, {"a": 2}]


def test_429_with_retry_after(collector: Collector, session: requests.Session) -> None:
    collector.script(429, headers={"Retry-After": "7"})
    resp = session.post(collector.url, json=_records(1), timeout=5)
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "7"
    assert collector.count == 0
    assert session.post(collector.url, json=_records(1), timeout=5).status_code == 200


def test_default_status_flapping(collector: Collector, session: requests.Session) -> None:
    collector.status = 503
    assert session.post(collector.url, json=_records(1), timeout=5).status_code == 503
    collector.status = 200
    assert session.post(collector.url, json=_records(1), timeout=5).status_code == 200
    assert collector.count == 1
    assert [r.status for r in collector.requests] == [503, 200]


def test_hang_then_stop(session: requests.Session) -> None:
    collector = Collector().start()
    try:
        collector.hang()
        with pytest.raises(requests.ReadTimeout):
            session.post(collector.url, json=_records(3), timeout=(5, 0.5))
        assert collector.wait_for(lambda c: len(c.requests) == 1, timeout=5)
        (info,) = collector.requests
        assert (info.status, info.record_count) == (0, 3)
    finally:
        collector.stop()
    assert collector.count == 0
    collector.stop()  # idempotent


def test_hang_off_resumes_service(collector: Collector, session: requests.Session) -> None:
    collector.hang()
    with pytest.raises(requests.ReadTimeout):
        session.post(collector.url, json=_records(1), timeout=(5, 0.5))
    collector.hang(False)
    resp = session.post(collector.url, json=_records(1), timeout=5)
    assert resp.status_code == 200
    assert collector.count == 1


def test_delay_is_interrupted_by_stop(session: requests.Session) -> None:
    collector = Collector().start()
    collector.delay = 60.0
    errors: list[BaseException] = []

    def post() -> None:
        try:
            session.post(collector.url, json=_records(1), timeout=30)
        except requests.RequestException as exc:
            errors.append(exc)

    thread = threading.Thread(target=post)
    thread.start()
    try:
        # The request is being held: its connection is open but nothing was answered.
        assert collector.wait_for(lambda c: bool(c._conns), timeout=5)
    finally:
        collector.stop()
    thread.join(10)
    assert not thread.is_alive()
    assert len(errors) == 1
    assert collector.count == 0


def test_down_then_up_same_port(collector: Collector, session: requests.Session) -> None:
    port = collector.port
    assert session.post(collector.url, json=_records(1), timeout=5).status_code == 200

    collector.down()
    with pytest.raises(requests.ConnectionError):
        session.post(collector.url, json=_records(1), timeout=5)
    with pytest.raises(ConnectionRefusedError) as excinfo:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    assert excinfo.value.errno == errno.ECONNREFUSED

    collector.up()
    assert collector.port == port
    resp = session.post(collector.url, json=_records(1), timeout=5)
    assert resp.status_code == 200
    assert collector.count == 2


def test_duplicates(collector: Collector, session: requests.Session) -> None:
    def post(batch_id: str) -> int:
        headers = {"X-Logdrain-Batch-Id": batch_id}
        return session.post(collector.url, json=_records(1), headers=headers, timeout=5).status_code

    collector.script(500)
    assert post("a") == 500  # not answered 2xx: does not count as seen
    assert post("a") == 200
    assert post("b") == 200
    assert collector.duplicates == 0
    assert post("a") == 200
    assert post("a") == 200
    assert collector.duplicates == 2
    assert collector.batch_ids == ["a", "b", "a", "a"]
    assert session.post(collector.url, json=_records(1), timeout=5).status_code == 200
    assert collector.duplicates == 2


def test_wrong_path_and_method(collector: Collector, session: requests.Session) -> None:
    base = f"http://127.0.0.1:{collector.port}"
    resp = session.post(base + "/elsewhere", json=_records(1), timeout=5)
    assert resp.status_code == 404
    assert resp.content == b"unknown path"
    resp = session.get(collector.url, timeout=5)
    assert resp.status_code == 405
    assert session.post(collector.url + "?x=1", json=_records(1), timeout=5).status_code == 200
    assert collector.count == 1
    assert [r.status for r in collector.requests] == [404, 405, 200]


def test_wait_for_count(collector: Collector, session: requests.Session) -> None:
    assert collector.wait_for_count(1, timeout=0.2) is False

    def send() -> None:
        with requests.Session() as s:
            for i in range(5):
                s.post(collector.url, json=_records(100, start=i * 100), timeout=5)

    thread = threading.Thread(target=send)
    thread.start()
    try:
        assert collector.wait_for_count(500, timeout=10)
    finally:
        thread.join(10)
    assert collector.records == _records(500)
    assert collector.wait_for(lambda c: len(c.requests) == 5, timeout=0)


def test_clear(collector: Collector, session: requests.Session) -> None:
    session.post(collector.url, json=_records(2), headers={"X-Logdrain-Batch-Id": "x"}, timeout=5)
    session.post(collector.url, json=_records(2), headers={"X-Logdrain-Batch-Id": "x"}, timeout=5)
    assert (collector.count, collector.duplicates) == (4, 1)
    collector.clear()
    assert (collector.count, collector.duplicates, collector.requests) == (0, 0, [])
    assert collector.records == []


def test_copies_are_returned(collector: Collector, session: requests.Session) -> None:
    session.post(collector.url, json=_records(1), timeout=5)
    collector.records.clear()
    collector.requests.clear()
    assert collector.count == 1
    assert len(collector.requests) == 1


def test_stop_with_idle_keepalive_connections() -> None:
    collector = Collector().start()
    sessions = [requests.Session() for _ in range(3)]
    try:
        for s in sessions:
            assert s.post(collector.url, json=_records(1), timeout=5).status_code == 200
        collector.stop()
        assert collector.count == 3
    finally:
        for s in sessions:
            s.close()


def test_bulk_batches(collector: Collector, session: requests.Session) -> None:
    batch = json.dumps(_records(500)).encode()
    headers = {"Content-Type": "application/json"}
    for _ in range(20):
        assert session.post(collector.url, data=batch, headers=headers, timeout=10).ok
    assert collector.count == 10_000
