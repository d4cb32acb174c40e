"""Helpers shared by the benchmark scenarios: subprocess launching, the
out-of-process collector, memory readings and machine facts.

Every measurement runs in a fresh ``sys.executable`` subprocess whose
``PYTHONPATH`` starts with this checkout's ``src`` (found relative to this
file), so the code measured is the code next to the benchmarks, whether or
not the package is also installed.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
SRC = ROOT / "src"
#: Set by ``run.py --src DIR`` to measure another source tree (e.g. a patched copy).
SRC_ENV = "BENCH_LOGDRAIN_SRC"

# Variables that would change what "default settings" or "127.0.0.1" mean.
_PROXY_VARS = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
)


def src_dir() -> Path:
    return Path(os.environ.get(SRC_ENV) or SRC).resolve()


def _use_src_here() -> None:
    """Make this interpreter import the same logdrain its subprocesses will."""
    src = src_dir()
    if (src / "logdrain").is_dir() and str(src) not in sys.path:
        sys.path.insert(0, str(src))


_use_src_here()


def bench_env() -> dict[str, str]:
    """The environment of a measurement subprocess."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LOGDRAIN_") and k not in _PROXY_VARS
    }
    src = src_dir()
    if (src / "logdrain").is_dir():
        parts = [str(src), *(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p)]
        env["PYTHONPATH"] = os.pathsep.join(parts)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def measure(script: str, *args: str, timeout: float = 120.0) -> dict[str, Any]:
    """Run ``benchmarks/<script> --measure args...`` in a fresh interpreter and
    return the JSON object printed on its last stdout line."""
    cmd = [sys.executable, str(BENCH_DIR / script), "--measure", *args]
    proc = subprocess.run(
        cmd, env=bench_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"{' '.join(cmd[1:])} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout[-2000:]}\nstderr:\n{proc.stderr[-4000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1])
    result["stderr_lines"] = len(proc.stderr.splitlines())
    return result


def emit(result: dict[str, Any]) -> None:
    """Print a measurement's result as the last stdout line (see :func:`measure`)."""
    print(json.dumps(result), flush=True)


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


class StdioChild:
    """A helper process driven over stdin/stdout: one command line in, one
    JSON line out. Subclasses start ``self._proc`` and add the commands."""

    _proc: subprocess.Popen[str]

    def _read(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{type(self).__name__}: process exited")
        result: dict[str, Any] = json.loads(line)
        return result

    def _ask(self, *words: object) -> dict[str, Any]:
        assert self._proc.stdin is not None
        self._proc.stdin.write(" ".join(map(str, words)) + "\n")
        self._proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(OSError, RuntimeError, ValueError):
                self._ask("quit")
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CollectorProcess(StdioChild):
    """``logdrain.testing.Collector`` in its own process on 127.0.0.1.

    The collector parses JSON and stores every record; in the measured
    process it would compete for that process's GIL and inflate every
    figure, so it gets its own interpreter (and, on a 2-core machine, in
    practice its own core). It is driven over stdin/stdout, exits on EOF of
    its stdin, and exits by itself after ``max_life`` seconds in any case.
    """

    def __init__(self, max_life: float = 300.0) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, str(BENCH_DIR / "collector_server.py"), str(max_life)],
            env=bench_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        hello = self._read()
        self.url: str = hello["url"]

    def count(self) -> int:
        return int(self._ask("count")["count"])

    def wait_for_count(self, n: int, timeout: float) -> dict[str, Any]:
        """Wait until the collector holds ``n`` records; reply includes the
        ``time.monotonic()`` (system-wide clock) at which that was seen."""
        return self._ask("wait", n, timeout)

    def stats(self) -> dict[str, Any]:
        return self._ask("stats")


class PeakRss:
    """Peak RSS growth of this process from ``start()`` to ``result()``:
    VmHWM reset to the current RSS at the start where the kernel allows
    (``/proc/self/clear_refs``), else VmHWM after minus VmRSS before; plus
    the ``ru_maxrss`` growth alongside."""

    def start(self) -> None:
        import resource

        self.rss_before = proc_status_kib("VmRSS") or 0
        self.maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.reset = reset_peak_rss()
        self.hwm_before = proc_status_kib("VmHWM") or 0

    def result(self) -> dict[str, Any]:
        import resource

        hwm_after = proc_status_kib("VmHWM") or 0
        return {
            "peak_reset": self.reset,
            "rss_before_kib": self.rss_before,
            "hwm_after_kib": hwm_after,
            "peak_growth_kib": hwm_after - (self.hwm_before if self.reset else self.rss_before),
            "ru_maxrss_growth_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            - self.maxrss_before,
        }


def unused_port() -> int:
    """A 127.0.0.1 port that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def proc_status_kib(field: str) -> int | None:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM, ...), or None."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def thread_cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) used so far by each live Python thread,
    by thread name, from /proc/self/task/<native id>/stat (Linux only)."""
    import threading

    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    out: dict[str, float] = {}
    for thread in threading.enumerate():
        try:
            with open(f"/proc/self/task/{thread.native_id}/stat", encoding="ascii") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # fields[0] is the state (3rd field of stat); utime, stime are the 14th, 15th.
        out[thread.name] = (int(fields[11]) + int(fields[12])) / tick
    return out


def thread_role(name: str) -> str:
    """main / dispatcher / sender / other for a thread name."""
    if name == "MainThread":
        return "main"
    if name.startswith("logdrain-") and "-send" in name:
        return "sender"
    if name.startswith("logdrain-"):
        return "dispatcher"
    if name.startswith("QueueListener") or "_monitor" in name:
        return "listener"
    return "other"


def cpu_by_role(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    roles: dict[str, float] = {}
    for name, sec in after.items():
        role = thread_role(name)
        roles[role] = roles.get(role, 0.0) + sec - before.get(name, 0.0)
    return roles


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


_VERSIONS = """
import importlib.metadata as md, logdrain
out = [f"logdrain {logdrain.__version__} ({logdrain.__file__.rsplit('/', 2)[0]})"]
for name in ("requests", "urllib3", "tenacity", "structlog", "orjson"):
    try:
        out.append(f"{name} {md.version(name)}")
    except md.PackageNotFoundError:
        out.append(f"{name} -")
print(", ".join(out))
"""


def source_state() -> str:
    """Which code was measured: the commit of the src tree, and whether it had
    uncommitted changes (read-only git; no index refresh)."""
    src = src_dir()
    git = ["git", "--no-optional-locks", "-C", str(src)]
    try:
        sha = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "."],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "not a git checkout"
    return f"{sha} + uncommitted changes" if dirty else sha


def machine_info() -> dict[str, str]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        model = platform.processor() or "unknown"
    try:
        nproc = subprocess.run(
            ["nproc"], capture_output=True, text=True, check=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        nproc = str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?")
    mem = "unknown"
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            mem = f"{int(fh.readline().split()[1]) / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    versions = subprocess.run(
        [sys.executable, "-c", _VERSIONS],
        env=bench_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    ).stdout.strip()
    return {
        "nproc": nproc,
        "cpu": model,
        "memory": mem,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "packages": versions,
        "src": str(src_dir()),
        "commit": source_state(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
