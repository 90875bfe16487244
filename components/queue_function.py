"""A Lambda function fed by an SQS queue, built the one way both the sender and the
events processor need: a log group with retention before the function, an execution
role with one inline policy per grant (each on one ARN), the function on the
Powertools layer, and an event source that reports partial batch failures."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from .lambda_package import RUNTIME, package_archive, powertools_layer_arn

__all__ = [
    "LOG_RETENTION_DAYS",
    "LOG_WRITE_ACTIONS",
    "Architecture",
    "LogLevel",
    "QueueFunction",
    "QueueFunctionSpec",
    "create_queue_function",
    "lambda_trust_policy",
    "log_write_statement",
    "policy_document",
]

Architecture = Literal["arm64", "x86_64"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
"""The retention values CloudWatch Logs accepts (PutRetentionPolicy); "never expire"
is not offered."""

LOG_WRITE_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")
"""Writing to the function's own log group; the group exists before the function, so
``logs:CreateLogGroup`` is not granted."""

Grant = tuple[str, pulumi.Output[dict[str, Any]]]
"""``(key, statement)``: the inline policy ``<name>-allow-<key>`` holding one statement."""


@dataclass(frozen=True, kw_only=True)
class QueueFunctionSpec:
    """What differs between the stack's queue-fed functions."""

    package: str
    """The folder under ``functions/`` the zip is built from."""
    handler: str
    description: str
    role_description: str
    environment: Mapping[str, pulumi.Input[str]]
    region: str
    architecture: Architecture
    timeout_seconds: int
    memory_mb: int
    log_retention_days: int
    queue_arn: pulumi.Input[str]
    batch_size: int
    maximum_concurrency: int
    batching_window_seconds: int | None = None
    reserved_concurrency: int | None = None

    @classmethod
    def of(cls, settings: Any, **fields: Any) -> QueueFunctionSpec:
        """A spec taking :data:`SHARED_SETTINGS` from ``settings`` (a component's
        Args, which name them alike) and the rest from ``fields``."""
        return cls(**{name: getattr(settings, name) for name in SHARED_SETTINGS}, **fields)


SHARED_SETTINGS = (
    "region",
    "architecture",
    "timeout_seconds",
    "memory_mb",
    "log_retention_days",
    "batch_size",
    "maximum_concurrency",
)
"""The spec's fields both components' Args carry under the same names."""


@dataclass(frozen=True)
class QueueFunction:
    """The children :func:`create_queue_function` made."""

    log_group: aws.cloudwatch.LogGroup
    role: aws.iam.Role
    role_policies: list[aws.iam.RolePolicy]
    function: aws.lambda_.Function
    event_source_mapping: aws.lambda_.EventSourceMapping


def create_queue_function(
    parent: pulumi.Resource,
    name: str,
    function_name: str,
    spec: QueueFunctionSpec,
    grants: list[Grant],
) -> QueueFunction:
    """Create ``<name>-logs``, ``-role``, ``-allow-<key>`` per grant (and ``-allow-logs``),
    ``-function`` and ``-queue-events``, each a child of ``parent``."""
    child = pulumi.ResourceOptions(parent=parent)
    # Before the function, so retention applies from the first line (Lambda would
    # otherwise create the group itself, without retention).
    log_group = aws.cloudwatch.LogGroup(
        f"{name}-logs",
        name=f"/aws/lambda/{function_name}",
        retention_in_days=spec.log_retention_days,
        opts=child,
    )
    role = aws.iam.Role(
        f"{name}-role",
        assume_role_policy=json.dumps(lambda_trust_policy()),
        description=spec.role_description,
        opts=child,
    )
    policies = [
        aws.iam.RolePolicy(
            f"{name}-allow-{key}",
            role=role.id,
            policy=statement.apply(lambda s: json.dumps(policy_document([s]))),
            opts=child,
        )
        for key, statement in [*grants, ("logs", log_group.arn.apply(log_write_statement))]
    ]
    archive, code_hash = package_archive(spec.package)
    function = aws.lambda_.Function(
        f"{name}-function",
        name=function_name,
        description=spec.description,
        role=role.arn,
        runtime=RUNTIME,
        handler=spec.handler,
        architectures=[spec.architecture],
        code=pulumi.FileArchive(str(archive)),
        source_code_hash=code_hash,
        layers=[powertools_layer_arn(spec.region, spec.architecture)],
        timeout=spec.timeout_seconds,
        memory_size=spec.memory_mb,
        reserved_concurrent_executions=spec.reserved_concurrency,
        environment={"variables": dict(spec.environment)},
        logging_config={"log_format": "Text", "log_group": log_group.name},
        # Without the policies the first invocations fail to log or to do their work.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[log_group, *policies]),
    )
    # Lambda checks the role can read the queue when the mapping is created, and IAM is
    # eventually consistent: the policies must exist first.
    mapping = aws.lambda_.EventSourceMapping(
        f"{name}-queue-events",
        event_source_arn=spec.queue_arn,
        function_name=function.arn,
        batch_size=spec.batch_size,
        maximum_batching_window_in_seconds=spec.batching_window_seconds,
        function_response_types=["ReportBatchItemFailures"],
        scaling_config={"maximum_concurrency": spec.maximum_concurrency},
        opts=pulumi.ResourceOptions(parent=parent, depends_on=policies),
    )
    return QueueFunction(log_group, role, policies, function, mapping)


def lambda_trust_policy() -> dict[str, Any]:
    """The execution role's trust policy: only the Lambda service may assume it."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def policy_document(statements: list[dict[str, Any]]) -> dict[str, Any]:
    """An IAM policy document holding ``statements``."""
    return {"Version": "2012-10-17", "Statement": statements}


def log_write_statement(log_group_arn: str) -> dict[str, Any]:
    """Writing log streams of the one log group; ``:*`` names its streams."""
    return {
        "Sid": "WriteOwnLogs",
        "Effect": "Allow",
        "Action": list(LOG_WRITE_ACTIONS),
        "Resource": f"{log_group_arn}:*",
    }
