"""The pack through pulumi_policy's analyzer servicer, as the Pulumi CLI drives it.

Requests are built from what the mocks recorded: ``Analyze`` gets each resource's
inputs exactly as the engine received them (secret signatures included),
``AnalyzeStack`` every resource with its outputs. This covers what ``evaluate``
emulates: secrets unwrapped before a rule sees them, unknown values behind the
proxy.
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
import pytest
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import proto
from pulumi_policy import EnforcementLevel
from pulumi_policy.deserialize import SPECIAL_SECRET_SIG, SPECIAL_SIG_KEY
from pulumi_policy.policy import _PolicyAnalyzerServicer
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE
from serverless_mail.mocking import UNKNOWN, Recording, Secret
from serverless_mail.policies import POLICIES

ROOT = Path(__file__).resolve().parents[2]


def servicer() -> _PolicyAnalyzerServicer:
    return _PolicyAnalyzerServicer("serverless-mail", "0.1.0", POLICIES, EnforcementLevel.MANDATORY)


def wire(value: Any) -> Any:
    """A recorded value back in the engine's wire form."""
    if isinstance(value, Secret):
        return {SPECIAL_SIG_KEY: SPECIAL_SECRET_SIG, "value": wire(value.value)}
    if value is UNKNOWN:
        return UNKNOWN_STRING_VALUE
    if isinstance(value, dict):
        return {k: wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [wire(v) for v in value]
    return value


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(wire(value))
    return message


def analyze(recording: Recording) -> list[Any]:
    """Every diagnostic the servicer returns for a recording (resource and stack rules)."""
    analyzer = servicer()
    custom = [r for r in recording.resources if r.custom]
    diagnostics: list[Any] = []
    for r in custom:
        request = proto.AnalyzeRequest(type=r.type, properties=r.struct, urn=r.urn, name=r.name)
        diagnostics += analyzer.Analyze(request, None).diagnostics
    stack = proto.AnalyzeStackRequest(
        resources=[
            proto.AnalyzerResource(
                type=r.type,
                urn=r.urn,
                name=r.name,
                properties=struct({**r.inputs, **r.outputs}),
                parent=r.parent or "",
            )
            for r in custom
        ]
    )
    diagnostics += analyzer.AnalyzeStack(stack, None).diagnostics
    return diagnostics


def mandatory(diagnostics: list[Any]) -> list[tuple[str, str]]:
    return [(d.policyName, d.message) for d in diagnostics if d.enforcementLevel == proto.MANDATORY]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_real_stack_has_no_mandatory_diagnostic(
    stack: str, stack_recordings: dict[str, Recording]
) -> None:
    diagnostics = analyze(stack_recordings[stack])
    assert mandatory(diagnostics) == []
    assert all(d.enforcementLevel == proto.ADVISORY for d in diagnostics)


def test_wildcard_action_is_a_mandatory_diagnostic(run: Callable[..., Recording]) -> None:
    recording = run(
        lambda: aws.iam.RolePolicy(
            "p",
            role="r",
            policy=json.dumps({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
        )
    )
    diagnostics = analyze(recording)
    assert [(d.policyName, d.enforcementLevel) for d in diagnostics] == [
        ("iam-no-wildcard-actions", proto.MANDATORY)
    ]
    assert diagnostics[0].message == (
        "IAM policies allow no '*' or 'service:*' action.\n"
        "policy allows the wildcard action '*': list the exact actions the principal needs "
        "(e.g. 'sqs:SendMessage'), as the IAM User Guide's least-privilege best practice asks."
    )


def test_secret_plain_text_binding_is_seen_through_the_secret(
    run: Callable[..., Recording],
) -> None:
    # GIVEN the binding's text is a Pulumi secret (a secret signature on the wire)
    recording = run(
        lambda: cloudflare.WorkersScript(
            "worker",
            account_id="a",
            script_name="w",
            content="export default {}",
            main_module="index.js",
            bindings=[
                {
                    "name": "AWS_SECRET_ACCESS_KEY",
                    "type": "plain_text",
                    "text": pulumi.Output.secret("k"),
                }
            ],
        )
    )
    script = recording.one("cloudflare:index/workersScript:WorkersScript")
    wire_binding = json_format.MessageToDict(script.struct)["bindings"][0]
    assert wire_binding["text"] == {SPECIAL_SIG_KEY: SPECIAL_SECRET_SIG, "value": "k"}
    # THEN the rule still judges the binding's type
    assert [name for name, _ in mandatory(analyze(recording))] == [
        "cloudflare-worker-secret-bindings"
    ]


def test_unknown_policy_document_is_skipped_not_failed() -> None:
    # GIVEN a preview where the policy document depends on a queue not created yet
    request = proto.AnalyzeRequest(
        type="aws:iam/rolePolicy:RolePolicy",
        urn="urn:pulumi:dev::p::aws:iam/rolePolicy:RolePolicy::p",
        name="p",
        properties=struct({"role": "r", "policy": UNKNOWN}),
    )
    assert list(servicer().Analyze(request, None).diagnostics) == []


def test_unknown_redrive_policy_is_skipped_not_failed() -> None:
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


def test_policy_document_given_as_an_object_is_read() -> None:
    document = {"Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}
    request = proto.AnalyzeRequest(
        type="aws:iam/policy:Policy",
        urn="urn:p",
        name="p",
        properties=struct({"policy": document}),
    )
    names = sorted(d.policyName for d in servicer().Analyze(request, None).diagnostics)
    assert names == ["iam-no-wildcard-actions", "iam-no-wildcard-resources"]


def test_policy_main_builds_the_pack_from_the_shared_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    # Building the real PolicyPack starts a server and never returns: record the call instead.
    import pulumi_policy

    built: list[dict[str, Any]] = []
    monkeypatch.setattr(pulumi_policy, "PolicyPack", lambda **kwargs: built.append(kwargs))
    runpy.run_path(str(ROOT / "policy" / "__main__.py"), run_name="__main__")
    assert built == [
        {
            "name": "serverless-mail",
            "policies": POLICIES,
            "enforcement_level": EnforcementLevel.MANDATORY,
        }
    ]
