"""Rules on Cloudflare resources: queue consumers and Worker bindings."""

from __future__ import annotations

from pulumi_policy import ResourceValidationArgs

from .engine import UNKNOWN, Report, get, holds_secret, items, looks_secret, number

CONSUMER = "cloudflare:index/queueConsumer:QueueConsumer"
WORKER = "cloudflare:index/workersScript:WorkersScript"
MAX_CONSUMER_RETRIES = 100
"""Cloudflare Queues' own ceiling for ``max_retries``."""
MAX_CONSUMER_CONCURRENCY = 250
"""Cloudflare Queues' ceiling for concurrent consumer invocations per queue."""
SECRET_BINDING_TYPES = ("secret_text",)
# Every field of a binding but these may carry the bound value (text, json, ...).
_BINDING_META = ("name", "type")


def cloudflare_consumer_dlq_and_retries(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != CONSUMER:
        return
    if get(args.props, "deadLetterQueue") is None:
        report(
            "The queue consumer has no dead_letter_queue: name a DLQ queue so messages that "
            "exhaust their retries are kept, not deleted (Cloudflare Queues, dead letter "
            "queues)."
        )
    retries = get(args.props, "settings", "maxRetries")
    if retries is UNKNOWN:
        return
    if retries is None or not 0 <= retries <= MAX_CONSUMER_RETRIES:
        report(
            f"The queue consumer's settings.max_retries is {number(retries)}: set it explicitly, "
            f"between 0 and {MAX_CONSUMER_RETRIES}, so a failing message is retried a "
            "bounded number of times before the DLQ."
        )


def cloudflare_consumer_max_concurrency(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != CONSUMER:
        return
    concurrency = get(args.props, "settings", "maxConcurrency")
    if concurrency is UNKNOWN:
        return
    if (
        not isinstance(concurrency, int | float)
        or isinstance(concurrency, bool)
        or not 1 <= concurrency <= MAX_CONSUMER_CONCURRENCY
    ):
        report(
            f"The queue consumer's settings.max_concurrency is {number(concurrency)}: set it "
            f"between 1 and {MAX_CONSUMER_CONCURRENCY}; unset, Cloudflare scales consumers "
            "to the platform maximum and a backlog can exceed SES's sending rate "
            "(Cloudflare Queues, consumer concurrency)."
        )


def cloudflare_worker_secret_bindings(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != WORKER:
        return
    for binding in items(get(args.props, "bindings")):
        name = get(binding, "name")
        kind = get(binding, "type")
        if not isinstance(name, str) or kind is UNKNOWN or kind in SECRET_BINDING_TYPES:
            continue
        secret_value = any(
            holds_secret(get(binding, key)) for key in binding if key not in _BINDING_META
        )
        if secret_value or (kind in ("plain_text", "json") and looks_secret(name)):
            reason = "holds a Pulumi secret" if secret_value else "looks like a secret"
            report(
                f"Worker binding {name} {reason} but is {kind}, readable in the dashboard "
                "and API: make it type 'secret_text' (Cloudflare Workers, secrets)."
            )
