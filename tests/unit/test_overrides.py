"""Adjusting an underlying resource without forking: Pulumi transformations on a component."""

from __future__ import annotations

from typing import Any

import pulumi
from serverless_mail import EmailDomainArgs, TransactionalEmail, TransactionalEmailArgs

ARGS = TransactionalEmailArgs(
    email=EmailDomainArgs(
        domain="mail.example.com",
        zone_id="00112233445566778899aabbccddeeff",
        zone_name="example.com",
        region="eu-west-1",
    ),
    default_from="no-reply@mail.example.com",
    account_id="0123456789abcdef0123456789abcdef",
)


def tag_and_resize(
    args: pulumi.ResourceTransformationArgs,
) -> pulumi.ResourceTransformationResult | None:
    """The README's example: tag every SQS queue, give the Lambda more memory."""
    props = dict(args.props)
    if args.type_ == "aws:sqs/queue:Queue":
        props["tags"] = {**(props.get("tags") or {}), "team": "payments"}
    elif args.type_ == "aws:lambda/function:Function":
        props["memory_size"] = 1024
    else:
        return None
    return pulumi.ResourceTransformationResult(props, args.opts)


def test_transformations_reach_every_child_of_the_aggregate(run: Any) -> None:
    rec = run(
        lambda: TransactionalEmail(
            "mail", ARGS, pulumi.ResourceOptions(transformations=[tag_and_resize])
        )
    )
    queues = rec.of_type("aws:sqs/queue:Queue")
    assert len(queues) == 4  # the email queue and the SES events queue, each with its DLQ
    assert all(q.inputs["tags"] == {"team": "payments"} for q in queues)
    functions = rec.of_type("aws:lambda/function:Function")
    assert [f.inputs["memorySize"] for f in functions] == [1024, 1024]  # sender, events


def test_without_transformations_the_defaults_stand(run: Any) -> None:
    rec = run(lambda: TransactionalEmail("mail", ARGS))
    assert all("tags" not in q.inputs for q in rec.of_type("aws:sqs/queue:Queue"))
    functions = rec.of_type("aws:lambda/function:Function")
    assert [f.inputs["memorySize"] for f in functions] == [256, 256]


def test_explicit_providers_reach_every_child(run: Any) -> None:
    import pulumi_aws as aws
    import pulumi_cloudflare as cloudflare

    def program() -> None:
        aws_provider = aws.Provider("aws-eu", region="eu-west-1")
        cf_provider = cloudflare.Provider("cf", api_token="t" * 40)
        TransactionalEmail(
            "mail", ARGS, pulumi.ResourceOptions(providers=[aws_provider, cf_provider])
        )

    rec = run(program)
    custom = [r for r in rec.resources if r.custom and not r.type.startswith("pulumi:providers:")]
    by_package: dict[str, set[str | None]] = {}
    for r in custom:
        by_package.setdefault(r.type.split(":")[0], set()).add(
            r.provider.split("::")[-2] if r.provider else None
        )
    assert by_package["aws"] == {"aws-eu"}
    assert by_package["cloudflare"] == {"cf"}
