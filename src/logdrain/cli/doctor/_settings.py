"""Step 1, settings: resolve them exactly as a Drain would, and say where each
came from (argument, config, environment, preset default, default)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...config import Settings, env_name, mask_url, plain_http_secret_warning, resolve
from ...errors import ConfigError
from ...trust import select_proxy
from ._report import Check, Report

#: Settings always listed (others only when given).
SHOWN = (
    "url",
    "preset",
    "token",
    "headers",
    "proxy",
    "no_proxy",
    "trust_env",
    "trust",
    "ca_bundle",
    "ca_mode",
    "client_cert",
    "insecure",
    "connect_timeout",
    "read_timeout",
    "request_timeout",
)


@dataclass
class Resolved:
    """What the later steps work from."""

    settings: Settings
    explicit: dict[str, Any]
    proxy: str | None
    sources: dict[str, str] = field(default_factory=dict)


def source_of(
    name: str, sources: Mapping[str, str], environ: Mapping[str, str], settings: Settings
) -> str:
    if name in sources:
        return sources[name]
    if environ.get(env_name(name)) is not None:
        return f"environment {env_name(name)}"
    if name in getattr(settings.preset, "defaults", {}):
        return f"preset {settings.preset.name} default"
    return "default"


def _shown(name: str, settings: Settings) -> str:
    value = getattr(settings, name, None)
    if name == "url":
        return settings.shown_url()
    if name == "preset":
        return str(getattr(value, "name", value))
    if name == "token":
        return "*** (set)" if value else "(none)"
    if name == "headers":
        return ", ".join(f"{k}: ***" for k in value) if value else "(none)"
    if name == "proxy":
        return mask_url(value) if value else ("'' (none)" if value == "" else "(none)")
    if value is None or value == "":
        return "(none)"
    return repr(value) if isinstance(value, tuple) else str(value)


def check_settings(
    explicit: dict[str, Any], sources: dict[str, str], environ: Mapping[str, str], report: Report
) -> tuple[Check, Resolved | None]:
    for key in ("token",):
        if isinstance(explicit.get(key), str):
            report.add_secret(explicit[key].strip())
    headers = explicit.get("headers")
    if isinstance(headers, Mapping):
        for value in headers.values():
            if isinstance(value, str):
                report.add_secret(value.strip())
    try:
        settings = resolve(explicit, environ)
    except ConfigError as exc:
        return Check("settings", "FAIL", f"{exc.field}: {exc.problem}", exc.fix), None
    proxy = select_proxy(settings, environ)
    for secret in settings.secrets(proxy):
        report.add_secret(secret)
    details = [
        f"{name:<16} {_shown(name, settings):<40} ({source_of(name, sources, environ, settings)})"
        for name in SHOWN
    ]
    listed = set(SHOWN)
    for name in sorted(set(sources) - listed):
        if name in settings.options:
            value = settings.options[name]
            details.append(f"{name:<16} {value!s:<40} (preset option, {sources[name]})")
        elif hasattr(settings, name) and name not in ("client_cert",):
            details.append(f"{name:<16} {getattr(settings, name)!s:<40} ({sources[name]})")
    for name, value in sorted(settings.options.items()):
        if name not in sources:
            details.append(f"{name:<16} {value!s:<40} (preset option)")
    resolved = Resolved(settings, explicit, proxy, dict(sources))
    evidence = f"preset {settings.preset.name}, collector {settings.shown_url()}"
    warnings: list[tuple[str, str]] = []
    if settings.insecure:
        warnings.append(
            (
                "TLS verification is OFF (insecure)",
                "drop insecure= and trust the collector's CA instead (ca_bundle= or trust=system)",
            )
        )
    if plain_http_secret_warning(settings, proxy):
        warnings.append(("credentials cross the network in clear text", "use an https:// url"))
    if sources.get("token") == "argument --token":
        warnings.append(
            (
                "the token was given with --token, which shows in ps and shell history",
                "use --token-file, --token-env NAME, --token-stdin or LOGDRAIN_TOKEN",
            )
        )
    if warnings:
        return Check(
            "settings",
            "WARN",
            evidence + ": " + "; ".join(problem for problem, _ in warnings),
            "; ".join(fix for _, fix in warnings),
            details,
        ), resolved
    return Check("settings", "PASS", evidence, "", details), resolved
