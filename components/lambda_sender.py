"""The Lambda function that sends the queue's email through SES v2: least-privilege
role, log group with retention, DynamoDB idempotency table and SQS event source."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, get_args

import pulumi
import pulumi_aws as aws

from .email_domain import REGION_RE, EmailDomain
from .email_queue import EmailQueue, derived_visibility_timeout, queue_statement
from .errors import ConfigError
from .lambda_package import HANDLER
from .queue_function import (
    LOG_RETENTION_DAYS,
    Architecture,
    Grant,
    LogLevel,
    QueueFunctionSpec,
    create_queue_function,
)
from .ses_quota import MAX_DELAY_SECONDS, MAX_RECIPIENTS
from .settings import Bool, Choice, Int, check_fields, require_args, rule, strict_args
from .validation import check_email, check_pattern

__all__ = [
    "IDEMPOTENCY_TABLE_ACTIONS",
    "LambdaSender",
    "LambdaSenderArgs",
    "function_name_for",
]

TYPE = "serverless-mail:index:LambdaSender"

IDEMPOTENCY_TABLE_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
)
"""The item actions Powertools' DynamoDB idempotency layer uses, and nothing else."""

SERVICE_NAME = "serverless-mail-sender"
"""``POWERTOOLS_SERVICE_NAME``: the ``service`` key of every log line."""

REQUEUE_ACTIONS = ("sqs:SendMessage",)
"""Putting a deferred copy of a message back on its own queue (paced or throttled
sends, issue 11): a new message starts at receive count 0, so waiting never burns the
original's receives toward the DLQ."""

MAX_SEND_CONCURRENCY = 50
"""The handler's upper bound of ``EMAIL_SEND_CONCURRENCY`` (lambda_sender/config.py)."""


@strict_args
@dataclass(frozen=True, kw_only=True)
class LambdaSenderSettings:
    """What a stage may set on :class:`LambdaSender`; :class:`LambdaSenderArgs` adds the wiring."""

    timeout_seconds: int = field(default=30, metadata=rule(Int(1, 900)))
    """Function timeout, in seconds (1 to 900). Default: ``30``."""

    memory_mb: int = field(default=256, metadata=rule(Int(128, 10240)))
    """Function memory, in MB (128 to 10240). Default: ``256``."""

    batch_size: int = field(default=10, metadata=rule(Int(1, 10000)))
    """Messages per invocation (1 to 10000; above 10 needs a batching window).
    Default: ``10``."""

    batching_window_seconds: int = field(default=0, metadata=rule(Int(0, 300)))
    """How long the event source gathers a batch, in seconds (0 to 300). Default: ``0``."""

    maximum_concurrency: int = field(default=5, metadata=rule(Int(2, 1000)))
    """Most concurrent invocations the event source starts (2 to 1000); bounds the SES
    send rate. Default: ``5``."""

    reserved_concurrency: int | None = field(default=None, metadata=rule(Int(1, 1_000_000)))
    """Concurrency reserved for the function, at least ``maximum_concurrency``.
    Default: ``None`` (unreserved, from the account's pool)."""

    send_concurrency: int = field(default=10, metadata=rule(Int(1, MAX_SEND_CONCURRENCY)))
    """Sends in flight within one batch (1 to 50), ``EMAIL_SEND_CONCURRENCY``.
    Default: ``10``."""

    log_retention_days: int = field(
        default=30, metadata=rule(Choice(LOG_RETENTION_DAYS, "CloudWatch's retention values"))
    )
    """Retention of the function's log group, one of CloudWatch's values (1, 3, 5, 7,
    14, 30, 60, 90, … 3653). Default: ``30``."""

    point_in_time_recovery: bool = field(default=True, metadata=rule(Bool()))
    """Point-in-time recovery of the idempotency table. Default: ``True``."""

    architecture: Architecture = field(
        default="arm64", metadata=rule(Choice(get_args(Architecture)))
    )
    """Instruction set, ``"arm64"`` or ``"x86_64"``. Default: ``"arm64"`` (cheaper per
    GB-second)."""

    log_level: LogLevel = field(default="INFO", metadata=rule(Choice(get_args(LogLevel))))
    """``POWERTOOLS_LOG_LEVEL``. Default: ``"INFO"``."""


@strict_args
@dataclass(frozen=True, kw_only=True)
class LambdaSenderArgs(LambdaSenderSettings):
    """Arguments of :class:`LambdaSender`."""

    queue: EmailQueue
    """The queue the function consumes (its DLQ receives rejected messages). Required."""

    domain: EmailDomain
    """The SES domain the function sends as. Required."""

    default_from: str
    """Sender of messages that name none, on ``domain`` (``Name <addr>`` allowed).
    Required."""

    region: str
    """The AWS region the function runs in; picks the Powertools layer. Required."""

    max_send_rate: float | None = None
    """SES recipients per second this whole path may send (its share of
    ``ses.max_send_rate``); each instance gets ``max_send_rate / maximum_concurrency`` as
    ``EMAIL_MAX_SEND_RATE``. Default: ``None`` (no pacing)."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` on the first invalid field."""
        if not isinstance(self.queue, EmailQueue):
            raise ConfigError(
                f"`queue` must be an EmailQueue, but {type(self.queue).__name__} was provided"
            )
        if not isinstance(self.domain, EmailDomain):
            raise ConfigError(
                f"`domain` must be an EmailDomain, but {type(self.domain).__name__} was provided"
            )
        check_email("default_from", self.default_from, self.domain.domain, display_name=True)
        check_pattern("region", self.region, REGION_RE, "an AWS region code such as 'eu-west-1'")
        check_fields(self)
        if self.max_send_rate is not None:
            self._validate_send_rate(self.max_send_rate)
        if self.batch_size > 10 and self.batching_window_seconds < 1:
            # Lambda Developer Guide, "Using Lambda with Amazon SQS": batch sizes above
            # 10 require MaximumBatchingWindowInSeconds of at least 1.
            raise ConfigError(
                f"`batch_size` above 10 needs `batching_window_seconds` of at least 1, but "
                f"`batch_size` is {self.batch_size} and `batching_window_seconds` is "
                f"{self.batching_window_seconds}: set a window of 1 to 300 seconds or a "
                "batch size of at most 10"
            )
        if self.reserved_concurrency is not None:
            if self.reserved_concurrency < self.maximum_concurrency:
                raise ConfigError(
                    f"`reserved_concurrency` must be at least `maximum_concurrency` "
                    f"({self.maximum_concurrency}), but {self.reserved_concurrency} was "
                    "provided: the event source would start more invocations than the "
                    "function may run, and the throttled batches go back to the queue and "
                    "on to the DLQ; raise `reserved_concurrency` or lower "
                    "`maximum_concurrency`"
                )
        needed = derived_visibility_timeout(self.timeout_seconds, self.batching_window_seconds)
        if self.queue.visibility_timeout_seconds < needed:
            raise ConfigError(
                f"the queue's visibility timeout ({self.queue.visibility_timeout_seconds}) "
                f"must be at least {needed} (6 * `timeout_seconds` {self.timeout_seconds} + "
                f"`batching_window_seconds` {self.batching_window_seconds}), or messages "
                "are delivered again while a batch is still running: build the EmailQueue "
                "with `consumer_timeout_seconds` and `batching_window_seconds` equal to "
                "the sender's"
            )

    def _validate_send_rate(self, rate: float) -> None:
        if isinstance(rate, bool) or not isinstance(rate, int | float) or rate <= 0:
            raise ConfigError(
                f"`max_send_rate` must be a number of recipients per second above 0, but "
                f"{rate!r} was provided"
            )
        per_instance = instance_send_rate(rate, self.maximum_concurrency)
        if MAX_RECIPIENTS / per_instance > MAX_DELAY_SECONDS:
            raise ConfigError(
                f"`max_send_rate` ({rate:g}) / `maximum_concurrency` "
                f"({self.maximum_concurrency}) leaves each instance {per_instance:.3g} "
                f"recipients/s, so one message of {MAX_RECIPIENTS} recipients takes "
                f"{MAX_RECIPIENTS / per_instance:.0f} s, longer than the "
                f"{MAX_DELAY_SECONDS} s SQS can delay it: raise `max_send_rate` or lower "
                "`maximum_concurrency`"
            )


class LambdaSender(pulumi.ComponentResource):
    """Consumes the email queue and sends each message once through SES v2.

    Attributes:
        function: the Lambda function.
        role: its execution role (inline policies only, each on one ARN).
        table: the DynamoDB idempotency table.
        log_group: ``/aws/lambda/<function name>``, with retention.
        event_source_mapping: the SQS event source (partial batch responses).
        function_name / function_arn / role_arn / table_name: what callers usually need.
    """

    function: aws.lambda_.Function
    role: aws.iam.Role
    role_policies: list[aws.iam.RolePolicy]
    table: aws.dynamodb.Table
    log_group: aws.cloudwatch.LogGroup
    event_source_mapping: aws.lambda_.EventSourceMapping

    def __init__(
        self,
        name: str,
        args: LambdaSenderArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(TYPE, name, {}, opts)
        require_args(args, LambdaSenderArgs, "LambdaSender")
        args.validate()
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self._function_name = function_name_for(name)

        self._create_idempotency_table()
        self._create_function()

        self.function_name = self.function.name
        self.function_arn = self.function.arn
        self.role_arn = self.role.arn
        self.table_name = self.table.name
        self.register_outputs(
            {
                "function_name": self.function_name,
                "function_arn": self.function_arn,
                "role_arn": self.role_arn,
                "table_name": self.table_name,
                "log_group_name": self.log_group.name,
            }
        )

    def _create_idempotency_table(self) -> None:
        self.table = aws.dynamodb.Table(
            f"{self._name}-idempotency",
            billing_mode="PAY_PER_REQUEST",
            hash_key="id",
            attributes=[{"name": "id", "type": "S"}],
            ttl={"attribute_name": "expiration", "enabled": True},
            point_in_time_recovery={"enabled": self._args.point_in_time_recovery},
            server_side_encryption={"enabled": True},
            opts=self._child,
        )

    def _grants(self) -> list[Grant]:
        queue, domain = self._args.queue, self._args.domain
        grants: list[Grant] = [
            ("consume-queue", queue.grant_consume_messages()),
            ("dead-letter", queue.grant_dead_letter_send()),
            (
                "requeue",
                queue.arn.apply(
                    lambda arn: queue_statement("RequeueDeferred", REQUEUE_ACTIONS, arn)
                ),
            ),
            ("send-email", domain.grant_send_email()),
            ("idempotency", self.table.arn.apply(idempotency_table_statement)),
        ]
        # The handler both reads the queue and writes rejected messages to the DLQ, so
        # with a KMS key it needs to generate data keys as well as decrypt.
        key = queue.grant_encryption_key_use(send=True)
        if key is not None:
            grants.append(("queue-key", key))
        return grants

    def _create_function(self) -> None:
        args = self._args
        environment: dict[str, pulumi.Input[str]] = {
            "EMAIL_DEFAULT_FROM": args.default_from,
            "EMAIL_DOMAIN": args.domain.domain,
            "EMAIL_CONFIGURATION_SET": args.domain.configuration_set_name,
            "EMAIL_IDEMPOTENCY_TABLE": self.table.name,
            "EMAIL_DEAD_LETTER_QUEUE_URL": args.queue.dead_letter_queue_url,
            "EMAIL_SEND_CONCURRENCY": str(args.send_concurrency),
            "EMAIL_QUEUE_URL": args.queue.url,
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            "POWERTOOLS_LOG_LEVEL": args.log_level,
        }
        if args.max_send_rate is not None:
            # Each concurrent instance paces its own token bucket; together at most
            # `maximum_concurrency` of them run (the event source's scaling config).
            environment["EMAIL_MAX_SEND_RATE"] = format_rate(
                instance_send_rate(args.max_send_rate, args.maximum_concurrency)
            )
        built = create_queue_function(
            self,
            self._name,
            self._function_name,
            QueueFunctionSpec.of(
                args,
                package="lambda_sender",
                handler=HANDLER,
                description="serverless-mail: sends queued email through SES v2",
                role_description=f"Execution role of the {self._function_name} email sender",
                environment=environment,
                queue_arn=args.queue.arn,
                batching_window_seconds=args.batching_window_seconds,
                reserved_concurrency=args.reserved_concurrency,
            ),
            self._grants(),
        )
        self.log_group, self.role = built.log_group, built.role
        self.role_policies, self.function = built.role_policies, built.function
        self.event_source_mapping = built.event_source_mapping


def instance_send_rate(path_rate: float, maximum_concurrency: int) -> float:
    """One instance's share of the path's recipients per second."""
    return float(path_rate) / maximum_concurrency


def format_rate(rate: float) -> str:
    """A rate as the environment carries it: a decimal without float noise."""
    return f"{rate:.6g}"


def function_name_for(name: str) -> str:
    """``<project>-<stack>-<name>`` in Lambda's alphabet (letters, digits, _ and -), ≤ 64."""
    raw = f"{pulumi.get_project()}-{pulumi.get_stack()}-{name}"
    return re.sub(r"[^A-Za-z0-9_-]", "-", raw)[:64]


def idempotency_table_statement(table_arn: str) -> dict[str, Any]:
    """Item reads and writes on the idempotency table, nothing else."""
    return {
        "Sid": "IdempotencyRecords",
        "Effect": "Allow",
        "Action": list(IDEMPOTENCY_TABLE_ACTIONS),
        "Resource": table_arn,
    }
