"""Exceptions raised by logdrain.

The tree::

    LogdrainError
    ├── ConfigError          wrong setting, raised at construction
    └── DeliveryError        a batch could not be delivered (never raised to
        ├── TransientError   the logging caller; used inside the transport
        └── PermanentError   and reported through stats and stderr)
"""

from __future__ import annotations


class LogdrainError(Exception):
    """Root of every exception logdrain raises."""


class ConfigError(LogdrainError, ValueError):
    """A setting is wrong. The message names the field and how to fix it."""

    def __init__(self, field: str, problem: str, fix: str) -> None:
        self.field = field
        self.problem = problem
        self.fix = fix
        super().__init__(f"logdrain: {field}: {problem}; {fix}")


class DeliveryError(LogdrainError):
    """A batch was not accepted by the collector."""

    def __init__(self, reason: str, status: int | None = None, body: str = "") -> None:
        self.reason = reason
        self.status = status
        self.body = body
        super().__init__(self.describe())

    def describe(self) -> str:
        """One line: status, reason and the start of the response body."""
        head = f"HTTP {self.status}" if self.status is not None else "no response"
        text = f"{head}: {self.reason}"
        if self.body:
            text += f": {self.body!r}"
        return text


class TransientError(DeliveryError):
    """A failure worth retrying (connection error, timeout, 408/425/429/5xx)."""

    def __init__(
        self,
        reason: str,
        status: int | None = None,
        body: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(reason, status, body)


class PermanentError(DeliveryError):
    """A failure that retrying cannot fix (most 4xx, redirects, bad TLS)."""
