"""The shipped stages, through the real __main__.py: each shows what its file says."""

from __future__ import annotations

import json
from typing import Any

import pytest
from serverless_mail.mocking import Recording

VERCEL_VARIABLE = "vercel:index/projectEnvironmentVariable:ProjectEnvironmentVariable"


def inputs(rec: Recording, name: str) -> dict[str, Any]:
    return rec.named(name).inputs


def test_prod_sends_through_an_oidc_role_trusted_only_for_production(
    stack_recordings: dict[str, Recording],
) -> None:
    rec = stack_recordings["prod"]
    assert inputs(rec, "mail-vercel-oidc")["url"] == "https://oidc.vercel.com/example-team"
    trust = json.loads(inputs(rec, "mail-vercel-role")["assumeRolePolicy"])
    subs = json.dumps(trust)
    assert "project:example-app:environment:production" in subs
    assert "environment:preview" not in subs
    variables = rec.of_type(VERCEL_VARIABLE)
    assert {v.inputs["key"] for v in variables} >= {
        "EMAIL_QUEUE_URL",
        "EMAIL_AWS_REGION",
        "EMAIL_AWS_ROLE_ARN",
        "EMAIL_FROM",
        "EMAIL_WORKER_URL",
    }
    assert {tuple(v.inputs["targets"]) for v in variables} == {("production",)}
    assert {v.inputs["projectId"] for v in variables} == {"prj_0123456789abcdefABCDEF0123"}
    assert "vercel_role_arn" in rec.stack_outputs


def test_prod_pages_oncall_when_mail_reaches_the_dlq(
    stack_recordings: dict[str, Recording],
) -> None:
    rec = stack_recordings["prod"]
    subscription = inputs(rec, "mail-queue-alarms-email")
    assert (subscription["protocol"], subscription["endpoint"]) == ("email", "oncall@example.com")
    assert not any(
        r.type == "aws:sns/topicSubscription:TopicSubscription" and r.inputs["protocol"] == "email"
        for r in stack_recordings["dev"].resources
    )


def test_prod_lambda_settings(stack_recordings: dict[str, Recording]) -> None:
    rec = stack_recordings["prod"]
    function = inputs(rec, "mail-lambda-function")
    assert (function["memorySize"], function["reservedConcurrentExecutions"]) == (512, 20)
    mapping = inputs(rec, "mail-lambda-queue-events")
    assert mapping["scalingConfig"]["maximumConcurrency"] == 10
    assert (mapping["batchSize"], mapping["maximumBatchingWindowInSeconds"]) == (10, 1)
    assert inputs(rec, "mail-lambda-logs")["retentionInDays"] == 90
    assert inputs(rec, "mail-lambda-idempotency")["pointInTimeRecovery"] == {"enabled": True}
    redrive = json.loads(inputs(rec, "mail-queue-queue")["redrivePolicy"])
    assert redrive["maxReceiveCount"] == 5


def test_prod_worker_is_on_its_custom_domain_only(stack_recordings: dict[str, Recording]) -> None:
    rec = stack_recordings["prod"]
    domain = inputs(rec, "mail-worker-custom-domain")
    assert domain["hostname"] == "mail-api.example.com"
    assert domain["zoneId"] == "ffeeddccbbaa99887766554433221100"
    assert not any(
        r.type == "cloudflare:index/workersScriptSubdomain:WorkersScriptSubdomain"
        and r.inputs.get("enabled")
        for r in rec.resources
    )
    assert rec.stack_outputs["worker_url"] == "https://mail-api.example.com"
    settings = inputs(rec, "mail-worker-consumer")["settings"]
    assert (settings["maxRetries"], settings["retryDelay"]) == (5, 30)


def test_dev_values(stack_recordings: dict[str, Recording]) -> None:
    rec = stack_recordings["dev"]
    assert inputs(rec, "mail-lambda-queue-events")["scalingConfig"]["maximumConcurrency"] == 2
    assert inputs(rec, "mail-lambda-logs")["retentionInDays"] == 14
    env = inputs(rec, "mail-lambda-function")["environment"]["variables"]
    assert env["POWERTOOLS_LOG_LEVEL"] == "DEBUG"
    assert inputs(rec, "mail-lambda-idempotency")["pointInTimeRecovery"] == {"enabled": False}
    settings = inputs(rec, "mail-worker-consumer")["settings"]
    assert (settings["maxRetries"], settings["retryDelay"]) == (3, 10)
    assert rec.stack_outputs["worker_url"] == (
        "https://serverless-mail-dev-mail-worker.example-dev.workers.dev"
    )
    variables = rec.of_type(VERCEL_VARIABLE)
    assert variables and {v.inputs["projectId"] for v in variables} == {
        "prj_0123456789abcdefABCDEF0123"
    }
    assert {t for v in variables for t in v.inputs["targets"]} == {"preview", "development"}
    assert "p=none" in inputs(rec, "mail-domain-dmarc")["content"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_stage_plans_every_path(stack: str, stack_recordings: dict[str, Recording]) -> None:
    types = {r.type for r in stack_recordings[stack].resources}
    assert {
        "serverless-mail:index:EmailDomain",
        "serverless-mail:index:EmailQueue",
        "serverless-mail:index:LambdaSender",
        "serverless-mail:index:WorkerSender",
        "serverless-mail:index:VercelEnv",
    } <= types
