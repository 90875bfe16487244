"""Vercel project environment variables for the sending path, and the AWS identity the
Vercel app sends with: an IAM role trusted through Vercel OIDC (default) or scoped keys."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import pulumi
import pulumi_aws as aws
import pulumiverse_vercel as vercel

from .access_keys import MAX_ACCESS_KEY_ROTATION_DAYS, RotatingAccessKeys, rotating_access_keys
from .email_domain import REGION_RE
from .email_events import READ_HISTORY_ACTIONS
from .errors import ConfigError
from .settings import Bool, ChoiceList, Int, Pattern, check_fields, require_args, rule, strict_args
from .validation import check_email, check_pattern, is_unresolved

__all__ = [
    "DEPLOYED_TARGETS",
    "SEND_MESSAGE_ACTIONS",
    "TARGETS",
    "EnvVariable",
    "VercelEnv",
    "VercelEnvArgs",
    "account_oidc_provider_arn",
    "default_send_statement",
    "default_targets",
    "env_variables",
    "history_read_policy",
    "oidc_audience",
    "oidc_issuer_host",
    "oidc_subject",
    "send_policy",
    "trust_policy",
]

TYPE = "serverless-mail:index:VercelEnv"

Target = Literal["production", "preview", "development"]
TARGETS: tuple[Target, ...] = get_args(Target)
"""Vercel's built-in environments, in the order variables list them."""

DEPLOYED_TARGETS: tuple[Target, ...] = ("production", "preview")
"""Targets that accept ``sensitive`` variables (Vercel refuses it on ``development``)."""

SEND_MESSAGE_ACTIONS = ("sqs:SendMessage", "sqs:GetQueueUrl")
"""The only actions the Vercel app's identity is ever granted, on the queue ARN only."""

PRODUCTION_STAGES = ("prod", "production")

TEAM_SLUG_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?")
TEAM_ID_RE = re.compile(r"team_[A-Za-z0-9]{1,64}")
PROJECT_ID_RE = re.compile(r"prj_[A-Za-z0-9]{1,64}")
# Vercel project names: lower case, digits and . _ - (no ':' so the OIDC `sub` stays exact).
PROJECT_NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,98}[a-z0-9])?")
OIDC_PROVIDER_ARN_RE = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:oidc-provider/.+")
_TEAM_SLUG_WHAT = (
    "a Vercel team slug (lower-case letters, digits and '-', as in vercel.com/<team_slug>)"
)
_PROJECT_ID_WHAT = "a Vercel project id such as 'prj_abc123'"
_PROJECT_NAME_WHAT = "a Vercel project name (lower-case letters, digits, '.', '_' and '-')"
QUEUE_ARN_RE = re.compile(r"arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,80}(\.fifo)?")
QUEUE_URL_RE = re.compile(r"https://sqs\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/\d{12}/[A-Za-z0-9_.-]+")
HTTPS_URL_RE = re.compile(r"https://[^\s/]+(/\S*)?")


@strict_args
@dataclass(frozen=True, kw_only=True)
class VercelEnvSettings:
    """What a stage may set on :class:`VercelEnv`; :class:`VercelEnvArgs` adds the wiring."""

    team_slug: str = field(metadata=rule(Pattern(TEAM_SLUG_RE, _TEAM_SLUG_WHAT)))
    """The Vercel team's URL slug (``vercel.com/<team_slug>``); it names the OIDC issuer
    ``https://oidc.vercel.com/<team_slug>`` (team issuer mode). Required."""

    project_id: str = field(metadata=rule(Pattern(PROJECT_ID_RE, _PROJECT_ID_WHAT)))
    """The Vercel project id, ``prj_...`` (Project Settings, General). Required."""

    project_name: str = field(metadata=rule(Pattern(PROJECT_NAME_RE, _PROJECT_NAME_WHAT)))
    """The Vercel project's name, as it appears in the OIDC ``sub`` claim. Required."""

    team_id: str | None = field(
        default=None,
        metadata=rule(Pattern(TEAM_ID_RE, "a Vercel team id such as 'team_abc123'")),
    )
    """The Vercel team id, ``team_...``. Default: ``None`` (the provider's default team)."""

    targets: tuple[str, ...] | None = field(
        default=None, metadata=rule(ChoiceList(TARGETS, "['preview', 'development']"))
    )
    """Vercel environments that get the variables (``production``, ``preview``,
    ``development``). Default: ``None``, which means ``("production",)`` when ``stage`` is
    ``prod`` or ``production`` and ``("preview", "development")`` otherwise."""

    oidc: bool = field(default=True, metadata=rule(Bool()))
    """Authenticate the app with Vercel OIDC and an IAM role (no long-lived keys). ``False``
    creates an IAM user and access key instead. Default: ``True``."""

    oidc_provider_arn: pulumi.Input[str] | None = field(
        default=None,
        metadata=rule(Pattern(OIDC_PROVIDER_ARN_RE, "the ARN of an IAM OIDC provider")),
    )
    """ARN of an existing IAM OIDC provider for ``https://oidc.vercel.com/<team_slug>`` (an
    account holds one per issuer URL). Default: ``None`` (create one)."""

    access_key_rotation_days: int = field(
        default=30, metadata=rule(Int(1, MAX_ACCESS_KEY_ROTATION_DAYS))
    )
    """Without ``oidc``: days between rotations of the IAM user's two access keys (1 to
    45); each key lives twice this. The variables move to the new key at once and the
    old one stays valid one more period, time to redeploy the app. Default: ``30``."""

    reuse_account_oidc_provider: bool = field(default=False, metadata=rule(Bool()))
    """Trust the provider for ``https://oidc.vercel.com/<team_slug>`` that the account
    already has instead of creating one; its ARN is derived from ``queue_arn``'s partition
    and account (:func:`account_oidc_provider_arn`). IAM holds one provider per issuer
    URL in an account, so when several stages share an account, let one create it and set
    this on the others (the creating stage must be deployed first); or create it once
    elsewhere and pass ``oidc_provider_arn``. Default: ``False``."""


@strict_args
@dataclass(frozen=True, kw_only=True)
class VercelEnvArgs(VercelEnvSettings):
    """Arguments of :class:`VercelEnv`."""

    stage: str
    """The stack's stage (``dev``, ``prod`` ...); it picks the default ``targets``. Required."""

    queue_url: pulumi.Input[str]
    """URL of the SQS queue the app sends to (``EMAIL_QUEUE_URL``). Required."""

    queue_arn: pulumi.Input[str]
    """ARN of that queue: the only resource the app's identity may send to. Required."""

    region: str
    """The queue's AWS region (``EMAIL_AWS_REGION``). Required."""

    email_from: str
    """The default sender the app uses (``EMAIL_FROM``), e.g. ``App <no-reply@mail.example.com>``.
    Required."""

    worker_url: pulumi.Input[str] | None = None
    """Base URL of the Cloudflare Worker enqueue API (``EMAIL_WORKER_URL``). Default: ``None``
    (no Worker path)."""

    worker_token: pulumi.Input[str] | None = None
    """Bearer token of that API (``EMAIL_WORKER_TOKEN``, secret); given with ``worker_url``.
    Default: ``None``."""

    send_statement: pulumi.Input[dict[str, Any]] | None = None
    """The policy statement the app's identity gets, e.g. ``EmailQueue.grant_send_messages()``.
    Default: ``None``, which means ``sqs:SendMessage`` and ``sqs:GetQueueUrl`` on
    ``queue_arn``."""

    webhook_secret: pulumi.Input[str] | None = None
    """The signing secret of the events webhooks (``EMAIL_WEBHOOK_SECRET``, sensitive,
    never written to ``development``), e.g. ``EmailEvents.webhook_secret``. Default:
    ``None`` (no webhooks)."""

    history_table_name: pulumi.Input[str] | None = None
    """The message history table the app reads (``EMAIL_HISTORY_TABLE``), e.g.
    ``EmailEvents.history_table_name``; given with ``history_read_statement``. Default:
    ``None`` (no history read)."""

    history_read_statement: pulumi.Input[dict[str, Any]] | None = None
    """The statement that lets the app's identity read it,
    ``EmailEvents.grant_read_history()``: only ``dynamodb:GetItem`` and ``dynamodb:Query``
    on the table's ARN. Default: ``None``."""

    @property
    def resolved_targets(self) -> tuple[Target, ...]:
        """``targets``, or the stage's default, in :data:`TARGETS` order."""
        chosen = self.targets if self.targets is not None else default_targets(self.stage)
        return tuple(t for t in TARGETS if t in chosen)

    @property
    def has_secrets(self) -> bool:
        """Whether any variable holds a secret (worker token, webhook secret, or IAM keys
        without OIDC)."""
        return self.worker_token is not None or self.webhook_secret is not None or not self.oidc

    def validate(self) -> None:
        """Raise :class:`ConfigError` on the first invalid field."""
        check_fields(self)
        check_pattern(
            "stage", self.stage, re.compile(r"[a-z0-9-]{1,32}"), "a stage name such as 'dev'"
        )
        self._validate_targets()
        check_pattern("region", self.region, REGION_RE, "an AWS region code such as 'eu-west-1'")
        check_pattern("queue_url", self.queue_url, QUEUE_URL_RE, "an SQS queue URL")
        check_pattern("queue_arn", self.queue_arn, QUEUE_ARN_RE, "an SQS queue ARN")
        if isinstance(self.queue_arn, str) and self.queue_arn.split(":")[3] != self.region:
            raise ConfigError(
                f"`queue_arn` must be in `region` ({self.region!r}), but "
                f"{self.queue_arn!r} was provided"
            )
        check_email("email_from", self.email_from, display_name=True)
        if (self.worker_url is None) != (self.worker_token is None):
            raise ConfigError(
                "`worker_url` and `worker_token` must be given together (the Worker "
                "refuses unauthenticated requests), but only "
                f"`{'worker_url' if self.worker_token is None else 'worker_token'}` was provided"
            )
        if self.worker_url is not None:
            check_pattern("worker_url", self.worker_url, HTTPS_URL_RE, "an https:// URL")
        if self.oidc_provider_arn is not None:
            if not self.oidc:
                raise ConfigError(
                    "`oidc_provider_arn` needs `oidc` true, but `oidc` is false: drop "
                    "`oidc_provider_arn` or turn `oidc` on"
                )
            expected = f":oidc-provider/{oidc_issuer_host(self.team_slug)}"
            if not is_unresolved(self.oidc_provider_arn) and not (
                isinstance(self.oidc_provider_arn, str)
                and re.fullmatch(
                    r"arn:aws[a-z-]*:iam::\d{12}:oidc-provider/.+", self.oidc_provider_arn
                )
                and self.oidc_provider_arn.endswith(expected)
            ):
                raise ConfigError(
                    "`oidc_provider_arn` must be the ARN of the IAM OIDC provider for "
                    f"'https://{oidc_issuer_host(self.team_slug)}' (ending in {expected!r}), "
                    f"but {self.oidc_provider_arn!r} was provided"
                )
        if self.reuse_account_oidc_provider:
            if not self.oidc:
                raise ConfigError(
                    "`reuse_account_oidc_provider` needs `oidc` true, but `oidc` is false: "
                    "drop `reuse_account_oidc_provider` or turn `oidc` on"
                )
            if self.oidc_provider_arn is not None:
                raise ConfigError(
                    "`reuse_account_oidc_provider` and `oidc_provider_arn` both name the "
                    f"provider, but both were provided ({self.oidc_provider_arn!r}): keep one"
                )
        if isinstance(self.send_statement, Mapping):
            _check_send_statement(self.send_statement)
        if (self.history_table_name is None) != (self.history_read_statement is None):
            raise ConfigError(
                "`history_table_name` and `history_read_statement` must be given together "
                "(the app needs both the table's name and the right to read it), but only `"
                + (
                    "history_table_name"
                    if self.history_read_statement is None
                    else "history_read_statement"
                )
                + "` was provided"
            )
        if isinstance(self.history_read_statement, Mapping):
            _check_history_read_statement(self.history_read_statement)

    def _validate_targets(self) -> None:
        if self.targets is None:
            return
        if tuple(self.targets) == ("development",) and self.has_secrets:
            secret = (
                "worker_token"
                if self.worker_token is not None
                else "webhook_secret"
                if self.webhook_secret is not None
                else "the IAM access key"
            )
            raise ConfigError(
                "`targets` ['development'] cannot carry secrets: Vercel refuses sensitive "
                "variables on 'development' and this component never writes a secret there "
                f"as plain text, so {secret} would reach no environment; add 'preview' "
                "(developers run `vercel env pull --environment=preview`) or drop the secret"
            )


@dataclass(frozen=True)
class EnvVariable:
    """One Vercel variable resource: a key, its value and where it goes."""

    key: str
    value: pulumi.Input[str]
    targets: tuple[Target, ...]
    sensitive: bool
    secret: bool

    @property
    def resource_suffix(self) -> str:
        """``email-queue-url`` or ``email-queue-url-development``."""
        base = self.key.lower().replace("_", "-")
        return f"{base}-development" if self.targets == ("development",) else base


class VercelEnv(pulumi.ComponentResource):
    """The Vercel project side of the sending path.

    Attributes:
        role: the IAM role the app assumes through Vercel OIDC, or ``None`` without OIDC.
        role_arn: its ARN (``EMAIL_AWS_ROLE_ARN``), or ``None`` without OIDC.
        oidc_provider: the IAM OIDC provider this component created, or ``None``.
        oidc_provider_arn: the provider the role trusts (created or given), or ``None``.
        user / access_keys: the IAM user and its two rotating keys when ``oidc`` is off,
            else ``None`` (:mod:`serverless_mail.access_keys`; the variables carry the
            key replaced last, the other stays valid a period for a redeploy).
        variables: every ``vercel.ProjectEnvironmentVariable`` created.
        targets: the Vercel environments the variables were written to.
    """

    role: aws.iam.Role | None
    oidc_provider: aws.iam.OpenIdConnectProvider | None
    user: aws.iam.User | None
    access_keys: RotatingAccessKeys | None
    variables: list[vercel.ProjectEnvironmentVariable]

    def __init__(
        self,
        name: str,
        args: VercelEnvArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(TYPE, name, {}, opts)
        require_args(args, VercelEnvArgs, "VercelEnv")
        args.validate()
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self.targets = args.resolved_targets
        statement = (
            args.send_statement
            if args.send_statement is not None
            else pulumi.Output.from_input(args.queue_arn).apply(default_send_statement)
        )
        self._policy = pulumi.Output.from_input(statement).apply(
            lambda s: json.dumps(send_policy(s))
        )

        self.role = self.oidc_provider = self.user = self.access_keys = None
        self.role_arn: pulumi.Output[str] | None = None
        self.oidc_provider_arn: pulumi.Output[str] | None = None
        if args.oidc:
            self._trust_vercel_oidc()
            self._create_role()
        else:
            self._create_user_with_key()
        self._grant_history_read()
        self._write_variables()

        self.register_outputs(
            {
                "role_arn": self.role_arn,
                "oidc_provider_arn": self.oidc_provider_arn,
                "targets": list(self.targets),
                "variable_keys": sorted({v.key for v in self._variables}),
            }
        )

    def _trust_vercel_oidc(self) -> None:
        slug = self._args.team_slug
        if self._args.oidc_provider_arn is not None:
            self.oidc_provider_arn = pulumi.Output.from_input(self._args.oidc_provider_arn)
            return
        if self._args.reuse_account_oidc_provider:
            self.oidc_provider_arn = pulumi.Output.from_input(self._args.queue_arn).apply(
                lambda arn: account_oidc_provider_arn(arn, slug)
            )
            return
        # No thumbprint: pulumi-aws 7 makes it optional and IAM then fetches the issuer's
        # top intermediate CA thumbprint itself (IAM docs, "Create an OIDC provider").
        self.oidc_provider = aws.iam.OpenIdConnectProvider(
            f"{self._name}-oidc",
            url=f"https://{oidc_issuer_host(slug)}",
            client_id_lists=[oidc_audience(slug)],
            opts=self._child,
        )
        self.oidc_provider_arn = self.oidc_provider.arn

    def _create_role(self) -> None:
        assert self.oidc_provider_arn is not None
        args = self._args
        self.role = aws.iam.Role(
            f"{self._name}-role",
            description=(
                f"Vercel project {args.project_name} ({', '.join(self.targets)}) "
                "enqueues email; managed by Pulumi"
            ),
            assume_role_policy=self.oidc_provider_arn.apply(
                lambda arn: json.dumps(
                    trust_policy(arn, args.team_slug, args.project_name, self.targets)
                )
            ),
            max_session_duration=3600,
            opts=self._child,
        )
        aws.iam.RolePolicy(
            f"{self._name}-role-send",
            role=self.role.id,
            name="send-email-messages",
            policy=self._policy,
            opts=self._child,
        )
        self.role_arn = self.role.arn

    def _create_user_with_key(self) -> None:
        self.user = aws.iam.User(
            f"{self._name}-user",
            path="/serverless-mail/",
            opts=self._child,
        )
        aws.iam.UserPolicy(
            f"{self._name}-user-send",
            user=self.user.name,
            name="send-email-messages",
            policy=self._policy,
            opts=self._child,
        )
        self.access_keys = rotating_access_keys(
            user=self.user,
            days=self._args.access_key_rotation_days,
            key_name=f"{self._name}-key",
            rotation_name=f"{self._name}-key-rotation",
            parent=self,
            previous_key_name=f"{self._name}-key",
        )

    def _grant_history_read(self) -> None:
        statement = self._args.history_read_statement
        if statement is None:
            return
        policy = pulumi.Output.from_input(statement).apply(
            lambda s: json.dumps(history_read_policy(s))
        )
        if self.role is not None:
            aws.iam.RolePolicy(
                f"{self._name}-role-read-history",
                role=self.role.id,
                name="read-message-history",
                policy=policy,
                opts=self._child,
            )
        elif self.user is not None:
            aws.iam.UserPolicy(
                f"{self._name}-user-read-history",
                user=self.user.name,
                name="read-message-history",
                policy=policy,
                opts=self._child,
            )

    def _write_variables(self) -> None:
        values: dict[str, pulumi.Input[str]] = {}
        if self.role_arn is not None:
            values["EMAIL_AWS_ROLE_ARN"] = self.role_arn
        if self.access_keys is not None:
            key = self.access_keys
            values["EMAIL_AWS_ACCESS_KEY_ID"] = pulumi.Output.secret(key.active_id)
            values["EMAIL_AWS_SECRET_ACCESS_KEY"] = pulumi.Output.secret(key.active_secret)
        self._variables = env_variables(self._args, self.targets, values)
        self.variables = [
            vercel.ProjectEnvironmentVariable(
                f"{self._name}-{v.resource_suffix}",
                project_id=self._args.project_id,
                team_id=self._args.team_id,
                key=v.key,
                value=v.value,
                targets=list(v.targets),
                sensitive=v.sensitive,
                comment="serverless-mail: managed by Pulumi",
                opts=self._child,
            )
            for v in self._variables
        ]


SECRET_KEYS = (
    "EMAIL_AWS_ACCESS_KEY_ID",
    "EMAIL_AWS_SECRET_ACCESS_KEY",
    "EMAIL_WORKER_TOKEN",
    "EMAIL_WEBHOOK_SECRET",
)
"""Keys never written to ``development`` (the access key id is kept with its secret)."""


def default_targets(stage: str) -> tuple[Target, ...]:
    """``("production",)`` for ``prod``/``production``, else ``("preview", "development")``."""
    return ("production",) if stage in PRODUCTION_STAGES else ("preview", "development")


def env_variables(
    args: VercelEnvArgs,
    targets: tuple[Target, ...],
    identity_values: Mapping[str, pulumi.Input[str]],
) -> list[EnvVariable]:
    """Every variable resource, in a stable order; ``identity_values`` holds
    ``EMAIL_AWS_ROLE_ARN`` or the access key pair.

    Production and preview get one ``sensitive`` variable per key. Vercel refuses
    ``sensitive`` on ``development``, so development gets a separate plain copy of the
    non-secret values only: a secret (worker token, webhook secret, IAM keys) is never
    stored readable;
    developers take those from ``vercel env pull --environment=preview`` or their own
    ``.env``.
    """
    values: dict[str, pulumi.Input[str]] = {
        "EMAIL_QUEUE_URL": args.queue_url,
        "EMAIL_AWS_REGION": args.region,
        **identity_values,
        "EMAIL_FROM": args.email_from,
    }
    if args.worker_url is not None and args.worker_token is not None:
        values["EMAIL_WORKER_URL"] = args.worker_url
        values["EMAIL_WORKER_TOKEN"] = pulumi.Output.secret(args.worker_token)
    if args.history_table_name is not None:
        values["EMAIL_HISTORY_TABLE"] = args.history_table_name
    if args.webhook_secret is not None:
        values["EMAIL_WEBHOOK_SECRET"] = pulumi.Output.secret(args.webhook_secret)
    deployed = tuple(t for t in targets if t in DEPLOYED_TARGETS)
    out: list[EnvVariable] = []
    for key, value in values.items():
        secret = key in SECRET_KEYS
        if deployed:
            out.append(EnvVariable(key, value, deployed, sensitive=True, secret=secret))
        if "development" in targets and not secret:
            out.append(EnvVariable(key, value, ("development",), sensitive=False, secret=False))
    return out


def account_oidc_provider_arn(arn_in_account: str, team_slug: str) -> str:
    """ARN of the account's IAM OIDC provider for the team's Vercel issuer.

    An OIDC provider's ARN is ``arn:<partition>:iam::<account>:oidc-provider/<issuer host>``
    (IAM User Guide, "Create an OpenID Connect identity provider"), so any ARN in the
    account (e.g. the queue's) determines it.
    """
    partition, account = arn_in_account.split(":")[1], arn_in_account.split(":")[4]
    return f"arn:{partition}:iam::{account}:oidc-provider/{oidc_issuer_host(team_slug)}"


def oidc_issuer_host(team_slug: str) -> str:
    """``oidc.vercel.com/<team_slug>``: the team-mode issuer, as IAM condition keys name it."""
    return f"oidc.vercel.com/{team_slug}"


def oidc_audience(team_slug: str) -> str:
    """``https://vercel.com/<team_slug>``: the ``aud`` of the team's Vercel OIDC tokens."""
    return f"https://vercel.com/{team_slug}"


def oidc_subject(team_slug: str, project_name: str, environment: str) -> str:
    """The ``sub`` claim of a token minted for one project environment (Vercel OIDC reference)."""
    return f"owner:{team_slug}:project:{project_name}:environment:{environment}"


def trust_policy(
    provider_arn: str, team_slug: str, project_name: str, targets: tuple[str, ...]
) -> dict[str, Any]:
    """Trust only web identities of this team's project, in ``targets``; no wildcard."""
    issuer = oidc_issuer_host(team_slug)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "VercelOidc",
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{issuer}:aud": oidc_audience(team_slug),
                        # A list on a single-valued key matches any one of its values.
                        f"{issuer}:sub": [
                            oidc_subject(team_slug, project_name, t) for t in targets
                        ],
                    }
                },
            }
        ],
    }


def default_send_statement(queue_arn: str) -> dict[str, Any]:
    """``sqs:SendMessage`` and ``sqs:GetQueueUrl`` on ``queue_arn`` only."""
    return {
        "Sid": "SendEmailMessages",
        "Effect": "Allow",
        "Action": list(SEND_MESSAGE_ACTIONS),
        "Resource": queue_arn,
    }


def send_policy(statement: Mapping[str, Any]) -> dict[str, Any]:
    """The inline policy of the app's identity: exactly ``statement``."""
    _check_send_statement(statement)
    return {"Version": "2012-10-17", "Statement": [dict(statement)]}


def history_read_policy(statement: Mapping[str, Any]) -> dict[str, Any]:
    """The inline policy that lets the app read the message history: exactly ``statement``."""
    _check_history_read_statement(statement)
    return {"Version": "2012-10-17", "Statement": [dict(statement)]}


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _check_send_statement(statement: Mapping[str, Any]) -> None:
    actions = _as_list(statement.get("Action", []))
    resources = _as_list(statement.get("Resource", []))
    if (
        statement.get("Effect") != "Allow"
        or not actions
        or not set(actions) <= set(SEND_MESSAGE_ACTIONS)
        or not resources
        or any(isinstance(r, str) and "*" in r for r in resources)
        or any(not isinstance(r, str) and not is_unresolved(r) for r in resources)
    ):
        raise ConfigError(
            "`send_statement` must allow only "
            f"{', '.join(SEND_MESSAGE_ACTIONS)} on the queue ARN (no '*'), but "
            f"{dict(statement)!r} was provided"
        )


def _check_history_read_statement(statement: Mapping[str, Any]) -> None:
    actions = _as_list(statement.get("Action", []))
    resources = _as_list(statement.get("Resource", []))
    if (
        statement.get("Effect") != "Allow"
        or not actions
        or not set(actions) <= set(READ_HISTORY_ACTIONS)
        or not resources
        or any(isinstance(r, str) and ("*" in r or ":table/" not in r) for r in resources)
        or any(not isinstance(r, str) and not is_unresolved(r) for r in resources)
    ):
        raise ConfigError(
            "`history_read_statement` must allow only "
            f"{', '.join(READ_HISTORY_ACTIONS)} on the history table's ARN (no '*'), but "
            f"{dict(statement)!r} was provided"
        )
