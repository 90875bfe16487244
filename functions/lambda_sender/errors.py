"""Errors of the Lambda sender, one class per way a record can end."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DailyQuotaError",
    "DeferSend",
    "InvalidMessageError",
    "PermanentSendError",
    "SchemaError",
    "ThrottledSendError",
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


class ThrottledSendError(TransientSendError):
    """SES throttled the send (429, TooManyRequests/Throttling, maximum sending rate
    exceeded): the message waits on the queue as a delayed copy, not a redelivery."""


class DailyQuotaError(TransientSendError):
    """SES refused the send because the account's 24-hour quota is used up: the message
    is held on the queue until the quota frees, and reported."""


class DeferSend(Exception):
    """This instance's share of the send rate has no room for the message within the
    invocation's remaining time: it goes back on the queue for `delay_seconds`."""

    def __init__(self, delay_seconds: float) -> None:
        super().__init__(f"paced: wait {delay_seconds:.1f}s")
        self.delay_seconds = delay_seconds
