"""SQS → SES v2 sender with partial batch responses, idempotency and a reasoned DLQ.

Each record ends one of four ways:
- sent (or already sent: idempotency keyed on the body's `id`, not the SQS messageId,
  so a producer's retry with the same id sends once);
- deferred: the instance's share of the SES rate (`EMAIL_MAX_SEND_RATE`, a token
  bucket of recipients) has no room for it before the invocation ends, or SES throttled
  it, or the account's daily quota is used up. A copy goes back on the queue with
  `DelaySeconds` (exponential backoff with jitter for throttling, the maximum for the
  daily quota) and a hop count, and the record is acknowledged: SQS's receive count only
  grows, so waiting this way never spends the original's receives toward the DLQ;
- transient failure (5xx, network, idempotency record in progress): reported in
  `batchItemFailures`, SQS redelivers it and redrives it to the DLQ after
  maxReceiveCount;
- rejected (invalid body, a permanent SES error, an `id` reused for a different
  message, throttled past the hop limit, held past a day by the daily quota): copied to
  the DLQ with `error_class` / `error_reason` attributes and acknowledged, so it is
  neither retried in a loop nor lost; if that copy fails, it becomes a batch item
  failure instead.
  An invalid body includes a mailbox that is not exactly one RFC 5322 mailbox or has an
  address-like name, and a header off the allow-list (message.py, address.py): the
  reason ends in the refusal code, e.g. `[display-name-address]`.

SES receives every address re-serialised by address.py, never the producer's text.

Every send carries the SES tag `queued_at`: when the message entered the queue (the
record's `SentTimestamp`; a re-enqueued copy carries the original's as its `queued_at`
attribute), so the events processor can record the message's `queued` item. It is kept
out of the idempotency payload: a producer's retry of the same id is still a duplicate.
"""

from __future__ import annotations

import base64
import math
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyItemAlreadyExistsError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from botocore.config import Config as BotoConfig

from .config import SenderConfig
from .errors import (
    DailyQuotaError,
    DeferSend,
    InvalidMessageError,
    PermanentSendError,
    ThrottledSendError,
    TransientSendError,
)
from .message import Email, build_send_email_request, parse_message, recipient_count
from .message_tag import decode_queued_at
from .pacing import MAX_DELAY_SECONDS, TokenBucket, backoff_delay
from .schema import load_schema
from .ses_errors import classify

__all__ = ["handler"]

# A producer may retry for a day (e.g. a nightly job re-run); past that the record
# expires through the table's TTL on `expiration`.
IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60
# SQS message attribute values are capped with the body at the queue's message size;
# a reason longer than this says nothing more.
_MAX_REASON_CHARS = 1000
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@")
# Throttled sends wait base * 2^(hop-1) seconds (half of it jittered), capped at SQS's
# 900 s delay; past MAX_THROTTLE_HOPS (about 45 minutes of waiting) SES is not
# throttling a burst any more and the message goes to the DLQ with its reason. SES's own
# advice is to wait "up to 10 minutes" and retry (SES Developer Guide, "Errors related
# to the sending quotas for your Amazon SES account").
THROTTLE_BASE_SECONDS = 2.0
MAX_THROTTLE_HOPS = 12
# The daily quota is a rolling 24-hour window: a held message comes back every 900 s
# and is dead-lettered with its reason only once it has been held longer than a window.
QUOTA_HOLD_LIMIT_SECONDS = 25 * 60 * 60
# Time an invocation keeps for the last send to finish (the SES client's connect and
# read timeouts, below): a paced send that cannot start before that is deferred.
SEND_MARGIN_SECONDS = 15.0
METRICS_NAMESPACE = "serverless-mail"
# Hop counts, and the original's enqueue time, travel as message attributes of the
# re-enqueued copy.
THROTTLE_HOPS = "throttle_hops"
QUOTA_HELD_SINCE = "quota_held_since"
# SES refuses every send while sending is paused for the configuration set or the
# account (SES API v2 Reference, SendEmail errors).
SENDING_PAUSED_CODES = frozenset({"SendingPausedException", "AccountSuspendedException"})
QUEUED_AT = "queued_at"
# SQS keeps a message at most 14 days (MessageRetentionPeriod's maximum, SQS Developer
# Guide): an enqueue time claimed further back than that was not our copy's.
MAX_QUEUED_AGE_MS = 14 * 24 * 60 * 60 * 1000

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "serverless-mail-sender"))

CONFIG = SenderConfig.from_env()
SCHEMA = load_schema()

_session = boto3.session.Session()
# SQS redelivery is the retry: one botocore retry absorbs a blip without stacking
# backoff inside a Lambda invocation. The pool matches the worker count so threads
# never wait for a connection.
_boto_config = BotoConfig(
    retries={"mode": "standard", "max_attempts": 2},
    connect_timeout=3,
    read_timeout=10,
    max_pool_connections=CONFIG.concurrency,
)
_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()
_executor = ThreadPoolExecutor(max_workers=CONFIG.concurrency, thread_name_prefix="send")
_bucket = TokenBucket(CONFIG.max_send_rate) if CONFIG.max_send_rate else None
_deadline = [float("inf")]  # monotonic time the current invocation's sends must start by


def _client(service: str) -> Any:
    """A boto3 client, built once on first use (thread-safe).

    Building the SES client loads ~50 ms of API model; at import that would put cold
    import at ~1.9x `import boto3` (bench/bench_lambda.py), so the first send pays it
    once per container instead. SQS is needed only for rejected messages.
    """
    with _clients_lock:
        if service not in _clients:
            _clients[service] = _session.client(service, config=_boto_config)
        return _clients[service]


def _mark_duplicate(response: Any, idempotent_data: DataRecord) -> Any:
    # Powertools returns the stored result of a completed id transparently; this hook
    # only runs on that path, so it is where a duplicate becomes visible in the logs.
    return {**response, "duplicate": True} if isinstance(response, dict) else response


_idempotency_config = IdempotencyConfig(
    event_key_jmespath="id",
    # The same id with another recipient, sender, subject, body, header or tag is a
    # different message: Powertools raises IdempotencyValidationError instead of
    # returning the first one's result, and the record goes to the DLQ with that reason.
    payload_validation_jmespath=(
        '[to, cc, bcc, reply_to, "from", subject, html, text, headers, tags]'
    ),
    raise_on_no_idempotency_key=True,
    expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
    response_hook=_mark_duplicate,
)


class _LazyDynamoDBPersistenceLayer(DynamoDBPersistenceLayer):
    """Powertools' DynamoDB idempotency store, with its client built on first use.

    The stock layer builds its boto3 client in ``__init__``; the first client of a
    process loads botocore's endpoint rules, the largest single cost of a cold import.
    The constructor gets a placeholder (Powertools' user-agent hook skips objects
    without ``meta``) and every later access goes to the shared lazy client.
    """

    _ready = False

    @property
    def client(self) -> Any:
        return _client("dynamodb") if self._ready else _NOT_BUILT

    @client.setter
    def client(self, _value: Any) -> None:
        pass


_NOT_BUILT = object()
_persistence = _LazyDynamoDBPersistenceLayer(
    table_name=CONFIG.idempotency_table,
    key_attr="id",
    expiry_attr="expiration",
    boto3_client=_NOT_BUILT,
)
_persistence._ready = True


class ConcurrentBatchProcessor(BatchProcessor):
    """Powertools' SQS batch processor, running the record handler on a thread pool.

    The stock processor calls the handler record after record; sends are I/O bound, so
    a batch of 10 would take 10 SES round trips. Only `process` changes: each record
    still goes through `_process_record`, whose success/failure bookkeeping appends to
    lists (atomic under the GIL), so the partial response is exactly Powertools'.
    """

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        # Returning every record as a failure is a valid partial response; raising
        # instead would only add a Lambda error on top of the same redelivery.
        super().__init__(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        self._executor = executor

    def process(self) -> list[tuple]:
        return list(self._executor.map(self._process_record, self.records))


_processor = ConcurrentBatchProcessor(_executor)


@idempotent_function(
    data_keyword_argument="message", config=_idempotency_config, persistence_store=_persistence
)
def _send_once(message: dict[str, Any], queued_at: int | None) -> dict[str, Any]:
    # Raising on any failure makes Powertools delete the in-progress record: a
    # transient failure is never stored as done, and a permanent one leaves no record
    # that would hide a corrected resend of the same id. Only `message` is hashed.
    request = build_send_email_request(
        message,
        default_from=CONFIG.default_from,
        configuration_set=CONFIG.configuration_set,
        queued_at=queued_at,
    )
    _pace(recipient_count(message))
    try:
        response = _client("sesv2").send_email(**request)
    except Exception as exc:
        failure = classify(exc)
        error = _FAILURES[failure.kind]
        raise error(failure.error_class, failure.reason) from exc
    return {"ses_message_id": response["MessageId"]}


_FAILURES: dict[str, type[TransientSendError] | type[PermanentSendError]] = {
    "permanent": PermanentSendError,
    "transient": TransientSendError,
    "throttled": ThrottledSendError,
    "daily_quota": DailyQuotaError,
}


def _pace(recipients: int) -> None:
    """Wait for this instance's share of the SES rate, or defer the message when its
    turn would come after the invocation must stop sending."""
    if _bucket is None:
        return
    budget = max(0.0, _deadline[0] - time.monotonic())
    wait = _bucket.reserve(recipients, budget)
    if wait is None:
        raise DeferSend(_bucket.wait_for(recipients))
    if wait > 0:
        time.sleep(wait)


def _record_handler(record: SQSRecord) -> str:
    try:
        email = parse_message(record.body, SCHEMA, CONFIG.domain)
    except InvalidMessageError as exc:
        return _dead_letter(record, None, exc.error_class, exc.reason)
    log = {
        "message_id": email.id,
        "sqs_message_id": record.message_id,
        "recipient_count": email.recipient_count,
    }
    try:
        result = _send_once(message=email.fields, queued_at=_queued_at(record))
    except PermanentSendError as exc:
        if exc.error_class in SENDING_PAUSED_CODES:
            # Every message fails the same way until someone resumes sending: the
            # metric is what pages (EmailAlarms' `sending-paused`), not the DLQ count.
            _count("SendingPaused")
        return _dead_letter(record, email, exc.error_class, exc.reason)
    except IdempotencyValidationError:
        return _dead_letter(
            record,
            email,
            "IdempotencyKeyReused",
            f"the id {email.id!r} was already used for a different message (another "
            "recipient, sender, subject, body, header or tag); it is sent once per id: "
            "give the new message its own id",
        )
    except DeferSend as exc:
        delay = min(MAX_DELAY_SECONDS, max(1, math.ceil(exc.delay_seconds)))
        return _requeue(record, email, delay, {}, {**log, "outcome": "paced"})
    except ThrottledSendError as exc:
        return _on_throttled(record, email, exc, log)
    except DailyQuotaError as exc:
        return _on_daily_quota(record, email, exc, log)
    except TransientSendError as exc:
        logger.warning(
            "send failed, SQS will redeliver",
            extra={
                **log,
                "outcome": "retry",
                "error_class": exc.error_class,
                "error_reason": _redact(exc.reason),
            },
        )
        raise
    except (IdempotencyAlreadyInProgressError, IdempotencyItemAlreadyExistsError):
        # Another invocation (or a batch-mate with the same id) is sending it right now;
        # if that one fails, this redelivery is the retry.
        logger.info(
            "same id in progress elsewhere, SQS will redeliver", extra={**log, "outcome": "retry"}
        )
        raise
    outcome = "duplicate" if result.get("duplicate") else "sent"
    logger.info(
        "email sent" if outcome == "sent" else "email already sent for this id",
        extra={
            **log,
            "outcome": outcome,
            "ses_message_id": result.get("ses_message_id"),
            "recipient_domains": email.recipient_domains,
        },
    )
    return outcome


def _attribute(record: SQSRecord, name: str) -> str | None:
    # Read as plain JSON: Powertools' accessor raises KeyError on an attribute without a
    # `stringValue` (a producer's Binary one), which would fail the record every time.
    value = (record.get("messageAttributes") or {}).get(name)
    return value.get("stringValue") if isinstance(value, dict) else None


def _copied_attributes(record: SQSRecord) -> dict[str, dict[str, Any]]:
    """The record's message attributes as SendMessage takes them, String, Number and
    Binary alike (read as plain JSON, for the reason in :func:`_attribute`)."""
    copied: dict[str, dict[str, Any]] = {}
    for name, value in (record.get("messageAttributes") or {}).items():
        if not isinstance(value, dict) or not value.get("dataType"):
            continue
        if value.get("stringValue") is not None:
            copied[name] = {"DataType": value["dataType"], "StringValue": value["stringValue"]}
        elif value.get("binaryValue") is not None:
            # The event carries binary values base64-encoded; boto3 takes bytes.
            binary = base64.b64decode(value["binaryValue"])
            copied[name] = {"DataType": value["dataType"], "BinaryValue": binary}
    return copied


def _queued_at(record: SQSRecord) -> int | None:
    """When the message first entered the queue, in epoch milliseconds.

    That is the record's `SentTimestamp`, unless the record is our re-enqueued copy and
    carries the original's in `queued_at`. A producer can set that attribute too, so it
    is believed only if it is not later than the record's own `SentTimestamp` nor more
    than `MAX_QUEUED_AGE_MS` before it.
    """
    try:
        sent = decode_queued_at(str(record.attributes.get("SentTimestamp")))
    except ValueError:
        return None
    try:
        claimed = decode_queued_at(_attribute(record, QUEUED_AT) or "")
    except ValueError:
        return sent
    return claimed if sent - MAX_QUEUED_AGE_MS <= claimed <= sent else sent


def _on_throttled(
    record: SQSRecord, email: Email, exc: ThrottledSendError, log: dict[str, Any]
) -> str:
    hop = int(_attribute(record, THROTTLE_HOPS) or 0) + 1
    if hop > MAX_THROTTLE_HOPS:
        return _dead_letter(
            record,
            email,
            exc.error_class,
            f"still throttled by SES after {MAX_THROTTLE_HOPS} deferrals with backoff: "
            f"{exc.reason}",
        )
    delay = backoff_delay(hop, base=THROTTLE_BASE_SECONDS)
    logger.warning(
        "SES throttled the send, deferred with backoff",
        extra={**log, "outcome": "throttled", "error_class": exc.error_class, "hop": hop},
    )
    return _requeue(record, email, delay, {THROTTLE_HOPS: str(hop)}, None)


def _on_daily_quota(
    record: SQSRecord, email: Email, exc: DailyQuotaError, log: dict[str, Any]
) -> str:
    now = time.time()
    since = float(_attribute(record, QUOTA_HELD_SINCE) or now)
    if now - since > QUOTA_HOLD_LIMIT_SECONDS:
        return _dead_letter(
            record,
            email,
            "DailyQuotaExceeded",
            f"held {int((now - since) // 3600)} h for the SES daily sending quota, longer "
            f"than the quota's 24-hour window: raise the quota or redrive later ({exc.reason})",
        )
    # Reported on every hold: a structured log line and a CloudWatch metric (embedded
    # metric format) an alarm can watch; the message itself waits on the queue.
    logger.error(
        "SES daily sending quota exceeded, message held on the queue",
        extra={**log, "outcome": "held_daily_quota", "error_class": exc.error_class},
    )
    _count("DailyQuotaHeld")
    return _requeue(record, email, MAX_DELAY_SECONDS, {QUOTA_HELD_SINCE: f"{since:.0f}"}, None)


def _count(name: str) -> None:
    """Publish one ``name`` (embedded metric format, namespace ``serverless-mail``,
    dimension ``service``): the metrics EmailAlarms watches."""
    # Imported here: the metrics module is only needed on these rare paths, and cold
    # import is measured against `import boto3` (bench/bench_lambda.py).
    from aws_lambda_powertools import single_metric
    from aws_lambda_powertools.metrics import MetricUnit

    with single_metric(
        name=name, unit=MetricUnit.Count, value=1, namespace=METRICS_NAMESPACE
    ) as metric:
        metric.add_dimension(name="service", value=logger.service)


def _requeue(
    record: SQSRecord,
    email: Email,
    delay: int,
    hops: dict[str, str],
    log: dict[str, Any] | None,
) -> str:
    """Put a delayed copy of the record on its own queue, then let the record be acked.

    A new message starts at receive count 0, while a redelivery of this one (or a
    visibility change) keeps counting toward maxReceiveCount: waiting this way never
    sends a good message to the DLQ. The copy keeps the producer's attributes and adds
    the original's enqueue time (`queued_at`); the body and its `id` are unchanged, so
    idempotency still sends it once.
    """
    if CONFIG.queue_url is None:
        # Without the queue's URL (an environment the component did not plan), fall
        # back to SQS redelivery.
        raise TransientSendError("Deferred", "EMAIL_QUEUE_URL is not set")
    attributes = _copied_attributes(record)
    for name, value in hops.items():
        attributes[name] = {"DataType": "Number", "StringValue": value}
    queued_at = _queued_at(record)
    if queued_at is not None:
        attributes[QUEUED_AT] = {"DataType": "Number", "StringValue": str(queued_at)}
    try:
        _client("sqs").send_message(
            QueueUrl=CONFIG.queue_url,
            MessageBody=record.body,
            DelaySeconds=delay,
            MessageAttributes=attributes,
        )
    except Exception:
        # Not acked: SQS redelivers the original, so nothing is lost.
        logger.exception(
            "could not re-enqueue a deferred message",
            extra={"message_id": email.id, "sqs_message_id": record.message_id, "outcome": "retry"},
        )
        raise
    if log is not None:
        logger.info("send deferred to the queue", extra={**log, "delay_seconds": delay})
    return "deferred"


def _dead_letter(record: SQSRecord, email: Email | None, error_class: str, reason: str) -> str:
    """Copy the original body to the DLQ with its reason, then let the record be acked."""
    reason = reason[:_MAX_REASON_CHARS]
    log = {
        "message_id": email.id if email else None,
        "sqs_message_id": record.message_id,
        "error_class": error_class,
        "error_reason": _redact(reason),
    }
    attributes = {
        "error_class": {"DataType": "String", "StringValue": error_class},
        "error_reason": {"DataType": "String", "StringValue": reason or error_class},
        "source_message_id": {"DataType": "String", "StringValue": record.message_id},
    }
    if email is not None:
        attributes["email_id"] = {"DataType": "String", "StringValue": email.id}
    try:
        _client("sqs").send_message(
            QueueUrl=CONFIG.dead_letter_queue_url,
            MessageBody=record.body,
            MessageAttributes=attributes,
        )
    except Exception:
        # Not acked: SQS redelivers it and, at worst, its redrive policy moves it to the
        # same DLQ without the attributes; the reason is still in this log line.
        logger.exception(
            "could not dead-letter a rejected message", extra={**log, "outcome": "retry"}
        )
        raise
    logger.warning("email rejected, moved to the DLQ", extra={**log, "outcome": "dead_lettered"})
    return "dead_lettered"


def _redact(text: str) -> str:
    # SES error messages may quote addresses ("Email address not verified a@b.c").
    return _ADDRESS.sub("***@", text)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point for the SQS event source (with `ReportBatchItemFailures`)."""
    _idempotency_config.register_lambda_context(context)
    remaining = context.get_remaining_time_in_millis() / 1000.0
    _deadline[0] = time.monotonic() + remaining - SEND_MARGIN_SECONDS
    return dict(
        process_partial_response(
            event=event, record_handler=_record_handler, processor=_processor, context=context
        )
    )
