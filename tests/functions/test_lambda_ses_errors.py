"""Which SES failures SQS retries and which go to the DLQ at once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "functions"))

from lambda_sender.ses_errors import classify


def client_error(code: str, status: int, message: str = "m") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "SendEmail",
    )


@pytest.mark.parametrize(
    ("exc", "kind", "error_class"),
    [
        (client_error("TooManyRequestsException", 429), "throttled", "TooManyRequestsException"),
        (client_error("LimitExceededException", 400), "throttled", "LimitExceededException"),
        (client_error("Throttling", 400), "throttled", "Throttling"),
        (client_error("ThrottlingException", 400), "throttled", "ThrottlingException"),
        (
            client_error("Throttling", 400, "Maximum sending rate exceeded."),
            "throttled",
            "Throttling",
        ),
        (client_error("SomethingNew", 429), "throttled", "SomethingNew"),
        # SES names the daily quota in the throttling error's message (SES Developer
        # Guide, "Errors related to the sending quotas for your Amazon SES account").
        (
            client_error("Throttling", 400, "Daily message quota exceeded."),
            "daily_quota",
            "Throttling",
        ),
        (
            client_error("ThrottlingException", 400, "Daily message quota exceeded"),
            "daily_quota",
            "ThrottlingException",
        ),
        (
            client_error("LimitExceededException", 400, "Daily message quota exceeded."),
            "daily_quota",
            "LimitExceededException",
        ),
        (client_error("SendingQuotaExceeded", 400), "daily_quota", "SendingQuotaExceeded"),
        (client_error("InternalFailure", 500), "transient", "InternalFailure"),
        (client_error("SomethingNew", 503), "transient", "SomethingNew"),
        (EndpointConnectionError(endpoint_url="u"), "transient", "EndpointConnectionError"),
        (ConnectTimeoutError(endpoint_url="u"), "transient", "ConnectTimeoutError"),
        (ReadTimeoutError(endpoint_url="u"), "transient", "ReadTimeoutError"),
        (RuntimeError("bug"), "transient", "RuntimeError"),
        (client_error("MessageRejected", 400), "permanent", "MessageRejected"),
        (
            client_error("MailFromDomainNotVerifiedException", 400),
            "permanent",
            "MailFromDomainNotVerifiedException",
        ),
        (client_error("BadRequestException", 400), "permanent", "BadRequestException"),
        (client_error("NotFoundException", 404), "permanent", "NotFoundException"),
        (client_error("AccountSuspendedException", 400), "permanent", "AccountSuspendedException"),
        (client_error("SendingPausedException", 400), "permanent", "SendingPausedException"),
        (client_error("AccessDeniedException", 403), "permanent", "AccessDeniedException"),
        (ParamValidationError(report="bad"), "permanent", "ParamValidationError"),
    ],
)
def test_classification(exc, kind, error_class):
    failure = classify(exc)
    assert (failure.kind, failure.error_class) == (kind, error_class)
