"""Sorts a failed SES send into transient (SQS retries it) or permanent (DLQ at once).

Transient: throttling (HTTP 429 and the throttling codes), any 5xx, and network faults;
the botocore client retries only once itself because SQS redelivery is the real retry,
bounded by the queue's maxReceiveCount and then its redrive to the DLQ.

Permanent: the request or the account state is wrong and a redelivery minutes later
would fail the same way. `SendingPausedException` and `AccountSuspendedException` are
kept here on purpose: SES pauses sending for a reputation problem or an operator's
action, which takes a human and usually hours or days to clear, far longer than the
few redeliveries SQS allows. Retrying would only burn receives and then drop the
messages into the DLQ without a reason; dead-lettering at once keeps the reason, trips
the DLQ alarm immediately, and an operator redrives the DLQ once sending is resumed.
An unknown 4xx (e.g. AccessDenied from a broken IAM policy) is also permanent for the
same reason; an unknown exception that is not from SES is treated as transient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from botocore.exceptions import ClientError, HTTPClientError, ParamValidationError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

__all__ = [
    "DAILY_QUOTA_CODES",
    "PERMANENT_CODES",
    "THROTTLING_CODES",
    "TRANSIENT_CODES",
    "SendFailure",
    "classify",
]

# SES answers a send past the account's quota with a throttling error whose message says
# which quota: "Maximum sending rate exceeded" or "Daily message quota exceeded" (SES
# Developer Guide, "Errors related to the sending quotas for your Amazon SES account").
# The daily one does not clear in seconds: the 24-hour window has to move on.
DAILY_QUOTA_MESSAGE = "daily message quota exceeded"
DAILY_QUOTA_CODES = frozenset({"SendingQuotaExceeded", "SendingQuotaExceededException"})

THROTTLING_CODES = frozenset(
    {
        "TooManyRequestsException",
        "LimitExceededException",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
    }
)
TRANSIENT_CODES = THROTTLING_CODES | frozenset(
    {
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
PERMANENT_CODES = frozenset(
    {
        "MessageRejected",
        "MailFromDomainNotVerifiedException",
        "BadRequestException",
        "NotFoundException",
        "AccountSuspendedException",
        "SendingPausedException",
    }
)


@dataclass(frozen=True)
class SendFailure:
    kind: Literal["transient", "permanent", "throttled", "daily_quota"]
    error_class: str
    reason: str


def classify(exc: BaseException) -> SendFailure:
    """Classify an exception raised by ``sesv2.send_email``."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "Unknown")
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        reason = str(error.get("Message") or code)
        if code in DAILY_QUOTA_CODES or DAILY_QUOTA_MESSAGE in reason.lower():
            return SendFailure("daily_quota", code, reason)
        if code in THROTTLING_CODES or status == 429:
            return SendFailure("throttled", code, reason)
        if code in TRANSIENT_CODES or status >= 500:
            return SendFailure("transient", code, reason)
        if code in PERMANENT_CODES or 400 <= status < 500:
            return SendFailure("permanent", code, reason)
        return SendFailure("transient", code, reason)
    if isinstance(exc, BotocoreConnectionError | HTTPClientError):
        return SendFailure("transient", exc.__class__.__name__, str(exc))
    if isinstance(exc, ParamValidationError):
        # The request was built from a checked message, so this is a contract gap:
        # retrying the same body would fail the same way.
        return SendFailure("permanent", "ParamValidationError", str(exc))
    return SendFailure("transient", exc.__class__.__name__, str(exc))
