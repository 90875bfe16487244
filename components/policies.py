"""The stack's security and reliability rules, as CrossGuard policies.

The rules live here, importable, so that three callers share them: the policy
pack in ``policy/`` (``pulumi preview --policy-pack policy``), the offline plan
(:func:`evaluate` on a mocks recording) and the tests. Building a ``PolicyPack``
starts a server, so only ``policy/__main__.py`` does that.

Rules see properties the way the analyzer hands them over: engine-side
camelCase keys, secrets already unwrapped, and unknown values (``pulumi
preview`` of resources not created yet) behind a proxy that raises
``UnknownValueError`` on access. Every rule reads through :func:`_get`, which
treats an unknown value as absent-and-unjudgeable, so a rule skips what it
cannot know instead of failing the whole check.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

if TYPE_CHECKING:
    from .mocking import Recording

__all__ = [
    "POLICIES",
    "STACK_OUTPUTS_POLICY",
    "Violation",
    "check_stack_outputs",
    "evaluate",
    "looks_secret",
]

Level = Literal["mandatory", "advisory"]
Report = Callable[..., None]
"""``report(message, urn=None)``, as pulumi_policy passes it to a rule."""
Args = ResourceValidationArgs | PolicyResource

STACK_OUTPUTS_POLICY = "stack-outputs-no-plaintext-secrets"
"""The check :func:`evaluate` runs on stack outputs (no CrossGuard rule can see them)."""


@dataclass(frozen=True)
class Violation:
    """One rule broken by one resource (or by the stack)."""

    policy: str
    message: str
    urn: str
    level: Level

    def as_dict(self) -> dict[str, str]:
        return {
            "policy": self.policy,
            "message": self.message,
            "urn": self.urn,
            "level": self.level,
        }


class _Unknown:
    """What :func:`_get` returns for a value not known until the update."""

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN = _Unknown()


def _get(value: Any, *path: str | int) -> Any:
    """``value[path0][path1]...``; ``None`` when missing, :data:`UNKNOWN` when unknown."""
    for key in path:
        try:
            if isinstance(key, int):
                if not _is_list(value) or key >= len(value):
                    return None
                value = value[key]
            else:
                if not isinstance(value, Mapping) or key not in value:
                    return None
                value = value[key]
        except UnknownValueError:
            return UNKNOWN
    return value


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _items(value: Any) -> Iterator[Any]:
    """The known elements of a list-like value (nothing if it is not one or unknown)."""
    if not _is_list(value):
        return
    for i in range(len(value)):
        item = _get(value, i)
        if item is not UNKNOWN:
            yield item


def _known(value: Any) -> bool:
    return value is not None and value is not UNKNOWN


_SECRET_NAME_RE = re.compile(r"TOKEN|SECRET|KEY|PASSWORD|CREDENTIAL", re.IGNORECASE)
_IDENTIFIER_SUFFIX_RE = re.compile(r"_(ARN|NAME|URL|ID|IDS)$", re.IGNORECASE)


def looks_secret(name: str) -> bool:
    """Whether a variable, binding or output name suggests it holds a secret.

    Names with TOKEN, SECRET, KEY, PASSWORD or CREDENTIAL (any case) do, except
    identifiers of those things (``KMS_KEY_ARN``, ``SECRET_NAME``); the AWS access
    key id is a secret here all the same, since it is half of a credential pair.
    """
    if name.upper().replace("-", "_") == "AWS_ACCESS_KEY_ID":
        return True
    return bool(_SECRET_NAME_RE.search(name)) and not _IDENTIFIER_SUFFIX_RE.search(name)


# --- IAM -------------------------------------------------------------------

_POLICY_DOCUMENT_TYPES = {
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/userPolicy:UserPolicy": "policy",
    "aws:iam/groupPolicy:GroupPolicy": "policy",
    "aws:iam/policy:Policy": "policy",
}
_ROLE = "aws:iam/role:Role"
_SCOPED_SERVICES = ("ses", "sqs", "dynamodb", "sns")
SEND_EMAIL_ACTIONS = ("ses:SendEmail", "ses:SendRawEmail")
_WEB_IDENTITY = "sts:AssumeRoleWithWebIdentity"


def _parse_document(document: Any) -> Mapping[str, Any] | None:
    """A policy document given as a JSON string or an object; ``None`` if unknown."""
    if isinstance(document, str):
        if document == UNKNOWN_STRING_VALUE:
            return None
        try:
            parsed = json.loads(document)
        except ValueError:
            return None  # The provider rejects it on its own; nothing to judge here.
        return parsed if isinstance(parsed, Mapping) else None
    return document if isinstance(document, Mapping) else None


def _documents(args: Args) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(where, document)`` for every IAM policy document a resource carries."""
    props = args.props
    key = _POLICY_DOCUMENT_TYPES.get(args.resource_type)
    if key is not None:
        document = _parse_document(_get(props, key))
        if document is not None:
            yield key, document
    elif args.resource_type == _ROLE:
        trust = _parse_document(_get(props, "assumeRolePolicy"))
        if trust is not None:
            yield "assume_role_policy", trust
        for inline in _items(_get(props, "inlinePolicies")):
            document = _parse_document(_get(inline, "policy"))
            if document is not None:
                yield f"inline_policies[{_get(inline, 'name')}]", document


def _statements(document: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    statements = _get(document, "Statement")
    if isinstance(statements, Mapping):
        yield statements
    for statement in _items(statements):
        if isinstance(statement, Mapping):
            yield statement


def _strings(value: Any) -> list[str]:
    """A policy field that may be one string or a list of strings."""
    if isinstance(value, str):
        return [] if value == UNKNOWN_STRING_VALUE else [value]
    return [v for v in _items(value) if isinstance(v, str) and v != UNKNOWN_STRING_VALUE]


def _allows(statement: Mapping[str, Any]) -> bool:
    return _get(statement, "Effect") != "Deny"


def _wildcard_action(action: str) -> bool:
    return action == "*" or action.endswith(":*")


def _wildcard_resource(resource: str) -> bool:
    """``*``, or an ARN naming every resource of a type (``...:*``, ``...:table/*``).

    A log stream suffix (``arn:aws:logs:...:log-group:NAME:*``) names one group's
    streams and is not a wildcard.
    """
    if resource == "*":
        return True
    parts = resource.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return False
    return parts[5] == "*" or re.fullmatch(r"[A-Za-z0-9_-]+/\*", parts[5]) is not None


def _service(action: str) -> str:
    return action.split(":", 1)[0].lower()


def _iam_no_wildcard_actions(args: ResourceValidationArgs, report: Report) -> None:
    for where, document in _documents(args):
        for statement in _statements(document):
            if not _allows(statement):
                continue
            for action in _strings(_get(statement, "Action")):
                if _wildcard_action(action):
                    report(
                        f"{where} allows the wildcard action {action!r}: list the exact "
                        "actions the principal needs (e.g. 'sqs:SendMessage'), as the "
                        "IAM User Guide's least-privilege best practice asks."
                    )


def _iam_no_wildcard_resources(args: ResourceValidationArgs, report: Report) -> None:
    for where, document in _documents(args):
        for statement in _statements(document):
            if not _allows(statement):
                continue
            services = sorted(
                {_service(a) for a in _strings(_get(statement, "Action"))} & set(_SCOPED_SERVICES)
            )
            if not services:
                continue
            for resource in _strings(_get(statement, "Resource")):
                if _wildcard_resource(resource):
                    report(
                        f"{where} grants {', '.join(services)} actions on the wildcard "
                        f"resource {resource!r}: scope Resource to the one ARN used (the "
                        "queue, table, topic or SES identity), e.g. with a grant_* helper."
                    )


def _condition_keys(statement: Mapping[str, Any]) -> set[str]:
    condition = _get(statement, "Condition")
    keys: set[str] = set()
    if isinstance(condition, Mapping):
        for operator in condition:
            block = _get(condition, operator)
            if isinstance(block, Mapping):
                keys |= {str(k).lower() for k in block}
    return keys


def _iam_ses_send_from_address(args: ResourceValidationArgs, report: Report) -> None:
    for where, document in _documents(args):
        for statement in _statements(document):
            if not _allows(statement):
                continue
            actions = _strings(_get(statement, "Action"))
            sends = [
                a
                for a in actions
                if _service(a) == "ses"
                and any(fnmatch.fnmatchcase(s.lower(), a.lower()) for s in SEND_EMAIL_ACTIONS)
            ]
            if sends and "ses:fromaddress" not in _condition_keys(statement):
                report(
                    f"{where} allows {', '.join(sends)} without a `ses:FromAddress` "
                    "condition: add Condition StringLike {'ses:FromAddress': '*@<domain>'} "
                    "so the principal can only send as the stack's domain (SES Developer "
                    "Guide, controlling access with IAM)."
                )


def _issuer(principal: str) -> str | None:
    marker = ":oidc-provider/"
    return principal.split(marker, 1)[1] if marker in principal else None


def _web_identity_statements(
    document: Mapping[str, Any],
) -> Iterator[tuple[Mapping[str, Any], list[str]]]:
    for statement in _statements(document):
        if not _allows(statement):
            continue
        actions = [a.lower() for a in _strings(_get(statement, "Action"))]
        federated = _strings(_get(statement, "Principal", "Federated"))
        if _WEB_IDENTITY.lower() in actions and federated:
            yield statement, federated


def _pinned_values(
    statement: Mapping[str, Any], claim: str, issuers: list[str]
) -> list[str] | None:
    """Values a StringEquals/StringLike condition pins ``<issuer>:<claim>`` to (None: unpinned)."""
    condition = _get(statement, "Condition")
    if not isinstance(condition, Mapping):
        return None
    found: list[str] | None = None
    for operator in ("StringEquals", "StringLike"):
        block = _get(condition, operator)
        if not isinstance(block, Mapping):
            continue
        for key in block:
            key_str = str(key)
            wanted = {f"{issuer}:{claim}" for issuer in issuers}
            if key_str in wanted or (not issuers and key_str.endswith(f":{claim}")):
                found = (found or []) + _strings(_get(block, key))
    return found


_PROJECT_SEGMENT_RE = re.compile(r"(?:^|:)project:([^:]*)(?::|$)")


def _iam_oidc_trust_pinned(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != _ROLE:
        return
    trust = _parse_document(_get(args.props, "assumeRolePolicy"))
    if trust is None:
        return
    for statement, federated in _web_identity_statements(trust):
        issuers = [i for i in (_issuer(p) for p in federated) if i]
        issuer = (issuers or ["<issuer>"])[0]
        pinned = {claim: _pinned_values(statement, claim, issuers) for claim in ("aud", "sub")}
        missing = [claim for claim, values in pinned.items() if not values]
        if missing:
            report(
                f"The OIDC trust policy does not pin {' and '.join(f'`{c}`' for c in missing)}: "
                "add StringEquals (or StringLike) conditions on "
                + " and ".join(f"'{issuer}:{c}'" for c in missing)
                + " so only tokens for this audience and this Vercel project can assume the "
                "role (IAM User Guide, OIDC federation)."
            )
        if "*" in (pinned["aud"] or []):
            report(f"The OIDC trust policy accepts any `aud` ('*'): pin '{issuer}:aud'.")
        for sub in _pinned_values(statement, "sub", issuers) or []:
            match = _PROJECT_SEGMENT_RE.search(sub)
            if match is None or any(c in match.group(1) for c in "*?"):
                report(
                    f"The OIDC trust policy's `sub` {sub!r} does not pin one project: use "
                    "'owner:<team>:project:<project>:environment:<env>' with a literal "
                    "project, so other projects of the team cannot assume the role."
                )


# --- SQS and Lambda --------------------------------------------------------

_QUEUE = "aws:sqs/queue:Queue"
_FUNCTION = "aws:lambda/function:Function"
_MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
_LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
DLQ_RETENTION_SECONDS = 1_209_600
"""14 days, the SQS maximum: time to notice the alarm and redrive."""
MAX_RECEIVE_COUNT = (3, 10)
VISIBILITY_TIMEOUT_FACTOR = 6
"""Lambda Developer Guide (SQS): set the queue's visibility timeout to at least six
times the function's timeout, so retries of a throttled batch don't redeliver it."""
DEFAULT_QUEUE_VISIBILITY = 30
DEFAULT_FUNCTION_TIMEOUT = 3


def _of_type(args: StackValidationArgs, type_: str) -> list[PolicyResource]:
    return [r for r in args.resources if r.resource_type == type_]


def _redrive(queue: Args) -> Mapping[str, Any] | None:
    return _parse_document(_get(queue.props, "redrivePolicy"))


def _dlq_arns(queues: list[PolicyResource]) -> set[str]:
    targets = set()
    for queue in queues:
        target = _get(_redrive(queue), "deadLetterTargetArn")
        if isinstance(target, str):
            targets.add(target)
    return targets


def _dead_letter_queues(args: StackValidationArgs) -> tuple[list[PolicyResource], set[str]]:
    queues = _of_type(args, _QUEUE)
    targets = _dlq_arns(queues)
    return [q for q in queues if _get(q.props, "arn") in targets], targets


def _sqs_redrive_to_dlq(args: StackValidationArgs, report: Report) -> None:
    queues = _of_type(args, _QUEUE)
    targets = _dlq_arns(queues)
    low, high = MAX_RECEIVE_COUNT
    for queue in queues:
        arn = _get(queue.props, "arn")
        if arn is UNKNOWN or arn in targets:
            continue  # A dead-letter queue (or not knowable yet).
        raw = _get(queue.props, "redrivePolicy")
        if raw is UNKNOWN or raw == UNKNOWN_STRING_VALUE:
            continue
        redrive = _redrive(queue)
        if redrive is None or not isinstance(_get(redrive, "deadLetterTargetArn"), str):
            report(
                f"Queue {queue.name} has no dead-letter queue and no queue redrives to it: "
                "set redrive_policy {'deadLetterTargetArn': <dlq arn>, 'maxReceiveCount': "
                f"{low}..{high}}} so a poison message stops being retried (SQS Developer "
                "Guide, dead-letter queues).",
                queue.urn,
            )
            continue
        count = _get(redrive, "maxReceiveCount")
        try:
            number = int(count)
        except (TypeError, ValueError):
            number = -1
        if not low <= number <= high:
            report(
                f"Queue {queue.name} redrives after maxReceiveCount={_number(count)}: use an "
                f"integer between {low} and {high} (enough retries for throttling, few enough "
                "that a poison message reaches the DLQ quickly).",
                queue.urn,
            )


def _sqs_dlq_retention(args: StackValidationArgs, report: Report) -> None:
    dlqs, _ = _dead_letter_queues(args)
    for dlq in dlqs:
        retention = _get(dlq.props, "messageRetentionSeconds")
        if retention is UNKNOWN:
            continue
        if retention != DLQ_RETENTION_SECONDS:
            report(
                f"Dead-letter queue {dlq.name} keeps messages {retention or 345600:g} seconds: "
                f"set message_retention_seconds={DLQ_RETENTION_SECONDS} (14 days, the maximum) "
                "so failed mail survives until someone redrives it.",
                dlq.urn,
            )


def _sqs_encryption(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != _QUEUE:
        return
    sse = _get(args.props, "sqsManagedSseEnabled")
    kms = _get(args.props, "kmsMasterKeyId")
    if UNKNOWN in (sse, kms):
        return
    if sse is not True and not kms:
        report(
            "The queue is not encrypted at rest: set sqs_managed_sse_enabled=True (or "
            "kms_master_key_id) — messages hold recipients and bodies (SQS Developer Guide, "
            "encryption at rest)."
        )


def _function_for(
    mapping: PolicyResource, functions: list[PolicyResource]
) -> PolicyResource | None:
    ref = _get(mapping.props, "functionName")
    if not isinstance(ref, str):
        return None
    for function in functions:
        names = {_get(function.props, k) for k in ("name", "arn", "qualifiedArn")}
        if ref in names or ref.rsplit(":", 1)[0] in names:
            return function
    return None


def _sqs_visibility_timeout(args: StackValidationArgs, report: Report) -> None:
    queues = {_get(q.props, "arn"): q for q in _of_type(args, _QUEUE)}
    functions = _of_type(args, _FUNCTION)
    for mapping in _of_type(args, _MAPPING):
        queue = queues.get(_get(mapping.props, "eventSourceArn"))
        function = _function_for(mapping, functions)
        if queue is None or function is None:
            continue
        visibility = _get(queue.props, "visibilityTimeoutSeconds")
        timeout = _get(function.props, "timeout")
        if UNKNOWN in (visibility, timeout):
            continue
        visibility = DEFAULT_QUEUE_VISIBILITY if visibility is None else visibility
        timeout = DEFAULT_FUNCTION_TIMEOUT if timeout is None else timeout
        if visibility < VISIBILITY_TIMEOUT_FACTOR * timeout:
            report(
                f"Queue {queue.name} hides a received message for {visibility:g}s but its "
                f"consumer {function.name} may run {timeout:g}s: set visibility_timeout_seconds "
                f"to at least {VISIBILITY_TIMEOUT_FACTOR * timeout:g} "
                f"({VISIBILITY_TIMEOUT_FACTOR}x the function timeout, Lambda Developer Guide, "
                "using Lambda with SQS).",
                queue.urn,
            )


def _is_sqs_mapping(args: Args) -> bool:
    source = _get(args.props, "eventSourceArn")
    if isinstance(source, str) and source != UNKNOWN_STRING_VALUE:
        return source.startswith("arn:aws:sqs:")
    # Unknown in preview: only streams (Kinesis, DynamoDB) need a starting position.
    return _get(args.props, "startingPosition") is None


def _lambda_sqs_batch_item_failures(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != _MAPPING or not _is_sqs_mapping(args):
        return
    types = _get(args.props, "functionResponseTypes")
    if types is UNKNOWN:
        return
    if "ReportBatchItemFailures" not in _strings(types):
        report(
            "The SQS event source mapping does not report batch item failures: set "
            "function_response_types=['ReportBatchItemFailures'] so one bad message does "
            "not send its whole batch back to the queue (Lambda Developer Guide, partial "
            "batch responses)."
        )


def _lambda_sqs_maximum_concurrency(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != _MAPPING or not _is_sqs_mapping(args):
        return
    concurrency = _get(args.props, "scalingConfig", "maximumConcurrency")
    if concurrency is None:
        report(
            "The SQS event source mapping has no maximum concurrency: set scaling_config="
            "{'maximum_concurrency': 2..1000} so a backlog cannot exhaust the account's "
            "concurrency or SES's sending rate."
        )


def _log_group_name(function: PolicyResource) -> Any:
    configured = _get(function.props, "loggingConfig", "logGroup")
    if configured is not None:
        return configured
    name = _get(function.props, "name")
    return f"/aws/lambda/{name}" if isinstance(name, str) else UNKNOWN


def _lambda_log_retention(args: StackValidationArgs, report: Report) -> None:
    groups = {_get(g.props, "name"): g for g in _of_type(args, _LOG_GROUP)}
    for function in _of_type(args, _FUNCTION):
        name = _log_group_name(function)
        if not isinstance(name, str) or name == UNKNOWN_STRING_VALUE:
            continue
        group = groups.get(name)
        retention = None if group is None else _get(group.props, "retentionInDays")
        if retention is UNKNOWN:
            continue
        if not retention:
            report(
                f"Function {function.name} logs to {name}, which "
                + ("the stack does not create" if group is None else "has no retention")
                + f": create aws.cloudwatch.LogGroup(name='{name}', retention_in_days=...) "
                "so logs (with recipient addresses) do not pile up forever.",
                function.urn,
            )


def _lambda_arm64(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != _FUNCTION:
        return
    architectures = _get(args.props, "architectures")
    if architectures is UNKNOWN:
        return
    if _strings(architectures) != ["arm64"]:
        report(
            "The function runs on x86_64: set architectures=['arm64'] (Graviton costs "
            "about 20% less per GB-second for the same I/O-bound sender)."
        )


# --- SES -------------------------------------------------------------------

_IDENTITY = "aws:sesv2/emailIdentity:EmailIdentity"
_DNS_RECORD = "cloudflare:index/dnsRecord:DnsRecord"


def _ses_dkim_rsa_2048(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != _IDENTITY:
        return
    dkim = _get(args.props, "dkimSigningAttributes")
    if dkim is UNKNOWN or _get(dkim, "domainSigningPrivateKey"):
        return  # BYODKIM: the key length is the key's own.
    length = _get(dkim, "nextSigningKeyLength")
    if length is not UNKNOWN and length != "RSA_2048_BIT":
        report(
            "Easy DKIM must sign with a 2048-bit key: set dkim_signing_attributes."
            "next_signing_key_length to 'RSA_2048_BIT' (SES Developer Guide, Easy DKIM)."
        )


def _ses_configuration_set(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != "aws:sesv2/configurationSet:ConfigurationSet":
        return
    reasons = _get(args.props, "suppressionOptions", "suppressedReasons")
    if reasons is not UNKNOWN and not {"BOUNCE", "COMPLAINT"} <= set(_strings(reasons)):
        report(
            "The configuration set must suppress BOUNCE and COMPLAINT addresses: set "
            "suppression_options.suppressed_reasons to ['BOUNCE', 'COMPLAINT'] so SES "
            "stops mailing addresses that hurt your reputation."
        )
    tls = _get(args.props, "deliveryOptions", "tlsPolicy")
    if tls is not UNKNOWN and tls != "REQUIRE":
        report(
            "The configuration set must require TLS: set delivery_options.tls_policy to "
            "'REQUIRE' so receipts and resets never travel in clear text."
        )


def _dkim_records_in_cloudflare(args: StackValidationArgs, report: Report) -> None:
    records = [
        (_get(r.props, "type"), _get(r.props, "name"), r) for r in _of_type(args, _DNS_RECORD)
    ]
    cnames = {name: r for type_, name, r in records if type_ == "CNAME" and isinstance(name, str)}
    for identity in _of_type(args, _IDENTITY):
        domain = _get(identity.props, "emailIdentity")
        tokens = _strings(_get(identity.props, "dkimSigningAttributes", "tokens"))
        if not isinstance(domain, str) or not tokens:
            continue  # Unknown until the identity exists (preview): checked on update.
        for token in tokens:
            name = f"{token}._domainkey.{domain}"
            record = cnames.get(name)
            if record is None:
                report(
                    f"DKIM token {token} of {domain} has no CNAME {name} in Cloudflare DNS: "
                    f"publish {name} CNAME {token}.dkim.amazonses.com (SES Developer Guide, "
                    "Easy DKIM).",
                    identity.urn,
                )
            elif _get(record.props, "proxied") is True:
                report(
                    f"The DKIM CNAME {name} is proxied: set proxied=False (DNS only), or "
                    "receivers cannot look up the DKIM key.",
                    record.urn,
                )
        dmarc = f"_dmarc.{domain}"
        if not any(
            type_ == "TXT" and name == dmarc and "v=DMARC1" in str(_get(r.props, "content"))
            for type_, name, r in records
        ):
            report(
                f"{domain} has no DMARC TXT record at {dmarc}: publish one (RFC 7489).",
                identity.urn,
            )


# --- Cloudflare and Vercel -------------------------------------------------

_CONSUMER = "cloudflare:index/queueConsumer:QueueConsumer"
_WORKER = "cloudflare:index/workersScript:WorkersScript"
_VERCEL_VAR = "vercel:index/projectEnvironmentVariable:ProjectEnvironmentVariable"
_VERCEL_VARS = "vercel:index/projectEnvironmentVariables:ProjectEnvironmentVariables"
MAX_CONSUMER_RETRIES = 100
"""Cloudflare Queues' own ceiling for ``max_retries``."""


def _cloudflare_consumer_dlq_and_retries(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != _CONSUMER:
        return
    if _get(args.props, "deadLetterQueue") is None:
        report(
            "The queue consumer has no dead_letter_queue: name a DLQ queue so messages that "
            "exhaust their retries are kept, not deleted (Cloudflare Queues, dead letter "
            "queues)."
        )
    retries = _get(args.props, "settings", "maxRetries")
    if retries is UNKNOWN:
        return
    if retries is None or not 0 <= retries <= MAX_CONSUMER_RETRIES:
        report(
            f"The queue consumer's settings.max_retries is {_number(retries)}: set it explicitly, "
            f"between 0 and {MAX_CONSUMER_RETRIES}, so a failing message is retried a "
            "bounded number of times before the DLQ."
        )


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else repr(value)


def _cloudflare_worker_secret_bindings(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != _WORKER:
        return
    for binding in _items(_get(args.props, "bindings")):
        name = _get(binding, "name")
        if isinstance(name, str) and looks_secret(name) and _get(binding, "type") == "plain_text":
            report(
                f"Worker binding {name} looks like a secret but is plain_text, readable in "
                "the dashboard and API: make it type 'secret_text' (Cloudflare Workers, "
                "secrets)."
            )


def _vercel_variables(args: Args) -> Iterator[tuple[Mapping[str, Any], str]]:
    """``(variable, path of its value)`` for each Vercel variable a resource declares."""
    if args.resource_type == _VERCEL_VAR:
        yield args.props, "value"
    elif args.resource_type == _VERCEL_VARS:
        for i, variable in enumerate(_items(_get(args.props, "variables"))):
            if isinstance(variable, Mapping):
                yield variable, f"variables[{i}].value"


def _vercel_secret_variables(args: Args) -> Iterator[tuple[str, bool, bool]]:
    """``(key, sensitive, development only)`` for each variable that holds a secret.

    A variable holds a secret when its key looks secret or, where the caller can
    see secretness (the offline plan sets ``secret_paths``), its value was made a
    Pulumi secret by the program. The SDK makes every ``ProjectEnvironmentVariable``
    value secret on its own, so there only the key tells.
    """
    secret_paths: frozenset[str] = getattr(args, "secret_paths", frozenset())
    for variable, value_path in _vercel_variables(args):
        key = _get(variable, "key")
        if not isinstance(key, str):
            continue
        secret_value = args.resource_type == _VERCEL_VARS and value_path in secret_paths
        if not (looks_secret(key) or secret_value):
            continue
        sensitive = _get(variable, "sensitive")
        if sensitive is UNKNOWN:
            continue
        targets = _strings(_get(variable, "targets"))
        yield key, sensitive is True, targets == ["development"]


def _vercel_secret_env_sensitive(args: ResourceValidationArgs, report: Report) -> None:
    for key, sensitive, development_only in _vercel_secret_variables(args):
        if not sensitive and not development_only:
            report(
                f"Vercel variable {key} holds a secret but is not sensitive: set "
                "sensitive=True so its value cannot be read back from the dashboard or API "
                "(Vercel docs, sensitive environment variables)."
            )


def _vercel_development_secret_env(args: ResourceValidationArgs, report: Report) -> None:
    for key, sensitive, development_only in _vercel_secret_variables(args):
        if not sensitive and development_only:
            report(
                f"Vercel variable {key} holds a secret readable by the team: Vercel refuses "
                "sensitive values for the development target, so give development a "
                "low-privilege credential of its own."
            )


# --- The pack --------------------------------------------------------------

_MANDATORY = EnforcementLevel.MANDATORY
_ADVISORY = EnforcementLevel.ADVISORY


def _resource(
    name: str, description: str, validate: Callable[..., None], level: EnforcementLevel = _MANDATORY
) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(
        name=name, description=description, enforcement_level=level, validate=validate
    )


def _stack(name: str, description: str, validate: Callable[..., None]) -> StackValidationPolicy:
    return StackValidationPolicy(
        name=name, description=description, enforcement_level=_MANDATORY, validate=validate
    )


POLICIES: list[ResourceValidationPolicy | StackValidationPolicy] = [
    _resource(
        "iam-no-wildcard-actions",
        "IAM policies allow no '*' or 'service:*' action.",
        _iam_no_wildcard_actions,
    ),
    _resource(
        "iam-no-wildcard-resources",
        "IAM policies grant SES, SQS, DynamoDB and SNS actions on named resources only.",
        _iam_no_wildcard_resources,
    ),
    _resource(
        "iam-ses-send-requires-from-address",
        "Every SES send permission is limited by a ses:FromAddress condition.",
        _iam_ses_send_from_address,
    ),
    _resource(
        "iam-oidc-trust-pinned",
        "OIDC trust policies pin aud and sub to one Vercel project.",
        _iam_oidc_trust_pinned,
    ),
    _stack(
        "sqs-redrive-to-dlq",
        "Every queue that is not a DLQ redrives to one after 3 to 10 receives.",
        _sqs_redrive_to_dlq,
    ),
    _stack(
        "sqs-dlq-retention-14-days",
        "Dead-letter queues keep messages 14 days.",
        _sqs_dlq_retention,
    ),
    _resource(
        "sqs-encryption-at-rest",
        "SQS queues are encrypted at rest (SSE-SQS or KMS).",
        _sqs_encryption,
    ),
    _stack(
        "sqs-visibility-timeout-6x-function-timeout",
        "A queue's visibility timeout is at least 6x its consuming function's timeout.",
        _sqs_visibility_timeout,
    ),
    _resource(
        "lambda-sqs-report-batch-item-failures",
        "SQS event source mappings report batch item failures.",
        _lambda_sqs_batch_item_failures,
    ),
    _resource(
        "lambda-sqs-maximum-concurrency",
        "SQS event source mappings cap their concurrency.",
        _lambda_sqs_maximum_concurrency,
    ),
    _stack(
        "lambda-log-retention",
        "Every function logs to a log group with a retention period.",
        _lambda_log_retention,
    ),
    _resource(
        "lambda-arm64",
        "Functions run on arm64 (Graviton).",
        _lambda_arm64,
        _ADVISORY,
    ),
    _resource(
        "ses-dkim-rsa-2048",
        "SES identities sign with Easy DKIM using a 2048-bit key.",
        _ses_dkim_rsa_2048,
    ),
    _resource(
        "ses-configuration-set-suppression-and-tls",
        "SES configuration sets suppress bounces and complaints and require TLS.",
        _ses_configuration_set,
    ),
    _stack(
        "ses-dkim-and-dmarc-published",
        "Every DKIM token has a DNS-only CNAME in Cloudflare and a DMARC record exists.",
        _dkim_records_in_cloudflare,
    ),
    _resource(
        "cloudflare-queue-consumer-dlq-and-retries",
        "Cloudflare queue consumers have a DLQ and at most 100 retries.",
        _cloudflare_consumer_dlq_and_retries,
    ),
    _resource(
        "cloudflare-worker-secret-bindings",
        "Worker bindings that look secret are secret_text, never plain_text.",
        _cloudflare_worker_secret_bindings,
    ),
    _resource(
        "vercel-secret-env-sensitive",
        "Vercel variables holding secrets are sensitive.",
        _vercel_secret_env_sensitive,
    ),
    _resource(
        "vercel-development-secret-env",
        "Secrets in development-only Vercel variables (which cannot be sensitive) are flagged.",
        _vercel_development_secret_env,
        _ADVISORY,
    ),
]
"""Every rule of the pack, in the order ``docs/policies.md`` lists them."""


# --- Stack outputs (offline plan only) -------------------------------------

# The SDK wraps these inputs in a secret whatever the program passes, so their
# secretness says nothing about the value.
_SDK_SECRET_INPUTS = {(_VERCEL_VAR, "value"), (_VERCEL_VAR, "valueWo")}


def check_stack_outputs(recording: Recording) -> list[Violation]:
    """Stack outputs that expose a secret in plain text.

    CrossGuard rules never see stack outputs, so this runs only in the offline
    plan; in the pack, the per-resource secret rules (Worker bindings, Vercel
    variables) guard the same values where they are used. An output is flagged
    when it is not a secret but its name looks secret, or its value (or a string
    inside it) is a value some resource received as a secret.
    """
    from .mocking import Secret

    secrets: set[str] = set()

    def collect(value: Any, inside_secret: bool) -> None:
        if isinstance(value, Secret):
            collect(value.value, True)
        elif isinstance(value, Mapping):
            for v in value.values():
                collect(v, inside_secret)
        elif isinstance(value, list):
            for v in value:
                collect(v, inside_secret)
        elif inside_secret and isinstance(value, str) and value:
            secrets.add(value)

    for resource in recording.resources:
        for key, value in resource.inputs.items():
            if (resource.type, key) not in _SDK_SECRET_INPUTS:
                collect(value, False)

    def strings(value: Any) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, Mapping):
            for v in value.values():
                yield from strings(v)
        elif isinstance(value, list):
            for v in value:
                yield from strings(v)

    violations = []
    urn = recording.stack_urn or "stack"
    for key, value in recording.stack_outputs.items():
        if isinstance(value, Secret):
            continue
        if looks_secret(key):
            reason = "its name says it holds a secret"
        elif any(s in secrets for s in strings(value)):
            reason = "it holds a value that is a secret where the stack uses it"
        else:
            continue
        violations.append(
            Violation(
                STACK_OUTPUTS_POLICY,
                f"Stack output {key} is plain text but {reason}: export it with "
                "pulumi.Output.secret(...) so it is encrypted in the state and masked.",
                urn,
                "mandatory",
            )
        )
    return violations


# --- The offline evaluation ------------------------------------------------


class _Resource:
    """A recorded resource in the shape pulumi_policy hands to a rule."""

    def __init__(
        self,
        urn: str,
        type_: str,
        name: str,
        props: Any,
        secret_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.urn = urn
        self.resource_type = type_
        self.name = name
        self.props = props
        self.secret_paths = secret_paths
        self.opts = None


def _level(policy: ResourceValidationPolicy | StackValidationPolicy) -> Level:
    return "advisory" if policy.enforcement_level == EnforcementLevel.ADVISORY else "mandatory"


def _analyzer_view(value: Any) -> Any:
    """Recorded values as the analyzer sees them: secrets unwrapped, unknowns as sentinels."""
    from .mocking import UNKNOWN as RECORDED_UNKNOWN
    from .mocking import Secret

    if isinstance(value, Secret):
        return _analyzer_view(value.value)
    if value is RECORDED_UNKNOWN:
        return UNKNOWN_STRING_VALUE
    if isinstance(value, dict):
        return {k: _analyzer_view(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_analyzer_view(v) for v in value]
    return value


def _secret_paths(value: Any, path: str = "") -> Iterator[str]:
    from .mocking import Secret

    if isinstance(value, Secret):
        yield path
        yield from _secret_paths(value.value, path)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _secret_paths(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _secret_paths(v, f"{path}[{i}]")


def evaluate(
    recording: Recording,
    policies: Iterable[ResourceValidationPolicy | StackValidationPolicy] = POLICIES,
    *,
    stack_outputs: bool = True,
) -> list[Violation]:
    """Run the rules on what a program registered under the mocks.

    Resource rules see each custom resource's inputs; stack rules see every
    resource with its outputs (as ``pulumi preview`` would after creation). Values
    reach the rules as the analyzer gives them: secrets unwrapped, unknowns behind
    the unknown-checking proxy. A rule that trips over an unknown value is
    reported as an advisory "can't run during preview", as the analyzer does. With
    ``stack_outputs``, :func:`check_stack_outputs` runs too.
    """
    custom = [r for r in recording.resources if r.custom]
    resources = [
        _Resource(
            r.urn,
            r.type,
            r.name,
            unknown_checking_proxy(_analyzer_view(r.inputs)),
            frozenset(_secret_paths(r.inputs)),
        )
        for r in custom
    ]
    stack_view = [
        _Resource(
            r.urn, r.type, r.name, unknown_checking_proxy(_analyzer_view({**r.inputs, **r.outputs}))
        )
        for r in custom
    ]
    violations: list[Violation] = []

    def run(policy: Any, validate: Callable[..., None], args: Any, urn: str) -> None:
        def report(message: str, at: str | None = None) -> None:
            violations.append(Violation(policy.name, message, at or urn, _level(policy)))

        try:
            validate(args, report)
        except UnknownValueError as err:
            violations.append(
                Violation(policy.name, f"can't run during preview: {err.message}", urn, "advisory")
            )

    for policy in policies:
        for validate in _validators(policy):
            if isinstance(policy, ResourceValidationPolicy):
                for resource in resources:
                    run(policy, validate, resource, resource.urn)
            else:
                args = StackValidationArgs(stack_view, None)  # type: ignore[arg-type]
                run(policy, validate, args, recording.stack_urn or "stack")
    if stack_outputs:
        violations += check_stack_outputs(recording)
    return violations


def _validators(policy: Any) -> list[Callable[..., None]]:
    validate = policy.validate
    return list(validate) if isinstance(validate, list) else [validate]
