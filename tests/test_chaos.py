"""Chaos: under a random mix of collector faults and hostile records, every
promise of the accounting holds.

Each hypothesis example builds a fresh :class:`~logdrain.testing.Collector`
and a fresh :class:`~logdrain.Drain` (fed through a ``DrainHandler`` on a
private logger and through ``Drain.submit``), queues a drawn list of faults
and scripted answers, optionally takes the collector down and up while 1-3
threads log a drawn mix of plain and hostile records, and samples
``stats()`` all along. Then it closes the drain and checks:

- every sample balanced (``submitted == delivered + pending + lost``), with
  no negative counter, ``queued <= queue_size`` and ``in_flight`` at most
  ``concurrency`` batches;
- no sender thread died while the drain was open;
- ``close()`` returned by its deadline (plus a generous slack: a bound on a
  deadline, not a speed), and afterwards nothing is queued or in flight,
  ``submitted`` is exactly what was offered, and a ``True`` from ``close()``
  means nothing was abandoned at the deadline;
- the collector stored only records that were submitted (no invention),
  and at least ``delivered`` distinct ones (a record counted delivered was
  answered 2xx, and the collector stores before it answers 2xx);
- with no fault at all, no record was rejected or failed (one bad value
  never loses the record) and no exception escaped into a sender;
- stderr never shows the token, even when the collector echoes it back.

Every wait is bounded, so a hang fails the example instead of the run.
``CHAOS_EXAMPLES=200`` runs more examples locally.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import logging
import math
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import logdrain
from logdrain.testing import Collector

pytestmark = pytest.mark.timeout(240)

TOKEN = "chaos-secret-token"
EXAMPLES = int(os.environ.get("CHAOS_EXAMPLES", "12"))
SLACK = 5.0  # on top of close()'s own deadline: generous, never a measured duration
JOIN = 30.0  # cap on any logging thread / the checker (block_timeout is tiny here)
_counter = itertools.count()

try:  # an optional hostile value
    import numpy as np
except ImportError:  # pragma: no cover - numpy is in the test environment
    np = None  # type: ignore[assignment]


# -- hostile values -------------------------------------------------------------------


class ItemsRaise(dict[str, Any]):
    def items(self) -> Any:
        raise KeyError("items exploded")


class ReprRaise:
    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")


class SlowRepr:
    def __repr__(self) -> str:
        time.sleep(0.05)
        return "<slow repr>"


def _deep(depth: int) -> Any:
    value: Any = "bottom"
    for i in range(depth):
        value = [value] if i % 2 else {"d": value}
    return value


def _cycle() -> Any:
    d: dict[str, Any] = {"name": "cycle"}
    d["self"] = d
    return d


HOSTILE: dict[str, Callable[[], Any]] = {
    "plain": lambda: "ordinary value",
    "items_raise": lambda: ItemsRaise(a=1),
    "repr_raise": ReprRaise,
    "slow_repr": SlowRepr,
    "nan": lambda: {"nan": math.nan, "inf": -math.inf},
    "huge_int": lambda: 10**5000,  # past int->str's digit limit
    "u64_overflow": lambda: 2**64 + 1,
    "deep": lambda: _deep(5000),
    "cycle": _cycle,
    "bad_utf8": lambda: b"\xff\xfe\xc3(chaos)\x80",
    "big_string": lambda: "x" * 400_000,
}
if np is not None:
    HOSTILE["numpy"] = lambda: np.arange(12).reshape(3, 4)
    HOSTILE["numpy_big"] = lambda: np.zeros(20_000)
    HOSTILE["numpy_nan"] = lambda: np.float64("nan")

#: How a record is offered: through the handler, with a %-format that fails,
#: with an exception, or as a mapping to Drain.submit().
VIAS = ("stdlib", "stdlib", "bad_format", "exc_info", "submit")


# -- faults ---------------------------------------------------------------------------

ECHO = f'{{"error": "bad credentials: Authorization: Bearer {TOKEN}"}}'.encode()

FAULTS: dict[str, Callable[[Collector], None]] = {
    "trickle_status": lambda c: c.fault("trickle_status", interval=0.3),
    "trickle_body": lambda c: c.fault("trickle_body", interval=0.3),
    "trickle_body_chunked": lambda c: c.fault("trickle_body", interval=0.3, chunked=True),
    "huge_body": lambda c: c.fault("huge_body", size=5_000_000),
    "endless_body": lambda c: c.fault("endless_body"),
    "cut_chunked_200": lambda c: c.fault("cut_chunked", status=200),
    "cut_chunked_503": lambda c: c.fault("cut_chunked", status=503),
    "reset": lambda c: c.fault("reset"),
    "reset_after_200": lambda c: c.fault("reset", status=200, after=20),
    "silent": lambda c: c.fault("silent"),
    "partial_503": lambda c: c.fault("partial", keep=1, status=503),
    "gzip_bomb": lambda c: c.fault("gzip_bomb", size=50_000_000),
    # Scripted answers echo the token back, as some collectors do.
    "500": lambda c: c.script(500, body=ECHO),
    "503": lambda c: c.script(503, headers={"Retry-After": "0.05"}, body=ECHO),
    "429": lambda c: c.script(429, headers={"Retry-After": "0.1"}, body=ECHO),
    "400": lambda c: c.script(400, body=ECHO),
    "413": lambda c: c.script(413, body=ECHO),
}


@dataclasses.dataclass(frozen=True)
class Plan:
    concurrency: int
    queue_size: int
    batch_size: int
    overflow: str
    json_encoder: str
    format: str
    faults: tuple[str, ...]
    outage: tuple[float, float] | None  # (after, for) seconds, or none
    records: tuple[tuple[str, str], ...]  # (via, hostile kind) per record
    threads: int
    pace: float  # seconds between two records of one thread
    flush_first: bool
    request_timeout: float  # long: only the close deadline cuts a trickle short
    close_timeout: float
    after_close: int  # records offered after close (refused, dropped_closed)


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    queue_size = draw(st.sampled_from([50, 64]) | st.integers(50, 500))  # small ones overflow
    n_records = draw(st.integers(1, 300))  # drawn first: hypothesis keeps lists short
    return Plan(
        concurrency=draw(st.integers(1, 4)),
        queue_size=queue_size,
        batch_size=draw(st.integers(1, min(queue_size, 200))),
        overflow=draw(st.sampled_from(["drop_oldest", "drop_newest", "block"])),
        json_encoder=draw(st.sampled_from(["auto", "stdlib"])),
        format=draw(st.sampled_from(["json", "ndjson"])),
        faults=tuple(draw(st.lists(st.sampled_from(sorted(FAULTS)), max_size=8))),
        outage=draw(
            st.none()
            | st.tuples(st.sampled_from([0.02, 0.1, 0.3]), st.sampled_from([0.05, 0.2, 0.5]))
        ),
        records=tuple(
            draw(
                st.lists(
                    st.tuples(st.sampled_from(VIAS), st.sampled_from(sorted(HOSTILE))),
                    min_size=n_records,
                    max_size=n_records,
                )
            )
        ),
        threads=draw(st.integers(1, 3)),
        pace=draw(st.sampled_from([0.0, 0.001, 0.004])),
        flush_first=draw(st.booleans()),
        request_timeout=draw(st.sampled_from([1.0, 8.0])),
        close_timeout=draw(st.sampled_from([0.3, 1.0, 2.0])),
        after_close=draw(st.integers(0, 3)),
    )


# -- the example ----------------------------------------------------------------------


class Sink(io.TextIOBase):
    """Stands in for sys.stderr: keeps logdrain's lines for the checks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parts: list[str] = []

    def write(self, text: str) -> int:
        with self._lock:
            self._parts.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def lines(self) -> list[str]:
        with self._lock:
            return "".join(self._parts).splitlines()


class Checker(threading.Thread):
    """Samples ``stats()`` and the sender threads until stopped."""

    def __init__(self, drain: logdrain.Drain, plan: Plan, prefix: str) -> None:
        super().__init__(name="chaos-checker", daemon=True)
        self.drain = drain
        self.plan = plan
        self.prefix = prefix
        self.senders_up = threading.Event()  # set once the first record started them
        self.closing = threading.Event()  # set just before close() is called
        self.halt = threading.Event()
        self.problems: list[str] = []
        self.samples = 0
        self.thread_samples = 0

    def problem(self, text: str) -> None:
        if len(self.problems) < 10:
            self.problems.append(text)

    def run(self) -> None:
        plan = self.plan
        last_submitted = 0
        while not self.halt.is_set():
            s = self.drain.stats()
            self.samples += 1
            if not s.balanced:
                self.problem(f"unbalanced sample: {s}")
            if min(dataclasses.astuple(s)) < 0:
                self.problem(f"negative counter: {s}")
            if s.queued > plan.queue_size:
                self.problem(f"queued above queue_size {plan.queue_size}: {s}")
            if s.in_flight > plan.concurrency * plan.batch_size:
                self.problem(f"in_flight above concurrency * batch_size: {s}")
            if s.submitted < last_submitted:
                self.problem(f"submitted went down from {last_submitted}: {s}")
            last_submitted = s.submitted
            if self.senders_up.is_set() and not self.closing.is_set():
                names = [t.name for t in threading.enumerate() if t.name.startswith(self.prefix)]
                if not self.closing.is_set():  # still open all through the enumeration
                    self.thread_samples += 1
                    if len(names) < plan.concurrency:
                        self.problem(
                            f"only {len(names)} of {plan.concurrency} sender threads alive "
                            f"while open: {sorted(names)}; stats {s}"
                        )
            time.sleep(0.001)


def _offer(
    drain: logdrain.Drain, log: logging.Logger, run: str, seq: int, *, via: str, kind: str
) -> None:
    value = HOSTILE[kind]()
    extra = {"chaos_run": run, "chaos_seq": seq, "chaos_kind": kind, "chaos_value": value}
    if via == "submit":
        drain.submit({"event": f"chaos {seq}", **extra})
    elif via == "bad_format":
        log.info("chaos %d %d", seq, "not a number", extra=extra)
    elif via == "exc_info":
        try:
            raise ValueError(f"chaos {seq}")
        except ValueError:
            log.exception("chaos %d failed", seq, extra=extra)
    else:
        log.info("chaos %d", seq, extra=extra)


def _run_example(plan: Plan) -> None:
    n = next(_counter)
    run = f"{n}-{uuid.uuid4().hex[:8]}"
    name = f"chaos-{run}"
    prefix = f"logdrain-{name}-send-"
    sink = Sink()
    old_stderr = sys.stderr
    collector = Collector()
    drain: logdrain.Drain | None = None
    log = logging.getLogger(f"logdrain-chaos.{run}")
    handler: logging.Handler | None = None
    checker: Checker | None = None
    try:
        collector.start()
        for fault in plan.faults:
            FAULTS[fault](collector)
        sys.stderr = sink
        drain = logdrain.Drain(
            collector.url,
            name=name,
            token=TOKEN,
            concurrency=plan.concurrency,
            queue_size=plan.queue_size,
            batch_size=plan.batch_size,
            overflow=plan.overflow,
            block_timeout=0.02,
            json_encoder=plan.json_encoder,
            format=plan.format,
            flush_interval=0.02,
            backoff_initial=0.01,
            backoff_max=0.05,
            retry_after_max=0.2,
            max_attempts=3,
            max_retry_time=2,
            request_timeout=plan.request_timeout,
            read_timeout=1,
            connect_timeout=1,
            shutdown_timeout=2,
            flush_timeout=1,
            warn_interval=0.001,
            capture_crashes=False,
        )
        handler = logdrain.DrainHandler(drain=drain)
        log.propagate = False
        log.setLevel(logging.DEBUG)
        log.addHandler(handler)

        checker = Checker(drain, plan, prefix)
        checker.start()
        offered = 0
        # Record 0, plain, on this thread: it starts the senders.
        _offer(drain, log, run, 0, via="stdlib", kind="plain")
        offered += 1
        checker.senders_up.set()

        records = list(enumerate(plan.records, start=1))
        shares = [records[i :: plan.threads] for i in range(plan.threads)]
        barrier = threading.Barrier(plan.threads + 1)
        errors: list[BaseException] = []

        def logger_thread(share: list[tuple[int, tuple[str, str]]]) -> None:
            try:
                barrier.wait(JOIN)
                for seq, (via, kind) in share:
                    _offer(drain, log, run, seq, via=via, kind=kind)
                    if plan.pace:
                        time.sleep(plan.pace)
            except BaseException as exc:  # reported below, never lost in a thread
                errors.append(exc)

        loggers = [
            threading.Thread(target=logger_thread, args=(share,), name=f"chaos-log-{i}")
            for i, share in enumerate(shares)
        ]
        for thread in loggers:
            thread.start()
        barrier.wait(JOIN)
        if plan.outage is not None:
            time.sleep(plan.outage[0])
            collector.down()
            time.sleep(plan.outage[1])
            collector.up()
        for thread in loggers:
            thread.join(JOIN)
        assert not any(t.is_alive() for t in loggers), (
            "a logging thread hung (blocked in a log call)"
        )
        assert not errors, f"a log call raised: {errors[0]!r}"
        offered += len(plan.records)

        if plan.flush_first:
            started = time.monotonic()
            drain.flush(1.0)
            took = time.monotonic() - started
            assert took <= 1.0 + SLACK, f"flush(1.0) took {took:.1f} s"

        # close() on its own thread, so a close that never returns fails here.
        outcome: list[bool] = []
        checker.closing.set()
        closer = threading.Thread(
            target=lambda: outcome.append(drain.close(plan.close_timeout)),
            name="chaos-closer",
            daemon=True,
        )
        started = time.monotonic()
        closer.start()
        closer.join(plan.close_timeout + SLACK)
        took = time.monotonic() - started
        assert outcome, f"close({plan.close_timeout}) had not returned after {took:.1f} s"
        assert took <= plan.close_timeout + SLACK, f"close({plan.close_timeout}) took {took:.1f} s"
        at_close = drain.stats()

        for i in range(plan.after_close):  # refused, counted dropped_closed
            _offer(drain, log, run, len(plan.records) + 1 + i, via="stdlib", kind="plain")
        offered += plan.after_close
        time.sleep(0.05)  # a few more samples after close
        checker.halt.set()
        checker.join(JOIN)
        assert not checker.is_alive(), "the stats checker hung (stats() blocked)"
        final = drain.stats()
        stored = collector.records
        requests = collector.requests
    finally:
        sys.stderr = old_stderr
        if checker is not None:
            checker.halt.set()
        if handler is not None:
            log.removeHandler(handler)
        if drain is not None:
            drain.close(0)
        collector.stop()

    lines = [line for line in sink.lines() if line.startswith("logdrain")]
    context = f"\nplan: {plan}\nat close: {at_close}\nfinal: {final}\nstderr:\n" + "\n".join(
        lines[-30:]
    )

    assert not checker.problems, "\n".join(checker.problems) + context
    assert checker.samples > 0
    assert final.balanced, f"unbalanced after close{context}"
    assert at_close.in_flight == 0 and at_close.queued == 0, f"left pending at close{context}"
    assert final.in_flight == 0 and final.queued == 0, f"pending after close{context}"
    assert final.submitted == offered, f"submitted {final.submitted} != offered {offered}{context}"
    assert final.dropped_closed >= plan.after_close, context
    if outcome[0]:  # True: nothing was left undelivered for lack of time
        assert at_close.dropped_closed == 0, f"close() returned True but abandoned{context}"

    # The collector stored nothing that was not submitted, and at least every
    # record counted delivered (it stores a batch before answering it 2xx).
    ours = [r for r in stored if r.get("chaos_run") == run]
    strangers = [r for r in stored if "chaos_run" not in r]
    assert not strangers, f"stored records without chaos_run: {strangers[:3]!r}{context}"
    seqs = [r.get("chaos_seq") for r in ours]
    valid = set(range(len(plan.records) + 1))
    invented = [s for s in seqs if s not in valid]
    assert not invented, f"stored records never submitted: {invented[:10]}{context}"
    assert final.delivered <= len(set(seqs)), (
        f"delivered {final.delivered} but only {len(set(seqs))} distinct records stored{context}"
    )

    # One bad value never loses the record, and never reaches a sender.
    escaped = [line for line in lines if "sender thread hit" in line]
    assert not escaped, f"an exception escaped into a sender: {escaped[0]}{context}"
    if not plan.faults and plan.outage is None:
        assert final.rejected == 0 and final.failed == 0, f"lost with no fault at all{context}"

    # The token is sent, and never shown.
    sent = {r.headers.get("Authorization") for r in requests if r.headers}  # silent: none
    assert not sent or sent == {f"Bearer {TOKEN}"}, f"Authorization sent: {sent}"
    leaks = [line for line in sink.lines() if TOKEN in line]
    assert not leaks, f"token on stderr: {leaks[0]}{context}"


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: each example takes seconds
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
@given(plan=plans())
def test_chaos_balances_and_leaves_nothing_in_flight(plan: Plan) -> None:
    _run_example(plan)
