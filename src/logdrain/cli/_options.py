"""The Drain-settings flags every subcommand that talks to a collector shares,
and how they become the explicit settings a :class:`logdrain.Drain` takes.

Precedence is the library's own (explicit, then ``LOGDRAIN_*``, then the
named default): the application's configuration (``--config``) counts as
explicit, as it does inside the application, and a flag wins over it.

A token is best read from a file (``--token-file``), a variable of your
choosing (``--token-env NAME``) or stdin (``--token-stdin``), or left in
``LOGDRAIN_TOKEN``: ``--token`` shows in ``ps`` and shell history.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import UsageError

TOKEN_HELP = (
    "the collector token"  # noqa: S105 - help text, not a secret
    ": prefer --token-file, --token-env or --token-stdin "
    "(a flag shows in ps and shell history) or LOGDRAIN_TOKEN"
)

#: Flag destination -> the setting it gives.
_FLAGS: dict[str, str] = {
    "url": "url",
    "preset": "preset",
    "proxy": "proxy",
    "no_proxy": "no_proxy",
    "ca_bundle": "ca_bundle",
    "ca_mode": "ca_mode",
    "trust": "trust",
    "insecure": "insecure",
    "name": "name",
}

#: Keys of a dictConfig handler entry that are logging's, not the Drain's.
_HANDLER_KEYS = frozenset({"class", "()", "level", "formatter", "filters", ".", "stream"})
_HANDLER_CLASSES = ("DrainHandler",)


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """The shared flags (a group of ``parser``)."""
    group = parser.add_argument_group(
        "drain settings",
        "the same settings a Drain takes;\nunset ones come from LOGDRAIN_* and then the defaults",
    )
    group.add_argument("--url", help="the collector URL (LOGDRAIN_URL)")
    group.add_argument(
        "--preset", help="the collector's dialect: loki, splunk_hec, ... (LOGDRAIN_PRESET)"
    )
    group.add_argument("--proxy", help="http://[user:pass@]host:port; '' for none (LOGDRAIN_PROXY)")
    group.add_argument("--no-proxy", dest="no_proxy", metavar="HOSTS", help="hosts that bypass it")
    group.add_argument(
        "--ca-bundle", dest="ca_bundle", metavar="PEM", help="extra trusted CAs (PEM)"
    )
    group.add_argument("--ca-mode", dest="ca_mode", choices=("add", "replace"))
    group.add_argument(
        "--trust", choices=("default", "system", "windows"), help="the trusted roots"
    )
    group.add_argument("--client-cert", dest="client_cert", metavar="PEM", help="mTLS certificate")
    group.add_argument("--client-key", dest="client_key", metavar="PEM", help="its key, if apart")
    group.add_argument("--insecure", action="store_const", const=True, help="no TLS verification")
    group.add_argument("--name", help="the drain's name in messages")
    token = group.add_mutually_exclusive_group()
    token.add_argument("--token", help=TOKEN_HELP)
    token.add_argument(
        "--token-file", dest="token_file", metavar="PATH", help="read the token from a file"
    )
    token.add_argument(
        "--token-env", dest="token_env", metavar="NAME", help="read it from variable NAME"
    )
    token.add_argument(
        "--token-stdin", dest="token_stdin", action="store_true", help="read it from stdin"
    )
    group.add_argument(
        "--option",
        "-o",
        dest="options",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other setting or preset option, as in dictConfig (repeatable): "
        "-o read_timeout=2 -o tenant=team-a",
    )
    group.add_argument(
        "--config",
        metavar="SOURCE",
        help="your application's configuration: module:LOGGING (a dictConfig dict), "
        "or a JSON or TOML file (a dictConfig dict, a [logdrain] table, or settings)",
    )
    group.add_argument(
        "--handler",
        metavar="NAME",
        help="which dictConfig handler, when the configuration holds several DrainHandlers",
    )


def explicit_settings(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, str]]:
    """The explicit settings and where each came from (``argument`` or ``config``)."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if args.config:
        for key, value in load_config(args.config, args.handler).items():
            values[key] = value
            sources[key] = "config"
    given: dict[str, Any] = {}
    for dest, setting in _FLAGS.items():
        value = getattr(args, dest, None)
        if value is not None:
            given[setting] = value
    if args.client_cert:
        given["client_cert"] = (
            (args.client_cert, args.client_key) if args.client_key else args.client_cert
        )
    elif args.client_key:
        raise UsageError("--client-key goes with --client-cert")
    token = _token(args)
    if token is not None:
        given["token"] = token
    for item in args.options:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"--option takes KEY=VALUE, got {item.split('=')[0]!r}")
        given[key.strip().replace("-", "_")] = value
    for key, value in given.items():
        values[key] = value
        sources[key] = "argument"
    if args.token is not None:
        sources["token"] = "argument --token"  # noqa: S105 - a source name; doctor warns
    return values, sources


def _token(args: argparse.Namespace) -> str | None:
    if args.token is not None:
        return str(args.token)
    if args.token_file:
        try:
            return Path(args.token_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(
                f"--token-file: cannot read {args.token_file!r} ({exc.strerror})"
            ) from None
    if args.token_env:
        value = os.environ.get(args.token_env)
        if not value:
            raise UsageError(f"--token-env: the variable {args.token_env} is not set")
        return value
    if args.token_stdin:
        value = sys.stdin.readline()
        if not value.strip():
            raise UsageError("--token-stdin: stdin held no token")
        return value
    return None


# -- the application's own configuration ---------------------------------------


def load_config(source: str, handler: str | None = None) -> dict[str, Any]:
    """The Drain settings in ``source``: ``module:ATTR`` (a dictConfig dict, or
    a mapping of settings) or a ``.json`` / ``.toml`` file holding one."""
    path = Path(source)
    if path.suffix.lower() in (".json", ".toml") or path.is_file():
        data = _read_file(path)
    elif ":" in source:
        module, _, attr = source.partition(":")
        if os.getcwd() not in sys.path:  # as `python -m` would: the app's own modules
            sys.path.insert(0, os.getcwd())
        try:
            data = getattr(importlib.import_module(module), attr)
        except Exception as exc:  # noqa: BLE001 - any failure of the app's module is one line
            raise UsageError(
                f"--config: cannot import {source!r} ({type(exc).__name__}: {exc})"
            ) from None
    else:
        raise UsageError(f"--config: {source!r} is neither module:ATTR nor a .json/.toml file")
    if not isinstance(data, Mapping):
        raise UsageError(f"--config: {source!r} is not a mapping")
    return _drain_settings(data, source, handler)


def _read_file(path: Path) -> Any:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"--config: cannot read {str(path)!r} ({exc.strerror})") from None
    if path.suffix.lower() == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib  # noqa: PLC0415 - only for a TOML file
        else:  # pragma: no cover - Python 3.10
            try:
                import tomli as tomllib  # type: ignore[import-not-found, no-redef, unused-ignore]  # noqa: PLC0415
            except ImportError:
                raise UsageError(
                    "--config: TOML on Python 3.10 needs tomli: pip install tomli"
                ) from None
        try:
            return tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"--config: {str(path)!r} is not valid TOML ({exc})") from None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise UsageError(f"--config: {str(path)!r} is not valid JSON ({exc})") from None


def _drain_settings(data: Mapping[str, Any], source: str, handler: str | None) -> dict[str, Any]:
    if "handlers" in data and isinstance(data["handlers"], Mapping):
        return _from_dictconfig(data["handlers"], source, handler)
    for key in ("logdrain", "tool"):
        table = data.get(key)
        if key == "tool" and isinstance(table, Mapping):
            table = table.get("logdrain")
        if isinstance(table, Mapping):
            return dict(table)
    return dict(data)


def _from_dictconfig(
    handlers: Mapping[str, Any], source: str, wanted: str | None
) -> dict[str, Any]:
    found = {
        name: entry
        for name, entry in handlers.items()
        if isinstance(entry, Mapping)
        and str(entry.get("class") or entry.get("()") or "").rpartition(".")[2] in _HANDLER_CLASSES
    }
    if wanted is not None:
        if wanted not in found:
            known = ", ".join(sorted(found)) or "none"
            raise UsageError(
                f"--handler: no DrainHandler {wanted!r} in {source!r} (found: {known})"
            )
        found = {wanted: found[wanted]}
    if not found:
        raise UsageError(f"--config: {source!r} configures no logdrain DrainHandler")
    if len(found) > 1:
        raise UsageError(
            f"--config: {source!r} has several DrainHandlers ({', '.join(sorted(found))}): "
            "pick one with --handler"
        )
    entry = next(iter(found.values()))
    return {k: v for k, v in entry.items() if k not in _HANDLER_KEYS}
