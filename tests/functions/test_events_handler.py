"""The events processor against real SQS, SNS and DynamoDB semantics (moto server) and a
local HTTPS webhook endpoint, run with the environment the EmailEvents component plans.

SES events are published to an SNS topic that the planned queue subscribes to with the
planned raw delivery, so the record bodies are exactly what SES's topic delivers; the
queue, its DLQ, the redrive and the history table are created from the planned inputs.
Signatures are verified with the reference `standardwebhooks` library.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.server
import io
import ipaddress
import json
import random
import ssl
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import boto3
import pytest
from serverless_mail import EmailDomain, EmailDomainArgs
from serverless_mail.email_events import EmailEvents, EmailEventsArgs
from serverless_mail.email_queue import EmailQueue
from serverless_mail.mocking import Recording, Secret, run_program
from standardwebhooks.webhooks import Webhook

from functions.events.message_tag import encode_message_id
from functions.events.ses_event import event_key

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_aws.lambda_.*"),
]

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
REGION = "us-east-1"  # moto's ARNs must equal the planned ones
MAX_ATTEMPTS = 3
DOMAIN_ARGS = EmailDomainArgs(
    domain="mail.example.com",
    zone_id="00112233445566778899aabbccddeeff",
    zone_name="example.com",
    region=REGION,
)


# --- A local HTTPS endpoint ------------------------------------------------------


@dataclass
class Hook:
    """What the endpoint received, and what it answers next (per path)."""

    received: list[dict[str, Any]] = field(default_factory=list)
    script: dict[str, list[int]] = field(default_factory=dict)
    always: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str) -> int:
        with self.lock:
            queued = self.script.get(path)
            if queued:
                return queued.pop(0)
            return self.always.get(path, 204)

    def to(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.received if r["path"] == path]

    def reset(self) -> None:
        with self.lock:
            self.received.clear()
            self.script.clear()
            self.always.clear()


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def hook_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hook, str, Path]]:
    """An HTTPS server on 127.0.0.1 with a throwaway certificate; stopped after the module."""
    hook = Hook()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            hook.received.append(
                {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body.decode(),
                }
            )
            status = hook.answer(self.path)
            self.send_response(status)
            text = b"" if status < 300 else b"endpoint says no"
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, *args: Any) -> None:
            pass

    cert, key = _self_signed(tmp_path_factory.mktemp("tls"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook, f"https://127.0.0.1:{server.server_address[1]}", cert
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- The plan, and the handler run with it ---------------------------------------


@dataclass
class Plan:
    recording: Recording
    environment: dict[str, str]

    def inputs(self, name: str) -> dict[str, Any]:
        return self.recording.named(name).inputs


@pytest.fixture(scope="module")
def plan(hook_server: tuple[Hook, str, Path]) -> Plan:
    """EmailEvents planned under the mocks with two endpoints on the local server."""
    _, base, _ = hook_server

    def program() -> None:
        domain = EmailDomain("mail", DOMAIN_ARGS)
        queue = EmailQueue("email")
        EmailEvents(
            "events",
            EmailEventsArgs(
                domain=domain,
                region=REGION,
                alarm_topic_arn=queue.alarm_topic.arn,
                webhook_urls=(f"{base}/a", f"{base}/b?token=abc"),
                webhook_timeout_seconds=2,
                max_attempts=MAX_ATTEMPTS,
                # Redeliver at once, so a test's poll loop sees every attempt.
                retry_base_seconds=0,
                retry_max_seconds=0,
            ),
        )

    recording = run_program(program, config={"aws:region": REGION})
    variables = recording.named("events-function").inputs["environment"]["variables"]
    environment = {k: v.value if isinstance(v, Secret) else v for k, v in variables.items()}
    return Plan(recording, environment)


@pytest.fixture(scope="module")
def events_module(
    plan: Plan, moto_endpoint: str, hook_server: tuple[Hook, str, Path]
) -> Iterator[ModuleType]:
    """`events.handler`, imported the way Lambda does, with the planned environment."""
    _, _, cert = hook_server
    values = {
        **plan.environment,
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_LAMBDA_FUNCTION_NAME": "events",
        # Trust the local endpoint's certificate (OpenSSL reads it per connection).
        "SSL_CERT_FILE": str(cert),
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in values.items():
            mp.setenv(key, value)
        sys.path.insert(0, str(FUNCTIONS))
        try:
            import events.handler as module

            yield module
        finally:
            sys.path.remove(str(FUNCTIONS))


def _queue_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


@dataclass
class EventsAws:
    sqs: Any
    sns: Any
    table: Any
    topic_arn: str
    queue_url: str
    queue_arn: str
    dlq_url: str

    def publish(self, event: dict[str, Any]) -> None:
        self.sns.publish(TopicArn=self.topic_arn, Message=json.dumps(event))

    def history(self, message_id: str) -> dict[str, Any]:
        items = self.table.query(
            KeyConditionExpression=boto3.dynamodb.conditions.Key("id").eq(message_id),
            ConsistentRead=True,
        )["Items"]
        status = next((i for i in items if i["sk"] == "status"), None)
        timeline = [i for i in items if i["sk"].startswith("event#")]
        return {"status": status, "timeline": timeline}

    def dead_letters(self) -> list[dict[str, Any]]:
        return list(
            self.sqs.receive_message(
                QueueUrl=self.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            ).get("Messages", [])
        )


@pytest.fixture
def events_aws(
    plan: Plan, events_module: ModuleType, moto_endpoint: str, hook_server: tuple[Hook, str, Path]
) -> EventsAws:
    """A reset moto holding the planned queue, DLQ, redrive, table and raw subscription."""
    hook_server[0].reset()
    urllib.request.urlopen(
        urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST"), timeout=5
    ).close()
    sqs, sns = boto3.client("sqs"), boto3.client("sns")
    dynamodb = boto3.resource("dynamodb")
    env = plan.environment
    queue_inputs = plan.inputs("events-queue")
    dlq_inputs = plan.inputs("events-dlq")
    dlq_url = sqs.create_queue(
        QueueName=_queue_name(env["EMAIL_EVENTS_DEAD_LETTER_QUEUE_URL"]),
        Attributes={"MessageRetentionPeriod": str(int(dlq_inputs["messageRetentionSeconds"]))},
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = json.loads(queue_inputs["redrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq_arn  # the planned ARN is moto's
    queue_url = sqs.create_queue(
        QueueName=_queue_name(env["EMAIL_EVENTS_QUEUE_URL"]),
        Attributes={
            "VisibilityTimeout": str(int(queue_inputs["visibilityTimeoutSeconds"])),
            "MessageRetentionPeriod": str(int(queue_inputs["messageRetentionSeconds"])),
            "RedrivePolicy": queue_inputs["redrivePolicy"],
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    table_inputs = plan.inputs("events-history")
    table = dynamodb.create_table(
        TableName=env["EMAIL_HISTORY_TABLE"],
        KeySchema=[
            {"AttributeName": table_inputs["hashKey"], "KeyType": "HASH"},
            {"AttributeName": table_inputs["rangeKey"], "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": a["name"], "AttributeType": a["type"]}
            for a in table_inputs["attributes"]
        ],
        BillingMode=table_inputs["billingMode"],
    )
    topic_arn = sns.create_topic(Name="ses-events")["TopicArn"]
    subscription = plan.inputs("events-subscription")
    assert subscription["protocol"] == "sqs"
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={
            "RawMessageDelivery": str(subscription["rawMessageDelivery"]).lower(),
            "RedrivePolicy": subscription["redrivePolicy"],
        },
    )
    return EventsAws(sqs, sns, table, topic_arn, queue_url, queue_arn, dlq_url)


@dataclass
class Round:
    received: int
    failures: list[str]


@pytest.fixture
def poll(
    events_module: ModuleType,
    events_aws: EventsAws,
    sqs_event: Callable[[list[dict[str, Any]], str], dict[str, Any]],
    lambda_context: SimpleNamespace,
) -> Callable[..., list[Round]]:
    """Acts as Lambda's SQS poller until the queue is empty (redeliveries included)."""

    def run(max_rounds: int = 12) -> list[Round]:
        rounds: list[Round] = []
        for _ in range(max_rounds):
            messages = events_aws.sqs.receive_message(
                QueueUrl=events_aws.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
            ).get("Messages", [])
            if not messages:
                return rounds
            response = events_module.handler(
                sqs_event(messages, events_aws.queue_arn), lambda_context
            )
            failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
            for m in messages:
                if m["MessageId"] not in failed:
                    events_aws.sqs.delete_message(
                        QueueUrl=events_aws.queue_url, ReceiptHandle=m["ReceiptHandle"]
                    )
            rounds.append(Round(len(messages), failed))
        raise AssertionError(f"queue not drained after {max_rounds} rounds")

    return run


# --- SES events as SES publishes them (SES Developer Guide, event publishing) -----


def ses_event(
    event_type: str,
    message_id: str | None,
    at: str,
    *,
    ses_message_id: str = "0100018c-ses-message-1",
    tag: str | None = None,
    queued_at: str | None = None,
    **detail: Any,
) -> dict[str, Any]:
    """One SES event-publishing record; ``tag`` overrides the message_id tag value;
    ``queued_at`` adds the senders' tag of that name."""
    tags: dict[str, list[str]] = {
        "ses:configuration-set": ["serverless-mail-dev-mail"],
        "ses:from-domain": ["mail.example.com"],
        "category": ["receipt"],
    }
    if message_id is not None:
        tags["message_id"] = [tag or encode_message_id(message_id)]
    if queued_at is not None:
        tags["queued_at"] = [queued_at]
    mail = {
        "timestamp": "2026-11-23T10:00:00.000Z",
        "source": "noreply@mail.example.com",
        "sendingAccountId": "123456789012",
        "messageId": ses_message_id,
        "destination": ["ada@customer.test"],
        "headersTruncated": False,
        "headers": [{"name": "Subject", "value": "Your receipt"}],
        "commonHeaders": {"subject": "Your receipt"},
        "tags": tags,
    }
    key = {
        "Send": "send",
        "Delivery": "delivery",
        "Bounce": "bounce",
        "Complaint": "complaint",
        "Reject": "reject",
        "DeliveryDelay": "deliveryDelay",
        "Rendering Failure": "failure",
        "Open": "open",
        "Click": "click",
        "Subscription": "subscription",
    }[event_type]
    body = dict(detail)
    if event_type not in ("Send", "Reject", "Rendering Failure"):
        body.setdefault("timestamp", at)
    else:
        mail["timestamp"] = at
    return {"eventType": event_type, "mail": mail, key: body}


BOUNCE = {
    "bounceType": "Permanent",
    "bounceSubType": "General",
    "bouncedRecipients": [
        {
            "emailAddress": "ada@customer.test",
            "action": "failed",
            "status": "5.1.1",
            "diagnosticCode": "smtp; 550 5.1.1 user unknown",
        }
    ],
    "feedbackId": "fb-1",
    "reportingMTA": "dsn; a1.example",
}


def at(minute: int) -> str:
    return f"2026-11-23T10:{minute:02d}:00.000Z"


# --- Tests --------------------------------------------------------------------------


class TestEveryEventTypeUpdatesTheHistory:
    @pytest.mark.parametrize(
        ("event_type", "detail", "status", "details"),
        [
            ("Send", {}, "sent", {}),
            (
                "Delivery",
                {"recipients": ["ada@customer.test"], "smtpResponse": "250 ok"},
                "delivered",
                {"recipients": [{"address": "ada@customer.test"}], "smtp_response": "250 ok"},
            ),
            (
                "Bounce",
                BOUNCE,
                "bounced",
                {
                    "bounce_type": "Permanent",
                    "bounce_subtype": "General",
                    "feedback_id": "fb-1",
                    "recipients": [
                        {
                            "address": "ada@customer.test",
                            "action": "failed",
                            "status": "5.1.1",
                            "diagnostic": "smtp; 550 5.1.1 user unknown",
                        }
                    ],
                },
            ),
            (
                "Complaint",
                {
                    "complainedRecipients": [{"emailAddress": "ada@customer.test"}],
                    "complaintFeedbackType": "abuse",
                    "feedbackId": "fb-2",
                },
                "complained",
                {
                    "feedback_type": "abuse",
                    "feedback_id": "fb-2",
                    "recipients": [{"address": "ada@customer.test"}],
                },
            ),
            ("Reject", {"reason": "Bad content"}, "rejected", {"reason": "Bad content"}),
            (
                "DeliveryDelay",
                {
                    "delayType": "MailboxFull",
                    "expirationTime": "2026-11-24T10:00:00.000Z",
                    "delayedRecipients": [{"emailAddress": "ada@customer.test", "status": "4.2.2"}],
                },
                "delayed",
                {
                    "delay_type": "MailboxFull",
                    "expiration_time": "2026-11-24T10:00:00.000Z",
                    "recipients": [{"address": "ada@customer.test", "status": "4.2.2"}],
                },
            ),
            (
                "Rendering Failure",
                {"errorMessage": "Attribute 'name' is not present", "templateName": "t"},
                "rendering_failure",
                {"error_message": "Attribute 'name' is not present", "template_name": "t"},
            ),
        ],
    )
    def test_status_and_details_of_each_event_type(
        self, events_aws, poll, event_type, detail, status, details
    ):
        events_aws.publish(ses_event(event_type, "order-1", at(1), **detail))

        rounds = poll()

        assert [r.failures for r in rounds] == [[]]
        history = events_aws.history("order-1")
        assert history["status"]["status"] == status
        assert history["status"]["status_at"] == at(1)
        assert history["status"]["ses_message_id"] == "0100018c-ses-message-1"
        assert history["status"]["status_details"] == details
        [item] = history["timeline"]
        assert item["details"] == details
        assert item["timestamp"] == at(1)
        assert "Your receipt" not in json.dumps(history, default=str)  # no subject, no body

    @pytest.mark.parametrize(
        ("event_type", "detail"),
        [("Open", {"ipAddress": "192.0.2.1"}), ("Click", {"link": "https://x.test/a"})],
    )
    def test_engagement_is_in_the_timeline_but_is_not_a_status(
        self, events_aws, poll, event_type, detail
    ):
        events_aws.publish(ses_event("Delivery", "order-2", at(1), recipients=["a@b.test"]))
        events_aws.publish(ses_event(event_type, "order-2", at(5), **detail))

        poll()

        history = events_aws.history("order-2")
        assert history["status"]["status"] == "delivered"
        assert sorted(i["kind"] for i in history["timeline"]) == sorted(
            ["delivered", {"Open": "opened", "Click": "clicked"}[event_type]]
        )

    def test_an_encoded_id_is_decoded_to_the_producers_id(self, events_aws, poll):
        events_aws.publish(ses_event("Send", "invoice:2026/11#7", at(1)))

        poll()

        assert events_aws.history("invoice:2026/11#7")["status"]["status"] == "sent"

    def test_history_items_expire_through_the_ttl_attribute(self, events_aws, poll, plan):
        events_aws.publish(ses_event("Send", "order-3", at(1)))

        poll()

        history = events_aws.history("order-3")
        ttl_days = int(plan.environment["EMAIL_HISTORY_TTL_DAYS"])
        expected = dt.datetime.now(dt.UTC).timestamp() + ttl_days * 86400
        for item in [history["status"], *history["timeline"]]:
            assert abs(int(item["expiration"]) - expected) < 120


class TestDuplicatesAndOrder:
    def test_a_duplicate_event_is_recorded_and_delivered_once(self, events_aws, poll, hook_server):
        hook, _, _ = hook_server
        event = ses_event("Bounce", "order-4", at(2), **BOUNCE)
        events_aws.publish(event)
        events_aws.publish(event)

        poll()

        history = events_aws.history("order-4")
        assert len(history["timeline"]) == 1
        assert len(hook.to("/a")) == 1
        assert len(hook.to("/b?token=abc")) == 1

    @pytest.mark.parametrize(
        ("arrivals", "status"),
        [
            ([("Delivery", 3), ("Send", 1)], "delivered"),
            ([("Delivery", 3), ("DeliveryDelay", 2), ("Send", 1)], "delivered"),
            ([("Send", 1), ("DeliveryDelay", 2), ("Delivery", 3)], "delivered"),
            ([("Complaint", 9), ("Delivery", 3), ("Send", 1)], "complained"),
            ([("Delivery", 3), ("Complaint", 9)], "complained"),
            ([("Bounce", 4), ("Send", 1), ("DeliveryDelay", 2)], "bounced"),
        ],
    )
    def test_status_never_regresses_whatever_the_arrival_order(
        self, events_aws, poll, arrivals, status
    ):
        for event_type, minute in arrivals:
            detail = BOUNCE if event_type == "Bounce" else {}
            events_aws.publish(ses_event(event_type, "order-5", at(minute), **detail))
            poll()  # one by one: each arrives after the previous one is recorded

        history = events_aws.history("order-5")
        assert history["status"]["status"] == status
        assert [i["timestamp"] for i in history["timeline"]] == sorted(at(m) for _, m in arrivals)

    def test_a_shuffled_stream_with_duplicates_ends_in_the_right_history_and_webhooks(
        self, events_aws, poll, hook_server, plan
    ):
        # GIVEN four messages' events, duplicated and shuffled, published at once (so a
        # message's events share batches and arrive out of order)
        hook, _, _ = hook_server
        stream = {
            "m-delivered": [("Send", 1), ("DeliveryDelay", 2), ("Delivery", 3)],
            "m-bounced": [("Send", 1), ("Bounce", 2)],
            "m-complained": [("Send", 1), ("Delivery", 2), ("Complaint", 8)],
            "m-rejected": [("Reject", 1)],
        }
        events = [
            ses_event(
                kind,
                mid,
                at(minute),
                ses_message_id=f"ses-{mid}",
                **(BOUNCE if kind == "Bounce" else {}),
            )
            for mid, arrivals in stream.items()
            for kind, minute in arrivals
        ]
        published = events + events[::3]  # every third event twice
        random.Random(12).shuffle(published)
        for event in published:
            events_aws.publish(event)

        # WHEN the queue is drained
        poll()

        # THEN each message has its most significant status and one item per event
        final = {mid: events_aws.history(mid) for mid in stream}
        assert {mid: h["status"]["status"] for mid, h in final.items()} == {
            "m-delivered": "delivered",
            "m-bounced": "bounced",
            "m-complained": "complained",
            "m-rejected": "rejected",
        }
        assert {mid: len(h["timeline"]) for mid, h in final.items()} == {
            mid: len(arrivals) for mid, arrivals in stream.items()
        }
        # AND each endpoint got every event exactly once, each signed
        verifier = Webhook(plan.environment["EMAIL_WEBHOOK_SECRET"])
        for path in ("/a", "/b?token=abc"):
            got = [verifier.verify(r["body"], r["headers"]) for r in hook.to(path)]
            assert sorted((p["data"]["message_id"], p["type"]) for p in got) == sorted(
                (
                    mid,
                    "email."
                    + {
                        "Send": "sent",
                        "DeliveryDelay": "delayed",
                        "Delivery": "delivered",
                        "Bounce": "bounced",
                        "Complaint": "complained",
                        "Reject": "rejected",
                    }[kind],
                )
                for mid, arrivals in stream.items()
                for kind, _ in arrivals
            )
        assert events_aws.dead_letters() == []

    def test_two_events_of_equal_rank_keep_the_later_one(self, events_aws, poll):
        later = dict(BOUNCE, bounceSubType="MailboxFull")
        events_aws.publish(ses_event("Bounce", "order-6", at(7), **later))
        poll()
        events_aws.publish(ses_event("Bounce", "order-6", at(4), **BOUNCE))
        poll()

        status = events_aws.history("order-6")["status"]
        assert (status["status_at"], status["status_details"]["bounce_subtype"]) == (
            at(7),
            "MailboxFull",
        )


class TestWebhooks:
    def test_each_event_is_posted_signed_per_standard_webhooks(
        self, events_aws, poll, hook_server, plan
    ):
        hook, _, _ = hook_server
        events_aws.publish(ses_event("Bounce", "order-7", at(2), **BOUNCE))

        poll()

        verifier = Webhook(plan.environment["EMAIL_WEBHOOK_SECRET"])
        for path in ("/a", "/b?token=abc"):
            [request] = hook.to(path)
            payload = verifier.verify(request["body"], request["headers"])
            assert payload["type"] == "email.bounced"
            assert payload["timestamp"] == at(2)
            assert payload["data"]["message_id"] == "order-7"
            assert payload["data"]["event_type"] == "BOUNCE"
            assert payload["data"]["details"]["bounce_type"] == "Permanent"
            assert payload["data"]["tags"] == {"category": "receipt"}
            assert request["headers"]["webhook-id"].startswith("msg_")
            assert request["headers"]["content-type"] == "application/json"

    def test_a_tampered_body_fails_the_reference_verifier(
        self, events_aws, poll, hook_server, plan
    ):
        hook, _, _ = hook_server
        events_aws.publish(ses_event("Send", "order-8", at(1)))
        poll()
        [request] = hook.to("/a")

        with pytest.raises(Exception, match="No matching signature found"):
            Webhook(plan.environment["EMAIL_WEBHOOK_SECRET"]).verify(
                request["body"].replace("order-8", "order-9"), request["headers"]
            )

    def test_an_endpoint_that_fails_then_succeeds_gets_the_event_on_a_retry(
        self, events_aws, poll, hook_server
    ):
        hook, _, _ = hook_server
        hook.script["/a"] = [500, 503]
        events_aws.publish(ses_event("Delivery", "order-10", at(3), recipients=["a@b.test"]))

        rounds = poll()

        assert [len(r.failures) for r in rounds] == [1, 1, 0]
        assert [len(hook.to("/a")), len(hook.to("/b?token=abc"))] == [3, 1]
        ids = {r["headers"]["webhook-id"] for r in hook.received}
        assert len(ids) == 1  # the same webhook-id on every attempt: receivers dedupe on it
        assert events_aws.dead_letters() == []
        assert events_aws.history("order-10")["status"]["status"] == "delivered"

    def test_an_endpoint_that_never_succeeds_ends_in_the_dlq_with_its_reason(
        self, events_aws, poll, hook_server
    ):
        hook, _, _ = hook_server
        hook.always["/b?token=abc"] = 500
        event = ses_event("Complaint", "order-11", at(9))
        events_aws.publish(event)

        rounds = poll()

        assert len(rounds) == MAX_ATTEMPTS
        assert len(hook.to("/b?token=abc")) == MAX_ATTEMPTS
        assert len(hook.to("/a")) == 1  # delivered once, never re-sent
        [dead] = events_aws.dead_letters()
        assert json.loads(dead["Body"]) == event
        attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
        assert attributes["error_class"] == "WebhookUndeliverable"
        assert attributes["error_reason"] == (
            f"{hook_server[1]}/b: HTTP 500: endpoint says no"  # no query: it may hold a token
        )
        assert attributes["email_id"] == "order-11"
        assert attributes["attempts"] == str(MAX_ATTEMPTS)
        assert events_aws.history("order-11")["status"]["status"] == "complained"

    def test_an_event_without_our_tag_is_still_posted_but_not_recorded(
        self, events_aws, poll, hook_server, plan
    ):
        hook, _, _ = hook_server
        events_aws.publish(ses_event("Send", None, at(1), ses_message_id="other-tool"))

        rounds = poll()

        assert [r.failures for r in rounds] == [[]]
        [request] = hook.to("/a")
        payload = Webhook(plan.environment["EMAIL_WEBHOOK_SECRET"]).verify(
            request["body"], request["headers"]
        )
        assert payload["data"]["message_id"] is None
        assert payload["data"]["ses_message_id"] == "other-tool"
        assert events_aws.table.scan()["Items"] == []


# 2026-11-23T09:59:30.250Z, the message's enqueue time as the senders tag it.
QUEUED_AT_MS = "1795427970250"
QUEUED_AT = "2026-11-23T09:59:30.250Z"
DETAILS = {
    "Send": {},
    "Delivery": {"recipients": ["ada@customer.test"], "smtpResponse": "250 ok"},
    "Bounce": BOUNCE,
    "Complaint": {"complainedRecipients": [{"emailAddress": "ada@customer.test"}]},
    "Reject": {"reason": "Bad content"},
    "DeliveryDelay": {"delayType": "MailboxFull"},
    "Rendering Failure": {"errorMessage": "Attribute 'name' is not present"},
    "Subscription": {"contactList": "news"},
    "Open": {"ipAddress": "192.0.2.1"},
    "Click": {"link": "https://x.test/a"},
}


def queued_items(history: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in history["timeline"] if i["kind"] == "queued"]


class TestQueuedAt:
    """An event carrying the senders' `queued_at` tag also records when the message
    entered the send queue: one `queued` item, and the status `queued` only where no
    status exists yet."""

    @pytest.mark.parametrize(
        ("event_type", "status"),
        [
            ("Send", "sent"),
            ("Delivery", "delivered"),
            ("Bounce", "bounced"),
            ("Complaint", "complained"),
            ("Reject", "rejected"),
            ("DeliveryDelay", "delayed"),
            ("Rendering Failure", "rendering_failure"),
            ("Subscription", "queued"),
            ("Open", "queued"),
            ("Click", "queued"),
        ],
    )
    def test_each_event_type_puts_one_queued_item_and_keeps_the_higher_status(
        self, events_aws, poll, plan, event_type, status
    ):
        events_aws.publish(
            ses_event(event_type, "q-1", at(1), queued_at=QUEUED_AT_MS, **DETAILS[event_type])
        )

        rounds = poll()

        assert [r.failures for r in rounds] == [[]]
        history = events_aws.history("q-1")
        [queued] = queued_items(history)
        ttl = int(plan.environment["EMAIL_HISTORY_TTL_DAYS"]) * 86400
        assert abs(int(queued.pop("expiration")) - dt.datetime.now(dt.UTC).timestamp() - ttl) < 120
        assert queued == {
            "id": "q-1",
            "sk": f"event#{QUEUED_AT}#queued",
            "event_type": "QUEUED",
            "kind": "queued",
            "timestamp": QUEUED_AT,
            "ses_message_id": "0100018c-ses-message-1",
            "details": {},
        }
        assert len(history["timeline"]) == 2
        assert history["timeline"][0]["kind"] == "queued"  # first in time order
        assert history["status"]["status"] == status
        if status == "queued":
            assert history["status"]["status_at"] == QUEUED_AT
            assert history["status"]["status_event_type"] == "QUEUED"

    def test_out_of_order_duplicated_events_give_one_queued_item_and_the_highest_status(
        self, events_aws, poll, hook_server
    ):
        # GIVEN a message's DELIVERY before its SEND, an open, and each of them twice
        hook, _, _ = hook_server
        stream = [("Delivery", 3), ("Send", 1), ("Open", 5)]
        events = [
            ses_event(kind, "q-2", at(minute), queued_at=QUEUED_AT_MS, **DETAILS[kind])
            for kind, minute in stream
        ]

        # WHEN they arrive in that order, each duplicate right after it
        for event in events:
            events_aws.publish(event)
            events_aws.publish(event)
            poll()

        # THEN one queued item, one item per event, the status delivered
        history = events_aws.history("q-2")
        assert [i["kind"] for i in history["timeline"]] == ["queued", "sent", "delivered", "opened"]
        assert history["status"]["status"] == "delivered"
        # AND one webhook per SES event, none for `queued`, and no tag leaks into them
        types = sorted(json.loads(r["body"])["type"] for r in hook.to("/a"))
        assert types == ["email.delivered", "email.opened", "email.sent"]
        assert all(
            json.loads(r["body"])["data"]["tags"] == {"category": "receipt"} for r in hook.received
        )

    def test_an_open_after_the_delivery_leaves_the_status_delivered(self, events_aws, poll):
        events_aws.publish(ses_event("Delivery", "q-3", at(3), queued_at=QUEUED_AT_MS))
        poll()
        events_aws.publish(ses_event("Open", "q-3", at(5), queued_at=QUEUED_AT_MS))
        poll()

        history = events_aws.history("q-3")
        assert history["status"]["status"] == "delivered"
        assert len(queued_items(history)) == 1

    @pytest.mark.parametrize("value", ["soon", "1.5", "-1", "", "9" * 16])
    def test_a_malformed_queued_at_is_ignored_and_logged_and_the_event_recorded(
        self, events_aws, poll, events_module, value
    ):
        log_handler = events_module.logger.registered_handler
        stream = io.StringIO()
        previous = log_handler.setStream(stream)
        try:
            events_aws.publish(ses_event("Delivery", "q-4", at(3), queued_at=value))
            rounds = poll()
        finally:
            log_handler.setStream(previous)

        assert [r.failures for r in rounds] == [[]]
        history = events_aws.history("q-4")
        assert [i["kind"] for i in history["timeline"]] == ["delivered"]
        assert history["status"]["status"] == "delivered"
        assert events_aws.dead_letters() == []
        [warning] = [
            json.loads(line)
            for line in stream.getvalue().splitlines()
            if '"part of the event ignored"' in line
        ]
        assert warning["ignored"] == f"the queued_at tag {value!r} is not epoch milliseconds"
        assert warning["message_id"] == "q-4"

    def test_an_event_without_the_tag_writes_exactly_the_event_and_the_status(
        self, events_aws, poll, hook_server, plan
    ):
        hook, _, _ = hook_server
        event = ses_event("Bounce", "q-5", at(2), **BOUNCE)
        events_aws.publish(event)

        poll()

        items = events_aws.table.scan()["Items"]
        assert sorted(i["sk"] for i in items) == sorted(
            ["status", f"event#{at(2)}#{event_key(event)[:32]}"]
        )
        [item] = [i for i in items if i["sk"] != "status"]
        assert set(item) == {
            "id",
            "sk",
            "event_type",
            "kind",
            "timestamp",
            "ses_message_id",
            "details",
            "expiration",
            "webhooks_delivered",
        }
        [status] = [i for i in items if i["sk"] == "status"]
        assert (status["status"], status["status_rank"], status["status_at"]) == (
            "bounced",
            40,
            at(2),
        )
        verifier = Webhook(plan.environment["EMAIL_WEBHOOK_SECRET"])
        [request] = hook.to("/a")
        assert verifier.verify(request["body"], request["headers"])["type"] == "email.bounced"


class TestBadInputAndRetries:
    @pytest.mark.parametrize(
        ("body", "reason"),
        [
            ("not json", "the body is not JSON"),
            ('{"eventType": "Teleport", "mail": {}}', "unknown SES event type 'Teleport'"),
            ('{"eventType": "Send", "mail": {}}', "the SEND event has no mail.messageId"),
        ],
    )
    def test_a_body_that_is_not_an_ses_event_goes_to_the_dlq_at_once(
        self, events_aws, poll, body, reason
    ):
        events_aws.sqs.send_message(QueueUrl=events_aws.queue_url, MessageBody=body)

        rounds = poll()

        assert [r.failures for r in rounds] == [[]]
        [dead] = events_aws.dead_letters()
        assert dead["Body"] == body
        assert dead["MessageAttributes"]["error_class"]["StringValue"] == "InvalidEvent"
        assert dead["MessageAttributes"]["error_reason"]["StringValue"] == reason

    def test_a_failed_event_is_hidden_for_the_backoff_before_it_is_redelivered(
        self, events_aws, events_module, hook_server, sqs_event, lambda_context, monkeypatch
    ):
        hook, _, _ = hook_server
        hook.script["/a"] = [500]
        config = events_module.CONFIG
        monkeypatch.setattr(
            events_module,
            "CONFIG",
            dataclasses.replace(config, retry_base_seconds=2, retry_max_seconds=2),
        )
        events_aws.publish(ses_event("Send", "order-12", at(1)))
        messages = events_aws.sqs.receive_message(
            QueueUrl=events_aws.queue_url, AttributeNames=["All"]
        )["Messages"]

        response = events_module.handler(sqs_event(messages, events_aws.queue_arn), lambda_context)

        assert len(response["batchItemFailures"]) == 1
        hidden = events_aws.sqs.receive_message(QueueUrl=events_aws.queue_url)
        assert hidden.get("Messages", []) == []
        again = events_aws.sqs.receive_message(QueueUrl=events_aws.queue_url, WaitTimeSeconds=5)
        assert len(again["Messages"]) == 1

    @pytest.mark.parametrize(
        ("attempt", "low", "high"),
        [(1, 15, 30), (2, 30, 60), (3, 60, 120), (6, 450, 900), (9, 450, 900)],
    )
    def test_backoff_doubles_from_the_base_up_to_the_cap_with_jitter(
        self, events_module, attempt, low, high
    ):
        delays = {
            events_module.backoff_seconds(attempt, 30, 900, random.Random(seed))
            for seed in range(50)
        }
        assert low <= min(delays) and max(delays) <= high
        assert len(delays) > 1
