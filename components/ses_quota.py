"""The account's SES send rate, shared by both sending paths.

SES accepts at most the account's maximum send rate, counted in recipients per second
(Amazon SES Developer Guide, "Managing your Amazon SES sending quotas"); above it a send
fails with ``ThrottlingException: Maximum sending rate exceeded``. Both paths send from
the same account, so this module holds the one rate and splits it between them; each
path paces its own share.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .settings import Number, rule, strict_args

__all__ = [
    "MAX_DELAY_SECONDS",
    "MAX_RECIPIENTS",
    "SesQuotaSettings",
    "split_send_rate",
]

MAX_RECIPIENTS = 50
"""Recipients one message may have (``to`` + ``cc`` + ``bcc``; message.schema.json and
the SES v2 ``SendEmail`` limit)."""

MAX_DELAY_SECONDS = 900
"""The longest ``DelaySeconds`` SQS allows on one message (SQS API Reference,
``SendMessage``); a paced or throttled message is deferred by at most this per hop."""


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
