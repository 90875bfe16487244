"""The offline plan: the real __main__.py per stage, the CLI's text, JSON and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from serverless_mail.cli import SECRET_PLACEHOLDER, load_stack_config, main
from serverless_mail.mocking import Recording, Secret

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_real_program_runs_for_each_stage(
    stack: str, stack_recordings: dict[str, Recording]
) -> None:
    rec = stack_recordings[stack]
    assert rec.one("serverless-mail:index:TransactionalEmail").name == "mail"
    assert rec.one("serverless-mail:index:EmailDomain").parent_name == "mail"
    assert len(rec.of_type("cloudflare:index/dnsRecord:DnsRecord")) == 6
    outputs = rec.stack_outputs
    assert {"identity_arn", "configuration_set_name", "events_topic_arn", "dns_records"} <= set(
        outputs
    )
    assert len(outputs["dns_records"]) == 6


def test_only_prod_waits_for_verification(stack_recordings: dict[str, Recording]) -> None:
    verify = "aws:ses/domainIdentityVerification:DomainIdentityVerification"
    assert stack_recordings["dev"].of_type(verify) == []
    assert len(stack_recordings["prod"].of_type(verify)) == 1


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from serverless_mail.cli import run; run()", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def test_plan_prod_json_lists_ses_and_the_six_dns_records() -> None:
    result = run_cli("plan", "--stack", "prod", "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for r in plan["resources"]:
        assert set(r) == {"type", "name", "parent", "inputs"}
        by_type.setdefault(r["type"], []).append(r)
    assert (
        by_type["aws:sesv2/emailIdentity:EmailIdentity"][0]["inputs"]["emailIdentity"]
        == "example.com"
    )
    assert len(by_type["aws:sesv2/configurationSet:ConfigurationSet"]) == 1
    assert sorted(r["name"] for r in by_type["aws:sns/topic:Topic"]) == [
        "mail-domain-events",
        "mail-queue-alarms",
    ]
    mail_from = by_type["aws:sesv2/emailIdentityMailFromAttributes:EmailIdentityMailFromAttributes"]
    assert mail_from[0]["inputs"]["mailFromDomain"] == "bounce.example.com"
    records = sorted(
        (r["inputs"]["type"], r["inputs"]["name"], r["inputs"]["content"])
        for r in by_type["cloudflare:index/dnsRecord:DnsRecord"]
    )
    assert len(records) == 6
    assert [t for t, _, _ in records] == ["CNAME", "CNAME", "CNAME", "MX", "TXT", "TXT"]
    for _, name, content in records[:3]:
        token = name.split(".")[0]
        assert name == f"{token}._domainkey.example.com"
        assert content == f"{token}.dkim.amazonses.com"
    assert records[3][1:] == ("bounce.example.com", "feedback-smtp.us-east-1.amazonses.com")
    assert ("TXT", "bounce.example.com", '"v=spf1 include:amazonses.com ~all"') in records
    dmarc = next(c for t, n, c in records if n == "_dmarc.example.com")
    assert (
        dmarc.startswith('"v=DMARC1; p=reject;') and "rua=mailto:dmarc-reports@example.com" in dmarc
    )
    assert plan["violations"] == []
    assert len(plan["dns_records"]) == 6


def test_plan_dev_text_shows_tree_records_and_verdict() -> None:
    result = run_cli("plan", "--stack", "dev")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "+ serverless-mail:index:TransactionalEmail  mail" in out
    assert "  + serverless-mail:index:EmailDomain  mail-domain" in out
    assert "MX    bounce.dev-mail.example.com" in out
    assert "v=DMARC1; p=none" in out
    assert "0 mandatory, 0 advisory violation(s): PASS" in out
    assert result.stderr == ""


def test_unknown_stack_exits_2_with_one_line() -> None:
    result = run_cli("plan", "--stack", "nope")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"serverless-mail: error: unknown stack 'nope': there is no Pulumi.nope.yaml in {ROOT}; "
        "stacks here: dev, prod"
    ]


def test_invalid_config_exits_2_with_one_line_naming_the_key(tmp_path: Path) -> None:
    for name in ("Pulumi.yaml", "__main__.py"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    bad = (ROOT / "Pulumi.dev.yaml").read_text().replace("policy: none", "policy: sometimes")
    (tmp_path / "Pulumi.dev.yaml").write_text(bad)
    result = run_cli("plan", "--stack", "dev", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "serverless-mail: error: `serverless-mail:email.dmarc.policy` must be one of 'none', "
        "'quarantine', 'reject', but 'sometimes' was provided"
    ]


def test_secure_values_become_secret_placeholders(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: demo\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text(
        "config:\n  cloudflare:apiToken:\n    secure: v1:abc\n  demo:plain: 1\n"
    )
    files = load_stack_config(tmp_path, "dev")
    assert files.config == {"cloudflare:apiToken": SECRET_PLACEHOLDER, "demo:plain": 1}
    assert files.secret_keys == ("cloudflare:apiToken",)


def test_unmocked_invoke_fails_loudly(run: Any) -> None:
    import pulumi_aws as aws
    from serverless_mail.mocking import UnmockedInvokeError

    with pytest.raises(UnmockedInvokeError, match="aws:index/getCallerIdentity:getCallerIdentity"):
        run(lambda: aws.get_caller_identity())


def test_secret_outputs_are_recorded_as_secret(run: Any) -> None:
    import pulumi

    rec = run(lambda: pulumi.export("token", pulumi.Output.secret("s3cr3t")))
    assert rec.stack_outputs["token"] == Secret("s3cr3t")


def test_main_in_process_returns_2_for_missing_project(tmp_path: Path, capsys: Any) -> None:
    assert main(["plan", "--stack", "dev", "--dir", str(tmp_path)]) == 2
    assert "cannot read" in capsys.readouterr().err
