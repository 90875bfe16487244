"""Rules on the alarms a sending stack needs (issue 12): SES reputation with a volume
guard, queue age and DLQ depth, Lambda errors and throttles, alarm actions to an SNS
topic of the stack, and a subscriber on the SES events topic.

An alarm watches a metric either directly (``namespace``/``metric_name``/``dimensions``)
or through ``metric_queries`` (metric math); both spellings count.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import PolicyResource, StackValidationArgs

from .documents import parse_document
from .engine import UNKNOWN, Report, get, is_list, items, number, of_type, strings

_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
_COMPOSITE = "aws:cloudwatch/compositeAlarm:CompositeAlarm"
_TOPIC = "aws:sns/topic:Topic"
_SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
_QUEUE = "aws:sqs/queue:Queue"
_FUNCTION = "aws:lambda/function:Function"
_MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
_SES = (
    "aws:sesv2/emailIdentity:EmailIdentity",
    "aws:sesv2/configurationSet:ConfigurationSet",
)
_DESTINATION = "aws:sesv2/configurationSetEventDestination:ConfigurationSetEventDestination"

REPUTATION_LIMITS = {"Reputation.BounceRate": 0.05, "Reputation.ComplaintRate": 0.001}
"""AWS reviews an account at a 5% bounce rate or a 0.1% complaint rate (SES Developer
Guide, "Amazon SES sending review process FAQs"); the metrics are fractions."""
_ABOVE = ("GreaterThanOrEqualToThreshold", "GreaterThanThreshold")
_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _UnknownDimensions(dict[str, Any]):
    """The dimensions of a metric whose ``dimensions`` are not known yet: every one may
    match."""

    def get(self, key: str, default: Any = None) -> Any:
        return UNKNOWN


def _metric(namespace: Any, name: Any, dimensions: Any) -> tuple[Any, Any, dict[str, Any]]:
    if dimensions is UNKNOWN:
        return namespace, name, _UnknownDimensions()
    dims = {k: get(dimensions, k) for k in dimensions} if isinstance(dimensions, Mapping) else {}
    return namespace, name, dims


def _metrics(alarm: PolicyResource) -> Iterator[tuple[Any, Any, dict[str, Any]]]:
    """Every metric the alarm reads, directly or inside its metric queries."""
    props = alarm.props
    if get(props, "metricName") is not None:
        yield _metric(get(props, "namespace"), get(props, "metricName"), get(props, "dimensions"))
    for query in items(get(props, "metricQueries")):
        metric = get(query, "metric")
        if isinstance(metric, Mapping):
            yield _metric(
                get(metric, "namespace"), get(metric, "metricName"), get(metric, "dimensions")
            )


def _watches(alarm: PolicyResource, namespace: str, name: str, **dimensions: str) -> bool:
    """Whether the alarm reads the metric with those dimensions, or may (a dimension not
    known until the update counts: the rule judges it at ``pulumi up``)."""
    return any(
        ns == namespace
        and metric == name
        and all(dims.get(k) in (v, UNKNOWN) for k, v in dimensions.items())
        for ns, metric, dims in _metrics(alarm)
    )


def _alarms(args: StackValidationArgs) -> list[PolicyResource]:
    return of_type(args, _ALARM)


def _name_from_arn(arn: Any) -> str | None:
    return arn.rsplit(":", 1)[1] if isinstance(arn, str) and arn.count(":") >= 5 else None


# --- SES reputation --------------------------------------------------------


def _depends_on(queries: dict[str, Mapping[str, Any]], start: str) -> set[str]:
    """Ids of the queries the query ``start`` reads, itself included (metric math)."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        current = todo.pop()
        if current in seen or current not in queries:
            continue
        seen.add(current)
        expression = get(queries[current], "expression")
        if isinstance(expression, str):
            todo += [i for i in _IDENTIFIER_RE.findall(expression) if i in queries]
    return seen


def _reputation_problems(alarm: PolicyResource, metric_name: str) -> list[str]:
    """What keeps ``alarm`` from being a guarded reputation alarm (nothing: it is one)."""
    props = alarm.props
    problems = []
    limit = REPUTATION_LIMITS[metric_name]
    threshold = get(props, "threshold")
    if threshold is not UNKNOWN and not (isinstance(threshold, int | float) and threshold <= limit):
        problems.append(
            f"its threshold {number(threshold)} is above {limit:g} (the metric is a fraction: "
            f"{limit:g} is {limit * 100:g}%, where AWS reviews the account)"
        )
    operator = get(props, "comparisonOperator")
    if operator is not UNKNOWN and operator not in _ABOVE:
        problems.append(f"its comparison_operator {operator!r} does not alarm on a high rate")
    if not strings(get(props, "alarmActions")) and get(props, "alarmActions") is not UNKNOWN:
        problems.append("it has no alarm_actions, so nobody is told")
    queries = {
        get(q, "id"): q for q in items(get(props, "metricQueries")) if isinstance(get(q, "id"), str)
    }
    returned = [i for i, q in queries.items() if get(q, "returnData") is not False]
    rate_ids = {
        i
        for i, q in queries.items()
        if get(q, "metric", "namespace") == "AWS/SES"
        and get(q, "metric", "metricName") == metric_name
    }
    send_ids = {
        i
        for i, q in queries.items()
        if get(q, "metric", "namespace") == "AWS/SES" and get(q, "metric", "metricName") == "Send"
    }
    guarded = any(
        get(queries[r], "expression") is not None
        and (deps := _depends_on(queries, r)) & rate_ids
        and deps & send_ids
        for r in returned
    )
    if not guarded:
        problems.append(
            "it has no minimum-volume guard: use metric math whose returned expression reads "
            f"both {metric_name} and the AWS/SES Send metric, e.g. IF(sends >= 100, rate, 0)"
        )
    return problems


def ses_reputation_alarms(args: StackValidationArgs, report: Report) -> None:
    senders = [r for r in args.resources if r.resource_type in _SES]
    if not senders:
        return
    for metric_name, limit in REPUTATION_LIMITS.items():
        candidates = [a for a in _alarms(args) if _watches(a, "AWS/SES", metric_name)]
        judged = [(a, _reputation_problems(a, metric_name)) for a in candidates]
        if any(not problems for _, problems in judged):
            continue
        if not judged:
            report(
                f"No CloudWatch alarm watches AWS/SES {metric_name}: add one at or below "
                f"{limit:g} ({limit * 100:g}%, where AWS reviews the account) with "
                "alarm_actions and a minimum-volume guard on the Send metric (metric math "
                "IF(sends >= N, rate, 0)), so a rising rate is seen before SES pauses "
                "sending (SES Developer Guide, reputation metrics).",
                senders[0].urn,
            )
            continue
        for alarm, problems in judged:
            report(
                f"Alarm {alarm.name} on AWS/SES {metric_name} does not guard the account: "
                + "; ".join(problems)
                + " (SES Developer Guide, creating reputation monitoring alarms).",
                alarm.urn,
            )


# --- Queues and functions --------------------------------------------------


def sqs_consumed_queue_age_alarm(args: StackValidationArgs, report: Report) -> None:
    alarms = _alarms(args)
    for mapping in of_type(args, _MAPPING):
        source = get(mapping.props, "eventSourceArn")
        if not (isinstance(source, str) and source.startswith("arn:aws:sqs:")):
            continue
        name = _name_from_arn(source)
        if name and not any(
            _watches(a, "AWS/SQS", "ApproximateAgeOfOldestMessage", QueueName=name) for a in alarms
        ):
            report(
                f"Queue {name} feeds a Lambda function but no alarm watches its "
                "ApproximateAgeOfOldestMessage: add one (dimension QueueName) so a stopped, "
                "throttled or failing consumer is seen before messages expire at the "
                "queue's retention (SQS Developer Guide, CloudWatch metrics for SQS).",
                mapping.urn,
            )


def sqs_dlq_depth_alarm(args: StackValidationArgs, report: Report) -> None:
    alarms = _alarms(args)
    for queue in of_type(args, _QUEUE):
        target = get(parse_document(get(queue.props, "redrivePolicy")), "deadLetterTargetArn")
        name = _name_from_arn(target)
        if name and not any(
            _watches(a, "AWS/SQS", "ApproximateNumberOfMessagesVisible", QueueName=name)
            for a in alarms
        ):
            report(
                f"Dead-letter queue {name} (of {queue.name}) has no depth alarm: add one on "
                "ApproximateNumberOfMessagesVisible (dimension QueueName) at 1 message; "
                "messages moved there by a redrive do not count in NumberOfMessagesSent "
                "(SQS Developer Guide, dead-letter queues).",
                queue.urn,
            )


def lambda_errors_and_throttles_alarms(args: StackValidationArgs, report: Report) -> None:
    alarms = _alarms(args)
    for function in of_type(args, _FUNCTION):
        name = get(function.props, "name")
        if not isinstance(name, str):
            continue
        missing = [
            metric
            for metric in ("Errors", "Throttles")
            if not any(_watches(a, "AWS/Lambda", metric, FunctionName=name) for a in alarms)
        ]
        if missing:
            report(
                f"Function {function.name} ({name}) has no alarm on AWS/Lambda "
                f"{' and '.join(missing)}: add one per metric (dimension FunctionName), so a "
                "crash, a bad deploy or a concurrency limit is seen (Lambda Developer Guide, "
                "function metrics).",
                function.urn,
            )


# --- Where alarms and events go --------------------------------------------


def alarm_actions_to_stack_topic(args: StackValidationArgs, report: Report) -> None:
    topics = {get(t.props, "arn") for t in of_type(args, _TOPIC)}
    for alarm in [*of_type(args, _ALARM), *of_type(args, _COMPOSITE)]:
        actions = get(alarm.props, "alarmActions")
        if actions is UNKNOWN or any(
            get(actions, i) is UNKNOWN for i in range(len(actions) if is_list(actions) else 0)
        ):
            continue  # Known once the topic exists (preview).
        if not any(a in topics for a in strings(actions)):
            report(
                f"Alarm {alarm.name} notifies no SNS topic of the stack (alarm_actions "
                f"{strings(actions) or 'empty'}): name the stack's alarm topic, which has the "
                "subscriptions, so the alarm reaches a person (CloudWatch User Guide, "
                "alarm actions).",
                alarm.urn,
            )


def ses_events_topic_subscribed(args: StackValidationArgs, report: Report) -> None:
    subscribed = {get(s.props, "topic") for s in of_type(args, _SUBSCRIPTION)}
    if UNKNOWN in subscribed:
        return  # A subscription's topic is known at `pulumi up`.
    for destination in of_type(args, _DESTINATION):
        topic = get(destination.props, "eventDestination", "snsDestination", "topicArn")
        if not isinstance(topic, str):
            continue
        if topic not in subscribed:
            report(
                f"SES publishes events to {topic} but nothing subscribes to it, so bounces "
                "and complaints are lost: subscribe the events queue (or another consumer) "
                "to it (SES Developer Guide, event publishing to SNS).",
                destination.urn,
            )
