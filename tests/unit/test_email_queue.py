"""EmailQueue: exact children and inputs, derived visibility timeout, the DLQ alarm,
the grants and every validation message."""

from __future__ import annotations

import json
from typing import Any

import pytest
from serverless_mail import ConfigError
from serverless_mail.email_queue import EmailQueue, EmailQueueArgs
from serverless_mail.mocking import Recording

QUEUE = "aws:sqs/queue:Queue"
KMS_KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ACCOUNT = "123456789012"


def build(run: Any, args: EmailQueueArgs | None = None) -> tuple[Recording, dict[str, Any]]:
    captured: dict[str, Any] = {}

    def program() -> None:
        queue = EmailQueue("email", args)
        captured["visibility_timeout_seconds"] = queue.visibility_timeout_seconds
        for key in ("arn", "url", "name", "dead_letter_queue_arn", "dead_letter_queue_url"):
            getattr(queue, key).apply(lambda v, key=key: captured.setdefault(key, v))
        queue.alarm_topic.arn.apply(lambda v: captured.setdefault("alarm_topic_arn", v))
        queue.grant_send_messages().apply(lambda s: captured.setdefault("send", s))
        queue.grant_consume_messages().apply(lambda s: captured.setdefault("consume", s))
        queue.grant_dead_letter_send().apply(lambda s: captured.setdefault("dead_letter", s))
        key = queue.grant_encryption_key_use()
        captured["key"] = None
        if key is not None:
            key.apply(lambda s: captured.__setitem__("key", s))
        consume_key = queue.grant_encryption_key_use(send=False)
        if consume_key is not None:
            consume_key.apply(lambda s: captured.setdefault("consume_key", s))

    return run(program), captured


def queues(rec: Recording) -> tuple[dict[str, Any], dict[str, Any]]:
    return rec.named("email-queue").inputs, rec.named("email-dlq").inputs


def arn_of(rec: Recording, name: str) -> str:
    return str(rec.named(name).outputs["arn"])


def test_creates_exactly_the_expected_children(run: Any) -> None:
    rec, _ = build(run)
    counts: dict[str, int] = {}
    for r in rec.resources:
        counts[r.type] = counts.get(r.type, 0) + 1
    assert counts == {
        "serverless-mail:index:EmailQueue": 1,
        QUEUE: 2,
        "aws:sqs/redriveAllowPolicy:RedriveAllowPolicy": 1,
        "aws:sqs/queuePolicy:QueuePolicy": 2,
        "aws:kms/key:Key": 1,
        "aws:sns/topic:Topic": 1,
        "aws:cloudwatch/metricAlarm:MetricAlarm": 1,
    }
    assert all(
        r.parent_name == "email"
        for r in rec.resources
        if r.type != "serverless-mail:index:EmailQueue"
    )
    assert {r.name for r in rec.of_type(QUEUE)} == {"email-queue", "email-dlq"}


def test_both_queues_use_sqs_managed_encryption_by_default(run: Any) -> None:
    rec, _ = build(run)
    for inputs in queues(rec):
        assert inputs["sqsManagedSseEnabled"] is True
        assert "kmsMasterKeyId" not in inputs


def test_a_kms_key_encrypts_both_queues_instead(run: Any) -> None:
    rec, captured = build(run, EmailQueueArgs(kms_key_arn=KMS_KEY_ARN))
    for inputs in queues(rec):
        assert inputs["kmsMasterKeyId"] == KMS_KEY_ARN
        assert "sqsManagedSseEnabled" not in inputs
    assert captured["key"] == {
        "Sid": captured["key"]["Sid"],
        "Effect": "Allow",
        "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
        "Resource": KMS_KEY_ARN,
    }
    assert captured["consume_key"]["Action"] == ["kms:Decrypt"]
    assert captured["consume_key"]["Resource"] == KMS_KEY_ARN


def test_sse_sqs_needs_no_key_grant(run: Any) -> None:
    _, captured = build(run)
    assert captured["key"] is None


def test_dlq_keeps_messages_14_days_and_queue_4_days_by_default(run: Any) -> None:
    rec, _ = build(run)
    queue, dlq = queues(rec)
    assert dlq["messageRetentionSeconds"] == 1209600
    assert queue["messageRetentionSeconds"] == 345600


def test_queue_retention_is_configurable(run: Any) -> None:
    rec, _ = build(run, EmailQueueArgs(message_retention_seconds=86400))
    queue, dlq = queues(rec)
    assert queue["messageRetentionSeconds"] == 86400
    assert dlq["messageRetentionSeconds"] == 1209600


@pytest.mark.parametrize("count", [3, 5, 10])
def test_queue_redrives_to_the_dlq_with_an_integer_max_receive_count(run: Any, count: int) -> None:
    args = EmailQueueArgs() if count == 5 else EmailQueueArgs(max_receive_count=count)
    rec, _ = build(run, args)
    redrive = json.loads(rec.named("email-queue").inputs["redrivePolicy"])
    assert redrive == {"deadLetterTargetArn": arn_of(rec, "email-dlq"), "maxReceiveCount": count}
    assert type(redrive["maxReceiveCount"]) is int
    assert f'"maxReceiveCount": {count}' in rec.named("email-queue").inputs["redrivePolicy"]
    assert "redrivePolicy" not in rec.named("email-dlq").inputs


def test_dlq_accepts_redrives_only_from_its_queue(run: Any) -> None:
    rec, _ = build(run)
    allow = rec.one("aws:sqs/redriveAllowPolicy:RedriveAllowPolicy")
    assert allow.name == "email-dlq-redrive-allow"
    assert allow.inputs["queueUrl"] == rec.named("email-dlq").outputs["url"]
    assert json.loads(allow.inputs["redriveAllowPolicy"]) == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [arn_of(rec, "email-queue")],
    }


def test_both_queues_deny_every_request_without_tls(run: Any) -> None:
    rec, _ = build(run)
    policies = {r.name: r.inputs for r in rec.of_type("aws:sqs/queuePolicy:QueuePolicy")}
    assert set(policies) == {"email-queue-policy", "email-dlq-policy"}
    for key in ("queue", "dlq"):
        inputs = policies[f"email-{key}-policy"]
        assert inputs["queueUrl"] == rec.named(f"email-{key}").outputs["url"]
        assert json.loads(inputs["policy"]) == {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "sqs:*",
                    "Resource": arn_of(rec, f"email-{key}"),
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }


@pytest.mark.parametrize(
    ("timeout", "window", "expected"),
    [(30, 0, 180), (60, 5, 365), (900, 300, 5700), (1, 0, 6)],
)
def test_visibility_timeout_is_six_times_the_consumer_timeout_plus_the_window(
    run: Any, timeout: int, window: int, expected: int
) -> None:
    args = EmailQueueArgs(consumer_timeout_seconds=timeout, batching_window_seconds=window)
    rec, captured = build(run, args)
    assert rec.named("email-queue").inputs["visibilityTimeoutSeconds"] == expected
    assert captured["visibility_timeout_seconds"] == expected
    assert type(captured["visibility_timeout_seconds"]) is int


def test_default_visibility_timeout_is_derived_from_a_30_second_consumer(run: Any) -> None:
    rec, captured = build(run)
    assert rec.named("email-queue").inputs["visibilityTimeoutSeconds"] == 180
    assert captured["visibility_timeout_seconds"] == 180


def test_an_explicit_visibility_timeout_at_least_the_derived_one_is_kept(run: Any) -> None:
    rec, captured = build(run, EmailQueueArgs(visibility_timeout_seconds=43200))
    assert rec.named("email-queue").inputs["visibilityTimeoutSeconds"] == 43200
    assert captured["visibility_timeout_seconds"] == 43200


def test_a_visibility_timeout_below_the_derived_one_is_rejected_naming_both(run: Any) -> None:
    args = EmailQueueArgs(
        consumer_timeout_seconds=60, batching_window_seconds=5, visibility_timeout_seconds=300
    )
    with pytest.raises(
        ConfigError,
        match=(
            r"^`visibility_timeout_seconds` must be at least 365 \(6 \* "
            r"`consumer_timeout_seconds` 60 \+ `batching_window_seconds` 5, .*\), "
            r"but 300 was provided: raise it to 365 or leave it unset to derive it$"
        ),
    ):
        build(run, args)


def test_dlq_alarm_fires_on_the_first_visible_message(run: Any) -> None:
    rec, _ = build(run)
    alarm = rec.one("aws:cloudwatch/metricAlarm:MetricAlarm")
    topic_arn = rec.one("aws:sns/topic:Topic").outputs["arn"]
    inputs = dict(alarm.inputs)
    assert inputs.pop("alarmDescription").startswith("Email messages of email reached the")
    assert inputs == {
        "namespace": "AWS/SQS",
        "metricName": "ApproximateNumberOfMessagesVisible",
        "dimensions": {"QueueName": rec.named("email-dlq").outputs["name"]},
        "statistic": "Maximum",
        "period": 60,
        "evaluationPeriods": 1,
        "threshold": 1,
        "comparisonOperator": "GreaterThanOrEqualToThreshold",
        "treatMissingData": "notBreaching",
        "alarmActions": [topic_arn],
        "okActions": [topic_arn],
    }


def test_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use(run: Any) -> None:
    rec, captured = build(run)
    key = rec.one("aws:kms/key:Key")
    topic = rec.one("aws:sns/topic:Topic")
    assert topic.name == "email-alarms"
    assert topic.inputs == {"kmsMasterKeyId": key.outputs["arn"]}
    assert captured["alarm_topic_arn"] == topic.outputs["arn"]
    assert key.inputs["enableKeyRotation"] is True
    assert json.loads(key.inputs["policy"])["Statement"] == [
        {
            "Sid": "AccountAdministersTheKeyThroughIam",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "CloudWatchAlarmsPublishToTheTopic",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": "*",
            # Only on behalf of this account's alarms (confused deputy).
            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
        },
    ]


def test_no_alarm_subscription_without_an_address(run: Any) -> None:
    rec, _ = build(run)
    assert rec.of_type("aws:sns/topicSubscription:TopicSubscription") == []


def test_alarm_email_subscribes_to_the_topic(run: Any) -> None:
    rec, _ = build(run, EmailQueueArgs(alarm_email="ops@example.com"))
    subscription = rec.one("aws:sns/topicSubscription:TopicSubscription")
    assert subscription.name == "email-alarms-email"
    assert subscription.parent_name == "email"
    assert subscription.inputs == {
        "topic": rec.one("aws:sns/topic:Topic").outputs["arn"],
        "protocol": "email",
        "endpoint": "ops@example.com",
    }


def test_public_attributes_are_the_queues_outputs(run: Any) -> None:
    rec, captured = build(run)
    queue, dlq = rec.named("email-queue").outputs, rec.named("email-dlq").outputs
    assert captured["arn"] == queue["arn"]
    assert captured["url"] == queue["url"]
    assert captured["name"] == queue["name"]
    assert captured["dead_letter_queue_arn"] == dlq["arn"]
    assert captured["dead_letter_queue_url"] == dlq["url"]


@pytest.mark.parametrize(
    ("grant", "actions", "queue"),
    [
        ("send", ["sqs:SendMessage", "sqs:GetQueueUrl"], "email-queue"),
        (
            "consume",
            [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueAttributes",
            ],
            "email-queue",
        ),
        ("dead_letter", ["sqs:SendMessage"], "email-dlq"),
    ],
)
def test_grants_allow_exact_actions_on_one_queue_arn(
    run: Any, grant: str, actions: list[str], queue: str
) -> None:
    rec, captured = build(run)
    statement = captured[grant]
    assert statement == {
        "Sid": statement["Sid"],
        "Effect": "Allow",
        "Action": actions,
        "Resource": arn_of(rec, queue),
    }
    assert statement["Sid"].isalnum()


def test_grant_sids_are_unique_per_grant(run: Any) -> None:
    _, captured = build(run)
    sids = [captured[g]["Sid"] for g in ("send", "consume", "dead_letter")]
    assert len(set(sids)) == 3


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"max_receive_count": 2}, r"^`max_receive_count` must be between 3 and 10, but 2 was provided$"),
        ({"max_receive_count": 11}, r"^`max_receive_count` must be between 3 and 10, but 11"),
        ({"max_receive_count": "5"}, r"^`max_receive_count` must be a whole number between 3 and 10, but '5' \(str\)"),
        ({"message_retention_seconds": 59}, r"^`message_retention_seconds` must be between 60 and 1209600, but 59"),
        ({"message_retention_seconds": 1209601}, r"^`message_retention_seconds` must be between 60 and 1209600"),
        ({"consumer_timeout_seconds": 0}, r"^`consumer_timeout_seconds` must be between 1 and 900, but 0"),
        ({"consumer_timeout_seconds": 901}, r"^`consumer_timeout_seconds` must be between 1 and 900, but 901"),
        ({"batching_window_seconds": 301}, r"^`batching_window_seconds` must be between 0 and 300, but 301"),
        ({"batching_window_seconds": -1}, r"^`batching_window_seconds` must be between 0 and 300, but -1"),
        ({"visibility_timeout_seconds": 43201}, r"^`visibility_timeout_seconds` must be between 0 and 43200, but 43201"),
        ({"visibility_timeout_seconds": 179}, r"^`visibility_timeout_seconds` must be at least 180 \("),
        ({"kms_key_arn": "alias/aws/sqs"}, r"^`kms_key_arn` must be the ARN of a KMS key .*\(not an alias\), but 'alias/aws/sqs' was provided$"),
        ({"alarm_email": "ops"}, r"^`alarm_email` must be an email address such as 'no-reply@example.com', but 'ops' was provided$"),
    ],
)  # fmt: skip
def test_invalid_arguments_are_rejected_with_the_arg_range_and_value(
    run: Any, overrides: dict[str, Any], message: str
) -> None:
    def program() -> None:
        EmailQueue("email", EmailQueueArgs(**overrides))

    with pytest.raises(ConfigError, match=message):
        run(program)
