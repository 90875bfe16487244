"""SQS (SES events) → message history in DynamoDB and signed webhooks to the app.

Each record ends one of three ways:
- processed: the event is in its message's timeline (once, however often it arrives),
  the status moved if the event is more significant, and every webhook endpoint took it;
- retried: a failure (DynamoDB, an endpoint that is down or answers non-2xx) makes the
  record a batch item failure, after hiding it for an exponentially growing delay
  (ChangeMessageVisibility: SQS redelivers it then, not at once);
- dead-lettered: a body that is not an SES event, or an event still failing on its
  last attempt, is copied to the events DLQ with `error_class` / `error_reason`
  attributes and acknowledged. The queue's own redrive (one receive later) is the
  backstop if the function itself keeps crashing.

Idempotency is the history's own conditional writes (an event's timeline item is put
only if absent; the status only moves up), not Powertools' idempotency utility: that
one stores a result per payload, whereas here a retried event must still reach the
endpoints that missed it. Webhooks are at least once: receivers dedupe on `webhook-id`.

An event carrying the senders' `queued_at` tag (when the message entered the send queue)
also puts the message's `queued` timeline item, once however many events carry it, and
the status `queued` where there is none yet (history.py). No webhook is sent for
`queued`: webhooks are one per SES event, and the app did the enqueue itself. A
malformed `queued_at` is logged and ignored; the event is processed as if untagged.
"""

from __future__ import annotations

import os
import random
import threading
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from .config import EventsConfig
from .errors import InvalidEventError, WebhookError, WebhooksUndeliveredError
from .history import History
from .ses_event import SesEvent, parse_event
from .webhooks import body_of, deliver, endpoint_key, webhook_id

__all__ = ["backoff_seconds", "handler"]

_MAX_REASON_CHARS = 1000
# ChangeMessageVisibility accepts at most 12 hours (SQS API Reference).
_MAX_VISIBILITY_SECONDS = 43200

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "serverless-mail-events"))

CONFIG = EventsConfig.from_env()

_session = boto3.session.Session()
# SQS redelivery is the retry; one botocore retry absorbs a blip.
_boto_config = BotoConfig(
    retries={"mode": "standard", "max_attempts": 2}, connect_timeout=3, read_timeout=10
)
_clients: dict[str, Any] = {}
_lock = threading.Lock()


def _client(service: str) -> Any:
    """A boto3 client (or the DynamoDB table), built once on first use."""
    with _lock:
        if service not in _clients:
            if service == "history":
                resource = _session.resource("dynamodb", config=_boto_config)
                _clients[service] = resource.Table(CONFIG.history_table)
            else:
                _clients[service] = _session.client(service, config=_boto_config)
        return _clients[service]


def backoff_seconds(attempt: int, base: int, cap: int, rng: random.Random | None = None) -> int:
    """Delay before attempt ``attempt + 1``: ``base * 2**(attempt - 1)``, capped, with
    "equal jitter" (half fixed, half random) so endpoints that come back are not hit
    by every retry at once (AWS Architecture Blog, "Exponential Backoff And Jitter")."""
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0), _MAX_VISIBILITY_SECONDS)
    half = ceiling // 2
    return half + (rng or random).randint(0, ceiling - half)


def _process(event: SesEvent) -> str:
    history = History(_client("history"), CONFIG.history_ttl_days) if event.message_id else None
    delivered: frozenset[str] = frozenset()
    outcome = "recorded"
    if history is not None:
        recorded = history.record(event)
        delivered = recorded.webhooks_delivered
        outcome = "duplicate" if recorded.duplicate else "recorded"
    else:
        logger.info(
            "event without a message_id tag: not in the history",
            extra={"ses_message_id": event.ses_message_id, "event_type": event.event_type},
        )
    pending = [u for u in CONFIG.webhook_urls if endpoint_key(u) not in delivered]
    if not pending:
        return outcome
    assert CONFIG.webhook_secret is not None  # checked with the URLs at cold start
    body, msg_id = body_of(event), webhook_id(event)
    failures: list[WebhookError] = []
    for url in pending:
        try:
            deliver(url, CONFIG.webhook_secret, msg_id, body, CONFIG.webhook_timeout_seconds)
        except WebhookError as exc:
            failures.append(exc)
            continue
        if history is not None:
            history.mark_delivered(event, endpoint_key(url))
    if failures:
        raise WebhooksUndeliveredError(failures)
    return outcome


def _describe(exc: Exception) -> tuple[str, str]:
    if isinstance(exc, WebhooksUndeliveredError):
        return exc.error_class, exc.reason
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return str(error.get("Code", "ClientError")), str(error.get("Message", exc))
    return type(exc).__name__, str(exc)


def _record_handler(record: SQSRecord) -> str:
    attempt = int(record.attributes.approximate_receive_count or 1)
    log: dict[str, Any] = {"sqs_message_id": record.message_id, "attempt": attempt}
    try:
        event = parse_event(record.body)
    except InvalidEventError as exc:
        return _dead_letter(record, None, exc.error_class, exc.reason, log)
    log |= {
        "message_id": event.message_id,
        "ses_message_id": event.ses_message_id,
        "event_type": event.event_type,
        "webhook_id": webhook_id(event),
    }
    for reason in event.ignored:
        logger.warning("part of the event ignored", extra={**log, "ignored": reason})
    try:
        outcome = _process(event)
    except Exception as exc:
        error_class, reason = _describe(exc)
        if attempt >= CONFIG.max_attempts:
            return _dead_letter(record, event, error_class, reason, log)
        delay = backoff_seconds(attempt, CONFIG.retry_base_seconds, CONFIG.retry_max_seconds)
        _delay_redelivery(record, delay, log)
        logger.warning(
            "event not processed, SQS will redeliver it",
            extra={
                **log,
                "outcome": "retry",
                "retry_in_seconds": delay,
                "error_class": error_class,
                "error_reason": reason[:_MAX_REASON_CHARS],
            },
        )
        raise
    logger.info("event processed", extra={**log, "outcome": outcome})
    return outcome


def _delay_redelivery(record: SQSRecord, delay: int, log: dict[str, Any]) -> None:
    try:
        _client("sqs").change_message_visibility(
            QueueUrl=CONFIG.queue_url, ReceiptHandle=record.receipt_handle, VisibilityTimeout=delay
        )
    except Exception:
        # The record is still retried, after the queue's own visibility timeout.
        logger.exception("could not delay the redelivery", extra=log)


def _dead_letter(
    record: SQSRecord, event: SesEvent | None, error_class: str, reason: str, log: dict[str, Any]
) -> str:
    """Copy the original body to the DLQ with its reason, then let the record be acked."""
    reason = reason[:_MAX_REASON_CHARS] or error_class
    attributes = {
        "error_class": {"DataType": "String", "StringValue": error_class},
        "error_reason": {"DataType": "String", "StringValue": reason},
        "source_message_id": {"DataType": "String", "StringValue": record.message_id},
        "attempts": {"DataType": "Number", "StringValue": str(log["attempt"])},
    }
    if event is not None:
        attributes["webhook_id"] = {"DataType": "String", "StringValue": webhook_id(event)}
        if event.message_id is not None:
            attributes["email_id"] = {"DataType": "String", "StringValue": event.message_id}
    extra = {**log, "error_class": error_class, "error_reason": reason}
    try:
        _client("sqs").send_message(
            QueueUrl=CONFIG.dead_letter_queue_url,
            MessageBody=record.body,
            MessageAttributes=attributes,
        )
    except Exception:
        # Not acked: SQS redelivers it and its redrive policy moves it to the same DLQ
        # (without the attributes); the reason is still in this log line.
        logger.exception("could not dead-letter an event", extra={**extra, "outcome": "retry"})
        raise
    logger.warning("event moved to the DLQ", extra={**extra, "outcome": "dead_lettered"})
    return "dead_lettered"


_processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point for the SQS event source (with `ReportBatchItemFailures`)."""
    return dict(
        process_partial_response(
            event=event, record_handler=_record_handler, processor=_processor, context=context
        )
    )
