"""Building blocks for policy fixtures: the alarms a sending stack must have (issue 12),
written as the pack expects them, so secure fixtures can carry them."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws


def alarm_topic(name: str = "alarms") -> aws.sns.Topic:
    return aws.sns.Topic(name)


def metric_alarm(
    name: str,
    actions: Any,
    namespace: str,
    metric: str,
    dimensions: dict[str, Any] | None = None,
    **overrides: Any,
) -> aws.cloudwatch.MetricAlarm:
    """A single-metric alarm that fires at 1 (``actions``: a topic, or a list as given)."""
    return aws.cloudwatch.MetricAlarm(
        name,
        **{
            "namespace": namespace,
            "metric_name": metric,
            "dimensions": dimensions,
            "statistic": "Maximum",
            "period": 60,
            "evaluation_periods": 1,
            "threshold": 1,
            "comparison_operator": "GreaterThanOrEqualToThreshold",
            "alarm_actions": [actions.arn] if isinstance(actions, aws.sns.Topic) else actions,
            **overrides,
        },
    )


def math_alarm(
    name: str, actions: Any, queries: list[dict[str, Any]], **overrides: Any
) -> aws.cloudwatch.MetricAlarm:
    """A metric math alarm over ``queries``."""
    return aws.cloudwatch.MetricAlarm(
        name,
        **{
            "evaluation_periods": 1,
            "threshold": 1,
            "comparison_operator": "GreaterThanOrEqualToThreshold",
            "metric_queries": queries,
            "alarm_actions": [actions.arn] if isinstance(actions, aws.sns.Topic) else actions,
            **overrides,
        },
    )


def ses_metric(query_id: str, metric: str, stat: str, *, returned: bool = False) -> dict[str, Any]:
    return {
        "id": query_id,
        "metric": {"namespace": "AWS/SES", "metric_name": metric, "period": 3600, "stat": stat},
        "return_data": returned,
    }


def guarded_queries(metric: str, guard: str = "Send") -> list[dict[str, Any]]:
    """The rate, the send volume, and ``IF(sends >= 100, rate, 0)`` returned."""
    return [
        ses_metric("rate", metric, "Maximum"),
        ses_metric("sends", guard, "Sum"),
        {"id": "guarded", "expression": "IF(sends >= 100, rate, 0)", "return_data": True},
    ]


def reputation_alarms(
    topic: aws.sns.Topic,
    *,
    bounce: dict[str, Any] | None = None,
    complaint: dict[str, Any] | None = None,
) -> None:
    """Guarded bounce (5%) and complaint (0.1%) alarms; ``bounce``/``complaint`` override
    the MetricAlarm inputs of one of them."""
    math_alarm(
        "bounce-rate",
        topic,
        guarded_queries("Reputation.BounceRate"),
        **{"threshold": 0.05, **(bounce or {})},
    )
    math_alarm(
        "complaint-rate",
        topic,
        guarded_queries("Reputation.ComplaintRate"),
        **{"threshold": 0.001, **(complaint or {})},
    )


def queue_name(arn: pulumi.Output[str]) -> pulumi.Output[str]:
    return arn.apply(lambda a: a.rsplit(":", 1)[1])


def dlq_depth_alarm(queue: aws.sqs.Queue, topic: aws.sns.Topic, name: str = "dlq-depth") -> None:
    """The depth alarm of the queue's redrive target."""
    target = queue.redrive_policy.apply(
        lambda p: json.loads(p)["deadLetterTargetArn"].rsplit(":", 1)[1]
    )
    metric_alarm(
        name, topic, "AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": target}
    )


def consumer_alarms(
    queue: aws.sqs.Queue, function_name: str, topic: aws.sns.Topic, *, skip: tuple[str, ...] = ()
) -> None:
    """Age of the consumed queue, the function's errors and throttles (``skip`` by key:
    ``age``, ``Errors``, ``Throttles``)."""
    if "age" not in skip:
        metric_alarm(
            "queue-age",
            topic,
            "AWS/SQS",
            "ApproximateAgeOfOldestMessage",
            {"QueueName": queue_name(queue.arn)},
            threshold=900,
        )
    for metric in ("Errors", "Throttles"):
        if metric not in skip:
            metric_alarm(
                f"function-{metric.lower()}",
                topic,
                "AWS/Lambda",
                metric,
                {"FunctionName": function_name},
                statistic="Sum",
            )
