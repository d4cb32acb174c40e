"""max_buffer_bytes: the byte bound over everything a Drain holds.

The ledger side (RecordQueue with a byte bound, no network, no senders), the
caller-side estimate and reduction (``sizing``, the front ends), and the
setting itself (parsing, validation, environment, dictConfig). The outage
scenarios with real senders are in test_buffer_bytes_outage.py.
"""

from __future__ import annotations

import gc
import logging
import logging.config
import sys
import threading
import weakref
from collections import deque
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from logdrain import ConfigError, Drain, DrainHandler, DrainProcessor
from logdrain.config import resolve
from logdrain.jsonsafe import MAX_ARRAY_ITEMS, TRUNCATION_MARK, to_jsonable
from logdrain.queue import RecordQueue
from logdrain.sizing import OTHER, SMALL, charge, cut_text, measure, stdlib_charge

pytestmark = pytest.mark.timeout(120)

URL = "http://127.0.0.1:9/x"
CAP = 30.0  # generous cap for every wait: a pass never comes near it
BIG = 10 * SMALL  # the charge of one large record in the ledger tests
POLICIES = ("drop_oldest", "drop_newest", "block")

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    database=None,  # the checkout is shared: write no .hypothesis directory
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def queue(policy: str, max_bytes: int = 4 * BIG, **kw: Any) -> RecordQueue:
    """A queue whose record bound (1000) is never the one reached."""
    return RecordQueue(1000, policy, kw.pop("block_timeout", 0.0), 1000, max_bytes=max_bytes, **kw)


def held(q: RecordQueue) -> int:
    snap = q.snapshot()
    assert snap.balanced, snap
    return snap.buffered_bytes


# -- the ledger: each policy at the byte bound ----------------------------------------


def test_drop_oldest_evicts_the_oldest_at_the_byte_bound() -> None:
    q = queue("drop_oldest")
    for seq in range(6):
        assert q.put(seq, BIG) is True
        assert held(q) <= 4 * BIG
    snap = q.snapshot()
    assert (snap.queued, snap.dropped_overflow, snap.submitted) == (4, 2, 6)
    assert snap.queued_bytes == 4 * BIG
    _, items = q.take(100, None)
    assert items == [2, 3, 4, 5]  # the newest, in order


@pytest.mark.parametrize("policy", ["drop_newest", "block"])
def test_refusing_policies_refuse_the_newest_at_the_byte_bound(policy: str) -> None:
    q = queue(policy)  # block_timeout=0: refused at once
    accepted = [q.put(seq, BIG) for seq in range(6)]
    assert accepted == [True] * 4 + [False] * 2
    snap = q.snapshot()
    assert (snap.queued, snap.dropped_overflow, snap.submitted) == (4, 2, 6)
    assert snap.balanced
    _, items = q.take(100, None)
    assert items == [0, 1, 2, 3]  # the oldest


def test_small_records_count_against_the_byte_bound_too() -> None:
    """Each record is charged at least sizing.SMALL, so the bound holds for
    floods of small records too (at default settings the record bound is
    reached first)."""
    q = queue("drop_newest", max_bytes=10 * SMALL)
    accepted = [q.put(seq) for seq in range(12)]
    assert accepted == [True] * 10 + [False] * 2
    assert q.snapshot().queued_bytes == 10 * SMALL
    q = queue("drop_oldest", max_bytes=10 * SMALL)
    for seq in range(12):
        assert q.put(seq) is True
    assert q.snapshot().dropped_overflow == 2


def test_block_waits_until_the_senders_let_go() -> None:
    """Under block, a record that does not fit waits for bytes, not only for
    records: taking a lot frees no bytes, letting go of it does."""
    q = queue("block", block_timeout=CAP)
    for seq in range(4):
        assert q.put(seq, BIG) is True
    result: list[bool] = []
    blocked = threading.Thread(target=lambda: result.append(q.put(4, BIG)), daemon=True)
    blocked.start()
    lot, items = q.take(100, None)
    assert lot is not None
    assert items == [0, 1, 2, 3]
    q.hold(lot, parts=4 * SMALL, body=4 * SMALL)
    q.settle(lot, 4, "delivered")
    q.release(lot)
    blocked.join(CAP)
    assert not blocked.is_alive()
    assert result == [True]
    snap = q.snapshot()
    assert (snap.queued, snap.delivered, snap.dropped_overflow) == (1, 4, 0)
    assert snap.in_flight_bytes == 0
    assert snap.balanced


@pytest.mark.parametrize("policy", POLICIES)
def test_a_record_larger_than_the_whole_bound_is_refused_at_once(policy: str) -> None:
    """Never a hang (block waits for nothing that could come) and nothing
    evicted for it (drop_oldest would empty the queue and still not fit)."""
    q = queue(policy, block_timeout=CAP)
    assert q.put("small") is True
    assert q.put("large", BIG) is True
    result: list[bool] = []
    putter = threading.Thread(
        target=lambda: result.append(q.put("too big", 4 * BIG + 1)), daemon=True
    )
    putter.start()
    putter.join(CAP)
    assert not putter.is_alive()
    assert result == [False]
    snap = q.snapshot()
    assert (snap.queued, snap.dropped_overflow, snap.submitted) == (2, 1, 3)
    assert snap.balanced


def test_what_the_senders_hold_counts_until_they_let_go() -> None:
    q = queue("drop_newest", max_bytes=100 * BIG)
    for seq in range(3):
        q.put(seq, BIG)
    lot, _ = q.take(100, None)
    assert lot is not None
    snap = q.snapshot()
    assert snap.queued_bytes == 0
    assert snap.in_flight_bytes >= 2 * 3 * BIG  # the records and their parts, reserved
    while q.put("more", BIG):  # fill what is left
        assert held(q) <= 100 * BIG
    assert q.snapshot().dropped_overflow == 1
    q.hold(lot, parts=3 * BIG, body=2 * BIG)
    assert q.snapshot().in_flight_bytes == 3 * BIG + 3 * BIG + 2 * 2 * BIG
    q.release(lot, 3 * BIG)  # a batch of it had its outcome
    assert q.snapshot().in_flight_bytes == 3 * BIG + 2 * 2 * BIG
    q.settle(lot, 3, "failed")
    q.release(lot)
    snap = q.snapshot()
    assert snap.in_flight_bytes == 0
    assert snap.balanced
    assert q.put("fits again", BIG) is True


def test_drop_oldest_makes_room_when_the_senders_share_grows() -> None:
    """A take reserves more than its records were charged (they are about
    to be encoded): under drop_oldest the oldest queued records go at once,
    counted, so the total never passes the bound."""
    q = queue("drop_oldest", max_bytes=20 * BIG)
    for seq in range(20):
        assert q.put(seq, BIG) is True
    assert held(q) == 20 * BIG
    lot, items = q.take(2, None)
    assert lot is not None
    assert items == [0, 1]
    snap = q.snapshot()
    assert snap.buffered_bytes <= 20 * BIG
    assert snap.dropped_overflow > 0
    assert snap.queued == 18 - snap.dropped_overflow
    _, rest = q.take(100, None)
    assert rest == list(range(20 - len(rest), 20))  # the oldest went


def test_a_take_holds_at_most_its_byte_budget() -> None:
    q = queue("drop_oldest", max_bytes=100 * BIG, take_bytes=3 * BIG)
    for seq in range(10):
        q.put(seq, BIG)
    sizes = []
    while True:
        lot, items = q.take(100, None)
        if lot is None:
            break
        sizes.append(len(items))
    assert sizes == [3, 3, 3, 1]
    q = queue("drop_oldest", max_bytes=100 * BIG, take_bytes=3 * BIG)
    q.put("huge", 50 * BIG)
    q.put("next", BIG)
    lot, items = q.take(100, None)
    assert items == ["huge"]  # one record at least, however large


OPS = st.lists(
    st.tuples(
        st.sampled_from(["put"] * 5 + ["take", "hold", "release", "settle"]),
        st.integers(min_value=0, max_value=30),
    ),
    max_size=80,
)


@PROPERTY
@given(policy=st.sampled_from(POLICIES), ops=OPS)
def test_the_ledger_balances_and_the_bound_holds_under_any_sequence(
    policy: str, ops: list[tuple[str, int]]
) -> None:
    """Random puts of small and large records, takes, holds, releases and
    settles: the identity holds after every step, the queued bytes are what
    was charged, and a record is admitted only within the bound."""
    max_bytes = 30 * SMALL
    q = queue(policy, max_bytes=max_bytes, take_bytes=8 * SMALL)
    charged: deque[tuple[int, int]] = deque()  # (seq, charge) of the queued records
    lots: list[Any] = []
    seq = 0
    for op, a in ops:
        if op == "put":
            size = 0 if a < 10 else a * SMALL // 3  # small, or large (some above the bound)
            before = q.snapshot()
            if q.put(seq, size):
                snap = q.snapshot()
                assert snap.buffered_bytes <= max_bytes
                evicted = snap.dropped_overflow - before.dropped_overflow
                assert evicted == 0 or policy == "drop_oldest"
                for _ in range(evicted):
                    charged.popleft()
                charged.append((seq, max(size, SMALL)))
            seq += 1
        elif op == "take":
            before = q.snapshot().dropped_overflow
            lot, items = q.take(a + 1, None)
            assert [s for s, _ in list(charged)[: len(items)]] == items
            for _ in items:
                charged.popleft()
            for _ in range(q.snapshot().dropped_overflow - before):  # evicted for the reservation
                charged.popleft()
            if lot is not None:
                lots.append(lot)
        elif op == "hold" and lots:
            lot = lots[a % len(lots)]
            q.hold(lot, parts=a * 100, body=a * 50)
        elif op == "release" and lots:
            q.release(lots[a % len(lots)], a * 200)
        elif op == "settle" and lots:
            lot = lots.pop(a % len(lots))
            q.settle(lot, lot.remaining, "delivered")
            q.release(lot)
        snap = q.snapshot()
        assert snap.balanced, snap
        assert snap.queued == len(charged)
        assert snap.queued_bytes == sum(c for _, c in charged)
        if policy == "drop_oldest" and snap.queued:
            assert snap.buffered_bytes <= max_bytes
    for lot in lots:
        q.settle(lot, lot.remaining, "delivered")
        q.release(lot)
    assert q.snapshot().in_flight_bytes == 0


# -- the caller-side estimate and reduction -------------------------------------------


LIMIT = 1024  # max_record_bytes in these tests


def test_a_huge_string_is_cut_with_the_marker_counting_from_the_original() -> None:
    text = "é" * 5000
    size, kept = measure(text, LIMIT)
    assert kept == "é" * LIMIT + TRUNCATION_MARK.format(5000 - LIMIT)
    assert size == len(kept)
    assert measure("short", LIMIT) == (5, "short")
    assert cut_text("abcdef", 2) == "ab" + TRUNCATION_MARK.format(4)


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_huge_bytes_become_their_text_cut(kind: Any) -> None:
    data = kind(b"\xff" + b"x" * 4999)
    size, kept = measure(data, LIMIT)
    text = to_jsonable(data)  # what the encoder would write: \xff as 4 characters
    assert kept == text[:LIMIT] + TRUNCATION_MARK.format(len(text) - LIMIT)
    assert size == len(kept)
    small = kind(b"abc")
    assert measure(small, LIMIT) == (3, small)


def test_values_are_estimated_in_constant_time_without_walking_containers() -> None:
    nested = [["x" * 100_000] * 10]
    assert measure(nested, LIMIT) == (OTHER + 16, nested)  # its length, not its contents
    assert measure({"a": 1, "b": 2}, LIMIT)[0] == OTHER + 32
    assert measure(12, LIMIT) == (0, 12)
    assert measure(None, LIMIT) == (0, None)
    obj = object()
    assert measure(obj, LIMIT) == (OTHER, obj)


class Hostile:
    """An array-like whose every attribute raises (and whose repr would too)."""

    @property
    def dtype(self) -> Any:
        raise RuntimeError("dtype exploded")

    def __getattr__(self, name: str) -> Any:
        raise SystemExit(f"{name} exploded")


def test_a_hostile_value_is_charged_and_kept_never_raises() -> None:
    value = Hostile()
    assert measure(value, LIMIT) == (OTHER, value)


def test_big_arrays_become_the_encoders_summary_and_views_drop_their_base() -> None:
    np = pytest.importorskip("numpy")
    big = np.random.rand(MAX_ARRAY_ITEMS + 1)
    size, kept = measure(big, LIMIT)
    assert kept == to_jsonable(big)  # the summary the encoder ships
    assert kept.startswith("<array shape=")
    assert size == len(kept)
    small = np.arange(10, dtype=np.float64)
    assert measure(small, LIMIT) == (OTHER + 80, small)
    base = np.random.rand(1_000_000)
    ref = weakref.ref(base)
    size, view = measure(base[:5], LIMIT)
    assert size == OTHER + 40
    assert view.tolist() == base[:5].tolist()
    del base
    gc.collect()
    assert ref() is None  # the copy does not keep the 8 MB base alive


def test_charge_reduces_in_place_and_is_zero_for_a_small_record() -> None:
    record = {"message": "hi", "n": 1, "payload": "x" * 5000}
    size = charge(record, LIMIT)
    assert size > SMALL
    assert record["payload"] == "x" * LIMIT + TRUNCATION_MARK.format(5000 - LIMIT)
    assert charge({"message": "hi", "n": 1}, LIMIT) == 0


def test_stdlib_charge_reduces_the_message_extras_and_msg() -> None:
    record = logging.LogRecord("app", logging.INFO, __file__, 1, "x" * 5000, None, None)
    record.blob = b"y" * 5000
    attrs = record.__dict__.copy()
    size, message = stdlib_charge(attrs, record.getMessage(), LIMIT)
    assert message == "x" * LIMIT + TRUNCATION_MARK.format(5000 - LIMIT)
    assert attrs["msg"] is message  # not shipped, and no longer the caller's 5000 characters
    assert attrs["blob"] == "y" * LIMIT + TRUNCATION_MARK.format(5000 - LIMIT)
    assert size > 2 * LIMIT


def _logger(handler: logging.Handler) -> logging.Logger:
    log = logging.getLogger(f"test.buffer_bytes.{id(handler)}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.handlers[:] = [handler]
    return log


def _fresh(n: int, tag: str) -> str:
    return tag * n  # a new string object each call: nothing else refers to it


@pytest.mark.parametrize("formatter", [None, logging.Formatter("%(message)s")])
def test_the_handler_does_not_keep_the_callers_huge_values(formatter: Any) -> None:
    """A huge str or bytes value in extra (or as the message) is reduced on
    the caller's thread: the queue keeps max_record_bytes of it, not it."""
    handler = DrainHandler(URL, max_record_bytes=4096, flush_interval=3600)
    handler.setFormatter(formatter)
    log = _logger(handler)
    try:
        payload = _fresh(100_000, "p")
        blob = _fresh(100_000, "b").encode()
        message = _fresh(100_000, "m")
        base = sys.getrefcount(payload), sys.getrefcount(blob), sys.getrefcount(message)
        log.info(message, extra={"payload": payload, "blob": blob})
        log.warning("%s", message)
        after = sys.getrefcount(payload), sys.getrefcount(blob), sys.getrefcount(message)
        assert after == base  # no reference left in the queue
        stats = handler.drain.stats()
        assert stats.queued == 2
        assert 2 * 4096 < stats.queued_bytes < 8 * 4096
    finally:
        handler.drain.close(0)


class Payload:
    """A caller's object logged as the message itself: ``log.info(obj)``."""

    def __init__(self) -> None:
        self.data = bytearray(1_000_000)

    def __str__(self) -> str:
        return "<payload of 1 MB>"


@pytest.mark.parametrize("formatter", [None, logging.Formatter("%(message)s")])
def test_an_object_logged_as_the_message_is_not_kept(formatter: Any) -> None:
    """``msg`` does not ship (the formatted message does): the snapshot keeps
    the message, not the caller's object."""
    handler = DrainHandler(URL, flush_interval=3600)
    handler.setFormatter(formatter)
    log = _logger(handler)
    try:
        payload = Payload()
        ref = weakref.ref(payload)
        log.info(payload)
        log.info(payload, extra={"user": "u"})
        del payload
        gc.collect()
        assert ref() is None
        assert handler.drain.stats().queued == 2
    finally:
        handler.drain.close(0)


def test_a_message_another_formatter_left_on_the_record_is_not_kept() -> None:
    """A handler with a formatter before ours sets ``record.message``: the
    snapshot holds it too, and it is reduced like the message."""
    first = logging.Handler()
    first.setFormatter(logging.Formatter("%(message)s"))
    first.emit = first.format  # type: ignore[method-assign]
    handler = DrainHandler(URL, max_record_bytes=4096, flush_interval=3600)
    log = _logger(handler)
    log.handlers.insert(0, first)
    try:
        message = _fresh(100_000, "f")
        base = sys.getrefcount(message)
        log.info(message)
        assert sys.getrefcount(message) == base
    finally:
        handler.drain.close(0)


def test_the_processor_and_submit_do_not_keep_the_callers_huge_values() -> None:
    drain = Drain(URL, max_record_bytes=4096, flush_interval=3600)
    processor = DrainProcessor(drain)
    try:
        payload = _fresh(100_000, "q")
        base = sys.getrefcount(payload)
        processor(None, "info", {"event": "e", "payload": payload})
        drain.submit({"message": "m", "payload": payload})
        assert sys.getrefcount(payload) == base
        assert drain.stats().queued == 2
        assert drain.stats().queued_bytes > 2 * 4096
    finally:
        drain.close(0)


def test_a_small_record_is_charged_small() -> None:
    handler = DrainHandler(URL, flush_interval=3600)
    log = _logger(handler)
    try:
        for i in range(10):
            log.info("msg %d", i, extra={"user": "u", "n": i})
        assert handler.drain.stats().queued_bytes == 10 * SMALL
    finally:
        handler.drain.close(0)


# -- the setting ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (0, "must be above 0"),
        (-1, "must be above 0"),
        ("-5", "must be above 0"),
        ("lots", "is not a size"),
        ("64 potatoes", "is not a size"),
        ("1.5", "is not a size"),
        ("MiB", "is not a size"),
        (True, "got a bool"),
        (2.5, "is not a size"),
        ([64], "is not a size"),
    ],
)
def test_a_wrong_max_buffer_bytes_names_the_field_and_the_fix(value: Any, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        Drain(URL, max_buffer_bytes=value)
    assert info.value.field == "max_buffer_bytes"
    message = str(info.value)
    assert words in message
    assert "64MiB" in message  # the fix shows the form to use


def test_max_buffer_bytes_must_hold_a_few_of_the_largest_records() -> None:
    with pytest.raises(ConfigError) as info:
        Drain(URL, max_buffer_bytes="1MiB", max_record_bytes=512 * 1024)
    assert info.value.field == "max_buffer_bytes"
    assert "max_record_bytes" in str(info.value)
    assert str(4 * 512 * 1024) in info.value.fix
    # Given alone, a small bound lowers max_record_bytes (as a small batch_bytes does).
    assert resolve({"url": URL, "max_buffer_bytes": "512KiB"}).max_record_bytes == 128 * 1024
    with pytest.raises(ConfigError) as info:
        Drain(URL, max_buffer_bytes=2048)
    assert info.value.field == "max_buffer_bytes"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, 64 * 1024 * 1024),
        (8_000_000, 8_000_000),
        ("8000000", 8_000_000),
        ("8_000_000", 8_000_000),
        ("8MB", 8_000_000),
        ("8 MiB", 8 * 1024 * 1024),
        ("8m", 8 * 1024 * 1024),
        ("1.5GiB", 3 * 1024**3 // 2),
        ("2048KiB", 2 * 1024 * 1024),
    ],
)
def test_max_buffer_bytes_takes_bytes_and_sizes(value: Any, expected: int) -> None:
    assert resolve({"url": URL, "max_buffer_bytes": value}).max_buffer_bytes == expected


def test_max_buffer_bytes_from_the_environment_and_dictconfig(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOGDRAIN_MAX_BUFFER_BYTES", "32MiB")
    assert resolve({"url": URL}).max_buffer_bytes == 32 * 1024 * 1024
    monkeypatch.setenv("LOGDRAIN_MAX_BUFFER_BYTES", "32 parsecs")
    with pytest.raises(ConfigError) as info:
        resolve({"url": URL})
    assert info.value.field == "max_buffer_bytes"
    monkeypatch.delenv("LOGDRAIN_MAX_BUFFER_BYTES")
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {
                "drain": {
                    "()": "logdrain.DrainHandler",
                    "url": URL,
                    "max_buffer_bytes": "16MiB",
                    "flush_interval": "3600",
                }
            },
            "loggers": {"test.buffer_bytes.dictconfig": {"handlers": ["drain"]}},
        }
    )
    handler = logging.getLogger("test.buffer_bytes.dictconfig").handlers[0]
    try:
        assert isinstance(handler, DrainHandler)
        assert handler.drain.settings.max_buffer_bytes == 16 * 1024 * 1024
    finally:
        logging.getLogger("test.buffer_bytes.dictconfig").handlers.clear()
        handler.close()


def test_a_crash_record_is_charged_its_size_and_reduced() -> None:
    """An uncaught exception's record (the exit/crash hooks) is charged like a
    handler's: a huge exception message is cut, and what stays is counted."""
    from logdrain import lifecycle

    drain = Drain(URL, flush_interval=3600, crash_timeout=0, max_record_bytes=64 * 1024)
    try:
        huge = ValueError("x" * 2_000_000)
        lifecycle._ship_crash(ValueError, huge, None, "worker-1")
        stats = drain.stats()
        assert stats.queued == 1
        assert 64 * 1024 < stats.queued_bytes < 3 * 64 * 1024
    finally:
        drain.close(0)


_EXTRA_VALUES = st.one_of(
    st.text(max_size=3000),
    st.integers(),
    st.floats(allow_nan=False),
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
    st.binary(max_size=3000),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(message="m", extra={"payload": "x" * 900})
@example(message="m", extra={"payload": "x" * 3000, "n": 1})
@example(message="m" * 900, extra={"user": [1, 2]})
@given(
    message=st.text(max_size=3000),
    extra=st.dictionaries(st.sampled_from(["a", "user", "payload", "n"]), _EXTRA_VALUES),
)
def test_the_handlers_inlined_estimate_charges_as_sizing_does(
    message: str, extra: dict[str, Any]
) -> None:
    """``DrainHandler.handle`` inlines ``sizing.tail_size`` on its fast path; a
    handler with a filter takes the plain path (``emit``): both charge alike."""
    fast = DrainHandler(URL, flush_interval=3600, max_record_bytes=1024)
    plain = DrainHandler(URL, flush_interval=3600, max_record_bytes=1024)
    plain.addFilter(lambda record: True)
    try:
        for handler in (fast, plain):
            _logger(handler).info("%s", message, extra=extra)
        assert fast.drain.stats().queued_bytes == plain.drain.stats().queued_bytes
    finally:
        fast.drain.close(0)
        plain.drain.close(0)
