"""The ``otlp`` preset's options (``service``, ``host``, ``resource``) and
the OpenTelemetry SDK variables it reads below explicit settings
(``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_EXPORTER_OTLP_[LOGS_]ENDPOINT`` and ``_HEADERS``, and the batch log
record processor's ``OTEL_BLRP_*``)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

LOGS_PATH = "/v1/logs"

#: The SDKs' batch log record processor variables, the settings they become
#: and the least value logdrain takes (``OTEL_BLRP_EXPORT_TIMEOUT`` bounds a
#: whole export in the SDKs; logdrain's deadlines are its own settings).
BATCH_VARIABLES: tuple[tuple[str, str, int], ...] = (
    ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "batch_size", 1),
    ("OTEL_BLRP_MAX_QUEUE_SIZE", "queue_size", 1),
    ("OTEL_BLRP_SCHEDULE_DELAY", "flush_interval", 10),  # milliseconds -> seconds
)


def name_option(option: str, attribute: str) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        if not isinstance(raw, str) or not raw.strip():
            raise ValueError(f"{option} must be a non-empty string (the {attribute} attribute)")
        return raw.strip()

    return parse


def _pairs(text: str, separator: str = ",", lower: bool = False) -> dict[str, str]:
    """``k=v,k2=v2``, percent-decoded; a pair without ``=`` is skipped (and
    never quoted). OTEL_RESOURCE_ATTRIBUTES as opentelemetry-python's
    OTELResourceDetector reads it; OTEL_EXPORTER_OTLP_HEADERS as its
    ``parse_env_headers`` does (names decoded too, and lower-cased)."""
    out: dict[str, str] = {}
    for item in re.split(separator, text):
        key, sep, value = item.partition("=")
        key = (unquote(key).lower() if lower else key).strip()
        if sep and key:
            value = unquote(value.strip())
            out[key] = value.strip() if lower else value
    return out


def resource_option(raw: Any) -> dict[str, Any]:
    """A mapping, its JSON text, or ``k=v,...`` text (as OTEL_RESOURCE_ATTRIBUTES)."""
    if isinstance(raw, str):
        text = raw.strip()
        try:
            raw = json.loads(text) if text.startswith("{") else _pairs(text)
        except ValueError:
            raise ValueError("resource is not a JSON object") from None
        if text and not raw:
            raise ValueError("resource must be key=value pairs separated by commas")
    if not isinstance(raw, Mapping):
        raise ValueError(f"resource must be a mapping of attributes, got {type(raw).__name__}")
    plain = (str, bool, int, float)
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not key.strip():
            raise ValueError("resource attribute names must be non-empty strings")
        listed = isinstance(value, (list, tuple)) and all(isinstance(v, plain) for v in value)
        if not listed and not isinstance(value, plain):
            raise ValueError(
                f"resource attribute {key!r} must be a string, number, boolean or a list "
                f"of them, got {type(value).__name__}"
            )
        out[key.strip()] = list(value) if listed else value
    return out


def environment(environ: Mapping[str, str], options: Mapping[str, Any]) -> dict[str, Any]:
    """The OpenTelemetry SDK variables, below explicit settings (the
    ``service.name``/``host.name`` of an explicit ``resource`` included)."""
    found: dict[str, Any] = {}
    given = options.get("resource") or {}
    attrs = _pairs(environ.get("OTEL_RESOURCE_ATTRIBUTES", ""))
    if attrs:
        found["resource"] = attrs
    service = environ.get("OTEL_SERVICE_NAME", "").strip() or attrs.get("service.name", "")
    if service and "service.name" not in given:
        found["service"] = service
    if attrs.get("host.name") and "host.name" not in given:
        found["host"] = attrs["host.name"]
    endpoint = environ.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "").strip()
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if endpoint:
        found["url"] = endpoint  # the signal's own endpoint is used as it is
    elif base:  # the base one gets the signal's path (exporter specification)
        found["url"] = base.rstrip("/") + LOGS_PATH
    raw = environ.get("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "").strip()
    headers = _pairs(raw or environ.get("OTEL_EXPORTER_OTLP_HEADERS", ""), r"[ \t]*,[ \t]*", True)
    if headers:
        found["headers"] = headers
    for variable, setting, least in BATCH_VARIABLES:
        text = environ.get(variable, "").strip()
        if text:
            found[setting] = _batch_value(variable, text, least, setting == "flush_interval")
    return found


def _batch_value(variable: str, text: str, least: int, millis: bool) -> float:
    """A batch processor variable's whole number (milliseconds: as seconds)."""
    unit = " milliseconds" if millis else ""
    if not text.isdigit() or int(text) < least:
        raise ValueError(
            f"{variable}={text!r}: expected a whole number of{unit or ' records'} "
            f"from {least} (logdrain's least)"
        )
    return int(text) / 1000 if millis else int(text)
