"""VercelEnv: exact children per identity mode, trust and send policies, every variable."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pulumi
import pytest
from serverless_mail import ConfigError
from serverless_mail.mocking import Recording, Secret
from serverless_mail.vercel_env import (
    VercelEnv,
    VercelEnvArgs,
    account_oidc_provider_arn,
    default_targets,
    send_policy,
    trust_policy,
)

TYPE = "serverless-mail:index:VercelEnv"
VARIABLE = "vercel:index/projectEnvironmentVariable:ProjectEnvironmentVariable"
QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:mail-queue"
QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/mail-queue"
ROLE_ARN = "arn:aws:iam::123456789012:role/app-role-9a7ecdd"
PROVIDER_ARN = "arn:aws:iam::123456789012:oidc-provider/oidc.vercel.com/acme"
SENDER = "Shop <no-reply@mail.example.com>"

ARGS = VercelEnvArgs(
    team_slug="acme",
    team_id="team_abc123",
    project_id="prj_abc123",
    project_name="shop",
    stage="dev",
    queue_url=QUEUE_URL,
    queue_arn=QUEUE_ARN,
    region="eu-west-1",
    email_from=SENDER,
)
PROD = replace(ARGS, stage="prod")
WORKER = {"worker_url": "https://mail.acme.workers.dev", "worker_token": "tok-123"}
EXACT_SEND_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "SendEmailMessages",
            "Effect": "Allow",
            "Action": ["sqs:SendMessage", "sqs:GetQueueUrl"],
            "Resource": QUEUE_ARN,
        }
    ],
}


def build(run: Any, args: VercelEnvArgs = ARGS, **changes: Any) -> tuple[Recording, dict[str, Any]]:
    if "worker_token" in changes:
        changes["worker_token"] = pulumi.Output.secret(changes["worker_token"])
    args = replace(args, **changes)
    captured: dict[str, Any] = {}

    def program() -> None:
        env = VercelEnv("app", args)
        captured["component"] = env
        if env.role_arn is not None:
            env.role_arn.apply(lambda a: captured.setdefault("role_arn", a))
        if env.oidc_provider_arn is not None:
            env.oidc_provider_arn.apply(lambda a: captured.setdefault("oidc_provider_arn", a))

    return run(program), captured


def counts(rec: Recording) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rec.resources:
        out[r.type] = out.get(r.type, 0) + 1
    return out


def variables(rec: Recording) -> dict[str, dict[str, Any]]:
    """``{resource name: {key, targets, sensitive, value}}`` of every variable."""
    return {
        r.name: {k: r.inputs[k] for k in ("key", "targets", "sensitive", "value")}
        for r in rec.of_type(VARIABLE)
    }


# --- children -----------------------------------------------------------------------


def test_oidc_creates_provider_role_policy_and_variables(run: Any) -> None:
    rec, captured = build(run)
    assert counts(rec) == {
        TYPE: 1,
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider": 1,
        "aws:iam/role:Role": 1,
        "aws:iam/rolePolicy:RolePolicy": 1,
        VARIABLE: 8,
    }
    assert all(r.parent_name == "app" for r in rec.resources if r.type != TYPE)
    env = captured["component"]
    assert env.user is None and env.access_keys is None
    assert env.role is not None and env.oidc_provider is not None
    assert len(env.variables) == 8
    assert captured["role_arn"] == ROLE_ARN
    assert captured["oidc_provider_arn"] == PROVIDER_ARN


def test_existing_oidc_provider_is_reused_not_created(run: Any) -> None:
    existing = "arn:aws:iam::210987654321:oidc-provider/oidc.vercel.com/acme"
    rec, captured = build(run, oidc_provider_arn=existing)
    assert counts(rec) == {
        TYPE: 1,
        "aws:iam/role:Role": 1,
        "aws:iam/rolePolicy:RolePolicy": 1,
        VARIABLE: 8,
    }
    assert captured["component"].oidc_provider is None
    assert captured["oidc_provider_arn"] == existing
    trust = json.loads(rec.one("aws:iam/role:Role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Federated": existing}


def test_dev_and_prod_in_one_account_share_one_oidc_provider(run: Any) -> None:
    # GIVEN both stages in one program, as two stacks in one account would deploy them:
    # prod creates the provider, dev reuses the account's
    captured: dict[str, Any] = {}

    def program() -> None:
        prod = VercelEnv("prod-app", PROD)
        dev = VercelEnv("dev-app", replace(ARGS, reuse_account_oidc_provider=True))
        prod.oidc_provider_arn.apply(lambda a: captured.setdefault("prod", a))  # type: ignore[union-attr]
        dev.oidc_provider_arn.apply(lambda a: captured.setdefault("dev", a))  # type: ignore[union-attr]
        captured["dev_provider"] = dev.oidc_provider

    rec = run(program)
    # THEN exactly one provider exists for the issuer, and both roles trust it
    (provider,) = rec.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert provider.inputs["url"] == "https://oidc.vercel.com/acme"
    assert captured["dev_provider"] is None
    assert captured["dev"] == captured["prod"] == PROVIDER_ARN
    trusted = {
        r.name: json.loads(r.inputs["assumeRolePolicy"])["Statement"][0]["Principal"]
        for r in rec.of_type("aws:iam/role:Role")
    }
    assert trusted == {
        "prod-app-role": {"Federated": PROVIDER_ARN},
        "dev-app-role": {"Federated": PROVIDER_ARN},
    }


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        (QUEUE_ARN, PROVIDER_ARN),
        (
            "arn:aws-cn:sqs:cn-north-1:210987654321:q",
            "arn:aws-cn:iam::210987654321:oidc-provider/oidc.vercel.com/acme",
        ),
    ],
)
def test_account_oidc_provider_arn_follows_partition_and_account(arn: str, expected: str) -> None:
    assert account_oidc_provider_arn(arn, "acme") == expected


def test_without_oidc_creates_a_scoped_user_and_key_instead_of_a_role(run: Any) -> None:
    rec, captured = build(run, oidc=False)
    assert counts(rec) == {
        TYPE: 1,
        "aws:iam/user:User": 1,
        "aws:iam/userPolicy:UserPolicy": 1,
        "aws:iam/accessKey:AccessKey": 2,
        "time:index/rotating:Rotating": 2,
        VARIABLE: 8,
    }
    env = captured["component"]
    assert env.role is None and env.role_arn is None and env.oidc_provider_arn is None
    assert env.user is not None
    policy = rec.one("aws:iam/userPolicy:UserPolicy").inputs
    assert json.loads(policy["policy"]) == EXACT_SEND_POLICY
    assert policy["name"] == "send-email-messages"
    user = rec.one("aws:iam/user:User").outputs["name"]
    # THEN the user's two keys rotate on schedules tied to the user (30 days apart)
    # (sorted: the keys register once their schedules resolve, in either order)
    assert sorted((k.name, k.inputs) for k in rec.of_type("aws:iam/accessKey:AccessKey")) == [
        ("app-key-a", {"user": user}),
        ("app-key-b", {"user": user}),
    ]
    rotations = rec.of_type("time:index/rotating:Rotating")
    assert sorted(((r.name, r.inputs) for r in rotations), key=lambda r: r[0]) == [
        ("app-key-rotation-a", {"rotationDays": 60, "triggers": {"user": user}}),
        (
            "app-key-rotation-b",
            {"rotationDays": 60, "triggers": {"user": user}, "rfc3339": "2026-01-31T00:00:00Z"},
        ),
    ]


def test_key_rotation_period_follows_the_args(run: Any) -> None:
    rec, _ = build(run, oidc=False, access_key_rotation_days=10)
    assert [r.inputs["rotationDays"] for r in rec.of_type("time:index/rotating:Rotating")] == [
        20,
        20,
    ]


# --- OIDC trust and the send policy -------------------------------------------------


def test_oidc_provider_is_the_team_issuer_with_the_team_audience(run: Any) -> None:
    rec, _ = build(run)
    assert rec.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider").inputs == {
        "url": "https://oidc.vercel.com/acme",
        "clientIdLists": ["https://vercel.com/acme"],
    }


def test_trust_policy_pins_audience_and_each_project_environment_subject(run: Any) -> None:
    rec, _ = build(run)
    trust = json.loads(rec.one("aws:iam/role:Role").inputs["assumeRolePolicy"])
    assert trust == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "VercelOidc",
                "Effect": "Allow",
                "Principal": {"Federated": PROVIDER_ARN},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        "oidc.vercel.com/acme:aud": "https://vercel.com/acme",
                        "oidc.vercel.com/acme:sub": [
                            "owner:acme:project:shop:environment:preview",
                            "owner:acme:project:shop:environment:development",
                        ],
                    }
                },
            }
        ],
    }
    assert "*" not in json.dumps(trust)


def test_prod_trusts_only_the_production_environment(run: Any) -> None:
    rec, _ = build(run, PROD)
    trust = json.loads(rec.one("aws:iam/role:Role").inputs["assumeRolePolicy"])
    condition = trust["Statement"][0]["Condition"]["StringEquals"]
    assert condition["oidc.vercel.com/acme:sub"] == [
        "owner:acme:project:shop:environment:production"
    ]


def test_role_policy_allows_only_send_and_get_url_on_the_queue(run: Any) -> None:
    rec, _ = build(run)
    policy = rec.one("aws:iam/rolePolicy:RolePolicy").inputs
    assert json.loads(policy["policy"]) == EXACT_SEND_POLICY
    assert policy["name"] == "send-email-messages"
    assert policy["role"] == rec.one("aws:iam/role:Role").name + "-id"


def test_send_statement_input_is_used_verbatim(run: Any) -> None:
    statement = {
        "Sid": "SendToQueue",
        "Effect": "Allow",
        "Action": ["sqs:SendMessage"],
        "Resource": [QUEUE_ARN],
    }
    rec, _ = build(run, send_statement=pulumi.Output.from_input(statement))
    policy = json.loads(rec.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    assert policy == {"Version": "2012-10-17", "Statement": [statement]}


# --- variables ------------------------------------------------------------------------

# The Vercel SDK marks every `value` secret, so every value is recorded as Secret(...).


def test_dev_variables_are_sensitive_on_preview_with_plain_development_copies(run: Any) -> None:
    rec, _ = build(run)
    assert variables(rec) == {
        "app-email-queue-url": {
            "key": "EMAIL_QUEUE_URL",
            "targets": ["preview"],
            "sensitive": True,
            "value": Secret(QUEUE_URL),
        },
        "app-email-queue-url-development": {
            "key": "EMAIL_QUEUE_URL",
            "targets": ["development"],
            "sensitive": False,
            "value": Secret(QUEUE_URL),
        },
        "app-email-aws-region": {
            "key": "EMAIL_AWS_REGION",
            "targets": ["preview"],
            "sensitive": True,
            "value": Secret("eu-west-1"),
        },
        "app-email-aws-region-development": {
            "key": "EMAIL_AWS_REGION",
            "targets": ["development"],
            "sensitive": False,
            "value": Secret("eu-west-1"),
        },
        "app-email-aws-role-arn": {
            "key": "EMAIL_AWS_ROLE_ARN",
            "targets": ["preview"],
            "sensitive": True,
            "value": Secret(ROLE_ARN),
        },
        "app-email-aws-role-arn-development": {
            "key": "EMAIL_AWS_ROLE_ARN",
            "targets": ["development"],
            "sensitive": False,
            "value": Secret(ROLE_ARN),
        },
        "app-email-from": {
            "key": "EMAIL_FROM",
            "targets": ["preview"],
            "sensitive": True,
            "value": Secret(SENDER),
        },
        "app-email-from-development": {
            "key": "EMAIL_FROM",
            "targets": ["development"],
            "sensitive": False,
            "value": Secret(SENDER),
        },
    }
    for r in rec.of_type(VARIABLE):
        assert r.inputs["projectId"] == "prj_abc123"
        assert r.inputs["teamId"] == "team_abc123"


def test_prod_variables_go_to_production_only_all_sensitive(run: Any) -> None:
    rec, _ = build(run, PROD, **WORKER)
    assert variables(rec) == {
        "app-email-queue-url": {
            "key": "EMAIL_QUEUE_URL",
            "targets": ["production"],
            "sensitive": True,
            "value": Secret(QUEUE_URL),
        },
        "app-email-aws-region": {
            "key": "EMAIL_AWS_REGION",
            "targets": ["production"],
            "sensitive": True,
            "value": Secret("eu-west-1"),
        },
        "app-email-aws-role-arn": {
            "key": "EMAIL_AWS_ROLE_ARN",
            "targets": ["production"],
            "sensitive": True,
            "value": Secret(ROLE_ARN),
        },
        "app-email-from": {
            "key": "EMAIL_FROM",
            "targets": ["production"],
            "sensitive": True,
            "value": Secret(SENDER),
        },
        "app-email-worker-url": {
            "key": "EMAIL_WORKER_URL",
            "targets": ["production"],
            "sensitive": True,
            "value": Secret("https://mail.acme.workers.dev"),
        },
        "app-email-worker-token": {
            "key": "EMAIL_WORKER_TOKEN",
            "targets": ["production"],
            "sensitive": True,
            "value": Secret("tok-123"),
        },
    }


def test_worker_token_is_never_written_to_development(run: Any) -> None:
    rec, _ = build(run, **WORKER)
    found = variables(rec)
    assert found["app-email-worker-token"] == {
        "key": "EMAIL_WORKER_TOKEN",
        "targets": ["preview"],
        "sensitive": True,
        "value": Secret("tok-123"),
    }
    assert found["app-email-worker-url-development"] == {
        "key": "EMAIL_WORKER_URL",
        "targets": ["development"],
        "sensitive": False,
        "value": Secret("https://mail.acme.workers.dev"),
    }
    development = [v for v in found.values() if "development" in v["targets"]]
    assert {v["key"] for v in development} == {
        "EMAIL_QUEUE_URL",
        "EMAIL_AWS_REGION",
        "EMAIL_AWS_ROLE_ARN",
        "EMAIL_FROM",
        "EMAIL_WORKER_URL",
    }
    assert all(v["value"] != Secret("tok-123") for v in development)


def test_access_keys_are_sensitive_and_never_written_to_development(run: Any) -> None:
    rec, _ = build(run, oidc=False, targets=("production", "preview", "development"))
    found = variables(rec)
    assert found["app-email-aws-access-key-id"] == {
        "key": "EMAIL_AWS_ACCESS_KEY_ID",
        "targets": ["production", "preview"],
        "sensitive": True,
        "value": Secret("app-key-b-id"),
    }
    assert found["app-email-aws-secret-access-key"] == {
        "key": "EMAIL_AWS_SECRET_ACCESS_KEY",
        "targets": ["production", "preview"],
        "sensitive": True,
        "value": Secret("mock-secret-app-key-b"),
    }
    keys = {v["key"] for v in found.values()}
    assert "EMAIL_AWS_ROLE_ARN" not in keys
    development = {v["key"] for v in found.values() if v["targets"] == ["development"]}
    assert development == {"EMAIL_QUEUE_URL", "EMAIL_AWS_REGION", "EMAIL_FROM"}
    assert all(v["targets"] != ["production", "preview", "development"] for v in found.values())


def test_explicit_targets_are_written_in_canonical_order(run: Any) -> None:
    rec, captured = build(run, targets=("development", "production"))
    assert captured["component"].targets == ("production", "development")
    assert variables(rec)["app-email-from"]["targets"] == ["production"]
    trust = json.loads(rec.one("aws:iam/role:Role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Condition"]["StringEquals"]["oidc.vercel.com/acme:sub"] == [
        "owner:acme:project:shop:environment:production",
        "owner:acme:project:shop:environment:development",
    ]


def test_development_only_targets_write_only_plain_copies(run: Any) -> None:
    rec, _ = build(run, targets=("development",))
    assert {v["sensitive"] for v in variables(rec).values()} == {False}
    assert len(variables(rec)) == 4


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        ("prod", ("production",)),
        ("production", ("production",)),
        ("dev", ("preview", "development")),
        ("staging", ("preview", "development")),
    ],
)
def test_default_targets_follow_the_stage(stage: str, expected: tuple[str, ...]) -> None:
    assert default_targets(stage) == expected


# --- pure helpers ------------------------------------------------------------------


def test_trust_policy_helper_matches_vercel_subject_format() -> None:
    policy = trust_policy(PROVIDER_ARN, "acme", "shop", ("production",))
    assert policy["Statement"][0]["Condition"]["StringEquals"]["oidc.vercel.com/acme:sub"] == [
        "owner:acme:project:shop:environment:production"
    ]


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": ["sqs:*"], "Resource": QUEUE_ARN},
        {
            "Effect": "Allow",
            "Action": ["sqs:SendMessage", "sqs:DeleteMessage"],
            "Resource": QUEUE_ARN,
        },
        {"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": ["sqs:SendMessage"],
            "Resource": "arn:aws:sqs:eu-west-1:123456789012:*",
        },
        {"Effect": "Deny", "Action": ["sqs:SendMessage"], "Resource": QUEUE_ARN},
        {"Effect": "Allow", "Action": [], "Resource": QUEUE_ARN},
    ],
)
def test_send_policy_refuses_anything_broader_than_sending_to_one_queue(
    statement: dict[str, Any],
) -> None:
    with pytest.raises(
        ConfigError,
        match=r"`send_statement` must allow only sqs:SendMessage, sqs:GetQueueUrl on the queue ARN \(no '\*'\)",
    ):
        send_policy(statement)


# --- validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"team_slug": "Acme Inc"},
            r"`team_slug` must be a Vercel team slug .* but 'Acme Inc' was provided",
        ),
        (
            {"team_slug": "-acme"},
            r"`team_slug` must be a Vercel team slug .* but '-acme' was provided",
        ),
        (
            {"team_id": "acme"},
            r"`team_id` must be a Vercel team id such as 'team_abc123', but 'acme' was provided",
        ),
        (
            {"project_id": "shop"},
            r"`project_id` must be a Vercel project id such as 'prj_abc123', but 'shop' was provided",
        ),
        (
            {"project_name": "shop:prod"},
            r"`project_name` must be a Vercel project name .* but 'shop:prod' was provided",
        ),
        (
            {"targets": ("production", "staging")},
            r"`targets\[1\]` must be one of 'production', 'preview', 'development', but 'staging' was provided",
        ),
        (
            {"targets": ()},
            r"`targets` must name at least one of 'production', 'preview', 'development', but an empty list was provided",
        ),
        (
            {"targets": ("preview", "preview")},
            r"`targets` must not repeat a value, but \['preview', 'preview'\] was provided",
        ),
        (
            {"targets": "preview"},
            r"`targets` must be a list such as .* but 'preview' was provided",
        ),
        (
            {"targets": ("development",), "oidc": False},
            r"`targets` \['development'\] cannot carry secrets: .* so the IAM access key would reach no environment",
        ),
        (
            {"targets": ("development",), **WORKER},
            r"`targets` \['development'\] cannot carry secrets: .* so worker_token would reach no environment",
        ),
        (
            {"region": "eu-west"},
            r"`region` must be an AWS region code such as 'eu-west-1', but 'eu-west' was provided",
        ),
        (
            {"queue_url": "sqs://mail-queue"},
            r"`queue_url` must be an SQS queue URL, but 'sqs://mail-queue' was provided",
        ),
        (
            {"queue_arn": "arn:aws:sns:eu-west-1:123456789012:t"},
            r"`queue_arn` must be an SQS queue ARN, but 'arn:aws:sns:eu-west-1:123456789012:t' was provided",
        ),
        (
            {"queue_arn": "arn:aws:sqs:us-east-1:123456789012:mail-queue"},
            r"`queue_arn` must be in `region` \('eu-west-1'\), but 'arn:aws:sqs:us-east-1:123456789012:mail-queue' was provided",
        ),
        (
            {"email_from": "no-reply"},
            r"`email_from` must be an email address such as 'no-reply@example.com', but 'no-reply' was provided",
        ),
        (
            {"worker_url": "https://mail.acme.workers.dev"},
            r"`worker_url` and `worker_token` must be given together .* but only `worker_url` was provided",
        ),
        (
            {"worker_token": "tok"},
            r"`worker_url` and `worker_token` must be given together .* but only `worker_token` was provided",
        ),
        (
            {"worker_url": "http://mail.acme.workers.dev", "worker_token": "tok"},
            r"`worker_url` must be an https:// URL, but 'http://mail.acme.workers.dev' was provided",
        ),
        ({"oidc": "yes"}, r"`oidc` must be true or false, but 'yes' \(str\) was provided"),
        (
            {"oidc": False, "oidc_provider_arn": PROVIDER_ARN},
            r"`oidc_provider_arn` needs `oidc` true, but `oidc` is false",
        ),
        (
            {"oidc_provider_arn": "arn:aws:iam::123456789012:oidc-provider/oidc.vercel.com/other"},
            r"`oidc_provider_arn` must be the ARN of the IAM OIDC provider for 'https://oidc.vercel.com/acme' \(ending in ':oidc-provider/oidc.vercel.com/acme'\), but .*other' was provided",
        ),
        (
            {"send_statement": {"Effect": "Allow", "Action": "sqs:*", "Resource": QUEUE_ARN}},
            r"`send_statement` must allow only sqs:SendMessage, sqs:GetQueueUrl",
        ),
        (
            {"oidc": False, "reuse_account_oidc_provider": True},
            r"`reuse_account_oidc_provider` needs `oidc` true, but `oidc` is false",
        ),
        (
            {"reuse_account_oidc_provider": True, "oidc_provider_arn": PROVIDER_ARN},
            r"`reuse_account_oidc_provider` and `oidc_provider_arn` both name the provider",
        ),
        (
            {"access_key_rotation_days": 46},
            r"`access_key_rotation_days` must be between 1 and 45, but 46 was",
        ),
        (
            {"reuse_account_oidc_provider": "yes"},
            r"`reuse_account_oidc_provider` must be true or false, but 'yes' \(str\)",
        ),
    ],
)
def test_invalid_args_are_refused_before_any_resource(
    run: Any, changes: dict[str, Any], message: str
) -> None:
    args = replace(ARGS, **changes)
    with pytest.raises(ConfigError, match=message):
        args.validate()
    errors: list[ConfigError] = []

    def program() -> None:
        try:
            VercelEnv("app", args)
        except ConfigError as error:
            errors.append(error)

    rec = run(program)
    assert len(errors) == 1
    assert [r.type for r in rec.resources] == [TYPE]


def test_unresolved_values_are_not_checked_until_deploy(run: Any) -> None:
    rec, _ = build(
        run,
        queue_url=pulumi.Output.from_input(QUEUE_URL),
        queue_arn=pulumi.Output.from_input(QUEUE_ARN),
        oidc_provider_arn=pulumi.Output.from_input(PROVIDER_ARN),
    )
    assert (
        json.loads(rec.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"]) == EXACT_SEND_POLICY
    )
