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


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "SendEmail",
    )


@pytest.mark.parametrize(
    ("exc", "kind", "error_class"),
    [
        (client_error("TooManyRequestsException", 429), "transient", "TooManyRequestsException"),
        (client_error("LimitExceededException", 400), "transient", "LimitExceededException"),
        (client_error("Throttling", 400), "transient", "Throttling"),
        (client_error("SomethingNew", 429), "transient", "SomethingNew"),
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
