"""Lambda sender fixtures: a real moto server, real SQS/DynamoDB/SES v2 through boto3.

Only Lambda/moto fixtures live here (prefixed `lambda_` / `moto_`, plus `sqs_event`).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import boto3
import pytest
from serverless_mail.sandbox import sqs_event as sandbox_sqs_event

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = REPO / "functions"
REGION = "us-east-1"
DOMAIN = "mail.example.com"
QUEUE = "email-queue"
DLQ = "email-dlq"
TABLE = "email-idempotency"
MAX_RECEIVE_COUNT = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A `moto_server` subprocess on 127.0.0.1, stopped at the end of the session."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def moto_env(moto_endpoint: str) -> Iterator[dict[str, str]]:
    """Fake credentials and every client pointed at moto, plus the handler's config."""
    values = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "EMAIL_DOMAIN": DOMAIN,
        "EMAIL_DEFAULT_FROM": f"noreply@{DOMAIN}",
        "EMAIL_CONFIGURATION_SET": "email-config-set",
        "EMAIL_IDEMPOTENCY_TABLE": TABLE,
        "EMAIL_DEAD_LETTER_QUEUE_URL": f"{moto_endpoint}/123456789012/{DLQ}",
        "EMAIL_QUEUE_URL": f"{moto_endpoint}/123456789012/{QUEUE}",
        "POWERTOOLS_SERVICE_NAME": "serverless-mail-test",
        "AWS_LAMBDA_FUNCTION_NAME": "email-sender",
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in values.items():
            mp.setenv(key, value)
        yield values


@pytest.fixture(scope="session")
def lambda_module(moto_env: dict[str, str]) -> Iterator[ModuleType]:
    """`lambda_sender.handler`, imported the way Lambda does (its folder on sys.path)."""
    sys.path.insert(0, str(FUNCTIONS))
    try:
        import lambda_sender.handler as module

        yield module
    finally:
        sys.path.remove(str(FUNCTIONS))


@dataclass
class MotoAws:
    endpoint: str
    sqs: Any
    sesv2: Any
    dynamodb: Any
    queue_url: str
    queue_arn: str
    dlq_url: str
    max_receive_count: int = MAX_RECEIVE_COUNT

    def sent_mail(self) -> list[dict[str, Any]]:
        """Mail moto accepted (SES v2 sends are recorded by its SES backend)."""
        with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=5) as r:
            data = json.load(r)
        return list(data.get("ses", {}).get("Message", []))

    def send(self, body: str | dict[str, Any]) -> str:
        text = body if isinstance(body, str) else json.dumps(body)
        return str(self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=text)["MessageId"])

    def dead_letters(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(
                QueueUrl=self.dlq_url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                VisibilityTimeout=30,
            ).get("Messages", [])
            if not got:
                return out
            out.extend(got)


@pytest.fixture
def moto_aws(moto_endpoint: str, moto_env: dict[str, str]) -> MotoAws:
    """A reset moto with the identity, the idempotency table and queue + DLQ (redrive)."""
    urllib.request.urlopen(
        urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST"), timeout=5
    ).close()
    sqs = boto3.client("sqs")
    sesv2 = boto3.client("sesv2")
    dynamodb = boto3.client("dynamodb")
    sesv2.create_email_identity(EmailIdentity=DOMAIN)
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"}
    )
    dlq_url = sqs.create_queue(QueueName=DLQ)["QueueUrl"]
    assert dlq_url == moto_env["EMAIL_DEAD_LETTER_QUEUE_URL"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=QUEUE,
        Attributes={
            # 0 lets a failed record reappear at once, so a test loop sees redelivery.
            "VisibilityTimeout": "0",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
            ),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    return MotoAws(moto_endpoint, sqs, sesv2, dynamodb, queue_url, queue_arn, dlq_url)


@pytest.fixture
def sqs_event() -> Callable[[list[dict[str, Any]], str], dict[str, Any]]:
    """Builds the Lambda SQS event from messages returned by `receive_message`."""

    def build(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
        return sandbox_sqs_event(messages, queue_arn, REGION)

    return build


@pytest.fixture
def lambda_context() -> SimpleNamespace:
    return SimpleNamespace(
        function_name="email-sender",
        function_version="$LATEST",
        memory_limit_in_mb=256,
        invoked_function_arn=f"arn:aws:lambda:{REGION}:123456789012:function:email-sender",
        aws_request_id="req-1",
        get_remaining_time_in_millis=lambda: 30_000,
    )


@dataclass
class Round:
    received: list[str]
    failures: list[str]
    response: dict[str, Any] = field(default_factory=dict)
    response_records: list[dict[str, Any]] = field(default_factory=list)
    """The event's records, as the handler got them."""


@pytest.fixture
def lambda_poll(
    lambda_module: ModuleType,
    moto_aws: MotoAws,
    sqs_event: Callable[[list[dict[str, Any]], str], dict[str, Any]],
    lambda_context: SimpleNamespace,
) -> Callable[..., list[Round]]:
    """Acts as Lambda's SQS poller: receive, invoke, delete all but batchItemFailures.

    Loops until the queue is empty, so failed records are redelivered and, past
    maxReceiveCount, redriven by SQS to the DLQ; deferred copies (DelaySeconds) are
    waited for, up to `max_wait` seconds.
    """

    def pending() -> int:
        attributes = moto_aws.sqs.get_queue_attributes(
            QueueUrl=moto_aws.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesDelayed",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )["Attributes"]
        return sum(int(v) for v in attributes.values())

    def poll(max_rounds: int = 10, max_wait: float = 10.0) -> list[Round]:
        rounds: list[Round] = []
        deadline = time.monotonic() + max_wait
        while len(rounds) < max_rounds:
            messages = moto_aws.sqs.receive_message(
                QueueUrl=moto_aws.queue_url,
                MaxNumberOfMessages=10,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                if pending() and time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                return rounds
            event = sqs_event(messages, moto_aws.queue_arn)
            response = lambda_module.handler(event, lambda_context)
            failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
            for m in messages:
                if m["MessageId"] not in failed:
                    moto_aws.sqs.delete_message(
                        QueueUrl=moto_aws.queue_url, ReceiptHandle=m["ReceiptHandle"]
                    )
            rounds.append(
                Round([m["MessageId"] for m in messages], failed, response, event["Records"])
            )
        raise AssertionError(f"queue not drained after {max_rounds} rounds")

    return poll


@pytest.fixture
def lambda_faults(lambda_module: ModuleType) -> Iterator[dict[str, list[Any]]]:
    """Faults moto cannot produce, injected at the SES boundary of the real client.

    Maps a subject to the faults its next sends meet, in order: a ClientError code with
    its HTTP status (`("TooManyRequestsException", 429)`), optionally its message
    (`("Throttling", 400, "Daily message quota exceeded.")`), or an exception instance.
    The hook answers before the HTTP call, so botocore still builds the modeled error.
    """
    from botocore.awsrequest import AWSResponse

    plan: dict[str, list[Any]] = {}

    def hook(params: dict[str, Any], **_: Any) -> Any:
        subject = json.loads(params["body"]).get("Content", {}).get("Simple", {}).get("Subject", {})
        faults = plan.get(subject.get("Data", ""))
        if not faults:
            return None
        fault = faults.pop(0)
        if isinstance(fault, Exception):
            raise fault
        code, status, *text = fault
        http = AWSResponse("https://email.local", status, {}, None)
        return http, {
            "Error": {"Code": code, "Message": text[0] if text else f"injected {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }

    events = lambda_module._client("sesv2").meta.events
    events.register("before-call.sesv2.SendEmail", hook, unique_id="lambda-faults")
    try:
        yield plan
    finally:
        events.unregister("before-call.sesv2.SendEmail", unique_id="lambda-faults")
