"""The events pipeline reaches the Vercel app: the webhook signing secret as a sensitive
variable, the history table's name, and the right to read it on the app's identity.

Planned through the real ``__main__.py`` with the shipped stage files (the entry point a
user touches), then the wiring arguments of :class:`VercelEnv` one by one.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from serverless_mail import ConfigError
from serverless_mail.email_events import READ_HISTORY_ACTIONS, read_history_statement
from serverless_mail.mocking import Recording, Secret
from serverless_mail.policies import evaluate
from serverless_mail.vercel_env import SECRET_KEYS, VercelEnv, env_variables

from tests.conftest import run_stack, stack_config
from tests.unit.test_vercel_env import ARGS, variables

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_aws.lambda_.*")

HOOKS = {"serverless-mail:events": {"webhookUrls": ["https://app.example.com/hooks/email"]}}
TABLE_ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/mail-events-history"


def plan(stack: str, **overrides: Any) -> Recording:
    return run_stack(stack, overrides)


def by_key(rec: Recording, key: str) -> list[dict[str, Any]]:
    return sorted(
        (v for v in variables(rec).values() if v["key"] == key), key=lambda v: v["targets"]
    )


def webhook_secret_of_the_function(rec: Recording) -> Any:
    return rec.named("mail-events-function").inputs["environment"]["variables"][
        "EMAIL_WEBHOOK_SECRET"
    ]


class TestWebhookSecret:
    def test_dev_publishes_it_sensitive_to_preview_and_never_to_development(self) -> None:
        rec = plan("dev", **HOOKS)
        secret = webhook_secret_of_the_function(rec)
        assert isinstance(secret, Secret) and secret.value.startswith("whsec_")
        # THEN exactly one variable, sensitive, on preview only, holding the same secret
        assert by_key(rec, "EMAIL_WEBHOOK_SECRET") == [
            {
                "key": "EMAIL_WEBHOOK_SECRET",
                "targets": ["preview"],
                "sensitive": True,
                "value": secret,
            }
        ]
        development = [v for v in variables(rec).values() if "development" in v["targets"]]
        assert development and all(v["value"] != secret for v in development)
        assert rec.named("mail-vercel-email-webhook-secret").parent_name == "mail-vercel"

    def test_prod_publishes_it_to_production(self) -> None:
        rec = plan("prod", **HOOKS)
        assert by_key(rec, "EMAIL_WEBHOOK_SECRET") == [
            {
                "key": "EMAIL_WEBHOOK_SECRET",
                "targets": ["production"],
                "sensitive": True,
                "value": webhook_secret_of_the_function(rec),
            }
        ]

    def test_the_program_hands_it_over_as_a_secret(self, run: Any) -> None:
        # The Vercel SDK makes every value secret on the wire; the component's own
        # variable list says the webhook secret is one whatever the caller passed.
        (variable,) = [
            v
            for v in env_variables(
                replace(ARGS, webhook_secret="whsec_plain"), ("preview", "development"), {}
            )
            if v.key == "EMAIL_WEBHOOK_SECRET"
        ]
        assert variable.secret and variable.sensitive and variable.targets == ("preview",)
        assert "EMAIL_WEBHOOK_SECRET" in SECRET_KEYS
        rec = run(lambda: VercelEnv("app", replace(ARGS, webhook_secret="whsec_plain")))
        assert by_key(rec, "EMAIL_WEBHOOK_SECRET")[0]["value"] == Secret("whsec_plain")

    def test_without_webhook_urls_there_is_no_secret_to_publish(
        self, stack_recordings: dict[str, Recording]
    ) -> None:
        for rec in stack_recordings.values():
            assert by_key(rec, "EMAIL_WEBHOOK_SECRET") == []

    def test_development_only_targets_refuse_the_secret(self) -> None:
        # GIVEN the dev stage without the Worker (its token would be named first)
        config = stack_config("dev")
        vercel = {**config["serverless-mail:vercel"], "targets": ["development"]}
        worker = {**config["serverless-mail:worker"], "enabled": False}
        overrides = {"serverless-mail:vercel": vercel, "serverless-mail:worker": worker}
        with pytest.raises(Exception, match=r"so webhook_secret would reach no environment"):
            plan("dev", **HOOKS, **overrides)
        # AND without webhooks the same targets are fine
        assert by_key(plan("dev", **overrides), "EMAIL_HISTORY_TABLE")


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize("oidc", [True, False], ids=["oidc", "iam-user"])
def test_a_stage_with_webhooks_and_the_history_read_passes_the_whole_pack(
    stack: str, oidc: bool
) -> None:
    vercel = {**stack_config(stack)["serverless-mail:vercel"], "oidc": oidc}
    rec = plan(stack, **HOOKS, **{"serverless-mail:vercel": vercel})
    assert by_key(rec, "EMAIL_WEBHOOK_SECRET") and by_key(rec, "EMAIL_HISTORY_TABLE")
    assert evaluate(rec) == []


class TestHistoryRead:
    @pytest.mark.parametrize("stack", ["dev", "prod"])
    def test_the_oidc_role_may_only_get_and_query_the_history_table(
        self, stack: str, stack_recordings: dict[str, Recording]
    ) -> None:
        rec = stack_recordings[stack]
        table_arn = rec.named("mail-events-history").outputs["arn"]
        policy = rec.named("mail-vercel-role-read-history")
        assert policy.type == "aws:iam/rolePolicy:RolePolicy"
        assert policy.inputs["role"] == rec.named("mail-vercel-role-send").inputs["role"]
        assert json.loads(policy.inputs["policy"]) == {
            "Version": "2012-10-17",
            "Statement": [read_history_statement(table_arn)],
        }
        (statement,) = json.loads(policy.inputs["policy"])["Statement"]
        assert statement["Action"] == ["dynamodb:GetItem", "dynamodb:Query"]
        assert statement["Resource"] == table_arn and "*" not in table_arn
        # AND the send policy stays exactly what it was
        (send,) = json.loads(rec.named("mail-vercel-role-send").inputs["policy"])["Statement"]
        assert send["Action"] == ["sqs:SendMessage", "sqs:GetQueueUrl"]

    def test_the_iam_user_gets_the_same_read_without_oidc(self) -> None:
        vercel = {**stack_config("dev")["serverless-mail:vercel"], "oidc": False}
        rec = plan("dev", **{"serverless-mail:vercel": vercel})
        policy = rec.named("mail-vercel-user-read-history")
        assert policy.type == "aws:iam/userPolicy:UserPolicy"
        assert policy.inputs["user"] == rec.named("mail-vercel-user-send").inputs["user"]
        (statement,) = json.loads(policy.inputs["policy"])["Statement"]
        assert set(statement["Action"]) == set(READ_HISTORY_ACTIONS)
        assert statement["Resource"] == rec.named("mail-events-history").outputs["arn"]

    @pytest.mark.parametrize("stack", ["dev", "prod"])
    def test_the_table_name_is_a_plain_variable_on_every_target(
        self, stack: str, stack_recordings: dict[str, Recording]
    ) -> None:
        rec = stack_recordings[stack]
        name = rec.named("mail-events-history").outputs["name"]
        found = by_key(rec, "EMAIL_HISTORY_TABLE")
        expected = [["development"], ["preview"]] if stack == "dev" else [["production"]]
        assert [v["targets"] for v in found] == expected
        assert {v["value"] for v in found} == {Secret(name)}  # the SDK's own wrapping
        assert "EMAIL_HISTORY_TABLE" not in SECRET_KEYS

    def test_without_events_the_app_gets_neither_table_nor_grant(self, run: Any) -> None:
        rec = run(lambda: VercelEnv("app", ARGS))
        assert by_key(rec, "EMAIL_HISTORY_TABLE") == []
        assert not any(r.name.endswith("read-history") for r in rec.resources)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"history_table_name": "t"},
            r"`history_table_name` and `history_read_statement` must be given together",
        ),
        (
            {"history_read_statement": read_history_statement(TABLE_ARN)},
            r"but only `history_read_statement` was provided",
        ),
        (
            {
                "history_table_name": "t",
                "history_read_statement": {
                    **read_history_statement(TABLE_ARN),
                    "Action": ["dynamodb:GetItem", "dynamodb:PutItem"],
                },
            },
            r"`history_read_statement` must allow only dynamodb:GetItem, dynamodb:Query",
        ),
        (
            {
                "history_table_name": "t",
                "history_read_statement": {
                    **read_history_statement(TABLE_ARN),
                    "Resource": "arn:aws:dynamodb:eu-west-1:123456789012:table/*",
                },
            },
            r"on the history table's ARN \(no '\*'\)",
        ),
        (
            {
                "history_table_name": "t",
                "history_read_statement": {
                    **read_history_statement(TABLE_ARN),
                    "Resource": "arn:aws:sqs:eu-west-1:123456789012:mail",
                },
            },
            r"`history_read_statement` must allow only",
        ),
    ],
    ids=["name-alone", "statement-alone", "write-action", "all-tables", "not-a-table"],
)
def test_a_history_read_broader_than_the_table_is_refused(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        replace(ARGS, **changes).validate()
