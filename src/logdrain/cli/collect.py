"""``logdrain collect``: a local development collector on 127.0.0.1 that
prints what arrives, readably on a terminal, as JSON lines on a pipe (or with
``--json``). With ``--preset`` it speaks that collector's dialect through the
strict fakes of :mod:`logdrain.testing` (strict by default: a request the
product would refuse is refused, and said so on stderr); ``--lenient`` takes
any JSON body at the preset's path instead."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from . import UsageError

EXAMPLES = """\
examples:
  logdrain collect                                  # generic JSON, http://127.0.0.1:<port>/ingest
  logdrain collect --port 3100 --preset loki        # Loki's push API, strictly
  logdrain collect --preset splunk_hec --accept-token-env HEC_TOKEN --json > got.jsonl

Then point an application (or `logdrain send`) at the URL printed on stderr.
Ctrl-C stops it.
"""

#: Preset -> (dialect class in logdrain.testing.dialects, its token keyword).
DIALECTS: dict[str, tuple[str, str | None]] = {
    "loki": ("Loki", None),
    "elasticsearch": ("Elasticsearch", "api_keys"),
    "opensearch": ("Elasticsearch", "api_keys"),
    "splunk_hec": ("SplunkHEC", "tokens"),
    "datadog": ("Datadog", "api_keys"),
    "seq": ("Seq", "api_keys"),
    "otlp": ("OTLP", None),
    "gelf": ("Graylog", None),
    "slack": ("Slack", None),
    "kafka_rest": ("KafkaRest", None),
}
#: Optional modules a dialect needs, and the package that brings them.
NEEDS: dict[str, tuple[str, str]] = {"otlp": ("opentelemetry.proto", "opentelemetry-proto")}

_MESSAGE_KEYS = ("message", "msg", "line", "short_message", "text", "@m", "body", "event")
_LEVEL_KEYS = ("level", "severity", "@l", "status", "severity_text", "levelname")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Run a local development collector on 127.0.0.1 and print what arrives."
    parser.epilog = EXAMPLES
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: any free one)")
    parser.add_argument("--path", help="ingest path of the generic collector (default /ingest)")
    parser.add_argument("--preset", help="speak this collector's dialect (loki, splunk_hec, ...)")
    parser.add_argument(
        "--lenient", action="store_true", help="take any JSON body instead of the dialect's rules"
    )
    tokens = parser.add_mutually_exclusive_group()
    tokens.add_argument(
        "--accept-token-env", metavar="NAME", help="the token the collector accepts, from NAME"
    )
    tokens.add_argument(
        "--accept-token-file", metavar="PATH", help="the token it accepts, from a file"
    )
    parser.add_argument("--json", action="store_true", help="JSON lines even on a terminal")


def _token(args: argparse.Namespace) -> str | None:
    if args.accept_token_env:
        value = os.environ.get(args.accept_token_env)
        if not value:
            raise UsageError(f"--accept-token-env: {args.accept_token_env} is not set")
        return value.strip()
    if args.accept_token_file:
        try:
            return Path(args.accept_token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"--accept-token-file: cannot read it ({exc.strerror})") from None
    return None


def build(args: argparse.Namespace) -> tuple[Any, str]:
    """The (not yet started) collector and a description of it."""
    from ..testing import Collector  # noqa: PLC0415 - the command line only

    preset = (args.preset or "").strip().lower().replace("-", "_")
    token = _token(args)
    if not preset or preset in ("json", "ndjson", "object") or args.lenient:
        if preset and preset not in ("json", "ndjson", "object"):
            from ..presets import get, names  # noqa: PLC0415

            if preset not in names():
                raise UsageError(f"--preset: {args.preset!r} is not a preset")
            path = get(preset).path
            default = path if isinstance(path, str) and path else "/ingest"
        else:
            default = "/ingest"
        return Collector(args.path or default, port=args.port), "generic JSON, lenient"
    if preset not in DIALECTS:
        known = ", ".join(sorted(DIALECTS))
        raise UsageError(f"--preset: no strict fake for {args.preset!r} (known: {known})")
    if preset in NEEDS:
        module, package = NEEDS[preset]
        if importlib.util.find_spec(module.partition(".")[0]) is None or _missing(module):
            raise UsageError(f"--preset {preset} needs {package}: pip install {package}")
    dialects = importlib.import_module("logdrain.testing.dialects")
    name, keyword = DIALECTS[preset]
    kwargs: dict[str, Any] = {}
    if token is not None:
        if keyword is None:
            raise UsageError(f"--preset {preset}: this fake takes no token")
        kwargs[keyword] = (token,)
    dialect = getattr(dialects, name)(**kwargs)
    return dialects.StrictCollector(dialect, port=args.port), f"{preset}, strict"


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except ModuleNotFoundError:
        return True


def readable(record: dict[str, Any]) -> str:
    """One line: level, message, then the other fields as key=value."""
    rest = dict(record)
    message = next((str(rest.pop(k)) for k in _MESSAGE_KEYS if k in rest), "")
    level = next((str(rest.pop(k)) for k in _LEVEL_KEYS if k in rest), "")
    fields = " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in rest.items())
    head = f"{level.upper():<8} " if level else ""
    return f"{head}{message}" + (f"  {fields}" if fields else "")


def run(args: argparse.Namespace) -> int:
    collector, what = build(args)
    out: TextIO = sys.stdout
    as_json = args.json or not out.isatty()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[int, Callable[..., Any] | int | None] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, on_signal)
    printed = answered = 0

    def pump() -> None:
        """Print what arrived since the last call: records on stdout, refusals on stderr."""
        nonlocal printed, answered
        for record in collector.records[printed:]:
            line = json.dumps(record, default=str, ensure_ascii=False) if as_json else None
            out.write((line if line is not None else readable(record)) + "\n")
            printed += 1
        for request in collector.requests[answered:]:
            if request.status >= 300 or request.status == 0:
                print(
                    f"logdrain collect: refused {request.method} {request.path}: "
                    f"{request.status or 'no answer'}",
                    file=sys.stderr,
                )
            answered += 1
        out.flush()

    try:
        collector.start()
        print(f"logdrain collect: listening on {collector.url} ({what})", file=sys.stderr)
        sys.stderr.flush()
        while not stop.is_set():
            collector.wait_for(
                lambda c, p=printed, a=answered: c.count > p or len(c.requests) > a,
                timeout=0.2,
            )
            pump()
        pump()  # what arrived while stopping
    finally:
        collector.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 0
