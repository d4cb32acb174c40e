"""``logdrain send``: ship lines from stdin or files through one Drain, with
all the Drain's settings. A line that is a JSON object is sent as that
record; any other line as ``{"message": line}`` (``--format`` forces one
reading). Progress on a terminal (stderr), nothing on a pipe; the exit
status comes from the accounting: 0 only when every record was delivered."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from typing import IO, Any

from ..errors import ConfigError
from . import UsageError
from ._options import add_settings_arguments, explicit_settings

EXAMPLES = """\
examples:
  journalctl -o json -f | logdrain send --url https://collector.example/ingest --token-env TOKEN
  logdrain send --preset loki --url http://127.0.0.1:3100 app.log old.log
  echo 'deploy finished' | logdrain send --url http://127.0.0.1:8080/ingest --level WARNING

A JSON-object line is sent as it is; any other line as {"message": ...}.
Exit status 0 when every record was delivered, 1 otherwise, 2 on bad usage.
"""

PROGRESS_EVERY = 0.5
#: How long a full queue holds the reader back (records are never dropped
#: for a fast reader: the queue pushes back instead).
BLOCK_TIMEOUT = 3600.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Ship JSON lines or text lines from stdin or files through one Drain."
    parser.epilog = EXAMPLES
    parser.add_argument("files", nargs="*", metavar="FILE", help="files to send ('-': stdin)")
    parser.add_argument(
        "--format",
        choices=("auto", "json", "text"),
        default="auto",
        help="auto: JSON objects as records, other lines as messages (default); "
        "json: every line must be a JSON object; text: every line is a message",
    )
    parser.add_argument("--level", default="INFO", help="level of text lines (default INFO)")
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="how long to wait for delivery at the end (default: max_retry_time + request_timeout)",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress, no summary")
    add_settings_arguments(parser)


def _lines(files: list[str]) -> Iterator[tuple[str, int, str]]:
    for name in files or ["-"]:
        stream: IO[str]
        if name == "-":
            stream = sys.stdin
        else:
            try:
                stream = open(name, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed below
            except OSError as exc:
                raise UsageError(f"cannot read {name!r} ({exc.strerror})") from None
        try:
            for number, line in enumerate(stream, 1):
                yield name, number, line.rstrip("\r\n")
        finally:
            if stream is not sys.stdin:
                stream.close()


def parse_line(line: str, fmt: str, level: str) -> dict[str, Any] | None:
    """The record a line stands for (None: skip it, or, for ``json``, a bad line)."""
    if not line.strip():
        return None
    if fmt != "text":
        try:
            value = json.loads(line)
        except ValueError:
            value = None
        if isinstance(value, dict):
            return value
        if fmt == "json":
            return None
    return {"message": line, "level": level}


def run(args: argparse.Namespace) -> int:
    from ..drain import Drain  # noqa: PLC0415 - after the flags parsed

    explicit, _ = explicit_settings(args)
    explicit.setdefault("overflow", "block")
    explicit.setdefault("block_timeout", BLOCK_TIMEOUT)
    explicit.setdefault("capture_crashes", False)
    explicit.setdefault("name", "logdrain-send")
    try:
        drain = Drain(**explicit)
    except ConfigError as exc:
        print(f"logdrain send: {exc}", file=sys.stderr)
        return 2
    s = drain.settings
    progress = sys.stderr.isatty() and not args.quiet
    read = bad = 0
    last = time.monotonic()
    interrupted = False
    try:
        for name, number, line in _lines(args.files):
            record = parse_line(line, args.format, args.level)
            if record is None:
                if line.strip():
                    bad += 1
                    if not args.quiet:
                        print(f"logdrain send: {name}:{number}: not a JSON object", file=sys.stderr)
                continue
            read += 1
            drain.submit(record)
            if progress and time.monotonic() - last >= PROGRESS_EVERY:
                last = time.monotonic()
                _progress(drain, read)
        timeout = args.timeout if args.timeout is not None else s.max_retry_time + s.request_timeout
        drain.flush(timeout=timeout)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        drain.close()
    stats = drain.stats()
    ok = not interrupted and bad == 0 and stats.delivered == read == stats.submitted
    if progress:
        sys.stderr.write("\r\x1b[K")
    if not args.quiet and (progress or not ok):
        print(
            f"logdrain send: {read} record(s) read, {stats.delivered} delivered, "
            f"{stats.rejected} rejected, {stats.failed} failed, "
            f"{stats.dropped_overflow + stats.dropped_closed} dropped"
            + (f", {bad} bad line(s) skipped" if bad else ""),
            file=sys.stderr,
        )
    if interrupted:
        return 130
    return 0 if ok else 1


def _progress(drain: Any, read: int) -> None:
    stats = drain.stats()
    sys.stderr.write(
        f"\r\x1b[Kread {read}, delivered {stats.delivered}, pending {stats.pending}, "
        f"lost {stats.lost}"
    )
    sys.stderr.flush()
