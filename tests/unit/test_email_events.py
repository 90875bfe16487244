"""EmailEvents under the recording mocks: children, the queue policy, the role, the
pipeline's alarms, the webhook secret, the history grant, the function's package and
environment, and every validation message. The alarms every stack keeps are
test_email_alarms.py's."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
from serverless_mail import ConfigError, EmailDomain, EmailDomainArgs
from serverless_mail.email_alarms import EmailAlarmsSettings
from serverless_mail.email_events import (
    EmailEvents,
    EmailEventsArgs,
)
from serverless_mail.email_queue import EmailQueue
from serverless_mail.lambda_package import lambda_package_bytes, package_archive, source_code_hash
from serverless_mail.mocking import Recording, Secret

from functions.events.config import EventsConfig

REGION = "eu-west-1"
ACCOUNT = "123456789012"
DOMAIN_ARGS = EmailDomainArgs(
    domain="mail.example.com",
    zone_id="00112233445566778899aabbccddeeff",
    zone_name="example.com",
    region=REGION,
)
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
HOOK = "https://app.example.com/api/email-events"

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_aws.lambda_.*")

Build = Callable[..., tuple[Recording, dict[str, Any]]]


@pytest.fixture
def build(run: Any) -> Build:
    """Plan a domain, the email queue and EmailEvents("events", ...) with ``overrides``."""

    def _build(**overrides: Any) -> tuple[Recording, dict[str, Any]]:
        captured: dict[str, Any] = {}

        def program() -> None:
            domain = EmailDomain("mail", DOMAIN_ARGS)
            queue = EmailQueue("email")
            events = EmailEvents(
                "events",
                EmailEventsArgs(
                    **{
                        "domain": domain,
                        "region": REGION,
                        "alarm_topic_arn": queue.alarm_topic.arn,
                        **overrides,
                    }
                ),
            )
            captured["events"] = events
            events.grant_read_history().apply(lambda s: captured.setdefault("read", s))
            if events.webhook_secret is not None:
                events.webhook_secret.apply(lambda s: captured.setdefault("secret", s))

        return run(program), captured

    return _build


def arn(rec: Recording, name: str) -> str:
    return str(rec.named(name).outputs["arn"])


def output(rec: Recording, name: str, key: str) -> Any:
    return rec.named(name).outputs[key]


def alarms(rec: Recording) -> dict[str, dict[str, Any]]:
    return {
        r.name.removeprefix("events-"): r.inputs
        for r in rec.of_type(ALARM)
        if r.parent_name == "events"
    }


class TestChildren:
    def test_creates_exactly_the_expected_children(self, build: Build) -> None:
        rec, _ = build(webhook_urls=(HOOK,))
        counts: dict[str, int] = {}
        for r in rec.resources:
            if r.parent_name == "events":
                counts[r.type] = counts.get(r.type, 0) + 1
        assert counts == {
            "aws:sqs/queue:Queue": 2,
            "aws:sqs/redriveAllowPolicy:RedriveAllowPolicy": 1,
            "aws:sqs/queuePolicy:QueuePolicy": 2,
            "aws:sns/topicSubscription:TopicSubscription": 1,
            "aws:sesv2/configurationSetEventDestination:ConfigurationSetEventDestination": 1,
            "aws:dynamodb/table:Table": 1,
            "random:index/randomBytes:RandomBytes": 1,
            "aws:cloudwatch/logGroup:LogGroup": 1,
            "aws:iam/role:Role": 1,
            ROLE_POLICY: 4,
            "aws:lambda/function:Function": 1,
            "aws:lambda/eventSourceMapping:EventSourceMapping": 1,
            ALARM: 4,
        }

    def test_queue_redrives_one_receive_after_the_functions_last_attempt(
        self, build: Build
    ) -> None:
        rec, _ = build(max_attempts=5, timeout_seconds=40)
        queue = rec.named("events-queue").inputs
        assert json.loads(queue["redrivePolicy"]) == {
            "deadLetterTargetArn": arn(rec, "events-dlq"),
            "maxReceiveCount": 6,
        }
        assert queue["visibilityTimeoutSeconds"] == 240  # 6 x the function timeout
        assert queue["sqsManagedSseEnabled"] is True
        dlq = rec.named("events-dlq").inputs
        assert dlq["messageRetentionSeconds"] == 1_209_600
        assert dlq["sqsManagedSseEnabled"] is True
        allow = rec.named("events-dlq-redrive-allow").inputs
        assert json.loads(allow["redriveAllowPolicy"]) == {
            "redrivePermission": "byQueue",
            "sourceQueueArns": [arn(rec, "events-queue")],
        }

    @pytest.mark.parametrize(
        ("policy_name", "queue_name"),
        [("events-queue-policy", "events-queue"), ("events-dlq-policy", "events-dlq")],
    )
    def test_queue_policy_admits_only_the_events_topic_and_only_over_tls(
        self, build: Build, policy_name: str, queue_name: str
    ) -> None:
        rec, _ = build()
        queue_arn, topic_arn = arn(rec, queue_name), arn(rec, "mail-events")
        policy = json.loads(rec.named(policy_name).inputs["policy"])
        assert policy == {
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
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "sqs:*",
                    "Resource": queue_arn,
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
            ],
        }
        allows = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
        assert all(s["Principal"] != "*" and "aws:SourceArn" in str(s) for s in allows)

    def test_subscribes_the_queue_to_the_events_topic_with_raw_delivery(
        self, build: Build, dependencies: dict[tuple[str, str], list[str]]
    ) -> None:
        rec, _ = build()
        sub = rec.named("events-subscription").inputs
        assert {k: sub[k] for k in ("topic", "protocol", "endpoint", "rawMessageDelivery")} == {
            "topic": arn(rec, "mail-events"),
            "protocol": "sqs",
            "endpoint": arn(rec, "events-queue"),
            "rawMessageDelivery": True,
        }
        assert json.loads(sub["redrivePolicy"]) == {"deadLetterTargetArn": arn(rec, "events-dlq")}
        assert {"events-queue-policy", "events-dlq-policy"} <= set(
            dependencies[("aws:sns/topicSubscription:TopicSubscription", "events-subscription")]
        )

    @pytest.mark.parametrize(
        ("engagement", "types"),
        [
            (False, ["SEND", "DELIVERY", "SUBSCRIPTION"]),
            (True, ["SEND", "DELIVERY", "SUBSCRIPTION", "OPEN", "CLICK"]),
        ],
    )
    def test_a_second_destination_adds_every_type_the_domain_does_not_publish(
        self, build: Build, engagement: bool, types: list[str]
    ) -> None:
        rec, _ = build(engagement_events=engagement)
        mine = rec.named("events-destination").inputs
        domains = rec.named("mail-events-destination").inputs
        assert mine["configurationSetName"] == domains["configurationSetName"]
        assert mine["eventDestinationName"] != domains["eventDestinationName"]
        assert mine["eventDestination"] == {
            "enabled": True,
            "matchingEventTypes": types,
            "snsDestination": {"topicArn": arn(rec, "mail-events")},
        }
        theirs = set(domains["eventDestination"]["matchingEventTypes"])
        assert not set(types) & theirs  # no event reaches the topic twice
        every = set(mine["eventDestination"]["matchingEventTypes"]) | theirs
        assert every >= {
            "SEND",
            "DELIVERY",
            "BOUNCE",
            "COMPLAINT",
            "REJECT",
            "DELIVERY_DELAY",
            "RENDERING_FAILURE",
            "SUBSCRIPTION",
        }

    def test_history_table_is_keyed_by_message_id_with_ttl(self, build: Build) -> None:
        rec, _ = build(point_in_time_recovery=False)
        table = rec.named("events-history").inputs
        assert {k: table[k] for k in ("hashKey", "rangeKey", "billingMode")} == {
            "hashKey": "id",
            "rangeKey": "sk",
            "billingMode": "PAY_PER_REQUEST",
        }
        assert table["attributes"] == [{"name": "id", "type": "S"}, {"name": "sk", "type": "S"}]
        assert table["ttl"] == {"attributeName": "expiration", "enabled": True}
        assert table["pointInTimeRecovery"] == {"enabled": False}
        assert table["serverSideEncryption"] == {"enabled": True}


@pytest.fixture
def dependencies(monkeypatch: pytest.MonkeyPatch) -> dict[tuple[str, str], list[str]]:
    """(type, name) → the names the engine was told the resource depends on."""
    from serverless_mail import mocking

    seen: dict[tuple[str, str], list[str]] = {}
    register = mocking._RecordingMonitor.RegisterResource

    def recording(self: Any, request: Any) -> Any:
        seen[(request.type, request.name)] = [d.split("::")[-1] for d in request.dependencies]
        return register(self, request)

    monkeypatch.setattr(mocking._RecordingMonitor, "RegisterResource", recording)
    return seen


class TestRole:
    def test_role_may_touch_only_its_queue_dlq_table_and_logs(self, build: Build) -> None:
        rec, _ = build()
        policies = {
            r.name: json.loads(r.inputs["policy"])["Statement"]
            for r in rec.of_type(ROLE_POLICY)
            if r.parent_name == "events"
        }
        statements = {
            name: [{k: v for k, v in s.items() if k != "Sid"} for s in st]
            for name, st in policies.items()
        }
        assert statements == {
            "events-allow-consume-queue": [
                {
                    "Effect": "Allow",
                    "Action": [
                        "sqs:ReceiveMessage",
                        "sqs:DeleteMessage",
                        "sqs:ChangeMessageVisibility",
                        "sqs:GetQueueAttributes",
                    ],
                    "Resource": arn(rec, "events-queue"),
                }
            ],
            "events-allow-dead-letter": [
                {
                    "Effect": "Allow",
                    "Action": ["sqs:SendMessage"],
                    "Resource": arn(rec, "events-dlq"),
                }
            ],
            "events-allow-history": [
                {
                    "Effect": "Allow",
                    "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                    "Resource": arn(rec, "events-history"),
                }
            ],
            "events-allow-logs": [
                {
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": arn(rec, "events-logs") + ":*",
                }
            ],
        }
        trust = json.loads(rec.named("events-role").inputs["assumeRolePolicy"])
        assert trust["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}

    def test_grant_read_history_is_get_and_query_on_the_table_only(self, build: Build) -> None:
        rec, captured = build()
        read = captured["read"]
        assert re.fullmatch(r"ReadMessageHistory[0-9A-F]{8}", read.pop("Sid"))
        assert read == {
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:Query"],
            "Resource": arn(rec, "events-history"),
        }


class TestFunction:
    def test_function_runs_the_events_package_with_the_planned_environment(
        self, build: Build
    ) -> None:
        rec, _ = build(webhook_urls=(HOOK,), history_ttl_days=30, max_attempts=4)
        function = rec.named("events-function").inputs
        assert function["handler"] == "events.handler.handler"
        assert function["runtime"] == "python3.13"
        assert function["role"] == arn(rec, "events-role")
        assert function["timeout"] == 60
        variables = function["environment"]["variables"]
        secret = variables.pop("EMAIL_WEBHOOK_SECRET")
        assert isinstance(secret, Secret) and secret.value.startswith("whsec_")
        assert variables == {
            "EMAIL_HISTORY_TABLE": output(rec, "events-history", "name"),
            "EMAIL_HISTORY_TTL_DAYS": "30",
            "EMAIL_EVENTS_QUEUE_URL": output(rec, "events-queue", "url"),
            "EMAIL_EVENTS_DEAD_LETTER_QUEUE_URL": output(rec, "events-dlq", "url"),
            "EMAIL_EVENTS_MAX_ATTEMPTS": "4",
            "EMAIL_EVENTS_RETRY_BASE_SECONDS": "30",
            "EMAIL_EVENTS_RETRY_MAX_SECONDS": "900",
            "EMAIL_WEBHOOK_URLS": json.dumps([HOOK]),
            "EMAIL_WEBHOOK_TIMEOUT_SECONDS": "5",
            "POWERTOOLS_SERVICE_NAME": "serverless-mail-events",
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }
        # The handler accepts exactly what the component plans.
        config = EventsConfig.from_env({**variables, "EMAIL_WEBHOOK_SECRET": secret.value})
        assert (config.max_attempts, config.webhook_urls) == (4, (HOOK,))

    def test_package_holds_the_events_modules_and_nothing_else(self, build: Build) -> None:
        rec, _ = build()
        data = lambda_package_bytes(package="events")
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        assert "events/handler.py" in names and "events/message_tag.py" in names
        assert all(n.startswith("events/") and n.endswith(".py") for n in names)
        assert rec.named("events-function").inputs["sourceCodeHash"] == source_code_hash(data)
        assert package_archive("events")[0].read_bytes() == data

    def test_a_missing_events_folder_fails_the_plan_not_the_function(self, tmp_path) -> None:
        with pytest.raises(FileNotFoundError, match="functions/events is missing"):
            lambda_package_bytes(tmp_path, package="events")

    def test_event_source_reports_batch_item_failures(self, build: Build) -> None:
        rec, _ = build(batch_size=5, maximum_concurrency=3)
        mapping = rec.named("events-queue-events").inputs
        assert mapping["eventSourceArn"] == arn(rec, "events-queue")
        assert mapping["functionResponseTypes"] == ["ReportBatchItemFailures"]
        assert mapping["batchSize"] == 5
        assert mapping["scalingConfig"] == {"maximumConcurrency": 3}

    def test_webhook_secret_is_a_secret_output_of_32_random_bytes(self, build: Build) -> None:
        rec, captured = build(webhook_urls=(HOOK,))
        assert rec.named("events-webhook-secret").inputs["length"] == 32
        secret = captured["secret"]
        assert secret == "whsec_" + output(rec, "events-webhook-secret", "base64")

    def test_without_webhooks_there_is_no_secret(self, build: Build) -> None:
        rec, captured = build()
        assert rec.of_type("random:index/randomBytes:RandomBytes") == []
        assert "secret" not in captured
        variables = rec.named("events-function").inputs["environment"]["variables"]
        assert "EMAIL_WEBHOOK_SECRET" not in variables
        assert variables["EMAIL_WEBHOOK_URLS"] == "[]"


class TestAlarms:
    @pytest.mark.parametrize(
        ("key", "namespace", "metric", "dimension", "statistic", "period", "threshold"),
        [
            ("queue-age", "AWS/SQS", "ApproximateAgeOfOldestMessage", ("QueueName", "events-queue"), "Maximum", 300, 3600),
            ("dlq-depth", "AWS/SQS", "ApproximateNumberOfMessagesVisible", ("QueueName", "events-dlq"), "Maximum", 60, 1),
            ("function-errors", "AWS/Lambda", "Errors", ("FunctionName", "events-function"), "Sum", 300, 1),
            ("function-throttles", "AWS/Lambda", "Throttles", ("FunctionName", "events-function"), "Sum", 300, 1),
        ],
    )  # fmt: skip
    def test_queue_dlq_and_function_alarms(
        self,
        build: Build,
        key: str,
        namespace: str,
        metric: str,
        dimension: tuple[str, str],
        statistic: str,
        period: int,
        threshold: int,
    ) -> None:
        rec, _ = build()
        alarm = alarms(rec)[key]
        name, source = dimension
        expected = {
            "namespace": namespace,
            "metricName": metric,
            "dimensions": {name: output(rec, source, "name")},
            "statistic": statistic,
            "period": period,
            "threshold": threshold,
            "evaluationPeriods": 1,
            "comparisonOperator": "GreaterThanOrEqualToThreshold",
            "treatMissingData": "notBreaching",
            "alarmActions": [arn(rec, "email-alarms")],
            "okActions": [arn(rec, "email-alarms")],
        }
        assert {k: alarm[k] for k in expected} == expected
        assert "README, Operations" in alarm["alarmDescription"]

    def test_only_the_pipelines_own_alarms_are_here(self, build: Build) -> None:
        # Reputation, send-queue and sender alarms are EmailAlarms' (on every stage).
        rec, _ = build()
        assert sorted(alarms(rec)) == [
            "dlq-depth",
            "function-errors",
            "function-throttles",
            "queue-age",
        ]
        assert not rec.of_type("aws:cloudwatch/dashboard:Dashboard")

    def test_thresholds_come_from_the_events_queue_age_and_the_alarm_settings(
        self, build: Build
    ) -> None:
        rec, _ = build(
            events_queue_age_seconds=7200,
            alarms=EmailAlarmsSettings(
                lambda_errors_threshold=3, lambda_throttles_threshold=10, alarm_period_seconds=120
            ),
        )
        found = alarms(rec)
        assert found["queue-age"]["threshold"] == 7200
        assert found["function-errors"]["threshold"] == 3
        assert found["function-throttles"]["threshold"] == 10
        assert {found[k]["period"] for k in ("queue-age", "function-errors")} == {120}


INVALID: list[tuple[dict[str, Any], str]] = [
    ({"region": "Europe"}, r"`region` must be an AWS region code"),
    ({"webhook_urls": ("http://app.example.com/h",)}, r"`webhook_urls\[0\]` must be an https:// URL"),
    ({"webhook_urls": ("https:///nohost",)}, r"`webhook_urls\[0\]` must be an https:// URL"),
    ({"webhook_urls": ("https://a.example/x y",)}, r"`webhook_urls\[0\]` must be an https:// URL"),
    ({"webhook_urls": "https://app.example.com/h"}, r"`webhook_urls` must be a list of https:// URLs"),
    ({"webhook_urls": tuple(f"https://h{i}.example/" for i in range(6))}, r"at most 5 endpoints, but 6"),
    ({"webhook_urls": (HOOK, HOOK)}, r"`webhook_urls` must not name the same endpoint twice"),
    ({"webhook_timeout_seconds": 31}, r"`webhook_timeout_seconds` must be between 1 and 30, but 31"),
    ({"webhook_urls": (HOOK, HOOK + "2"), "webhook_timeout_seconds": 5}, r"`timeout_seconds` must be at least 100 .* but 60 was provided"),
    ({"history_ttl_days": 0}, r"`history_ttl_days` must be between 1 and 3650, but 0"),
    ({"max_attempts": 10}, r"`max_attempts` must be between 2 and 9, but 10"),
    ({"retry_base_seconds": 60, "retry_max_seconds": 30}, r"`retry_max_seconds` must be at least `retry_base_seconds` \(60\), but 30"),
    ({"webhook_url": (HOOK,)}, r"`webhook_url` is not an argument of `EmailEventsArgs` \(did you mean `webhook_urls`\?\)"),
    ({"batch_size": 11}, r"`batch_size` must be between 1 and 10, but 11"),
    ({"maximum_concurrency": 1}, r"`maximum_concurrency` must be between 2 and 1000, but 1"),
    ({"log_retention_days": 2}, r"`log_retention_days` must be one of CloudWatch's retention values"),
    ({"architecture": "sparc"}, r"`architecture`"),
    ({"events_queue_age_seconds": True}, r"`events_queue_age_seconds` must be a whole number"),
    ({"alarms": EmailAlarmsSettings(alarm_period_seconds=90)}, r"`alarms.alarm_period_seconds` must be a multiple of 60"),
    ({"alarms": EmailAlarmsSettings(lambda_errors_threshold=0)}, r"`alarms.lambda_errors_threshold` must be between 1 and 100000, but 0"),
    ({"alarms": {"alarm_period_seconds": 120}}, r"`alarms` must be an EmailAlarmsSettings, but dict"),
    ({"send_queue": None}, r"`send_queue` is not an argument of `EmailEventsArgs`"),
]  # fmt: skip


class TestValidation:
    @pytest.mark.parametrize(("overrides", "message"), INVALID)
    def test_invalid_arguments_are_refused_before_any_child(
        self, build: Build, overrides: dict[str, Any], message: str
    ) -> None:
        with pytest.raises(ConfigError, match=message):
            build(**overrides)

    def test_domain_must_be_an_email_domain(self, run: Any) -> None:
        def program() -> None:
            EmailEvents(
                "events",
                EmailEventsArgs(domain="mail.example.com", region=REGION, alarm_topic_arn="x"),  # type: ignore[arg-type]
            )

        with pytest.raises(ConfigError, match="`domain` must be an EmailDomain, but str"):
            run(program)
