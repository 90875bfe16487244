"""SES v2 domain identity with Easy DKIM, configuration set, bounce/complaint events
to SNS, custom MAIL FROM, and the DKIM/MAIL FROM/SPF/DMARC records in Cloudflare DNS."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import pulumi
import pulumi_aws as aws
import pulumi_cloudflare as cloudflare

from .errors import ConfigError
from .settings import (
    Bool,
    Choice,
    Domain,
    EmailList,
    Int,
    Pattern,
    check_fields,
    require_args,
    rule,
    strict_args,
)
from .topics import create_service_topic
from .validation import check_domain, is_on_domain

__all__ = [
    "DEFAULT_DKIM_DOMAIN",
    "DMARC_TAG",
    "EVENT_TYPES",
    "REGION_DKIM_DOMAINS",
    "SEND_EMAIL_ACTIONS",
    "DmarcArgs",
    "DnsRecord",
    "EmailDomain",
    "EmailDomainArgs",
    "dkim_domain_for",
    "dmarc_value",
    "mail_from_mx_value",
]

TYPE = "serverless-mail:index:EmailDomain"

DmarcPolicyName = Literal["none", "quarantine", "reject"]
Alignment = Literal["r", "s"]
MxFailureBehavior = Literal["USE_DEFAULT_VALUE", "REJECT_MESSAGE"]

SEND_EMAIL_ACTIONS = ("ses:SendEmail",)
"""The only SES action a sender is ever granted: both senders call SES v2 SendEmail,
which IAM authorises as ``ses:SendEmail`` for simple, raw and templated content alike
(SES API v2 reference, SendEmail; Service Authorization Reference, Amazon SES)."""

EVENT_TYPES = ("BOUNCE", "COMPLAINT", "REJECT", "DELIVERY_DELAY", "RENDERING_FAILURE")
"""SES v2 event types (UPPER_SNAKE_CASE) published to the events topic."""

SUPPRESSED_REASONS = ("BOUNCE", "COMPLAINT")

DEFAULT_DKIM_DOMAIN = "dkim.amazonses.com"
# AWS General Reference, "Amazon SES endpoints and quotas", section "DKIM domains":
# these regions sign with a region-specific domain; every other region uses
# DEFAULT_DKIM_DOMAIN. A CNAME to the wrong one never verifies.
REGION_DKIM_DOMAINS = {
    region: f"dkim.{region}.amazonses.com"
    for region in (
        "af-south-1",
        "ap-northeast-3",
        "ap-south-2",
        "ap-southeast-3",
        "ap-southeast-5",
        "ca-west-1",
        "eu-central-2",
        "eu-south-1",
        "il-central-1",
        "me-central-1",
        "us-gov-east-1",
    )
}

SPF_VALUE = "v=spf1 include:amazonses.com ~all"

DMARC_TAG = "serverless-mail:dmarc"
"""Identity tag marking a DMARC record managed outside the stack."""

# Any well-formed region is accepted (SES keeps adding regions); typos are not.
REGION_RE = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d")

_POLICIES = get_args(DmarcPolicyName)
_ALIGNMENTS = get_args(Alignment)
_CLOUDFLARE_ID_RE = re.compile(r"[0-9a-f]{32}")
_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_ZONE_ID_WHAT = "a Cloudflare zone id (32 hex characters, from the zone's Overview page)"
_RECORD_ID_WHAT = "a Cloudflare DNS record id (32 hex characters, from the DNS records API)"


@strict_args
@dataclass(frozen=True, kw_only=True)
class DmarcArgs:
    """The DMARC policy published at ``_dmarc.<domain>`` (RFC 7489)."""

    policy: DmarcPolicyName = field(default="quarantine", metadata=rule(Choice(_POLICIES)))
    """What receivers do with mail that fails DMARC. Default: ``"quarantine"``."""

    subdomain_policy: DmarcPolicyName | None = field(default=None, metadata=rule(Choice(_POLICIES)))
    """``sp=``: the policy for subdomains. Default: ``None`` (inherit ``policy``)."""

    percent: int = field(default=100, metadata=rule(Int(0, 100)))
    """``pct=``: the share of failing mail the policy applies to. Default: ``100``."""

    aggregate_report_addresses: tuple[str, ...] = field(default=(), metadata=rule(EmailList()))
    """``rua=``: addresses that receive aggregate reports. Default: none."""

    dkim_alignment: Alignment = field(default="r", metadata=rule(Choice(_ALIGNMENTS)))
    """``adkim=``: relaxed (``r``) or strict (``s``) DKIM alignment. Default: ``"r"``."""

    spf_alignment: Alignment = field(default="r", metadata=rule(Choice(_ALIGNMENTS)))
    """``aspf=``: relaxed (``r``) or strict (``s``) SPF alignment. Default: ``"r"``."""

    publish: bool = field(default=True, metadata=rule(Bool()))
    """Publish the ``_dmarc`` TXT record. ``False`` leaves a DMARC record the zone already
    has alone (a name holds one DMARC policy; receivers ignore all of them when there
    are two, RFC 7489 section 6.6.3). Default: ``True``."""

    adopt_record_id: str | None = field(
        default=None, metadata=rule(Pattern(_CLOUDFLARE_ID_RE, _RECORD_ID_WHAT))
    )
    """The Cloudflare id of an existing ``_dmarc`` record to adopt (``pulumi import``ed
    on the next ``up``, then managed here with the values above) instead of creating a
    second one. Default: ``None`` (create the record)."""

    def validate(self, prefix: str = "dmarc.") -> None:
        """Raise :class:`ConfigError` on the first invalid field."""
        check_fields(self, prefix)
        if self.adopt_record_id is not None and not self.publish:
            raise ConfigError(
                f"`{prefix}adopt_record_id` needs `{prefix}publish` true, but `publish` is "
                "false: adopt the existing record or leave it alone, not both"
            )


@strict_args
@dataclass(frozen=True, kw_only=True)
class EmailDomainArgs:
    """Arguments of :class:`EmailDomain`."""

    domain: str = field(metadata=rule(Domain()))
    """The sending domain, e.g. ``mail.example.com``. Required."""

    zone_id: pulumi.Input[str] = field(
        metadata=rule(Pattern(_CLOUDFLARE_ID_RE, _ZONE_ID_WHAT, "example.com"))
    )
    """The Cloudflare zone that holds ``domain``. Required."""

    zone_name: str = field(metadata=rule(Domain()))
    """That zone's name, e.g. ``example.com``; ``domain`` must be in it. Required."""

    region: str = field(
        metadata=rule(Pattern(REGION_RE, "an AWS region code such as 'eu-west-1'", "eu-west"))
    )
    """The SES region, which decides the DKIM and MAIL FROM MX targets. Required."""

    mail_from_subdomain: str = field(
        default="bounce",
        metadata=rule(Pattern(_LABEL_RE, "one DNS label such as 'bounce'", "bounce.mail")),
    )
    """Label of the custom MAIL FROM domain, ``<label>.<domain>``. Default: ``"bounce"``."""

    mail_from_behavior_on_mx_failure: MxFailureBehavior = field(
        default="USE_DEFAULT_VALUE", metadata=rule(Choice(get_args(MxFailureBehavior)))
    )
    """What SES does when the MAIL FROM MX is missing. Default: ``"USE_DEFAULT_VALUE"``
    (fall back to amazonses.com; ``"REJECT_MESSAGE"`` refuses to send instead)."""

    dmarc: DmarcArgs = field(default_factory=DmarcArgs)
    """The DMARC record. Default: ``DmarcArgs()`` (``p=quarantine``)."""

    dns_ttl: int = field(default=3600, metadata=rule(Int(60, 86400)))
    """TTL of every DNS record, in seconds (60 to 86400). Default: ``3600``."""

    wait_for_verification: bool = field(default=False, metadata=rule(Bool()))
    """Block ``pulumi up`` until SES sees the DKIM records. Default: ``False``."""

    verification_timeout_minutes: int = field(default=15, metadata=rule(Int(1, 120)))
    """Upper bound of that wait, in minutes (1 to 120). Default: ``15``."""

    configuration_set_name: str | None = field(
        default=None,
        metadata=rule(
            Pattern(re.compile(r"[A-Za-z0-9_-]{1,64}"), "1 to 64 letters, digits, '_' or '-'")
        ),
    )
    """Name of the SES configuration set. Default: ``None``, which means
    ``<project>-<stack>-<component name>`` (unique per stage in one account)."""

    publish_events: bool = field(default=True, metadata=rule(Bool()))
    """Publish bounce, complaint, reject, delay and rendering-failure events to
    ``events_topic`` (a consumer must subscribe to it, or they are lost; the policy
    pack checks). :class:`TransactionalEmail` sets it from whether its events pipeline
    is on. Default: ``True``."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` on the first invalid field."""
        if not isinstance(self.dmarc, DmarcArgs):
            raise ConfigError(
                f"`dmarc` must be a DmarcArgs, but {type(self.dmarc).__name__} was provided"
            )
        check_fields(self)
        if not is_on_domain(self.domain, self.zone_name):
            raise ConfigError(
                f"`domain` must be the zone `zone_name` ({self.zone_name!r}) or a "
                f"subdomain of it, but {self.domain!r} was provided: use a zone that "
                "holds the sending domain"
            )
        check_domain("mail_from_subdomain", f"{self.mail_from_subdomain}.{self.domain}")
        self.dmarc.validate()

    @property
    def mail_from_domain(self) -> str:
        """The custom MAIL FROM domain, ``<mail_from_subdomain>.<domain>``."""
        return f"{self.mail_from_subdomain}.{self.domain}"


@dataclass(frozen=True)
class DnsRecord:
    """One record the stack publishes, for audit or publishing elsewhere."""

    type: Literal["CNAME", "MX", "TXT"]
    name: str
    value: str
    priority: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The record as a plain mapping (the ``dns_records`` output's items)."""
        out: dict[str, Any] = {"type": self.type, "name": self.name, "value": self.value}
        if self.priority is not None:
            out["priority"] = self.priority
        return out


class EmailDomain(pulumi.ComponentResource):
    """A DKIM-aligned SES sending domain with its DNS in Cloudflare.

    Attributes:
        identity: the SES v2 email identity.
        configuration_set: the configuration set every send must name.
        events_topic: SNS topic receiving bounce, complaint and other events.
        arn / configuration_set_arn / configuration_set_name / events_topic_arn:
            what callers usually need.
        dns_records: every record published, as ``[{type, name, value[, priority]}]``.
    """

    identity: aws.sesv2.EmailIdentity
    configuration_set: aws.sesv2.ConfigurationSet
    events_topic: aws.sns.Topic
    verification: aws.ses.DomainIdentityVerification | None

    def __init__(
        self,
        name: str,
        args: EmailDomainArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(TYPE, name, {}, opts)
        require_args(args, EmailDomainArgs, "EmailDomain")
        args.validate()
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)

        self._create_configuration_set()
        self._create_events_topic()
        self._create_identity()
        self._configure_mail_from()
        records = self._publish_dns_records()
        self._wait_for_verification(records)

        self.domain = args.domain
        self.arn = self.identity.arn
        self.configuration_set_name = self.configuration_set.configuration_set_name
        self.configuration_set_arn = self.configuration_set.arn
        self.events_topic_arn = self.events_topic.arn
        self.dns_records: pulumi.Output[list[dict[str, Any]]] = (
            self.identity.dkim_signing_attributes.apply(
                lambda attrs: [
                    r.as_dict()
                    for r in dns_records_for(args, list(attrs.tokens or []) if attrs else [])
                ]
            )
        )
        self.register_outputs(
            {
                "arn": self.arn,
                "configuration_set_name": self.configuration_set_name,
                "events_topic_arn": self.events_topic_arn,
                "dns_records": self.dns_records,
            }
        )

    def _create_configuration_set(self) -> None:
        self.configuration_set = aws.sesv2.ConfigurationSet(
            f"{self._name}-config",
            configuration_set_name=self._args.configuration_set_name
            or default_configuration_set_name(self._name),
            suppression_options={"suppressed_reasons": list(SUPPRESSED_REASONS)},
            reputation_options={"reputation_metrics_enabled": True},
            delivery_options={"tls_policy": "REQUIRE"},
            sending_options={"sending_enabled": True},
            opts=self._child,
        )

    def _create_events_topic(self) -> None:
        self.events_topic_key, self.events_topic = create_service_topic(
            key_name=f"{self._name}-events-key",
            topic_name=f"{self._name}-events",
            publisher="ses.amazonaws.com",
            publisher_sid="SesEventsPublishToTheTopic",
            description=f"Encrypts the SES events topic of {self._name}; SES may use it",
            arn_in_account=self.configuration_set.arn,
            opts=self._child,
        )
        aws.sns.TopicPolicy(
            f"{self._name}-events-policy",
            arn=self.events_topic.arn,
            policy=pulumi.Output.all(self.events_topic.arn, self.configuration_set.arn).apply(
                lambda a: json.dumps(events_topic_policy(a[0], a[1]))
            ),
            opts=self._child,
        )
        if not self._args.publish_events:
            # Suppression and the account's reputation metrics do not need events.
            return
        aws.sesv2.ConfigurationSetEventDestination(
            f"{self._name}-events-destination",
            configuration_set_name=self.configuration_set.configuration_set_name,
            event_destination_name="sns-events",
            event_destination={
                "enabled": True,
                "matching_event_types": list(EVENT_TYPES),
                "sns_destination": {"topic_arn": self.events_topic.arn},
            },
            opts=self._child,
        )

    def _create_identity(self) -> None:
        # The configuration set is the identity's default, so a send that names no
        # set (e.g. with a leaked key) still gets TLS REQUIRE, suppression and event
        # publishing (SES Developer Guide, "default configuration sets"). It is set
        # here only: a separate EmailIdentityConfigurationSetAttributes resource for
        # the same identity would fight this one on every update.
        self.identity = aws.sesv2.EmailIdentity(
            f"{self._name}-identity",
            email_identity=self._args.domain,
            configuration_set_name=self.configuration_set.configuration_set_name,
            dkim_signing_attributes={"next_signing_key_length": "RSA_2048_BIT"},
            # Says, where the policy pack and an auditor look, that the domain's DMARC
            # record is kept outside this stack on purpose (DmarcArgs.publish false).
            tags=None if self._args.dmarc.publish else {DMARC_TAG: "managed-elsewhere"},
            opts=self._child,
        )
        self._tokens: pulumi.Output[list[str]] = self.identity.dkim_signing_attributes.apply(
            lambda attrs: list(attrs.tokens or []) if attrs else []
        )

    def _configure_mail_from(self) -> None:
        aws.sesv2.EmailIdentityMailFromAttributes(
            f"{self._name}-mail-from",
            email_identity=self.identity.email_identity,
            mail_from_domain=self._args.mail_from_domain,
            behavior_on_mx_failure=self._args.mail_from_behavior_on_mx_failure,
            opts=self._child,
        )

    def _publish_dns_records(self) -> list[cloudflare.DnsRecord]:
        args = self._args
        tokens = self._tokens
        records = []
        # Easy DKIM always returns exactly three tokens.
        for i in range(3):
            token: pulumi.Output[str] = tokens.apply(lambda t, i=i: t[i])  # type: ignore[misc]
            records.append(
                self._dns_record(
                    f"dkim-{i + 1}",
                    "CNAME",
                    token.apply(lambda t: dkim_record_name(t, args.domain)),
                    token.apply(lambda t: dkim_record_value(t, args.region)),
                )
            )
        for key, record in _fixed_records(args):
            records.append(
                self._dns_record(key, record.type, record.name, record.value, record.priority)
            )
        return records

    def _dns_record(
        self,
        key: str,
        record_type: str,
        name: pulumi.Input[str],
        value: pulumi.Input[str],
        priority: int | None = None,
    ) -> cloudflare.DnsRecord:
        adopt = self._args.dmarc.adopt_record_id if key == "dmarc" else None
        opts = self._child
        if adopt is not None:
            # Cloudflare's import id is "<zone id>/<record id>"; once imported, the
            # record is updated to the values above like any other.
            opts = pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(import_=f"{self._args.zone_id}/{adopt}")
            )
        # Cloudflare v6: full names (relative names and "@" drift), TXT content in
        # quotes, never proxied (SES and receivers must see the record itself).
        content = (
            pulumi.Output.from_input(value).apply(quote_txt) if record_type == "TXT" else value
        )
        return cloudflare.DnsRecord(
            f"{self._name}-{key}",
            zone_id=self._args.zone_id,
            name=name,
            type=record_type,
            content=content,
            priority=priority,
            ttl=self._args.dns_ttl,
            proxied=False,
            comment=f"serverless-mail {self._name}: managed by Pulumi",
            opts=opts,
        )

    def _wait_for_verification(self, records: list[cloudflare.DnsRecord]) -> None:
        self.verification = None
        if not self._args.wait_for_verification:
            return
        # The v1 verification resource polls until SES sees the records; when DNS
        # does not resolve it blocks ~30 min, so the wait is always bounded.
        self.verification = aws.ses.DomainIdentityVerification(
            f"{self._name}-verification",
            domain=self.identity.email_identity,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=records,
                custom_timeouts=pulumi.CustomTimeouts(
                    create=f"{self._args.verification_timeout_minutes}m"
                ),
            ),
        )

    def grant_send_email(self) -> pulumi.Output[dict[str, Any]]:
        """A policy statement that allows sending as this domain and nothing else.

        Grants exactly ``ses:SendEmail`` (all the SES v2 API needs) on this identity's
        ARN and its configuration set's ARN, only when ``ses:FromAddress`` is on the
        domain or one of its subdomains.
        """
        return pulumi.Output.all(self.arn, self.configuration_set_arn).apply(
            lambda a: send_email_statement(a[0], a[1], self._args.domain)
        )


def default_configuration_set_name(name: str) -> str:
    """``<project>-<stack>-<name>``, in SES's alphabet (letters, digits, _ and -), ≤ 64."""
    raw = f"{pulumi.get_project()}-{pulumi.get_stack()}-{name}"
    return re.sub(r"[^A-Za-z0-9_-]", "-", raw)[:64]


def dkim_domain_for(region: str) -> str:
    """The domain the DKIM CNAMEs point to in ``region``."""
    return REGION_DKIM_DOMAINS.get(region, DEFAULT_DKIM_DOMAIN)


def dkim_record_name(token: str, domain: str) -> str:
    """``<token>._domainkey.<domain>``."""
    return f"{token}._domainkey.{domain}"


def dkim_record_value(token: str, region: str) -> str:
    """``<token>.<DKIM domain of the region>``."""
    return f"{token}.{dkim_domain_for(region)}"


def mail_from_mx_value(region: str) -> str:
    """The MAIL FROM MX host; it is region-specific in every region."""
    return f"feedback-smtp.{region}.amazonses.com"


def mail_from_mx_record(args: EmailDomainArgs) -> DnsRecord:
    """The MX record of the custom MAIL FROM domain (priority 10)."""
    return DnsRecord("MX", args.mail_from_domain, mail_from_mx_value(args.region), 10)


def dmarc_value(dmarc: DmarcArgs) -> str:
    """The DMARC TXT value, tags in RFC 7489 order (``v`` then ``p`` first)."""
    tags = ["v=DMARC1", f"p={dmarc.policy}"]
    if dmarc.subdomain_policy is not None:
        tags.append(f"sp={dmarc.subdomain_policy}")
    if dmarc.percent != 100:
        tags.append(f"pct={dmarc.percent}")
    if dmarc.aggregate_report_addresses:
        tags.append("rua=" + ",".join(f"mailto:{a}" for a in dmarc.aggregate_report_addresses))
    tags.append(f"adkim={dmarc.dkim_alignment}")
    tags.append(f"aspf={dmarc.spf_alignment}")
    return "; ".join(tags)


def quote_txt(value: str) -> str:
    """Cloudflare stores TXT content quoted; unquoted content shows as drift."""
    return value if value.startswith('"') else f'"{value}"'


def dns_records_for(args: EmailDomainArgs, tokens: list[str]) -> list[DnsRecord]:
    """Every record :class:`EmailDomain` publishes, given the identity's DKIM tokens."""
    return [
        *(
            DnsRecord("CNAME", dkim_record_name(t, args.domain), dkim_record_value(t, args.region))
            for t in tokens
        ),
        *(record for _, record in _fixed_records(args)),
    ]


def _fixed_records(args: EmailDomainArgs) -> list[tuple[str, DnsRecord]]:
    """The records that do not depend on DKIM tokens, by resource key."""
    records = [
        ("mail-from-mx", mail_from_mx_record(args)),
        ("mail-from-spf", DnsRecord("TXT", args.mail_from_domain, SPF_VALUE)),
    ]
    if args.dmarc.publish:
        records.append(
            ("dmarc", DnsRecord("TXT", f"_dmarc.{args.domain}", dmarc_value(args.dmarc)))
        )
    return records


def events_topic_policy(topic_arn: str, configuration_set_arn: str) -> dict[str, Any]:
    """Topic policy letting only SES, for this account and configuration set, publish."""
    account = configuration_set_arn.split(":")[4]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowSesEventsFromThisConfigurationSet",
                "Effect": "Allow",
                "Principal": {"Service": "ses.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {
                    "StringEquals": {
                        "AWS:SourceAccount": account,
                        "AWS:SourceArn": configuration_set_arn,
                    }
                },
            }
        ],
    }


def send_email_statement(
    identity_arn: str, configuration_set_arn: str, domain: str
) -> dict[str, Any]:
    """The statement behind :meth:`EmailDomain.grant_send_email`."""
    return {
        "Sid": "SendAs" + hashlib.sha256(domain.encode()).hexdigest()[:8].upper(),
        "Effect": "Allow",
        "Action": list(SEND_EMAIL_ACTIONS),
        "Resource": [identity_arn, configuration_set_arn],
        "Condition": {"StringLike": {"ses:FromAddress": [f"*@{domain}", f"*@*.{domain}"]}},
    }
