"""logdrain: ship log records over HTTP(S) without slowing or endangering the app.

>>> import logging, logdrain
>>> logging.getLogger().addHandler(logdrain.DrainHandler("https://logs.example/ingest"))
"""

from .__about__ import __version__
from .config import Settings
from .context import bind, bound, get_context, unbind
from .drain import Drain
from .errors import ConfigError, DeliveryError, LogdrainError, PermanentError, TransientError
from .handler import DrainHandler
from .processor import DrainProcessor
from .stats import DrainStats

__all__ = [
    "ConfigError",
    "DeliveryError",
    "Drain",
    "DrainHandler",
    "DrainProcessor",
    "DrainStats",
    "LogdrainError",
    "PermanentError",
    "Settings",
    "TransientError",
    "__version__",
    "bind",
    "bound",
    "get_context",
    "unbind",
]
