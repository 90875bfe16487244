"""EmailEvents and EmailAlarms inside TransactionalEmail: the pipeline on by default, off
with ``events=None`` (SES then publishes nothing, the alarms stay), wired to the domain,
the email queue's alarm topic and the Lambda sender; their outputs (the webhook secret
kept secret); their settings' messages named from the aggregate; and the stages' offline
plans, where every alarm the issue asks for is planned."""

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
STACK_ALARMS = {
    "bounce-rate-warning",
    "bounce-rate-critical",
    "complaint-rate-warning",
    "complaint-rate-critical",
    "send-queue-age",
}
SENDER_ALARMS = {
    "sender-function-errors",
    "sender-function-throttles",
    "daily-quota-held",
    "sending-paused",
}
PIPELINE_ALARMS = {"queue-age", "dlq-depth", "function-errors", "function-throttles"}
DESTINATION = "aws:sesv2/configurationSetEventDestination:ConfigurationSetEventDestination"


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


def alarms_of(rec: Recording, parent: str) -> dict[str, dict[str, Any]]:
    return {
        r.name.removeprefix(parent + "-"): r.inputs
        for r in rec.of_type(ALARM)
        if r.parent_name == parent
    }


class TestWiring:
    def test_every_alarm_is_planned_by_default_to_the_queues_topic(self, run: Any) -> None:
        rec, _ = build(run)
        stack, pipeline = alarms_of(rec, "mail-alarms"), alarms_of(rec, "mail-events")
        assert set(stack) == STACK_ALARMS | SENDER_ALARMS
        assert set(pipeline) == PIPELINE_ALARMS
        topic = rec.named("mail-queue-alarms").outputs["arn"]
        assert all(a["alarmActions"] == [topic] for a in [*stack.values(), *pipeline.values()])
        sender = rec.named("mail-lambda-function")
        assert stack["sender-function-errors"]["dimensions"] == {
            "FunctionName": sender.outputs["name"]
        }
        service = sender.inputs["environment"]["variables"]["POWERTOOLS_SERVICE_NAME"]
        assert stack["daily-quota-held"]["dimensions"] == {"service": service}
        queue = rec.named("mail-queue-queue").outputs["name"]
        assert stack["send-queue-age"]["dimensions"] == {"QueueName": queue}
        subscription = rec.named("mail-events-subscription").inputs
        assert subscription["topic"] == rec.named("mail-domain-events").outputs["arn"]
        assert (
            rec.stack_outputs["dashboard_name"]
            == (rec.named("mail-alarms-dashboard").inputs["dashboardName"])
        )

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

    def test_events_none_turns_the_pipeline_and_publishing_off_and_keeps_the_alarms(
        self, run: Any
    ) -> None:
        on, _ = build(run)
        assert len(on.of_type(DESTINATION)) == 2
        rec, _ = build(run, events=None)
        assert [r.name for r in rec.resources if r.name.startswith("mail-events")] == []
        assert not {"events_queue_url", "history_table_name"} & set(rec.stack_outputs)
        assert rec.of_type(DESTINATION) == []
        assert set(alarms_of(rec, "mail-alarms")) == STACK_ALARMS | SENDER_ALARMS
        body = rec.named("mail-alarms-dashboard").inputs["dashboardBody"]
        assert "mail-events" not in body

    def test_without_the_lambda_path_the_senders_alarms_are_absent(self, run: Any) -> None:
        rec, _ = build(run, lambda_sender=None)
        assert set(alarms_of(rec, "mail-alarms")) == STACK_ALARMS

    def test_settings_reach_the_components(self, run: Any) -> None:
        rec, _ = build(
            run,
            alarms={
                "bounce_rate_critical": 0.04,
                "reputation_min_sends": 250,
                "lambda_errors_threshold": 4,
            },
            events={"events_queue_age_seconds": 1200},
        )
        alarm = alarms_of(rec, "mail-alarms")["bounce-rate-critical"]
        assert alarm["threshold"] == 0.04
        assert alarm["metricQueries"][2]["expression"] == "IF(sends >= 250, rate, 0)"
        pipeline = alarms_of(rec, "mail-events")
        assert pipeline["function-errors"]["threshold"] == 4
        assert pipeline["queue-age"]["threshold"] == 1200
        assert alarms_of(rec, "mail-alarms")["sender-function-errors"]["threshold"] == 4

    def test_the_alarms_of_0_1_0_move_instead_of_being_replaced(self, run: Any) -> None:
        rec, _ = build(run)
        aliases = {r.name: r.options.get("aliases") for r in rec.resources}
        assert aliases["mail-alarms-bounce-rate-critical"] == ["mail-events-bounce-rate-critical"]
        assert aliases["mail-alarms-dashboard"] == ["mail-events-dashboard"]
        assert aliases["mail-alarms-sending-paused"] is None


class TestValidation:
    @pytest.mark.parametrize(
        ("events", "message"),
        [
            ({"max_attempts": 20}, r"`events\.max_attempts` must be between 2 and 9, but 20"),
            (
                {"webhook_urls": ["http://app.example.com/h"]},
                r"`events\.webhook_urls\[0\]` must be an https:// URL",
            ),
            ({"bounce_rate_critical": 0.1}, r"`events\.bounce_rate_critical` is not an argument"),
            ("on", r"`events` must be a EmailEventsSettings, a mapping of its fields or None"),
        ],
    )
    def test_messages_name_the_aggregates_argument(
        self, run: Any, events: Any, message: str
    ) -> None:
        with pytest.raises(ConfigError, match=message):
            build(run, events=events)

    @pytest.mark.parametrize(
        ("alarms", "message"),
        [
            (
                {"complaint_rate_warning": 0.01},
                r"`alarms\.complaint_rate_warning` must be below `alarms\.complaint_rate_critical`",
            ),
            ({"alarm_period_seconds": 90}, r"`alarms\.alarm_period_seconds` must be a multiple"),
            ({"bounce_rate": 0.1}, r"`alarms\.bounce_rate` is not an argument"),
            (None, r"`alarms` must be a EmailAlarmsSettings or a mapping .* cannot be turned off"),
            ("on", r"`alarms` must be a EmailAlarmsSettings, a mapping of its fields, but str"),
        ],
    )
    def test_alarm_messages_name_the_aggregates_argument(
        self, run: Any, alarms: Any, message: str
    ) -> None:
        with pytest.raises(ConfigError, match=message):
            build(run, alarms=alarms)


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
            ALARM,
        } <= types
        assert set(alarms_of(rec, "mail-events")) == PIPELINE_ALARMS
        assert set(alarms_of(rec, "mail-alarms")) == STACK_ALARMS | SENDER_ALARMS
        assert rec.named("mail-alarms-dashboard").type == "aws:cloudwatch/dashboard:Dashboard"
