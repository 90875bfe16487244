"""A generated corpus of insecure resources: every spelling of each class, refused.

The per-class fixtures in ``test_policy_classes.py`` were written next to the rules;
this corpus is generated from the classes' dimensions (service, action, spelling,
condition operator, principal form, resource type) so that a rule keyed on one
spelling misses cases here. Each class is one program registering every variant;
every variant must be reported by its rule, on both entry points.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pulumi_aws as aws
import pytest
from pulumi.runtime import proto
from serverless_mail.mocking import ACCOUNT_ID, Recording
from serverless_mail.policies import POLICIES, SES_SEND_ACTIONS, evaluate

REGION = "eu-west-1"
RULES = {p.name: p for p in POLICIES}
ARNS = {
    "sqs": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:mail",
    "sns": f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:events",
    "dynamodb": f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/t",
    "kms": f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/k",
    "secretsmanager": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:s",
    "sts": f"arn:aws:iam::{ACCOUNT_ID}:role/r",
    "lambda": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:f",
    "iam": f"arn:aws:iam::{ACCOUNT_ID}:role/r",
    "s3": "arn:aws:s3:::bucket/key",
    "logs": f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:g:*",
}
ACTIONS = {
    "sqs": "SendMessage",
    "sns": "Publish",
    "dynamodb": "GetItem",
    "kms": "Decrypt",
    "secretsmanager": "GetSecretValue",
    "sts": "AssumeRole",
    "lambda": "InvokeFunction",
    "iam": "PassRole",
    "s3": "GetObject",
    "logs": "PutLogEvents",
}
IDENTITY_ARN = f"arn:aws:ses:{REGION}:{ACCOUNT_ID}:identity/example.com"


def shaped(statement: dict[str, Any], shape: int) -> str:
    """The same statement in one of four document shapes IAM accepts."""
    if shape % 2:
        statement = {
            k: ([v] if k in ("Action", "Resource") and isinstance(v, str) else v)
            for k, v in statement.items()
        }
    body: Any = statement if shape >= 2 else [statement]
    return json.dumps({"Version": "2012-10-17", "Statement": body})


def wildcard_actions() -> Iterator[tuple[str, Callable[[], Any]]]:
    for service, action in ACTIONS.items():
        patterns = [
            f"{service}:*",
            f"{service}:{action[0]}*",
            f"{service}:*{action[-4:]}",
            f"{service}:?{action[1:]}",
            "*",
            f"{service.upper()}:{action[:3].lower()}*",
        ]
        for i, value in enumerate(patterns):
            doc = shaped({"Effect": "Allow", "Action": value, "Resource": ARNS[service]}, i)
            name = f"act-{service}-{i}"
            yield name, lambda n=name, d=doc: aws.iam.RolePolicy(n, role="r", policy=d)


def wildcard_resources() -> Iterator[tuple[str, Callable[[], Any]]]:
    for (service, action), (i, suffix) in itertools.product(
        ACTIONS.items(), enumerate(["*", ":*", "-?", "*x*"])
    ):
        resource = "*" if suffix == "*" else ARNS[service].rsplit(":", 1)[0] + suffix
        if service == "logs" and suffix == ":*":
            resource = f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:*"
        doc = shaped({"Effect": "Allow", "Action": f"{service}:{action}", "Resource": resource}, i)
        name = f"res-{service}-{i}"
        yield name, lambda n=name, d=doc: aws.iam.UserPolicy(n, user="u", policy=d)


SES_CONDITIONS: list[dict[str, Any] | None] = [
    None,
    {"StringNotLike": {"ses:FromAddress": "*@evil.test"}},
    {"StringNotEquals": {"ses:FromAddress": "x@evil.test"}},
    {"ForAnyValue:StringLike": {"ses:FromAddress": "*@example.com"}},
    {"ForAllValues:StringEquals": {"ses:FromAddress": "a@example.com"}},
    {"StringLikeIfExists": {"ses:FromAddress": "*@example.com"}},
    {"StringLike": {"ses:FromAddress": "*"}},
    {"StringLike": {"ses:FromAddress": "*@*"}},
    {"StringLike": {"ses:FromAddress": "*@*.com"}},
    {"StringLike": {"ses:FromAddress": ["*@example.com", "*@evil.test"]}},
    {"StringEquals": {"ses:FromAddress": "no-reply@example.com.evil.test"}},
    {"StringLike": {"ses:FromDisplayName": "Shop"}},
]


def ses_sends() -> Iterator[tuple[str, Callable[[], Any]]]:
    spellings = [str, str.lower, lambda a: a.upper()]
    for (i, action), (j, spell), (k, condition) in itertools.product(
        enumerate(SES_SEND_ACTIONS), enumerate(spellings), enumerate(SES_CONDITIONS)
    ):
        statement: dict[str, Any] = {
            "Effect": "Allow",
            "Action": spell(action),
            "Resource": IDENTITY_ARN,
        }
        if condition is not None:
            statement["Condition"] = condition
        doc = shaped(statement, i + j)
        name = f"ses-{i}-{j}-{k}"
        yield name, lambda n=name, d=doc: aws.iam.GroupPolicy(n, group="g", policy=d)


PUBLIC = ["*", {"AWS": "*"}, {"AWS": ["*"]}, {"AWS": ["arn:aws:iam::111122223333:root", "*"]}]


def resource_policy(kind: str, name: str, document: str) -> Callable[[], Any]:
    makers: dict[str, Callable[[], Any]] = {
        "queue-policy": lambda: aws.sqs.QueuePolicy(name, queue_url="https://q", policy=document),
        "queue": lambda: aws.sqs.Queue(name, sqs_managed_sse_enabled=True, policy=document),
        "topic-policy": lambda: aws.sns.TopicPolicy(name, arn=ARNS["sns"], policy=document),
        "topic": lambda: aws.sns.Topic(name, kms_master_key_id="alias/k", policy=document),
        "key": lambda: aws.kms.Key(name, enable_key_rotation=True, policy=document),
        "key-policy": lambda: aws.kms.KeyPolicy(name, key_id="k", policy=document),
    }
    return makers[kind]


KINDS = ["queue-policy", "queue", "topic-policy", "topic", "key", "key-policy"]
ACTION_OF = {
    "queue-policy": "sqs:SendMessage",
    "queue": "sqs:SendMessage",
    "topic-policy": "sns:Publish",
    "topic": "sns:Publish",
    "key": "kms:Decrypt",
    "key-policy": "kms:Decrypt",
}
RESOURCE_OF = {
    "queue-policy": ARNS["sqs"],
    "queue": ARNS["sqs"],
    "topic-policy": ARNS["sns"],
    "topic": ARNS["sns"],
    "key": "*",
    "key-policy": "*",
}


def public_principals() -> Iterator[tuple[str, Callable[[], Any]]]:
    for (k, kind), (p, principal) in itertools.product(enumerate(KINDS), enumerate(PUBLIC)):
        statement = {
            "Effect": "Allow",
            "Principal": principal,
            "Action": ACTION_OF[kind],
            "Resource": RESOURCE_OF[kind],
        }
        name = f"pub-{kind}-{p}"
        yield name, resource_policy(kind, name, shaped(statement, k + p))
    for p, principal in enumerate(PUBLIC):
        trust = shaped({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}, p)
        name = f"pub-trust-{p}"
        yield name, lambda n=name, d=trust: aws.iam.Role(n, assume_role_policy=d)


SOURCE_CONDITIONS: list[dict[str, Any] | None] = [
    None,
    {"StringNotEquals": {"aws:SourceAccount": ACCOUNT_ID}},
    {"ArnNotLike": {"aws:SourceArn": ARNS["sns"]}},
    {"ArnLikeIfExists": {"aws:SourceArn": ARNS["sns"]}},
    {"StringEqualsIfExists": {"aws:SourceAccount": ACCOUNT_ID}},
    {"ArnLike": {"aws:SourceArn": "*"}},
    {"StringEquals": {"aws:PrincipalAccount": ACCOUNT_ID}},
]


def service_principals() -> Iterator[tuple[str, Callable[[], Any]]]:
    services = [
        "sns.amazonaws.com",
        "events.amazonaws.com",
        "s3.amazonaws.com",
        "ses.amazonaws.com",
    ]
    for (k, kind), (s, service), (c, condition) in itertools.product(
        enumerate(KINDS), enumerate(services), enumerate(SOURCE_CONDITIONS)
    ):
        statement: dict[str, Any] = {
            "Effect": "Allow",
            "Principal": {"Service": [service]},
            "Action": ACTION_OF[kind],
            "Resource": RESOURCE_OF[kind],
        }
        if condition is not None:
            statement["Condition"] = condition
        name = f"svc-{kind}-{s}-{c}"
        yield name, resource_policy(kind, name, shaped(statement, k + s + c))
    for s, service in enumerate(services):
        name = f"svc-permission-{s}"
        yield (
            name,
            lambda n=name, p=service: aws.lambda_.Permission(
                n, action="lambda:InvokeFunction", function=ARNS["lambda"], principal=p
            ),
        )


MANAGED = [
    "AdministratorAccess",
    "AdministratorAccess-Amplify",
    "PowerUserAccess",
    "IAMFullAccess",
    "AmazonSESFullAccess",
    "AmazonSQSFullAccess",
    "AmazonS3FullAccess",
    "job-function/SystemAdministrator",
    "job-function/DatabaseAdministrator",
]


def managed_policies() -> Iterator[tuple[str, Callable[[], Any]]]:
    for m, policy in enumerate(MANAGED):
        arn = f"arn:aws:iam::aws:policy/{policy}"
        yield (
            f"mp-role-{m}",
            lambda n=f"mp-role-{m}", a=arn: aws.iam.RolePolicyAttachment(n, role="r", policy_arn=a),
        )
        yield (
            f"mp-user-{m}",
            lambda n=f"mp-user-{m}", a=arn: aws.iam.UserPolicyAttachment(n, user="u", policy_arn=a),
        )
        yield (
            f"mp-group-{m}",
            lambda n=f"mp-group-{m}", a=arn: aws.iam.GroupPolicyAttachment(
                n, group="g", policy_arn=a
            ),
        )
        yield (
            f"mp-attach-{m}",
            lambda n=f"mp-attach-{m}", a=arn: aws.iam.PolicyAttachment(
                n, policy_arn=a, users=["u"]
            ),
        )
        trust = shaped(
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            },
            m,
        )
        yield (
            f"mp-arns-{m}",
            lambda n=f"mp-arns-{m}", a=arn, t=trust: aws.iam.Role(
                n, assume_role_policy=t, managed_policy_arns=[a]
            ),
        )


ISSUER = "oidc.vercel.com/acme"
GOOD_SUB = "owner:acme:project:shop:environment:production"


def web_identity() -> Iterator[tuple[str, Callable[[], Any]]]:
    subs = [
        "owner:*:project:shop:environment:production",
        "owner:acme:project:*:environment:production",
        "owner:acme:project:shop:environment:*",
        "owner:acme:project:sh?p:environment:production",
        "owner:acme:*",
        "*",
        "owner:acme:project:shop",
        "owner:acme:project:shop:environment:production:extra",
    ]
    variants: list[dict[str, Any]] = [
        {
            "Condition": {
                "StringLike": {f"{ISSUER}:aud": "https://vercel.com/acme", f"{ISSUER}:sub": s}
            }
        }
        for s in subs
    ] + [
        {"Action": "sts:AssumeRoleWith*"},
        {"Action": "sts:*"},
        {"Action": ["sts:AssumeRoleWithWebIdentity", "sts:AssumeRole"]},
        {"Principal": "*"},
        {"Condition": {"StringEquals": {f"{ISSUER}:sub": GOOD_SUB}}},
        {"Condition": {"StringEquals": {f"{ISSUER}:aud": "https://vercel.com/acme"}}},
        {"Condition": {"StringLike": {f"{ISSUER}:aud": "*", f"{ISSUER}:sub": GOOD_SUB}}},
        {"Condition": {"StringNotEquals": {f"{ISSUER}:aud": "x", f"{ISSUER}:sub": "y"}}},
        {
            "Condition": {
                "ForAnyValue:StringEquals": {
                    f"{ISSUER}:aud": "https://vercel.com/acme",
                    f"{ISSUER}:sub": GOOD_SUB,
                }
            }
        },
        {
            "Condition": {
                "StringEquals": {
                    "oidc.vercel.com/other:aud": "https://vercel.com/acme",
                    "oidc.vercel.com/other:sub": GOOD_SUB,
                }
            }
        },
    ]
    for v, variant in enumerate(variants):
        statement = {
            "Effect": "Allow",
            "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{ISSUER}"},
            "Action": "sts:AssumeRoleWithWebIdentity",
            **variant,
        }
        name, document = f"oidc-{v}", shaped(statement, v)
        yield name, lambda n=name, d=document: aws.iam.Role(n, assume_role_policy=d)


CLASSES: dict[str, tuple[str, Callable[[], Iterator[tuple[str, Callable[[], Any]]]]]] = {
    "wildcard-actions": ("iam-no-wildcard-actions", wildcard_actions),
    "wildcard-resources": ("iam-no-wildcard-resources", wildcard_resources),
    "ses-sends": ("iam-ses-send-requires-from-address", ses_sends),
    "public-principals": ("resource-policy-no-public-principal", public_principals),
    "service-principals": ("resource-policy-service-principal-scoped", service_principals),
    "managed-policies": ("iam-no-broad-managed-policies", managed_policies),
    "web-identity": ("iam-oidc-trust-pinned", web_identity),
}


def build(corpus: str) -> tuple[str, list[str], Callable[[], None]]:
    rule, generate = CLASSES[corpus]
    variants = list(generate())

    def program() -> None:
        for _, make in variants:
            make()

    return rule, [name for name, _ in variants], program


def test_the_corpus_is_large() -> None:
    sizes = {corpus: len(build(corpus)[1]) for corpus in CLASSES}
    assert sum(sizes.values()) >= 500, sizes
    assert all(len(set(build(c)[1])) == sizes[c] for c in CLASSES)


@pytest.mark.parametrize("corpus", list(CLASSES))
def test_every_variant_is_refused_by_evaluate(corpus: str, run: Callable[..., Recording]) -> None:
    rule, names, program = build(corpus)
    violations = evaluate(run(program), [RULES[rule]], stack_outputs=False)
    flagged = {v.urn.rsplit("::", 1)[1] for v in violations}
    assert sorted(set(names) - flagged) == []


@pytest.mark.parametrize("corpus", list(CLASSES))
def test_every_variant_is_refused_by_the_analyzer(
    corpus: str, run: Callable[..., Recording], analyze: Callable[[Recording], list[Any]]
) -> None:
    rule, names, program = build(corpus)
    recording = run(program)
    # The servicer's resource diagnostics name no URN: analyse each variant on its own.
    flagged = set()
    for resource in recording.resources:
        diagnostics = analyze(replace(recording, resources=[resource]))
        mine = [d for d in diagnostics if d.policyName == rule]
        assert all(d.enforcementLevel == proto.MANDATORY for d in mine)
        if mine:
            flagged.add(resource.name)
    assert sorted(set(names) - flagged) == []
