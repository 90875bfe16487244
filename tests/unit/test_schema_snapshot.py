"""The component package: committed schema snapshot, what the host serves, construct."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from typing import Any

import pytest
from pulumi.provider.experimental.component import ComponentProvider
from pulumi.provider.server import ComponentInitError
from serverless_mail.mocking import Recording
from serverless_mail.provider import (
    EXPOSED,
    PACKAGE_NAME,
    PACKAGE_VERSION,
    package_schema,
    provider_components,
)

from scripts.gen_schema import SNAPSHOT, render

UPDATE = "run `python scripts/gen_schema.py` and commit schema/serverless-mail.schema.json"


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def test_committed_schema_matches_the_components_byte_for_byte() -> None:
    expected = render()
    current = SNAPSHOT.read_text(encoding="utf-8") if SNAPSHOT.exists() else "<missing>"
    assert current == expected, f"the package schema snapshot is stale: {UPDATE}"


def test_the_provider_host_serves_the_same_schema() -> None:
    host = ComponentProvider(provider_components(), PACKAGE_NAME, None, PACKAGE_VERSION)
    assert json.loads(host.schema or "{}") == package_schema()


def test_package_version_follows_pyproject(project_root: Any) -> None:
    pyproject = tomllib.loads((project_root / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["version"] == PACKAGE_VERSION


def test_every_exposed_component_has_its_own_type_token() -> None:
    resources = package_schema()["resources"]
    assert sorted(resources) == sorted(
        f"serverless-mail:index:{e.component.__name__}" for e in EXPOSED
    )


@pytest.mark.parametrize("entry", EXPOSED, ids=lambda e: e.component.__name__)
def test_inputs_are_the_dataclass_fields_required_exactly_when_they_have_no_default(
    entry: Any,
) -> None:
    resource = package_schema()["resources"][f"serverless-mail:index:{entry.component.__name__}"]
    fields = dataclasses.fields(entry.args_type)
    assert set(resource["inputProperties"]) == {camel(f.name) for f in fields}
    required = {
        camel(f.name)
        for f in fields
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    assert set(resource.get("requiredInputs", [])) == required
    for name, prop in resource["inputProperties"].items():
        assert prop.get("description"), f"{name} has no description"
    assert set(resource["properties"]) == {camel(k) for k in entry.outputs}


def test_vercel_env_schema_keeps_secrets_as_inputs_and_lists_as_arrays() -> None:
    inputs = package_schema()["resources"]["serverless-mail:index:VercelEnv"]["inputProperties"]
    assert inputs["workerToken"] == {
        "description": inputs["workerToken"]["description"],
        "type": "string",
    }
    assert inputs["targets"]["type"] == "array"
    assert (inputs["targets"]["items"]["type"], inputs["targets"]["items"]["plain"]) == (
        "string",
        True,
    )
    assert inputs["oidc"]["plain"] is True


# --- construct: the host's path from wire inputs to the real component ---------------

VERCEL_INPUTS = {
    "teamSlug": "acme",
    "projectId": "prj_abc123",
    "projectName": "shop",
    "stage": "prod",
    "queueUrl": "https://sqs.eu-west-1.amazonaws.com/123456789012/mail-queue",
    "queueArn": "arn:aws:sqs:eu-west-1:123456789012:mail-queue",
    "region": "eu-west-1",
    "emailFrom": "no-reply@mail.example.com",
    "targets": ["production", "preview"],
}


def construct(run: Any, type_name: str, inputs: dict[str, Any]) -> tuple[Recording, dict[str, Any]]:
    host = ComponentProvider(provider_components(), PACKAGE_NAME, None, PACKAGE_VERSION)
    captured: dict[str, Any] = {}

    def program() -> None:
        result = host.construct("app", f"serverless-mail:index:{type_name}", inputs, None)
        for key, value in result.state.items():
            captured[key] = value

    return run(program), captured


def test_construct_builds_the_real_vercel_env_under_the_provider_component(run: Any) -> None:
    rec, state = construct(run, "VercelEnv", VERCEL_INPUTS)
    components = rec.of_type("serverless-mail:index:VercelEnv")
    assert [(c.name, c.parent_name) for c in components] == [
        ("app", "serverless-mail-dev"),
        ("app", "app"),
    ]
    inner = components[1].urn
    assert "serverless-mail:index:VercelEnv$serverless-mail:index:VercelEnv::app" in inner
    assert {r.parent for r in rec.resources if r.custom} == {inner}
    assert {r.type for r in rec.resources if r.custom} >= {
        "aws:iam/role:Role",
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
    }
    targets = {
        tuple(r.inputs["targets"])
        for r in rec.of_type("vercel:index/projectEnvironmentVariable:ProjectEnvironmentVariable")
    }
    assert targets == {("production", "preview")}
    assert state["targets"] == ["production", "preview"]
    assert set(state) == {"roleArn", "oidcProviderArn", "targets"}


def test_construct_builds_nested_dataclasses_for_email_domain(run: Any) -> None:
    inputs = {
        "domain": "mail.example.com",
        "zoneId": "00112233445566778899aabbccddeeff",
        "zoneName": "example.com",
        "region": "eu-west-1",
        "dmarc": {"policy": "reject", "aggregateReportAddresses": ["dmarc@example.com"]},
        "dnsTtl": 300.0,
    }
    rec, state = construct(run, "EmailDomain", inputs)
    records = rec.of_type("cloudflare:index/dnsRecord:DnsRecord")
    dmarc = next(r for r in records if r.name == "app-dmarc")
    assert dmarc.inputs["content"] == (
        '"v=DMARC1; p=reject; rua=mailto:dmarc@example.com; adkim=r; aspf=r"'
    )
    assert {r.inputs["ttl"] for r in records} == {300}
    assert set(state) == {
        "arn",
        "configurationSetName",
        "configurationSetArn",
        "eventsTopicArn",
        "dnsRecords",
    }


def test_construct_reports_the_components_validation_message(run: Any) -> None:
    with pytest.raises(ComponentInitError, match=r"`project_id` must be a Vercel project id"):
        construct(run, "VercelEnv", {**VERCEL_INPUTS, "projectId": "shop"})
