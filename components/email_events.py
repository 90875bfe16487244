"""Every SES event of the stack's configuration set → SQS (+ DLQ) → an events Lambda that
keeps a DynamoDB message history and sends signed webhooks, with the pipeline's own
queue-age, DLQ and function alarms. The alarms every stack keeps (reputation, the send
path's) and the dashboard are :class:`~serverless_mail.email_alarms.EmailAlarms`.

Route: the EmailDomain's SNS topic, subscribed by the events queue with raw message
delivery, rather than EventBridge. The topic already exists, is encrypted with its own
key and admits only this configuration set (its policy pins ``AWS:SourceArn``); SES
publishes to SNS for every event type, and raw delivery makes each SQS body exactly
SES's event JSON (SNS Developer Guide, "Amazon SNS raw message delivery"). The types the
domain's destination does not carry (SEND, DELIVERY, SUBSCRIPTION, and OPEN/CLICK when
engagement tracking is on) get a second destination to the same topic, so with events
off nothing extra is published. EventBridge would add a second path for the same events
and only works with the default bus, with nothing the queue needs that SNS lacks.

The queue is not an :class:`EmailQueue`: an SQS queue has exactly one policy, and it
must hold both the TLS-only deny and the topic's allow (EmailQueue owns a deny-only
policy), and EmailQueue's own alarm topic would split the alarms across two topics.
Its policy builders and constants are reused instead.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, get_args

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from .email_alarms import EmailAlarmsSettings, function_alarm, metric_alarm, queue_age_alarm
from .email_domain import EVENT_TYPES, REGION_RE, EmailDomain
from .email_queue import (
    CONSUME_MESSAGES_ACTIONS,
    DEAD_LETTER_RETENTION_SECONDS,
    DEAD_LETTER_SEND_ACTIONS,
    deny_insecure_transport_policy,
    derived_visibility_timeout,
    queue_statement,
    redrive_allow_policy,
    redrive_policy,
)
from .errors import ConfigError
from .lambda_package import EVENTS_HANDLER
from .lambda_sender import function_name_for
from .queue_function import (
    LOG_RETENTION_DAYS,
    Architecture,
    Grant,
    LogLevel,
    QueueFunctionSpec,
    create_queue_function,
)
from .settings import (
    Bool,
    Choice,
    Int,
    Rule,
    check_fields,
    prefixed,
    require_args,
    rule,
    strict_args,
)
from .validation import check_pattern, is_unresolved

__all__ = [
    "DELIVERY_EVENT_TYPES",
    "DOMAIN_EVENT_TYPES",
    "EXTRA_EVENT_TYPES",
    "HISTORY_TABLE_ACTIONS",
    "READ_HISTORY_ACTIONS",
    "EmailEvents",
    "EmailEventsArgs",
    "EmailEventsSettings",
    "events_queue_policy",
]

TYPE = "serverless-mail:index:EmailEvents"

DELIVERY_EVENT_TYPES = (
    "SEND",
    "DELIVERY",
    "BOUNCE",
    "COMPLAINT",
    "REJECT",
    "DELIVERY_DELAY",
    "RENDERING_FAILURE",
    "SUBSCRIPTION",
)
"""Every SES v2 event type except engagement (OPEN, CLICK): all reach the queue."""

DOMAIN_EVENT_TYPES = EVENT_TYPES
"""What the EmailDomain's own destination already publishes to the topic."""

EXTRA_EVENT_TYPES = tuple(t for t in DELIVERY_EVENT_TYPES if t not in DOMAIN_EVENT_TYPES)
"""What this component's destination adds (an event type in both destinations would
reach the topic twice)."""

ENGAGEMENT_EVENT_TYPES = ("OPEN", "CLICK")
"""Added with ``engagement_events``: SES then rewrites links and adds a tracking pixel."""

HISTORY_TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
"""What the events function does to the history table, and nothing else."""

READ_HISTORY_ACTIONS = ("dynamodb:GetItem", "dynamodb:Query")
"""What :meth:`EmailEvents.grant_read_history` grants the app."""

SERVICE_NAME = "serverless-mail-events"
"""``POWERTOOLS_SERVICE_NAME`` of the events function."""

MAX_WEBHOOK_URLS = 5

WEBHOOK_SECRET_BYTES = 32
"""Standard Webhooks: secrets are 24 to 64 random bytes; 32 is the HMAC-SHA256 block's half."""

# SQS maxReceiveCount the policy pack accepts is 3..10; the queue redrives one receive
# after the function's last attempt, so the function dead-letters with a reason first.
MAX_ATTEMPTS_RANGE = (2, 9)


@dataclass(frozen=True)
class HttpsUrls(Rule):
    """A list of at most ``most`` distinct ``https://`` URLs."""

    most: int
    type_name = "list of URLs"

    def check(self, key: str, value: Any) -> None:
        if is_unresolved(value):
            return
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ConfigError(
                f"`{key}` must be a list of https:// URLs, but {value!r} was provided"
            )
        if len(value) > self.most:
            raise ConfigError(
                f"`{key}` may name at most {self.most} endpoints, but {len(value)} were "
                "provided: fan out from one endpoint of the app instead"
            )
        for i, url in enumerate(value):
            if not is_https_url(url):
                raise ConfigError(
                    f"`{key}[{i}]` must be an https:// URL with a host and no spaces, "
                    f"but {url!r} was provided"
                )
        if len(set(value)) != len(value):
            raise ConfigError(f"`{key}` must not name the same endpoint twice")

    def describe(self) -> str:
        return f"list of https:// URLs (at most {self.most})"

    def invalid_example(self) -> Any:
        return ["http://app.example.com/hooks"]


def is_https_url(value: Any) -> bool:
    """An absolute ``https://`` URL with a host, no whitespace, at most 2048 characters."""
    if not isinstance(value, str) or len(value) > 2048 or any(c.isspace() for c in value):
        return False
    parts = urllib.parse.urlsplit(value)
    return parts.scheme == "https" and bool(parts.hostname)


@strict_args
@dataclass(frozen=True, kw_only=True)
class EmailEventsSettings:
    """What a stage may set on :class:`EmailEvents`; :class:`EmailEventsArgs` adds the
    wiring."""

    webhook_urls: tuple[str, ...] = field(default=(), metadata=rule(HttpsUrls(MAX_WEBHOOK_URLS)))
    """HTTPS endpoints (at most 5, distinct) that receive every event, signed per
    Standard Webhooks. Default: ``()`` (no webhooks, no secret)."""

    webhook_timeout_seconds: int = field(default=5, metadata=rule(Int(1, 30)))
    """How long one endpoint may take to answer, in seconds (1 to 30). Default: ``5``."""

    engagement_events: bool = field(default=False, metadata=rule(Bool()))
    """Also publish OPEN and CLICK (SES then rewrites links and adds a tracking pixel).
    Default: ``False``."""

    history_ttl_days: int = field(default=90, metadata=rule(Int(1, 3650)))
    """Days a message's history is kept after its last event (1 to 3650). Default: ``90``."""

    point_in_time_recovery: bool = field(default=True, metadata=rule(Bool()))
    """Point-in-time recovery of the history table. Default: ``True``."""

    max_attempts: int = field(default=8, metadata=rule(Int(*MAX_ATTEMPTS_RANGE)))
    """Deliveries of one event before it goes to the events DLQ with its reason (2 to
    9). Default: ``8``."""

    retry_base_seconds: int = field(default=30, metadata=rule(Int(0, 43200)))
    """First retry delay of a failed event, doubled on each attempt, in seconds (0 to
    43200). Default: ``30``."""

    retry_max_seconds: int = field(default=900, metadata=rule(Int(0, 43200)))
    """Longest retry delay, in seconds (``retry_base_seconds`` to 43200). Default:
    ``900``."""

    message_retention_seconds: int = field(
        default=4 * 24 * 60 * 60, metadata=rule(Int(60, DEAD_LETTER_RETENTION_SECONDS))
    )
    """How long the events queue keeps an event, in seconds (60 to 1209600). Default:
    ``345600`` (4 days)."""

    timeout_seconds: int = field(default=60, metadata=rule(Int(1, 900)))
    """Function timeout, in seconds (1 to 900); at least ``batch_size`` x endpoints x
    ``webhook_timeout_seconds``. Default: ``60``."""

    memory_mb: int = field(default=256, metadata=rule(Int(128, 10240)))
    """Function memory, in MB (128 to 10240). Default: ``256``."""

    batch_size: int = field(default=10, metadata=rule(Int(1, 10)))
    """Events per invocation (1 to 10). Default: ``10``."""

    maximum_concurrency: int = field(default=2, metadata=rule(Int(2, 1000)))
    """Most concurrent invocations the event source starts (2 to 1000). Default: ``2``."""

    log_retention_days: int = field(
        default=30, metadata=rule(Choice(LOG_RETENTION_DAYS, "CloudWatch's retention values"))
    )
    """Retention of the function's log group, one of CloudWatch's values (1, 3, 5, 7,
    14, 30, 60, 90, … 3653). Default: ``30``."""

    architecture: Architecture = field(
        default="arm64", metadata=rule(Choice(get_args(Architecture)))
    )
    """Instruction set, ``"arm64"`` or ``"x86_64"``. Default: ``"arm64"``."""

    log_level: LogLevel = field(default="INFO", metadata=rule(Choice(get_args(LogLevel))))
    """``POWERTOOLS_LOG_LEVEL``. Default: ``"INFO"``."""

    events_queue_age_seconds: int = field(default=3600, metadata=rule(Int(60, 1_209_600)))
    """Age of the oldest event on the events queue that raises an alarm, in seconds (60
    to 1209600; above the retries' total backoff). Default: ``3600``."""


@strict_args
@dataclass(frozen=True, kw_only=True)
class EmailEventsArgs(EmailEventsSettings):
    """Arguments of :class:`EmailEvents`."""

    domain: EmailDomain
    """The domain whose configuration set and events topic are consumed. Required."""

    region: str
    """The AWS region (picks the Powertools layer). Required."""

    alarm_topic_arn: pulumi.Input[str]
    """The SNS topic the pipeline's alarms notify (EmailQueue's ``alarm_topic``).
    Required."""

    alarms: EmailAlarmsSettings = field(default_factory=EmailAlarmsSettings)
    """The function thresholds and alarm period the pipeline's alarms share with the
    stack's :class:`~serverless_mail.email_alarms.EmailAlarms`. Default:
    ``EmailAlarmsSettings()``."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` on the first invalid field."""
        if not isinstance(self.domain, EmailDomain):
            raise ConfigError(
                f"`domain` must be an EmailDomain, but {type(self.domain).__name__} was provided"
            )
        if not isinstance(self.alarms, EmailAlarmsSettings):
            raise ConfigError(
                "`alarms` must be an EmailAlarmsSettings, but "
                f"{type(self.alarms).__name__} was provided"
            )
        check_pattern("region", self.region, REGION_RE, "an AWS region code such as 'eu-west-1'")
        check_fields(self)
        if self.retry_max_seconds < self.retry_base_seconds:
            raise ConfigError(
                f"`retry_max_seconds` must be at least `retry_base_seconds` "
                f"({self.retry_base_seconds}), but {self.retry_max_seconds} was provided"
            )
        worst = self.batch_size * len(self.webhook_urls) * self.webhook_timeout_seconds
        if worst > self.timeout_seconds:
            raise ConfigError(
                f"`timeout_seconds` must be at least {worst} (`batch_size` {self.batch_size} "
                f"x {len(self.webhook_urls)} `webhook_urls` x `webhook_timeout_seconds` "
                f"{self.webhook_timeout_seconds}: endpoints are called one after another), "
                f"but {self.timeout_seconds} was provided: raise it or lower `batch_size`"
            )
        with prefixed("alarms"):
            self.alarms.check()


class EmailEvents(pulumi.ComponentResource):
    """Every SES event processed: history, webhooks and the pipeline's alarms.

    Attributes:
        queue / dead_letter_queue: the events queue (subscribed to the events topic)
            and its DLQ.
        table: the message history (hash key ``id``, range key ``sk``, TTL
            ``expiration``).
        function / role / log_group / event_source_mapping: the events processor.
        webhook_secret: the ``whsec_`` signing secret (a secret Output), or ``None``
            without ``webhook_urls``.
        alarms: the pipeline's alarms, by a short key (``queue-age``, ``dlq-depth``,
            ``function-errors``, ``function-throttles``).
        queue_url / dead_letter_queue_url / history_table_name / history_table_arn /
            function_name: what callers usually need.
    """

    queue: aws.sqs.Queue
    dead_letter_queue: aws.sqs.Queue
    table: aws.dynamodb.Table
    function: aws.lambda_.Function
    role: aws.iam.Role
    role_policies: list[aws.iam.RolePolicy]
    log_group: aws.cloudwatch.LogGroup
    event_source_mapping: aws.lambda_.EventSourceMapping
    subscription: aws.sns.TopicSubscription
    webhook_secret: pulumi.Output[str] | None
    alarms: dict[str, aws.cloudwatch.MetricAlarm]

    def __init__(
        self,
        name: str,
        args: EmailEventsArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(TYPE, name, {}, opts)
        require_args(args, EmailEventsArgs, "EmailEvents")
        args.validate()
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self._function_name = function_name_for(name)

        self._create_queues()
        self._subscribe_to_events_topic()
        self._publish_every_event_type()
        self._create_history_table()
        self._create_webhook_secret()
        self._create_function()
        self._create_alarms()

        self.queue_url = self.queue.url
        self.queue_arn = self.queue.arn
        self.dead_letter_queue_url = self.dead_letter_queue.url
        self.history_table_name = self.table.name
        self.history_table_arn = self.table.arn
        self.function_name = self.function.name
        outputs: dict[str, Any] = {
            "queue_url": self.queue_url,
            "dead_letter_queue_url": self.dead_letter_queue_url,
            "history_table_name": self.history_table_name,
            "function_name": self.function_name,
        }
        if self.webhook_secret is not None:
            outputs["webhook_secret"] = self.webhook_secret
        self.register_outputs(outputs)

    def _create_queues(self) -> None:
        args = self._args
        self.dead_letter_queue = aws.sqs.Queue(
            f"{self._name}-dlq",
            message_retention_seconds=DEAD_LETTER_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            opts=self._child,
        )
        # SSE-SQS, not a customer key: SNS would need that key's permissions to deliver.
        self.queue = aws.sqs.Queue(
            f"{self._name}-queue",
            message_retention_seconds=args.message_retention_seconds,
            visibility_timeout_seconds=derived_visibility_timeout(args.timeout_seconds, 0),
            redrive_policy=self.dead_letter_queue.arn.apply(
                lambda arn: json.dumps(redrive_policy(arn, args.max_attempts + 1))
            ),
            sqs_managed_sse_enabled=True,
            opts=self._child,
        )
        aws.sqs.RedriveAllowPolicy(
            f"{self._name}-dlq-redrive-allow",
            queue_url=self.dead_letter_queue.url,
            redrive_allow_policy=self.queue.arn.apply(
                lambda arn: json.dumps(redrive_allow_policy(arn))
            ),
            opts=self._child,
        )
        self.queue_policy = aws.sqs.QueuePolicy(
            f"{self._name}-queue-policy",
            queue_url=self.queue.url,
            policy=pulumi.Output.all(self.queue.arn, self._args.domain.events_topic_arn).apply(
                lambda a: json.dumps(events_queue_policy(a[0], a[1]))
            ),
            opts=self._child,
        )
        # The DLQ also takes what SNS could not deliver to the queue at all (its
        # subscription's redrive policy), so it admits the topic the same way.
        self.dead_letter_queue_policy = aws.sqs.QueuePolicy(
            f"{self._name}-dlq-policy",
            queue_url=self.dead_letter_queue.url,
            policy=pulumi.Output.all(
                self.dead_letter_queue.arn, self._args.domain.events_topic_arn
            ).apply(lambda a: json.dumps(events_queue_policy(a[0], a[1]))),
            opts=self._child,
        )

    def _subscribe_to_events_topic(self) -> None:
        # SNS checks the queue policy when it delivers: the policies must exist first.
        # An event SNS cannot deliver (e.g. the queue policy was changed by hand) goes to
        # the events DLQ after SNS's retries, not nowhere (SNS Developer Guide,
        # "Amazon SNS dead-letter queues").
        self.subscription = aws.sns.TopicSubscription(
            f"{self._name}-subscription",
            topic=self._args.domain.events_topic_arn,
            protocol="sqs",
            endpoint=self.queue.arn,
            raw_message_delivery=True,
            redrive_policy=self.dead_letter_queue.arn.apply(
                lambda arn: json.dumps({"deadLetterTargetArn": arn})
            ),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.queue_policy, self.dead_letter_queue_policy]
            ),
        )

    def _publish_every_event_type(self) -> None:
        domain = self._args.domain
        self.destination = aws.sesv2.ConfigurationSetEventDestination(
            f"{self._name}-destination",
            configuration_set_name=domain.configuration_set_name,
            event_destination_name="sns-delivery-events",
            event_destination={
                "enabled": True,
                "matching_event_types": list(extra_event_types(self._args.engagement_events)),
                "sns_destination": {"topic_arn": domain.events_topic_arn},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.subscription]),
        )

    def _create_history_table(self) -> None:
        self.table = aws.dynamodb.Table(
            f"{self._name}-history",
            billing_mode="PAY_PER_REQUEST",
            hash_key="id",
            range_key="sk",
            attributes=[{"name": "id", "type": "S"}, {"name": "sk", "type": "S"}],
            ttl={"attribute_name": "expiration", "enabled": True},
            point_in_time_recovery={"enabled": self._args.point_in_time_recovery},
            server_side_encryption={"enabled": True},
            opts=self._child,
        )

    def _create_webhook_secret(self) -> None:
        self.webhook_secret = None
        if not self._args.webhook_urls:
            return
        key = random.RandomBytes(
            f"{self._name}-webhook-secret", length=WEBHOOK_SECRET_BYTES, opts=self._child
        )
        self.webhook_secret = pulumi.Output.secret(pulumi.Output.concat("whsec_", key.base64))

    def _create_function(self) -> None:
        args = self._args
        environment: dict[str, pulumi.Input[str]] = {
            "EMAIL_HISTORY_TABLE": self.table.name,
            "EMAIL_HISTORY_TTL_DAYS": str(args.history_ttl_days),
            "EMAIL_EVENTS_QUEUE_URL": self.queue.url,
            "EMAIL_EVENTS_DEAD_LETTER_QUEUE_URL": self.dead_letter_queue.url,
            "EMAIL_EVENTS_MAX_ATTEMPTS": str(args.max_attempts),
            "EMAIL_EVENTS_RETRY_BASE_SECONDS": str(args.retry_base_seconds),
            "EMAIL_EVENTS_RETRY_MAX_SECONDS": str(args.retry_max_seconds),
            "EMAIL_WEBHOOK_URLS": json.dumps(list(args.webhook_urls)),
            "EMAIL_WEBHOOK_TIMEOUT_SECONDS": str(args.webhook_timeout_seconds),
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            "POWERTOOLS_LOG_LEVEL": args.log_level,
        }
        if self.webhook_secret is not None:
            environment["EMAIL_WEBHOOK_SECRET"] = self.webhook_secret
        grants: list[Grant] = [
            (
                "consume-queue",
                self.queue.arn.apply(
                    lambda arn: queue_statement("ConsumeEvents", CONSUME_MESSAGES_ACTIONS, arn)
                ),
            ),
            (
                "dead-letter",
                self.dead_letter_queue.arn.apply(
                    lambda arn: queue_statement("SendDeadLetters", DEAD_LETTER_SEND_ACTIONS, arn)
                ),
            ),
            ("history", self.table.arn.apply(history_write_statement)),
        ]
        built = create_queue_function(
            self,
            self._name,
            self._function_name,
            QueueFunctionSpec.of(
                args,
                package="events",
                handler=EVENTS_HANDLER,
                description="serverless-mail: SES events to the message history and webhooks",
                role_description=(
                    f"Execution role of the {self._function_name} SES events processor"
                ),
                environment=environment,
                queue_arn=self.queue.arn,
            ),
            grants,
        )
        self.log_group, self.role = built.log_group, built.role
        self.role_policies, self.function = built.role_policies, built.function
        self.event_source_mapping = built.event_source_mapping

    def _create_alarms(self) -> None:
        args = self._args
        self.alarms = {}

        def alarm(key: str, **arguments: Any) -> None:
            self.alarms[key] = metric_alarm(
                f"{self._name}-{key}", args.alarm_topic_arn, self._child, **arguments
            )

        alarm(
            "queue-age",
            **queue_age_alarm(
                self.queue.name,
                args.events_queue_age_seconds,
                "SES events",
                args.alarms.alarm_period_seconds,
            ),
        )
        alarm(
            "dlq-depth",
            description=(
                "SES events reached the events dead-letter queue: each carries error_class "
                "and error_reason (an endpoint that kept failing, or a body that is not an "
                "SES event). Fix the cause, then redrive them (README, Operations)."
            ),
            namespace="AWS/SQS",
            metric_name="ApproximateNumberOfMessagesVisible",
            dimensions={"QueueName": self.dead_letter_queue.name},
            statistic="Maximum",
            period=60,
            threshold=1,
        )
        for metric, threshold in (
            ("Errors", args.alarms.lambda_errors_threshold),
            ("Throttles", args.alarms.lambda_throttles_threshold),
        ):
            alarm(
                f"function-{metric.lower()}",
                **function_alarm("events", self.function.name, metric, threshold, args.alarms),
            )

    def grant_read_history(self) -> pulumi.Output[dict[str, Any]]:
        """A statement letting the app read a message's status and timeline.

        Grants exactly ``dynamodb:GetItem`` (the ``status`` item: ``Key={"id": <id>,
        "sk": "status"}``) and ``dynamodb:Query`` (the timeline: ``id = <id> AND
        begins_with(sk, "event#")``) on the history table's ARN, nothing else.
        """
        return self.table.arn.apply(read_history_statement)


def extra_event_types(engagement: bool) -> tuple[str, ...]:
    """The event types this component's destination publishes."""
    return EXTRA_EVENT_TYPES + (ENGAGEMENT_EVENT_TYPES if engagement else ())


def events_queue_policy(queue_arn: str, topic_arn: str) -> dict[str, Any]:
    """The one policy of the events queue (and of its DLQ): only the SES events topic
    may send to it (SNS Developer Guide, "Subscribing an Amazon SQS queue to an Amazon
    SNS topic"), and no request without TLS is allowed."""
    deny = deny_insecure_transport_policy(queue_arn)["Statement"]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowSesEventsTopic",
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
            },
            *deny,
        ],
    }


def history_write_statement(table_arn: str) -> dict[str, Any]:
    """The events function's item reads and writes on the history table."""
    return {
        "Sid": "WriteMessageHistory",
        "Effect": "Allow",
        "Action": list(HISTORY_TABLE_ACTIONS),
        "Resource": table_arn,
    }


def read_history_statement(table_arn: str) -> dict[str, Any]:
    """The statement behind :meth:`EmailEvents.grant_read_history`."""
    return {
        "Sid": "ReadMessageHistory" + hashlib.sha256(table_arn.encode()).hexdigest()[:8].upper(),
        "Effect": "Allow",
        "Action": list(READ_HISTORY_ACTIONS),
        "Resource": table_arn,
    }
