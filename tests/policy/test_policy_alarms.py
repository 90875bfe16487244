"""The alarms the pack requires on every stage (issue 12), judged by classes.

Each case is an insecure program and its secure twin (the same stack with the alarm
written right), run on both entry points: :func:`evaluate` on the recording (the offline
plan) and pulumi_policy's analyzer servicer (``pulumi preview --policy-pack``). Classes
cover every way the same alarm can be written (a single metric or metric math, the guard
directly or through another expression) and the near misses (another queue, another
metric, a percent threshold, a guard that is not returned).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
from pulumi.runtime import proto
from serverless_mail.mocking import ACCOUNT_ID, UNKNOWN, Recording
from serverless_mail.policies import POLICIES, evaluate

from tests.policy.alarms import (
    alarm_topic,
    consumer_alarms,
    dlq_depth_alarm,
    guarded_queries,
    math_alarm,
    metric_alarm,
    queue_name,
    reputation_alarms,
    ses_metric,
)

Program = Callable[[], Any]
RULES = {p.name: p for p in POLICIES}


# --- Programs -------------------------------------------------------------------------


def ses_stack(
    *,
    bounce: dict[str, Any] | None = None,
    complaint: dict[str, Any] | None = None,
    replace_bounce: Callable[[aws.sns.Topic], Any] | None = None,
) -> Program:
    """An SES configuration set with its reputation alarms; ``bounce`` /
    ``complaint`` override one alarm's inputs, ``replace_bounce`` writes the bounce
    alarm itself (or none, when it returns without creating one)."""

    def program() -> None:
        # A configuration set alone makes it a sending stack (an identity would also
        # need its DNS records, which are another rule's business).
        aws.sesv2.ConfigurationSet(
            "config",
            configuration_set_name="mail",
            delivery_options={"tls_policy": "REQUIRE"},
            suppression_options={"suppressed_reasons": ["BOUNCE", "COMPLAINT"]},
        )
        topic = alarm_topic()
        if replace_bounce is None:
            reputation_alarms(topic, bounce=bounce, complaint=complaint)
            return
        replace_bounce(topic)
        math_alarm(
            "complaint-rate",
            topic,
            guarded_queries("Reputation.ComplaintRate"),
            threshold=0.001,
        )

    return program


def guarded(*queries: dict[str, Any], threshold: float = 0.05) -> Callable[[aws.sns.Topic], Any]:
    return lambda topic: math_alarm("bounce-rate", topic, list(queries), threshold=threshold)


RATE = ses_metric("rate", "Reputation.BounceRate", "Maximum")
SENDS = ses_metric("sends", "Send", "Sum")


def consumer_stack(
    *,
    skip: tuple[str, ...] = (),
    depth: bool = True,
    extra: Callable[[aws.sqs.Queue, aws.sqs.Queue, aws.sns.Topic], Any] | None = None,
) -> Program:
    """A queue with its DLQ consumed by a function, with the alarms the pack wants
    (``skip``: ``age``, ``Errors``, ``Throttles``; ``depth``: the DLQ's), plus ``extra``."""

    def program() -> None:
        dlq = aws.sqs.Queue(
            "dlq", message_retention_seconds=1_209_600, sqs_managed_sse_enabled=True
        )
        queue = aws.sqs.Queue(
            "main",
            sqs_managed_sse_enabled=True,
            visibility_timeout_seconds=180,
            redrive_policy=pulumi.Output.json_dumps(
                {"deadLetterTargetArn": dlq.arn, "maxReceiveCount": 5}
            ),
        )
        fn = aws.lambda_.Function(
            "sender",
            name="sender",
            role=f"arn:aws:iam::{ACCOUNT_ID}:role/sender",
            runtime="python3.12",
            handler="handler.handler",
            code=pulumi.AssetArchive({}),
            timeout=30,
            architectures=["arm64"],
        )
        aws.cloudwatch.LogGroup("logs", name="/aws/lambda/sender", retention_in_days=30)
        aws.lambda_.EventSourceMapping(
            "source",
            event_source_arn=queue.arn,
            function_name=fn.arn,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config={"maximum_concurrency": 5},
        )
        topic = alarm_topic()
        if depth:
            dlq_depth_alarm(queue, topic)
        consumer_alarms(queue, "sender", topic, skip=skip)
        if extra is not None:
            extra(queue, dlq, topic)

    return program


def age_by_math(queue: aws.sqs.Queue, _: aws.sqs.Queue, topic: aws.sns.Topic) -> None:
    math_alarm(
        "queue-age-math",
        topic,
        [
            {
                "id": "age",
                "metric": {
                    "namespace": "AWS/SQS",
                    "metric_name": "ApproximateAgeOfOldestMessage",
                    "dimensions": {"QueueName": queue_name(queue.arn)},
                    "period": 300,
                    "stat": "Maximum",
                },
                "return_data": True,
            }
        ],
        threshold=900,
    )


def errors_by_math(_: aws.sqs.Queue, __: aws.sqs.Queue, topic: aws.sns.Topic) -> None:
    math_alarm(
        "errors-math",
        topic,
        [
            {
                "id": "errors",
                "metric": {
                    "namespace": "AWS/Lambda",
                    "metric_name": "Errors",
                    "dimensions": {"FunctionName": "sender"},
                    "period": 300,
                    "stat": "Sum",
                },
                "return_data": False,
            },
            {"id": "any", "expression": "FILL(errors, 0)", "return_data": True},
        ],
    )


def on_queue(which: str, metric: str) -> Callable[..., Any]:
    def extra(queue: aws.sqs.Queue, dlq: aws.sqs.Queue, topic: aws.sns.Topic) -> None:
        target = queue if which == "main" else dlq
        metric_alarm(
            f"{which}-{metric}", topic, "AWS/SQS", metric, {"QueueName": queue_name(target.arn)}
        )

    return extra


def on_function(name: str, metric: str) -> Callable[..., Any]:
    def extra(_: aws.sqs.Queue, __: aws.sqs.Queue, topic: aws.sns.Topic) -> None:
        metric_alarm(f"{name}-{metric}", topic, "AWS/Lambda", metric, {"FunctionName": name})

    return extra


def alarm_with(**inputs: Any) -> Program:
    def program() -> None:
        topic = alarm_topic()
        rest = dict(inputs)  # a program runs once per entry point
        actions = rest.pop("actions", None)
        metric_alarm(
            "depth",
            actions(topic) if callable(actions) else [topic.arn],
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            {"QueueName": "elsewhere"},
            **{k: v() if callable(v) else v for k, v in rest.items()},
        )

    return program


def composite(actions: Callable[[aws.sns.Topic], Any]) -> Program:
    def program() -> None:
        topic = alarm_topic()
        aws.cloudwatch.CompositeAlarm(
            "both",
            alarm_name="both",
            alarm_rule='ALARM("a") AND ALARM("b")',
            alarm_actions=actions(topic),
        )

    return program


def events_destination(subscribe: str | None) -> Program:
    """A configuration set publishing to a topic; ``subscribe`` names which topic the
    stack's subscription is on (``events``, ``other``) or ``None``."""

    def program() -> None:
        topics = {"events": aws.sns.Topic("events"), "other": aws.sns.Topic("other")}
        aws.sesv2.ConfigurationSetEventDestination(
            "destination",
            configuration_set_name="mail",
            event_destination_name="events",
            event_destination={
                "enabled": True,
                "matching_event_types": ["BOUNCE", "COMPLAINT", "DELIVERY"],
                "sns_destination": {"topic_arn": topics["events"].arn},
            },
        )
        if subscribe is not None:
            aws.sns.TopicSubscription(
                "subscription",
                topic=topics[subscribe].arn,
                protocol="sqs",
                endpoint=f"arn:aws:sqs:eu-west-1:{ACCOUNT_ID}:events",
                raw_message_delivery=True,
            )

    return program


# --- Cases ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    rule: str
    insecure: Program
    secure: Program
    message: str
    """A part of the insecure program's message that says what to change."""


CASES: list[Case] = [
    # --- SES reputation: threshold, guard, action, direction -------------------
    Case(
        "reputation-none",
        "ses-reputation-alarms",
        ses_stack(replace_bounce=lambda topic: None),
        ses_stack(),
        "No CloudWatch alarm watches AWS/SES Reputation.BounceRate: add one at or below 0.05",
    ),
    Case(
        "reputation-single-metric-unguarded",
        "ses-reputation-alarms",
        ses_stack(
            replace_bounce=lambda topic: metric_alarm(
                "bounce-rate", topic, "AWS/SES", "Reputation.BounceRate", threshold=0.05
            )
        ),
        ses_stack(),
        "it has no minimum-volume guard: use metric math",
    ),
    Case(
        "reputation-threshold-as-percent",
        "ses-reputation-alarms",
        ses_stack(bounce={"threshold": 5}),
        ses_stack(bounce={"threshold": 0.05}),
        "its threshold 5 is above 0.05 (the metric is a fraction: 0.05 is 5%",
    ),
    Case(
        "reputation-at-the-pause-level",
        "ses-reputation-alarms",
        ses_stack(bounce={"threshold": 0.1}),
        ses_stack(bounce={"threshold": 0.02}),
        "its threshold 0.1 is above 0.05",
    ),
    Case(
        "complaints-at-the-pause-level",
        "ses-reputation-alarms",
        ses_stack(complaint={"threshold": 0.005}),
        ses_stack(complaint={"threshold": 0.0005}),
        "Alarm complaint-rate on AWS/SES Reputation.ComplaintRate does not guard the "
        "account: its threshold 0.005 is above 0.001",
    ),
    Case(
        "reputation-guard-on-another-metric",
        "ses-reputation-alarms",
        ses_stack(
            replace_bounce=guarded(
                RATE,
                ses_metric("sends", "Delivery", "Sum"),
                {"id": "g", "expression": "IF(sends >= 100, rate, 0)", "return_data": True},
            )
        ),
        ses_stack(
            replace_bounce=guarded(
                RATE,
                SENDS,
                {"id": "g", "expression": "IF(sends >= 100, rate, 0)", "return_data": True},
            )
        ),
        "it has no minimum-volume guard",
    ),
    Case(
        "reputation-guard-not-returned",
        "ses-reputation-alarms",
        ses_stack(
            replace_bounce=guarded(
                {**RATE, "return_data": True},
                SENDS,
                {"id": "g", "expression": "IF(sends >= 100, rate, 0)", "return_data": False},
            )
        ),
        # The guard through a second expression counts.
        ses_stack(
            replace_bounce=guarded(
                RATE,
                SENDS,
                {"id": "volume", "expression": "FILL(sends, 0)", "return_data": False},
                {"id": "g", "expression": "IF(volume >= 100, rate, 0)", "return_data": True},
            )
        ),
        "it has no minimum-volume guard",
    ),
    Case(
        "reputation-guard-ignores-the-rate",
        "ses-reputation-alarms",
        ses_stack(
            replace_bounce=guarded(
                RATE, SENDS, {"id": "g", "expression": "sends", "return_data": True}
            )
        ),
        ses_stack(replace_bounce=guarded(*guarded_queries("Reputation.BounceRate"))),
        "it has no minimum-volume guard",
    ),
    Case(
        "reputation-without-actions",
        "ses-reputation-alarms",
        ses_stack(bounce={"alarm_actions": []}),
        ses_stack(),
        "it has no alarm_actions, so nobody is told",
    ),
    Case(
        "reputation-alarms-when-low",
        "ses-reputation-alarms",
        ses_stack(bounce={"comparison_operator": "LessThanThreshold"}),
        ses_stack(bounce={"comparison_operator": "GreaterThanThreshold"}),
        "its comparison_operator 'LessThanThreshold' does not alarm on a high rate",
    ),
    # --- The age of the consumed queue -----------------------------------------
    Case(
        "queue-age-missing",
        "sqs-consumed-queue-age-alarm",
        consumer_stack(skip=("age",)),
        consumer_stack(),
        "feeds a Lambda function but no alarm watches its ApproximateAgeOfOldestMessage",
    ),
    Case(
        "queue-age-on-the-dlq",
        "sqs-consumed-queue-age-alarm",
        consumer_stack(skip=("age",), extra=on_queue("dlq", "ApproximateAgeOfOldestMessage")),
        consumer_stack(skip=("age",), extra=on_queue("main", "ApproximateAgeOfOldestMessage")),
        "no alarm watches its ApproximateAgeOfOldestMessage",
    ),
    Case(
        "queue-depth-is-not-age",
        "sqs-consumed-queue-age-alarm",
        consumer_stack(skip=("age",), extra=on_queue("main", "ApproximateNumberOfMessagesVisible")),
        consumer_stack(skip=("age",), extra=age_by_math),
        "no alarm watches its ApproximateAgeOfOldestMessage",
    ),
    # --- DLQ depth -------------------------------------------------------------
    Case(
        "dlq-depth-missing",
        "sqs-dlq-depth-alarm",
        consumer_stack(depth=False),
        consumer_stack(),
        "(of main) has no depth alarm",
    ),
    Case(
        "dlq-sent-count-is-not-depth",
        "sqs-dlq-depth-alarm",
        consumer_stack(depth=False, extra=on_queue("dlq", "NumberOfMessagesSent")),
        consumer_stack(depth=False, extra=on_queue("dlq", "ApproximateNumberOfMessagesVisible")),
        "has no depth alarm",
    ),
    Case(
        "dlq-depth-on-the-main-queue",
        "sqs-dlq-depth-alarm",
        consumer_stack(depth=False, extra=on_queue("main", "ApproximateNumberOfMessagesVisible")),
        consumer_stack(),
        "has no depth alarm",
    ),
    # --- Lambda errors and throttles -------------------------------------------
    Case(
        "function-errors-missing",
        "lambda-errors-and-throttles-alarms",
        consumer_stack(skip=("Errors",)),
        consumer_stack(skip=("Errors",), extra=errors_by_math),
        "Function sender (sender) has no alarm on AWS/Lambda Errors:",
    ),
    Case(
        "function-both-missing",
        "lambda-errors-and-throttles-alarms",
        consumer_stack(skip=("Errors", "Throttles")),
        consumer_stack(),
        "has no alarm on AWS/Lambda Errors and Throttles",
    ),
    Case(
        "function-alarms-on-another-function",
        "lambda-errors-and-throttles-alarms",
        consumer_stack(skip=("Throttles",), extra=on_function("other", "Throttles")),
        consumer_stack(skip=("Throttles",), extra=on_function("sender", "Throttles")),
        "has no alarm on AWS/Lambda Throttles",
    ),
    # --- Alarm actions ---------------------------------------------------------
    Case(
        "alarm-actions-empty",
        "cloudwatch-alarm-actions-to-stack-topic",
        alarm_with(actions=lambda topic: []),
        alarm_with(),
        "Alarm depth notifies no SNS topic of the stack (alarm_actions empty)",
    ),
    Case(
        "alarm-ok-actions-only",
        "cloudwatch-alarm-actions-to-stack-topic",
        alarm_with(actions=lambda topic: [], ok_actions=lambda: [alarm_topic("ok").arn]),
        alarm_with(ok_actions=lambda: [alarm_topic("ok").arn]),
        "notifies no SNS topic of the stack",
    ),
    Case(
        "alarm-topic-from-elsewhere",
        "cloudwatch-alarm-actions-to-stack-topic",
        alarm_with(actions=lambda topic: [f"arn:aws:sns:eu-west-1:{ACCOUNT_ID}:elsewhere"]),
        alarm_with(
            actions=lambda topic: [f"arn:aws:sns:eu-west-1:{ACCOUNT_ID}:elsewhere", topic.arn]
        ),
        "notifies no SNS topic of the stack (alarm_actions ['arn:aws:sns:eu-west-1:",
    ),
    Case(
        "composite-without-actions",
        "cloudwatch-alarm-actions-to-stack-topic",
        composite(lambda topic: []),
        composite(lambda topic: [topic.arn]),
        "Alarm both notifies no SNS topic of the stack",
    ),
    # --- The SES events topic --------------------------------------------------
    Case(
        "events-topic-without-subscriber",
        "ses-events-topic-subscribed",
        events_destination(None),
        events_destination("events"),
        "but nothing subscribes to it, so bounces and complaints are lost",
    ),
    Case(
        "events-subscriber-on-another-topic",
        "ses-events-topic-subscribed",
        events_destination("other"),
        events_destination("events"),
        "nothing subscribes to it",
    ),
]

ALARM_RULES = {
    "ses-reputation-alarms",
    "ses-events-topic-subscribed",
    "sqs-consumed-queue-age-alarm",
    "sqs-dlq-depth-alarm",
    "lambda-errors-and-throttles-alarms",
    "cloudwatch-alarm-actions-to-stack-topic",
}


def test_every_alarm_rule_has_classes_and_ids_are_unique() -> None:
    assert {c.rule for c in CASES} == ALARM_RULES
    assert ALARM_RULES <= set(RULES)
    assert all(RULES[r].enforcement_level.value == "mandatory" for r in ALARM_RULES)
    assert len({c.id for c in CASES}) == len(CASES)


def params() -> list[Any]:
    return [pytest.param(c, id=c.id) for c in CASES]


@pytest.mark.parametrize("case", params())
def test_insecure_input_is_caught_by_evaluate(case: Case, run: Callable[..., Recording]) -> None:
    violations = evaluate(run(case.insecure), [RULES[case.rule]], stack_outputs=False)
    assert violations, f"{case.rule} missed {case.id}"
    assert {(v.policy, v.level) for v in violations} == {(case.rule, "mandatory")}
    assert any(case.message in v.message for v in violations), violations


@pytest.mark.parametrize("case", params())
def test_insecure_input_is_caught_by_the_analyzer(
    case: Case, run: Callable[..., Recording], analyze: Callable[[Recording], list[Any]]
) -> None:
    diagnostics = [d for d in analyze(run(case.insecure)) if d.policyName == case.rule]
    assert any(case.message in d.message for d in diagnostics), diagnostics
    assert {d.enforcementLevel for d in diagnostics} == {proto.MANDATORY}


@pytest.mark.parametrize("case", params())
def test_secure_twin_passes_the_whole_pack(
    case: Case, run: Callable[..., Recording], analyze: Callable[[Recording], list[Any]]
) -> None:
    recording = run(case.secure)
    assert evaluate(recording) == []
    assert [(d.policyName, d.message) for d in analyze(recording)] == []


def test_a_stack_without_ses_needs_no_reputation_alarm(run: Callable[..., Recording]) -> None:
    assert evaluate(run(consumer_stack())) == []


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_each_rule_guards_the_real_stage(
    stack: str, stack_recordings: dict[str, Recording]
) -> None:
    # GIVEN the real stage without one of the alarms (or the events subscription)
    from dataclasses import replace

    recording = stack_recordings[stack]
    removed = {
        "ses-reputation-alarms": "mail-alarms-bounce-rate-",
        "sqs-consumed-queue-age-alarm": "mail-alarms-send-queue-age",
        "sqs-dlq-depth-alarm": "mail-queue-dlq-alarm",
        "lambda-errors-and-throttles-alarms": "mail-alarms-sender-function-throttles",
        "ses-events-topic-subscribed": "mail-events-subscription",
    }
    for rule, prefix in removed.items():
        kept = [r for r in recording.resources if not r.name.startswith(prefix)]
        assert len(kept) < len(recording.resources), prefix
        violations = [v for v in evaluate(replace(recording, resources=kept), stack_outputs=False)]
        # THEN exactly that rule reports it
        assert {v.policy for v in violations} == {rule}, (prefix, violations)
    # AND an alarm pointed at nobody is caught too
    resources = [
        replace(
            r,
            inputs={**r.inputs, "alarmActions": []},
            outputs={**r.outputs, "alarmActions": []},
        )
        if r.name == "mail-events-queue-age"
        else r
        for r in recording.resources
    ]
    violations = evaluate(replace(recording, resources=resources), stack_outputs=False)
    assert [(v.policy, v.urn.rsplit("::", 1)[1]) for v in violations] == [
        ("cloudwatch-alarm-actions-to-stack-topic", "mail-events-queue-age")
    ]


def test_unknown_alarm_dimensions_and_topics_are_skipped_not_failed(
    servicer: Callable[[], Any], struct: Callable[..., Any]
) -> None:
    # GIVEN a preview where the alarms' dimensions and the subscription's topic are not
    # known yet, while the queue, the function and the event destination are
    def resource(type_: str, name: str, props: dict[str, Any]) -> Any:
        return proto.AnalyzerResource(
            type=type_, urn=f"urn:{name}", name=name, properties=struct(props)
        )

    queue_arn = f"arn:aws:sqs:eu-west-1:{ACCOUNT_ID}:mail"
    topic_arn = f"arn:aws:sns:eu-west-1:{ACCOUNT_ID}:alarms"
    events_arn = f"arn:aws:sns:eu-west-1:{ACCOUNT_ID}:events"

    def alarm(name: str, namespace: str, metric: str, dimensions: Any) -> Any:
        return resource(
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            name,
            {
                "namespace": namespace,
                "metricName": metric,
                "dimensions": dimensions,
                "alarmActions": [topic_arn],
            },
        )

    stack = proto.AnalyzeStackRequest(
        resources=[
            resource("aws:sns/topic:Topic", "alarms", {"arn": topic_arn}),
            resource("aws:sns/topic:Topic", "events", {"arn": events_arn}),
            resource(
                "aws:lambda/eventSourceMapping:EventSourceMapping",
                "source",
                {"eventSourceArn": queue_arn, "functionName": "sender"},
            ),
            resource("aws:lambda/function:Function", "sender", {"name": "sender"}),
            alarm("age", "AWS/SQS", "ApproximateAgeOfOldestMessage", {"QueueName": UNKNOWN}),
            alarm("errors", "AWS/Lambda", "Errors", UNKNOWN),
            alarm("throttles", "AWS/Lambda", "Throttles", {"FunctionName": UNKNOWN}),
            resource(
                "aws:sesv2/configurationSetEventDestination:ConfigurationSetEventDestination",
                "destination",
                {"eventDestination": {"snsDestination": {"topicArn": events_arn}}},
            ),
            resource("aws:sns/topicSubscription:TopicSubscription", "sub", {"topic": UNKNOWN}),
        ]
    )
    # THEN no alarm rule reports them: they are judged at `pulumi up`
    diagnostics = servicer().AnalyzeStack(stack, None).diagnostics
    assert [d.policyName for d in diagnostics if d.policyName in ALARM_RULES] == []
    # AND with the dimensions known but wrong, they are reported
    wrong = proto.AnalyzeStackRequest(
        resources=[
            *stack.resources[:4],
            alarm("age", "AWS/SQS", "ApproximateAgeOfOldestMessage", {"QueueName": "other"}),
            alarm("errors", "AWS/Lambda", "Errors", {"FunctionName": "other"}),
            alarm("throttles", "AWS/Lambda", "Throttles", {"FunctionName": "sender"}),
            stack.resources[7],
        ]
    )
    diagnostics = servicer().AnalyzeStack(wrong, None).diagnostics
    assert sorted(d.policyName for d in diagnostics if d.policyName in ALARM_RULES) == [
        "lambda-errors-and-throttles-alarms",
        "ses-events-topic-subscribed",
        "sqs-consumed-queue-age-alarm",
    ]
