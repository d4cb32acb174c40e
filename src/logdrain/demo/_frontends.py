"""The demo's front ends: stdlib ``logging`` through dictConfig and, when it
is installed, structlog, both feeding one Drain."""

from __future__ import annotations

import logging
import logging.config
from collections.abc import MutableMapping
from typing import Any

from ..drain import Drain
from ..processor import DrainProcessor
from ._workload import optional

LOGGER_NAME = "demo"

_structlog: Any = optional("structlog")


def configure_stdlib(drain: Drain) -> logging.Logger:
    """dictConfig: the ``demo`` logger gets a DrainHandler feeding the shared drain.

    ``"()"`` names a factory, and dictConfig passes the other keys to it as
    keyword arguments; values that are not strings (the Drain object) go
    through unchanged.
    """
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {
                "drain": {"()": "logdrain.DrainHandler", "drain": drain, "level": "INFO"},
            },
            "loggers": {
                LOGGER_NAME: {"handlers": ["drain"], "level": "INFO", "propagate": False},
            },
        }
    )
    return logging.getLogger(f"{LOGGER_NAME}.train")


def _discard(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """The last structlog processor: stop here, print nothing locally."""
    raise _structlog.DropEvent


def configure_structlog(drain: Drain) -> Any | None:
    """structlog -> DrainProcessor(drain) -> discard; None when structlog is missing."""
    if _structlog is None:
        return None
    _structlog.configure(
        processors=[_structlog.contextvars.merge_contextvars, DrainProcessor(drain), _discard],
        cache_logger_on_first_use=False,
    )
    return _structlog.get_logger().bind(logger=f"{LOGGER_NAME}.structlog", via="structlog")


def reset_structlog() -> None:
    if _structlog is not None:
        _structlog.reset_defaults()
