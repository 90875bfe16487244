"""EmailAlarms under the recording mocks: every alarm's metric, threshold and guard, the
dashboard with and without the events pipeline, the aliases that move 0.1.0's alarms,
and every validation message."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pulumi
import pytest
from serverless_mail import ConfigError
from serverless_mail.email_alarms import (
    MOVED_CHILDREN,
    EmailAlarms,
    EmailAlarmsArgs,
)
from serverless_mail.email_queue import EmailQueue
from serverless_mail.mocking import Recording

REGION = "eu-west-1"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
SERVICE = "serverless-mail-sender"

Build = Callable[..., Recording]


@pytest.fixture
def build(run: Any) -> Build:
    """Plan the email queue and EmailAlarms("alarms", ...) with ``overrides``."""

    def _build(*, sender: bool = True, events: bool = False, **overrides: Any) -> Recording:
        def program() -> None:
            queue = EmailQueue("email")
            EmailAlarms(
                "alarms",
                EmailAlarmsArgs(
                    **{
                        "region": REGION,
                        "alarm_topic_arn": queue.alarm_topic.arn,
                        "send_queue": queue,
                        "sender_function_name": "mail-sender-fn" if sender else None,
                        "sender_service": SERVICE if sender else None,
                        "events": {"queue": "ev-q", "dlq": "ev-dlq", "function": "ev-fn"}
                        if events
                        else None,
                        **overrides,
                    }
                ),
            )

        return run(program)

    return _build


def alarms(rec: Recording) -> dict[str, dict[str, Any]]:
    return {
        r.name.removeprefix("alarms-"): r.inputs
        for r in rec.of_type(ALARM)
        if r.parent_name == "alarms"
    }


def topic(rec: Recording) -> str:
    return str(rec.named("email-alarms").outputs["arn"])


def _guarded(metric: str, minimum: int, period: int) -> list[dict[str, Any]]:
    def ses(name: str, stat: str) -> dict[str, Any]:
        return {"namespace": "AWS/SES", "metricName": name, "period": period, "stat": stat}

    return [
        {"id": "rate", "metric": ses(f"Reputation.{metric}", "Maximum"), "returnData": False},
        {"id": "sends", "metric": ses("Send", "Sum"), "returnData": False},
        {
            "id": "guarded",
            "expression": f"IF(sends >= {minimum}, rate, 0)",
            "label": f"{metric} when sends >= {minimum}",
            "returnData": True,
        },
    ]


class TestReputation:
    @pytest.mark.parametrize(
        ("key", "metric", "threshold"),
        [
            ("bounce-rate-warning", "BounceRate", 0.02),
            ("bounce-rate-critical", "BounceRate", 0.05),
            ("complaint-rate-warning", "ComplaintRate", 0.0005),
            ("complaint-rate-critical", "ComplaintRate", 0.001),
        ],
    )
    def test_defaults_are_below_and_at_aws_review_with_a_volume_guard(
        self, build: Build, key: str, metric: str, threshold: float
    ) -> None:
        rec = build()
        alarm = alarms(rec)[key]
        assert alarm["threshold"] == threshold
        assert alarm["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["evaluationPeriods"] == 1
        assert alarm["treatMissingData"] == "notBreaching"
        assert alarm["metricQueries"] == _guarded(metric, 100, 3600)
        assert "metricName" not in alarm
        assert alarm["alarmActions"] == [topic(rec)] and alarm["okActions"] == [topic(rec)]

    def test_thresholds_guard_and_period_are_configurable(self, build: Build) -> None:
        rec = build(
            bounce_rate_warning=0.01,
            bounce_rate_critical=0.04,
            complaint_rate_warning=0.0002,
            complaint_rate_critical=0.0008,
            reputation_min_sends=500,
            reputation_period_seconds=7200,
        )
        found = alarms(rec)
        assert {k: found[k]["threshold"] for k in found if "rate" in k} == {
            "bounce-rate-warning": 0.01,
            "bounce-rate-critical": 0.04,
            "complaint-rate-warning": 0.0002,
            "complaint-rate-critical": 0.0008,
        }
        assert found["complaint-rate-warning"]["metricQueries"] == _guarded(
            "ComplaintRate", 500, 7200
        )


class TestSendPath:
    @pytest.mark.parametrize(
        ("key", "namespace", "metric", "dimensions", "statistic", "period", "threshold"),
        [
            ("send-queue-age", "AWS/SQS", "ApproximateAgeOfOldestMessage", {"QueueName": None}, "Maximum", 300, 900),
            ("sender-function-errors", "AWS/Lambda", "Errors", {"FunctionName": "mail-sender-fn"}, "Sum", 300, 1),
            ("sender-function-throttles", "AWS/Lambda", "Throttles", {"FunctionName": "mail-sender-fn"}, "Sum", 300, 1),
            ("daily-quota-held", "serverless-mail", "DailyQuotaHeld", {"service": SERVICE}, "Sum", 300, 1),
            ("sending-paused", "serverless-mail", "SendingPaused", {"service": SERVICE}, "Sum", 60, 1),
        ],
    )  # fmt: skip
    def test_each_alarm_watches_its_metric(
        self,
        build: Build,
        key: str,
        namespace: str,
        metric: str,
        dimensions: dict[str, str | None],
        statistic: str,
        period: int,
        threshold: int,
    ) -> None:
        rec = build()
        alarm = alarms(rec)[key]
        queue_name = rec.named("email-queue").outputs["name"]
        expected = {
            "namespace": namespace,
            "metricName": metric,
            "dimensions": {k: v or queue_name for k, v in dimensions.items()},
            "statistic": statistic,
            "period": period,
            "threshold": threshold,
            "evaluationPeriods": 1,
            "comparisonOperator": "GreaterThanOrEqualToThreshold",
            "treatMissingData": "notBreaching",
            "alarmActions": [topic(rec)],
            "okActions": [topic(rec)],
        }
        assert {k: alarm[k] for k in expected} == expected
        assert "README, Operations" in alarm["alarmDescription"]

    def test_thresholds_and_period_are_configurable(self, build: Build) -> None:
        rec = build(
            send_queue_age_seconds=600,
            lambda_errors_threshold=3,
            lambda_throttles_threshold=10,
            daily_quota_held_threshold=7,
            alarm_period_seconds=120,
        )
        found = alarms(rec)
        assert found["send-queue-age"]["threshold"] == 600
        assert found["sender-function-errors"]["threshold"] == 3
        assert found["sender-function-throttles"]["threshold"] == 10
        assert found["daily-quota-held"]["threshold"] == 7
        assert {
            found[k]["period"]
            for k in ("send-queue-age", "sender-function-errors", "daily-quota-held")
        } == {120}

    def test_without_the_lambda_sender_its_alarms_are_absent(self, build: Build) -> None:
        rec = build(sender=False)
        assert sorted(alarms(rec)) == [
            "bounce-rate-critical",
            "bounce-rate-warning",
            "complaint-rate-critical",
            "complaint-rate-warning",
            "send-queue-age",
        ]


class TestDashboard:
    def test_shows_volume_rates_ages_dlqs_and_functions(self, build: Build) -> None:
        rec = build(events=True)
        body = json.loads(rec.named("alarms-dashboard").inputs["dashboardBody"])
        metrics = {w["properties"]["title"]: w["properties"]["metrics"] for w in body["widgets"]}
        assert list(metrics) == [
            "SES send volume and delivery",
            "SES reputation: bounce and complaint rates",
            "Oldest message age (s)",
            "Dead-letter queue depth",
            "Function errors and throttles",
        ]
        assert [m[1] for m in metrics["SES send volume and delivery"]] == [
            "Send",
            "Delivery",
            "Bounce",
            "Complaint",
            "Reject",
        ]
        outputs = {n: rec.named(n).outputs["name"] for n in ("email-queue", "email-dlq")}
        assert [m[3] for m in metrics["Oldest message age (s)"]] == [outputs["email-queue"], "ev-q"]
        assert [m[3] for m in metrics["Dead-letter queue depth"]] == [
            outputs["email-dlq"],
            "ev-dlq",
        ]
        assert {m[3] for m in metrics["Function errors and throttles"]} == {
            "ev-fn",
            "mail-sender-fn",
        }
        assert all(w["properties"]["region"] == REGION for w in body["widgets"])

    def test_without_the_pipeline_and_the_lambda_only_the_send_queue_is_shown(
        self, build: Build
    ) -> None:
        rec = build(sender=False)
        body = json.loads(rec.named("alarms-dashboard").inputs["dashboardBody"])
        metrics = {w["properties"]["title"]: w["properties"]["metrics"] for w in body["widgets"]}
        assert "Function errors and throttles" not in metrics
        assert [m[3] for m in metrics["Oldest message age (s)"]] == [
            rec.named("email-queue").outputs["name"]
        ]


class TestMovedFromEmailEvents:
    def test_each_child_of_0_1_0_gets_an_alias_to_its_old_name_and_parent(self, run: Any) -> None:
        urns: dict[str, Any] = {}

        def program() -> None:
            queue = EmailQueue("email")
            old = pulumi.create_urn("mail-events", "serverless-mail:index:EmailEvents")
            old.apply(lambda u: urns.setdefault("old", u))
            EmailAlarms(
                "alarms",
                EmailAlarmsArgs(
                    region=REGION,
                    alarm_topic_arn=queue.alarm_topic.arn,
                    send_queue=queue,
                    sender_function_name="fn",
                    sender_service=SERVICE,
                    moved_from=("mail-events", old),
                ),
            )

        rec = run(program)
        aliased = {
            r.name.removeprefix("alarms-"): r.options.get("aliases")
            for r in rec.resources
            if r.parent_name == "alarms"
        }
        assert {k for k, v in aliased.items() if v} == set(MOVED_CHILDREN)
        for key in MOVED_CHILDREN:
            assert aliased[key] == [f"mail-events-{key}"], key
        # New in 0.2.0: nothing to move.
        assert not aliased["daily-quota-held"] and not aliased["sending-paused"]


INVALID: list[tuple[dict[str, Any], str]] = [
    ({"bounce_rate_warning": 0}, r"`bounce_rate_warning` must be above 0 and at most 1 .* but 0 was provided"),
    ({"complaint_rate_critical": 1.5}, r"`complaint_rate_critical` must be above 0 and at most 1"),
    ({"bounce_rate_warning": "2%"}, r"`bounce_rate_warning` must be a number above 0"),
    ({"bounce_rate_warning": True}, r"`bounce_rate_warning` must be a number above 0"),
    ({"bounce_rate_warning": 0.05}, r"`bounce_rate_warning` must be below `bounce_rate_critical` \(0.05\), but 0.05"),
    ({"complaint_rate_warning": 0.002}, r"`complaint_rate_warning` must be below `complaint_rate_critical`"),
    ({"reputation_min_sends": 0}, r"`reputation_min_sends` must be between 1 and 1000000, but 0"),
    ({"reputation_period_seconds": 3601}, r"`reputation_period_seconds` must be a multiple of 60"),
    ({"reputation_period_seconds": 60}, r"`reputation_period_seconds` must be between 300 and 86400"),
    ({"send_queue_age_seconds": 30}, r"`send_queue_age_seconds` must be between 60 and 1209600, but 30"),
    ({"lambda_errors_threshold": 0}, r"`lambda_errors_threshold` must be between 1 and 100000, but 0"),
    ({"daily_quota_held_threshold": 0}, r"`daily_quota_held_threshold` must be between 1 and 100000, but 0"),
    ({"alarm_period_seconds": 90}, r"`alarm_period_seconds` must be a multiple of 60"),
    ({"send_queue": "email-queue"}, r"`send_queue` must be an EmailQueue, but str"),
    ({"bounce_rate": 0.01}, r"`bounce_rate` is not an argument of `EmailAlarmsArgs` \(did you mean `bounce_rate_warning`"),
]  # fmt: skip


class TestValidation:
    @pytest.mark.parametrize(("overrides", "message"), INVALID)
    def test_invalid_arguments_are_refused_before_any_child(
        self, build: Build, overrides: dict[str, Any], message: str
    ) -> None:
        with pytest.raises(ConfigError, match=message):
            build(**overrides)
