"""Each rule of the pack on small programs built from the real resource types.

One failing fixture per rule (run with that rule alone: exactly its violation and
message), then passing fixtures that run every rule and expect nothing, so a rule
neither misses what it guards nor fires on what it allows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_cloudflare as cloudflare
import pulumiverse_vercel as vercel
import pytest
from serverless_mail.mocking import ACCOUNT_ID, Recording
from serverless_mail.policies import (
    POLICIES,
    Violation,
    check_stack_outputs,
    evaluate,
    looks_secret,
)

from tests.policy.alarms import (
    alarm_topic,
    consumer_alarms,
    dlq_depth_alarm,
    guarded_queries,
    math_alarm,
    metric_alarm,
    reputation_alarms,
)

REGION = "eu-west-1"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:mail"
IDENTITY_ARN = f"arn:aws:ses:{REGION}:{ACCOUNT_ID}:identity/example.com"
ISSUER = "oidc.vercel.com/acme"
FROM_ADDRESS = {"StringLike": {"ses:FromAddress": "*@example.com"}}
POLICY_NAMES = {p.name for p in POLICIES}


def policy(name: str) -> Any:
    return next(p for p in POLICIES if p.name == name)


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def role_policy(*statements: dict[str, Any]) -> Callable[[], None]:
    return lambda: aws.iam.RolePolicy("p", role="sender", policy=document(*statements))


def trust(condition: dict[str, Any] | None) -> str:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{ISSUER}"},
        "Action": "sts:AssumeRoleWithWebIdentity",
    }
    if condition is not None:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def oidc_role(condition: dict[str, Any] | None) -> Callable[[], None]:
    return lambda: aws.iam.Role("vercel", assume_role_policy=trust(condition))


PINNED = {
    "StringEquals": {
        f"{ISSUER}:aud": "https://vercel.com/acme",
        f"{ISSUER}:sub": [
            "owner:acme:project:shop:environment:production",
            "owner:acme:project:shop:environment:preview",
        ],
    },
}


def queues(
    *,
    main: dict[str, Any] | None = None,
    dlq: dict[str, Any] | None = None,
    max_receive: int = 5,
    topic: aws.sns.Topic | None = None,
    depth_alarm: bool = True,
) -> aws.sqs.Queue:
    dead = aws.sqs.Queue(
        "dlq",
        **{"message_retention_seconds": 1_209_600, "sqs_managed_sse_enabled": True, **(dlq or {})},
    )
    queue = aws.sqs.Queue(
        "main",
        **{
            "sqs_managed_sse_enabled": True,
            "visibility_timeout_seconds": 180,
            "redrive_policy": pulumi.Output.json_dumps(
                {"deadLetterTargetArn": dead.arn, "maxReceiveCount": max_receive}
            ),
            **(main or {}),
        },
    )
    if depth_alarm:
        dlq_depth_alarm(queue, topic or alarm_topic())
    return queue


def sender(
    *,
    queue: dict[str, Any] | None = None,
    function: dict[str, Any] | None = None,
    mapping: dict[str, Any] | None = None,
    log_group: bool = True,
    alarms: tuple[str, ...] = ("age", "Errors", "Throttles"),
) -> None:
    topic = alarm_topic()
    source = queues(main=queue, topic=topic)
    fn = aws.lambda_.Function(
        "sender",
        **{
            "name": "sender",
            "role": f"arn:aws:iam::{ACCOUNT_ID}:role/sender",
            "runtime": "python3.12",
            "handler": "handler.handler",
            "code": pulumi.AssetArchive({}),
            "timeout": 30,
            "architectures": ["arm64"],
            **(function or {}),
        },
    )
    if log_group:
        aws.cloudwatch.LogGroup("sender-logs", name="/aws/lambda/sender", retention_in_days=30)
    aws.lambda_.EventSourceMapping(
        "sender-source",
        **{
            "event_source_arn": source.arn,
            "function_name": fn.arn,
            "function_response_types": ["ReportBatchItemFailures"],
            "scaling_config": {"maximum_concurrency": 5},
            **(mapping or {}),
        },
    )
    skip = tuple(a for a in ("age", "Errors", "Throttles") if a not in alarms)
    consumer_alarms(source, "sender", topic, skip=skip)


def consumer(**settings: Any) -> Callable[[], None]:
    def program() -> None:
        cloudflare.QueueConsumer(
            "consumer",
            account_id="acc",
            queue_id="q",
            script_name="mail-worker",
            type="worker",
            dead_letter_queue=settings.pop("dlq", "mail-dlq"),
            settings=settings or None,
        )

    return program


def worker(*bindings: dict[str, Any]) -> Callable[[], None]:
    return lambda: cloudflare.WorkersScript(
        "worker",
        account_id="acc",
        script_name="mail-worker",
        content="export default {}",
        main_module="index.js",
        bindings=list(bindings),
    )


def vercel_var(key: str, targets: list[str], sensitive: bool) -> Callable[[], None]:
    return lambda: vercel.ProjectEnvironmentVariable(
        "var", project_id="prj", key=key, value="v", targets=targets, sensitive=sensitive
    )


def ses(
    *,
    key_length: str = "RSA_2048_BIT",
    tls: str = "REQUIRE",
    reasons: tuple[str, ...] = ("BOUNCE", "COMPLAINT"),
    cnames: int = 3,
    proxied: bool = False,
    dmarc: bool = True,
    alarms: bool = True,
) -> Callable[[], None]:
    def program() -> None:
        if alarms:
            reputation_alarms(alarm_topic())
        identity = aws.sesv2.EmailIdentity(
            "identity",
            email_identity="example.com",
            dkim_signing_attributes={"next_signing_key_length": key_length},
        )
        aws.sesv2.ConfigurationSet(
            "config",
            configuration_set_name="mail",
            delivery_options={"tls_policy": tls},
            suppression_options={"suppressed_reasons": list(reasons)},
        )
        for i in range(cnames):
            token = identity.dkim_signing_attributes.apply(lambda a, i=i: a.tokens[i])
            cloudflare.DnsRecord(
                f"dkim-{i}",
                zone_id="z",
                type="CNAME",
                ttl=1,
                proxied=proxied and i == 0,
                name=token.apply(lambda t: f"{t}._domainkey.example.com"),
                content=token.apply(lambda t: f"{t}.dkim.amazonses.com"),
            )
        if dmarc:
            cloudflare.DnsRecord(
                "dmarc",
                zone_id="z",
                type="TXT",
                ttl=1,
                name="_dmarc.example.com",
                content='"v=DMARC1; p=reject"',
            )

    return program


FAILING: list[tuple[str, str, Callable[[], None], str]] = [
    # (case id, rule, program, a part of the message that says what to change)
    (
        "action-star",
        "iam-no-wildcard-actions",
        role_policy(allow("*", "arn:aws:s3:::bucket")),
        "policy allows the wildcard action '*': list the exact actions",
    ),
    (
        "action-service-star",
        "iam-no-wildcard-actions",
        role_policy(allow(["sqs:*"], QUEUE_ARN)),
        "policy allows the wildcard action 'sqs:*'",
    ),
    (
        "action-star-inline-policy",
        "iam-no-wildcard-actions",
        lambda: aws.iam.Role(
            "r",
            assume_role_policy=trust(PINNED),
            inline_policies=[
                {
                    "name": "send",
                    "policy": document(allow("dynamodb:*", "arn:aws:dynamodb:x:1:table/t")),
                }
            ],
        ),
        "inline_policies[send] allows the wildcard action 'dynamodb:*'",
    ),
    (
        "action-star-user-policy",
        "iam-no-wildcard-actions",
        lambda: aws.iam.UserPolicy("u", user="mail", policy=document(allow("ses:*", IDENTITY_ARN))),
        "policy allows the wildcard action 'ses:*'",
    ),
    (
        "resource-star-sqs",
        "iam-no-wildcard-resources",
        role_policy(allow("sqs:SendMessage", "*")),
        "policy grants sqs:SendMessage on the wildcard resource '*': scope Resource to the ARNs",
    ),
    (
        "resource-all-tables",
        "iam-no-wildcard-resources",
        lambda: aws.iam.Policy(
            "p",
            policy=document(
                allow(["dynamodb:GetItem"], f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/*")
            ),
        ),
        "policy grants dynamodb:GetItem on the wildcard resource",
    ),
    (
        "resource-star-sns",
        "iam-no-wildcard-resources",
        role_policy(allow("sns:Publish", f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:*")),
        "policy grants sns:Publish on the wildcard resource",
    ),
    (
        "send-without-from",
        "iam-ses-send-requires-from-address",
        role_policy(allow(["ses:SendEmail", "ses:SendRawEmail"], IDENTITY_ARN)),
        "policy allows ses:SendEmail, ses:SendRawEmail without a `ses:FromAddress` condition",
    ),
    (
        "send-raw-other-condition",
        "iam-ses-send-requires-from-address",
        role_policy(
            allow(
                "ses:SendRawEmail",
                IDENTITY_ARN,
                Condition={"StringEquals": {"ses:FromDisplayName": "Shop"}},
            )
        ),
        "policy allows ses:SendRawEmail without a `ses:FromAddress` condition",
    ),
    (
        "oidc-no-conditions",
        "iam-oidc-trust-pinned",
        oidc_role(None),
        f"The OIDC trust policy does not pin `aud` and `sub`: add StringEquals conditions on '{ISSUER}:aud' and '{ISSUER}:sub'",
    ),
    (
        "oidc-wildcard-project",
        "iam-oidc-trust-pinned",
        oidc_role(
            {
                **PINNED,
                "StringLike": {f"{ISSUER}:sub": "owner:acme:project:*:environment:production"},
            }
        ),
        "`sub` 'owner:acme:project:*:environment:production' does not pin one team, project",
    ),
    (
        "oidc-sub-star",
        "iam-oidc-trust-pinned",
        oidc_role({**PINNED, "StringLike": {f"{ISSUER}:sub": "*"}}),
        "`sub` '*' does not pin one team, project and environment",
    ),
    (
        "not-action",
        "iam-no-not-elements",
        role_policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": QUEUE_ARN}),
        "policy allows with NotAction: an Allow with a Not element grants everything except",
    ),
    (
        "admin-attachment",
        "iam-no-broad-managed-policies",
        lambda: aws.iam.RolePolicyAttachment(
            "a", role="sender", policy_arn="arn:aws:iam::aws:policy/AdministratorAccess"
        ),
        "policyArn attaches the AWS managed policy arn:aws:iam::aws:policy/AdministratorAccess, "
        "which grants far more than the stack uses",
    ),
    (
        "key-never-rotated",
        "iam-access-key-rotation",
        lambda: aws.iam.AccessKey("key", user="mail"),
        "Access key key of IAM user mail is not rotated within 90 days: replace it on a "
        "time.Rotating schedule",
    ),
    (
        "queue-policy-public",
        "resource-policy-no-public-principal",
        lambda: aws.sqs.QueuePolicy(
            "qp",
            queue_url="https://q",
            policy=document(allow("sqs:SendMessage", QUEUE_ARN, Principal="*")),
        ),
        "policy allows Principal '*' (statement without Sid): name the accounts, roles or "
        "service principals",
    ),
    (
        "topic-policy-service-unscoped",
        "resource-policy-service-principal-scoped",
        lambda: aws.sns.TopicPolicy(
            "tp",
            arn="arn:aws:sns:eu-west-1:123456789012:t",
            policy=document(
                allow(
                    "sns:Publish",
                    "arn:aws:sns:eu-west-1:123456789012:t",
                    Principal={"Service": "ses.amazonaws.com"},
                )
            ),
        ),
        "policy lets the service principal ses.amazonaws.com in without an `aws:SourceArn` or "
        "`aws:SourceAccount` condition",
    ),
    (
        "consumer-unbounded",
        "cloudflare-queue-consumer-max-concurrency",
        consumer(max_retries=5),
        "The queue consumer's settings.max_concurrency is None: set it between 1 and 250",
    ),
    (
        "queue-without-dlq",
        "sqs-redrive-to-dlq",
        lambda: aws.sqs.Queue("lonely", sqs_managed_sse_enabled=True),
        "Queue lonely has no dead-letter queue and no queue redrives to it: set redrive_policy",
    ),
    (
        "max-receive-20",
        "sqs-redrive-to-dlq",
        lambda: queues(max_receive=20),
        "Queue main redrives after maxReceiveCount=20: use an integer between 3 and 10",
    ),
    ("max-receive-1", "sqs-redrive-to-dlq", lambda: queues(max_receive=1), "maxReceiveCount=1"),
    (
        "dlq-retention-default",
        "sqs-dlq-retention-14-days",
        lambda: queues(dlq={"message_retention_seconds": None}),
        "Dead-letter queue dlq keeps messages 345600 seconds: set message_retention_seconds=1209600",
    ),
    (
        "queue-unencrypted",
        "sqs-encryption-at-rest",
        lambda: queues(main={"sqs_managed_sse_enabled": False}),
        "The queue is not encrypted at rest: set sqs_managed_sse_enabled=True",
    ),
    (
        "visibility-too-short",
        "sqs-visibility-timeout-6x-function-timeout",
        lambda: sender(queue={"visibility_timeout_seconds": 60}),
        "Queue main hides a received message for 60s but its consumer sender may run 30s: set visibility_timeout_seconds to at least 180",
    ),
    (
        "visibility-default",
        "sqs-visibility-timeout-6x-function-timeout",
        lambda: sender(queue={"visibility_timeout_seconds": 10}, function={"timeout": None}),
        "hides a received message for 10s but its consumer sender may run 3s: set visibility_timeout_seconds to at least 18",
    ),
    (
        "no-batch-item-failures",
        "lambda-sqs-report-batch-item-failures",
        lambda: sender(mapping={"function_response_types": None}),
        "set function_response_types=['ReportBatchItemFailures']",
    ),
    (
        "no-maximum-concurrency",
        "lambda-sqs-maximum-concurrency",
        lambda: sender(mapping={"scaling_config": None}),
        "maximum concurrency is None: set scaling_config={'maximum_concurrency': 2..1000}",
    ),
    (
        "no-log-group",
        "lambda-log-retention",
        lambda: sender(log_group=False),
        "Function sender logs to /aws/lambda/sender, which the stack does not create",
    ),
    (
        "log-group-forever",
        "lambda-log-retention",
        lambda: (
            sender(
                function={"logging_config": {"log_format": "JSON", "log_group": "/mail/sender"}}
            ),
            aws.cloudwatch.LogGroup("custom", name="/mail/sender"),
        ),
        "Function sender logs to /mail/sender, which has no retention",
    ),
    (
        "x86",
        "lambda-arm64",
        lambda: sender(function={"architectures": ["x86_64"]}),
        "The function runs on x86_64: set architectures=['arm64']",
    ),
    (
        "dkim-1024",
        "ses-dkim-rsa-2048",
        ses(key_length="RSA_1024_BIT"),
        "next_signing_key_length to 'RSA_2048_BIT'",
    ),
    (
        "no-complaint-suppression",
        "ses-configuration-set-suppression-and-tls",
        ses(reasons=("BOUNCE",)),
        "suppressed_reasons to ['BOUNCE', 'COMPLAINT']",
    ),
    (
        "tls-optional",
        "ses-configuration-set-suppression-and-tls",
        ses(tls="OPTIONAL"),
        "delivery_options.tls_policy to 'REQUIRE'",
    ),
    (
        "dkim-cname-missing",
        "ses-dkim-and-dmarc-published",
        ses(cnames=2),
        "._domainkey.example.com in Cloudflare DNS: publish",
    ),
    (
        "dkim-cname-proxied",
        "ses-dkim-and-dmarc-published",
        ses(proxied=True),
        "is proxied: set proxied=False",
    ),
    (
        "no-dmarc",
        "ses-dkim-and-dmarc-published",
        ses(dmarc=False),
        "example.com has no DMARC TXT record at _dmarc.example.com",
    ),
    (
        "no-bounce-rate-alarm",
        "ses-reputation-alarms",
        lambda: (
            ses(alarms=False)(),
            math_alarm(
                "complaints",
                alarm_topic(),
                guarded_queries("Reputation.ComplaintRate"),
                threshold=0.001,
            ),
        ),
        "No CloudWatch alarm watches AWS/SES Reputation.BounceRate: add one at or below 0.05",
    ),
    (
        "events-topic-unsubscribed",
        "ses-events-topic-subscribed",
        lambda: aws.sesv2.ConfigurationSetEventDestination(
            "events",
            configuration_set_name="mail",
            event_destination_name="events",
            event_destination={
                "enabled": True,
                "matching_event_types": ["BOUNCE", "COMPLAINT"],
                "sns_destination": {"topic_arn": aws.sns.Topic("events").arn},
            },
        ),
        "but nothing subscribes to it, so bounces and complaints are lost",
    ),
    (
        "consumed-queue-without-age-alarm",
        "sqs-consumed-queue-age-alarm",
        lambda: sender(alarms=("Errors", "Throttles")),
        "feeds a Lambda function but no alarm watches its ApproximateAgeOfOldestMessage",
    ),
    (
        "dlq-without-depth-alarm",
        "sqs-dlq-depth-alarm",
        lambda: queues(depth_alarm=False),
        "(of main) has no depth alarm: add one on ApproximateNumberOfMessagesVisible",
    ),
    (
        "function-without-throttles-alarm",
        "lambda-errors-and-throttles-alarms",
        lambda: sender(alarms=("age", "Errors")),
        "Function sender (sender) has no alarm on AWS/Lambda Throttles",
    ),
    (
        "alarm-without-actions",
        "cloudwatch-alarm-actions-to-stack-topic",
        lambda: metric_alarm("depth", [], "AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        "Alarm depth notifies no SNS topic of the stack (alarm_actions empty)",
    ),
    (
        "consumer-without-dlq",
        "cloudflare-queue-consumer-dlq-and-retries",
        consumer(dlq=None, max_retries=5),
        "The queue consumer has no dead_letter_queue",
    ),
    (
        "consumer-unset-retries",
        "cloudflare-queue-consumer-dlq-and-retries",
        consumer(),
        "settings.max_retries is None: set it explicitly, between 0 and 100",
    ),
    (
        "consumer-too-many-retries",
        "cloudflare-queue-consumer-dlq-and-retries",
        consumer(max_retries=500),
        "settings.max_retries is 500",
    ),
    (
        "plain-access-key-id",
        "cloudflare-worker-secret-bindings",
        worker({"name": "AWS_ACCESS_KEY_ID", "type": "plain_text", "text": "AKIA"}),
        "Worker binding AWS_ACCESS_KEY_ID looks like a secret but is plain_text",
    ),
    (
        "plain-token",
        "cloudflare-worker-secret-bindings",
        worker({"name": "worker_token", "type": "plain_text", "text": "t"}),
        "Worker binding worker_token looks like a secret",
    ),
    (
        "vercel-not-sensitive",
        "vercel-secret-env-sensitive",
        vercel_var("MAIL_API_TOKEN", ["production", "preview"], False),
        "Vercel variable MAIL_API_TOKEN holds a secret but is not sensitive: set sensitive=True",
    ),
    (
        "vercel-secret-value",
        "vercel-secret-env-sensitive",
        lambda: vercel.ProjectEnvironmentVariables(
            "vars",
            project_id="prj",
            variables=[
                {
                    "key": "MAIL_QUEUE_URL",
                    "value": "u",
                    "targets": ["production"],
                    "sensitive": False,
                },
                {
                    "key": "SIGNING",
                    "value": pulumi.Output.secret("s"),
                    "targets": ["production"],
                    "sensitive": False,
                },
            ],
        ),
        "Vercel variable SIGNING holds a secret but is not sensitive",
    ),
    (
        "vercel-development",
        "vercel-development-secret-env",
        vercel_var("AWS_SECRET_ACCESS_KEY", ["development"], False),
        "Vercel variable AWS_SECRET_ACCESS_KEY holds a secret readable by the team",
    ),
]


def test_every_rule_has_a_failing_fixture() -> None:
    assert {rule for _, rule, _, _ in FAILING} == POLICY_NAMES


@pytest.mark.parametrize(
    ("rule", "program", "message"),
    [pytest.param(rule, program, message, id=case) for case, rule, program, message in FAILING],
)
def test_rule_reports_its_violation(
    rule: str, program: Callable[[], None], message: str, run: Callable[..., Recording]
) -> None:
    recording = run(program)
    violations = evaluate(recording, [policy(rule)], stack_outputs=False)
    assert len(violations) == 1, violations
    (violation,) = violations
    assert violation.policy == rule
    assert message in violation.message
    assert violation.level == ("advisory" if rule in ADVISORY else "mandatory")
    assert violation.urn.startswith("urn:pulumi:")


ADVISORY = {"lambda-arm64", "vercel-development-secret-env"}


def test_levels_are_as_documented() -> None:
    levels = {p.name: p.enforcement_level.value for p in POLICIES}
    assert {name for name, level in levels.items() if level == "advisory"} == ADVISORY
    assert set(levels.values()) == {"advisory", "mandatory"}


PASSING: list[tuple[str, Callable[[], None]]] = [
    (
        "scoped-grants",
        role_policy(
            allow(["sqs:SendMessage", "sqs:GetQueueAttributes"], QUEUE_ARN),
            allow(["ses:SendEmail", "ses:SendRawEmail"], IDENTITY_ARN, Condition=FROM_ADDRESS),
            allow(
                ["logs:CreateLogStream", "logs:PutLogEvents"],
                f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:/aws/lambda/sender:*",
            ),
            {"Effect": "Deny", "Action": "*", "Resource": "*"},
        ),
    ),
    ("non-scoped-service-on-star", role_policy(allow("cloudwatch:PutMetricData", "*"))),
    ("oidc-pinned", oidc_role(PINNED)),
    (
        "lambda-service-trust",
        lambda: aws.iam.Role(
            "exec",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "sts:AssumeRole",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                        }
                    ],
                }
            ),
        ),
    ),
    ("queue-and-dlq", lambda: queues()),
    ("string-max-receive", lambda: queues(max_receive="4")),  # type: ignore[arg-type]
    (
        "kms-queue",
        lambda: queues(
            main={"sqs_managed_sse_enabled": None, "kms_master_key_id": "alias/aws/sqs"}
        ),
    ),
    ("sender", lambda: sender()),
    (
        "sender-custom-log-group",
        lambda: (
            sender(
                function={"logging_config": {"log_format": "JSON", "log_group": "/mail/sender"}},
                log_group=False,
            ),
            aws.cloudwatch.LogGroup("custom", name="/mail/sender", retention_in_days=14),
        ),
    ),
    ("ses", ses()),
    ("consumer", consumer(max_retries=10, max_concurrency=5)),
    (
        "worker",
        worker(
            {
                "name": "AWS_SECRET_ACCESS_KEY",
                "type": "secret_text",
                "text": pulumi.Output.secret("s"),
            },
            {"name": "EMAIL_DOMAIN", "type": "plain_text", "text": "example.com"},
            {"name": "KMS_KEY_ARN", "type": "plain_text", "text": "arn:aws:kms:x"},
            {"name": "MAIL_QUEUE", "type": "queue", "queue_name": "mail"},
        ),
    ),
    ("vercel-sensitive", vercel_var("AWS_ROLE_ARN", ["production"], True)),
    ("vercel-secret-sensitive", vercel_var("MAIL_API_TOKEN", ["production", "preview"], True)),
]


@pytest.mark.parametrize(("program",), [pytest.param(p, id=case) for case, p in PASSING])
def test_compliant_program_has_no_violation(
    program: Callable[[], None], run: Callable[..., Recording]
) -> None:
    assert evaluate(run(program)) == []


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("AWS_ACCESS_KEY_ID", True),
        ("aws_secret_access_key", True),
        ("ENQUEUE_TOKEN", True),
        ("DB_PASSWORD", True),
        ("GOOGLE_CREDENTIALS", True),
        ("api-key", True),
        ("KMS_KEY_ARN", False),
        ("SECRET_NAME", False),
        ("EMAIL_QUEUE_URL", False),
        ("EMAIL_DOMAIN", False),
    ],
)
def test_looks_secret(name: str, secret: bool) -> None:
    assert looks_secret(name) is secret


def test_stack_output_named_like_a_secret_must_be_secret(run: Callable[..., Recording]) -> None:
    def program() -> None:
        pulumi.export("worker_token", "abc")
        pulumi.export("sealed_token", pulumi.Output.secret("abc"))
        pulumi.export("queue_url", "https://sqs")

    recording = run(program)
    assert check_stack_outputs(recording) == [
        Violation(
            "stack-outputs-no-plaintext-secrets",
            "Stack output worker_token is plain text but its name says it holds a secret: "
            "export it with pulumi.Output.secret(...) so it is encrypted in the state and masked.",
            recording.stack_urn or "",
            "mandatory",
        )
    ]


def test_stack_output_equal_to_a_secret_input_must_be_secret(run: Callable[..., Recording]) -> None:
    def program() -> None:
        worker({"name": "AUTH", "type": "secret_text", "text": pulumi.Output.secret("s3cr3t")})()
        # The Vercel SDK makes every value secret itself: that is no evidence.
        vercel.ProjectEnvironmentVariable(
            "url",
            project_id="p",
            key="URL",
            value="https://q",
            targets=["production"],
            sensitive=True,
        )
        pulumi.export("worker", {"auth": "s3cr3t"})
        pulumi.export("url", "https://q")

    violations = evaluate(run(program))
    assert [(v.policy, v.message.split(":")[0]) for v in violations] == [
        (
            "stack-outputs-no-plaintext-secrets",
            "Stack output worker is plain text but it holds a value that is a secret where the stack uses it",
        )
    ]


def test_docs_list_every_rule_in_order_with_its_level(project_root: Any) -> None:
    import re

    doc = (project_root / "docs" / "policies.md").read_text()
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| (mandatory|advisory)", doc, re.MULTILINE)
    expected = [(p.name, p.enforcement_level.value) for p in POLICIES]
    # The offline plan's stack-output check closes the table (no CrossGuard rule sees outputs).
    assert rows == [*expected, ("stack-outputs-no-plaintext-secrets", "mandatory")]
