"""EmailEvents inside TransactionalEmail: on by default, off with ``events=None``, wired
to the domain, the email queue's alarm topic and the Lambda sender; its outputs (the
webhook secret kept secret); its settings' messages named from the aggregate; and the
stages' offline plans, where every alarm the issue asks for is planned."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from serverless_mail import (
    ConfigError,
    EmailDomainArgs,
    TransactionalEmail,
    TransactionalEmailArgs,
)
from serverless_mail.mocking import Recording, Secret
from serverless_mail.policies import check_stack_outputs

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_aws.lambda_.*")

EMAIL = EmailDomainArgs(
    domain="mail.example.com",
    zone_id="00112233445566778899aabbccddeeff",
    zone_name="example.com",
    region="eu-west-1",
)
ACCOUNT = "0123456789abcdef0123456789abcdef"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
EVERY_ALARM = {
    "bounce-rate-warning",
    "bounce-rate-critical",
    "complaint-rate-warning",
    "complaint-rate-critical",
    "send-queue-age",
    "queue-age",
    "dlq-depth",
    "function-errors",
    "function-throttles",
    "sender-function-errors",
    "sender-function-throttles",
}


def build(run: Any, **overrides: Any) -> tuple[Recording, dict[str, Any]]:
    captured: dict[str, Any] = {}

    def program() -> None:
        mail = TransactionalEmail(
            "mail",
            TransactionalEmailArgs(email=EMAIL, account_id=ACCOUNT, **overrides),
        )
        captured["outputs"] = mail.outputs
        for key, value in mail.outputs.items():
            pulumi.export(key, value)

    return run(program), captured


def events_alarms(rec: Recording, parent: str = "mail-events") -> dict[str, dict[str, Any]]:
    return {
        r.name.removeprefix(parent + "-"): r.inputs
        for r in rec.of_type(ALARM)
        if r.parent_name == parent
    }


class TestWiring:
    def test_events_are_on_by_default_and_alarm_to_the_queues_topic(self, run: Any) -> None:
        rec, _ = build(run)
        found = events_alarms(rec)
        assert set(found) == EVERY_ALARM
        topic = rec.named("mail-queue-alarms").outputs["arn"]
        assert all(a["alarmActions"] == [topic] for a in found.values())
        sender = rec.named("mail-lambda-function").outputs["name"]
        assert found["sender-function-errors"]["dimensions"] == {"FunctionName": sender}
        queue = rec.named("mail-queue-queue").outputs["name"]
        assert found["send-queue-age"]["dimensions"] == {"QueueName": queue}
        subscription = rec.named("mail-events-subscription").inputs
        assert subscription["topic"] == rec.named("mail-domain-events").outputs["arn"]

    def test_outputs_name_the_events_queue_and_history_table(self, run: Any) -> None:
        rec, _ = build(run)
        outputs = rec.stack_outputs
        assert outputs["events_queue_url"] == rec.named("mail-events-queue").outputs["url"]
        assert outputs["history_table_name"] == rec.named("mail-events-history").outputs["name"]
        assert "webhook_secret" not in outputs

    def test_webhook_secret_is_a_secret_output_and_the_functions_secret(self, run: Any) -> None:
        rec, _ = build(run, events={"webhook_urls": ["https://app.example.com/api/email"]})
        secret = rec.stack_outputs["webhook_secret"]
        assert isinstance(secret, Secret) and secret.value.startswith("whsec_")
        variables = rec.named("mail-events-function").inputs["environment"]["variables"]
        assert variables["EMAIL_WEBHOOK_SECRET"] == secret
        assert check_stack_outputs(rec) == []

    def test_events_none_turns_every_part_off(self, run: Any) -> None:
        rec, _ = build(run, events=None)
        assert [
            r.name for r in rec.resources if (r.parent_name or "").startswith("mail-events")
        ] == []
        assert not {"events_queue_url", "history_table_name"} & set(rec.stack_outputs)

    def test_without_the_lambda_path_the_senders_alarms_are_absent(self, run: Any) -> None:
        rec, _ = build(run, lambda_sender=None)
        assert set(events_alarms(rec)) == EVERY_ALARM - {
            "sender-function-errors",
            "sender-function-throttles",
        }

    def test_settings_reach_the_component(self, run: Any) -> None:
        rec, _ = build(run, events={"bounce_rate_critical": 0.04, "reputation_min_sends": 250})
        alarm = events_alarms(rec)["bounce-rate-critical"]
        assert alarm["threshold"] == 0.04
        assert alarm["metricQueries"][2]["expression"] == "IF(sends >= 250, rate, 0)"


class TestValidation:
    @pytest.mark.parametrize(
        ("events", "message"),
        [
            ({"max_attempts": 20}, r"`events\.max_attempts` must be between 2 and 9, but 20"),
            (
                {"webhook_urls": ["http://app.example.com/h"]},
                r"`events\.webhook_urls\[0\]` must be an https:// URL",
            ),
            (
                {"complaint_rate_warning": 0.01},
                r"`events\.complaint_rate_warning` must be below `events\.complaint_rate_critical`",
            ),
            ({"bounce_rate": 0.1}, r"`events\.bounce_rate` is not an argument"),
            ("on", r"`events` must be a EmailEventsSettings, a mapping of its fields or None"),
        ],
    )
    def test_messages_name_the_aggregates_argument(
        self, run: Any, events: Any, message: str
    ) -> None:
        with pytest.raises(ConfigError, match=message):
            build(run, events=events)


class TestStagePlans:
    @pytest.mark.parametrize("stack", ["dev", "prod"])
    def test_every_stage_plans_the_events_pipeline_alarms_and_dashboard(
        self, stack_recordings: dict[str, Recording], stack: str
    ) -> None:
        rec = stack_recordings[stack]
        types = {r.type for r in rec.resources if r.parent_name == "mail-events"}
        assert {
            "aws:sqs/queue:Queue",
            "aws:lambda/function:Function",
            "aws:dynamodb/table:Table",
            "aws:cloudwatch/dashboard:Dashboard",
            ALARM,
        } <= types
        assert set(events_alarms(rec)) >= EVERY_ALARM - {
            "sender-function-errors",
            "sender-function-throttles",
        }
