"""Errors of the Lambda sender, one class per way a record can end."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "InvalidMessageError",
    "PermanentSendError",
    "SchemaError",
    "TransientSendError",
]


class ConfigError(RuntimeError):
    """The function's environment is incomplete or inconsistent (raised at cold start)."""


class SchemaError(RuntimeError):
    """The bundled message schema cannot be found or uses a keyword this validator lacks."""


class InvalidMessageError(ValueError):
    """The record body breaks the message contract; retrying can never help."""

    error_class = "InvalidMessage"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _SendError(Exception):
    def __init__(self, error_class: str, reason: str) -> None:
        super().__init__(f"{error_class}: {reason}")
        self.error_class = error_class
        self.reason = reason


class PermanentSendError(_SendError):
    """SES refused the message for a reason a redelivery would not change."""


class TransientSendError(_SendError):
    """Throttling, a 5xx or a network fault: SQS redelivers the record later."""
