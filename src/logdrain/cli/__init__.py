"""The ``logdrain`` command line (``logdrain ...`` or ``python -m logdrain ...``).

``import logdrain`` never imports this package, and this package imports a
subcommand's module only when that subcommand is chosen, so ``logdrain
--help`` and ``logdrain demo`` stay as light as the library.

Subcommand convention
---------------------
Each subcommand is one module (or package) of ``logdrain.cli`` named in
:data:`COMMANDS`, exposing two functions::

    def add_arguments(parser: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace) -> int: ...

``add_arguments`` fills the subcommand's own parser (its ``description``,
``epilog`` with examples, and flags; the shared Drain-settings flags come
from :func:`logdrain.cli._options.add_settings_arguments`). ``run`` does the
work and returns the exit status: 0 success, 1 the check or the delivery
failed, 2 bad usage (:class:`UsageError` raised from ``run`` is printed as one
line and gives 2). A subcommand whose module is missing from this build
prints ``<name>: not available in this build``
and exits 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import textwrap
from collections.abc import Sequence
from types import ModuleType

from ..__about__ import __version__

#: Subcommand name -> (module of logdrain.cli, one-line help).
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("doctor", "check settings, proxy, DNS, TLS, auth and one test record, step by step"),
    "send": ("send", "ship JSON lines or text lines from stdin or files"),
    "collect": ("collect", "run a local development collector and print what arrives"),
    "replay": ("replay", "send a dead-letter file again"),
    "demo": ("demo", "watch a drain ride out a collector outage, then check the accounting"),
}

EPILOG = """\
examples:
  logdrain doctor --url https://logs.example:8088 --preset splunk_hec --token-env HEC_TOKEN
  logdrain doctor --config myapp.settings:LOGGING --json
  some-program | logdrain send --url https://collector.example/ingest
  logdrain collect --preset loki --port 3100
  python -m logdrain demo

Settings come from flags, LOGDRAIN_* environment variables, or your
application's own configuration (--config); see docs/cli.md.
"""


class UsageError(Exception):
    """Bad usage found after parsing (an unreadable token file, say): exit status 2."""


def build_parser(chosen: str | None = None) -> tuple[argparse.ArgumentParser, ModuleType | None]:
    """The ``logdrain`` parser; only ``chosen``'s module is imported (and
    fills its subparser). Returns the parser and that module (None when it is
    missing from this build or nothing was chosen)."""
    parser = argparse.ArgumentParser(
        prog="logdrain",
        description="Ship Python log records over HTTP(S) to a log collector, and check the path.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"logdrain {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    module: ModuleType | None = None
    for name, (module_name, help_text) in COMMANDS.items():
        sub = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if name == chosen:
            module = _load(module_name)
            if module is not None:
                module.add_arguments(sub)
                sub.description = textwrap.fill(sub.description or help_text, 78)
            else:
                sub.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser, module


def _load(module_name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"{__name__}.{module_name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{module_name}":
            raise  # a module that exists but imports something missing: a real error
        return None


def _chosen(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is not an option)."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (argparse exits 2 on bad usage)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = _chosen(argv)
    parser, module = build_parser(chosen)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if module is None:
        print(f"{args.command}: not available in this build", file=sys.stderr)
        return 2
    try:
        return int(module.run(args))
    except UsageError as exc:
        print(f"logdrain {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


__all__ = ["COMMANDS", "UsageError", "build_parser", "main"]
