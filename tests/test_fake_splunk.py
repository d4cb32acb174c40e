"""The strict Splunk HEC fake, driven from plain ``requests`` on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from logdrain.testing.dialects import HEC_CODES, SplunkHEC, StrictCollector

TIMEOUT = 5
TOKEN = "11111111-2222-3333-4444-555555555555"
AUTH = {"Authorization": f"Splunk {TOKEN}"}


@pytest.fixture
def hec() -> Iterator[StrictCollector]:
    dialect = SplunkHEC(tokens=[TOKEN], disabled_tokens=["off"], indexes=["main", "app"])
    with StrictCollector(dialect) as fake:
        yield fake


def send(fake: StrictCollector, body: bytes, path: str = "", **headers: str) -> Any:
    url = fake.base_url + path if path else fake.url
    merged = {k: v for k, v in {**AUTH, **headers}.items() if v}
    return requests.post(url, data=body, headers=merged, timeout=TIMEOUT)


def events(*items: Any) -> bytes:
    return b"".join(json.dumps(item).encode() for item in items)


def test_concatenated_events_are_stored_exactly(hec: StrictCollector) -> None:
    sent = [
        {"time": 1700000000.125, "host": "h", "source": "s", "sourcetype": "_json",
         "index": "app", "event": {"message": "one"}, "fields": {"env": "prod", "tags": ["a"]}},
        {"event": "two"},
    ]  # fmt: skip
    answer = send(hec, events(*sent))
    assert (answer.status_code, answer.json()) == (200, {"text": "Success", "code": 0})
    assert hec.url.endswith("/services/collector/event")
    assert hec.records == sent


@pytest.mark.parametrize("path", ["/services/collector", "/services/collector/event/1.0"])
def test_other_event_endpoints(hec: StrictCollector, path: str) -> None:
    assert send(hec, events({"event": "x"}, {"event": "y"}), path).json()["code"] == 0
    assert [e["event"] for e in hec.records] == ["x", "y"]


@pytest.mark.parametrize(
    ("authorization", "status", "code", "text"),
    [
        ("", 401, 2, "Token is required"),
        (f"Bearer {TOKEN}", 401, 3, "Invalid authorization"),
        ("Splunk nope", 403, 4, "Invalid token"),
        ("Splunk off", 403, 1, "Token disabled"),
    ],
)
def test_auth_errors(
    hec: StrictCollector, authorization: str, status: int, code: int, text: str
) -> None:
    answer = send(hec, events({"event": "x"}), Authorization=authorization)
    assert (answer.status_code, answer.json()) == (status, {"text": text, "code": code})
    assert hec.records == []


@pytest.mark.parametrize(
    ("body", "status", "payload"),
    [
        (b"", 400, {"text": "No data", "code": 5}),
        (b"  \n", 400, {"text": "No data", "code": 5}),
        (b'[{"event": "array"}]', 400,
         {"text": "Invalid data format", "code": 6, "invalid-event-number": 0}),
        (b'{"event": "ok"}{"event": ', 400,
         {"text": "Invalid data format", "code": 6, "invalid-event-number": 1}),
        (b'{"event": "ok"}{"time": "noon", "event": "x"}', 400,
         {"text": "Invalid data format", "code": 6, "invalid-event-number": 1}),
        (b'{"event": "ok"}{"host": "h"}', 400,
         {"text": "Event field is required", "code": 12, "invalid-event-number": 1}),
        (b'{"event": ""}', 400,
         {"text": "Event field cannot be blank", "code": 13, "invalid-event-number": 0}),
        (b'{"event": "x", "index": "secret"}', 400,
         {"text": "Incorrect index", "code": 7, "invalid-event-number": 0}),
        (b'{"event": "x", "fields": {"nested": {"a": 1}}}', 400,
         {"text": "Error in handling indexed fields", "code": 15, "invalid-event-number": 0}),
    ],
)  # fmt: skip
def test_bad_bodies_get_hec_codes(
    hec: StrictCollector, body: bytes, status: int, payload: dict[str, Any]
) -> None:
    answer = send(hec, body)
    assert (answer.status_code, answer.json()) == (status, payload)
    # The events before the invalid one are stored.
    assert len(hec.records) == payload.get("invalid-event-number", 0)


def test_unknown_path_and_method(hec: StrictCollector) -> None:
    not_found = {"text": "The requested URL was not found on this server.", "code": 404}
    answer = send(hec, events({"event": "x"}), "/services/collector/raw/x")
    assert (answer.status_code, answer.json()) == (404, not_found)
    answer = requests.get(hec.url, headers=AUTH, timeout=TIMEOUT)
    assert (answer.status_code, answer.json()) == (404, not_found)


def test_scripted_busy_and_other_codes(hec: StrictCollector) -> None:
    hec.play("code")
    hec.play("code", code=8)
    hec.play("code", code=18)
    body = events({"event": "x"})
    assert send(hec, b"").status_code == 400  # refused outright: plays stay queued
    for code in (9, 8, 18):
        answer = send(hec, body)
        status, text = HEC_CODES[code]
        assert (answer.status_code, answer.json()) == (status, {"text": text, "code": code})
    assert (HEC_CODES[9], HEC_CODES[8]) == ((503, "Server is busy"), (500, "Internal server error"))
    assert hec.records == []
    assert send(hec, body).json() == {"text": "Success", "code": 0}
    assert len(hec.records) == 1


def test_unknown_play_is_refused(hec: StrictCollector) -> None:
    with pytest.raises(ValueError, match="unknown HEC code"):
        hec.play("code", code=99)
    with pytest.raises(ValueError, match="unknown play"):
        hec.play("nap")
    with pytest.raises(TypeError, match="takes no"):
        hec.play("code", colour="red")
