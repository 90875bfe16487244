"""Errors of the events processor, each with a class name and a reason for the DLQ."""

from __future__ import annotations

__all__ = ["ConfigError", "InvalidEventError", "WebhookError", "WebhooksUndeliveredError"]


class ConfigError(Exception):
    """The function's environment is missing or wrong (fails the cold start loudly)."""


class InvalidEventError(Exception):
    """A record body that is not an SES event: retrying cannot help."""

    error_class = "InvalidEvent"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WebhookError(Exception):
    """One endpoint did not accept one event (network error, timeout or non-2xx)."""

    def __init__(self, endpoint: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"{endpoint}: {reason}")
        self.endpoint = endpoint
        self.reason = reason
        self.status = status


class WebhooksUndeliveredError(Exception):
    """At least one endpoint did not accept the event on this attempt."""

    error_class = "WebhookUndeliverable"

    def __init__(self, failures: list[WebhookError]) -> None:
        self.failures = failures
        self.reason = "; ".join(str(f) for f in failures)
        super().__init__(self.reason)
