"""The alarms every sending stack keeps, whatever else is on: SES reputation with a
volume guard, the send queue's oldest-message age, the Lambda sender's errors and
throttles, its daily-quota holds and sending pauses, and a CloudWatch dashboard.

They live apart from :class:`~serverless_mail.email_events.EmailEvents` because none of
them reads the events pipeline: SES publishes ``Reputation.*`` and ``Send`` for the
account whether or not events are published, and the sender's metrics are its own. So
the pipeline (queue, function, history, webhooks) can be switched off on a stage while
the pack's alarm rules (docs/policies.md) still hold. The pipeline's own alarms (events
queue age, events DLQ, events function) stay in EmailEvents, built with
:func:`metric_alarm` and the thresholds of :class:`EmailAlarmsSettings`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from .email_queue import EmailQueue
from .errors import ConfigError
from .lambda_sender import function_name_for
from .settings import Int, Number, check_fields, require_args, rule, strict_args
from .validation import is_unresolved

__all__ = [
    "METRICS_NAMESPACE",
    "SENDER_METRICS",
    "EmailAlarms",
    "EmailAlarmsArgs",
    "EmailAlarmsSettings",
    "dashboard_body",
    "guarded_rate_expression",
    "metric_alarm",
]

TYPE = "serverless-mail:index:EmailAlarms"

METRICS_NAMESPACE = "serverless-mail"
"""Where the Lambda sender publishes its own metrics (embedded metric format), with the
dimension ``service`` = its ``POWERTOOLS_SERVICE_NAME``."""

SENDER_METRICS = ("DailyQuotaHeld", "SendingPaused")
"""The sender's metrics that alarm: a message held for the account's daily quota, and a
send refused because SES paused sending (``SendingPausedException``,
``AccountSuspendedException``). Both are account states, so every stack of the account
that sends sees them."""

MOVED_CHILDREN = (
    "bounce-rate-warning",
    "bounce-rate-critical",
    "complaint-rate-warning",
    "complaint-rate-critical",
    "send-queue-age",
    "sender-function-errors",
    "sender-function-throttles",
    "dashboard",
)
"""The children that were the EmailEvents' (``<events name>-<key>``) until 0.1.0."""

REVIEW_RATES = {"BounceRate": 0.05, "ComplaintRate": 0.001}
"""AWS reviews an account at 5% bounces or 0.1% complaints (SES Developer Guide,
"Amazon SES sending review process FAQs")."""


RATE = Number(0, 1, example_invalid=1.5, hint="a rate: 0.05 is 5%")
"""A rate such as ``0.05`` (5%): a number above 0 and at most 1."""


@dataclass(frozen=True)
class Period(Int):
    """A CloudWatch alarm period: a multiple of 60 seconds in ``[low, high]``."""

    def check(self, key: str, value: Any) -> None:
        super().check(key, value)
        if not is_unresolved(value) and value % 60:
            raise ConfigError(
                f"`{key}` must be a multiple of 60 seconds (CloudWatch alarm periods), "
                f"but {value} was provided"
            )

    def describe(self) -> str:
        return f"integer, {self.low} to {self.high}, a multiple of 60"


@strict_args
@dataclass(frozen=True, kw_only=True)
class EmailAlarmsSettings:
    """What a stage may set on :class:`EmailAlarms` (and on the events pipeline's own
    alarms); :class:`EmailAlarmsArgs` adds the wiring."""

    bounce_rate_warning: float = field(default=0.02, metadata=rule(RATE))
    """``Reputation.BounceRate`` (above 0, at most 1) that raises the warning alarm.
    Default: ``0.02`` (2%; AWS reviews an account at 5%)."""

    bounce_rate_critical: float = field(default=0.05, metadata=rule(RATE))
    """``Reputation.BounceRate`` that raises the critical alarm; above the warning.
    Default: ``0.05`` (AWS's review threshold)."""

    complaint_rate_warning: float = field(default=0.0005, metadata=rule(RATE))
    """``Reputation.ComplaintRate`` (above 0, at most 1) that raises the warning alarm.
    Default: ``0.0005`` (0.05%; AWS reviews an account at 0.1%)."""

    complaint_rate_critical: float = field(default=0.001, metadata=rule(RATE))
    """``Reputation.ComplaintRate`` that raises the critical alarm; above the warning.
    Default: ``0.001`` (AWS's review threshold)."""

    reputation_min_sends: int = field(default=100, metadata=rule(Int(1, 1_000_000)))
    """Sends in the reputation period below which the rate alarms stay quiet (1 to
    1000000): one bounce in ten sends is not a page. Default: ``100``."""

    reputation_period_seconds: int = field(default=3600, metadata=rule(Period(300, 86400)))
    """Period of the reputation alarms and their volume guard, in seconds (300 to 86400,
    a multiple of 60). Default: ``3600``."""

    send_queue_age_seconds: int = field(default=900, metadata=rule(Int(60, 1_209_600)))
    """Age of the oldest message on the send queue that raises an alarm, in seconds (60
    to 1209600). Default: ``900`` (15 minutes)."""

    lambda_errors_threshold: int = field(default=1, metadata=rule(Int(1, 100_000)))
    """Errors of a function per alarm period that raise an alarm, for each function (1
    to 100000). Default: ``1`` (records fail one by one, so an invocation error is a bug)."""

    lambda_throttles_threshold: int = field(default=1, metadata=rule(Int(1, 100_000)))
    """Throttles of a function per alarm period that raise an alarm (1 to 100000).
    Default: ``1``."""

    daily_quota_held_threshold: int = field(default=1, metadata=rule(Int(1, 100_000)))
    """Messages the Lambda sender holds for the SES daily quota per alarm period that
    raise an alarm (1 to 100000). Default: ``1`` (the quota is used up: every later
    message waits)."""

    alarm_period_seconds: int = field(default=300, metadata=rule(Period(60, 3600)))
    """Period of the queue-age, function and sender alarms, in seconds (60 to 3600, a
    multiple of 60). Default: ``300``."""

    def check(self) -> None:
        """Raise :class:`ConfigError` on the first invalid field."""
        check_fields(self)
        for rate in ("bounce_rate", "complaint_rate"):
            warning, critical = getattr(self, f"{rate}_warning"), getattr(self, f"{rate}_critical")
            if warning >= critical:
                raise ConfigError(
                    f"`{rate}_warning` must be below `{rate}_critical` ({critical}), but "
                    f"{warning} was provided: the warning comes first"
                )


@strict_args
@dataclass(frozen=True, kw_only=True)
class EmailAlarmsArgs(EmailAlarmsSettings):
    """Arguments of :class:`EmailAlarms`."""

    region: str
    """The AWS region the dashboard shows. Required."""

    alarm_topic_arn: pulumi.Input[str]
    """The SNS topic every alarm notifies (EmailQueue's ``alarm_topic``). Required."""

    send_queue: EmailQueue
    """The email queue: its oldest-message age and its DLQ on the dashboard. Required."""

    sender_function_name: pulumi.Input[str] | None = None
    """The Lambda sender's function name, for its error and throttle alarms. Default:
    ``None`` (the Lambda path is off: no sender alarms)."""

    sender_service: str | None = None
    """The Lambda sender's ``POWERTOOLS_SERVICE_NAME``, the ``service`` dimension of its
    :data:`SENDER_METRICS`. Default: ``None`` (no daily-quota or sending-paused alarm)."""

    events: dict[str, pulumi.Input[str]] | None = None
    """The events pipeline's ``queue``, ``dlq`` and ``function`` names, shown on the
    dashboard beside the send path. Default: ``None`` (the pipeline is off)."""

    moved_from: tuple[str, pulumi.Input[str]] | None = None
    """``(name, URN)`` of the component these alarms and the dashboard belonged to
    before (the ``EmailEvents`` of 0.1.0): each child gets an alias, so an update moves
    it instead of replacing it. Default: ``None``."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` on the first invalid field."""
        if not isinstance(self.send_queue, EmailQueue):
            raise ConfigError(
                "`send_queue` must be an EmailQueue, but "
                f"{type(self.send_queue).__name__} was provided"
            )
        self.check()


class EmailAlarms(pulumi.ComponentResource):
    """The stack's always-on alarms and its dashboard.

    Attributes:
        alarms: every alarm, by a short key (``bounce-rate-critical``, ...).
        dashboard: the CloudWatch dashboard.
        dashboard_name: its name.
    """

    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    dashboard: aws.cloudwatch.Dashboard

    def __init__(
        self,
        name: str,
        args: EmailAlarmsArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(TYPE, name, {}, opts)
        require_args(args, EmailAlarmsArgs, "EmailAlarms")
        args.validate()
        self._name = name
        self._args = args
        self.alarms = {}

        self._create_reputation_alarms()
        self._create_send_queue_alarm()
        self._create_sender_alarms()
        self._create_dashboard()

        self.dashboard_name = self.dashboard.dashboard_name
        self.register_outputs({"dashboard_name": self.dashboard_name})

    def _child(self, key: str) -> pulumi.ResourceOptions:
        """Options of the child ``key``: parented here, aliased to where it was before."""
        moved = self._args.moved_from
        aliases = None
        if moved is not None and key in MOVED_CHILDREN:
            aliases = [pulumi.Alias(name=f"{moved[0]}-{key}", parent=moved[1])]
        return pulumi.ResourceOptions(parent=self, aliases=aliases)

    def _alarm(self, key: str, **alarm: Any) -> None:
        self.alarms[key] = metric_alarm(
            f"{self._name}-{key}", self._args.alarm_topic_arn, self._child(key), **alarm
        )

    def _create_reputation_alarms(self) -> None:
        args = self._args
        period = args.reputation_period_seconds
        for metric, what in (("BounceRate", "bounce"), ("ComplaintRate", "complaint")):
            for level in ("warning", "critical"):
                threshold = getattr(args, f"{what}_rate_{level}")
                self._alarm(
                    f"{what}-rate-{level}",
                    description=(
                        f"{level.upper()}: the account's SES Reputation.{metric} is at least "
                        f"{threshold:g} while at least {args.reputation_min_sends} messages "
                        f"were sent in {period}s. AWS reviews an account at 5% bounces or "
                        "0.1% complaints: see README, Operations."
                    ),
                    threshold=threshold,
                    metric_queries=reputation_queries(metric, period, args.reputation_min_sends),
                )

    def _create_send_queue_alarm(self) -> None:
        args = self._args
        self._alarm(
            "send-queue-age",
            **queue_age_alarm(
                args.send_queue.name,
                args.send_queue_age_seconds,
                "email",
                args.alarm_period_seconds,
            ),
        )

    def _create_sender_alarms(self) -> None:
        args = self._args
        if args.sender_function_name is not None:
            for metric, threshold in (
                ("Errors", args.lambda_errors_threshold),
                ("Throttles", args.lambda_throttles_threshold),
            ):
                self._alarm(
                    f"sender-function-{metric.lower()}",
                    **function_alarm("sender", args.sender_function_name, metric, threshold, args),
                )
        if args.sender_service is None:
            return
        self._alarm(
            "daily-quota-held",
            description=(
                "The Lambda sender held messages because the account's SES daily sending "
                f"quota is used up (at least {args.daily_quota_held_threshold} in "
                f"{args.alarm_period_seconds}s): they wait on the queue and go out as the "
                "24-hour window moves; ask AWS for a higher quota. See README, Operations."
            ),
            namespace=METRICS_NAMESPACE,
            metric_name="DailyQuotaHeld",
            dimensions={"service": args.sender_service},
            statistic="Sum",
            period=args.alarm_period_seconds,
            threshold=args.daily_quota_held_threshold,
        )
        self._alarm(
            "sending-paused",
            description=(
                "SES refused a send because sending is paused for the account or the "
                "configuration set (SendingPausedException or AccountSuspendedException): "
                "the messages are in the DLQ with that reason. Resolve the pause in the SES "
                "console, then redrive the DLQ. See README, Operations."
            ),
            namespace=METRICS_NAMESPACE,
            metric_name="SendingPaused",
            dimensions={"service": args.sender_service},
            statistic="Sum",
            period=60,
            threshold=1,
        )

    def _create_dashboard(self) -> None:
        args = self._args
        events = args.events or {}
        names = pulumi.Output.all(
            send_queue=args.send_queue.name,
            send_dlq=args.send_queue.dead_letter_queue.name,
            sender=args.sender_function_name,
            queue=events.get("queue"),
            dlq=events.get("dlq"),
            function=events.get("function"),
        )
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{self._name}-dashboard",
            dashboard_name=function_name_for(f"{self._name}-dashboard"),
            dashboard_body=names.apply(lambda n: json.dumps(dashboard_body(args.region, n))),
            opts=self._child("dashboard"),
        )


def metric_alarm(
    name: str,
    topic_arn: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
    *,
    description: str,
    threshold: float,
    metric_queries: list[Any] | None = None,
    **metric: Any,
) -> aws.cloudwatch.MetricAlarm:
    """An alarm at or above ``threshold`` over one period, notifying ``topic_arn`` on
    alarm and on recovery. Missing data (no sends, no traffic) is not an incident.

    ``metric`` is ``namespace``, ``metric_name``, ``dimensions``, ``statistic`` and
    ``period``; or pass ``metric_queries`` instead.
    """
    return aws.cloudwatch.MetricAlarm(
        name,
        alarm_description=description,
        comparison_operator="GreaterThanOrEqualToThreshold",
        evaluation_periods=1,
        threshold=threshold,
        treat_missing_data="notBreaching",
        metric_queries=metric_queries,
        alarm_actions=[topic_arn],
        ok_actions=[topic_arn],
        opts=opts,
        **metric,
    )


def queue_age_alarm(
    queue_name: pulumi.Input[str], threshold: int, what: str, period: int
) -> dict[str, Any]:
    """The :func:`metric_alarm` arguments for a queue's oldest-message age."""
    return {
        "description": (
            f"The oldest {what} message has waited at least {threshold}s: the consumer "
            "is stopped, throttled or failing, and messages expire at the queue's "
            "retention. See README, Operations."
        ),
        "namespace": "AWS/SQS",
        "metric_name": "ApproximateAgeOfOldestMessage",
        "dimensions": {"QueueName": queue_name},
        "statistic": "Maximum",
        "period": period,
        "threshold": threshold,
    }


def function_alarm(
    label: str,
    function_name: pulumi.Input[str],
    metric: str,
    threshold: int,
    settings: EmailAlarmsSettings,
) -> dict[str, Any]:
    """The :func:`metric_alarm` arguments for a function's ``Errors`` or ``Throttles``."""
    period = settings.alarm_period_seconds
    return {
        "description": (
            f"The {label} function reported {metric.lower()} (at least {threshold} "
            f"in {period}s): see README, Operations."
        ),
        "namespace": "AWS/Lambda",
        "metric_name": metric,
        "dimensions": {"FunctionName": function_name},
        "statistic": "Sum",
        "period": period,
        "threshold": threshold,
    }


def reputation_queries(metric: str, period: int, min_sends: int) -> list[Any]:
    """Metric math for a reputation rate that reads 0 below ``min_sends`` sends."""
    return [
        {
            "id": "rate",
            "metric": {
                "namespace": "AWS/SES",
                "metric_name": f"Reputation.{metric}",
                "period": period,
                "stat": "Maximum",
            },
            "return_data": False,
        },
        {
            "id": "sends",
            "metric": {
                "namespace": "AWS/SES",
                "metric_name": "Send",
                "period": period,
                "stat": "Sum",
            },
            "return_data": False,
        },
        {
            "id": "guarded",
            "expression": guarded_rate_expression(min_sends),
            "label": f"{metric} when sends >= {min_sends}",
            "return_data": True,
        },
    ]


def guarded_rate_expression(min_sends: int) -> str:
    """Metric math: the rate, or 0 while fewer than ``min_sends`` were sent in the
    period (CloudWatch User Guide, "Using metric math": ``IF``)."""
    return f"IF(sends >= {min_sends}, rate, 0)"


def dashboard_body(region: str, names: dict[str, str | None]) -> dict[str, Any]:
    """The dashboard: send volume, delivery, rates, queue ages, DLQ depths, functions.

    ``names``: ``send_queue``, ``send_dlq``, ``sender``, and the events pipeline's
    ``queue``, ``dlq`` and ``function`` (``None`` for what does not exist).
    """

    def widget(title: str, metrics: list[list[Any]], y: int, x: int, **props: Any) -> dict:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": 12,
            "height": 6,
            "properties": {
                "title": title,
                "region": region,
                "view": "timeSeries",
                "metrics": metrics,
                **props,
            },
        }

    def per_queue(metric: str, keys: tuple[str, str]) -> list[list[Any]]:
        return [
            ["AWS/SQS", metric, "QueueName", names[k], {"stat": "Maximum", "label": k}]
            for k in keys
            if names.get(k)
        ]

    functions = [k for k in ("function", "sender") if names.get(k)]
    widgets = [
        widget(
            "SES send volume and delivery",
            [
                ["AWS/SES", m, {"stat": "Sum", "label": m}]
                for m in ("Send", "Delivery", "Bounce", "Complaint", "Reject")
            ],
            0,
            0,
            period=300,
        ),
        widget(
            "SES reputation: bounce and complaint rates",
            [
                ["AWS/SES", "Reputation.BounceRate", {"stat": "Maximum"}],
                ["AWS/SES", "Reputation.ComplaintRate", {"stat": "Maximum"}],
            ],
            0,
            12,
            period=3600,
            annotations={
                "horizontal": [
                    {"label": "AWS review: bounces", "value": REVIEW_RATES["BounceRate"]},
                    {"label": "AWS review: complaints", "value": REVIEW_RATES["ComplaintRate"]},
                ]
            },
        ),
        widget(
            "Oldest message age (s)",
            per_queue("ApproximateAgeOfOldestMessage", ("send_queue", "queue")),
            6,
            0,
            period=60,
        ),
        widget(
            "Dead-letter queue depth",
            per_queue("ApproximateNumberOfMessagesVisible", ("send_dlq", "dlq")),
            6,
            12,
            period=60,
        ),
    ]
    if functions:
        widgets.append(
            widget(
                "Function errors and throttles",
                [
                    [
                        "AWS/Lambda",
                        m,
                        "FunctionName",
                        names[k],
                        {"stat": "Sum", "label": f"{k} {m}"},
                    ]
                    for k in functions
                    for m in ("Errors", "Throttles")
                ],
                12,
                0,
                period=300,
            )
        )
    return {"widgets": widgets}
