"""``logdrain doctor``: check the whole path to the collector, step by step,
with exactly the settings the application will use.

Steps, in order (a step that cannot run because an earlier one failed is
SKIP): ``settings`` (resolved values, secrets masked, and where each came
from), ``proxy`` (which applies and why), ``dns`` (of the host actually
dialled), ``tcp``, ``connect`` (the proxy's CONNECT), ``tls``, ``probe`` (a
harmless request where the preset has one), ``record`` (one marked test
record through a real Drain; ``--dry-run`` skips it), ``clock`` (against
the server's ``Date``). Each prints PASS / WARN / FAIL / SKIP, one line of
evidence and, on WARN/FAIL, the fix. Exit status 0, 1 when a step failed,
2 on bad usage. Modules: ``_report`` (results, output, redaction),
``_settings``, ``_network`` (proxy, DNS, TCP), ``_tunnel`` (CONNECT), ``_tls``,
``_collector`` (probe, record, clock).
"""

from __future__ import annotations

import argparse
import os
import sys

from .._options import add_settings_arguments, explicit_settings
from ._collector import Seen, check_clock, check_probe, check_record
from ._network import check_dns, check_proxy, check_tcp, route_for
from ._report import Check, Report, skipped, use_color
from ._settings import check_settings, source_of
from ._tls import check_tls
from ._tunnel import check_connect

EXAMPLES = """\
examples:
  logdrain doctor --url https://logs.example:8088 --preset splunk_hec --token-env HEC_TOKEN
  LOGDRAIN_URL=https://loki.example:3100 LOGDRAIN_PRESET=loki logdrain doctor
  logdrain doctor --config myapp.settings:LOGGING          # the app's dictConfig dict
  logdrain doctor --config logging.toml --handler drain --dry-run
  logdrain doctor --url https://collector.example/ingest --ca-bundle corp-ca.pem --json

A token is better read with --token-file, --token-env NAME or --token-stdin
(or from LOGDRAIN_TOKEN) than given with --token, which shows in ps and
shell history. Nothing doctor prints shows a secret.
"""

STEPS = ("settings", "proxy", "dns", "tcp", "connect", "tls", "probe", "record", "clock")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Check settings, proxy, DNS, TCP, the proxy's CONNECT, TLS, auth and one marked "
        "test record, in that order, with exactly the settings your application uses."
    )
    parser.epilog = EXAMPLES
    add_settings_arguments(parser)
    parser.add_argument("--dry-run", action="store_true", help="send no test record")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")


def run(args: argparse.Namespace) -> int:
    explicit, sources = explicit_settings(args)
    report = Report()
    out = sys.stdout
    color = use_color(out) and not args.json

    def emit(check: Check) -> Check:
        report.add(check)
        if not args.json:
            report.write_check(check, out, color)
        return check

    environ = os.environ
    first, resolved = check_settings(explicit, sources, environ, report)
    emit(first)
    if resolved is None:
        for step in STEPS[1:]:
            emit(skipped(step, "not run: the settings are wrong"))
        return _finish(report, args)
    s = resolved.settings
    emit(check_proxy(s, resolved.proxy, source_of("proxy", sources, environ, s), environ))
    route = route_for(s, resolved.proxy)
    blocked = ""
    for step, check in (("dns", check_dns), ("tcp", check_tcp), ("connect", check_connect)):
        if blocked:
            emit(skipped(step, blocked))
            continue
        result = emit(check(route))
        if result.status == "FAIL":
            blocked = f"not run: step {step} failed"
    if blocked:
        emit(skipped("tls", blocked))
    else:
        result = emit(check_tls(route, s, environ))
        if result.status == "FAIL":
            blocked = "not run: step tls failed"
    seen = Seen()
    if blocked:
        for step in ("probe", "record", "clock"):
            emit(skipped(step, blocked))
        return _finish(report, args)
    emit(check_probe(s, seen))
    if args.dry_run:
        emit(skipped("record", "--dry-run: no test record sent"))
    else:
        emit(check_record(resolved.explicit, s, seen))
    emit(check_clock(s, seen))
    return _finish(report, args)


def _finish(report: Report, args: argparse.Namespace) -> int:
    if args.json:
        sys.stdout.write(report.as_json() + "\n")
    else:
        sys.stdout.write(report.redact(report.summary()) + "\n")
    sys.stdout.flush()
    return 1 if report.failed else 0
