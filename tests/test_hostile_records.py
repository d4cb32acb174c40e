"""Hostile records: nothing a record holds may end a sender or lose the record.

Values that raise from inside serialisation, containers mutated while they are
encoded, messages whose formatting fails, handlers whose construction fails,
and dictConfig applied again while the senders are busy.
"""

from __future__ import annotations

import json
import logging
import textwrap
import threading
from typing import Any

import pytest

import logdrain
from logdrain import Drain
from logdrain.config import resolve
from logdrain.encode import Encoder
from logdrain.records import stdlib_item
from logdrain.testing import Collector

from . import proc

pytestmark = pytest.mark.timeout(120)

URL = "http://127.0.0.1:9/x"


def strict_loads(data: bytes) -> Any:
    def reject(name: str) -> Any:
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(data.decode("utf-8"), parse_constant=reject)


@pytest.fixture(params=["stdlib", "orjson"])
def encoder(request: pytest.FixtureRequest) -> Encoder:
    if request.param == "orjson":
        pytest.importorskip("orjson")
    return Encoder(resolve({"url": URL, "json_encoder": request.param}))


# -- values that raise from inside serialisation -------------------------------------


class ItemsRaise(dict[str, Any]):
    def items(self) -> Any:
        raise KeyError("items exploded")


class IterRaise(dict[str, Any]):
    def __iter__(self) -> Any:
        raise KeyError("iter exploded")

    def keys(self) -> Any:
        raise KeyError("keys exploded")

    def __len__(self) -> int:
        raise KeyError("len exploded")


class ListIterRaise(list[Any]):
    def __iter__(self) -> Any:
        raise ValueError("list iter exploded")


class ReprRaise:
    def __repr__(self) -> str:
        raise KeyError("repr exploded")


class ReprNotStr:
    def __repr__(self) -> Any:
        return 42


class ReprSystemExit:
    def __repr__(self) -> str:
        raise SystemExit(3)


class ClassRaise:
    @property  # type: ignore[misc]
    def __class__(self) -> Any:
        raise RuntimeError("__class__ exploded")

    def __repr__(self) -> str:
        return "<ClassRaise>"


class ToListRaise:
    dtype = "int64"
    size = 3

    def tolist(self) -> Any:
        raise MemoryError("tolist exploded")

    def __repr__(self) -> str:
        raise RuntimeError("repr too")


class StrRaisesError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str exploded")

    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")


class MutatesContainer:
    """Encoding this value (its repr) mutates the dict that holds it."""

    def __init__(self, target: dict[Any, Any], times: int) -> None:
        self.target = target
        self.times = times

    def __repr__(self) -> str:
        if self.times > 0:
            self.times -= 1
            self.target[object()] = "added while encoding"
        return "<mutator>"


def hostile_values() -> list[Any]:
    values: list[Any] = [
        ItemsRaise(a=1),
        IterRaise(a=1),
        ListIterRaise([1, 2]),
        ReprRaise(),
        ReprNotStr(),
        ReprSystemExit(),
        ClassRaise(),
        ToListRaise(),
        StrRaisesError("x"),
        10**5000,
        {10**5000: "huge int key"},
        [float("nan"), ItemsRaise(b=2)],
        {"deep": {"deeper": IterRaise(c=3)}, "nan": float("nan")},
    ]
    return values


@pytest.mark.parametrize("index", range(len(hostile_values())))
def test_a_hostile_value_is_replaced_not_the_record(encoder: Encoder, index: int) -> None:
    """encode, dumps and encode_batch never raise; the other fields ship as they are."""
    value = hostile_values()[index]
    record = {"message": "m", "level": "INFO", "before": 1, "bad": value, "after": "a"}
    data, truncated = encoder.encode(dict(record))
    assert truncated is False
    doc = strict_loads(data)
    assert (doc["message"], doc["level"], doc["before"], doc["after"]) == ("m", "INFO", 1, "a")
    assert "bad" in doc
    strict_loads(encoder.dumps(dict(record)))
    bodies = encoder.encode_batch([dict(record)])
    if bodies is not None:
        assert [strict_loads(b"[" + part + b"]") for _, part in bodies] == [[doc]]


def test_placeholder_names_the_type_and_the_error(encoder: Encoder) -> None:
    doc = strict_loads(encoder.encode({"message": "m", "bad": ToListRaise()})[0])
    assert doc["bad"] == "<unencodable ToListRaise: MemoryError: tolist exploded>"
    # A container whose own methods raise ships what it holds (what orjson reads).
    doc = strict_loads(encoder.encode({"message": "m", "bad": ItemsRaise(a=1)})[0])
    assert doc["bad"] == {"a": 1}
    doc = strict_loads(encoder.encode({"message": "m", "bad": ListIterRaise([1, 2])})[0])
    assert doc["bad"] == [1, 2]
    doc = strict_loads(encoder.encode({"message": "m", "bad": 10**5000})[0])
    assert doc["bad"] == f"<int of {(10**5000).bit_length()} bits>"


def test_hostile_values_in_an_oversized_record(encoder: Encoder) -> None:
    """The truncation path takes hostile values too."""
    small = Encoder(resolve({"url": URL, "max_record_bytes": 4096}))
    record = {"message": "m" * 10_000, "bad": ItemsRaise(a=1), "nan": float("nan"), "n": 1}
    data, truncated = small.encode(record)
    assert truncated is True
    assert len(data) <= 4096
    doc = strict_loads(data)
    assert doc["n"] == 1 and doc["nan"] == "NaN"
    assert doc["message"].startswith("mmm") and "[logdrain: truncated" in doc["message"]


def test_a_container_mutated_while_encoded_still_ships(encoder: Encoder) -> None:
    """A value whose encoding mutates its own container (as another thread
    might): the record ships with its other fields."""
    holder: dict[Any, Any] = {"a": 1, "nan": float("nan")}
    holder["m"] = MutatesContainer(holder, times=3)
    record = {"message": "m", "seq": 7, "holder": holder}
    doc = strict_loads(encoder.encode(record)[0])
    assert (doc["message"], doc["seq"]) == ("m", 7)
    assert doc["holder"]["a"] == 1
    assert doc["holder"]["nan"] == "NaN"


# -- end to end: the senders survive and every record arrives -----------------------


def test_hostile_records_are_delivered_and_the_senders_survive(collector: Collector) -> None:
    values = hostile_values()
    with Drain(
        collector.url, batch_size=3, concurrency=2, flush_interval=0.05, capture_crashes=False
    ) as drain:
        for round_ in range(3):  # more hostile batches than there are senders
            for i, value in enumerate(values):
                assert drain.submit({"message": f"r{round_}", "seq": i, "bad": value}) is True
        assert drain.submit({"message": "after", "seq": -1}) is True
        assert drain.flush(timeout=30) is True
        stats = drain.stats()
        assert stats.balanced
        assert stats.delivered == 3 * len(values) + 1
    got = collector.records
    assert len(got) == 3 * len(values) + 1
    assert sorted((r["message"], r["seq"]) for r in got) == sorted(
        [(f"r{k}", i) for k in range(3) for i in range(len(values))] + [("after", -1)]
    )


def test_a_big_dict_mutated_by_another_thread(collector: Collector) -> None:
    """Another thread keeps changing a large dict while records holding it are
    encoded; each record arrives with its own fields, the stats balance."""
    big: dict[str, Any] = {f"k{i}": float("nan") if i % 100 == 0 else i for i in range(20_000)}
    stop = threading.Event()

    def mutate() -> None:
        while not stop.is_set():  # its size keeps changing
            for j in range(100):
                big[f"extra{j}"] = j
            for j in range(100):
                big.pop(f"extra{j}", None)

    mutator = threading.Thread(target=mutate, daemon=True)
    mutator.start()
    count = 30
    try:
        with Drain(
            collector.url,
            batch_size=5,
            flush_interval=0.05,
            max_record_bytes=64 * 1024,  # shorten it too: the truncation path must cope
            capture_crashes=False,
        ) as drain:
            for i in range(count):
                assert drain.submit({"message": "big", "seq": i, "big": big}) is True
            assert drain.flush(timeout=60) is True
            stats = drain.stats()
            assert stats.balanced
            assert stats.delivered == count
    finally:
        stop.set()
        mutator.join(10)
    got = collector.records
    assert sorted(r["seq"] for r in got) == list(range(count))
    assert all(r["message"] == "big" for r in got)


# -- a message whose formatting fails ------------------------------------------------


class StrRaises:
    def __str__(self) -> str:
        raise RuntimeError("str exploded")

    def __repr__(self) -> str:
        return "<StrRaises>"


class BrokenFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        raise ValueError("formatter exploded")


@pytest.mark.parametrize("formatter", [None, logging.Formatter("%(message)s"), BrokenFormatter()])
def test_a_message_whose_formatting_fails_still_ships(
    collector: Collector,
    logger: logging.Logger,
    formatter: logging.Formatter | None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = logdrain.DrainHandler(collector.url, flush_interval=0.05, capture_crashes=False)
    handler.setFormatter(formatter)  # type: ignore[arg-type]
    logger.addHandler(handler)
    for other in logger.handlers[:-1]:  # pytest's capture handlers raise on a bad message
        logger.removeHandler(other)
    logger.info("count %d", "x", extra={"user": "u1"})
    logger.warning("value %s", StrRaises())
    try:
        raise ZeroDivisionError("division")
    except ZeroDivisionError:
        logger.exception("failed %d %d", 1)  # noqa: PLE1206 - the point
    logger.info("fine %s", "ok")
    assert handler.drain.flush(30)
    stats = handler.drain.stats()
    assert stats.submitted == stats.delivered == 4
    assert stats.balanced
    records = collector.records
    assert len(records) == 4
    first, second, third, fourth = records
    assert first["message"].startswith("<logdrain: message formatting failed:")
    assert "'count %d' % ('x',)" in first["message"]
    assert first["user"] == "u1" and first["level"] == "INFO"
    assert second["level"] == "WARNING"
    assert "'value %s' % (<StrRaises>,)" in second["message"]
    assert "ZeroDivisionError: division" in third["exception"]
    assert "'failed %d %d' % (1,)" in third["message"]
    if isinstance(formatter, BrokenFormatter):
        assert "formatter exploded" in fourth["message"]
    else:
        assert fourth["message"] == "fine ok"
        assert "RuntimeError: str exploded" in second["message"]
        assert "TypeError" in first["message"]
    assert "Logging error" not in capsys.readouterr().err


class KeysRaise(dict[str, Any]):
    def keys(self) -> Any:
        raise KeyError("keys exploded")

    def __iter__(self) -> Any:
        raise KeyError("iter exploded")


def test_processor_survives_an_event_dict_whose_copy_raises(collector: Collector) -> None:
    drain = Drain(collector.url, flush_interval=0.05, capture_crashes=False)
    processor = logdrain.DrainProcessor(drain)
    try:
        event = KeysRaise(event="hello", user="u1")
        assert processor(None, "info", event) is event
        bad_exc = {"event": "bad exc", "exc_info": ("not", "an exc_info")}
        assert processor(None, "error", bad_exc) is bad_exc
        assert drain.flush(30)
        stats = drain.stats()
        assert stats.delivered == 2 and stats.balanced
    finally:
        drain.close()
    first, second = collector.records
    assert (first["event"], first["user"], first["level"]) == ("hello", "u1", "INFO")
    assert second["event"] == "bad exc"
    assert second["exception"].startswith("<logdrain: exception formatting failed:")


# -- the stdlib lifecycle ------------------------------------------------------------


def test_reapplying_dictconfig_does_not_wait_for_the_senders(collector: Collector) -> None:
    """dictConfig closes the old handlers under logging's module lock; the
    senders may be blocked on that lock (urllib3's debug logging), so neither
    flush nor close may wait for them there (it stalled flush_timeout)."""
    code = f"""
        import logging, logging.config, time
        def config():
            return {{
                "version": 1, "disable_existing_loggers": False,
                "handlers": {{"ship": {{"class": "logdrain.DrainHandler",
                    "url": {collector.url!r}, "flush_timeout": 20,
                    "flush_interval": 0.05, "capture_crashes": False}}}},
                "loggers": {{"urllib3": {{"level": "DEBUG"}}}},
                "root": {{"handlers": ["ship"], "level": "DEBUG"}},
            }}
        logging.config.dictConfig(config())
        log = logging.getLogger("app")
        for round_ in range(3):
            for i in range(200):
                log.info("round %d record %d", round_, i)
            started = time.monotonic()
            logging.config.dictConfig(config())
            print("reapplied in", time.monotonic() - started, flush=True)
        logging.shutdown()
    """
    result = proc.run(code, timeout=120)
    assert result.returncode == 0, result.stderr
    times = [float(line.split()[-1]) for line in result.stdout.splitlines()]
    assert len(times) == 3
    assert max(times) < 10, times  # flush_timeout is 20: a stall would take 20
    assert collector.wait_for_count(600, timeout=30)
    assert sorted(r["message"] for r in collector.records) == sorted(
        f"round {k} record {i}" for k in range(3) for i in range(200)
    )


_FAILING_HANDLERS = """
    kept = []
    for bad in ({"url": "nope"}, {"url": "http://127.0.0.1:9/x", "level": "LOUD"}):
        try:
            logdrain.DrainHandler(**bad)
        except (logdrain.ConfigError, ValueError) as exc:
            kept.append(exc)  # its traceback keeps a half-built handler alive
        else:
            raise AssertionError("construction should fail")
"""


@pytest.mark.parametrize("then", ["shutdown", "dictconfig"])
def test_a_handler_whose_construction_fails_is_not_left_registered(then: str) -> None:
    """A DrainHandler that raises at construction is not left half-built in
    logging's handler list: logging.shutdown() still flushes a MemoryHandler
    into its target, and a later dictConfig works."""
    head = "import logging, logging.config, logging.handlers, sys\nimport logdrain\n"
    if then == "shutdown":
        # The MemoryHandler first: logging.shutdown() meets the failed handler first.
        head += (
            "target = logging.StreamHandler(sys.stdout)\n"
            "memory = logging.handlers.MemoryHandler(100, target=target)\n"
            "log = logging.getLogger('app')\nlog.addHandler(memory)\nlog.setLevel(logging.INFO)\n"
        )
        tail = "log.info('buffered record')\nlogging.shutdown()\n"
    else:
        tail = (
            "logging.config.dictConfig({'version': 1, 'disable_existing_loggers': False})\n"
            "print('buffered record: dictConfig ok')\n"
        )
    program = head + textwrap.dedent(_FAILING_HANDLERS) + tail
    result = proc.run(program, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "buffered record" in result.stdout
    assert "Traceback" not in result.stderr


def test_a_half_built_handler_flushes_and_closes_harmlessly() -> None:
    handler = logdrain.DrainHandler.__new__(logdrain.DrainHandler)
    handler.flush()
    handler.close()
    assert "DrainHandler" in repr(handler)


@pytest.mark.parametrize("created", [float("nan"), float("inf"), None])
def test_a_record_whose_created_a_filter_spoiled_keeps_its_message(created: object) -> None:
    encoder = Encoder(resolve({"url": "http://127.0.0.1:9/x"}))
    record = logging.LogRecord("app", logging.INFO, __file__, 1, "the message", None, None)
    record.created = created  # type: ignore[assignment]
    doc = strict_loads(encoder.encode(stdlib_item(record))[0])
    assert doc["message"] == "the message"
    assert doc["timestamp"].endswith("Z")
