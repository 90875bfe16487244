"""Rules on IAM: what a policy statement grants, managed-policy attachments,
web-identity trust, and access-key rotation.

Statements are judged by what they grant, whatever the spelling (see
:mod:`.documents`): ``NotAction``/``NotResource`` with Allow, any ``*`` or ``?``
inside an action or a resource (an explicit allow-list aside), SES sends without
a ``ses:FromAddress`` limit to the domain.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from pulumi_policy import PolicyResource, ResourceValidationArgs, StackValidationArgs

from .documents import (
    IDENTITY,
    KEY,
    TRUST,
    Statement,
    grants,
    has_wildcard,
    statements,
)
from .engine import UNKNOWN, Report, get, number, of_type, strings

SES_SEND_ACTIONS = (
    "ses:SendEmail",
    "ses:SendRawEmail",
    "ses:SendBulkEmail",
    "ses:SendTemplatedEmail",
    "ses:SendBulkTemplatedEmail",
    "ses:SendCustomVerificationEmail",
)
"""Every SES (v1 and v2) action that sends mail (SES API permissions reference)."""

WEB_IDENTITY = "sts:AssumeRoleWithWebIdentity"

ACTIONS_WITHOUT_RESOURCES = frozenset(
    a.lower()
    for a in (
        "cloudwatch:PutMetricData",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "ses:GetAccount",
        "ses:GetSendQuota",
        "sts:GetCallerIdentity",
    )
)
"""Actions that support no resource-level permission, so IAM requires ``Resource: "*"``
(Service Authorization Reference: no resource types listed for these actions)."""

_ROOT_RE = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:root|\d{12}")
_LOG_STREAMS_RE = re.compile(r"arn:aws[a-z-]*:logs:[a-z0-9-]+:\d{12}:log-group:[^*?]+:\*")
_KEY_IN_KEY_POLICY = "*"


def _account_root_only(statement: Statement) -> bool:
    values = [v for vs in statement.principals.values() for v in vs]
    return (
        bool(values)
        and set(statement.principals) == {"aws"}
        and all(_ROOT_RE.fullmatch(v) for v in values)
    )


def _allowed_wildcard_action(statement: Statement, action: str) -> bool:
    # KMS Developer Guide, "Default key policy": the account's root gets kms:* so that
    # IAM policies can grant the key's use; without it the key can become unmanageable.
    return statement.kind == KEY and action.lower() == "kms:*" and _account_root_only(statement)


def _allowed_wildcard_resource(statement: Statement, resource: str) -> bool:
    if statement.kind == KEY and resource == _KEY_IN_KEY_POLICY:
        return True  # KMS: in a key policy, "*" means "this key" (Key policies in AWS KMS).
    if _LOG_STREAMS_RE.fullmatch(resource):
        return True  # CloudWatch Logs: the streams of one named group (":*" suffix).
    return (
        resource == "*"
        and bool(statement.actions)
        and all(a.lower() in ACTIONS_WITHOUT_RESOURCES for a in statement.actions)
    )


def iam_no_not_elements(args: ResourceValidationArgs, report: Report) -> None:
    for s in statements(args):
        if not s.allow:
            continue
        used = [
            name
            for name, present in (
                ("NotAction", s.not_actions),
                ("NotResource", s.not_resources),
                ("NotPrincipal", s.not_principal),
            )
            if present
        ]
        if used:
            report(
                f"{s.where} allows with {' and '.join(used)}: an Allow with a Not element "
                "grants everything except what it lists (IAM User Guide, NotAction and "
                "NotResource); list the actions, resources and principals allowed instead."
            )


def iam_no_wildcard_actions(args: ResourceValidationArgs, report: Report) -> None:
    for s in statements(args):
        if not s.allow:
            continue
        for action in s.actions:
            if has_wildcard(action) and not _allowed_wildcard_action(s, action):
                report(
                    f"{s.where} allows the wildcard action {action!r}: list the exact "
                    "actions the principal needs (e.g. 'sqs:SendMessage'), as the "
                    "IAM User Guide's least-privilege best practice asks."
                )


def iam_no_wildcard_resources(args: ResourceValidationArgs, report: Report) -> None:
    for s in statements(args):
        if not s.allow:
            continue
        for resource in s.resources:
            if has_wildcard(resource) and not _allowed_wildcard_resource(s, resource):
                report(
                    f"{s.where} grants {', '.join(s.actions) or 'its actions'} on the wildcard "
                    f"resource {resource!r}: scope Resource to the ARNs used (the queue, "
                    "table, topic or SES identity), e.g. with a grant_* helper."
                )


_IDENTITY_ARN_RE = re.compile(r"arn:aws[a-z-]*:ses:[^:]*:[^:]*:identity/(.+)")


def _identity_domains(statement: Statement) -> set[str]:
    domains = set()
    for resource in statement.resources:
        match = _IDENTITY_ARN_RE.fullmatch(resource)
        if match and not has_wildcard(match.group(1)):
            domains.add(match.group(1).rsplit("@", 1)[-1].lower())
    return domains


def _limited_to(value: str, domains: set[str]) -> bool:
    """Whether a ``ses:FromAddress`` pattern only matches addresses of ``domains``.

    ``<local>@<domain>`` or ``<local>@*.<domain>``: the local part may be a
    pattern, the domain may not (past one leading ``*.`` label).
    """
    if "@" not in value:
        return False
    host = value.rsplit("@", 1)[1].lower()
    base = host.removeprefix("*.")
    if not base or has_wildcard(base) or "." not in base:
        return False
    return not domains or any(base == d or base.endswith(f".{d}") for d in domains)


def iam_ses_send_from_address(args: ResourceValidationArgs, report: Report) -> None:
    for s in statements(args, (IDENTITY,)):
        if not s.allow:
            continue
        sends = [a for a in SES_SEND_ACTIONS if grants(s, a)]
        if not sends:
            continue
        # Only StringEquals/StringLike test every request positively: ...IfExists passes
        # when the key is absent, ForAnyValue/ForAllValues and Not operators invert or
        # loosen the test (IAM User Guide, condition operators).
        values = s.condition_values("ses:FromAddress", ("StringEquals", "StringLike"))
        domains = _identity_domains(s)
        if not values:
            report(
                f"{s.where} allows {', '.join(sends)} without a `ses:FromAddress` "
                "condition under StringEquals or StringLike: add Condition StringLike "
                "{'ses:FromAddress': '*@<domain>'} so the principal can only send as the "
                "stack's domain (SES Developer Guide, controlling access with IAM)."
            )
            continue
        loose = [v for v in values if not _limited_to(v, domains)]
        if loose:
            report(
                f"{s.where} allows {', '.join(sends)} from `ses:FromAddress` "
                f"{', '.join(repr(v) for v in loose)}, which is not limited to "
                f"{' or '.join(sorted(domains)) or 'one domain'}: use '*@<domain>' (and "
                "'*@*.<domain>' for subdomains)."
            )


def _issuer(principal: str) -> str | None:
    marker = ":oidc-provider/"
    return principal.split(marker, 1)[1].lower() if marker in principal else None


_SUB_RE = re.compile(r"owner:([^:]+):project:([^:]+):environment:([^:]+)")


def _claim_values(
    s: Statement, issuers: list[str], claim: str, operators: tuple[str, ...]
) -> list[str] | None:
    found: list[str] = []
    any_key = False
    for operator, block in s.conditions.items():
        if operator.lower() not in {o.lower() for o in operators}:
            continue
        for key, values in block.items():
            if (issuers and key in {f"{i}:{claim}" for i in issuers}) or (
                not issuers and key.endswith(f":{claim}")
            ):
                any_key = True
                found += values
    return found if any_key else None


def iam_oidc_trust_pinned(args: ResourceValidationArgs, report: Report) -> None:
    for s in statements(args, (TRUST,)):
        if not s.allow:
            continue
        federated = s.principals.get("federated", ())
        if not (grants(s, WEB_IDENTITY) or federated):
            continue
        if grants(s, WEB_IDENTITY) and [a.lower() for a in s.actions] != [WEB_IDENTITY.lower()]:
            report(
                f"The web-identity trust allows {', '.join(s.actions or s.not_actions)}: "
                f"allow exactly '{WEB_IDENTITY}', no pattern and nothing beside it."
            )
        if s.public:
            report(
                "The web-identity trust names Principal '*': name the OIDC provider "
                "(Principal {'Federated': <provider arn>}) so no other identity can assume it."
            )
        issuers = [i for i in (_issuer(p) for p in federated) if i]
        issuer = (issuers or ["<issuer>"])[0]
        aud = _claim_values(s, issuers, "aud", ("StringEquals", "StringLike"))
        sub = _claim_values(s, issuers, "sub", ("StringEquals", "StringLike"))
        missing = [claim for claim, values in (("aud", aud), ("sub", sub)) if not values]
        if missing:
            report(
                f"The OIDC trust policy does not pin {' and '.join(f'`{c}`' for c in missing)}: "
                "add StringEquals conditions on "
                + " and ".join(f"'{issuer}:{c}'" for c in missing)
                + " so only tokens for this audience and this Vercel project can assume the "
                "role (IAM User Guide, OIDC federation)."
            )
        for value in aud or []:
            if has_wildcard(value):
                report(f"The OIDC trust policy's `aud` {value!r} is a pattern: pin '{issuer}:aud'.")
        for value in sub or []:
            match = _SUB_RE.fullmatch(value)
            if match is None or any(has_wildcard(part) for part in match.groups()):
                report(
                    f"The OIDC trust policy's `sub` {value!r} does not pin one team, project "
                    "and environment: use 'owner:<team>:project:<project>:environment:<env>' "
                    "with no wildcard, one value per environment."
                )


_AWS_MANAGED_RE = re.compile(r"arn:aws[a-z-]*:iam::aws:policy/(?:.*/)?([^/]+)")
_ADMIN_NAMES = frozenset(
    {
        "AdministratorAccess",
        "PowerUserAccess",
        "SystemAdministrator",
        "NetworkAdministrator",
        "DatabaseAdministrator",
    }
)
_ATTACHMENTS = {
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "policyArn",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment": "policyArn",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment": "policyArn",
    "aws:iam/policyAttachment:PolicyAttachment": "policyArn",
    "aws:iam/role:Role": "managedPolicyArns",
}


def broad_managed_policy(arn: str) -> bool:
    """An AWS-managed admin, power-user or full-access policy (``...FullAccess``)."""
    match = _AWS_MANAGED_RE.fullmatch(arn)
    if match is None:
        return False
    name = match.group(1)
    return (
        name in _ADMIN_NAMES
        or name.startswith("AdministratorAccess")
        or (name.endswith("FullAccess"))
    )


def iam_no_broad_managed_policies(args: ResourceValidationArgs, report: Report) -> None:
    key = _ATTACHMENTS.get(args.resource_type)
    if key is None:
        return
    for arn in strings(get(args.props, key)):
        if broad_managed_policy(arn):
            report(
                f"{key} attaches the AWS managed policy {arn}, which grants far more than "
                "the stack uses: attach a policy of your own with the exact actions on the "
                "exact resources (IAM User Guide, AWS managed policies for job functions)."
            )


# --- Access keys -----------------------------------------------------------

ACCESS_KEY = "aws:iam/accessKey:AccessKey"
ROTATING = "time:index/rotating:Rotating"
MAX_ACCESS_KEY_AGE_DAYS = 90
"""CIS AWS Foundations Benchmark 1.14 and the IAM User Guide: rotate access keys at
least every 90 days."""

_PERIOD_DAYS = {
    "rotationMinutes": 1 / 1440,
    "rotationHours": 1 / 24,
    "rotationDays": 1,
    "rotationMonths": 31,
    "rotationYears": 366,
}


def rotation_period_days(rotating: PolicyResource) -> float | None:
    """The longest period a ``time`` Rotating resource can last, in days; None if unknown."""
    for key, days in _PERIOD_DAYS.items():
        value = get(rotating.props, key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value * days
    return None


def _age_days(created: object, now: datetime) -> float | None:
    if not isinstance(created, str):
        return None
    try:
        when = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (now - when).total_seconds() / 86400


def iam_access_key_rotation(args: StackValidationArgs, report: Report) -> None:
    now = datetime.now(UTC)
    schedules: dict[str, list[float | None]] = {}
    for rotating in of_type(args, ROTATING):
        triggers = get(rotating.props, "triggers")
        if isinstance(triggers, dict) or hasattr(triggers, "keys"):
            for key in triggers:
                value = get(triggers, key)
                if isinstance(value, str):
                    schedules.setdefault(value, []).append(rotation_period_days(rotating))
    for key in of_type(args, ACCESS_KEY):
        user = get(key.props, "user")
        if user is UNKNOWN or not isinstance(user, str):
            continue
        periods = schedules.get(user, [])
        if not any(p is not None and p <= MAX_ACCESS_KEY_AGE_DAYS for p in periods):
            report(
                f"Access key {key.name} of IAM user {user} is not rotated within "
                f"{MAX_ACCESS_KEY_AGE_DAYS} days: replace it on a time.Rotating schedule "
                f"(rotation_days <= {MAX_ACCESS_KEY_AGE_DAYS}, triggers={{'user': {user!r}}}, "
                "the key with replacement_trigger=rotating.rfc3339), as "
                "serverless_mail.access_keys does.",
                key.urn,
            )
        age = _age_days(get(key.props, "createDate"), now)
        if age is not None and age > MAX_ACCESS_KEY_AGE_DAYS:
            report(
                f"Access key {key.name} of IAM user {user} is {number(int(age))} days old: "
                f"rotate it (keys older than {MAX_ACCESS_KEY_AGE_DAYS} days are a standing "
                "credential; run `pulumi up --refresh` so due schedules replace their keys).",
                key.urn,
            )
