"""The pack through pulumi_policy's analyzer servicer, as the Pulumi CLI drives it.

This covers what ``evaluate`` emulates: secrets marked (once the pack enables
secret awareness), unknown values behind the proxy. The per-class fixtures of
``test_policy_classes.py`` run through the servicer too.
"""

from __future__ import annotations

import json
import runpy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_cloudflare as cloudflare
import pulumi_policy.policy as policy_module
import pytest
from google.protobuf import json_format
from pulumi.runtime import proto
from pulumi_policy import EnforcementLevel
from pulumi_policy.deserialize import SPECIAL_SECRET_SIG, SPECIAL_SIG_KEY
from serverless_mail.mocking import UNKNOWN, Recording
from serverless_mail.policies import POLICIES, secret_awareness_enabled
from serverless_mail.policies import engine as policy_engine

ROOT = Path(__file__).resolve().parents[2]
Analyze = Callable[[Recording], list[Any]]


def mandatory(diagnostics: list[Any]) -> list[tuple[str, str]]:
    return [(d.policyName, d.message) for d in diagnostics if d.enforcementLevel == proto.MANDATORY]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_real_stack_has_no_mandatory_diagnostic(
    stack: str, stack_recordings: dict[str, Recording], analyze: Analyze
) -> None:
    diagnostics = analyze(stack_recordings[stack])
    assert mandatory(diagnostics) == []
    assert all(d.enforcementLevel == proto.ADVISORY for d in diagnostics)


def test_wildcard_action_is_a_mandatory_diagnostic(
    run: Callable[..., Recording], analyze: Analyze
) -> None:
    recording = run(
        lambda: aws.iam.RolePolicy(
            "p",
            role="r",
            policy=json.dumps(
                {"Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": QUEUE_ARN}]}
            ),
        )
    )
    diagnostics = analyze(recording)
    assert [(d.policyName, d.enforcementLevel) for d in diagnostics] == [
        ("iam-no-wildcard-actions", proto.MANDATORY)
    ]
    assert diagnostics[0].message == (
        "Allowed actions contain no '*' or '?' (KMS default key policy aside).\n"
        "policy allows the wildcard action 'sqs:*': list the exact actions the principal needs "
        "(e.g. 'sqs:SendMessage'), as the IAM User Guide's least-privilege best practice asks."
    )


QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:mail"


def secret_binding_worker() -> cloudflare.WorkersScript:
    # An innocent name, a plain_text type: only the value's secretness tells.
    return cloudflare.WorkersScript(
        "worker",
        account_id="a",
        script_name="w",
        content="export default {}",
        main_module="index.js",
        bindings=[
            {"name": "DATABASE_URL", "type": "plain_text", "text": pulumi.Output.secret("pg://")}
        ],
    )


def test_secret_value_in_a_plain_text_binding_is_seen_through_the_wire(
    run: Callable[..., Recording], analyze: Analyze
) -> None:
    # GIVEN the binding's text is a Pulumi secret (a secret signature on the wire)
    recording = run(secret_binding_worker)
    script = recording.one("cloudflare:index/workersScript:WorkersScript")
    wire_binding = json_format.MessageToDict(script.struct)["bindings"][0]
    assert wire_binding["text"] == {SPECIAL_SIG_KEY: SPECIAL_SECRET_SIG, "value": "pg://"}
    # THEN the pack judges the binding by its value's secretness
    assert mandatory(analyze(recording)) == [
        (
            "cloudflare-worker-secret-bindings",
            "Worker bindings holding a secret (by value or by name) are secret_text.\n"
            "Worker binding DATABASE_URL holds a Pulumi secret but is plain_text, readable "
            "in the dashboard and API: make it type 'secret_text' (Cloudflare Workers, secrets).",
        )
    ]


def test_without_secret_awareness_the_analyzer_would_miss_it(
    run: Callable[..., Recording], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN pulumi_policy's own deserializer, which drops secretness (pulumi-policy#241)
    recording = run(secret_binding_worker)
    script = recording.one("cloudflare:index/workersScript:WorkersScript")
    analyzer = policy_module._PolicyAnalyzerServicer(
        "serverless-mail", "0.1.0", POLICIES, EnforcementLevel.MANDATORY
    )
    request = proto.AnalyzeRequest(
        type=script.type, properties=script.struct, urn=script.urn, name=script.name
    )
    monkeypatch.setattr(
        policy_module, "deserialize_properties", policy_engine._ORIGINAL_DESERIALIZE
    )
    # THEN nothing is reported: the awareness the pack enables is what catches it
    assert list(analyzer.Analyze(request, None).diagnostics) == []


def test_unknown_policy_document_is_skipped_not_failed(
    servicer: Callable[[], Any], struct: Callable[..., Any]
) -> None:
    # GIVEN a preview where the policy document depends on a queue not created yet
    request = proto.AnalyzeRequest(
        type="aws:iam/rolePolicy:RolePolicy",
        urn="urn:pulumi:dev::p::aws:iam/rolePolicy:RolePolicy::p",
        name="p",
        properties=struct({"role": "r", "policy": UNKNOWN}),
    )
    assert list(servicer().Analyze(request, None).diagnostics) == []


def test_unknown_redrive_policy_is_skipped_not_failed(
    servicer: Callable[[], Any], struct: Callable[..., Any]
) -> None:
    stack = proto.AnalyzeStackRequest(
        resources=[
            proto.AnalyzerResource(
                type="aws:sqs/queue:Queue",
                urn="urn:q",
                name="q",
                properties=struct(
                    {"arn": UNKNOWN, "redrivePolicy": UNKNOWN, "sqsManagedSseEnabled": True}
                ),
            )
        ]
    )
    assert list(servicer().AnalyzeStack(stack, None).diagnostics) == []


@pytest.mark.parametrize(
    "document",
    [
        {"Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]},
        {"Statement": {"Effect": "Allow", "Action": ["sqs:*"], "Resource": ["*"]}},
        json.dumps({"Statement": {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}}),
    ],
    ids=["object", "statement-object", "json-string"],
)
def test_policy_document_in_every_shape_is_read(
    document: Any, servicer: Callable[[], Any], struct: Callable[..., Any]
) -> None:
    request = proto.AnalyzeRequest(
        type="aws:iam/policy:Policy",
        urn="urn:p",
        name="p",
        properties=struct({"policy": document}),
    )
    names = sorted(d.policyName for d in servicer().Analyze(request, None).diagnostics)
    assert names == ["iam-no-wildcard-actions", "iam-no-wildcard-resources"]


def test_stale_access_key_is_reported_by_age(
    servicer: Callable[[], Any], struct: Callable[..., Any]
) -> None:
    # GIVEN an existing key (createDate known) on a 60-day schedule, created 120 days ago
    def resource(type_: str, name: str, props: dict[str, Any]) -> Any:
        return proto.AnalyzerResource(
            type=type_, urn=f"urn:{name}", name=name, properties=struct(props)
        )

    stack = proto.AnalyzeStackRequest(
        resources=[
            resource(
                "time:index/rotating:Rotating",
                "rotation",
                {"rotationDays": 60, "triggers": {"user": "mail"}},
            ),
            resource(
                "aws:iam/accessKey:AccessKey",
                "key",
                {"user": "mail", "createDate": "2000-01-01T00:00:00Z"},
            ),
        ]
    )
    diagnostics = servicer().AnalyzeStack(stack, None).diagnostics
    assert [(d.policyName, d.urn) for d in diagnostics] == [("iam-access-key-rotation", "urn:key")]
    assert "Access key key of IAM user mail is " in diagnostics[0].message
    assert "days old: rotate it" in diagnostics[0].message


def test_policy_main_builds_the_pack_from_the_shared_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    # Building the real PolicyPack starts a server and never returns: record the call instead.
    import pulumi_policy

    built: list[dict[str, Any]] = []
    monkeypatch.setattr(pulumi_policy, "PolicyPack", lambda **kwargs: built.append(kwargs))
    monkeypatch.setattr(
        policy_module, "deserialize_properties", policy_engine._ORIGINAL_DESERIALIZE
    )
    runpy.run_path(str(ROOT / "policy" / "__main__.py"), run_name="__main__")
    assert built == [
        {
            "name": "serverless-mail",
            "policies": POLICIES,
            "enforcement_level": EnforcementLevel.MANDATORY,
        }
    ]
    # AND the pack's analyzer keeps secretness for the secret rules
    assert secret_awareness_enabled()
