"""Side by side (issue 5): logdrain and four peers through the same six
scenarios, each (subject, scenario) in its own fresh subprocess, against one
counting collector per scenario in its own process (``multi_collector.py``).

    python benchmarks/compare.py                  # every subject and scenario (about 7 minutes)
    python benchmarks/compare.py --quick          # small counts, short flap: for development
    python benchmarks/compare.py --subjects logdrain,otel --scenarios throughput,flap
    python benchmarks/run.py --only compare       # the same, with machine facts and RESULTS.md

Subjects are in ``subjects.py``; what each scenario does is in
benchmarks/README.md ("Side by side"). Every subject process has a hard
deadline and is killed with its whole process group when it passes it, so a
subject that hangs is reported as hanging and never holds up the run.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _util
import compare_report
import subjects
from multi_collector import SHAPES, CollectorClient

THIS = Path(__file__).resolve()


@dataclasses.dataclass(frozen=True)
class Params:
    """Counts and time limits of one comparison run."""

    caller_calls: int = 10_000  # per repeat, timed in chunks
    caller_chunk: int = 5_000  # settled (untimed) between chunks
    caller_repeats: int = 5
    caller_settle_cap: float = 30.0
    caller_timeout: float = 240.0
    throughput_records: int = 300_000
    throughput_cap: float = 60.0  # from the first log call until the last record counted
    outage_records: int = 1_000_000
    outage_cap: float = 45.0  # the logging loop stops here and says how far it got
    exit_records: int = 10_000
    hung_exit_cap: float = 40.0
    live_exit_cap: float = 30.0
    flap_records: int = 20_000
    flap_phase: float = 10.0
    flap_phases: int = 4  # up, 503, up, 503; up again after
    flap_deliver: float = 60.0  # then the subject's own flush/close, at most this long
    capacity_scale: float = 1.0


FULL = Params()
QUICK = Params(
    caller_calls=2_000,
    caller_chunk=1_000,
    caller_repeats=3,
    caller_timeout=90.0,
    throughput_records=30_000,
    throughput_cap=20.0,
    outage_records=100_000,
    outage_cap=15.0,
    exit_records=1_000,
    hung_exit_cap=15.0,
    live_exit_cap=15.0,
    flap_records=2_000,
    flap_phase=2.0,
    flap_deliver=15.0,
    capacity_scale=0.2,
)

Result = dict[str, Any]
Emit = Callable[..., None]


# ============================================================================
# The subject's side: runs inside ``compare.py --measure SPEC``.
# ============================================================================


class _Events:
    """JSON lines to the parent on a dedicated pipe (peers may print anything
    on stdout/stderr); each carries the system-wide monotonic time."""

    def __init__(self, fd: int) -> None:
        self._fh = os.fdopen(fd, "w", encoding="utf-8")

    def __call__(self, name: str, **fields: Any) -> None:
        self._fh.write(json.dumps({"event": name, "t": time.monotonic(), **fields}) + "\n")
        self._fh.flush()


def _bench_logger(handler: logging.Handler, name: str) -> Callable[..., None]:
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.handlers[:] = [handler]
    return logger.info


def _log_range(info: Callable[..., None], start: int, stop: int) -> None:
    for i in range(start, stop):
        info("msg %d", i, extra={"user": "u", "n": i})


def _log_until(info: Callable[..., None], total: int, deadline: float, block: int = 10_000) -> int:
    """Log records 0..total-1 in blocks; stop after the block that passes deadline."""
    logged = 0
    while logged < total:
        stop = min(total, logged + block)
        _log_range(info, logged, stop)
        logged = stop
        if time.monotonic() > deadline:
            break
    return logged


def _m_caller(p: Params, peer: subjects.Peer, emit: Emit) -> None:
    subject = _bench_logger(peer.handler, "bench.subject")
    reference = _bench_logger(logging.NullHandler(), "bench.reference")
    state = {"logged": 0, "settle_s": 0.0, "unsettled": 0}

    def subject_chunk(n: int) -> int:
        start = int(state["logged"])
        t0 = time.perf_counter_ns()
        _log_range(subject, start, start + n)
        elapsed = time.perf_counter_ns() - t0
        state["logged"] = start + n
        return elapsed

    def reference_chunk(n: int) -> int:
        t0 = time.perf_counter_ns()
        _log_range(reference, 0, n)
        return time.perf_counter_ns() - t0

    def settle() -> None:
        t0 = time.monotonic()
        if not peer.settle(int(state["logged"]), p.caller_settle_cap):
            state["unsettled"] += 1
        state["settle_s"] += time.monotonic() - t0

    def timed_run(chunk: Callable[[int], int], after: Callable[[], None]) -> float:
        after()
        gc.collect()
        chunks = p.caller_calls // p.caller_chunk
        total = 0
        for _ in range(chunks):
            total += chunk(p.caller_chunk)
            after()
        return total / (chunks * p.caller_chunk)

    subject_chunk(p.caller_chunk // 5)  # warm-up, untimed
    settle()
    reference_chunk(p.caller_chunk // 5)
    row: list[float] = []
    ref: list[float] = []
    for _ in range(p.caller_repeats):
        ref.append(timed_run(reference_chunk, lambda: None))
        row.append(timed_run(subject_chunk, settle))
    ns, ref_ns = _util.median(row), _util.median(ref)
    emit(
        "result",
        ns=ns,
        ref_ns=ref_ns,
        delta_ns=ns - ref_ns,
        ns_all=[round(x) for x in row],
        ref_all=[round(x) for x in ref],
        logged=state["logged"],
        settle_s=state["settle_s"],
        unsettled=state["unsettled"],
    )


def _m_throughput(p: Params, peer: subjects.Peer, emit: Emit) -> None:
    info = _bench_logger(peer.handler, "bench.subject")
    cpu0 = time.process_time()
    first = time.monotonic()
    deadline = first + p.throughput_cap
    logged = _log_until(info, p.throughput_records, deadline)
    produced = time.monotonic()
    emit("logged", first=first, logged=logged, produce_s=produced - first)
    settled = peer.settle(logged, max(0.0, deadline - time.monotonic()))
    done = time.monotonic()
    emit(
        "result",
        first=first,
        logged=logged,
        produce_s=produced - first,
        settled=settled,
        settle_s=done - produced,
        busy=(time.process_time() - cpu0) / (done - first),
    )


def _m_outage(p: Params, peer: subjects.Peer, emit: Emit) -> None:

    info = _bench_logger(peer.handler, "bench.subject")
    info("warm %d", -1, extra={"user": "u", "n": -1})  # start the worker threads first
    time.sleep(0.2)
    gc.collect()
    peak = _util.PeakRss()
    peak.start()
    t0 = time.monotonic()
    logged = _log_until(info, p.outage_records, t0 + p.outage_cap)
    elapsed = time.monotonic() - t0
    emit(
        "result",
        logged=logged,
        cut=logged < p.outage_records,
        elapsed_s=elapsed,
        per_call_us=elapsed / logged * 1e6,
        **peak.result(),
    )


def _m_exit(p: Params, peer: subjects.Peer, emit: Emit) -> None:
    """Log, say so, and return: the interpreter then exits the normal way."""
    info = _bench_logger(peer.handler, "bench.subject")
    t0 = time.monotonic()
    _log_range(info, 0, p.exit_records)
    emit("logged", logged=p.exit_records, produce_s=time.monotonic() - t0)


def _m_flap(p: Params, peer: subjects.Peer, emit: Emit) -> None:
    info = _bench_logger(peer.handler, "bench.subject")
    emit("ready")
    t0 = float(sys.stdin.readline().split()[1])  # "go <monotonic start>"
    period = p.flap_phase * p.flap_phases / p.flap_records
    for start in range(0, p.flap_records, 10):
        delay = t0 + start * period - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        _log_range(info, start, min(p.flap_records, start + 10))
    logged_at = time.monotonic()
    emit("logged", logged=p.flap_records, late_s=logged_at - (t0 + p.flap_phase * p.flap_phases))
    settled = peer.settle(p.flap_records, p.flap_deliver)
    peer.close()
    emit("result", settled=settled, finish_s=time.monotonic() - logged_at)


SUBJECT_MAX_LIFE = 900.0  # a subject whose parent died never outlives this


def _measure(spec: dict[str, Any]) -> None:
    watchdog = threading.Timer(SUBJECT_MAX_LIFE, os._exit, args=(3,))
    watchdog.daemon = True
    watchdog.start()
    emit = _Events(int(spec["events_fd"]))
    scenario = SCENARIOS[spec["scenario"]]
    peer = subjects.SUBJECTS[spec["subject"]].build(spec["base"])
    scenario.measure(Params(**spec["params"]), peer, emit)
    if not scenario.exits:
        os._exit(0)  # the figure is taken; how the subject exits is not this scenario's


# ============================================================================
# The parent's side.
# ============================================================================


def subject_env() -> dict[str, str]:
    """bench_env() (this checkout's src first; no LOGDRAIN_ or proxy variables),
    without OTEL_ variables either, so every peer runs with its defaults."""
    return {k: v for k, v in _util.bench_env().items() if not k.startswith("OTEL_")}


class SubjectProcess:
    """One subject in one scenario, in a fresh interpreter and its own process
    group: events on a dedicated pipe, stdout+stderr counted (last lines kept),
    the moment it ended, and ``kill()`` for the whole group."""

    def __init__(self, scenario: str, subject: str, base: str, params: Params) -> None:
        read_fd, write_fd = os.pipe()
        spec = {
            "scenario": scenario,
            "subject": subject,
            "base": base,
            "events_fd": write_fd,
            "params": dataclasses.asdict(params),
        }
        try:
            self.proc = subprocess.Popen(
                [sys.executable, str(THIS), "--measure", json.dumps(spec)],
                env=subject_env(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
                start_new_session=True,
            )
        finally:
            os.close(write_fd)
        self.started = time.monotonic()
        self.events: dict[str, dict[str, Any]] = {}
        self.ended: float | None = None
        self.killed = False
        self.output_lines = 0
        self.tail: deque[str] = deque(maxlen=8)
        self._cond = threading.Condition()
        self._readers = [
            self._thread(self._read_events, read_fd),
            self._thread(self._read_output),
        ]
        self._thread(self._wait)

    @staticmethod
    def _thread(target: Callable[..., None], *args: Any) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        return thread

    def _read_events(self, fd: int) -> None:
        with os.fdopen(fd, encoding="utf-8") as fh:
            for line in fh:
                event = json.loads(line)
                with self._cond:
                    self.events[event["event"]] = event
                    self._cond.notify_all()

    def _read_output(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.output_lines += 1
            self.tail.append(raw.decode("utf-8", "replace").rstrip()[:300])

    def _wait(self) -> None:
        self.proc.wait()
        ended = time.monotonic()
        for reader in self._readers:
            reader.join(2.0)
        with self._cond:
            self.ended = ended
            self._cond.notify_all()

    def wait_event(self, name: str, deadline: float) -> dict[str, Any] | None:
        """The event, or None if the process ended or the deadline passed first."""
        with self._cond:
            self._cond.wait_for(
                lambda: name in self.events or self.ended is not None,
                max(0.0, deadline - time.monotonic()),
            )
            return self.events.get(name)

    def wait_end(self, deadline: float) -> bool:
        with self._cond:
            return self._cond.wait_for(
                lambda: self.ended is not None, max(0.0, deadline - time.monotonic())
            )

    def age(self) -> float:
        """Seconds from start until it ended (or until now)."""
        return (self.ended or time.monotonic()) - self.started

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def kill(self) -> None:
        """SIGKILL the subject's process group, if it is still running."""
        if self.ended is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.killed = True
            except ProcessLookupError:
                pass
        self.wait_end(time.monotonic() + 10)

    def result(self, deadline: float) -> Result:
        """The "result" event merged with the process facts; killed at deadline."""
        event = self.wait_event("result", deadline)
        if event is not None:
            self.wait_end(time.monotonic() + 5)
        self.kill()
        out: Result = dict(event or {})
        if event is None:
            out["error"] = "killed at its deadline" if self.killed else "ended without a result"
        return out | self.facts()

    def facts(self) -> Result:
        return {
            "returncode": self.proc.returncode,
            "killed": self.killed,
            "output_lines": self.output_lines,
            "output_tail": list(self.tail)[-4:],
        }


def _tag(scenario: str, subject: str) -> str:
    return f"{scenario}-{subject}"


def _spawn(scenario: str, subject: str, collector: CollectorClient, p: Params) -> SubjectProcess:
    return SubjectProcess(scenario, subject, f"{collector.base}/{_tag(scenario, subject)}", p)


def _guarded(name: str, fn: Callable[..., Result], *args: Any) -> Result:
    """``fn(*args)``: one subject's failure (a peer not installed, a crash) is
    reported in its result, not raised."""
    try:
        return fn(*args)
    except Exception as exc:
        print(f"  {name}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return {"error": f"{type(exc).__name__}: {exc}"}


def _progress(key: str, name: str, result: Result, p: Params) -> None:
    """Print one subject's cell as soon as it is known (cells read the cap)."""
    result.setdefault("cap", SCENARIOS[key].cap(p))
    print(f"  {name:15s} {compare_report.VIEWS[key].cell(result)}", flush=True)


def _one_by_one(
    key: str, names: list[str], p: Params, mode: str, one: Callable[[str, CollectorClient], Result]
) -> dict[str, Result]:
    """Each subject in turn against one collector (in ``mode``)."""
    results: dict[str, Result] = {}
    with CollectorClient(_util.bench_env()) as collector:
        collector.mode(mode)
        for name in names:
            results[name] = _guarded(name, one, name, collector)
            _progress(key, name, results[name], p)
    return results


Finish = Callable[[str, SubjectProcess, CollectorClient], Result]


def _all_at_once(
    key: str,
    names: list[str],
    p: Params,
    mode: str,
    finish: Finish,
    *,
    drive: Callable[[dict[str, SubjectProcess], CollectorClient], Result] | None = None,
) -> dict[str, Result]:
    """Every subject at once against one collector (in ``mode``): for
    scenarios where subjects mostly wait, so they do not disturb each other.
    ``drive`` runs once all are started (its result goes into each one's)."""
    results: dict[str, Result] = {}
    with CollectorClient(_util.bench_env()) as collector:
        collector.mode(mode)
        procs = {name: _spawn(key, name, collector, p) for name in names}
        try:
            shared = drive(procs, collector) if drive else {}
            for name, proc in procs.items():
                results[name] = _guarded(name, finish, name, proc, collector) | shared
                _progress(key, name, results[name], p)
        finally:
            for proc in procs.values():
                proc.kill()
    return results


# -- 1. caller cost --


def _run_caller(names: list[str], p: Params) -> dict[str, Result]:
    def one(name: str, collector: CollectorClient) -> Result:
        proc = _spawn("caller_cost", name, collector, p)
        result = proc.result(proc.started + p.caller_timeout)
        result["delivered"] = collector.tally(_tag("caller_cost", name))["unique"]
        return result

    return _one_by_one("caller_cost", names, p, "up", one)


# -- 2. throughput --


def _run_throughput(names: list[str], p: Params) -> dict[str, Result]:
    def one(name: str, collector: CollectorClient) -> Result:
        tag = _tag("throughput", name)
        before = collector.tally(tag)
        proc = _spawn("throughput", name, collector, p)
        result = proc.result(proc.started + p.throughput_cap + 30)
        after = collector.tally(tag)
        logged = proc.events.get("logged", {})
        first = result.get("first", logged.get("first"))
        last = after["last_t"]
        elapsed = (last - first) if (first is not None and last is not None) else None
        return result | {
            "logged": result.get("logged", logged.get("logged", 0)),
            "arrived": after["unique"],
            "duplicates": after["duplicates"],
            "elapsed_s": elapsed,
            "per_s": after["unique"] / elapsed if elapsed else 0.0,
            "cut": not result.get("settled", False),
            "status": after["status"],
            # CPU the collector used, over the time records were arriving
            "collector_busy": (after["cpu_s"] - before["cpu_s"])
            / (elapsed or after["t"] - before["t"]),
        }

    return _one_by_one("throughput", names, p, "up", one)


# -- 3. outage memory --


def _run_outage(names: list[str], p: Params) -> dict[str, Result]:
    def one(name: str, collector: CollectorClient) -> Result:
        proc = _spawn("outage", name, collector, p)
        return proc.result(proc.started + p.outage_cap + 60)

    return _one_by_one("outage", names, p, "down", one)


# -- 4. and 5. exit --


def _exit_result(proc: SubjectProcess, cap: float, setup: float = 5.0) -> Result:
    """Seconds from the end of the logging loop until the process ended; the
    process is killed ``cap`` seconds after that, or ``setup + cap`` seconds
    after it started if the logging loop itself never ends."""
    logged = proc.wait_event("logged", proc.started + setup + cap)
    if logged is None:
        proc.kill()
        if not proc.killed:
            return {
                "exit_s": None,
                "error": f"ended before it logged (exit {proc.proc.returncode})",
            }
        return {"exit_s": None, "hangs_while_logging": True, "killed_after_s": proc.age()}
    if not proc.wait_end(logged["t"] + cap):
        proc.kill()
    return {
        "exit_s": None if proc.killed or proc.ended is None else proc.ended - logged["t"],
        "produce_s": logged["produce_s"],
        "hangs_while_logging": False,
        "killed_after_s": proc.age() if proc.killed else None,
    }


def _delivery(collector: CollectorClient, tag: str, expected: int) -> Result:
    tally = collector.tally(tag)
    return {
        "delivered": tally["unique"],
        "duplicates": tally["duplicates"],
        "lost": expected - tally["unique"],
        "status": tally["status"],
    }


def _run_hung_exit(names: list[str], p: Params) -> dict[str, Result]:
    """All at once: each subject only waits on a collector that never answers."""

    def finish(name: str, proc: SubjectProcess, collector: CollectorClient) -> Result:
        timing = _exit_result(proc, p.hung_exit_cap)
        return timing | _delivery(collector, _tag("hung_exit", name), p.exit_records) | proc.facts()

    return _all_at_once("hung_exit", names, p, "hang", finish)


def _run_live_exit(names: list[str], p: Params) -> dict[str, Result]:
    def one(name: str, collector: CollectorClient) -> Result:
        proc = _spawn("live_exit", name, collector, p)
        timing = _exit_result(proc, p.live_exit_cap)
        delivery = _delivery(collector, _tag("live_exit", name), p.exit_records)
        return timing | delivery | proc.facts()

    return _one_by_one("live_exit", names, p, "up", one)


# -- 6. flapping collector --


def _flap_schedule(collector: CollectorClient, t0: float, p: Params) -> list[tuple[str, float]]:
    """up / 503 / up / 503 ... from t0, each phase flap_phase long; up after."""
    modes = ["up" if k % 2 == 0 else "503" for k in range(p.flap_phases)] + ["up"]
    switched = []
    for k, mode in enumerate(modes):
        delay = t0 + k * p.flap_phase - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        switched.append((mode, collector.mode(mode) - t0))
    return switched


def _run_flap(names: list[str], p: Params) -> dict[str, Result]:
    """All at once, so every subject sees the same schedule (500 records/s
    each at full size: far below any subject's capacity)."""

    def drive(procs: dict[str, SubjectProcess], collector: CollectorClient) -> Result:
        ready = [pr for pr in procs.values() if pr.wait_event("ready", pr.started + 60)]
        t0 = time.monotonic() + 1.0
        for proc in ready:
            proc.send(f"go {t0}")
        return {"schedule": _flap_schedule(collector, t0, p), "t0": t0}

    def finish(name: str, proc: SubjectProcess, collector: CollectorClient) -> Result:
        end = proc.started + 60 + p.flap_phase * p.flap_phases + p.flap_deliver + 20
        return proc.result(end) | _delivery(collector, _tag("flap", name), p.flap_records)

    return _all_at_once("flap", names, p, "up", finish, drive=drive)


# -- collector capacity --


def _capacity_client(url: str, shape: str, scale: float) -> Result:
    shape_args = ["--shape", shape, "--scale", str(scale)]
    proc = subprocess.run(
        [sys.executable, str(THIS.parent / "multi_collector.py"), "--capacity", url, *shape_args],
        env=_util.bench_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    sent: Result = json.loads(proc.stdout.splitlines()[-1])
    return sent


def run_capacity(p: Params) -> dict[str, Result]:
    """A raw client per subject's request shape, one after another, against a
    fresh collector: records counted per second of the client's run, and per
    second of the collector's own CPU time (its ceiling on one core)."""
    out: dict[str, Result] = {}
    with CollectorClient(_util.bench_env()) as collector:
        for shape in SHAPES:
            before = collector.tally(f"cap-{shape}")
            result = _guarded(shape, _capacity_client, collector.base, shape, p.capacity_scale)
            after = collector.tally(f"cap-{shape}")
            cpu = after["cpu_s"] - before["cpu_s"]
            if "elapsed_s" in result:
                result.update(
                    counted=after["unique"],
                    per_s=after["unique"] / result["elapsed_s"],
                    busy=cpu / result["elapsed_s"],
                    per_cpu_s=after["unique"] / cpu if cpu > 0 else 0.0,
                    duplicates=after["duplicates"],
                    parse_errors=after["parse_errors"],
                )
                print(
                    f"  {shape:15s} {result['per_s']:,.0f} records/s, collector busy "
                    f"{result['busy']:.0%}",
                    flush=True,
                )
            out[shape] = result
    return out


def peer_versions() -> dict[str, str]:
    names = sorted({d for s in subjects.SUBJECTS.values() for d in s.distributions})
    code = (
        "import importlib.metadata as md, json, sys\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = md.version(n)\n"
        "    except md.PackageNotFoundError: out[n] = '-'\n"
        "print(json.dumps(out))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *names],
        env=subject_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    versions: dict[str, str] = json.loads(proc.stdout) if proc.returncode == 0 else {}
    return versions


@dataclasses.dataclass(frozen=True)
class Scenario:
    run: Callable[[list[str], Params], dict[str, Result]]  # the parent's side
    measure: Callable[[Params, subjects.Peer, Emit], None]  # the subject's side
    cap: Callable[[Params], float] = lambda p: 0.0  # its time limit, for the report
    exits: bool = False  # the subject's own interpreter exit is what is measured


# Titles, columns and tables: compare_report.VIEWS (same keys).
SCENARIOS: dict[str, Scenario] = {
    "caller_cost": Scenario(_run_caller, _m_caller),
    "throughput": Scenario(_run_throughput, _m_throughput, lambda p: p.throughput_cap),
    "outage": Scenario(_run_outage, _m_outage, lambda p: p.outage_cap),
    "hung_exit": Scenario(_run_hung_exit, _m_exit, lambda p: p.hung_exit_cap, exits=True),
    "live_exit": Scenario(_run_live_exit, _m_exit, lambda p: p.live_exit_cap, exits=True),
    "flap": Scenario(_run_flap, _m_flap),
}


# ============================================================================
# Orchestration.
# ============================================================================


def _choose(given: str | list[str] | None, known: dict[str, Any], what: str) -> list[str]:
    if not given:
        return list(known)
    chosen = given.split(",") if isinstance(given, str) else list(given)
    chosen = [c.strip() for c in chosen if c.strip()]
    unknown = [c for c in chosen if c not in known]
    if unknown:
        raise ValueError(f"unknown {what}: {', '.join(unknown)} (known: {', '.join(known)})")
    return chosen


def check_names(subjects_: str | list[str] | None, scenarios: str | list[str] | None) -> None:
    """Raise ValueError naming any unknown subject or scenario."""
    _choose(subjects_, subjects.SUBJECTS, "subject")
    _choose(scenarios, SCENARIOS, "scenario")


def run(
    subjects_: str | list[str] | None = None,
    scenarios: str | list[str] | None = None,
    quick: bool = False,
) -> Result:
    """Every chosen scenario for every chosen subject; printed as it goes."""
    p = QUICK if quick else FULL
    names = _choose(subjects_, subjects.SUBJECTS, "subject")
    keys = _choose(scenarios, SCENARIOS, "scenario")
    out: Result = {
        "quick": quick,
        "params": dataclasses.asdict(p),
        "subjects": names,
        "scenarios": keys,
        "versions": peer_versions(),
        "configs": {n: subjects.SUBJECTS[n].config for n in names},
        "seconds": {},
        "results": {},
    }
    t0 = time.monotonic()
    print("-- collector capacity (raw client per request shape)", flush=True)
    out["capacity"] = run_capacity(p)
    out["seconds"]["capacity"] = time.monotonic() - t0
    for key in keys:
        print(f"-- {compare_report.VIEWS[key].title}", flush=True)
        t0 = time.monotonic()
        out["results"][key] = SCENARIOS[key].run(names, p)
        out["seconds"][key] = time.monotonic() - t0
    return out


report = compare_report.report  # run.py's interface: run() and report(result)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", metavar="SPEC", help="internal: one subject, one scenario")
    parser.add_argument("--subjects", help="comma-separated: " + ",".join(subjects.SUBJECTS))
    parser.add_argument("--scenarios", help="comma-separated: " + ",".join(SCENARIOS))
    parser.add_argument("--quick", action="store_true", help="small counts, short flap")
    parser.add_argument("--json", help="also write the raw figures here")
    args = parser.parse_args()
    if args.measure:
        _measure(json.loads(args.measure))
        return 0
    try:
        result = run(args.subjects, args.scenarios, args.quick)
    except ValueError as exc:
        parser.error(str(exc))
    print("\n" + "\n".join(report(result)))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
