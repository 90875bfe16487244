"""The pack on the resources the real ``__main__.py`` registers, for every stage."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from serverless_mail.cli import main
from serverless_mail.mocking import Recording
from serverless_mail.policies import evaluate

STACKS = ["dev", "prod"]


@pytest.mark.parametrize("stack", STACKS)
def test_real_stack_has_no_mandatory_violation(
    stack: str, stack_recordings: dict[str, Recording]
) -> None:
    violations = evaluate(stack_recordings[stack])
    assert [v for v in violations if v.level == "mandatory"] == []


@pytest.mark.parametrize("stack", STACKS)
def test_rules_judge_the_real_stack_not_nothing(
    stack: str, stack_recordings: dict[str, Recording]
) -> None:
    # GIVEN the real stack with its first DKIM CNAME removed
    recording = stack_recordings[stack]
    cname = next(
        r
        for r in recording.resources
        if r.type == "cloudflare:index/dnsRecord:DnsRecord" and r.inputs.get("type") == "CNAME"
    )
    broken = replace(recording, resources=[r for r in recording.resources if r is not cname])
    # THEN the DNS rule names exactly that record
    violations = [v for v in evaluate(broken) if v.level == "mandatory"]
    assert [(v.policy, v.message.split(" in Cloudflare")[0]) for v in violations] == [
        (
            "ses-dkim-and-dmarc-published",
            f"DKIM token {cname.inputs['name'].split('.')[0]} of "
            f"{cname.inputs['name'].split('._domainkey.')[1]} has no CNAME {cname.inputs['name']}",
        )
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_worker_keys_without_their_schedules_are_caught(
    stack: str, stack_recordings: dict[str, Recording]
) -> None:
    # GIVEN the real stack without the time.Rotating schedules of the Worker's keys
    recording = stack_recordings[stack]
    kept = [r for r in recording.resources if r.type != "time:index/rotating:Rotating"]
    assert len(kept) == len(recording.resources) - 2
    violations = evaluate(replace(recording, resources=kept))
    # THEN both keys are reported, and nothing else
    assert sorted((v.policy, v.urn.rsplit("::", 1)[1]) for v in violations) == [
        ("iam-access-key-rotation", "mail-worker-access-key-a"),
        ("iam-access-key-rotation", "mail-worker-access-key-b"),
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_key_based_vercel_identity_passes_the_pack(stack: str) -> None:
    # GIVEN the stage with Vercel on an IAM user's keys instead of OIDC
    from tests.conftest import run_stack, stack_config

    vercel = {**stack_config(stack)["serverless-mail:vercel"], "oidc": False}
    recording = run_stack(stack, {"serverless-mail:vercel": vercel})
    keys = recording.of_type("aws:iam/accessKey:AccessKey")
    assert len(keys) == 4  # the Worker's two and the app's two, all on schedules
    # THEN the keys' schedules satisfy the rotation rule like every other rule
    assert [v for v in evaluate(recording) if v.level == "mandatory"] == []


VIOLATING_PROGRAM = """
import json
import pulumi_aws as aws

aws.iam.RolePolicy("too-broad", role="sender", policy=json.dumps(
    {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sqs:*", "Resource": "arn:aws:sqs:eu-west-1:123456789012:q"}
    ]}))
"""


def project(tmp_path: Path, program: str) -> Path:
    (tmp_path / "Pulumi.yaml").write_text("name: demo\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  aws:region: eu-west-1\n")
    (tmp_path / "__main__.py").write_text(program)
    return tmp_path


def test_plan_exits_1_and_prints_a_mandatory_violation(tmp_path: Path, capsys: Any) -> None:
    folder = project(tmp_path, VIOLATING_PROGRAM)
    assert main(["plan", "--stack", "dev", "--dir", str(folder)]) == 1
    out = capsys.readouterr().out
    assert (
        "  [mandatory] iam-no-wildcard-actions: policy allows the wildcard action 'sqs:*': list the "
        "exact actions" in out
    )
    assert (
        "(urn:pulumi:dev::demo::pulumi:pulumi:Stack$aws:iam/rolePolicy:RolePolicy::too-broad)"
        in out
    )
    assert "1 mandatory, 0 advisory violation(s): FAIL" in out


def test_plan_exits_0_on_advisory_only(tmp_path: Path, capsys: Any) -> None:
    folder = project(
        tmp_path,
        """
import pulumi
import pulumi_aws as aws

aws.lambda_.Function("f", name="f", role="arn:aws:iam::123456789012:role/r", runtime="python3.12",
    handler="h.handler", code=pulumi.AssetArchive({}), architectures=["x86_64"])
aws.cloudwatch.LogGroup("f-logs", name="/aws/lambda/f", retention_in_days=7)
alarms = aws.sns.Topic("alarms")
for metric in ("Errors", "Throttles"):
    aws.cloudwatch.MetricAlarm(f"f-{metric}", namespace="AWS/Lambda", metric_name=metric,
        dimensions={"FunctionName": "f"}, statistic="Sum", period=300, evaluation_periods=1,
        threshold=1, comparison_operator="GreaterThanOrEqualToThreshold",
        alarm_actions=[alarms.arn])
""",
    )
    assert main(["plan", "--stack", "dev", "--dir", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "  [advisory] lambda-arm64: The function runs on x86_64" in out
    assert "0 mandatory, 1 advisory violation(s): PASS" in out


def test_plan_json_reports_a_plaintext_secret_output(tmp_path: Path, capsys: Any) -> None:
    import json

    folder = project(tmp_path, 'import pulumi\npulumi.export("api_token", "abc")\n')
    assert main(["plan", "--stack", "dev", "--dir", str(folder), "--json"]) == 1
    violations = json.loads(capsys.readouterr().out)["violations"]
    assert [(v["policy"], v["level"]) for v in violations] == [
        ("stack-outputs-no-plaintext-secrets", "mandatory")
    ]
    assert violations[0]["urn"] == "urn:pulumi:dev::demo::pulumi:pulumi:Stack::demo-dev"
