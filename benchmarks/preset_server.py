"""A strict collector fake (``logdrain.testing.dialects.StrictCollector``) or
the plain ``logdrain.testing.Collector``, served from its own process
(127.0.0.1 only), for ``presets.py``.

    python preset_server.py DIALECT [KWARGS_JSON [MAX_LIFE]]

``DIALECT`` is ``plain`` or ``module:Class`` (``_loki:Loki``: a module of
``logdrain.testing.dialects`` and its dialect class), built with the keyword
arguments of ``KWARGS_JSON`` (default ``{}``). Prints ``{"url", "base_url",
"pid", "dialect", "credential"}`` (``credential``: a token the dialect
accepts, when it names any), then answers one JSON line per command read
from stdin, like ``collector_server.py``:

``count``            -> ``{"count": n}``
``wait N TIMEOUT``   -> ``{"count": n, "reached": bool, "t": monotonic}``
``stats``            -> stored records, log records they hold (``units``:
                        Slack folds several into one message), requests,
                        answers by status, this process's CPU seconds
``quit`` or EOF      -> stops the collector and exits

It exits by itself after ``MAX_LIFE`` seconds (default 300) in any case.

The process collects garbage less often than CPython's default (a young
collection every 100,000 allocations instead of 700): a fake keeps every
record it stores, and each young collection walked them again. Measured side
by side (session 21, the 2-core VM): the OTLP fake's CPU 16-20 -> 12-14 us a
record, Elasticsearch's 16-19 -> 14-15, the plain collector's 3.0-3.5 ->
2.0-3.1. The fake shares the two cores with the code under test; a real
collector is another program on another machine. What it checks is unchanged.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import sys
import threading
import time
from collections import Counter
from typing import Any

from logdrain.testing import Collector


def _reply(obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def credential(dialect: Any) -> str | None:
    """A token the dialect accepts, if it keeps a list of them."""
    for attr in ("tokens", "api_keys", "keys", "api_key", "token"):
        value = getattr(dialect, attr, None)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, (set, frozenset, list, tuple)) and value:
            return str(sorted(value)[0])
    return None


def units(records: list[dict[str, Any]]) -> int:
    """Log records held by the stored records: one each, except Slack
    messages, one line per log record."""
    total = 0
    for record in records:
        text = record.get("text") if isinstance(record, dict) else None
        if isinstance(text, str) and "blocks" in record and "attachments" in record:
            total += text.count("\n") + 1
        else:
            total += 1
    return total


def build(spec: str, kwargs: dict[str, Any]) -> tuple[Collector, Any]:
    if spec == "plain":
        return Collector(), None
    from logdrain.testing.dialects import StrictCollector

    module_name, _, class_name = spec.partition(":")
    module = importlib.import_module(f"logdrain.testing.dialects.{module_name}")
    dialect = getattr(module, class_name)(**kwargs)
    return StrictCollector(dialect), dialect


def main() -> None:
    gc.set_threshold(100_000, 20, 100)  # see the module doc
    spec = sys.argv[1] if len(sys.argv) > 1 else "plain"
    kwargs = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    max_life = float(sys.argv[3]) if len(sys.argv) > 3 else 300.0
    watchdog = threading.Timer(max_life, os._exit, args=(3,))
    watchdog.daemon = True
    watchdog.start()
    collector, dialect = build(spec, kwargs)
    collector.start()
    _reply(
        {
            "url": collector.url,
            "base_url": f"http://127.0.0.1:{collector.port}",
            "pid": os.getpid(),
            "dialect": getattr(dialect, "name", "plain"),
            "credential": credential(dialect),
        }
    )
    try:
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            if words[0] == "count":
                _reply({"count": collector.count})
            elif words[0] == "wait":
                n, timeout = int(words[1]), float(words[2])
                reached = collector.wait_for_count(n, timeout)
                _reply({"count": collector.count, "reached": reached, "t": time.monotonic()})
            elif words[0] == "stats":
                reqs = collector.requests
                statuses = Counter(str(r.status) for r in reqs)
                _reply(
                    {
                        "count": collector.count,
                        "units": units(collector.records),
                        "requests": len(reqs),
                        "statuses": dict(statuses),
                        "non_2xx": sum(1 for r in reqs if not 200 <= r.status < 300),
                        "cpu_s": time.process_time(),
                    }
                )
            elif words[0] == "quit":
                _reply({"bye": True})
                break
            else:
                _reply({"error": f"unknown command {words[0]!r}"})
    finally:
        collector.stop()


if __name__ == "__main__":
    main()
