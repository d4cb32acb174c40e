"""``logdrain.testing.Collector`` served from its own process (127.0.0.1 only).

Started by ``_util.CollectorProcess``. Prints ``{"url": ...}``, then answers
one JSON line per command read from stdin:

``count``            -> ``{"count": n}``
``wait N TIMEOUT``   -> ``{"count": n, "reached": bool, "t": monotonic}``
``stats``            -> request and duplicate counts
``quit`` or EOF      -> stops the collector and exits

It also exits by itself after ``argv[1]`` seconds (default 300), so it can
never outlive a benchmark run.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

from logdrain.testing import Collector


def _reply(obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main() -> None:
    max_life = float(sys.argv[1]) if len(sys.argv) > 1 else 300.0
    watchdog = threading.Timer(max_life, os._exit, args=(3,))
    watchdog.daemon = True
    watchdog.start()
    collector = Collector().start()
    _reply({"url": collector.url, "pid": os.getpid()})
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
                _reply(
                    {
                        "count": collector.count,
                        "requests": len(reqs),
                        "non_2xx": sum(1 for r in reqs if not 200 <= r.status < 300),
                        "duplicates": collector.duplicates,
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
