"""The pack judged by classes of grant, not by examples (issue 10).

Each case is an insecure program and its secure twin: the same resource written
the safe way. The insecure one must be caught by its rule, the twin must pass the
whole pack, on both entry points: :func:`evaluate` on the recording (the offline
plan) and pulumi_policy's analyzer servicer (``pulumi preview --policy-pack``).
Cases are grouped by class: every way the same grant can be written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_cloudflare as cloudflare
import pulumiverse_time as time
import pulumiverse_vercel as vercel
import pytest
from pulumi.runtime import proto
from serverless_mail.mocking import ACCOUNT_ID, Recording
from serverless_mail.policies import POLICIES, evaluate

from tests.policy.alarms import alarm_topic, consumer_alarms, dlq_depth_alarm

REGION = "eu-west-1"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:mail"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:events"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/idempotency"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:mail-AbCdEf"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/sender"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:sender"
IDENTITY_ARN = f"arn:aws:ses:{REGION}:{ACCOUNT_ID}:identity/example.com"
CONFIG_SET_ARN = f"arn:aws:ses:{REGION}:{ACCOUNT_ID}:configuration-set/mail"
ROOT = f"arn:aws:iam::{ACCOUNT_ID}:root"
ISSUER = "oidc.vercel.com/acme"
PROVIDER_ARN = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{ISSUER}"
AUD = {f"{ISSUER}:aud": "https://vercel.com/acme"}
SUB = "owner:acme:project:shop:environment:production"
FROM_DOMAIN = {"StringLike": {"ses:FromAddress": ["*@example.com", "*@*.example.com"]}}
SOURCE_ACCOUNT = {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}
MANAGED = "arn:aws:iam::aws:policy/"

Program = Callable[[], Any]


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def role_policy(*statements: dict[str, Any]) -> Program:
    return lambda: aws.iam.RolePolicy("p", role="sender", policy=document(*statements))


def raw_role_policy(policy: Any) -> Program:
    return lambda: aws.iam.RolePolicy("p", role="sender", policy=json.dumps(policy))


def send(action: Any = "ses:SendEmail", condition: Any = FROM_DOMAIN, **extra: Any) -> Program:
    statement = allow(action, [IDENTITY_ARN, CONFIG_SET_ARN], **extra)
    if condition is not None:
        statement["Condition"] = condition
    return role_policy(statement)


def trust(action: Any = "sts:AssumeRoleWithWebIdentity", **overrides: Any) -> Program:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Federated": PROVIDER_ARN},
        "Action": action,
        "Condition": {"StringEquals": {**AUD, f"{ISSUER}:sub": [SUB]}},
        **overrides,
    }
    return lambda: aws.iam.Role("vercel", assume_role_policy=document(statement))


def conditions(*blocks: tuple[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A Condition element from (operator, block) pairs, merging repeated operators."""
    merged: dict[str, dict[str, Any]] = {}
    for operator, block in blocks:
        merged.setdefault(operator, {}).update(block)
    return merged


def sub(*values: str, operator: str = "StringLike") -> Program:
    return trust(
        Condition=conditions(("StringEquals", AUD), (operator, {f"{ISSUER}:sub": list(values)}))
    )


def aud(value: str, operator: str = "StringLike") -> Program:
    return trust(
        Condition=conditions(
            (operator, {f"{ISSUER}:aud": value}), ("StringEquals", {f"{ISSUER}:sub": SUB})
        )
    )


def queue_policy(*statements: dict[str, Any]) -> Program:
    return lambda: aws.sqs.QueuePolicy("qp", queue_url="https://q", policy=document(*statements))


def topic_policy(*statements: dict[str, Any]) -> Program:
    return lambda: aws.sns.TopicPolicy("tp", arn=TOPIC_ARN, policy=document(*statements))


def topic(*statements: dict[str, Any]) -> Program:
    return lambda: aws.sns.Topic(
        "t", kms_master_key_id="alias/events", policy=document(*statements)
    )


def key(*statements: dict[str, Any]) -> Program:
    admin = {
        "Effect": "Allow",
        "Principal": {"AWS": ROOT},
        "Action": "kms:*",
        "Resource": "*",
    }
    return lambda: aws.kms.Key("k", enable_key_rotation=True, policy=document(admin, *statements))


def permission(**inputs: Any) -> Program:
    return lambda: aws.lambda_.Permission(
        "invoke", action="lambda:InvokeFunction", function=FUNCTION_ARN, **inputs
    )


def grant(principal: Any, **extra: Any) -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Principal": principal,
        "Action": "sqs:SendMessage",
        "Resource": QUEUE_ARN,
        **extra,
    }


def attached(type_: Callable[..., Any], name: str, **target: Any) -> Program:
    return lambda: type_("attach", policy_arn=name, **target)


def worker(binding_type: str, value: Any, name: str = "DATABASE_URL") -> Program:
    field = "json" if binding_type == "json" else "text"
    return lambda: cloudflare.WorkersScript(
        "worker",
        account_id="acc",
        script_name="mail-worker",
        content="export default {}",
        main_module="index.js",
        bindings=[{"name": name, "type": binding_type, field: value}],
    )


def variables(sensitive: bool, value: Any, key_name: str = "DATABASE_URL") -> Program:
    return lambda: vercel.ProjectEnvironmentVariables(
        "vars",
        project_id="prj",
        variables=[
            {"key": key_name, "value": value, "targets": ["production"], "sensitive": sensitive}
        ],
    )


def variable(sensitive: bool, targets: list[str], key_name: str = "EMAIL_QUEUE_URL") -> Program:
    return lambda: vercel.ProjectEnvironmentVariable(
        "var", project_id="prj", key=key_name, value="v", targets=targets, sensitive=sensitive
    )


def shared(sensitive: bool) -> Program:
    return lambda: vercel.SharedEnvironmentVariable(
        "shared",
        key="DATABASE_URL",
        value="pg://",
        project_ids=["prj"],
        targets=["production", "preview"],
        sensitive=sensitive,
    )


def consumer(**settings: Any) -> Program:
    return lambda: cloudflare.QueueConsumer(
        "consumer",
        account_id="acc",
        queue_id="q",
        script_name="mail-worker",
        type="worker",
        dead_letter_queue="mail-dlq",
        settings={"max_retries": 5, **settings},
    )


def mapping(scaling: Any) -> Program:
    def program() -> None:
        dlq = aws.sqs.Queue(
            "dlq", message_retention_seconds=1_209_600, sqs_managed_sse_enabled=True
        )
        queue = aws.sqs.Queue(
            "main",
            sqs_managed_sse_enabled=True,
            visibility_timeout_seconds=180,
            redrive_policy=pulumi.Output.json_dumps(
                {"deadLetterTargetArn": dlq.arn, "maxReceiveCount": 5}
            ),
        )
        fn = aws.lambda_.Function(
            "sender",
            name="sender",
            role=ROLE_ARN,
            runtime="python3.12",
            handler="handler.handler",
            code=pulumi.AssetArchive({}),
            timeout=30,
            architectures=["arm64"],
        )
        aws.cloudwatch.LogGroup("logs", name="/aws/lambda/sender", retention_in_days=30)
        aws.lambda_.EventSourceMapping(
            "source",
            event_source_arn=queue.arn,
            function_name=fn.arn,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config=scaling,
        )
        topic = alarm_topic()
        dlq_depth_alarm(queue, topic)
        consumer_alarms(queue, "sender", topic)

    return program


def access_key(rotation: dict[str, Any] | None, user: str = "mail") -> Program:
    def program() -> None:
        if rotation is not None:
            time.Rotating("rotation", triggers={"user": user}, **rotation)
        aws.iam.AccessKey("key", user="mail")

    return program


@dataclass(frozen=True)
class Case:
    id: str
    rule: str
    insecure: Program
    secure: Program
    message: str
    """A part of the insecure program's message that says what to change."""


CASES: list[Case] = [
    # --- Not elements: an Allow of everything but ... -------------------------
    Case(
        "not-action",
        "iam-no-not-elements",
        role_policy({"Effect": "Allow", "NotAction": ["iam:*"], "Resource": QUEUE_ARN}),
        role_policy(allow(["sqs:SendMessage"], QUEUE_ARN)),
        "policy allows with NotAction",
    ),
    Case(
        "not-resource",
        "iam-no-not-elements",
        role_policy({"Effect": "Allow", "Action": "sqs:SendMessage", "NotResource": QUEUE_ARN}),
        role_policy(allow("sqs:SendMessage", QUEUE_ARN)),
        "policy allows with NotResource",
    ),
    Case(
        "not-principal-queue",
        "iam-no-not-elements",
        queue_policy(
            {
                "Effect": "Allow",
                "NotPrincipal": {"AWS": ROLE_ARN},
                "Action": "sqs:SendMessage",
                "Resource": QUEUE_ARN,
            }
        ),
        queue_policy(grant({"AWS": ROLE_ARN})),
        "policy allows with NotPrincipal",
    ),
    Case(
        "not-action-lowercase-elements-effect",
        "iam-no-not-elements",
        raw_role_policy(
            {"Statement": {"Effect": "allow", "NotAction": "s3:*", "Resource": QUEUE_ARN}}
        ),
        raw_role_policy(
            {"Statement": {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": QUEUE_ARN}}
        ),
        "allows with NotAction",
    ),
    # --- Wildcards inside actions ---------------------------------------------
    Case(
        "action-infix",
        "iam-no-wildcard-actions",
        role_policy(allow("iam:*Role*", ROLE_ARN)),
        role_policy(allow("iam:PassRole", ROLE_ARN)),
        "wildcard action 'iam:*Role*'",
    ),
    Case(
        "action-prefix",
        "iam-no-wildcard-actions",
        role_policy(allow(["s3:Get*"], "arn:aws:s3:::bucket/key")),
        role_policy(allow(["s3:GetObject"], "arn:aws:s3:::bucket/key")),
        "wildcard action 's3:Get*'",
    ),
    Case(
        "action-question-mark",
        "iam-no-wildcard-actions",
        role_policy(allow("sqs:SendMessag?", QUEUE_ARN)),
        role_policy(allow("sqs:SendMessage", QUEUE_ARN)),
        "wildcard action 'sqs:SendMessag?'",
    ),
    Case(
        "action-star-statement-object",
        "iam-no-wildcard-actions",
        raw_role_policy(
            {"Statement": {"Effect": "Allow", "Action": "dynamodb:*", "Resource": TABLE_ARN}}
        ),
        raw_role_policy(
            {"Statement": {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": TABLE_ARN}}
        ),
        "wildcard action 'dynamodb:*'",
    ),
    Case(
        "action-star-in-queue-policy",
        "iam-no-wildcard-actions",
        queue_policy({**grant({"AWS": ROLE_ARN}), "Action": "sqs:*"}),
        queue_policy(grant({"AWS": ROLE_ARN})),
        "wildcard action 'sqs:*'",
    ),
    Case(
        "kms-star-for-a-role-in-a-key-policy",
        "iam-no-wildcard-actions",
        key(
            {"Effect": "Allow", "Principal": {"AWS": ROLE_ARN}, "Action": "kms:*", "Resource": "*"}
        ),
        key(
            {
                "Effect": "Allow",
                "Principal": {"AWS": ROLE_ARN},
                "Action": ["kms:Decrypt"],
                "Resource": "*",
            }
        ),
        "wildcard action 'kms:*'",
    ),
    # --- Wildcards inside resources --------------------------------------------
    Case(
        "kms-any-key",
        "iam-no-wildcard-resources",
        role_policy(allow("kms:Decrypt", "*")),
        role_policy(allow("kms:Decrypt", KEY_ARN)),
        "kms:Decrypt on the wildcard resource '*'",
    ),
    Case(
        "secretsmanager-any-secret",
        "iam-no-wildcard-resources",
        role_policy(allow("secretsmanager:GetSecretValue", "*")),
        role_policy(allow("secretsmanager:GetSecretValue", SECRET_ARN)),
        "on the wildcard resource '*'",
    ),
    Case(
        "sts-any-role",
        "iam-no-wildcard-resources",
        role_policy(allow("sts:AssumeRole", "*")),
        role_policy(allow("sts:AssumeRole", ROLE_ARN)),
        "sts:AssumeRole on the wildcard resource '*'",
    ),
    Case(
        "lambda-any-function",
        "iam-no-wildcard-resources",
        role_policy(
            allow("lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:*")
        ),
        role_policy(allow("lambda:InvokeFunction", FUNCTION_ARN)),
        "function:*'",
    ),
    Case(
        "sqs-partial-name",
        "iam-no-wildcard-resources",
        role_policy(allow("sqs:SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:*mail*")),
        role_policy(allow("sqs:SendMessage", QUEUE_ARN)),
        ":*mail*'",
    ),
    Case(
        "dynamodb-every-table",
        "iam-no-wildcard-resources",
        role_policy(allow(["dynamodb:GetItem"], f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/*")),
        role_policy(allow(["dynamodb:GetItem"], TABLE_ARN)),
        "table/*'",
    ),
    Case(
        "logs-every-group",
        "iam-no-wildcard-resources",
        role_policy(allow("logs:PutLogEvents", f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:*")),
        # A named group's streams (":*") are what CloudWatch Logs requires.
        role_policy(
            allow(
                "logs:PutLogEvents",
                f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:/aws/lambda/sender:*",
            )
        ),
        "log-group:*'",
    ),
    Case(
        "unscoped-action-beside-a-scoped-one",
        "iam-no-wildcard-resources",
        role_policy(allow(["cloudwatch:PutMetricData", "sqs:SendMessage"], "*")),
        role_policy(allow("cloudwatch:PutMetricData", "*"), allow("sqs:SendMessage", QUEUE_ARN)),
        "cloudwatch:PutMetricData, sqs:SendMessage on the wildcard resource '*'",
    ),
    Case(
        "queue-policy-any-queue",
        "iam-no-wildcard-resources",
        queue_policy({**grant({"AWS": ROLE_ARN}), "Resource": "*"}),
        queue_policy(grant({"AWS": ROLE_ARN})),
        "sqs:SendMessage on the wildcard resource '*'",
    ),
    # --- SES sends without a From limit ----------------------------------------
    Case(
        "send-bulk-unconditioned",
        "iam-ses-send-requires-from-address",
        send("ses:SendBulkEmail", None),
        send("ses:SendBulkEmail"),
        "allows ses:SendBulkEmail without a `ses:FromAddress` condition",
    ),
    Case(
        "send-templated-any-case",
        "iam-ses-send-requires-from-address",
        send("SES:sendtemplatedemail", None),
        send("SES:sendtemplatedemail", {"StringLike": {"SES:FROMADDRESS": "*@example.com"}}),
        "ses:SendTemplatedEmail",
    ),
    Case(
        "send-custom-verification",
        "iam-ses-send-requires-from-address",
        send(["ses:SendCustomVerificationEmail"], None),
        send(["ses:SendCustomVerificationEmail"]),
        "ses:SendCustomVerificationEmail without",
    ),
    Case(
        "send-by-pattern",
        "iam-ses-send-requires-from-address",
        send("ses:Send*", None),
        send(["ses:SendEmail"]),
        "ses:SendEmail, ses:SendRawEmail, ses:SendBulkEmail",
    ),
    Case(
        "send-through-not-action",
        "iam-ses-send-requires-from-address",
        send(None, None, NotAction="ses:GetAccount"),
        send(["ses:SendEmail"]),
        "ses:SendEmail",
    ),
    Case(
        "from-any-address",
        "iam-ses-send-requires-from-address",
        send(condition={"StringLike": {"ses:FromAddress": "*"}}),
        send(condition={"StringLike": {"ses:FromAddress": "*@example.com"}}),
        "from `ses:FromAddress` '*', which is not limited to example.com",
    ),
    Case(
        "from-any-domain",
        "iam-ses-send-requires-from-address",
        send(condition={"StringLike": {"ses:FromAddress": ["*@example.com", "*@*"]}}),
        send(condition={"StringLike": {"ses:FromAddress": ["*@example.com", "*@*.example.com"]}}),
        "'*@*', which is not limited",
    ),
    Case(
        "from-another-domain",
        "iam-ses-send-requires-from-address",
        send(condition={"StringEquals": {"ses:FromAddress": "no-reply@evil.test"}}),
        send(condition={"StringEquals": {"ses:FromAddress": "no-reply@example.com"}}),
        "'no-reply@evil.test', which is not limited to example.com",
    ),
    Case(
        "from-under-string-not-like",
        "iam-ses-send-requires-from-address",
        send(condition={"StringNotLike": {"ses:FromAddress": "*@evil.test"}}),
        send(condition={"StringLike": {"ses:FromAddress": "*@example.com"}}),
        "without a `ses:FromAddress` condition under StringEquals or StringLike",
    ),
    Case(
        "from-under-for-any-value",
        "iam-ses-send-requires-from-address",
        send(condition={"ForAnyValue:StringLike": {"ses:FromAddress": "*@example.com"}}),
        send(condition={"StringLike": {"ses:FromAddress": "*@example.com"}}),
        "without a `ses:FromAddress` condition",
    ),
    Case(
        "from-if-exists",
        "iam-ses-send-requires-from-address",
        send(condition={"StringLikeIfExists": {"ses:FromAddress": "*@example.com"}}),
        send(condition={"StringLike": {"ses:FromAddress": "*@example.com"}}),
        "without a `ses:FromAddress` condition",
    ),
    # --- Web-identity trust ----------------------------------------------------
    Case(
        "trust-action-pattern",
        "iam-oidc-trust-pinned",
        trust("sts:AssumeRoleWith*"),
        trust("sts:AssumeRoleWithWebIdentity"),
        "allows sts:AssumeRoleWith*: allow exactly 'sts:AssumeRoleWithWebIdentity'",
    ),
    Case(
        "trust-action-beside-others",
        "iam-oidc-trust-pinned",
        trust(["sts:AssumeRoleWithWebIdentity", "sts:AssumeRole"]),
        trust(["sts:AssumeRoleWithWebIdentity"]),
        "allow exactly 'sts:AssumeRoleWithWebIdentity', no pattern and nothing beside it",
    ),
    Case(
        "trust-principal-star",
        "iam-oidc-trust-pinned",
        trust(Principal="*"),
        trust(Principal={"Federated": PROVIDER_ARN}),
        "names Principal '*'",
    ),
    Case(
        "trust-unpinned",
        "iam-oidc-trust-pinned",
        trust(Condition={"StringEquals": AUD}),
        trust(Condition={"StringEquals": {**AUD, f"{ISSUER}:sub": SUB}}),
        "does not pin `sub`",
    ),
    Case(
        "trust-aud-wildcard",
        "iam-oidc-trust-pinned",
        aud("*"),
        aud("https://vercel.com/acme", "StringEquals"),
        "`aud` '*' is a pattern",
    ),
    Case(
        "trust-sub-any-team",
        "iam-oidc-trust-pinned",
        sub("owner:*:project:shop:environment:production"),
        sub(SUB),
        "does not pin one team, project and environment",
    ),
    Case(
        "trust-sub-any-project",
        "iam-oidc-trust-pinned",
        sub("owner:acme:project:*:environment:production"),
        sub("owner:acme:project:shop:environment:production"),
        "`sub` 'owner:acme:project:*:environment:production'",
    ),
    Case(
        "trust-sub-any-environment",
        "iam-oidc-trust-pinned",
        sub("owner:acme:project:shop:environment:*"),
        sub(
            "owner:acme:project:shop:environment:production",
            "owner:acme:project:shop:environment:preview",
        ),
        "`sub` 'owner:acme:project:shop:environment:*'",
    ),
    Case(
        "trust-sub-question-mark",
        "iam-oidc-trust-pinned",
        sub("owner:acme:project:sho?:environment:production"),
        sub(SUB, operator="StringEquals"),
        "'owner:acme:project:sho?:environment:production'",
    ),
    Case(
        "trust-sub-not-equals",
        "iam-oidc-trust-pinned",
        sub("owner:evil:project:x:environment:production", operator="StringNotEquals"),
        sub(SUB, operator="StringEquals"),
        "does not pin `sub`",
    ),
    # --- AWS managed admin policies --------------------------------------------
    Case(
        "role-attachment-admin",
        "iam-no-broad-managed-policies",
        attached(aws.iam.RolePolicyAttachment, f"{MANAGED}AdministratorAccess", role="sender"),
        attached(
            aws.iam.RolePolicyAttachment,
            f"arn:aws:iam::{ACCOUNT_ID}:policy/send-mail",
            role="sender",
        ),
        "attaches the AWS managed policy arn:aws:iam::aws:policy/AdministratorAccess",
    ),
    Case(
        "user-attachment-power-user",
        "iam-no-broad-managed-policies",
        attached(aws.iam.UserPolicyAttachment, f"{MANAGED}PowerUserAccess", user="mail"),
        attached(
            aws.iam.UserPolicyAttachment, f"arn:aws:iam::{ACCOUNT_ID}:policy/send", user="mail"
        ),
        "PowerUserAccess",
    ),
    Case(
        "group-attachment-full-access",
        "iam-no-broad-managed-policies",
        attached(aws.iam.GroupPolicyAttachment, f"{MANAGED}AmazonSQSFullAccess", group="ops"),
        attached(aws.iam.GroupPolicyAttachment, f"{MANAGED}AmazonSQSReadOnlyAccess", group="ops"),
        "AmazonSQSFullAccess",
    ),
    Case(
        "policy-attachment-job-function",
        "iam-no-broad-managed-policies",
        lambda: aws.iam.PolicyAttachment(
            "attach", policy_arn=f"{MANAGED}job-function/SystemAdministrator", roles=["sender"]
        ),
        lambda: aws.iam.PolicyAttachment(
            "attach", policy_arn=f"arn:aws:iam::{ACCOUNT_ID}:policy/send", roles=["sender"]
        ),
        "job-function/SystemAdministrator",
    ),
    Case(
        "role-managed-policy-arns",
        "iam-no-broad-managed-policies",
        lambda: aws.iam.Role(
            "r",
            assume_role_policy=document(
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ),
            managed_policy_arns=[f"{MANAGED}IAMFullAccess"],
        ),
        lambda: aws.iam.Role(
            "r",
            assume_role_policy=document(
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ),
            managed_policy_arns=[f"{MANAGED}service-role/AWSLambdaBasicExecutionRole"],
        ),
        "managedPolicyArns attaches the AWS managed policy arn:aws:iam::aws:policy/IAMFullAccess",
    ),
    # --- Resource policies: public principals ----------------------------------
    Case(
        "queue-principal-star",
        "resource-policy-no-public-principal",
        queue_policy(grant("*")),
        queue_policy(grant({"AWS": ROLE_ARN})),
        "policy allows Principal '*'",
    ),
    Case(
        "topic-policy-aws-star",
        "resource-policy-no-public-principal",
        topic_policy({**grant({"AWS": "*"}), "Action": "sns:Publish", "Resource": TOPIC_ARN}),
        topic_policy({**grant({"AWS": ROLE_ARN}), "Action": "sns:Publish", "Resource": TOPIC_ARN}),
        "allows Principal '*'",
    ),
    Case(
        "topic-aws-star-list",
        "resource-policy-no-public-principal",
        topic({**grant({"AWS": ["*"]}), "Action": "sns:Publish", "Resource": TOPIC_ARN}),
        topic({**grant({"AWS": [ROLE_ARN]}), "Action": "sns:Publish", "Resource": TOPIC_ARN}),
        "allows Principal '*'",
    ),
    Case(
        "key-principal-star",
        "resource-policy-no-public-principal",
        key({"Effect": "Allow", "Principal": "*", "Action": ["kms:Decrypt"], "Resource": "*"}),
        key(
            {
                "Effect": "Allow",
                "Principal": {"AWS": ROLE_ARN},
                "Action": ["kms:Decrypt"],
                "Resource": "*",
            }
        ),
        "allows Principal '*'",
    ),
    Case(
        "trust-aws-star",
        "resource-policy-no-public-principal",
        lambda: aws.iam.Role(
            "r",
            assume_role_policy=document(
                {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
            ),
        ),
        lambda: aws.iam.Role(
            "r",
            assume_role_policy=document(
                {"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "sts:AssumeRole"}
            ),
        ),
        "assumeRolePolicy allows Principal '*'",
    ),
    Case(
        "lambda-permission-star",
        "resource-policy-no-public-principal",
        permission(principal="*"),
        permission(principal=ACCOUNT_ID),
        "The Lambda permission's principal is '*'",
    ),
    # --- Resource policies: service principals without a source ----------------
    Case(
        "topic-service-unscoped",
        "resource-policy-service-principal-scoped",
        topic_policy(
            {
                **grant({"Service": "events.amazonaws.com"}),
                "Action": "sns:Publish",
                "Resource": TOPIC_ARN,
            }
        ),
        topic_policy(
            {
                **grant({"Service": "events.amazonaws.com"}),
                "Action": "sns:Publish",
                "Resource": TOPIC_ARN,
                # Condition keys are case-insensitive: this spelling counts.
                "Condition": {
                    "ArnLike": {"AWS:SourceArn": f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/mail"}
                },
            }
        ),
        "lets the service principal events.amazonaws.com in without",
    ),
    Case(
        "queue-service-not-equals",
        "resource-policy-service-principal-scoped",
        queue_policy(
            grant(
                {"Service": "sns.amazonaws.com"},
                Condition={"ArnNotEquals": {"aws:SourceArn": TOPIC_ARN}},
            )
        ),
        queue_policy(
            grant(
                {"Service": "sns.amazonaws.com"},
                Condition={"ArnEquals": {"aws:SourceArn": TOPIC_ARN}},
            )
        ),
        "sns.amazonaws.com in without an `aws:SourceArn` or `aws:SourceAccount` condition",
    ),
    Case(
        "queue-service-if-exists",
        "resource-policy-service-principal-scoped",
        queue_policy(
            grant(
                {"Service": "sns.amazonaws.com"},
                Condition={"ArnLikeIfExists": {"aws:SourceArn": TOPIC_ARN}},
            )
        ),
        queue_policy(grant({"Service": "sns.amazonaws.com"}, Condition=SOURCE_ACCOUNT)),
        "sns.amazonaws.com in without",
    ),
    Case(
        "key-service-unscoped",
        "resource-policy-service-principal-scoped",
        key(
            {
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": "*",
            }
        ),
        key(
            {
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": "*",
                "Condition": SOURCE_ACCOUNT,
            }
        ),
        "cloudwatch.amazonaws.com in without",
    ),
    Case(
        "lambda-permission-service-unscoped",
        "resource-policy-service-principal-scoped",
        permission(principal="sns.amazonaws.com"),
        permission(principal="sns.amazonaws.com", source_arn=TOPIC_ARN),
        "lets sns.amazonaws.com invoke the function without source_arn or source_account",
    ),
    # --- Secrets judged by the value's secretness ------------------------------
    Case(
        "worker-plain-text-secret-value",
        "cloudflare-worker-secret-bindings",
        worker("plain_text", pulumi.Output.secret("pg://user:pw@db")),
        worker("secret_text", pulumi.Output.secret("pg://user:pw@db")),
        "Worker binding DATABASE_URL holds a Pulumi secret but is plain_text",
    ),
    Case(
        "worker-json-secret-value",
        "cloudflare-worker-secret-bindings",
        worker("json", pulumi.Output.secret('{"password": "pw"}'), name="SETTINGS"),
        worker("secret_text", pulumi.Output.secret('{"password": "pw"}'), name="SETTINGS"),
        "Worker binding SETTINGS holds a Pulumi secret but is json",
    ),
    Case(
        "worker-json-secret-name",
        "cloudflare-worker-secret-bindings",
        worker("json", '{"k": 1}', name="SIGNING_KEY"),
        worker("json", '{"k": 1}', name="SIGNING_SETTINGS"),
        "Worker binding SIGNING_KEY looks like a secret but is json",
    ),
    Case(
        "vercel-plural-secret-value",
        "vercel-secret-env-sensitive",
        variables(False, pulumi.Output.secret("pg://")),
        variables(True, pulumi.Output.secret("pg://")),
        "Vercel variable DATABASE_URL holds a secret but is not sensitive",
    ),
    Case(
        "vercel-singular-value-is-secret",
        "vercel-secret-env-sensitive",
        variable(False, ["production", "preview"]),
        variable(True, ["production", "preview"]),
        "Vercel variable EMAIL_QUEUE_URL holds a secret but is not sensitive",
    ),
    Case(
        "vercel-shared",
        "vercel-secret-env-sensitive",
        shared(False),
        shared(True),
        "Vercel variable DATABASE_URL holds a secret but is not sensitive",
    ),
    Case(
        "vercel-development-secret",
        "vercel-development-secret-env",
        variable(False, ["development"], key_name="STRIPE_SECRET_KEY"),
        variable(False, ["development"], key_name="EMAIL_FROM"),
        "Vercel variable STRIPE_SECRET_KEY holds a secret readable by the team",
    ),
    # --- Bounded concurrency ---------------------------------------------------
    Case(
        "consumer-unbounded",
        "cloudflare-queue-consumer-max-concurrency",
        consumer(),
        consumer(max_concurrency=5),
        "settings.max_concurrency is None: set it between 1 and 250",
    ),
    Case(
        "consumer-above-ceiling",
        "cloudflare-queue-consumer-max-concurrency",
        consumer(max_concurrency=1000),
        consumer(max_concurrency=250),
        "settings.max_concurrency is 1000",
    ),
    Case(
        "mapping-unbounded",
        "lambda-sqs-maximum-concurrency",
        mapping(None),
        mapping({"maximum_concurrency": 5}),
        "maximum concurrency is None",
    ),
    Case(
        "mapping-out-of-range",
        "lambda-sqs-maximum-concurrency",
        mapping({"maximum_concurrency": 5000}),
        mapping({"maximum_concurrency": 1000}),
        "maximum concurrency is 5000",
    ),
    # --- Access keys -----------------------------------------------------------
    Case(
        "access-key-never-rotated",
        "iam-access-key-rotation",
        access_key(None),
        access_key({"rotation_days": 60}),
        "Access key key of IAM user mail is not rotated within 90 days",
    ),
    Case(
        "access-key-rotated-yearly",
        "iam-access-key-rotation",
        access_key({"rotation_years": 1}),
        access_key({"rotation_days": 90}),
        "is not rotated within 90 days",
    ),
    Case(
        "access-key-schedule-of-another-user",
        "iam-access-key-rotation",
        access_key({"rotation_days": 30}, user="someone-else"),
        access_key({"rotation_days": 30}),
        "is not rotated within 90 days",
    ),
]
RULES = {p.name: p for p in POLICIES}
ADVISORY = {"vercel-development-secret-env", "lambda-arm64"}


def test_at_least_40_classes_of_insecure_input_with_ids_unique() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)
    assert {c.rule for c in CASES} <= set(RULES)


def params(cases: list[Case]) -> list[Any]:
    return [pytest.param(c, id=c.id) for c in cases]


@pytest.mark.parametrize("case", params(CASES))
def test_insecure_input_is_caught_by_evaluate(case: Case, run: Callable[..., Recording]) -> None:
    violations = evaluate(run(case.insecure), [RULES[case.rule]], stack_outputs=False)
    assert violations, f"{case.rule} missed {case.id}"
    assert {v.policy for v in violations} == {case.rule}
    assert any(case.message in v.message for v in violations), violations
    level = "advisory" if case.rule in ADVISORY else "mandatory"
    assert {v.level for v in violations} == {level}


@pytest.mark.parametrize("case", params(CASES))
def test_insecure_input_is_caught_by_the_analyzer(
    case: Case, run: Callable[..., Recording], analyze: Callable[[Recording], list[Any]]
) -> None:
    diagnostics = [d for d in analyze(run(case.insecure)) if d.policyName == case.rule]
    assert any(case.message in d.message for d in diagnostics), diagnostics
    level = proto.ADVISORY if case.rule in ADVISORY else proto.MANDATORY
    assert {d.enforcementLevel for d in diagnostics} == {level}


@pytest.mark.parametrize("case", params(CASES))
def test_secure_twin_passes_the_whole_pack(
    case: Case, run: Callable[..., Recording], analyze: Callable[[Recording], list[Any]]
) -> None:
    recording = run(case.secure)
    assert evaluate(recording) == []
    assert [(d.policyName, d.message) for d in analyze(recording)] == []
