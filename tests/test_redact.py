"""redact_keys: values under sensitive keys masked wherever they appear in a
record, nested included, on the sender side; the caller's objects untouched."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

import logdrain
from logdrain.redact import DEFAULT_KEYS, MASK, Redactor
from logdrain.testing import Collector
from logdrain.testing.dialects import Loki, StrictCollector

pytestmark = pytest.mark.timeout(120)

FAST: dict[str, Any] = {"flush_interval": 0.05, "capture_crashes": False}


@pytest.mark.parametrize(
    ("key", "masked"),
    [
        ("password", True), ("HTTP_AUTHORIZATION", True), ("X-Api-Key", True),
        ("apiKey", True), ("db.password", True), ("access_token", True),
        ("Set-Cookie", True), ("password_hash", True), ("authToken", True),
        ("max_tokens", False), ("tokenizer", False), ("author", False), ("user", False),
        ("PWD", False), ("MYSQL_PWD", True), ("sessionid", True), ("csrftoken", True),
        ("message", False),
    ],
)  # fmt: skip
def test_a_key_is_sensitive_when_a_listed_name_is_among_its_words(key: str, masked: bool) -> None:
    assert Redactor(DEFAULT_KEYS).sensitive(key) is masked


def test_nested_values_are_masked_in_copies() -> None:
    headers = {"Authorization": "Bearer abc", "Accept": "*/*"}
    items = [{"token": "t1"}, {"plain": 1}, "text"]
    doc = {"headers": headers, "items": items, "n": 1, "secret": {"deep": 1}}
    out = Redactor(DEFAULT_KEYS).document(dict(doc))
    assert out == {
        "headers": {"Authorization": MASK, "Accept": "*/*"},
        "items": [{"token": MASK}, {"plain": 1}, "text"],
        "n": 1,
        "secret": MASK,
    }
    assert headers["Authorization"] == "Bearer abc" and items[0]["token"] == "t1"
    assert out["items"][1] is items[1]  # what has nothing to mask is not copied


@pytest.mark.parametrize("encoder", ["orjson", "stdlib"])
def test_every_front_end_ships_masked_values(encoder: str) -> None:
    headers = {"Authorization": "Bearer s3cr3t", "Cookie": "sessionid=s3cr3t"}
    with Collector() as collector:
        handler = logdrain.DrainHandler(collector.url, json_encoder=encoder, **FAST)
        log = logging.getLogger(f"redact.{encoder}")
        log.addHandler(handler)
        log.propagate = False
        try:
            log.warning("login", extra={"password": "s3cr3t", "headers": headers, "user": "ada"})
            handler.drain.submit({"message": "submitted", "api_key": "s3cr3t"})
            processor = logdrain.DrainProcessor(handler.drain)
            processor(None, "info", {"event": "structlog", "token": "s3cr3t"})
            assert handler.drain.flush(30)
        finally:
            log.removeHandler(handler)
            handler.close()
        records = {r.get("message", r.get("event")): r for r in collector.records}
    assert "s3cr3t" not in json.dumps(list(records.values()))
    assert records["login"]["password"] == MASK and records["login"]["user"] == "ada"
    assert records["login"]["headers"] == {"Authorization": MASK, "Cookie": MASK}
    assert records["submitted"]["api_key"] == MASK
    assert records["structlog"]["token"] == MASK
    assert headers["Authorization"] == "Bearer s3cr3t"  # the caller's dict is untouched


def test_presets_ship_masked_values_too() -> None:
    with StrictCollector(Loki()) as loki:
        with logdrain.Drain(loki.base_url, preset="loki", **FAST) as drain:
            drain.submit({"message": "m", "level": "info", "passwd": "hunter2"})
            assert drain.flush(30)
        (got,) = loki.records
    assert json.loads(got["line"])["passwd"] == MASK


def test_redact_keys_can_be_replaced_or_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    with Collector() as collector:
        with logdrain.Drain(collector.url, redact_keys=["ssn"], **FAST) as drain:
            drain.submit({"message": "custom", "ssn": "123", "password": "kept"})
            assert drain.flush(30)
        monkeypatch.setenv("LOGDRAIN_REDACT_KEYS", "")
        with logdrain.Drain(collector.url, **FAST) as drain:
            assert drain.settings.redact_keys == ()
            drain.submit({"message": "off", "password": "plain"})
            assert drain.flush(30)
        records = {r["message"]: r for r in collector.records}
    assert records["custom"]["ssn"] == MASK and records["custom"]["password"] == "kept"
    assert records["off"]["password"] == "plain"


def test_the_encoders_inline_check_survives_the_memo_starting_afresh() -> None:
    from logdrain.config import resolve
    from logdrain.encode import Encoder
    from logdrain.records import stdlib_item
    from logdrain.redact import _MEMO_LIMIT

    enc = Encoder(resolve({"url": "http://127.0.0.1:9/x"}))
    log = logging.getLogger("redact.memo")

    def doc(extra: dict[str, Any]) -> dict[str, Any]:
        item = stdlib_item(
            log.makeRecord(log.name, logging.INFO, __file__, 1, "m", (), None, extra=extra)
        )
        return enc.document(item)

    clean = enc._clean_keys
    assert doc({"password": "a", "n": 1})["password"] == MASK
    for i in range(_MEMO_LIMIT + 10):  # more keys than the memo keeps: it starts afresh
        doc({f"k{i}": i})
    assert enc._clean_keys is clean and len(clean) < _MEMO_LIMIT
    assert doc({"password": "b", "n": 1})["password"] == MASK
    assert doc({"n": {"api_key": "c"}})["n"] == {"api_key": MASK}  # nested under a clean key
    assert doc({"n": 2})["n"] == 2


def test_hostile_containers_are_masked_as_the_encoder_reads_them() -> None:
    class ItemsRaise(dict[str, Any]):
        def items(self) -> Any:
            raise RuntimeError("items exploded")

    class IterRaise(list[Any]):
        def __iter__(self) -> Any:
            raise RuntimeError("iter exploded")

    class ClassRaise:
        @property  # type: ignore[misc]
        def __class__(self) -> Any:
            raise RuntimeError("class exploded")

    odd = ClassRaise()
    doc = {"a": ItemsRaise(password="x", n=1), "b": IterRaise([{"token": "y"}]), "c": odd}
    out = Redactor(DEFAULT_KEYS).document(doc)
    assert out["a"] == {"password": MASK, "n": 1}  # its own items, as orjson reads them
    assert out["b"] == [{"token": MASK}]
    assert out["c"] is odd  # unreadable: left to the encoder's placeholder


@pytest.mark.parametrize("value", [5, ["password", 3], {"password": True}])
def test_a_wrong_redact_keys_is_a_config_error_naming_it(value: Any) -> None:
    with pytest.raises(logdrain.ConfigError, match=r"redact_keys.*\"password\", \"ssn\""):
        logdrain.Drain("http://127.0.0.1:9/x", redact_keys=value)
