"""The stack's security and reliability rules, as CrossGuard policies.

The rules live here, importable, so that three callers share them: the policy
pack in ``policy/`` (``pulumi preview --policy-pack policy``), the offline plan
(:func:`evaluate` on a mocks recording) and the tests. Building a ``PolicyPack``
starts a server, so only ``policy/__main__.py`` does that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

if TYPE_CHECKING:
    from .mocking import Recording

__all__ = ["POLICIES", "Violation", "evaluate"]

Level = Literal["mandatory", "advisory"]
Report = Callable[..., None]
"""``report(message, urn=None)``, as pulumi_policy passes it to a rule."""


@dataclass(frozen=True)
class Violation:
    """One rule broken by one resource (or by the stack)."""

    policy: str
    message: str
    urn: str
    level: Level

    def as_dict(self) -> dict[str, str]:
        return {
            "policy": self.policy,
            "message": self.message,
            "urn": self.urn,
            "level": self.level,
        }


def _props(args: ResourceValidationArgs | PolicyResource) -> dict[str, Any]:
    return dict(args.props or {})


# --- SES -------------------------------------------------------------------


def _ses_dkim_rsa_2048(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != "aws:sesv2/emailIdentity:EmailIdentity":
        return
    dkim = _props(args).get("dkimSigningAttributes") or {}
    if dkim.get("domainSigningPrivateKey"):
        return  # BYODKIM: the key length is the key's own.
    if dkim.get("nextSigningKeyLength") != "RSA_2048_BIT":
        report(
            "Easy DKIM must sign with a 2048-bit key: set dkim_signing_attributes."
            "next_signing_key_length to 'RSA_2048_BIT' (SES Developer Guide, Easy DKIM)."
        )


def _ses_configuration_set(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != "aws:sesv2/configurationSet:ConfigurationSet":
        return
    props = _props(args)
    reasons = set((props.get("suppressionOptions") or {}).get("suppressedReasons") or [])
    if not {"BOUNCE", "COMPLAINT"} <= reasons:
        report(
            "The configuration set must suppress BOUNCE and COMPLAINT addresses: set "
            "suppression_options.suppressed_reasons to ['BOUNCE', 'COMPLAINT'] so SES "
            "stops mailing addresses that hurt your reputation."
        )
    if (props.get("deliveryOptions") or {}).get("tlsPolicy") != "REQUIRE":
        report(
            "The configuration set must require TLS: set delivery_options.tls_policy to "
            "'REQUIRE' so receipts and resets never travel in clear text."
        )


def _dkim_records_in_cloudflare(args: StackValidationArgs, report: Report) -> None:
    identities = [
        r for r in args.resources if r.resource_type == "aws:sesv2/emailIdentity:EmailIdentity"
    ]
    records = [
        r for r in args.resources if r.resource_type == "cloudflare:index/dnsRecord:DnsRecord"
    ]
    for identity in identities:
        props = _props(identity)
        domain = props.get("emailIdentity")
        tokens = ((identity.props or {}).get("dkimSigningAttributes") or {}).get("tokens") or []
        cnames = {str(r.props.get("name")): r for r in records if r.props.get("type") == "CNAME"}
        if not tokens:
            continue  # Unknown until the identity exists (preview): checked on update.
        for token in tokens:
            name = f"{token}._domainkey.{domain}"
            record = cnames.get(name)
            if record is None:
                report(f"DKIM token {token} of {domain} has no CNAME {name} in Cloudflare DNS.")
            elif record.props.get("proxied"):
                report(f"The DKIM CNAME {name} is proxied: set proxied=False (DNS only).")
        dmarc = f"_dmarc.{domain}"
        if not any(
            r.props.get("type") == "TXT"
            and r.props.get("name") == dmarc
            and "v=DMARC1" in str(r.props.get("content"))
            for r in records
        ):
            report(f"{domain} has no DMARC TXT record at {dmarc}: publish one (RFC 7489).")


POLICIES: list[ResourceValidationPolicy | StackValidationPolicy] = [
    ResourceValidationPolicy(
        name="ses-dkim-rsa-2048",
        description="SES identities sign with Easy DKIM using a 2048-bit key.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_ses_dkim_rsa_2048,
    ),
    ResourceValidationPolicy(
        name="ses-configuration-set-suppression-and-tls",
        description="SES configuration sets suppress bounces and complaints and require TLS.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_ses_configuration_set,
    ),
    StackValidationPolicy(
        name="ses-dkim-and-dmarc-published",
        description=(
            "Every DKIM token has a DNS-only CNAME in Cloudflare and a DMARC record exists."
        ),
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_dkim_records_in_cloudflare,
    ),
]
"""Every rule of the pack, in the order the README lists them."""


class _Resource:
    """A recorded resource in the shape pulumi_policy hands to a rule."""

    def __init__(self, urn: str, type_: str, name: str, props: dict[str, Any]) -> None:
        self.urn = urn
        self.resource_type = type_
        self.name = name
        self.props = props
        self.opts = None


def _level(policy: ResourceValidationPolicy | StackValidationPolicy) -> Level:
    return "advisory" if policy.enforcement_level == EnforcementLevel.ADVISORY else "mandatory"


def evaluate(
    recording: Recording,
    policies: Iterable[ResourceValidationPolicy | StackValidationPolicy] = POLICIES,
) -> list[Violation]:
    """Run the rules on what a program registered under the mocks.

    Resource rules see each custom resource's inputs; stack rules see every
    resource with its outputs (as ``pulumi preview`` would after creation).
    Secret values are given to the rules unwrapped, as the analyzer does.
    """
    from .mocking import Secret, _plain

    def unwrap(value: Any) -> Any:
        if isinstance(value, Secret):
            return unwrap(value.value)
        if isinstance(value, dict):
            return {k: unwrap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [unwrap(v) for v in value]
        return value

    custom = [r for r in recording.resources if r.custom]
    resources = [_Resource(r.urn, r.type, r.name, _plain(unwrap(r.inputs), "")) for r in custom]
    stack_view = [
        _Resource(r.urn, r.type, r.name, _plain(unwrap({**r.outputs, **r.inputs}), ""))
        for r in custom
    ]
    violations: list[Violation] = []

    def reporter(policy: Any, default_urn: str) -> Callable[..., None]:
        def report(message: str, urn: str | None = None) -> None:
            violations.append(Violation(policy.name, message, urn or default_urn, _level(policy)))

        return report

    for policy in policies:
        if isinstance(policy, ResourceValidationPolicy):
            for resource in resources:
                for validate in _validators(policy):
                    validate(resource, reporter(policy, resource.urn))
        else:
            args = StackValidationArgs(stack_view, None)  # type: ignore[arg-type]
            for validate in _validators(policy):
                validate(args, reporter(policy, recording.stack_urn or "stack"))
    return violations


def _validators(policy: Any) -> list[Callable[..., None]]:
    validate = policy.validate
    return list(validate) if isinstance(validate, list) else [validate]
