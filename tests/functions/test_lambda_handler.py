"""The Lambda sender against real SQS, DynamoDB and SES v2 semantics (moto server)."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
DOMAIN = "mail.example.com"  # EMAIL_DOMAIN set by the moto_env fixture

pytestmark = pytest.mark.slow


def message(id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": id,
        "to": "alice@example.org",
        "subject": f"Subject {id}",
        "text": "Hello",
    }
    body.update(overrides)
    return body


def reasons(dead: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """Original body → (error_class, error_reason) of each dead letter with a reason."""
    return {
        d["Body"]: (
            d["MessageAttributes"]["error_class"]["StringValue"],
            d["MessageAttributes"]["error_reason"]["StringValue"],
        )
        for d in dead
        if "error_class" in d.get("MessageAttributes", {})
    }


def test_happy_path_sends_with_from_to_subject(moto_aws, lambda_poll):
    moto_aws.send(message("m-1", to=["alice@example.org", "Bob <bob@example.net>"]))

    rounds = lambda_poll()

    assert [r.failures for r in rounds] == [[]]
    [mail] = moto_aws.sent_mail()
    assert mail["source"] == f"noreply@{DOMAIN}"
    assert mail["destinations"]["ToAddresses"] == ["alice@example.org", "Bob <bob@example.net>"]
    assert mail["subject"] == "Subject m-1"
    assert moto_aws.dead_letters() == []


def test_send_request_carries_config_set_tags_headers_reply_to_cc_bcc(
    moto_aws, lambda_poll, lambda_module
):
    calls: list[dict[str, Any]] = []

    def spy(params: dict[str, Any], **_: Any) -> None:
        calls.append(json.loads(params["body"]))

    events = lambda_module._client("sesv2").meta.events
    events.register("before-call.sesv2.SendEmail", spy, unique_id="spy")
    try:
        moto_aws.send(
            message(
                "m-2",
                **{"from": f"Team <team@news.{DOMAIN}>"},
                cc="c@example.org",
                bcc=["d@example.org"],
                reply_to="help@example.org",
                html="<p>Hi</p>",
                headers={"X-Campaign": "welcome"},
                tags={"category": "welcome"},
            )
        )
        moto_aws.sesv2.create_email_identity(EmailIdentity=f"news.{DOMAIN}")
        rounds = lambda_poll()
    finally:
        events.unregister("before-call.sesv2.SendEmail", unique_id="spy")

    [request] = calls
    assert request["ConfigurationSetName"] == "email-config-set"
    assert request["FromEmailAddress"] == f"Team <team@news.{DOMAIN}>"
    assert request["Destination"] == {
        "ToAddresses": ["alice@example.org"],
        "CcAddresses": ["c@example.org"],
        "BccAddresses": ["d@example.org"],
    }
    assert request["ReplyToAddresses"] == ["help@example.org"]
    [record] = rounds[0].response_records
    assert request["EmailTags"] == [
        {"Name": "category", "Value": "welcome"},
        {"Name": "message_id", "Value": "m-2"},
        {"Name": "queued_at", "Value": record["attributes"]["SentTimestamp"]},
    ]
    simple = request["Content"]["Simple"]
    assert simple["Headers"] == [{"Name": "X-Campaign", "Value": "welcome"}]
    assert simple["Body"]["Html"]["Data"] == "<p>Hi</p>"
    assert simple["Body"]["Text"]["Data"] == "Hello"


def test_same_id_in_two_deliveries_sends_once(moto_aws, lambda_poll):
    moto_aws.send(message("dup-1"))
    lambda_poll()
    moto_aws.send(message("dup-1"))  # the producer retries with a new SQS message

    rounds = lambda_poll()

    assert [r.failures for r in rounds] == [[]]
    assert len(moto_aws.sent_mail()) == 1


def test_same_id_twice_in_one_batch_sends_once(moto_aws, lambda_poll):
    moto_aws.send(message("dup-2"))
    moto_aws.send(message("dup-2"))

    lambda_poll()

    assert len(moto_aws.sent_mail()) == 1
    assert moto_aws.dead_letters() == []


@pytest.mark.parametrize(
    "fault",
    [
        ("InternalFailure", 500),
        ("ServiceUnavailable", 503),
        EndpointConnectionError(endpoint_url="https://email.us-east-1.amazonaws.com"),
    ],
    ids=["5xx-500", "5xx-503", "network"],
)
def test_transient_failure_is_redelivered_then_sent(moto_aws, lambda_poll, lambda_faults, fault):
    flaky = moto_aws.send(message("t-1"))
    moto_aws.send(message("t-2"))
    lambda_faults["Subject t-1"] = [fault]

    rounds = lambda_poll()

    assert rounds[0].failures == [flaky]
    assert rounds[-1].failures == []
    assert sorted(m["subject"] for m in moto_aws.sent_mail()) == ["Subject t-1", "Subject t-2"]
    assert moto_aws.dead_letters() == []


class TestThrottling:
    """SES throttling costs a message nothing: it waits on the queue as a delayed copy."""

    @pytest.mark.parametrize(
        "fault",
        [
            ("TooManyRequestsException", 429),
            ("LimitExceededException", 400),
            ("Throttling", 400, "Maximum sending rate exceeded."),
        ],
        ids=["429", "limit-exceeded", "max-send-rate"],
    )
    def test_a_throttled_send_is_deferred_as_a_copy_and_sent_without_spending_receives(
        self, moto_aws, lambda_poll, lambda_faults, fault
    ):
        moto_aws.send(message("t-1"))
        moto_aws.send(message("t-2"))
        lambda_faults["Subject t-1"] = [fault]

        rounds = lambda_poll()

        # Acknowledged, not failed: the original's receive count never grows.
        assert [r.failures for r in rounds] == [[]] * len(rounds)
        assert len(rounds) == 2
        [copy] = [e for e in rounds[1].response_records if json.loads(e["body"])["id"] == "t-1"]
        assert copy["messageAttributes"]["throttle_hops"]["stringValue"] == "1"
        assert copy["attributes"]["ApproximateReceiveCount"] == "1"
        assert sorted(m["subject"] for m in moto_aws.sent_mail()) == ["Subject t-1", "Subject t-2"]
        assert moto_aws.dead_letters() == []

    def test_the_deferred_copy_keeps_the_producers_attributes_of_every_type(
        self, moto_aws, lambda_poll, lambda_faults
    ):
        # GIVEN a producer's message with a String, a Number and a Binary attribute
        moto_aws.sqs.send_message(
            QueueUrl=moto_aws.queue_url,
            MessageBody=json.dumps(message("t-attr")),
            MessageAttributes={
                "tenant": {"DataType": "String", "StringValue": "acme"},
                "priority": {"DataType": "Number.int", "StringValue": "5"},
                "trace": {"DataType": "Binary", "BinaryValue": b"\x00\xfftrace"},
            },
        )
        lambda_faults["Subject t-attr"] = [("TooManyRequestsException", 429)]
        # WHEN SES throttles it once
        rounds = lambda_poll()
        # THEN the copy carries all three, unchanged, beside the hop count, and is sent
        assert [r.failures for r in rounds] == [[]] * len(rounds) and len(rounds) == 2
        [copy] = rounds[1].response_records
        attributes = copy["messageAttributes"]
        assert attributes["tenant"]["stringValue"] == "acme"
        assert (attributes["priority"]["dataType"], attributes["priority"]["stringValue"]) == (
            "Number.int",
            "5",
        )
        assert attributes["trace"]["dataType"] == "Binary"
        assert base64.b64decode(attributes["trace"]["binaryValue"]) == b"\x00\xfftrace"
        assert attributes["throttle_hops"]["stringValue"] == "1"
        assert [m["subject"] for m in moto_aws.sent_mail()] == ["Subject t-attr"]
        assert moto_aws.dead_letters() == []

    def test_throttled_past_the_hop_limit_ends_in_the_dlq_with_its_reason(
        self, moto_aws, lambda_poll, lambda_faults, lambda_module, monkeypatch
    ):
        monkeypatch.setattr(lambda_module, "MAX_THROTTLE_HOPS", 2)
        monkeypatch.setattr(lambda_module, "THROTTLE_BASE_SECONDS", 1.0)
        moto_aws.send(message("t-3"))
        lambda_faults["Subject t-3"] = [("TooManyRequestsException", 429)] * 10

        rounds = lambda_poll()

        assert len(rounds) == 3 and all(r.failures == [] for r in rounds)
        [(error_class, reason)] = reasons(moto_aws.dead_letters()).values()
        assert error_class == "TooManyRequestsException"
        assert reason.startswith("still throttled by SES after 2 deferrals with backoff")
        assert moto_aws.sent_mail() == []


class TestDailyQuota:
    QUOTA = ("Throttling", 400, "Daily message quota exceeded.")

    def test_a_daily_quota_error_holds_the_message_on_the_queue_and_reports_it(
        self, moto_aws, lambda_poll, lambda_faults, lambda_module, stack_recordings
    ):
        moto_aws.send(message("q-1"))
        lambda_faults["Subject q-1"] = [self.QUOTA]
        log_handler = lambda_module.logger.registered_handler
        stream = io.StringIO()
        previous = log_handler.setStream(stream)
        metrics = io.StringIO()
        try:
            with redirect_stdout(metrics):
                rounds = lambda_poll(max_wait=0)
        finally:
            log_handler.setStream(previous)

        assert [r.failures for r in rounds] == [[]]
        attributes = moto_aws.sqs.get_queue_attributes(
            QueueUrl=moto_aws.queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
        )["Attributes"]
        assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"  # held, 900 s
        assert moto_aws.dead_letters() == []
        [held] = [
            json.loads(line)
            for line in stream.getvalue().splitlines()
            if '"held_daily_quota"' in line
        ]
        assert held["message_id"] == "q-1" and held["level"] == "ERROR"
        [emf] = [json.loads(line) for line in metrics.getvalue().splitlines() if "_aws" in line]
        assert emf["DailyQuotaHeld"] == [1.0] or emf["DailyQuotaHeld"] == 1.0
        assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "serverless-mail"
        # the namespace, name and dimension the planned alarm watches
        alarm = planned_alarm(stack_recordings["prod"], "daily-quota-held")
        [spec] = emf["_aws"]["CloudWatchMetrics"]
        assert (spec["Namespace"], [m["Name"] for m in spec["Metrics"]]) == (
            alarm["namespace"],
            [alarm["metricName"]],
        )
        assert spec["Dimensions"] == [sorted(alarm["dimensions"])]
        assert emf["service"] == lambda_module.logger.service

    def test_a_message_held_longer_than_a_day_goes_to_the_dlq_with_its_reason(
        self, moto_aws, lambda_poll, lambda_faults
    ):
        body = json.dumps(message("q-2"))
        moto_aws.sqs.send_message(
            QueueUrl=moto_aws.queue_url,
            MessageBody=body,
            MessageAttributes={
                "quota_held_since": {
                    "DataType": "Number",
                    "StringValue": str(int(time.time()) - 26 * 3600),
                }
            },
        )
        lambda_faults["Subject q-2"] = [self.QUOTA]

        lambda_poll()

        [(error_class, reason)] = reasons(moto_aws.dead_letters()).values()
        assert error_class == "DailyQuotaExceeded"
        assert reason.startswith("held 26 h for the SES daily sending quota")


class TestPacing:
    """Each instance sends at most EMAIL_MAX_SEND_RATE recipients per second."""

    def test_sends_are_spread_to_the_instance_rate(
        self, moto_aws, lambda_poll, lambda_module, monkeypatch
    ):
        from lambda_sender.pacing import TokenBucket

        monkeypatch.setattr(lambda_module, "_bucket", TokenBucket(4.0))
        for i in range(6):
            moto_aws.send(message(f"r-{i}", cc=["c@example.org"]))  # 2 recipients each
        started = time.monotonic()

        lambda_poll()

        # 12 recipients at 4/s with a 4-recipient burst: at least 2 s.
        assert time.monotonic() - started >= 2.0
        assert len(moto_aws.sent_mail()) == 6
        assert moto_aws.dead_letters() == []

    def test_sends_that_cannot_start_before_the_invocation_ends_are_deferred_not_failed(
        self, moto_aws, lambda_poll, lambda_module, lambda_context, monkeypatch
    ):
        from lambda_sender.pacing import TokenBucket

        monkeypatch.setattr(lambda_module, "_bucket", TokenBucket(2.0))
        # 16 s left, minus the 15 s kept for the last send: a 1 s sending budget.
        monkeypatch.setattr(lambda_context, "get_remaining_time_in_millis", lambda: 16_000)
        for i in range(8):
            moto_aws.send(message(f"d-{i}"))

        rounds = lambda_poll(max_wait=20)

        assert all(r.failures == [] for r in rounds)
        assert len(rounds) >= 2
        sent = sorted(m["subject"] for m in moto_aws.sent_mail())
        assert sent == sorted(f"Subject d-{i}" for i in range(8))
        assert moto_aws.dead_letters() == []


@pytest.fixture
def ses_requests(lambda_module) -> Iterator[list[dict[str, Any]]]:
    """Every SendEmail request body, refused ones too (registered before any fault)."""
    calls: list[dict[str, Any]] = []

    def spy(params: dict[str, Any], **_: Any) -> None:
        calls.append(json.loads(params["body"]))

    events = lambda_module._client("sesv2").meta.events
    events.register_first("before-call.sesv2.SendEmail", spy, unique_id="ses-requests")
    try:
        yield calls
    finally:
        events.unregister("before-call.sesv2.SendEmail", unique_id="ses-requests")


def tag(request: dict[str, Any], name: str) -> str | None:
    return next((t["Value"] for t in request["EmailTags"] if t["Name"] == name), None)


def queued_at_attribute(value: str, data_type: str = "Number") -> dict[str, Any]:
    return {"queued_at": {"DataType": data_type, "StringValue": value}}


class TestQueuedAt:
    """Each send tags when its message first entered the queue: the SQS SentTimestamp of
    the producer's message, kept by every re-enqueued copy."""

    def test_the_send_is_tagged_with_the_records_sent_timestamp(
        self, moto_aws, lambda_poll, ses_requests
    ):
        moto_aws.send(message("qa-1"))

        rounds = lambda_poll()

        [record] = rounds[0].response_records
        [request] = ses_requests
        assert tag(request, "queued_at") == record["attributes"]["SentTimestamp"]
        assert tag(request, "message_id") == "qa-1"

    @pytest.mark.parametrize("wait", ["throttled", "paced", "quota_held"])
    def test_a_requeued_copy_still_tags_the_original_enqueue_time(
        self,
        moto_aws,
        lambda_poll,
        lambda_faults,
        lambda_module,
        lambda_context,
        ses_requests,
        monkeypatch,
        wait,
    ):
        # GIVEN a message that has to wait once on the queue as a delayed copy
        ids = ["qa-2"]
        if wait == "throttled":
            lambda_faults["Subject qa-2"] = [("TooManyRequestsException", 429)]
        elif wait == "quota_held":
            lambda_faults["Subject qa-2"] = [TestDailyQuota.QUOTA]
            monkeypatch.setattr(lambda_module, "MAX_DELAY_SECONDS", 1)
        else:
            from lambda_sender.pacing import TokenBucket

            # 1 recipient/s and half a second to send in: the second message's turn is
            # after the invocation must stop sending.
            monkeypatch.setattr(lambda_module, "_bucket", TokenBucket(1.0))
            monkeypatch.setattr(lambda_context, "get_remaining_time_in_millis", lambda: 15_500)
            ids = ["qa-2", "qa-3"]
        for id in ids:
            moto_aws.send(message(id))

        # WHEN the queue is drained, the copy a while after the original
        rounds = lambda_poll(max_wait=15)

        # THEN a copy was sent later than the original, carrying the original's time
        originals = {
            json.loads(r["body"])["id"]: r["attributes"]["SentTimestamp"]
            for r in rounds[0].response_records
        }
        copies = [r for round_ in rounds[1:] for r in round_.response_records]
        assert copies, "nothing was re-enqueued"
        for copy in copies:
            original = originals[json.loads(copy["body"])["id"]]
            assert int(copy["attributes"]["SentTimestamp"]) > int(original)
            assert copy["messageAttributes"]["queued_at"]["stringValue"] == original
        # AND every SES request of each message, the copy's included, tags that time
        assert sorted(m["subject"] for m in moto_aws.sent_mail()) == [f"Subject {i}" for i in ids]
        assert len(ses_requests) == 2  # the refused and the sent one, or both sent
        for request in ses_requests:
            assert tag(request, "queued_at") == originals[tag(request, "message_id")]

    @pytest.mark.parametrize(
        ("claimed", "data_type"),
        [
            (str(int(time.time() * 1000) + 3_600_000), "Number"),  # an hour ahead
            (str(int(time.time() * 1000) - 15 * 86_400_000), "Number"),  # past SQS retention
            ("1700000000000.5", "Number"),
            ("-1", "Number"),
            ("yesterday", "String"),
        ],
        ids=["future", "older-than-14-days", "fraction", "negative", "not-a-number"],
    )
    def test_an_implausible_queued_at_attribute_falls_back_to_the_sent_timestamp(
        self, moto_aws, lambda_poll, ses_requests, claimed, data_type
    ):
        moto_aws.sqs.send_message(
            QueueUrl=moto_aws.queue_url,
            MessageBody=json.dumps(message("qa-4")),
            MessageAttributes=queued_at_attribute(claimed, data_type),
        )

        rounds = lambda_poll()

        [record] = rounds[0].response_records
        [request] = ses_requests
        assert tag(request, "queued_at") == record["attributes"]["SentTimestamp"]
        assert tag(request, "queued_at") != claimed

    def test_a_binary_queued_at_attribute_falls_back_instead_of_failing_the_record(
        self, lambda_module
    ):
        from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

        # As Lambda delivers a Binary attribute: no `stringValue` at all.
        record = SQSRecord(
            {
                "attributes": {"SentTimestamp": "1795427970250"},
                "messageAttributes": {
                    "queued_at": {"binaryValue": "AQI=", "dataType": "Binary"},
                },
            }
        )

        assert lambda_module._queued_at(record) == 1795427970250

    def test_a_plausible_queued_at_attribute_is_kept(self, moto_aws, lambda_poll, ses_requests):
        # What a copy looks like: the original's time, at most 14 days before its own.
        claimed = str(int(time.time() * 1000) - 13 * 86_400_000)
        moto_aws.sqs.send_message(
            QueueUrl=moto_aws.queue_url,
            MessageBody=json.dumps(message("qa-5")),
            MessageAttributes=queued_at_attribute(claimed),
        )

        lambda_poll()

        [request] = ses_requests
        assert tag(request, "queued_at") == claimed

    def test_a_producer_retry_with_a_later_sent_timestamp_is_still_a_duplicate(
        self, moto_aws, lambda_poll, ses_requests
    ):
        moto_aws.send(message("qa-6"))
        first = lambda_poll()
        time.sleep(0.01)
        moto_aws.send(message("qa-6"))

        second = lambda_poll()

        assert int(second[0].response_records[0]["attributes"]["SentTimestamp"]) > int(
            first[0].response_records[0]["attributes"]["SentTimestamp"]
        )
        assert [r.failures for r in second] == [[]]
        assert len(ses_requests) == 1
        assert len(moto_aws.sent_mail()) == 1
        assert moto_aws.dead_letters() == []


class TestIdReuse:
    def test_an_id_reused_for_another_message_goes_to_the_dlq_with_its_reason(
        self, moto_aws, lambda_poll
    ):
        moto_aws.send(message("u-1", to="alice@example.org"))
        lambda_poll()
        reused = json.dumps(message("u-1", to="mallory@example.org"))
        moto_aws.send(reused)

        rounds = lambda_poll()

        assert [r.failures for r in rounds] == [[]]
        assert len(moto_aws.sent_mail()) == 1
        error_class, reason = reasons(moto_aws.dead_letters())[reused]
        assert error_class == "IdempotencyKeyReused"
        assert "'u-1' was already used for a different message" in reason
        assert "mallory" not in reason

    def test_the_same_message_again_is_still_a_silent_duplicate(self, moto_aws, lambda_poll):
        moto_aws.send(message("u-2"))
        lambda_poll()
        moto_aws.send(message("u-2"))

        lambda_poll()

        assert len(moto_aws.sent_mail()) == 1
        assert moto_aws.dead_letters() == []


def test_permanent_rejection_lands_in_dlq_with_reason_and_is_not_remembered(moto_aws, lambda_poll):
    # moto refuses a sender whose domain has no identity with a real MessageRejected.
    rejected = message("p-1", **{"from": f"x@unverified.{DOMAIN}"})
    moto_aws.send(rejected)
    moto_aws.send(message("p-2"))

    rounds = lambda_poll()

    assert [r.failures for r in rounds] == [[]]
    assert [m["subject"] for m in moto_aws.sent_mail()] == ["Subject p-2"]
    [(error_class, reason)] = reasons(moto_aws.dead_letters()).values()
    assert error_class == "MessageRejected"
    assert "not verified" in reason
    # The failure was not stored as done: once fixed, the same id sends.
    moto_aws.sesv2.create_email_identity(EmailIdentity=f"unverified.{DOMAIN}")
    moto_aws.send(rejected)
    lambda_poll()
    assert len(moto_aws.sent_mail()) == 2


@pytest.mark.parametrize(
    ("fault", "error_class"),
    [
        (("SendingPausedException", 400), "SendingPausedException"),
        (("AccountSuspendedException", 400), "AccountSuspendedException"),
        (("MailFromDomainNotVerifiedException", 400), "MailFromDomainNotVerifiedException"),
        (("BadRequestException", 400), "BadRequestException"),
        (("NotFoundException", 404), "NotFoundException"),
    ],
)
def test_permanent_ses_errors_are_dead_lettered_at_once(
    moto_aws, lambda_poll, lambda_faults, fault, error_class
):
    moto_aws.send(message("p-3"))
    lambda_faults["Subject p-3"] = [fault]

    rounds = lambda_poll()

    assert len(rounds) == 1
    assert [c for c, _ in reasons(moto_aws.dead_letters()).values()] == [error_class]


def emf_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if '"_aws"' in line]


def planned_alarm(recording: Any, key: str) -> dict[str, Any]:
    return recording.named(f"mail-alarms-{key}").inputs


@pytest.mark.parametrize(
    ("code", "paused"),
    [
        ("SendingPausedException", True),
        ("AccountSuspendedException", True),
        ("MessageRejected", False),
        ("MailFromDomainNotVerifiedException", False),
    ],
)
def test_a_send_refused_for_a_sending_pause_is_counted_for_the_planned_alarm(
    moto_aws, lambda_poll, lambda_faults, moto_env, stack_recordings, code, paused
):
    # GIVEN SES refuses the send with `code`
    moto_aws.send(message("sp-1"))
    lambda_faults["Subject sp-1"] = [(code, 400)]
    metrics = io.StringIO()
    # WHEN the handler takes it
    with redirect_stdout(metrics):
        rounds = lambda_poll()
    # THEN it is dead-lettered with that class, at once
    assert len(rounds) == 1
    assert [c for c, _ in reasons(moto_aws.dead_letters()).values()] == [code]
    emf = [e for e in emf_lines(metrics.getvalue()) if "SendingPaused" in e]
    if not paused:
        assert emf == []
        return
    # AND a pause is one SendingPaused in the namespace and dimension the planned alarm
    # watches, the dimension's value being the function's POWERTOOLS_SERVICE_NAME
    [metric] = emf
    alarm = planned_alarm(stack_recordings["prod"], "sending-paused")
    [spec] = metric["_aws"]["CloudWatchMetrics"]
    assert spec["Namespace"] == alarm["namespace"]
    assert [m["Name"] for m in spec["Metrics"]] == [alarm["metricName"]] == ["SendingPaused"]
    assert spec["Dimensions"] == [sorted(alarm["dimensions"])]
    assert metric["service"] == moto_env["POWERTOOLS_SERVICE_NAME"]
    assert metric["SendingPaused"] in (1.0, [1.0])


INVALID = {
    "malformed JSON": ('{"id": "x", "to": ', "not valid JSON"),
    "missing subject": (json.dumps({"id": "x", "to": "a@example.org", "text": "t"}), "`subject`"),
    "missing id": (json.dumps({"to": "a@example.org", "subject": "s", "text": "t"}), "`id`"),
    "CR LF in subject": (json.dumps(message("x", subject="Hi\r\nBcc: e@evil.test")), "`subject`"),
    "CR LF in header": (
        json.dumps(message("x", headers={"X-A": "a\r\nBcc: e@evil.test"})),
        "`headers",
    ),
    "51 recipients": (
        json.dumps(
            message(
                "x",
                to=[f"u{i}@example.org" for i in range(30)],
                cc=[f"c{i}@example.org" for i in range(21)],
            )
        ),
        "51 recipients",
    ),
    "foreign from": (json.dumps(message("x", **{"from": "boss@evil.test"})), "`from`"),
}


@pytest.mark.parametrize("case", list(INVALID), ids=list(INVALID))
def test_invalid_message_is_dead_lettered_with_reason_while_batch_mates_send(
    moto_aws, lambda_poll, case
):
    body, reason_part = INVALID[case]
    moto_aws.send(message("ok-1"))
    moto_aws.send(body)
    moto_aws.send(message("ok-2"))

    rounds = lambda_poll()

    assert [r.failures for r in rounds] == [[]]
    assert sorted(m["subject"] for m in moto_aws.sent_mail()) == ["Subject ok-1", "Subject ok-2"]
    got = reasons(moto_aws.dead_letters())
    assert list(got) == [body]
    error_class, reason = got[body]
    assert error_class == "InvalidMessage"
    assert reason_part in reason


def test_dead_letter_failure_becomes_a_batch_item_failure(moto_aws, lambda_poll, lambda_module):
    bad = moto_aws.send("not json")

    def refuse(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://sqs.local")

    events = lambda_module._client("sqs").meta.events
    events.register("before-call.sqs.SendMessage", refuse, unique_id="refuse")
    try:
        rounds = lambda_poll()
    finally:
        events.unregister("before-call.sqs.SendMessage", unique_id="refuse")

    assert rounds[0].failures == [bad]
    # Nothing is lost: SQS's own redrive still moves it to the DLQ.
    [dead] = moto_aws.dead_letters()
    assert dead["Body"] == "not json"


def test_sends_of_a_batch_run_concurrently(moto_aws, lambda_poll, lambda_module):
    delay = 0.2

    def slow(**_: Any) -> None:
        time.sleep(delay)

    for i in range(10):
        moto_aws.send(message(f"c-{i}"))
    events = lambda_module._client("sesv2").meta.events
    events.register("before-call.sesv2.SendEmail", slow, unique_id="slow")
    try:
        started = time.perf_counter()
        rounds = lambda_poll()
        elapsed = time.perf_counter() - started
    finally:
        events.unregister("before-call.sesv2.SendEmail", unique_id="slow")

    assert sum(len(r.received) for r in rounds) == 10
    assert len(moto_aws.sent_mail()) == 10
    assert elapsed < 10 * delay / 2, f"10 sends took {elapsed:.2f}s: not concurrent"


def test_info_logs_carry_ids_and_domains_never_addresses_or_bodies(
    moto_aws, lambda_poll, lambda_module
):
    moto_aws.send(message("log-1", to="alice.secret@example.org", text="TOP-SECRET-BODY"))
    moto_aws.send(
        message("log-2", **{"from": f"x@unverified.{DOMAIN}"}, to="bob.secret@example.org")
    )
    log_handler = lambda_module.logger.registered_handler
    stream = io.StringIO()
    previous = log_handler.setStream(stream)
    try:
        lambda_poll()
    finally:
        log_handler.setStream(previous)

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    [sent] = [line for line in lines if line.get("outcome") == "sent"]
    assert sent["message_id"] == "log-1"
    assert sent["recipient_count"] == 1
    assert sent["recipient_domains"] == ["example.org"]
    assert sent["ses_message_id"]
    [rejected] = [line for line in lines if line.get("outcome") == "dead_lettered"]
    assert rejected["error_class"] == "MessageRejected"
    output = json.dumps(lines)
    assert "alice.secret" not in output
    assert "bob.secret" not in output
    assert "x@unverified" not in output
    assert "TOP-SECRET-BODY" not in output


@pytest.mark.parametrize(
    "missing",
    [
        "EMAIL_DOMAIN",
        "EMAIL_DEFAULT_FROM",
        "EMAIL_CONFIGURATION_SET",
        "EMAIL_IDEMPOTENCY_TABLE",
        "EMAIL_DEAD_LETTER_QUEUE_URL",
    ],
)
def test_cold_start_fails_naming_a_missing_variable(moto_env, missing):
    env = {k: v for k, v in moto_env.items() if k != missing}

    result = subprocess.run(
        [sys.executable, "-c", "import lambda_sender.handler"],
        cwd=FUNCTIONS,
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    assert f"ConfigError: `{missing}` must be set" in result.stderr
