"""An SES event-publishing record, parsed into what the history and webhooks need.

The body is the event JSON itself (the SNS subscription uses raw message delivery); an
SNS envelope (``{"Type": "Notification", "Message": ...}``) is unwrapped too, so turning
raw delivery off loses nothing. Field names follow the SES Developer Guide, "Contents of
event data that Amazon SES publishes to Amazon SNS". Message bodies, subjects and
headers are never kept: only the ids, the timestamp and the delivery facts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import InvalidEventError
from .message_tag import MESSAGE_ID_TAG, QUEUED_AT_TAG, decode_message_id, decode_queued_at

__all__ = [
    "EVENT_KINDS",
    "STATUS_RANK",
    "SesEvent",
    "event_key",
    "parse_event",
]

# `eventType` (event publishing) → (our kind, the configuration set's event type name,
# the key of the type-specific object).
EVENT_KINDS: dict[str, tuple[str, str, str]] = {
    "Send": ("sent", "SEND", "send"),
    "Delivery": ("delivered", "DELIVERY", "delivery"),
    "Bounce": ("bounced", "BOUNCE", "bounce"),
    "Complaint": ("complained", "COMPLAINT", "complaint"),
    "Reject": ("rejected", "REJECT", "reject"),
    "DeliveryDelay": ("delayed", "DELIVERY_DELAY", "deliveryDelay"),
    "Rendering Failure": ("rendering_failure", "RENDERING_FAILURE", "failure"),
    "Subscription": ("subscription", "SUBSCRIPTION", "subscription"),
    "Open": ("opened", "OPEN", "open"),
    "Click": ("clicked", "CLICK", "click"),
}

STATUS_RANK: dict[str, int] = {
    "queued": 0,
    "sent": 10,
    "delayed": 20,
    "delivered": 30,
    "bounced": 40,
    "rejected": 40,
    "rendering_failure": 40,
    "complained": 50,
}
"""How significant each status is: a message's status only moves up this ladder (ties
go to the later event), so a SEND or DELIVERY_DELAY that arrives after the DELIVERY
never turns ``delivered`` back. Opens, clicks and subscription changes are in the
timeline but are not statuses."""


@dataclass(frozen=True)
class SesEvent:
    """One SES event, reduced to what is kept."""

    kind: str
    """``sent``, ``delivered``, ``bounced``, ... (see :data:`EVENT_KINDS`)."""
    event_type: str
    """The configuration set's name of the type, e.g. ``DELIVERY_DELAY``."""
    message_id: str | None
    """Our message ``id`` (from the ``message_id`` tag), or ``None`` for mail sent
    without it (e.g. by another tool through the same configuration set)."""
    ses_message_id: str
    timestamp: str
    """When it happened, ISO 8601 UTC with milliseconds (sortable as text)."""
    key: str
    """The event's identity: SHA-256 of its canonical JSON (a redelivered or duplicated
    event has the same key)."""
    details: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    """The message's own tags (not SES's ``ses:*`` ones, not ``message_id`` or
    ``queued_at``)."""
    queued_at: str | None = None
    """When the message entered the send queue (from the ``queued_at`` tag), ISO 8601 UTC
    with milliseconds, or ``None`` for mail sent without a valid one."""
    ignored: tuple[str, ...] = ()
    """What parsing set aside instead of refusing the event (a malformed ``queued_at``
    tag), for the log."""

    @property
    def rank(self) -> int | None:
        return STATUS_RANK.get(self.kind)


def event_key(raw: dict[str, Any]) -> str:
    """SES events carry no id of their own; the canonical JSON identifies one."""
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def parse_event(body: str) -> SesEvent:
    """Parse a record body; raise :class:`InvalidEventError` with the reason."""
    raw = _load(body)
    if raw.get("Type") == "Notification" and isinstance(raw.get("Message"), str):
        raw = _load(raw["Message"])
    name = raw.get("eventType") or raw.get("notificationType")
    if name not in EVENT_KINDS:
        raise InvalidEventError(f"unknown SES event type {name!r}")
    kind, event_type, detail_key = EVENT_KINDS[name]
    mail = raw.get("mail")
    if not isinstance(mail, dict) or not isinstance(mail.get("messageId"), str):
        raise InvalidEventError(f"the {event_type} event has no mail.messageId")
    found, found_tags = raw.get(detail_key), mail.get("tags")
    detail: dict[str, Any] = found if isinstance(found, dict) else {}
    tags: dict[str, Any] = found_tags if isinstance(found_tags, dict) else {}
    when = detail.get("timestamp") or mail.get("timestamp")
    queued_at, ignored = _queued_at(tags)
    return SesEvent(
        kind=kind,
        event_type=event_type,
        message_id=_message_id(tags),
        ses_message_id=mail["messageId"],
        timestamp=_normalize_time(when, event_type),
        key=event_key(raw),
        details={k: v for k, v in _details(event_type, detail).items() if v is not None},
        tags={
            k: v[0]
            for k, v in tags.items()
            if not k.startswith("ses:")
            and k not in (MESSAGE_ID_TAG, QUEUED_AT_TAG)
            and isinstance(v, list)
            and v
        },
        queued_at=queued_at,
        ignored=ignored,
    )


def _load(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidEventError("the body is not JSON") from None
    if not isinstance(value, dict):
        raise InvalidEventError("the body is not a JSON object")
    return value


def _message_id(tags: dict[str, Any]) -> str | None:
    # SES lists each tag's values: {"message_id": ["order-42"]}.
    values = tags.get(MESSAGE_ID_TAG)
    if not isinstance(values, list) or not values or not isinstance(values[0], str):
        return None
    try:
        return decode_message_id(values[0])
    except ValueError:
        raise InvalidEventError(f"the {MESSAGE_ID_TAG} tag {values[0]!r} is malformed") from None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _queued_at(tags: dict[str, Any]) -> tuple[str | None, tuple[str, ...]]:
    # Only the history's `queued` item depends on it: a malformed value loses that item,
    # never the event.
    values = tags.get(QUEUED_AT_TAG)
    if values is None:
        return None, ()
    value = values[0] if isinstance(values, list) and values else values
    try:
        epoch_ms = decode_queued_at(value if isinstance(value, str) else "")
        when = _EPOCH + timedelta(milliseconds=epoch_ms)
    except (ValueError, OverflowError):
        return None, (f"the {QUEUED_AT_TAG} tag {value!r} is not epoch milliseconds",)
    return _iso(when), ()


def _iso(utc: datetime) -> str:
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _normalize_time(value: Any, event_type: str) -> str:
    if not isinstance(value, str):
        raise InvalidEventError(f"the {event_type} event has no timestamp")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidEventError(f"the {event_type} timestamp {value!r} is not ISO 8601") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return _iso(parsed.astimezone(UTC))


def _recipients(items: Any, *fields: tuple[str, str]) -> list[dict[str, Any]]:
    out = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            out.append({ours: item[theirs] for ours, theirs in fields if theirs in item})
    return out


def _details(event_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    """The delivery facts of one event: no content, subject or headers."""
    if event_type == "BOUNCE":
        return {
            "bounce_type": detail.get("bounceType"),
            "bounce_subtype": detail.get("bounceSubType"),
            "recipients": _recipients(
                detail.get("bouncedRecipients"),
                ("address", "emailAddress"),
                ("action", "action"),
                ("status", "status"),
                ("diagnostic", "diagnosticCode"),
            ),
            "feedback_id": detail.get("feedbackId"),
        }
    if event_type == "COMPLAINT":
        return {
            "feedback_type": detail.get("complaintFeedbackType"),
            "complaint_subtype": detail.get("complaintSubType"),
            "recipients": _recipients(
                detail.get("complainedRecipients"), ("address", "emailAddress")
            ),
            "feedback_id": detail.get("feedbackId"),
        }
    if event_type == "DELIVERY":
        return {
            "recipients": [{"address": a} for a in detail.get("recipients") or []],
            "smtp_response": detail.get("smtpResponse"),
            "processing_time_ms": detail.get("processingTimeMillis"),
        }
    if event_type == "REJECT":
        return {"reason": detail.get("reason")}
    if event_type == "DELIVERY_DELAY":
        return {
            "delay_type": detail.get("delayType"),
            "expiration_time": detail.get("expirationTime"),
            "recipients": _recipients(
                detail.get("delayedRecipients"),
                ("address", "emailAddress"),
                ("status", "status"),
                ("diagnostic", "diagnosticCode"),
            ),
        }
    if event_type == "RENDERING_FAILURE":
        return {
            "error_message": detail.get("errorMessage"),
            "template_name": detail.get("templateName"),
        }
    if event_type == "CLICK":
        return {"link": detail.get("link")}
    if event_type == "SUBSCRIPTION":
        return {"contact_list": detail.get("contactList")}
    return {}
