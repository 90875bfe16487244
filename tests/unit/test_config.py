"""Stage config: every bad value fails before any resource, naming key, value and fix."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from serverless_mail import ConfigError, parse_stage_config
from serverless_mail.email_domain import DmarcArgs

from tests.conftest import run_stack, stack_config

VALID: dict[str, Any] = {
    "email": {"domain": "mail.example.com"},
    "cloudflare": {
        "accountId": "0123456789abcdef0123456789abcdef",
        "zoneId": "00112233445566778899aabbccddeeff",
        "zoneName": "example.com",
    },
}


def parse(values: dict[str, Any], region: Any = "eu-west-1", stack: str = "dev") -> Any:
    return parse_stage_config(stack, values, region)


def test_defaults_come_from_the_component_args() -> None:
    config = parse(VALID)
    assert config.args.resolved_default_from == "no-reply@mail.example.com"
    assert config.args.email.dmarc == DmarcArgs()
    assert config.args.email.dns_ttl == 3600
    assert config.args.email.mail_from_domain == "bounce.mail.example.com"
    assert config.is_production is False


def test_repository_stacks_differ_where_a_real_team_would() -> None:
    dev = parse_from_file("dev").args
    prod = parse_from_file("prod").args
    assert dev.email.domain == "dev-mail.example.com" and prod.email.domain == "example.com"
    assert dev.email.dmarc.policy == "none"
    assert prod.email.dmarc.policy in ("quarantine", "reject")
    assert prod.email.dmarc.aggregate_report_addresses == ("dmarc-reports@example.com",)
    assert (dev.email.wait_for_verification, prod.email.wait_for_verification) == (False, True)
    assert parse_from_file("prod").is_production


def parse_from_file(stack: str) -> Any:
    raw = stack_config(stack)
    values = {k.split(":", 1)[1]: v for k, v in raw.items() if k.startswith("serverless-mail:")}
    return parse(values, raw["aws:region"], stack)


def mutated(path: str, value: Any) -> dict[str, Any]:
    values = copy.deepcopy(VALID)
    *parents, leaf = path.split(".")
    node = values
    for p in parents:
        node = node.setdefault(p, {})
    if value is _DELETE:
        del node[leaf]
    else:
        node[leaf] = value
    return values


_DELETE = object()

CASES = [
    (
        "email.domain",
        "https://mail.example.com",
        r"`serverless-mail:email.domain` must be a lower-case domain name .* 'https://mail.example.com'",
    ),
    ("email.domain", _DELETE, r"`serverless-mail:email.domain` is required"),
    (
        "email.domain",
        "mail.other.org",
        r"`serverless-mail:email.domain` must be the zone `serverless-mail:cloudflare.zoneName` \('example.com'\)",
    ),
    (
        "email.dmarc.policy",
        "strict",
        r"`serverless-mail:email.dmarc.policy` must be one of 'none', 'quarantine', 'reject', but 'strict' was provided",
    ),
    (
        "email.dmarc.percent",
        150,
        r"`serverless-mail:email.dmarc.percent` must be between 0 and 100, but 150 was provided",
    ),
    (
        "email.dmarc.aggregateReportAddresses",
        ["mailto:x@example.com"],
        r"`serverless-mail:email.dmarc.aggregateReportAddresses\[0\]` must be an email address",
    ),
    (
        "email.dmarc.aggregateReportAddresses",
        5,
        r"`serverless-mail:email.dmarc.aggregateReportAddresses` must be a list of addresses .* but 5",
    ),
    (
        "email.dmarc.pollicy",
        "none",
        r"`serverless-mail:email.dmarc.pollicy` is not a known key \(did you mean `policy`\?\); the keys of `serverless-mail:email.dmarc` are: adoptRecordId, aggregateReportAddresses, dkimAlignment",
    ),
    (
        "email.dmarc",
        "none",
        r"`serverless-mail:email.dmarc` must be an object \(a YAML mapping\), but str 'none'",
    ),
    (
        "email.dnsTtl",
        30,
        r"`serverless-mail:email.dnsTtl` must be between 60 and 86400, but 30 was provided",
    ),
    (
        "email.dnsTtl",
        "300",
        r"`serverless-mail:email.dnsTtl` must be a whole number between 60 and 86400, but '300' \(str\)",
    ),
    (
        "email.verificationTimeoutMinutes",
        500,
        r"`serverless-mail:email.verificationTimeoutMinutes` must be between 1 and 120, but 500",
    ),
    (
        "email.waitForVerification",
        "true",
        r"`serverless-mail:email.waitForVerification` must be true or false, but 'true' \(str\)",
    ),
    (
        "email.mailFromBehaviorOnMxFailure",
        "bounce",
        r"`serverless-mail:email.mailFromBehaviorOnMxFailure` must be one of 'USE_DEFAULT_VALUE', 'REJECT_MESSAGE', but 'bounce'",
    ),
    (
        "email.mailFromSubdomain",
        "Bad_Label",
        r"`serverless-mail:email.mailFromSubdomain` must be one DNS label such as 'bounce', but 'Bad_Label'",
    ),
    (
        "email.defaultFrom",
        "noreply@elsewhere.test",
        r"`serverless-mail:email.defaultFrom` must be an address on 'mail.example.com' or one of its subdomains",
    ),
    (
        "email.defaultFrom",
        "not an address",
        r"`serverless-mail:email.defaultFrom` must be an email address",
    ),
    ("email.domian", "x.example.com", r"`serverless-mail:email.domian` is not a known key"),
    (
        "cloudflare.zoneId",
        _DELETE,
        r"`serverless-mail:cloudflare.zoneId` is required: set it in Pulumi.<stack>.yaml",
    ),
    (
        "cloudflare.zoneId",
        "example.com",
        r"`serverless-mail:cloudflare.zoneId` must be a Cloudflare zone id \(32 hex characters.* but 'example.com'",
    ),
    (
        "cloudflare.accountId",
        12345,
        r"`serverless-mail:cloudflare.accountId` must be a Cloudflare account id .* but 12345",
    ),
    (
        "cloudflare.zoneName",
        "Example.COM",
        r"`serverless-mail:cloudflare.zoneName` must be a lower-case domain name",
    ),
    ("cloudflare.apiToken", "x", r"`serverless-mail:cloudflare.apiToken` is not a known key"),
]


@pytest.mark.parametrize(
    ("path", "value", "message"), CASES, ids=[f"{c[0]}={c[1]!r}"[:60] for c in CASES]
)
def test_bad_values_are_rejected_with_key_value_and_fix(
    path: str, value: Any, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(mutated(path, value))


@pytest.mark.parametrize("region", ["EU-WEST-1", "europe", 5])
def test_region_is_well_formed(region: Any) -> None:
    with pytest.raises(ConfigError, match=r"`aws:region` must be an AWS region code"):
        parse(VALID, region=region)


@pytest.mark.parametrize("region", [None, ""])
def test_region_is_required(region: Any) -> None:
    with pytest.raises(
        ConfigError, match=r"^`aws:region` is required: pulumi config set aws:region eu-west-1$"
    ):
        parse(VALID, region=region)


def test_missing_section_is_reported_as_required() -> None:
    with pytest.raises(ConfigError, match=r"`serverless-mail:cloudflare.zoneId` is required"):
        parse({"email": VALID["email"]})


def test_account_id_is_required_only_while_the_worker_path_is_on() -> None:
    values = mutated("cloudflare.accountId", _DELETE)
    with pytest.raises(
        ConfigError,
        match=r"`serverless-mail:cloudflare.accountId` is required while the Worker path is on",
    ):
        parse(values)
    values["worker"] = {"enabled": False}
    assert parse(values).args.worker_sender is None


def test_invalid_config_fails_the_program_before_any_resource() -> None:
    with pytest.raises(ConfigError, match=r"`serverless-mail:email.dmarc.policy`"):
        run_stack(
            "dev",
            {"serverless-mail:email": {"domain": "dev-mail.example.com", "dmarc": {"policy": "x"}}},
        )


def test_queue_visibility_is_checked_against_the_lambda_settings() -> None:
    values = mutated("queue.visibilityTimeoutSeconds", 100)
    values["lambda"] = {"timeoutSeconds": 60}
    with pytest.raises(
        ConfigError,
        match=r"`serverless-mail:queue.visibilityTimeoutSeconds` must be at least 360 "
        r"\(6 \* `serverless-mail:lambda.timeoutSeconds` 60 \+ "
        r"`serverless-mail:lambda.batchingWindowSeconds` 0",
    ):
        parse(values)
    assert (
        parse(
            mutated("lambda.timeoutSeconds", 60)
        ).args.consumer_queue.effective_visibility_timeout_seconds
        == 360
    )
