"""``logdrain doctor`` against each failure, through real parts on 127.0.0.1:
the CLI runs in a subprocess (``python -m logdrain doctor``), with a timeout
as a safety cap only; each test asserts the step that fails and its fix."""

from __future__ import annotations

import datetime
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from logdrain.testing import Collector

from .picky import PickyCollector
from .proc import child_env, run_cli
from .proxy_helpers import FixedProxy, ForwardProxy, TestCA, dead_port
from .tls_helpers import (  # noqa: F401 - fixtures
    ca_pem_fixture,
    client_cert_files_fixture,
    client_cert_fixture,
    make_server_context,
    server_cert_fixture,
    tls_ca_fixture,
)

TOKEN = "doctor-secret-token-0123456789"
PROXY_PASSWORD = "proxy-pw-s3cret"
CHILD_TIMEOUT = 120.0


def doctor(*args: str, **env: str) -> tuple[int, dict[str, dict[str, Any]], str]:
    """Run ``doctor --json``: exit status, the steps by name, and all output."""
    proc = run_cli("doctor", "--json", *args, **env)
    output = proc.stdout + proc.stderr
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"not JSON (exit {proc.returncode}):\n{output}") from None
    assert [s["step"] for s in doc["steps"]] == [
        "settings",
        "proxy",
        "dns",
        "tcp",
        "connect",
        "tls",
        "probe",
        "record",
        "clock",
    ]
    assert doc["exit"] == proc.returncode
    return proc.returncode, {s["step"]: s for s in doc["steps"]}, output


def assert_fails_at(steps: dict[str, dict[str, Any]], step: str, evidence: str, fix: str) -> None:
    """``step`` is the first FAIL, with ``evidence`` and ``fix`` in its lines."""
    failed = [name for name, s in steps.items() if s["status"] == "FAIL"]
    assert failed and failed[0] == step, steps
    assert evidence in steps[step]["evidence"], steps[step]
    assert fix in (steps[step]["fix"] or ""), steps[step]


@pytest.fixture
def https_collector(tmp_path: Path) -> Iterator[tuple[Collector, TestCA]]:
    ca = TestCA(tmp_path)
    with ca.collector() as collector:
        yield collector, ca


@pytest.fixture
def basic_proxy(tmp_path: Path) -> Iterator[ForwardProxy]:
    """proxy.py on 127.0.0.1 wanting Basic ``user:PROXY_PASSWORD``."""
    with ForwardProxy(tmp_path, basic_auth=f"user:{PROXY_PASSWORD}") as proxy:
        yield proxy


def doctor_tunnel(
    https_collector: tuple[Collector, TestCA], *args: str, **env: str
) -> tuple[int, dict[str, dict[str, Any]], str]:
    """``doctor`` of the HTTPS collector, its CA trusted, with more ``args``."""
    collector, ca = https_collector
    return doctor("--url", collector.url, "--ca-bundle", ca.pem, *args, **env)


# -- the path that works ---------------------------------------------------------


def test_all_steps_pass_against_a_plain_collector(collector: Collector) -> None:
    """Every step passes (or does not apply), the record arrives marked, exit 0."""
    code, steps, output = doctor("--url", collector.url, "--token", TOKEN)
    assert code == 0, output
    assert steps["record"]["status"] == "PASS"
    assert collector.wait_for_count(1)
    assert collector.records[0]["logdrain_doctor"] in steps["record"]["evidence"]
    assert steps["connect"]["status"] == "SKIP" and steps["tls"]["status"] == "SKIP"
    assert TOKEN not in output


def test_text_output_has_fixes_and_a_summary_and_no_color_on_a_pipe(collector: Collector) -> None:
    """Plain text: one line per step, the fix under a FAIL, a summary, no escapes."""
    collector.script(401, body=f"bad token {TOKEN}".encode())
    proc = run_cli("doctor", "--url", collector.url, "--token", TOKEN)
    assert proc.returncode == 1
    out = proc.stdout
    assert "\x1b[" not in out
    assert out.splitlines()[-1].startswith("summary: ")
    assert "1 FAIL" in out.splitlines()[-1]
    assert any(line.startswith("FAIL record") for line in out.splitlines())
    assert "fix: the collector refused the credentials" in out
    assert TOKEN not in proc.stdout + proc.stderr


def test_https_through_a_proxy_with_credentials_passes(
    https_collector: Any, basic_proxy: ForwardProxy
) -> None:
    """The whole tunnel: proxy from HTTPS_PROXY, CONNECT with Basic, TLS with the CA
    added, the chain shown; the proxy password never printed."""
    collector, _ = https_collector
    proxy_url = basic_proxy.url("user", PROXY_PASSWORD)
    code, steps, output = doctor_tunnel(https_collector, HTTPS_PROXY=proxy_url)
    assert code == 0, output
    assert (
        "HTTPS_PROXY" in steps["proxy"]["evidence"] or "https_proxy" in steps["proxy"]["evidence"]
    )
    assert steps["connect"]["status"] == "PASS"
    assert steps["tls"]["status"] == "PASS"
    assert any(line.startswith("cert 0: subject") for line in steps["tls"]["details"])
    assert collector.wait_for_count(1)
    assert PROXY_PASSWORD not in output


def test_sources_are_named_and_no_proxy_bypass_is_explained(collector: Collector) -> None:
    """LOGDRAIN_URL shows as the environment; a NO_PROXY match says so."""
    code, steps, _ = doctor(
        LOGDRAIN_URL=collector.url, HTTP_PROXY="http://127.0.0.1:9", NO_PROXY="127.0.0.1"
    )
    assert code == 0
    url_line = next(d for d in steps["settings"]["details"] if d.startswith("url "))
    assert "environment LOGDRAIN_URL" in url_line
    assert "bypassed by NO_PROXY" in steps["proxy"]["evidence"]


def test_dry_run_sends_nothing(collector: Collector) -> None:
    """--dry-run: the record step is skipped and the collector sees no POST."""
    code, steps, _ = doctor("--url", collector.url, "--dry-run")
    assert code == 0
    assert steps["record"]["status"] == "SKIP"
    assert collector.count == 0


# -- proxy failures --------------------------------------------------------------


def test_proxy_down() -> None:
    """Nothing listens at the proxy's port: tcp fails, naming the proxy."""
    port = dead_port()
    code, steps, _ = doctor(
        "--url", "https://collector.example/ingest", "--proxy", f"http://127.0.0.1:{port}"
    )
    assert code == 1
    assert_fails_at(steps, "tcp", "the proxy 127.0.0.1", "proxy at 127.0.0.1")
    assert steps["tls"]["status"] == "SKIP"


def test_proxy_407_basic_without_credentials(
    https_collector: Any, basic_proxy: ForwardProxy
) -> None:
    """A Basic proxy asked without credentials: connect fails, fix shows the URL form."""
    code, steps, _ = doctor_tunnel(https_collector, "--proxy", basic_proxy.url())
    assert code == 1
    assert_fails_at(steps, "connect", "wants credentials (407", "http://USER:PASSWORD@host:port")
    assert "Basic" in steps["connect"]["evidence"]


def test_wrong_proxy_password(https_collector: Any, basic_proxy: ForwardProxy) -> None:
    """Credentials the proxy refuses: told apart from none at all; never printed."""
    wrong = basic_proxy.url("user", "wrong-password-x")
    code, steps, output = doctor_tunnel(https_collector, "--proxy", wrong)
    assert code == 1
    assert_fails_at(
        steps, "connect", "refused the credentials", "check user and password in proxy="
    )
    assert "wrong-password-x" not in output


def test_proxy_offering_only_ntlm() -> None:
    """407 with NTLM and Negotiate only: the advice is a local relay."""
    headers = [("Proxy-Authenticate", "NTLM"), ("Proxy-Authenticate", "Negotiate")]
    with FixedProxy(407, "Proxy Authentication Required", headers) as proxy:
        code, steps, _ = doctor("--url", "https://collector.example/ingest", "--proxy", proxy.url())
    assert code == 1
    assert_fails_at(steps, "connect", "offers only NTLM, Negotiate", "cntlm or px")


def test_proxy_403_is_not_about_credentials() -> None:
    """403 on CONNECT: a policy, told apart from 407."""
    with FixedProxy(403, "Forbidden", []) as proxy:
        code, steps, _ = doctor(
            "--url", "https://collector.example:8443/ingest", "--proxy", proxy.url()
        )
    assert code == 1
    assert_fails_at(
        steps, "connect", "forbids the tunnel", "allow CONNECT to collector.example:8443"
    )


# -- DNS -------------------------------------------------------------------------


def test_dns_failure() -> None:
    """A name that cannot resolve (.invalid): dns fails on the collector's host."""
    code, steps, _ = doctor("--url", "https://collector.invalid/ingest")
    assert code == 1
    assert_fails_at(steps, "dns", "'collector.invalid' does not resolve", "host name in url=")


# -- TLS -------------------------------------------------------------------------


def test_tls_unknown_ca(https_collector: Any) -> None:
    """A trustme CA nobody trusts: the issuer named, the fix says ca_bundle= or trust=system."""
    collector, _ = https_collector
    code, steps, _ = doctor("--url", collector.url)
    assert code == 1
    issuer = "Testing CA"
    assert_fails_at(steps, "tls", "which no trusted root covers", "ca_bundle=")
    assert issuer in steps["tls"]["evidence"]
    assert "trust=system" in steps["tls"]["fix"]
    assert steps["tls"]["details"][0].startswith("trust: certifi")
    assert any("cert 0: subject" in line for line in steps["tls"]["details"])
    assert collector.count == 0


def _serve(ca: trustme.CA, leaf: trustme.LeafCert, **kwargs: Any) -> Collector:
    return Collector(tls=make_server_context(ca, leaf, **kwargs))


def test_tls_expired_certificate(tls_ca: trustme.CA, ca_pem: str) -> None:
    """A certificate whose notAfter has passed: tls fails, saying expired."""
    now = datetime.datetime.now(datetime.timezone.utc)
    leaf = tls_ca.issue_cert(
        "127.0.0.1",
        not_before=now - datetime.timedelta(days=10),
        not_after=now - datetime.timedelta(days=1),
    )
    with _serve(tls_ca, leaf) as collector:
        code, steps, _ = doctor("--url", collector.url, "--ca-bundle", ca_pem)
    assert code == 1
    assert_fails_at(steps, "tls", "certificate expired", "renew")


def test_tls_wrong_hostname(tls_ca: trustme.CA, ca_pem: str) -> None:
    """A certificate for another name: tls fails with the names it holds."""
    leaf = tls_ca.issue_cert("logs.example.org")
    with _serve(tls_ca, leaf) as collector:
        code, steps, _ = doctor("--url", collector.url, "--ca-bundle", ca_pem)
    assert code == 1
    assert_fails_at(steps, "tls", "hostname mismatch", "logs.example.org")
    assert "'127.0.0.1'" in steps["tls"]["evidence"]


def test_tls_client_certificate_required(
    tls_ca: trustme.CA, server_cert: trustme.LeafCert, ca_pem: str
) -> None:
    """mTLS without a client certificate: tls fails, asking for client_cert=."""
    with _serve(tls_ca, server_cert, require_client_cert=True) as collector:
        code, steps, _ = doctor("--url", collector.url, "--ca-bundle", ca_pem)
    assert code == 1
    assert_fails_at(steps, "tls", "asks for a client certificate", "client_cert=")


def test_tls_client_certificate_given_passes(
    tls_ca: trustme.CA, server_cert: trustme.LeafCert, ca_pem: str, client_cert_files: Any
) -> None:
    """mTLS with the certificate: every step passes."""
    with _serve(tls_ca, server_cert, require_client_cert=True) as collector:
        code, steps, output = doctor(
            "--url",
            collector.url,
            "--ca-bundle",
            ca_pem,
            "--client-cert",
            client_cert_files.cert,
            "--client-key",
            client_cert_files.key,
        )
        assert code == 0, output
        assert collector.wait_for_count(1)
    assert any("client certificate" in line for line in steps["tls"]["details"])


# -- the collector's answers -----------------------------------------------------


def test_401(collector: Collector) -> None:
    """401 on the test record: the fix names the token sources."""
    collector.script(401)
    code, steps, output = doctor("--url", collector.url, "--token", TOKEN)
    assert code == 1
    assert_fails_at(steps, "record", "HTTP 401", "check the token (--token-file")
    assert TOKEN not in output


def test_picky_collector_404_shows_the_body() -> None:
    """The picky collector's 404: the body excerpt says what it wants."""
    with PickyCollector("team", TOKEN) as picky:
        code, steps, output = doctor("--url", picky.url, "--token-env", "MY_TOKEN", MY_TOKEN=TOKEN)
    assert code == 1
    assert_fails_at(steps, "record", "HTTP 404", "record's shape")
    assert "not found: expected one object" in steps["record"]["evidence"]
    assert TOKEN not in output


def test_413(collector: Collector) -> None:
    """413 for one small record: the fix is the collector's body limit."""
    collector.script(413, times=3)
    code, steps, _ = doctor("--url", collector.url)
    assert code == 1
    assert_fails_at(steps, "record", "HTTP 413", "body limit")


def test_timeout(collector: Collector) -> None:
    """A collector that takes the request and never answers: read_timeout named."""
    collector.hang()
    code, steps, _ = doctor(
        "--url", collector.url, "-o", "read_timeout=0.5", "-o", "request_timeout=1"
    )
    collector.hang(False)
    assert code == 1
    assert_fails_at(steps, "record", "no answer within read_timeout (0.5 s)", "raise read_timeout=")


# -- settings sources and usage --------------------------------------------------


def test_bad_setting_fails_step_one() -> None:
    """A wrong setting: settings fails with the library's own fix; the rest SKIP."""
    code, steps, _ = doctor("--url", "https://collector.example/ingest", "-o", "batch_size=lots")
    assert code == 1
    assert_fails_at(steps, "settings", "batch_size", "give an integer")
    assert all(s["status"] == "SKIP" for name, s in steps.items() if name != "settings")


def test_config_dictconfig_json_file(collector: Collector, tmp_path: Path) -> None:
    """--config FILE.json with a dictConfig dict: the DrainHandler's settings are used."""
    config = {
        "version": 1,
        "handlers": {
            "console": {"class": "logging.StreamHandler"},
            "drain": {
                "class": "logdrain.DrainHandler",
                "url": collector.url,
                "level": "INFO",
                "token": TOKEN,
            },
        },
    }
    path = tmp_path / "logging.json"
    path.write_text(json.dumps(config))
    code, steps, output = doctor("--config", str(path))
    assert code == 0, output
    url_line = next(d for d in steps["settings"]["details"] if d.startswith("url "))
    assert "(config)" in url_line
    assert TOKEN not in output


def test_config_module_attribute_and_toml(collector: Collector, tmp_path: Path) -> None:
    """--config module:LOGGING and a TOML [logdrain] table."""
    handler = {"()": "logdrain.handler.DrainHandler", "url": collector.url}
    (tmp_path / "appsettings.py").write_text(
        f"LOGGING = {{'version': 1, 'handlers': {{'d': {handler!r}}}}}\n"
    )
    code, steps, output = doctor(
        "--config",
        "appsettings:LOGGING",
        "--dry-run",
        PYTHONPATH=os.pathsep.join([str(tmp_path), child_env()["PYTHONPATH"]]),
    )
    assert code == 0, output
    toml = tmp_path / "logdrain.toml"
    toml.write_text(f'[logdrain]\nurl = "{collector.url}"\nbatch_size = 10\n')
    code, steps, output = doctor("--config", str(toml), "--dry-run")
    assert code == 0, output
    assert any(d.startswith("batch_size") and "(config)" in d for d in steps["settings"]["details"])


def test_token_from_file_and_stdin(collector: Collector, tmp_path: Path) -> None:
    """--token-file and --token-stdin feed the token; it is never shown."""
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    code, _, output = doctor("--url", collector.url, "--token-file", str(path))
    assert code == 0 and TOKEN not in output
    proc = run_cli("doctor", "--url", collector.url, "--token-stdin", stdin=TOKEN + "\n")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert TOKEN not in proc.stdout + proc.stderr
    assert collector.wait_for_count(2)
    assert all(r.headers.get("Authorization") == f"Bearer {TOKEN}" for r in collector.requests)


def test_bad_usage_exits_2(tmp_path: Path) -> None:
    """Unknown flags, an unreadable token file: exit status 2 and one line."""
    assert run_cli("doctor", "--no-such-flag").returncode == 2
    proc = run_cli("doctor", "--url", "https://x.example", "--token-file", str(tmp_path / "none"))
    assert proc.returncode == 2
    assert "--token-file: cannot read" in proc.stderr


# -- the command line around it --------------------------------------------------


def test_help_version_and_replay_usage() -> None:
    """--help shows examples, --version the version; replay without its file is bad usage."""
    top = run_cli("--help")
    assert top.returncode == 0 and "examples:" in top.stdout and "doctor" in top.stdout
    sub = run_cli("doctor", "--help")
    assert sub.returncode == 0 and "examples:" in sub.stdout and "--token-file" in sub.stdout
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("logdrain ")
    replay = run_cli("replay")
    assert replay.returncode == 2
    assert "the following arguments are required: file" in replay.stderr
    replay_help = run_cli("replay", "--help")
    assert replay_help.returncode == 0 and "examples:" in replay_help.stdout


def test_import_logdrain_does_not_load_the_cli() -> None:
    """The command line stays out of the library's import path."""
    code = (
        "import sys, logdrain; print(sorted(m for m in sys.modules if m.startswith('logdrain.')))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=CHILD_TIMEOUT,
        check=True,
    )
    loaded = proc.stdout
    assert "logdrain.cli" not in loaded and "logdrain.testing" not in loaded, loaded
    assert "logdrain.demo" not in loaded, loaded


# -- presets: probe and the preset's own verdict -----------------------------------


def test_loki_probe_and_record_pass() -> None:
    """--preset loki against the strict Loki fake: /ready probed, the record stored."""
    from logdrain.testing.dialects import Loki, StrictCollector

    with StrictCollector(Loki()) as loki:
        code, steps, output = doctor("--preset", "loki", "--url", loki.base_url)
        assert code == 0, output
        assert loki.wait_for_count(1)
    assert steps["probe"]["status"] == "PASS"
    assert "Loki ready GET /ready: HTTP 200" in steps["probe"]["evidence"]
    assert steps["clock"]["status"] == "PASS"


def test_splunk_health_passes_but_a_wrong_token_is_refused() -> None:
    """HEC health needs no token; the record with a wrong one gets HEC's 403."""
    from logdrain.testing.dialects import SplunkHEC, StrictCollector

    with StrictCollector(SplunkHEC(tokens=["right-token-0000"])) as hec:
        code, steps, output = doctor(
            "--preset",
            "splunk_hec",
            "--url",
            hec.base_url,
            "--token-env",
            "HEC",
            HEC="wrong-token-1111",
        )
    assert code == 1
    assert steps["probe"]["status"] == "PASS"
    assert_fails_at(steps, "record", "HTTP 403", "may not write here")
    assert "Invalid token" in steps["record"]["evidence"]
    assert "wrong-token-1111" not in output


def test_color_only_on_a_terminal_and_never_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    """use_color: a tty without NO_COLOR only."""
    from logdrain.cli.doctor._report import use_color

    class Stream(io.StringIO):
        def __init__(self, tty: bool) -> None:
            super().__init__()
            self.tty = tty

        def isatty(self) -> bool:
            return self.tty

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert use_color(Stream(tty=True))
    assert not use_color(Stream(tty=False))
    monkeypatch.setenv("NO_COLOR", "")
    assert not use_color(Stream(tty=True))


def test_a_slack_webhook_url_is_never_printed() -> None:
    """The whole webhook URL is the credential: no step shows its path."""
    from logdrain.testing.dialects import Slack, StrictCollector

    with StrictCollector(Slack()) as slack:
        code, steps, output = doctor("--preset", "slack", "--url", slack.url)
        assert code == 0, output
        assert slack.wait_for_count(1)
    path = slack.url.split("/", 3)[3]
    for piece in [path, *path.split("/")[1:]]:
        assert piece not in output, piece
    assert "/***" in steps["settings"]["evidence"]


def test_token_flag_is_a_warning_naming_the_safer_ways(collector: Collector) -> None:
    """--token works, but settings WARNs that it shows in ps; exit stays 0."""
    code, steps, output = doctor("--url", collector.url, "--token", TOKEN)
    assert code == 0, output
    assert steps["settings"]["status"] == "WARN"
    assert "shows in ps and shell history" in steps["settings"]["evidence"]
    assert "--token-file" in steps["settings"]["fix"]
    code, steps, _ = doctor("--url", collector.url, "--token-env", "T", T=TOKEN)
    assert steps["settings"]["status"] == "PASS"
