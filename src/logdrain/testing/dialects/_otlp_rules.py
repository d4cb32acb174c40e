"""OTLP/JSON rules both of the OTLP fake's parsing paths apply: the bindings'
module, the hex ids and how a repeated field is told.

Shared by ``_otlp`` (the full path, the judge of every error) and
``_otlp_fast`` (the fast path), so that they cannot drift apart; it imports
neither.
"""

from __future__ import annotations

import re
from typing import Any

#: The official Python bindings' module holding ``ExportLogsServiceRequest``.
SERVICE = "opentelemetry.proto.collector.logs.v1.logs_service_pb2"
#: What a ``traceId``/``spanId`` may hold (of the length below, or empty).
HEX = re.compile(r"[0-9a-fA-F]*")
#: The id fields (proto names) and their length in hex digits.
ID_DIGITS = {"trace_id": 32, "span_id": 16}


def is_repeated(field: Any) -> bool:
    """Whether a field descriptor is a repeated field."""
    flag = getattr(field, "is_repeated", None)  # protobuf >= 5.29; ``label`` before
    return bool(flag) if flag is not None else bool(field.label == field.LABEL_REPEATED)
