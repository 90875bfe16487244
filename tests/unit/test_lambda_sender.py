"""LambdaSender: exact IAM documents, function, table, log group, event source mapping,
their dependencies, the package hash and every validation message."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from serverless_mail import ConfigError, EmailDomain, EmailDomainArgs, mocking
from serverless_mail.email_queue import EmailQueue, EmailQueueArgs
from serverless_mail.lambda_package import lambda_package_bytes, source_code_hash
from serverless_mail.lambda_sender import LambdaSender, LambdaSenderArgs, function_name_for
from serverless_mail.mocking import Recording

from functions.lambda_sender.config import SenderConfig

ACCOUNT = "123456789012"
REGION = "eu-west-1"
DOMAIN_ARGS = EmailDomainArgs(
    domain="mail.example.com",
    zone_id="00112233445566778899aabbccddeeff",
    zone_name="example.com",
    region=REGION,
)
KMS_KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
FUNCTION = "aws:lambda/function:Function"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
POLICY_NAMES = {
    "sender-allow-consume-queue",
    "sender-allow-dead-letter",
    "sender-allow-requeue",
    "sender-allow-send-email",
    "sender-allow-idempotency",
    "sender-allow-logs",
}

# pulumi_aws warns at import of its lambda_ module about a type this package never uses.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_aws.lambda_.*")

Build = Callable[..., tuple[Recording, dict[str, Any]]]


@pytest.fixture
def dependencies(monkeypatch: pytest.MonkeyPatch) -> dict[tuple[str, str], list[str]]:
    """(type, name) → the names of the resources the engine was told it depends on.

    The recording keeps no dependencies, so this wraps its monitor for the test.
    """
    seen: dict[tuple[str, str], list[str]] = {}
    register = mocking._RecordingMonitor.RegisterResource

    def recording(self: Any, request: Any) -> Any:
        seen[(request.type, request.name)] = [d.split("::")[-1] for d in request.dependencies]
        return register(self, request)

    monkeypatch.setattr(mocking._RecordingMonitor, "RegisterResource", recording)
    return seen


@pytest.fixture
def build(run: Any) -> Build:
    def _build(
        queue_args: EmailQueueArgs | None = None, name: str = "sender", **overrides: Any
    ) -> tuple[Recording, dict[str, Any]]:
        captured: dict[str, Any] = {}

        def program() -> None:
            domain = EmailDomain("mail", DOMAIN_ARGS)
            queue = EmailQueue("email", queue_args)
            fields = {"default_from": "no-reply@mail.example.com", "region": REGION}
            args = LambdaSenderArgs(queue=queue, domain=domain, **(fields | overrides))
            sender = LambdaSender(name, args)
            for key in ("function_name", "function_arn", "role_arn", "table_name"):
                getattr(sender, key).apply(lambda v, key=key: captured.setdefault(key, v))
            captured["children"] = {
                "function": sender.function,
                "role": sender.role,
                "table": sender.table,
                "log_group": sender.log_group,
                "event_source_mapping": sender.event_source_mapping,
            }

        return run(program), captured

    return _build


def role_policies(rec: Recording) -> dict[str, dict[str, Any]]:
    return {r.name: json.loads(r.inputs["policy"]) for r in rec.of_type(ROLE_POLICY)}


def arn_of(rec: Recording, type_: str, name: str) -> str:
    (found,) = [r for r in rec.of_type(type_) if r.name == name]
    return str(found.outputs["arn"])


def statements(rec: Recording) -> Iterator[dict[str, Any]]:
    for document in role_policies(rec).values():
        yield from document["Statement"]


def test_creates_exactly_the_expected_children(build: Build) -> None:
    rec, _ = build()
    mine = [r for r in rec.resources if r.parent_name == "sender"]
    counts: dict[str, int] = {}
    for r in mine:
        counts[r.type] = counts.get(r.type, 0) + 1
    assert counts == {
        "aws:cloudwatch/logGroup:LogGroup": 1,
        "aws:dynamodb/table:Table": 1,
        "aws:iam/role:Role": 1,
        ROLE_POLICY: 6,
        FUNCTION: 1,
        MAPPING: 1,
    }
    assert {r.name for r in rec.of_type(ROLE_POLICY)} == POLICY_NAMES
    assert all(r.parent_name == "sender" for r in rec.of_type(ROLE_POLICY))
    assert not [r for r in rec.resources if "policyattachment" in r.type.lower()]


def test_role_is_assumable_only_by_lambda(build: Build) -> None:
    rec, _ = build()
    role = rec.one("aws:iam/role:Role")
    assert json.loads(role.inputs["assumeRolePolicy"]) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    assert "managedPolicyArns" not in role.inputs


def test_role_policies_allow_exactly_what_the_handler_needs(build: Build) -> None:
    rec, _ = build()
    queue_arn = arn_of(rec, "aws:sqs/queue:Queue", "email-queue")
    dlq_arn = arn_of(rec, "aws:sqs/queue:Queue", "email-dlq")
    table_arn = arn_of(rec, "aws:dynamodb/table:Table", "sender-idempotency")
    log_group_arn = arn_of(rec, "aws:cloudwatch/logGroup:LogGroup", "sender-logs")
    identity_arn = f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/mail.example.com"
    config_set_arn = f"arn:aws:ses:{REGION}:{ACCOUNT}:configuration-set/serverless-mail-dev-mail"
    for r in rec.of_type(ROLE_POLICY):
        assert r.inputs["role"] == "sender-role-id"  # the mocks' id of the role

    policies = role_policies(rec)
    for document in policies.values():
        assert document["Version"] == "2012-10-17"
    actual = {
        name: [{k: v for k, v in s.items() if k != "Sid"} for s in document["Statement"]]
        for name, document in policies.items()
    }
    assert actual == {
        "sender-allow-consume-queue": [
            {
                "Effect": "Allow",
                "Action": [
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueAttributes",
                ],
                "Resource": queue_arn,
            }
        ],
        "sender-allow-dead-letter": [
            {"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": dlq_arn}
        ],
        # A paced or throttled message goes back on its own queue as a delayed copy.
        "sender-allow-requeue": [
            {"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": queue_arn}
        ],
        "sender-allow-send-email": [
            {
                "Effect": "Allow",
                "Action": ["ses:SendEmail"],
                "Resource": [identity_arn, config_set_arn],
                "Condition": {
                    "StringLike": {
                        "ses:FromAddress": ["*@mail.example.com", "*@*.mail.example.com"]
                    }
                },
            }
        ],
        "sender-allow-idempotency": [
            {
                "Effect": "Allow",
                "Action": [
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                ],
                "Resource": table_arn,
            }
        ],
        "sender-allow-logs": [
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": f"{log_group_arn}:*",
            }
        ],
    }
    assert log_group_arn == (
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/serverless-mail-dev-sender"
    )


@pytest.mark.parametrize("queue_args", [EmailQueueArgs(), EmailQueueArgs(kms_key_arn=KMS_KEY_ARN)])
def test_no_statement_has_a_wildcard_action_or_resource(
    build: Build, queue_args: EmailQueueArgs
) -> None:
    rec, _ = build(queue_args)
    found = list(statements(rec))
    assert found
    for statement in found:
        assert statement["Effect"] == "Allow"
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        resources = (
            statement["Resource"]
            if isinstance(statement["Resource"], list)
            else [statement["Resource"]]
        )
        for action in actions:
            assert "*" not in action, statement
        for resource in resources:
            if resource.endswith(":log-group:/aws/lambda/serverless-mail-dev-sender:*"):
                continue  # the log-stream suffix, the one wildcard allowed
            assert "*" not in resource, statement
        assert "NotAction" not in statement and "NotResource" not in statement


def test_a_kms_encrypted_queue_adds_key_use_on_that_key_only(build: Build) -> None:
    rec, _ = build(EmailQueueArgs(kms_key_arn=KMS_KEY_ARN))
    policies = role_policies(rec)
    assert set(policies) == POLICY_NAMES | {"sender-allow-queue-key"}
    (statement,) = policies["sender-allow-queue-key"]["Statement"]
    assert {k: v for k, v in statement.items() if k != "Sid"} == {
        "Effect": "Allow",
        "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
        "Resource": KMS_KEY_ARN,
    }


def test_idempotency_table_matches_the_powertools_layout(build: Build) -> None:
    rec, _ = build()
    table = rec.one("aws:dynamodb/table:Table")
    assert table.name == "sender-idempotency"
    assert table.inputs == {
        "billingMode": "PAY_PER_REQUEST",
        "hashKey": "id",
        "attributes": [{"name": "id", "type": "S"}],
        "ttl": {"attributeName": "expiration", "enabled": True},
        "pointInTimeRecovery": {"enabled": True},
        "serverSideEncryption": {"enabled": True},
    }


def test_point_in_time_recovery_can_be_turned_off_explicitly(build: Build) -> None:
    rec, _ = build(point_in_time_recovery=False)
    table = rec.one("aws:dynamodb/table:Table")
    assert table.inputs["pointInTimeRecovery"] == {"enabled": False}


def test_log_group_is_the_functions_with_retention(build: Build) -> None:
    rec, _ = build(log_retention_days=90)
    log_group = rec.one("aws:cloudwatch/logGroup:LogGroup")
    assert log_group.inputs == {
        "name": "/aws/lambda/serverless-mail-dev-sender",
        "retentionInDays": 90,
    }
    function = rec.one(FUNCTION).inputs
    assert function["name"] == "serverless-mail-dev-sender"
    assert function["loggingConfig"] == {
        "logFormat": "Text",
        "logGroup": "/aws/lambda/serverless-mail-dev-sender",
    }


def test_default_log_retention_is_30_days(build: Build) -> None:
    rec, _ = build()
    assert rec.one("aws:cloudwatch/logGroup:LogGroup").inputs["retentionInDays"] == 30


def test_function_name_is_project_stack_name_trimmed_to_64(build: Build) -> None:
    long = "sender-" + "x" * 80
    rec, captured = build(name=long)
    expected = f"serverless-mail-dev-{long}"[:64]
    assert len(expected) == 64
    assert rec.one(FUNCTION).inputs["name"] == expected
    assert rec.one("aws:cloudwatch/logGroup:LogGroup").inputs["name"] == f"/aws/lambda/{expected}"
    assert captured["function_name"] == expected


def test_function_runs_the_package_with_the_handlers_environment(build: Build) -> None:
    rec, _ = build()
    function = rec.one(FUNCTION).inputs
    table_name = rec.one("aws:dynamodb/table:Table").outputs["name"]
    dlq_url = rec.named("email-dlq").outputs["url"]
    queue_url = rec.named("email-queue").outputs["url"]
    assert function["runtime"] == "python3.13"
    assert function["handler"] == "lambda_sender.handler.handler"
    assert function["architectures"] == ["arm64"]
    assert function["layers"] == [
        f"arn:aws:lambda:{REGION}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:27"
    ]
    assert function["timeout"] == 30
    assert function["memorySize"] == 256
    assert "reservedConcurrentExecutions" not in function
    assert function["role"] == arn_of(rec, "aws:iam/role:Role", "sender-role")
    assert function["environment"] == {
        "variables": {
            "EMAIL_DEFAULT_FROM": "no-reply@mail.example.com",
            "EMAIL_DOMAIN": "mail.example.com",
            "EMAIL_CONFIGURATION_SET": "serverless-mail-dev-mail",
            "EMAIL_IDEMPOTENCY_TABLE": table_name,
            "EMAIL_DEAD_LETTER_QUEUE_URL": dlq_url,
            "EMAIL_SEND_CONCURRENCY": "10",
            "EMAIL_QUEUE_URL": queue_url,
            "POWERTOOLS_SERVICE_NAME": "serverless-mail-sender",
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }
    }


class TestSendRate:
    """Each instance paces its share of the path's SES rate (issue 11)."""

    def test_each_instance_gets_the_path_rate_over_maximum_concurrency(self, build: Build) -> None:
        rec, _ = build(max_send_rate=7, maximum_concurrency=4)
        variables = rec.one(FUNCTION).inputs["environment"]["variables"]
        assert variables["EMAIL_MAX_SEND_RATE"] == "1.75"

    def test_without_a_rate_the_function_is_not_paced(self, build: Build) -> None:
        rec, _ = build()
        assert "EMAIL_MAX_SEND_RATE" not in rec.one(FUNCTION).inputs["environment"]["variables"]

    def test_a_share_too_small_for_one_full_message_is_refused(self, build: Build) -> None:
        with pytest.raises(
            ConfigError,
            match=(
                r"^`max_send_rate` \(0.5\) / `maximum_concurrency` \(10\) leaves each instance "
                r"0.05 recipients/s, so one message of 50 recipients takes 1000 s, longer than "
                r"the 900 s SQS can delay it: raise `max_send_rate` or lower "
                r"`maximum_concurrency`$"
            ),
        ):
            build(max_send_rate=0.5, maximum_concurrency=10)

    @pytest.mark.parametrize("rate", [0, -1, True, "14"])
    def test_a_rate_that_is_not_a_positive_number_is_refused(self, build: Build, rate: Any) -> None:
        with pytest.raises(ConfigError, match=r"^`max_send_rate` must be a number of recipients"):
            build(max_send_rate=rate)


def test_the_functions_environment_satisfies_the_handlers_config(build: Build) -> None:
    rec, _ = build(send_concurrency=25)
    env = rec.one(FUNCTION).inputs["environment"]["variables"]
    config = SenderConfig.from_env(env)
    assert config.domain == "mail.example.com"
    assert config.default_from == "no-reply@mail.example.com"
    assert config.configuration_set == "serverless-mail-dev-mail"
    assert config.idempotency_table == rec.one("aws:dynamodb/table:Table").outputs["name"]
    assert config.dead_letter_queue_url == rec.named("email-dlq").outputs["url"]
    assert config.concurrency == 25


def test_function_settings_follow_the_args(build: Build) -> None:
    rec, _ = build(
        EmailQueueArgs(consumer_timeout_seconds=120, batching_window_seconds=20),
        timeout_seconds=120,
        memory_mb=1024,
        architecture="x86_64",
        reserved_concurrency=20,
        maximum_concurrency=20,
        batching_window_seconds=20,
        log_level="DEBUG",
    )
    function = rec.one(FUNCTION).inputs
    assert function["architectures"] == ["x86_64"]
    assert function["layers"] == [
        f"arn:aws:lambda:{REGION}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-x86_64:27"
    ]
    assert function["timeout"] == 120
    assert function["memorySize"] == 1024
    assert function["reservedConcurrentExecutions"] == 20
    assert function["environment"]["variables"]["POWERTOOLS_LOG_LEVEL"] == "DEBUG"


def test_code_is_the_deterministic_package_with_its_hash(build: Build) -> None:
    rec, _ = build()
    function = rec.one(FUNCTION).inputs
    expected = lambda_package_bytes()
    path = Path(function["code"]["path"])
    assert path.read_bytes() == expected
    assert path.name.endswith(".zip")
    assert function["sourceCodeHash"] == source_code_hash(expected)
    names = zipfile.ZipFile(io.BytesIO(expected)).namelist()
    assert "lambda_sender/handler.py" in names


def test_same_source_gives_the_same_source_code_hash_across_runs(build: Build) -> None:
    first, _ = build()
    second, _ = build(name="other")
    assert (
        first.one(FUNCTION).inputs["sourceCodeHash"]
        == second.one(FUNCTION).inputs["sourceCodeHash"]
    )
    assert first.one(FUNCTION).inputs["code"] == second.one(FUNCTION).inputs["code"]


def test_event_source_mapping_reports_batch_item_failures(build: Build) -> None:
    rec, _ = build()
    mapping = rec.one(MAPPING)
    assert mapping.name == "sender-queue-events"
    assert mapping.inputs == {
        "eventSourceArn": arn_of(rec, "aws:sqs/queue:Queue", "email-queue"),
        "functionName": rec.one(FUNCTION).outputs["arn"],
        "functionResponseTypes": ["ReportBatchItemFailures"],
        "batchSize": 10,
        "maximumBatchingWindowInSeconds": 0,
        "scalingConfig": {"maximumConcurrency": 5},
    }


def test_event_source_mapping_settings_follow_the_args(build: Build) -> None:
    rec, _ = build(
        EmailQueueArgs(batching_window_seconds=5),
        batch_size=100,
        batching_window_seconds=5,
        maximum_concurrency=50,
    )
    mapping = rec.one(MAPPING).inputs
    assert mapping["batchSize"] == 100
    assert mapping["maximumBatchingWindowInSeconds"] == 5
    assert mapping["scalingConfig"] == {"maximumConcurrency": 50}


def test_mapping_and_function_wait_for_the_role_policies(
    build: Build, dependencies: dict[tuple[str, str], list[str]]
) -> None:
    build()
    mapping = set(dependencies[(MAPPING, "sender-queue-events")])
    function = set(dependencies[(FUNCTION, "sender-function")])
    assert POLICY_NAMES <= mapping
    assert POLICY_NAMES <= function
    assert "sender-logs" in function


def test_public_attributes_are_the_childrens_outputs(build: Build) -> None:
    rec, captured = build()
    assert captured["function_name"] == "serverless-mail-dev-sender"
    assert captured["function_arn"] == rec.one(FUNCTION).outputs["arn"]
    assert captured["role_arn"] == arn_of(rec, "aws:iam/role:Role", "sender-role")
    assert captured["table_name"] == rec.one("aws:dynamodb/table:Table").outputs["name"]
    assert set(captured["children"]) == {
        "function",
        "role",
        "table",
        "log_group",
        "event_source_mapping",
    }


def test_function_name_for_uses_lambdas_alphabet() -> None:
    def program() -> None:
        assert function_name_for("a.b c") == "serverless-mail-dev-a-b-c"

    mocking.run_program(program)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"default_from": "no-reply@example.org"}, r"^`default_from` must be an address on 'mail.example.com' or one of its subdomains .*'no-reply@example.org' was provided$"),
        ({"default_from": "nobody"}, r"^`default_from` must be an email address such as"),
        ({"region": "Europe"}, r"^`region` must be an AWS region code such as 'eu-west-1', but 'Europe' was provided$"),
        ({"timeout_seconds": 0}, r"^`timeout_seconds` must be between 1 and 900, but 0 was provided$"),
        ({"timeout_seconds": 901}, r"^`timeout_seconds` must be between 1 and 900, but 901 was provided$"),
        ({"memory_mb": 127}, r"^`memory_mb` must be between 128 and 10240, but 127 was provided$"),
        ({"memory_mb": 10241}, r"^`memory_mb` must be between 128 and 10240, but 10241 was provided$"),
        ({"batch_size": 0}, r"^`batch_size` must be between 1 and 10000, but 0 was provided$"),
        ({"batch_size": 10001, "batching_window_seconds": 1}, r"^`batch_size` must be between 1 and 10000, but 10001"),
        ({"batch_size": 11}, r"^`batch_size` above 10 needs `batching_window_seconds` of at least 1, but `batch_size` is 11 and `batching_window_seconds` is 0: set a window of 1 to 300 seconds or a batch size of at most 10$"),
        ({"batching_window_seconds": 301}, r"^`batching_window_seconds` must be between 0 and 300, but 301 was provided$"),
        ({"maximum_concurrency": 1}, r"^`maximum_concurrency` must be between 2 and 1000, but 1 was provided$"),
        ({"maximum_concurrency": 1001}, r"^`maximum_concurrency` must be between 2 and 1000, but 1001 was provided$"),
        ({"reserved_concurrency": 4}, r"^`reserved_concurrency` must be at least `maximum_concurrency` \(5\), but 4 was provided: .*throttled.*raise `reserved_concurrency` or lower `maximum_concurrency`$"),
        ({"reserved_concurrency": 0}, r"^`reserved_concurrency` must be between 1 and 1000000, but 0 was provided$"),
        ({"send_concurrency": 51}, r"^`send_concurrency` must be between 1 and 50, but 51 was provided$"),
        ({"log_retention_days": 0}, r"^`log_retention_days` must be one of CloudWatch's retention values \(1, 3, 5, .*, 3653\), but 0 was provided$"),
        ({"log_retention_days": 31}, r"^`log_retention_days` must be one of CloudWatch's retention values .*, but 31 was provided$"),
        ({"log_retention_days": True}, r"^`log_retention_days` must be one of CloudWatch's retention values .*, but True was provided$"),
        ({"point_in_time_recovery": "yes"}, r"^`point_in_time_recovery` must be true or false, but 'yes' \(str\) was provided$"),
        ({"architecture": "arm"}, r"^`architecture` must be one of 'arm64', 'x86_64', but 'arm' was provided$"),
        ({"log_level": "TRACE"}, r"^`log_level` must be one of 'DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL', but 'TRACE' was provided$"),
    ],
)  # fmt: skip
def test_invalid_arguments_are_rejected_with_the_arg_range_and_value(
    build: Build, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        build(**overrides)


def test_a_queue_built_for_a_shorter_consumer_is_rejected(build: Build) -> None:
    with pytest.raises(
        ConfigError,
        match=(
            r"^the queue's visibility timeout \(180\) must be at least 365 \(6 \* "
            r"`timeout_seconds` 60 \+ `batching_window_seconds` 5\), .*: build the "
            r"EmailQueue with `consumer_timeout_seconds` and `batching_window_seconds` "
            r"equal to the sender's$"
        ),
    ):
        build(EmailQueueArgs(), timeout_seconds=60, batching_window_seconds=5)


def test_components_of_the_wrong_type_are_rejected(run: Any) -> None:
    def program() -> None:
        domain = EmailDomain("mail", DOMAIN_ARGS)
        queue = EmailQueue("email")
        LambdaSender(
            "sender",
            LambdaSenderArgs(
                queue=domain,  # type: ignore[arg-type]
                domain=queue,  # type: ignore[arg-type]
                default_from="no-reply@mail.example.com",
                region=REGION,
            ),
        )

    with pytest.raises(ConfigError, match=r"^`queue` must be an EmailQueue, but EmailDomain"):
        run(program)


def test_args_are_a_frozen_dataclass(run: Any) -> None:
    captured: dict[str, Any] = {}

    def program() -> None:
        args = LambdaSenderArgs(
            queue=EmailQueue("email"),
            domain=EmailDomain("mail", DOMAIN_ARGS),
            default_from="Mail <no-reply@mail.example.com>",
            region=REGION,
        )
        captured["args"] = args
        LambdaSender("sender", replace(args, memory_mb=512))

    rec = run(program)
    assert rec.one(FUNCTION).inputs["memorySize"] == 512
    with pytest.raises(AttributeError):
        captured["args"].memory_mb = 1  # type: ignore[misc]
    assert rec.one(FUNCTION).inputs["environment"]["variables"]["EMAIL_DEFAULT_FROM"] == (
        "Mail <no-reply@mail.example.com>"
    )
