"""``logdrain demo``: an embedded collector goes down mid-run; the accounting
is checked at the end (see :mod:`logdrain.demo`)."""

from __future__ import annotations

import argparse

from ..demo import DEFAULT_OUTAGE, DEFAULT_RECORDS, MAX_OUTAGE, run_demo
from ._options import positive_int

EXAMPLES = """\
examples:
  logdrain demo
  logdrain demo --records 600 --outage 1 --quiet
"""


def _outage_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value <= MAX_OUTAGE:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_OUTAGE:g}, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Start an embedded collector on 127.0.0.1, log records through stdlib logging "
        "and structlog into one Drain, take the collector down mid-run, then report "
        "what was delivered, retried and dropped. Exit status 0 when every record is "
        "accounted for and the outage cost nothing but queue-full drops, 1 otherwise."
    )
    parser.epilog = EXAMPLES
    parser.add_argument(
        "--records",
        type=positive_int,
        default=DEFAULT_RECORDS,
        metavar="N",
        help=f"log calls to make (default: {DEFAULT_RECORDS})",
    )
    parser.add_argument(
        "--outage",
        type=_outage_seconds,
        default=DEFAULT_OUTAGE,
        metavar="SECONDS",
        help=f"how long the collector stays down; 0 for none (default: {DEFAULT_OUTAGE})",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress lines: a one-line header and the final report",
    )


def run(args: argparse.Namespace) -> int:
    result = run_demo(args.records, args.outage, quiet=args.quiet)
    return 0 if result.ok else 1
