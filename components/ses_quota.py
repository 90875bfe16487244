"""The account's SES send rate, shared by both sending paths.

SES accepts at most the account's maximum send rate, counted in recipients per second
(Amazon SES Developer Guide, "Managing your Amazon SES sending quotas"); above it a send
fails with ``ThrottlingException: Maximum sending rate exceeded``. Both paths send from
the same account, so this module holds the one rate and splits it between them; each
path paces its own share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError
from .settings import Rule, rule, strict_args
from .validation import is_unresolved

__all__ = [
    "MAX_DELAY_SECONDS",
    "MAX_RECIPIENTS",
    "Number",
    "SesQuotaSettings",
    "split_send_rate",
]

MAX_RECIPIENTS = 50
"""Recipients one message may have (``to`` + ``cc`` + ``bcc``; message.schema.json and
the SES v2 ``SendEmail`` limit)."""

MAX_DELAY_SECONDS = 900
"""The longest ``DelaySeconds`` SQS allows on one message (SQS API Reference,
``SendMessage``); a paced or throttled message is deferred by at most this per hop."""


@dataclass(frozen=True)
class Number(Rule):
    """A number (integer or decimal) in ``(low, high]``, or ``[low, high]`` when
    ``low_inclusive``."""

    low: float
    high: float
    low_inclusive: bool = False
    example_invalid: float = -1.0
    type_name = "number"

    def check(self, key: str, value: Any) -> None:
        if is_unresolved(value):
            return
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(
                f"`{key}` must be a number {self._range()}, but {value!r} "
                f"({type(value).__name__}) was provided"
            )
        above = value >= self.low if self.low_inclusive else value > self.low
        if not (above and value <= self.high):
            raise ConfigError(f"`{key}` must be {self._range()}, but {value} was provided")

    def _range(self) -> str:
        if self.low_inclusive:
            return f"from {self.low:g} to {self.high:g}"
        return f"above {self.low:g} and at most {self.high:g}"

    def describe(self) -> str:
        return f"number, {self._range()}"

    def invalid_example(self) -> Any:
        return self.example_invalid


@strict_args
@dataclass(frozen=True, kw_only=True)
class SesQuotaSettings:
    """The account's SES send rate and how the two sending paths share it."""

    max_send_rate: float = field(default=14, metadata=rule(Number(0, 100_000)))
    """Recipients per second SES accepts from the account in this region, its
    ``MaxSendRate`` (read it with ``aws sesv2 get-account``: ``SendQuota.MaxSendRate``;
    1 in the SES sandbox, 14 for a new production account, more after a quota
    increase). Each recipient of a message (``to``, ``cc``, ``bcc``) counts. Both paths
    together stay under it. Default: ``14``."""

    worker_share: float = field(default=0.5, metadata=rule(Number(0, 1, low_inclusive=True)))
    """The part of ``max_send_rate`` the Worker path may use (0 to 1); the Lambda path
    gets the rest. A path that is off gets nothing and the other the whole rate.
    Default: ``0.5``."""


def split_send_rate(
    settings: SesQuotaSettings, *, lambda_on: bool, worker_on: bool
) -> tuple[float | None, float | None]:
    """Each path's share of ``settings.max_send_rate`` in recipients per second:
    ``(lambda, worker)``, ``None`` for a path that is off."""
    rate = float(settings.max_send_rate)
    if lambda_on and worker_on:
        worker = rate * float(settings.worker_share)
        return rate - worker, worker
    return (rate if lambda_on else None), (rate if worker_on else None)
