"""The ``logdrain`` command line (also ``python -m logdrain``).

Subcommands:

``demo``
    Ship a few thousand records to an embedded collector that goes down
    mid-run, then print the accounting (see :mod:`logdrain.demo`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .__about__ import __version__
from .demo import DEFAULT_OUTAGE, DEFAULT_RECORDS, MAX_OUTAGE, run_demo


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _outage_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value <= MAX_OUTAGE:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_OUTAGE:g}, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``logdrain`` command."""
    parser = argparse.ArgumentParser(
        prog="logdrain",
        description="Ship Python log records over HTTP(S) without blocking the caller.",
    )
    parser.add_argument("--version", action="version", version=f"logdrain {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="watch a drain ride out a collector outage, then check the accounting",
        description=(
            "Start an embedded collector on 127.0.0.1, log records through stdlib logging "
            "and structlog into one Drain, take the collector down mid-run, then report "
            "what was delivered, retried and dropped. Exit status 0 when every record is "
            "accounted for and the outage cost nothing but queue-full drops, 1 otherwise."
        ),
    )
    demo.add_argument(
        "--records",
        type=_positive_int,
        default=DEFAULT_RECORDS,
        metavar="N",
        help=f"log calls to make (default: {DEFAULT_RECORDS})",
    )
    demo.add_argument(
        "--outage",
        type=_outage_seconds,
        default=DEFAULT_OUTAGE,
        metavar="SECONDS",
        help=f"how long the collector stays down; 0 for none (default: {DEFAULT_OUTAGE})",
    )
    demo.add_argument(
        "--quiet",
        action="store_true",
        help="no progress lines: a one-line header and the final report",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (argparse exits on bad usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        try:
            result = run_demo(args.records, args.outage, quiet=args.quiet)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        return 0 if result.ok else 1
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
