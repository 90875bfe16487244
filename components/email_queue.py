"""SQS queue for outgoing email with its dead-letter queue (redrive, encryption, TLS
only) and an alarm, sent to an encrypted SNS topic, as soon as the DLQ holds a message."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from .errors import ConfigError
from .settings import Email, Int, Pattern, check_fields, require_args, rule, strict_args
from .topics import create_service_topic

__all__ = [
    "CONSUME_MESSAGES_ACTIONS",
    "DEAD_LETTER_RETENTION_SECONDS",
    "DEAD_LETTER_SEND_ACTIONS",
    "MAX_RECEIVE_COUNT_RANGE",
    "SEND_MESSAGES_ACTIONS",
    "EmailQueue",
    "EmailQueueArgs",
    "derived_visibility_timeout",
]

TYPE = "serverless-mail:index:EmailQueue"

SEND_MESSAGES_ACTIONS = ("sqs:SendMessage", "sqs:GetQueueUrl")
"""What a producer is granted on the queue."""

CONSUME_MESSAGES_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
)
"""What a consumer (a Lambda event source mapping and its handler) is granted."""

DEAD_LETTER_SEND_ACTIONS = ("sqs:SendMessage",)
"""What a consumer that dead-letters rejected messages itself is granted on the DLQ."""

# A producer encrypts with a data key and a consumer decrypts it (SQS Developer Guide,
# "Key management": permissions for producers and consumers of an SSE-KMS queue).
KEY_SEND_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")
KEY_CONSUME_ACTIONS = ("kms:Decrypt",)

DEAD_LETTER_RETENTION_SECONDS = 14 * 24 * 60 * 60
"""The maximum SQS retention: a DLQ message keeps its original enqueue time, so the DLQ
must keep messages longer than the source queue does."""

MAX_VISIBILITY_TIMEOUT_SECONDS = 12 * 60 * 60
MAX_RECEIVE_COUNT_RANGE = (3, 10)
"""Allowed ``maxReceiveCount``: the args and the policy pack share it."""

# AWS Lambda Developer Guide, "Using Lambda with Amazon SQS": set the queue's visibility
# timeout to at least six times the function timeout, plus the batching window.
VISIBILITY_TIMEOUT_FACTOR = 6

KMS_KEY_ARN_RE = re.compile(r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+")
_KMS_WHAT = (
    "the ARN of a KMS key such as 'arn:aws:kms:eu-west-1:123456789012:key/<key id>' (not an alias)"
)


@strict_args
@dataclass(frozen=True, kw_only=True)
class EmailQueueArgs:
    """Arguments of :class:`EmailQueue`."""

    max_receive_count: int = field(default=5, metadata=rule(Int(*MAX_RECEIVE_COUNT_RANGE)))
    """Receives before SQS moves a message to the DLQ (3 to 10: fewer dead-letters mail
    after one passing fault, more keeps a poison message cycling for hours; the policy
    pack holds every stack to the same range). Default: ``5``."""

    message_retention_seconds: int = field(
        default=4 * 24 * 60 * 60, metadata=rule(Int(60, DEAD_LETTER_RETENTION_SECONDS))
    )
    """How long the queue keeps a message, in seconds (60 to 1209600). Default:
    ``345600`` (4 days)."""

    consumer_timeout_seconds: int = field(default=30, metadata=rule(Int(1, 900)))
    """The consuming function's timeout, in seconds (1 to 900); the visibility timeout
    is derived from it. Default: ``30``."""

    batching_window_seconds: int = field(default=0, metadata=rule(Int(0, 300)))
    """The consumer's maximum batching window, in seconds (0 to 300); part of the
    derived visibility timeout. Default: ``0``."""

    visibility_timeout_seconds: int | None = field(
        default=None, metadata=rule(Int(0, MAX_VISIBILITY_TIMEOUT_SECONDS))
    )
    """An explicit visibility timeout, in seconds (up to 43200); it may not be lower
    than the derived one. Default: ``None`` (6 * ``consumer_timeout_seconds`` +
    ``batching_window_seconds``)."""

    kms_key_arn: pulumi.Input[str] | None = field(
        default=None, metadata=rule(Pattern(KMS_KEY_ARN_RE, _KMS_WHAT, "alias/aws/sqs"))
    )
    """ARN of a customer managed KMS key encrypting both queues. Default: ``None``
    (SQS-managed encryption, SSE-SQS)."""

    alarm_email: str | None = field(default=None, metadata=rule(Email()))
    """An address subscribed to the DLQ alarm topic (it must confirm the subscription).
    Default: ``None`` (subscribe later, e.g. a pager, to ``alarm_topic``)."""

    @property
    def derived_visibility_timeout_seconds(self) -> int:
        """6 * ``consumer_timeout_seconds`` + ``batching_window_seconds``."""
        return derived_visibility_timeout(
            self.consumer_timeout_seconds, self.batching_window_seconds
        )

    @property
    def effective_visibility_timeout_seconds(self) -> int:
        """The visibility timeout the queue gets."""
        if self.visibility_timeout_seconds is None:
            return self.derived_visibility_timeout_seconds
        return self.visibility_timeout_seconds

    def validate(self) -> None:
        """Raise :class:`ConfigError` on the first invalid field."""
        check_fields(self)
        if self.visibility_timeout_seconds is not None:
            derived = self.derived_visibility_timeout_seconds
            if self.visibility_timeout_seconds < derived:
                raise ConfigError(
                    f"`visibility_timeout_seconds` must be at least {derived} (6 * "
                    f"`consumer_timeout_seconds` {self.consumer_timeout_seconds} + "
                    f"`batching_window_seconds` {self.batching_window_seconds}, AWS's "
                    "guidance for a Lambda event source), but "
                    f"{self.visibility_timeout_seconds} was provided: raise it to {derived} "
                    "or leave it unset to derive it"
                )


class EmailQueue(pulumi.ComponentResource):
    """The queue producers put email messages on, with a DLQ that is never silent.

    Attributes:
        queue / dead_letter_queue: the two SQS queues.
        arn / url / name: the queue's.
        dead_letter_queue_arn / dead_letter_queue_url: the DLQ's.
        alarm_topic: SNS topic the DLQ alarm notifies (encrypted with its own key,
            which CloudWatch is allowed to use).
        dead_letter_alarm: alarm raised when the DLQ holds at least one message.
        visibility_timeout_seconds: the queue's visibility timeout.
    """

    queue: aws.sqs.Queue
    dead_letter_queue: aws.sqs.Queue
    alarm_topic: aws.sns.Topic
    alarm_topic_key: aws.kms.Key
    dead_letter_alarm: aws.cloudwatch.MetricAlarm
    alarm_subscription: aws.sns.TopicSubscription | None

    def __init__(
        self,
        name: str,
        args: EmailQueueArgs | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(TYPE, name, {}, opts)
        args = args or EmailQueueArgs()
        require_args(args, EmailQueueArgs, "EmailQueue")
        args.validate()
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)

        self._create_dead_letter_queue()
        self._create_queue()
        self._restrict_dead_letter_sources()
        self._deny_insecure_transport()
        self._create_alarm_topic()
        self._alarm_on_dead_letters()

        self.arn = self.queue.arn
        self.url = self.queue.url
        self.name = self.queue.name
        self.dead_letter_queue_arn = self.dead_letter_queue.arn
        self.dead_letter_queue_url = self.dead_letter_queue.url
        self.visibility_timeout_seconds = args.effective_visibility_timeout_seconds
        self.register_outputs(
            {
                "arn": self.arn,
                "url": self.url,
                "name": self.name,
                "dead_letter_queue_arn": self.dead_letter_queue_arn,
                "dead_letter_queue_url": self.dead_letter_queue_url,
                "alarm_topic_arn": self.alarm_topic.arn,
            }
        )

    def _encryption(self) -> dict[str, Any]:
        if self._args.kms_key_arn is None:
            return {"sqs_managed_sse_enabled": True}
        return {"kms_master_key_id": self._args.kms_key_arn}

    def _create_dead_letter_queue(self) -> None:
        self.dead_letter_queue = aws.sqs.Queue(
            f"{self._name}-dlq",
            message_retention_seconds=DEAD_LETTER_RETENTION_SECONDS,
            opts=self._child,
            **self._encryption(),
        )

    def _create_queue(self) -> None:
        self.queue = aws.sqs.Queue(
            f"{self._name}-queue",
            message_retention_seconds=self._args.message_retention_seconds,
            visibility_timeout_seconds=self._args.effective_visibility_timeout_seconds,
            redrive_policy=self.dead_letter_queue.arn.apply(
                lambda arn: json.dumps(redrive_policy(arn, self._args.max_receive_count))
            ),
            opts=self._child,
            **self._encryption(),
        )

    def _restrict_dead_letter_sources(self) -> None:
        aws.sqs.RedriveAllowPolicy(
            f"{self._name}-dlq-redrive-allow",
            queue_url=self.dead_letter_queue.url,
            redrive_allow_policy=self.queue.arn.apply(
                lambda arn: json.dumps(redrive_allow_policy(arn))
            ),
            opts=self._child,
        )

    def _deny_insecure_transport(self) -> None:
        for key, queue in (("queue", self.queue), ("dlq", self.dead_letter_queue)):
            aws.sqs.QueuePolicy(
                f"{self._name}-{key}-policy",
                queue_url=queue.url,
                policy=queue.arn.apply(lambda arn: json.dumps(deny_insecure_transport_policy(arn))),
                opts=self._child,
            )

    def _create_alarm_topic(self) -> None:
        self.alarm_topic_key, self.alarm_topic = create_service_topic(
            key_name=f"{self._name}-alarm-key",
            topic_name=f"{self._name}-alarms",
            publisher="cloudwatch.amazonaws.com",
            publisher_sid="CloudWatchAlarmsPublishToTheTopic",
            description=f"Encrypts the DLQ alarm topic of {self._name}; CloudWatch may use it",
            arn_in_account=self.queue.arn,
            opts=self._child,
        )
        self.alarm_subscription = None
        if self._args.alarm_email is not None:
            self.alarm_subscription = aws.sns.TopicSubscription(
                f"{self._name}-alarms-email",
                topic=self.alarm_topic.arn,
                protocol="email",
                endpoint=self._args.alarm_email,
                opts=self._child,
            )

    def _alarm_on_dead_letters(self) -> None:
        self.dead_letter_alarm = aws.cloudwatch.MetricAlarm(
            f"{self._name}-dlq-alarm",
            alarm_description=(
                f"Email messages of {self._name} reached the dead-letter queue: each carries "
                "its error_class and error_reason attributes; fix the cause, then redrive "
                "or delete them"
            ),
            namespace="AWS/SQS",
            metric_name="ApproximateNumberOfMessagesVisible",
            dimensions={"QueueName": self.dead_letter_queue.name},
            statistic="Maximum",
            period=60,
            evaluation_periods=1,
            threshold=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[self.alarm_topic.arn],
            ok_actions=[self.alarm_topic.arn],
            opts=self._child,
        )

    def grant_send_messages(self) -> pulumi.Output[dict[str, Any]]:
        """A statement allowing a producer to put messages on the queue.

        Grants exactly ``sqs:SendMessage`` and ``sqs:GetQueueUrl`` on the queue's ARN.
        With ``kms_key_arn`` set, also grant :meth:`grant_encryption_key_use`.
        """
        return self.arn.apply(
            lambda arn: queue_statement("SendMessages", SEND_MESSAGES_ACTIONS, arn)
        )

    def grant_consume_messages(self) -> pulumi.Output[dict[str, Any]]:
        """A statement allowing a consumer to receive and settle the queue's messages.

        Grants exactly ``sqs:ReceiveMessage``, ``sqs:DeleteMessage``,
        ``sqs:ChangeMessageVisibility`` and ``sqs:GetQueueAttributes`` on the queue's ARN.
        """
        return self.arn.apply(
            lambda arn: queue_statement("ConsumeMessages", CONSUME_MESSAGES_ACTIONS, arn)
        )

    def grant_dead_letter_send(self) -> pulumi.Output[dict[str, Any]]:
        """A statement allowing a consumer to move a rejected message to the DLQ itself,
        with its reason as message attributes.

        Grants exactly ``sqs:SendMessage`` on the dead-letter queue's ARN.
        """
        return self.dead_letter_queue_arn.apply(
            lambda arn: queue_statement("SendDeadLetters", DEAD_LETTER_SEND_ACTIONS, arn)
        )

    def grant_encryption_key_use(
        self, *, send: bool = True
    ) -> pulumi.Output[dict[str, Any]] | None:
        """A statement allowing use of ``kms_key_arn``, or ``None`` with SSE-SQS (which
        needs no key permissions).

        Grants exactly ``kms:GenerateDataKey`` and ``kms:Decrypt`` (``send=True``: a
        producer, or a consumer that dead-letters) or ``kms:Decrypt`` (``send=False``)
        on the key's ARN.
        """
        if self._args.kms_key_arn is None:
            return None
        actions = KEY_SEND_ACTIONS if send else KEY_CONSUME_ACTIONS
        return pulumi.Output.from_input(self._args.kms_key_arn).apply(
            lambda arn: queue_statement("UseQueueKey", actions, arn)
        )


def derived_visibility_timeout(consumer_timeout_seconds: int, batching_window_seconds: int) -> int:
    """6 * the function timeout + the batching window (AWS Lambda Developer Guide)."""
    return VISIBILITY_TIMEOUT_FACTOR * consumer_timeout_seconds + batching_window_seconds


def redrive_policy(dead_letter_queue_arn: str, max_receive_count: int) -> dict[str, Any]:
    """The queue's redrive policy; ``maxReceiveCount`` stays an integer."""
    return {"deadLetterTargetArn": dead_letter_queue_arn, "maxReceiveCount": max_receive_count}


def redrive_allow_policy(source_queue_arn: str) -> dict[str, Any]:
    """The DLQ's redrive-allow policy: only ``source_queue_arn`` may use it."""
    return {"redrivePermission": "byQueue", "sourceQueueArns": [source_queue_arn]}


def deny_insecure_transport_policy(queue_arn: str) -> dict[str, Any]:
    """A queue policy denying every request to ``queue_arn`` not made over TLS."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sqs:*",
                "Resource": queue_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def queue_statement(sid: str, actions: tuple[str, ...], arn: str) -> dict[str, Any]:
    """An Allow statement of ``actions`` on the one resource ``arn``; the Sid is made
    unique per resource so statements of two queues can share a policy."""
    return {
        "Sid": sid + hashlib.sha256(arn.encode()).hexdigest()[:8].upper(),
        "Effect": "Allow",
        "Action": list(actions),
        "Resource": arn,
    }
