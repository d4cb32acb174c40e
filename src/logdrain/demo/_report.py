"""The demo's report: what the collector stored against the drain's ledger,
and the verdict (:class:`DemoResult`)."""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..drain import Drain
from ..stats import DrainStats
from ..testing import BATCH_ID_HEADER, Collector


@dataclass
class DemoResult:
    """What the demo observed; :attr:`ok` decides the exit code."""

    calls: int
    """Log calls the workload made (one per step)."""
    stats: DrainStats
    """The drain's counters after ``close``."""
    received: int
    """Records the collector stored (``Collector.count``)."""
    duplicate_batches: int
    """2xx-answered requests repeating an already stored batch id (``Collector.duplicates``)."""
    repeated_records: int = 0
    """Records in those repeated requests: stored a second time."""
    steps_received: Counter[int] = field(default_factory=Counter)
    """How many times the collector stored the record of each workload step."""
    calls_ok: bool = False
    """Every log call reached the drain (``submitted == calls``)."""
    balanced: bool = False
    """The drain's ledger balanced (:attr:`DrainStats.balanced`)."""
    collector_ok: bool = False
    """The collector holds exactly the delivered records, repeats set apart."""
    delivery_ok: bool = False
    """Nothing was rejected, failed after retries or abandoned at close: the
    outage cost only the queue-full drops it is meant to show."""

    @property
    def ok(self) -> bool:
        """Every check passed."""
        return self.calls_ok and self.balanced and self.collector_ok and self.delivery_ok


class Run(Protocol):
    """What the report reads of a run."""

    calls: int
    quiet: bool
    calls_by_front_end: Counter[str]
    special: dict[int, str]

    def say(self, text: str = "") -> None: ...


def report(run: Run, collector: Collector, drain: Drain, queue_size: int) -> DemoResult:
    """Print the report and decide: every log call submitted, the ledger
    balanced, the collector holding exactly the delivered records (copies
    of a batch re-sent under the same batch id set apart: that is
    at-least-once delivery, see :func:`_repeated_records`), and nothing
    rejected, failed or abandoned at close."""
    s = drain.stats()
    steps: Counter[int] = Counter()
    for record in collector.records:
        step = record.get("step")
        if isinstance(step, int):
            steps[step] += 1
    result = DemoResult(
        calls=run.calls,
        stats=s,
        received=collector.count,
        duplicate_batches=collector.duplicates,
        repeated_records=_repeated_records(collector),
        steps_received=steps,
    )
    distinct = result.received - result.repeated_records
    result.calls_ok = s.submitted == run.calls
    result.balanced = s.balanced
    result.collector_ok = distinct == s.delivered == len(steps)
    result.delivery_ok = s.rejected == s.failed == s.dropped_closed == 0

    w = max(len(str(run.calls)), 5)
    lost = s.dropped_overflow + s.dropped_closed
    by_front_end = ", ".join(f"{k} {v}" for k, v in sorted(run.calls_by_front_end.items()))
    if not run.quiet:
        run.say()
    run.say("Report")
    run.say(f"  log calls made            {run.calls:>{w}}  ({by_front_end})")
    run.say(f"  submitted to the drain    {s.submitted:>{w}}")
    run.say(f"  delivered (2xx answers)   {s.delivered:>{w}}")
    run.say(
        f"  received by collector     {result.received:>{w}}  "
        f"in {plural(_answered_requests(collector), 'request')} answered 2xx"
    )
    run.say(f"  retry attempts            {s.retries:>{w}}")
    run.say(
        f"  dropped: queue full       {s.dropped_overflow:>{w}}  "
        f"(oldest evicted: queue_size={queue_size}, overflow=drop_oldest)"
    )
    run.say(f"  dropped: at close         {s.dropped_closed:>{w}}")
    run.say(f"  rejected / failed         {s.rejected:>{w}} / {s.failed}")
    run.say(f"  pending                   {s.pending:>{w}}")
    run.say(
        f"  duplicate batches         {result.duplicate_batches:>{w}}"
        + (f"  ({result.repeated_records} records stored twice)" if result.repeated_records else "")
    )
    missing = set(range(run.calls)) - set(steps)
    repeated = sorted(k for k, v in steps.items() if v > 1)
    if missing:
        note = "  (exactly the dropped ones)" if len(missing) == lost else ""
        run.say(f"  steps never received      {_describe_ranges(missing)}{note}")
    if repeated:
        run.say(f"  steps received twice      {_describe_ranges(repeated)}")

    run.say()
    run.say("  notable records, as the collector stored them:")
    by_step = {r.get("step"): r for r in collector.records}
    for step, kind in sorted(run.special.items()):
        first, *more = _describe_notable(kind, by_step.get(step))
        run.say(f"    step {step:>{w}}  {first}")
        for line in more:
            run.say(f"    {'':>{w + 5}}  {line}")
    if result.duplicate_batches:
        note = (
            f"note: {plural(result.duplicate_batches, 'batch')} "
            f"({result.repeated_records} records) reached the collector twice. The collector "
            "stored the batch, but its answer never reached logdrain (the outage cut the "
            "connection in between), so logdrain retried it under the same "
            f"{BATCH_ID_HEADER} header. That is at-least-once delivery: a collector can "
            "drop such repeats by that header, as the check below does."
        )
        for line in textwrap.wrap(note, 96, initial_indent="  ", subsequent_indent="        "):
            run.say(line)
    run.say()
    run.say(
        _verdict(
            result.calls_ok and result.balanced,
            f"accounting: {plural(run.calls, 'log call')}, {s.submitted} submitted == "
            f"{s.delivered} delivered + {s.pending} pending + {lost} dropped + "
            f"{s.rejected} rejected + {s.failed} failed",
        )
    )
    if result.repeated_records:
        collector_line = (
            f"collector:  received {result.received} - {result.repeated_records} repeated "
            f"= {distinct} distinct == delivered {s.delivered}"
        )
    else:
        collector_line = (
            f"collector:  received {result.received} == delivered {s.delivered}, "
            "0 duplicate batches"
        )
    run.say(_verdict(result.collector_ok, collector_line))
    run.say(
        _verdict(
            result.delivery_ok,
            f"delivery:   {s.rejected} rejected, {s.failed} failed after retries, "
            f"{s.dropped_closed} abandoned at close",
        )
    )
    if not result.delivery_ok:
        run.say(
            "Only queue-full drops are expected here; logdrain's stderr lines say why "
            "batches were refused or given up."
        )
    if result.ok:
        copies = (
            f" ({result.repeated_records} of them twice, see the note)"
            if result.repeated_records
            else " exactly once"
        )
        tail = f" and the {lost} dropped ones were counted, not lost silently" if lost else ""
        run.say(f"Every record is accounted for: {s.delivered} arrived{copies}{tail}.")
    return result


def _ranges(numbers: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted integers as inclusive ``(first, last)`` runs."""
    runs: list[tuple[int, int]] = []
    for n in sorted(numbers):
        if runs and n == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    return runs


def _describe_ranges(numbers: Iterable[int], limit: int = 4) -> str:
    runs = _ranges(numbers)
    text = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in runs[:limit])
    if len(runs) > limit:
        text += f", ... ({len(runs) - limit} more runs)"
    return text


def _describe_notable(kind: str, record: dict[str, Any] | None) -> list[str]:
    """Report lines for a warning or exception record (None: not received)."""
    if record is None:
        label = "logger.exception" if kind == "exception" else "warning"
        return [f"{label}: not received"]
    label = "logger.exception" if kind == "exception" else f"warning via {record.get('via')}"
    text = f"{label}: {record.get('message') or record.get('event')}"
    if kind != "exception":
        return [f"{text} (lr={record.get('lr')})"]
    lines = str(record.get("exception") or "").strip().splitlines()
    if not lines:
        return [text, "WITHOUT its traceback"]
    return [text, f"with its traceback: {len(lines)} lines, the last: {lines[-1]}"]


def _repeated_records(collector: Collector) -> int:
    """Records in 2xx-answered requests whose batch id had already been stored.

    Such a request is a retry of a batch the collector stored but whose
    answer never reached the sender (here: ``Collector.down()`` cut the
    connection in between). The sender counts that batch delivered once.
    """
    seen: set[str] = set()
    repeated = 0
    header = BATCH_ID_HEADER.lower()
    for request in collector.requests:
        if not 200 <= request.status < 300:
            continue
        batch_id = next((v for k, v in request.headers.items() if k.lower() == header), None)
        if batch_id is None:
            continue
        if batch_id in seen:
            repeated += request.record_count
        else:
            seen.add(batch_id)
    return repeated


def _answered_requests(collector: Collector) -> int:
    """Requests the collector answered 2xx (stored): one per batch body."""
    return sum(1 for request in collector.requests if 200 <= request.status < 300)


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}{'es' if noun.endswith('ch') else 's'}"


def _verdict(ok: bool, text: str) -> str:
    return f"{'OK  ' if ok else 'FAIL'} {text}"
