"""`email.dmarc.publish: false` leaves the zone's own DMARC record alone; the pack
accepts the missing record only when the identity says so, with exactly that tag."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from serverless_mail import DmarcArgs, EmailDomain, EmailDomainArgs
from serverless_mail.email_domain import DMARC_TAG
from serverless_mail.policies import evaluate

RULE = "ses-dkim-and-dmarc-published"


def domain(run: Any, publish: bool, tag: str | None = None) -> list[str]:
    def program() -> None:
        def retag(args: Any) -> Any:
            if tag is not None and args.type_ == "aws:sesv2/emailIdentity:EmailIdentity":
                return pulumi.ResourceTransformationResult(
                    {**args.props, "tags": {DMARC_TAG: tag}}, args.opts
                )
            return None

        EmailDomain(
            "mail",
            EmailDomainArgs(
                domain="mail.example.com",
                zone_id="00112233445566778899aabbccddeeff",
                zone_name="example.com",
                region="eu-west-1",
                dmarc=DmarcArgs(publish=publish),
            ),
            pulumi.ResourceOptions(transformations=[retag]),
        )

    rec = run(program)
    assert any(r.name == "mail-dmarc" for r in rec.resources) is publish
    return [v.message for v in evaluate(rec) if v.policy == RULE]


def test_a_published_record_passes(run: Any) -> None:
    assert domain(run, publish=True) == []


def test_a_record_managed_elsewhere_passes_with_the_tag(run: Any) -> None:
    assert domain(run, publish=False) == []


@pytest.mark.parametrize("tag", ["", "managed", "MANAGED-ELSEWHERE", "none"])
def test_a_missing_record_with_any_other_tag_fails(run: Any, tag: str) -> None:
    (message,) = domain(run, publish=False, tag=tag)
    assert "has no DMARC TXT record at _dmarc.mail.example.com" in message
