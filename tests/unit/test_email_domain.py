"""EmailDomain: exact children, their inputs, DNS values per region, the send grant."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from serverless_mail import ConfigError, DmarcArgs, EmailDomain, EmailDomainArgs
from serverless_mail.email_domain import (
    dkim_domain_for,
    dmarc_value,
    events_topic_policy,
    mail_from_mx_value,
    send_email_statement,
)
from serverless_mail.mocking import Recording

ZONE_ID = "00112233445566778899aabbccddeeff"
ARGS = EmailDomainArgs(
    domain="mail.example.com", zone_id=ZONE_ID, zone_name="example.com", region="eu-west-1"
)


def build(run: Any, args: EmailDomainArgs = ARGS) -> tuple[Recording, dict[str, Any]]:
    captured: dict[str, Any] = {}

    def program() -> None:
        domain = EmailDomain("mail", args)
        domain.grant_send_email().apply(lambda s: captured.setdefault("grant", s))
        domain.dns_records.apply(lambda r: captured.setdefault("dns_records", r))

    return run(program), captured


def test_creates_exactly_the_expected_children(run: Any) -> None:
    rec, _ = build(run)
    counts: dict[str, int] = {}
    for r in rec.resources:
        counts[r.type] = counts.get(r.type, 0) + 1
    assert counts == {
        "serverless-mail:index:EmailDomain": 1,
        "aws:sesv2/emailIdentity:EmailIdentity": 1,
        "aws:sesv2/configurationSet:ConfigurationSet": 1,
        "aws:sesv2/configurationSetEventDestination:ConfigurationSetEventDestination": 1,
        "aws:sesv2/emailIdentityMailFromAttributes:EmailIdentityMailFromAttributes": 1,
        "aws:sns/topic:Topic": 1,
        "aws:sns/topicPolicy:TopicPolicy": 1,
        "aws:kms/key:Key": 1,
        "cloudflare:index/dnsRecord:DnsRecord": 6,
    }
    assert all(r.parent_name == "mail" for r in rec.resources if r.type != EmailDomain_TYPE)


EmailDomain_TYPE = "serverless-mail:index:EmailDomain"


def test_identity_uses_easy_dkim_rsa_2048_and_the_configuration_set_by_default(run: Any) -> None:
    rec, _ = build(run)
    identity = rec.one("aws:sesv2/emailIdentity:EmailIdentity")
    # THEN a send naming no configuration set still gets TLS, suppression and events
    assert identity.inputs == {
        "emailIdentity": "mail.example.com",
        "dkimSigningAttributes": {"nextSigningKeyLength": "RSA_2048_BIT"},
        "configurationSetName": "serverless-mail-dev-mail",
    }
    # AND the default is set on the identity only, never also through the attributes resource
    assert (
        rec.of_type(
            "aws:sesv2/emailIdentityConfigurationSetAttributes:"
            "EmailIdentityConfigurationSetAttributes"
        )
        == []
    )


def test_configuration_set_suppresses_bounces_requires_tls_and_tracks_reputation(run: Any) -> None:
    rec, _ = build(run)
    cs = rec.one("aws:sesv2/configurationSet:ConfigurationSet").inputs
    assert cs["suppressionOptions"] == {"suppressedReasons": ["BOUNCE", "COMPLAINT"]}
    assert cs["deliveryOptions"] == {"tlsPolicy": "REQUIRE"}
    assert cs["reputationOptions"] == {"reputationMetricsEnabled": True}
    assert cs["configurationSetName"] == "serverless-mail-dev-mail"


def test_events_go_to_sns_in_upper_snake_case(run: Any) -> None:
    rec, _ = build(run)
    dest = rec.one(
        "aws:sesv2/configurationSetEventDestination:ConfigurationSetEventDestination"
    ).inputs
    assert dest["eventDestination"]["matchingEventTypes"] == [
        "BOUNCE",
        "COMPLAINT",
        "REJECT",
        "DELIVERY_DELAY",
        "RENDERING_FAILURE",
    ]
    topic = rec.one("aws:sns/topic:Topic")
    assert dest["eventDestination"]["snsDestination"]["topicArn"].startswith("arn:aws:sns:")
    key = rec.one("aws:kms/key:Key")
    assert topic.inputs["kmsMasterKeyId"] == key.outputs["arn"]
    assert key.inputs["enableKeyRotation"] is True
    statements = json.loads(key.inputs["policy"])["Statement"]
    assert statements[1]["Principal"] == {"Service": "ses.amazonaws.com"}
    assert statements[1]["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert statements[1]["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    assert statements[0]["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}


def test_topic_policy_lets_only_ses_of_this_account_and_configuration_set_publish(
    run: Any,
) -> None:
    rec, _ = build(run)
    policy = json.loads(rec.one("aws:sns/topicPolicy:TopicPolicy").inputs["policy"])
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"Service": "ses.amazonaws.com"}
    assert statement["Action"] == "sns:Publish"
    assert statement["Condition"]["StringEquals"] == {
        "AWS:SourceAccount": "123456789012",
        "AWS:SourceArn": "arn:aws:ses:eu-west-1:123456789012:configuration-set/serverless-mail-dev-mail",
    }


def test_mail_from_defaults_to_bounce_subdomain(run: Any) -> None:
    rec, _ = build(run)
    mail_from = rec.one(
        "aws:sesv2/emailIdentityMailFromAttributes:EmailIdentityMailFromAttributes"
    ).inputs
    assert mail_from == {
        "emailIdentity": "mail.example.com",
        "mailFromDomain": "bounce.mail.example.com",
        "behaviorOnMxFailure": "USE_DEFAULT_VALUE",
    }


def test_dns_records_are_dns_only_with_full_names_and_explicit_ttl(run: Any) -> None:
    rec, captured = build(run)
    records = {r.name: r.inputs for r in rec.of_type("cloudflare:index/dnsRecord:DnsRecord")}
    identity = rec.one("aws:sesv2/emailIdentity:EmailIdentity")
    tokens = identity.outputs["dkimSigningAttributes"]["tokens"]
    assert len(tokens) == 3
    for i, token in enumerate(tokens, start=1):
        assert records[f"mail-dkim-{i}"] | {"comment": None} == {
            "zoneId": ZONE_ID,
            "name": f"{token}._domainkey.mail.example.com",
            "type": "CNAME",
            "content": f"{token}.dkim.amazonses.com",
            "ttl": 3600,
            "proxied": False,
            "comment": None,
        }
    assert records["mail-mail-from-mx"]["content"] == "feedback-smtp.eu-west-1.amazonses.com"
    assert records["mail-mail-from-mx"]["priority"] == 10
    assert records["mail-mail-from-mx"]["name"] == "bounce.mail.example.com"
    assert records["mail-mail-from-spf"]["content"] == '"v=spf1 include:amazonses.com ~all"'
    assert records["mail-dmarc"]["name"] == "_dmarc.mail.example.com"
    assert records["mail-dmarc"]["content"] == '"v=DMARC1; p=quarantine; adkim=r; aspf=r"'
    for r in records.values():
        assert r["proxied"] is False and r["ttl"] == 3600
        assert r["name"].endswith("example.com") and ".example.com.example.com" not in r["name"]
    assert [(r["type"], r["name"]) for r in captured["dns_records"]] == [
        ("CNAME", f"{tokens[0]}._domainkey.mail.example.com"),
        ("CNAME", f"{tokens[1]}._domainkey.mail.example.com"),
        ("CNAME", f"{tokens[2]}._domainkey.mail.example.com"),
        ("MX", "bounce.mail.example.com"),
        ("TXT", "bounce.mail.example.com"),
        ("TXT", "_dmarc.mail.example.com"),
    ]


@pytest.mark.parametrize(
    ("region", "dkim_domain"),
    [
        ("eu-west-1", "dkim.amazonses.com"),
        ("us-east-1", "dkim.amazonses.com"),
        ("af-south-1", "dkim.af-south-1.amazonses.com"),
        ("ap-northeast-3", "dkim.ap-northeast-3.amazonses.com"),
        ("il-central-1", "dkim.il-central-1.amazonses.com"),
        ("eu-central-2", "dkim.eu-central-2.amazonses.com"),
        ("us-gov-east-1", "dkim.us-gov-east-1.amazonses.com"),
    ],
)
def test_dkim_target_follows_the_region(region: str, dkim_domain: str, run: Any) -> None:
    assert dkim_domain_for(region) == dkim_domain
    rec, _ = build(run, replace(ARGS, region=region))
    cname = rec.named("mail-dkim-1").inputs["content"]
    assert cname.endswith("." + dkim_domain)
    mx = rec.named("mail-mail-from-mx").inputs["content"]
    assert mx == mail_from_mx_value(region) == f"feedback-smtp.{region}.amazonses.com"


def test_no_verification_wait_unless_asked(run: Any) -> None:
    rec, _ = build(run)
    assert rec.of_type("aws:ses/domainIdentityVerification:DomainIdentityVerification") == []


def test_verification_wait_is_bounded(run: Any) -> None:
    rec, _ = build(run, replace(ARGS, wait_for_verification=True, verification_timeout_minutes=7))
    wait = rec.one("aws:ses/domainIdentityVerification:DomainIdentityVerification")
    assert wait.inputs == {"domain": "mail.example.com"}


def test_grant_send_email_is_scoped_to_identity_config_set_and_from_domain(run: Any) -> None:
    _, captured = build(run)
    grant = captured["grant"]
    # The SES v2 SendEmail both senders call is authorised as ses:SendEmail alone.
    assert grant["Action"] == ["ses:SendEmail"]
    assert grant["Resource"] == [
        "arn:aws:ses:eu-west-1:123456789012:identity/mail.example.com",
        "arn:aws:ses:eu-west-1:123456789012:configuration-set/serverless-mail-dev-mail",
    ]
    assert grant["Condition"] == {
        "StringLike": {"ses:FromAddress": ["*@mail.example.com", "*@*.mail.example.com"]}
    }
    assert "*" not in grant["Resource"] and all("*" not in a for a in grant["Action"])


@pytest.mark.parametrize(
    ("dmarc", "value"),
    [
        (DmarcArgs(policy="none"), "v=DMARC1; p=none; adkim=r; aspf=r"),
        (
            DmarcArgs(
                policy="reject",
                subdomain_policy="quarantine",
                percent=50,
                aggregate_report_addresses=("a@example.com", "b@example.net"),
                dkim_alignment="s",
                spf_alignment="s",
            ),
            "v=DMARC1; p=reject; sp=quarantine; pct=50; "
            "rua=mailto:a@example.com,mailto:b@example.net; adkim=s; aspf=s",
        ),
    ],
)
def test_dmarc_value(dmarc: DmarcArgs, value: str) -> None:
    assert dmarc_value(dmarc) == value


def test_helpers_are_pure() -> None:
    statement = send_email_statement("arn:i", "arn:c", "example.com")
    assert statement["Resource"] == ["arn:i", "arn:c"]
    policy = events_topic_policy("arn:t", "arn:aws:ses:us-east-1:999999999999:configuration-set/x")
    assert (
        policy["Statement"][0]["Condition"]["StringEquals"]["AWS:SourceAccount"] == "999999999999"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"domain": "Mail.Example.com"},
            r"`domain` must be a lower-case domain name .* 'Mail.Example.com'",
        ),
        ({"domain": "mail.other.org"}, r"`domain` must be the zone `zone_name` \('example.com'\)"),
        ({"zone_id": "nope"}, r"`zone_id` must be a Cloudflare zone id .* 'nope'"),
        ({"region": "eu_west_1"}, r"`region` must be an AWS region code .* 'eu_west_1'"),
        ({"mail_from_subdomain": "a.b"}, r"`mail_from_subdomain` must be one DNS label .* 'a.b'"),
        (
            {"mail_from_behavior_on_mx_failure": "IGNORE"},
            r"`mail_from_behavior_on_mx_failure` must be one of 'USE_DEFAULT_VALUE', 'REJECT_MESSAGE', but 'IGNORE'",
        ),
        ({"dns_ttl": 1}, r"`dns_ttl` must be between 60 and 86400, but 1 was provided"),
        (
            {"dns_ttl": "300"},
            r"`dns_ttl` must be a whole number between 60 and 86400, but '300' \(str\)",
        ),
        (
            {"wait_for_verification": "yes"},
            r"`wait_for_verification` must be true or false, but 'yes'",
        ),
        (
            {"verification_timeout_minutes": 0},
            r"`verification_timeout_minutes` must be between 1 and 120, but 0",
        ),
        (
            {"configuration_set_name": "has space"},
            r"`configuration_set_name` must be 1 to 64 letters",
        ),
        (
            {"dmarc": DmarcArgs(policy="monitor")},
            r"`dmarc.policy` must be one of 'none', 'quarantine', 'reject', but 'monitor'",
        ),  # type: ignore[arg-type]
        ({"dmarc": DmarcArgs(percent=101)}, r"`dmarc.percent` must be between 0 and 100, but 101"),
        (
            {"dmarc": DmarcArgs(aggregate_report_addresses=("x",))},
            r"`dmarc.aggregate_report_addresses\[0\]` must be an email address",
        ),
    ],
)
def test_invalid_args_fail_before_any_child_exists(
    change: dict[str, Any], message: str, run: Any
) -> None:
    args = replace(ARGS, **change)
    with pytest.raises(ConfigError, match=message):
        args.validate()
    registered: list[str] = []

    def program() -> None:
        try:
            EmailDomain("mail", args)
        finally:
            pass

    with pytest.raises(ConfigError, match=message):
        rec = run(program)
        registered = [r.type for r in rec.resources]
    assert registered == []
