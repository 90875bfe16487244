"""Rules on AWS resources: resource policies (SQS, SNS, KMS, Lambda permissions),
SQS queues and their consumers, Lambda functions, and SES.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, StackValidationArgs
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from ..email_domain import DMARC_TAG
from .documents import KEY, RESOURCE, TRUST, Statement, parse_document, statements
from .engine import UNKNOWN, Args, Report, get, number, of_type, strings

# --- Resource policies -----------------------------------------------------

PERMISSION = "aws:lambda/permission:Permission"
SOURCE_KEYS = ("aws:sourcearn", "aws:sourceaccount")
# Operators that test the request positively: no Not..., no ...IfExists (which passes
# when the service sends no source) and no set operators (IAM User Guide, condition
# operators).
_SOURCE_OPERATORS = ("StringEquals", "StringLike", "ArnEquals", "ArnLike")


def _scoped_to_source(statement: Statement) -> bool:
    for key in SOURCE_KEYS:
        values = statement.condition_values(key, _SOURCE_OPERATORS)
        if values and all(v not in ("*", "") for v in values):
            return True
    return False


def resource_policy_no_public_principal(args: ResourceValidationArgs, report: Report) -> None:
    for s in statements(args, (RESOURCE, KEY, TRUST)):
        if s.allow and s.public:
            report(
                f"{s.where} allows Principal '*' (statement {s.sid or 'without Sid'}): name "
                "the accounts, roles or service principals that need access; a public "
                "principal lets any AWS account in (IAM User Guide, Principal element)."
            )
    if args.resource_type == PERMISSION and get(args.props, "principal") == "*":
        report(
            "The Lambda permission's principal is '*': name the service or account that "
            "invokes the function (Lambda Developer Guide, resource-based policies)."
        )


def resource_policy_service_principal_scoped(args: ResourceValidationArgs, report: Report) -> None:
    for s in statements(args, (RESOURCE, KEY)):
        if s.allow and s.services and not _scoped_to_source(s):
            report(
                f"{s.where} lets the service principal {', '.join(s.services)} in without "
                "an `aws:SourceArn` or `aws:SourceAccount` condition: add one (StringEquals "
                "or ArnLike) so another account's resource cannot make the service act on "
                "yours (IAM User Guide, the confused deputy problem)."
            )
    if args.resource_type == PERMISSION:
        principal = get(args.props, "principal")
        if isinstance(principal, str) and principal.endswith(".amazonaws.com"):
            source = [get(args.props, k) for k in ("sourceArn", "sourceAccount")]
            if UNKNOWN in source:
                return
            if not any(isinstance(v, str) and v and v != "*" for v in source):
                report(
                    f"The Lambda permission lets {principal} invoke the function without "
                    "source_arn or source_account: set one, so only your resource can "
                    "trigger it (Lambda Developer Guide, the confused deputy problem)."
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
MAPPING_CONCURRENCY = (2, 1000)
"""The range Lambda accepts for an SQS mapping's ``maximum_concurrency``."""


def _redrive(queue: Args) -> Mapping[str, Any] | None:
    return parse_document(get(queue.props, "redrivePolicy"))


def _dlq_arns(queues: list[PolicyResource]) -> set[str]:
    targets = set()
    for queue in queues:
        target = get(_redrive(queue), "deadLetterTargetArn")
        if isinstance(target, str):
            targets.add(target)
    return targets


def _dead_letter_queues(args: StackValidationArgs) -> tuple[list[PolicyResource], set[str]]:
    queues = of_type(args, _QUEUE)
    targets = _dlq_arns(queues)
    return [q for q in queues if get(q.props, "arn") in targets], targets


def sqs_redrive_to_dlq(args: StackValidationArgs, report: Report) -> None:
    queues = of_type(args, _QUEUE)
    targets = _dlq_arns(queues)
    low, high = MAX_RECEIVE_COUNT
    for queue in queues:
        arn = get(queue.props, "arn")
        if arn is UNKNOWN or arn in targets:
            continue  # A dead-letter queue (or not knowable yet).
        raw = get(queue.props, "redrivePolicy")
        if raw is UNKNOWN or raw == UNKNOWN_STRING_VALUE:
            continue
        redrive = _redrive(queue)
        if redrive is None or not isinstance(get(redrive, "deadLetterTargetArn"), str):
            report(
                f"Queue {queue.name} has no dead-letter queue and no queue redrives to it: "
                "set redrive_policy {'deadLetterTargetArn': <dlq arn>, 'maxReceiveCount': "
                f"{low}..{high}}} so a poison message stops being retried (SQS Developer "
                "Guide, dead-letter queues).",
                queue.urn,
            )
            continue
        count = get(redrive, "maxReceiveCount")
        try:
            receives = int(count)
        except (TypeError, ValueError):
            receives = -1
        if not low <= receives <= high:
            report(
                f"Queue {queue.name} redrives after maxReceiveCount={number(count)}: use an "
                f"integer between {low} and {high} (enough retries for throttling, few enough "
                "that a poison message reaches the DLQ quickly).",
                queue.urn,
            )


def sqs_dlq_retention(args: StackValidationArgs, report: Report) -> None:
    dlqs, _ = _dead_letter_queues(args)
    for dlq in dlqs:
        retention = get(dlq.props, "messageRetentionSeconds")
        if retention is UNKNOWN:
            continue
        if retention != DLQ_RETENTION_SECONDS:
            report(
                f"Dead-letter queue {dlq.name} keeps messages {retention or 345600:g} seconds: "
                f"set message_retention_seconds={DLQ_RETENTION_SECONDS} (14 days, the maximum) "
                "so failed mail survives until someone redrives it.",
                dlq.urn,
            )


def sqs_encryption(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != _QUEUE:
        return
    sse = get(args.props, "sqsManagedSseEnabled")
    kms = get(args.props, "kmsMasterKeyId")
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
    ref = get(mapping.props, "functionName")
    if not isinstance(ref, str):
        return None
    for function in functions:
        names = {get(function.props, k) for k in ("name", "arn", "qualifiedArn")}
        if ref in names or ref.rsplit(":", 1)[0] in names:
            return function
    return None


def sqs_visibility_timeout(args: StackValidationArgs, report: Report) -> None:
    queues = {get(q.props, "arn"): q for q in of_type(args, _QUEUE)}
    functions = of_type(args, _FUNCTION)
    for mapping in of_type(args, _MAPPING):
        queue = queues.get(get(mapping.props, "eventSourceArn"))
        function = _function_for(mapping, functions)
        if queue is None or function is None:
            continue
        visibility = get(queue.props, "visibilityTimeoutSeconds")
        timeout = get(function.props, "timeout")
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
    source = get(args.props, "eventSourceArn")
    if isinstance(source, str) and source != UNKNOWN_STRING_VALUE:
        return source.startswith("arn:aws:sqs:")
    # Unknown in preview: only streams (Kinesis, DynamoDB) need a starting position.
    return get(args.props, "startingPosition") is None


def lambda_sqs_batch_item_failures(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != _MAPPING or not _is_sqs_mapping(args):
        return
    types = get(args.props, "functionResponseTypes")
    if types is UNKNOWN:
        return
    if "ReportBatchItemFailures" not in strings(types):
        report(
            "The SQS event source mapping does not report batch item failures: set "
            "function_response_types=['ReportBatchItemFailures'] so one bad message does "
            "not send its whole batch back to the queue (Lambda Developer Guide, partial "
            "batch responses)."
        )


def lambda_sqs_maximum_concurrency(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != _MAPPING or not _is_sqs_mapping(args):
        return
    concurrency = get(args.props, "scalingConfig", "maximumConcurrency")
    if concurrency is UNKNOWN:
        return
    low, high = MAPPING_CONCURRENCY
    if not isinstance(concurrency, int | float) or not low <= concurrency <= high:
        report(
            f"The SQS event source mapping's maximum concurrency is {number(concurrency)}: "
            f"set scaling_config={{'maximum_concurrency': {low}..{high}}} so a backlog "
            "cannot exhaust the account's concurrency or SES's sending rate (Lambda "
            "Developer Guide, maximum concurrency for SQS event sources)."
        )


def _log_group_name(function: PolicyResource) -> Any:
    configured = get(function.props, "loggingConfig", "logGroup")
    if configured is not None:
        return configured
    name = get(function.props, "name")
    return f"/aws/lambda/{name}" if isinstance(name, str) else UNKNOWN


def lambda_log_retention(args: StackValidationArgs, report: Report) -> None:
    groups = {get(g.props, "name"): g for g in of_type(args, _LOG_GROUP)}
    for function in of_type(args, _FUNCTION):
        name = _log_group_name(function)
        if not isinstance(name, str) or name == UNKNOWN_STRING_VALUE:
            continue
        group = groups.get(name)
        retention = None if group is None else get(group.props, "retentionInDays")
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


def lambda_arm64(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != _FUNCTION:
        return
    architectures = get(args.props, "architectures")
    if architectures is UNKNOWN:
        return
    if strings(architectures) != ["arm64"]:
        report(
            "The function runs on x86_64: set architectures=['arm64'] (Graviton costs "
            "about 20% less per GB-second for the same I/O-bound sender)."
        )


# --- SES -------------------------------------------------------------------

_IDENTITY = "aws:sesv2/emailIdentity:EmailIdentity"
_DNS_RECORD = "cloudflare:index/dnsRecord:DnsRecord"


def ses_dkim_rsa_2048(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != _IDENTITY:
        return
    dkim = get(args.props, "dkimSigningAttributes")
    if dkim is UNKNOWN or get(dkim, "domainSigningPrivateKey"):
        return  # BYODKIM: the key length is the key's own.
    length = get(dkim, "nextSigningKeyLength")
    if length is not UNKNOWN and length != "RSA_2048_BIT":
        report(
            "Easy DKIM must sign with a 2048-bit key: set dkim_signing_attributes."
            "next_signing_key_length to 'RSA_2048_BIT' (SES Developer Guide, Easy DKIM)."
        )


def ses_configuration_set(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != "aws:sesv2/configurationSet:ConfigurationSet":
        return
    reasons = get(args.props, "suppressionOptions", "suppressedReasons")
    if reasons is not UNKNOWN and not {"BOUNCE", "COMPLAINT"} <= set(strings(reasons)):
        report(
            "The configuration set must suppress BOUNCE and COMPLAINT addresses: set "
            "suppression_options.suppressed_reasons to ['BOUNCE', 'COMPLAINT'] so SES "
            "stops mailing addresses that hurt your reputation."
        )
    tls = get(args.props, "deliveryOptions", "tlsPolicy")
    if tls is not UNKNOWN and tls != "REQUIRE":
        report(
            "The configuration set must require TLS: set delivery_options.tls_policy to "
            "'REQUIRE' so receipts and resets never travel in clear text."
        )


def dkim_records_in_cloudflare(args: StackValidationArgs, report: Report) -> None:
    records = [(get(r.props, "type"), get(r.props, "name"), r) for r in of_type(args, _DNS_RECORD)]
    cnames = {name: r for type_, name, r in records if type_ == "CNAME" and isinstance(name, str)}
    for identity in of_type(args, _IDENTITY):
        domain = get(identity.props, "emailIdentity")
        tokens = strings(get(identity.props, "dkimSigningAttributes", "tokens"))
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
            elif get(record.props, "proxied") is True:
                report(
                    f"The DKIM CNAME {name} is proxied: set proxied=False (DNS only), or "
                    "receivers cannot look up the DKIM key.",
                    record.urn,
                )
        dmarc = f"_dmarc.{domain}"
        if get(identity.props, "tags", DMARC_TAG) == "managed-elsewhere":
            # DmarcArgs.publish false: the zone's own DMARC record is kept on purpose.
            continue
        if not any(
            type_ == "TXT" and name == dmarc and "v=DMARC1" in str(get(r.props, "content"))
            for type_, name, r in records
        ):
            report(
                f"{domain} has no DMARC TXT record at {dmarc}: publish one (RFC 7489).",
                identity.urn,
            )
