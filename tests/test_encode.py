"""The encoder: every record becomes valid, bounded JSON, whatever values it holds."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import logging
import math
import re
import subprocess
import sys
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logdrain import Drain
from logdrain.config import resolve
from logdrain.encode import Encoder
from logdrain.records import snapshot, stdlib_item
from logdrain.testing import Collector

pytestmark = pytest.mark.timeout(60)

URL = "http://127.0.0.1:9/x"
RFC3339_UTC_MICROS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def _reject_constant(name: str) -> Any:
    raise AssertionError(f"non-standard JSON constant {name}")


def strict_loads(data: bytes) -> Any:
    """Parse as strict JSON: valid UTF-8, no NaN/Infinity literals."""
    return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)


@pytest.fixture(params=["stdlib", "orjson"])
def encoder(request: pytest.FixtureRequest) -> Encoder:
    """Both JSON encoders of the batch fast path (``json_encoder``)."""
    if request.param == "orjson":
        pytest.importorskip("orjson")
    encoder = Encoder(resolve({"url": URL, "json_encoder": request.param}))
    assert encoder.json_encoder == request.param
    return encoder


def roundtrip(encoder: Encoder, value: Any) -> Any:
    """Encode {"v": value} and return what the collector would see for "v".

    The batch fast path (stdlib json or orjson), when it takes the record,
    must produce the same document as the per-record path."""
    data, truncated = encoder.encode({"v": value})
    assert truncated is False
    shipped = strict_loads(data)["v"]
    bodies = encoder.encode_batch([{"v": value}])
    if bodies is not None:
        assert [strict_loads(b"[" + part + b"]") for _, part in bodies] == [[{"v": shipped}]]
    return shipped


class Plain:
    pass


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")


class BadStrError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str exploded")


class Hostile:
    """Looks like a numpy value, but every attribute access explodes."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(name)

    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")


# -- values JSON cannot hold -----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone.utc),
            "2024-01-02T03:04:05.000006+00:00",
        ),
        (dt.date(2024, 1, 2), "2024-01-02"),
        (dt.time(3, 4, 5), "03:04:05"),
        (decimal.Decimal("1.10"), "1.10"),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (b"abc", "abc"),
        (bytearray(b"abc"), "abc"),
        (b"\xff\xfeok", "\\xff\\xfeok"),
        ({3, 1, 2}, [1, 2, 3]),
        (frozenset({"b", "a"}), ["a", "b"]),
        ((1, (2, 3)), [1, [2, 3]]),
        (ValueError("boom"), "ValueError: boom"),
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (-math.inf, "-Infinity"),
        ([1.5, float("nan"), {"x": float("inf")}], [1.5, "NaN", {"x": "Infinity"}]),
        ("a\ud800b", "a\ufffdb"),
        ("\udfff", "\ufffd"),
    ],
    ids=lambda v: type(v).__name__,
)
def test_converted_values(encoder: Encoder, value: Any, expected: Any) -> None:
    """Values JSON lacks are converted to a readable JSON form, output stays strict UTF-8 JSON."""
    assert roundtrip(encoder, value) == expected


def test_mixed_type_set(encoder: Encoder) -> None:
    """A set whose members cannot be sorted still ships all of them."""
    assert sorted(map(str, roundtrip(encoder, {1, "a"}))) == ["1", "a"]


def test_numpy_values(encoder: Encoder) -> None:
    """numpy scalars and arrays become numbers and lists; huge arrays a short placeholder."""
    np = pytest.importorskip("numpy")
    assert roundtrip(encoder, np.int64(5)) == 5
    assert roundtrip(encoder, np.float32(1.5)) == 1.5
    assert roundtrip(encoder, np.bool_(True)) is True
    assert roundtrip(encoder, np.array([[1, 2], [3, 4]])) == [[1, 2], [3, 4]]
    assert roundtrip(encoder, np.array([1.0, np.nan])) == [1.0, "NaN"]
    assert roundtrip(encoder, np.float64("inf")) == "Infinity"
    big = roundtrip(encoder, np.zeros(20_000))
    assert isinstance(big, str)
    assert "20000" in big
    assert "not shipped" in big


def test_exceptions_and_arbitrary_objects(encoder: Encoder) -> None:
    """Exceptions, plain objects and objects whose __repr__/__str__ raise all encode."""
    assert roundtrip(encoder, KeyError()) == "KeyError: KeyError()"
    assert roundtrip(encoder, Plain()).startswith("<")
    assert "Plain object" in roundtrip(encoder, Plain())
    assert roundtrip(encoder, BadRepr()) == "<unrepresentable BadRepr object>"
    assert "BadStrError" in roundtrip(encoder, BadStrError("x"))
    assert roundtrip(encoder, Hostile()) == "<unencodable Hostile: RuntimeError: dtype>"


def test_cycles(encoder: Encoder) -> None:
    """A dict or list containing itself is cut with a '<cycle>' marker."""
    d: dict[str, Any] = {"a": 1}
    d["self"] = d
    assert roundtrip(encoder, d) == {"a": 1, "self": "<cycle>"}
    lst: list[Any] = [1]
    lst.append(lst)
    assert roundtrip(encoder, lst) == [1, "<cycle>"]
    shared = [1, 2]
    assert roundtrip(encoder, [shared, shared]) == [[1, 2], [1, 2]]  # not a cycle


def test_deep_nesting_and_huge_ints(encoder: Encoder) -> None:
    """Pathologically deep structures and ints too big to print do not break encoding."""
    deep: list[Any] = []
    cur = deep
    for _ in range(100_000):
        nxt: list[Any] = []
        cur.append(nxt)
        cur = nxt
    out = json.dumps(roundtrip(encoder, deep))
    assert "<too deep>" in out
    assert roundtrip(encoder, 10**5000) == f"<int of {(10**5000).bit_length()} bits>"


def test_non_str_keys(encoder: Encoder) -> None:
    """Non-string keys become strings (JSON spelling for scalars, repr for the rest)."""
    value = {1: "a", (1, 2): "b", None: "c", 2.5: "d", False: "e", "k\ud800": "f"}
    assert roundtrip(encoder, value) == {
        "1": "a",
        "(1, 2)": "b",
        "null": "c",
        "2.5": "d",
        "false": "e",
        "k\ufffd": "f",
    }


def test_lone_surrogates_produce_valid_utf8(encoder: Encoder) -> None:
    """Lone surrogates anywhere in a record yield bytes that strict UTF-8 decoding accepts."""
    data, _ = encoder.encode({"message": "bad \ud83d end", "extra": ["\udc00", {"x": "\ud800"}]})
    text = data.decode("utf-8")  # raises on invalid UTF-8
    assert strict_loads(data) == {
        "message": "bad \ufffd end",
        "extra": ["\ufffd", {"x": "\ufffd"}],
    }
    assert "\ud83d" not in text


@pytest.mark.parametrize("char", ["x", "é", '"'])
def test_oversized_record_is_truncated_with_marker(char: str) -> None:
    """A 10 MB message with max_record_bytes=64 KiB ships as <= 64 KiB of valid JSON, marked."""
    limit = 64 * 1024
    encoder = Encoder(resolve({"url": URL, "max_record_bytes": limit}))
    message = char * (10 * 1024 * 1024 // len(char.encode()))
    data, truncated = encoder.encode({"message": message, "level": "INFO", "n": 1})
    assert truncated is True
    assert len(data) <= limit
    doc = strict_loads(data)
    assert "[logdrain: truncated" in doc["message"]
    assert doc["level"] == "INFO"
    assert doc["n"] == 1


def test_small_record_is_not_truncated(encoder: Encoder) -> None:
    """A record under the limit is shipped byte-for-byte as compact JSON."""
    data, truncated = encoder.encode({"message": "hi", "n": [1, 2]})
    assert truncated is False
    assert data == b'{"message":"hi","n":[1,2]}'


# -- stdlib records ------------------------------------------------------------------


def _record(msg: str = "user %s did %d things", args: Any = ("bob", 3)) -> logging.LogRecord:
    return logging.LogRecord("app.db", logging.WARNING, "/src/app/db.py", 10, msg, args, None)


def test_stdlib_snapshot_document(encoder: Encoder) -> None:
    """A LogRecord snapshot becomes timestamp/level/logger/message plus its extras."""
    record = _record()
    record.created = 1_700_000_000.25
    record.request_id = "req-1"
    record.user = {"id": 7}
    data, _ = encoder.encode(snapshot(record))
    doc = strict_loads(data)
    assert RFC3339_UTC_MICROS.match(doc["timestamp"]), doc["timestamp"]
    assert doc["timestamp"] == "2023-11-14T22:13:20.250000Z"
    assert doc["level"] == "WARNING"
    assert doc["logger"] == "app.db"
    assert doc["message"] == "user bob did 3 things"
    assert doc["request_id"] == "req-1"
    assert doc["user"] == {"id": 7}
    assert "exception" not in doc
    for internal in ("msg", "args", "levelno", "exc_info", "created", "thread"):
        assert internal not in doc


def test_timestamp_is_rfc3339_utc_micros(encoder: Encoder) -> None:
    """Timestamps are RFC 3339 in UTC with six fractional digits and a Z, across seconds."""
    for created in (0.0, 1_700_000_000.5, 1_700_000_001.000001, 1_700_000_001.999999):
        stamp = encoder.timestamp(created)
        assert RFC3339_UTC_MICROS.match(stamp), stamp
        expected = dt.datetime.fromtimestamp(int(created), dt.timezone.utc)
        assert stamp.startswith(expected.strftime("%Y-%m-%dT%H:%M:%S."))
    assert encoder.timestamp(0.0) == "1970-01-01T00:00:00.000000Z"


def test_stdlib_exception_is_formatted(encoder: Encoder) -> None:
    """exc_info becomes the formatted traceback under 'exception'; no frames are kept."""
    record = _record("failed", None)
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        record.exc_info = sys.exc_info()
    snap = snapshot(record)
    assert snap["exc_info"] is None
    doc = strict_loads(encoder.encode(snap)[0])
    assert doc["message"] == "failed"
    assert "Traceback (most recent call last)" in doc["exception"]
    assert "ZeroDivisionError: division by zero" in doc["exception"]


def test_message_is_formatted_at_snapshot_time(encoder: Encoder) -> None:
    """Changing the args after the snapshot does not change what ships."""
    items = [1, 2]
    record = _record("items: %s", (items,))
    snap = snapshot(record)
    items.append(3)
    record.msg = "changed %s"
    doc = strict_loads(encoder.encode(snap)[0])
    assert doc["message"] == "items: [1, 2]"


def test_stdlib_hostile_extras(encoder: Encoder) -> None:
    """Hostile extra attributes on a LogRecord still yield a full document."""
    record = _record()
    record.bad = BadRepr()
    record.blob = b"\xff"
    record.nan = float("nan")
    doc = strict_loads(encoder.encode(snapshot(record))[0])
    assert doc["message"] == "user bob did 3 things"
    assert doc["bad"] == "<unrepresentable BadRepr object>"
    assert doc["blob"] == "\\xff"
    assert doc["nan"] == "NaN"


# -- end to end ----------------------------------------------------------------------


def test_hostile_records_reach_the_collector(collector: Collector) -> None:
    """Records full of hostile values all arrive, and the worker keeps going afterwards."""
    np = pytest.importorskip("numpy")
    cyc: dict[str, Any] = {}
    cyc["me"] = cyc
    hostile: list[Any] = [
        dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
        decimal.Decimal("3.14"),
        uuid.uuid4(),
        b"\xff\x00",
        {1, 2},
        np.int32(3),
        np.arange(6).reshape(2, 3),
        ValueError("boom"),
        Plain(),
        BadRepr(),
        Hostile(),
        BadStrError(),
        cyc,
        float("nan"),
        {(1, 2): "tuple key", None: 1},
        "lone \ud800 surrogate",
        10**5000,
        "x" * (10 * 1024 * 1024),
    ]
    with Drain(collector.url, batch_size=4, flush_interval=0.05, capture_crashes=False) as drain:
        for i, value in enumerate(hostile):
            assert drain.submit({"seq": i, "value": value}) is True
        handler_record = _record()
        handler_record.bad = BadRepr()
        assert drain.enqueue(snapshot(handler_record)) is True
        assert drain.submit({"seq": 1000, "message": "normal"}) is True
        assert drain.flush(timeout=30) is True
        stats = drain.stats()
        assert stats.delivered == len(hostile) + 2
        assert stats.failed == stats.rejected == 0
        assert stats.truncated == 1
        assert stats.balanced
        # The worker survived: a later record still arrives.
        assert drain.submit({"seq": 1001, "message": "after"}) is True
        assert drain.flush(timeout=30) is True
    got = collector.records
    assert len(got) == len(hostile) + 3
    by_seq = {r["seq"]: r for r in got if "seq" in r}
    assert set(by_seq) == {*range(len(hostile)), 1000, 1001}
    assert by_seq[1001]["message"] == "after"
    assert by_seq[12]["value"] == {"me": "<cycle>"}
    assert by_seq[13]["value"] == "NaN"
    assert "[logdrain: truncated" in by_seq[len(hostile) - 1]["value"]
    assert any(r.get("logger") == "app.db" for r in got)


# -- the batch fast path ---------------------------------------------------------------

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # NaN and the infinities included
    | st.text(),  # lone surrogates included
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(_json_values, min_size=1, max_size=5))
@pytest.mark.parametrize("json_encoder", ["stdlib", "orjson"])
def test_batch_fast_path_agrees_with_the_per_record_path(json_encoder: str, values: Any) -> None:
    """Whatever the values, a batch body parses to exactly the documents the
    per-record (sanitising) path makes: orjson never writes NaN as null, the
    stdlib never writes a NaN literal."""
    if json_encoder == "orjson":
        pytest.importorskip("orjson")
    encoder = Encoder(resolve({"url": URL, "json_encoder": json_encoder}))
    items = [{"v": v, "n": i} for i, v in enumerate(values)]
    expected = [strict_loads(encoder.encode(item)[0]) for item in items]
    bodies = encoder.encode_batch(items)
    if bodies is None:  # refused: the dispatcher takes the per-record path
        return
    assert [doc for _, part in bodies for doc in strict_loads(b"[" + part + b"]")] == expected
    assert sum(count for count, _ in bodies) == len(items)


def test_orjson_missing_falls_back_to_stdlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """json_encoder='auto' without orjson installed uses the stdlib encoder."""
    monkeypatch.setitem(sys.modules, "orjson", None)  # makes `import orjson` fail
    encoder = Encoder(resolve({"url": URL}))
    assert encoder.json_encoder == "stdlib"
    bodies = encoder.encode_batch([{"message": "hi", "x": float("inf")}, {"message": "ok"}])
    assert bodies is None or strict_loads(b"[" + bodies[0][1] + b"]")[1] == {"message": "ok"}


# -- which attributes of a LogRecord are extras --------------------------------------


def _document(encoder: Encoder, record: logging.LogRecord) -> dict[str, Any]:
    bodies = encoder.encode_batch([stdlib_item(record)])
    assert bodies is not None
    (doc,) = strict_loads(b"[" + bodies[0][1] + b"]")
    assert doc == strict_loads(encoder.encode(stdlib_item(record))[0])
    return dict(doc)


def test_extras_from_extra_a_factory_and_a_subclass(encoder: Encoder) -> None:
    """Extras reach the document however they were set: ``extra=``, a record
    factory adding attributes, a subclass setting them before or after
    ``LogRecord.__init__``; attributes formatters add are not extras."""
    logger = logging.getLogger("app.extras")
    record = logger.makeRecord("app.extras", logging.INFO, "f.py", 1, "m %d", (1,), None,
                               extra={"user": "u", "n": 1})  # fmt: skip
    logging.Formatter("%(asctime)s %(message)s").format(record)  # sets message, asctime
    assert _document(encoder, record) == {
        "timestamp": encoder.timestamp(record.created),
        "level": "INFO",
        "logger": "app.extras",
        "message": "m 1",
        "user": "u",
        "n": 1,
    }

    class Early(logging.LogRecord):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.tenant = "t1"  # set before the standard attributes
            super().__init__(*args, **kwargs)
            self.trace_id = "abc"

    early = Early("app", logging.INFO, "f.py", 1, "m", None, None)
    early.__dict__.update({"user": "u"})
    doc = _document(encoder, early)
    assert (doc["tenant"], doc["trace_id"], doc["user"]) == ("t1", "abc", "u")

    old_factory = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        rec = old_factory(*args, **kwargs)
        rec.span_id = "s1"
        return rec

    logging.setLogRecordFactory(factory)
    try:
        made = logger.makeRecord("app", logging.INFO, "f.py", 1, "m", (), None, extra={"k": 2})
    finally:
        logging.setLogRecordFactory(old_factory)
    doc = _document(encoder, made)
    assert (doc["span_id"], doc["k"]) == ("s1", 2)
    assert not {"msg", "args", "asctime", "created", "taskName", "thread"} & set(doc)


_HELD_OUTPUTS = """
import logging, resource, sys
from logdrain.config import resolve
from logdrain.encode import Encoder
from logdrain.mapping import Mapper
from logdrain.records import stdlib_item
preset = sys.argv[1]
settings = resolve({"url": "http://127.0.0.1:9/x", "preset": preset})
encoder = Encoder(settings)
logger = logging.getLogger("held")
items = [
    stdlib_item(logger.makeRecord("held", 20, "f.py", 1, "message %d", (i,), None, extra={"n": i}))
    for i in range(4000)
]
if settings.preset.record is None:
    encode = lambda: [encoder.encode(item) for item in items]
else:
    mapper = Mapper(settings, encoder)
    encode = lambda: mapper.parts(items, "abc")
encode()  # the pages the held outputs themselves need, once
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
held = [encode() for _ in range(3)]
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 12000)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="page-fault counts: Linux")
@pytest.mark.parametrize("preset", ["ndjson", "elasticsearch"])
def test_held_record_outputs_do_not_each_take_fresh_memory(preset: str) -> None:
    """orjson writes into a buffer of some KiB and shrinks it in place: held
    as they are, a batch's per-record outputs took about one fresh page each
    (a page fault a record: most of an encoding's cost). Copied out, the
    next call reuses the buffer."""
    pytest.importorskip("orjson")
    done = subprocess.run(
        [sys.executable, "-c", _HELD_OUTPUTS, preset],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    faults_per_record = float(done.stdout)
    assert faults_per_record < 0.3, faults_per_record
