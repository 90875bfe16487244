"""The message history in DynamoDB: one timeline item per SES event, one status item
per message, both under our message ``id``.

Items (hash key ``id``, range key ``sk``):

- ``sk = "event#<timestamp>#<event key>"``: one per SES event, written only if absent,
  so a redelivered or duplicated event is recorded once; a Query on ``id`` returns the
  timeline in time order. ``webhooks_delivered`` holds the endpoints that took it.
- ``sk = "status"``: the message's current ``status``, replaced only by a more
  significant status, or an equally significant later one (a conditional update:
  events may arrive in any order, and concurrent invocations race safely).

Every item carries ``expiration`` (epoch seconds), the table's TTL attribute.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from .ses_event import SesEvent

__all__ = ["STATUS_SK", "History", "Recorded", "event_sk"]

STATUS_SK = "status"
_CONDITION_FAILED = "ConditionalCheckFailedException"


def event_sk(event: SesEvent) -> str:
    """The range key of an event's timeline item."""
    return f"event#{event.timestamp}#{event.key[:32]}"


@dataclass(frozen=True)
class Recorded:
    """What recording one event found."""

    duplicate: bool
    """The event was already in the timeline (a redelivery or an SES duplicate)."""
    status_changed: bool
    """The message's status moved to this event's."""
    webhooks_delivered: frozenset[str]
    """Endpoint keys that already took this event."""


class History:
    """Reads and writes the history table through a boto3 ``Table``."""

    def __init__(self, table: Any, ttl_days: int) -> None:
        self._table = table
        self._ttl_seconds = ttl_days * 24 * 60 * 60

    def record(self, event: SesEvent, now: float | None = None) -> Recorded:
        """Add the event to its message's timeline and move the status if it should."""
        assert event.message_id is not None
        expiration = int(now if now is not None else time.time()) + self._ttl_seconds
        duplicate = not self._put_event(event, expiration)
        delivered: frozenset[str] = frozenset()
        if duplicate:
            item = self._table.get_item(
                Key={"id": event.message_id, "sk": event_sk(event)},
                ConsistentRead=True,
                ProjectionExpression="webhooks_delivered",
            ).get("Item", {})
            delivered = frozenset(item.get("webhooks_delivered", ()))
        changed = event.rank is not None and self._raise_status(event, expiration)
        return Recorded(duplicate, changed, delivered)

    def mark_delivered(self, event: SesEvent, endpoint_key: str) -> None:
        """Remember that one endpoint took the event, so a retry skips it."""
        assert event.message_id is not None
        self._table.update_item(
            Key={"id": event.message_id, "sk": event_sk(event)},
            UpdateExpression="ADD webhooks_delivered :k",
            ExpressionAttributeValues={":k": {endpoint_key}},
        )

    def _put_event(self, event: SesEvent, expiration: int) -> bool:
        try:
            self._table.put_item(
                Item={
                    "id": event.message_id,
                    "sk": event_sk(event),
                    "event_type": event.event_type,
                    "kind": event.kind,
                    "timestamp": event.timestamp,
                    "ses_message_id": event.ses_message_id,
                    "details": event.details,
                    "expiration": expiration,
                },
                ConditionExpression="attribute_not_exists(sk)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == _CONDITION_FAILED:
                return False
            raise
        return True

    def _raise_status(self, event: SesEvent, expiration: int) -> bool:
        try:
            self._table.update_item(
                Key={"id": event.message_id, "sk": STATUS_SK},
                UpdateExpression=(
                    "SET #status = :status, status_rank = :rank, status_at = :at, "
                    "status_event_type = :type, status_details = :details, "
                    "ses_message_id = :ses, expiration = :exp"
                ),
                ConditionExpression=(
                    "attribute_not_exists(sk) OR status_rank < :rank "
                    "OR (status_rank = :rank AND status_at < :at)"
                ),
                # `status` is a DynamoDB reserved word.
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":status": event.kind,
                    ":rank": event.rank,
                    ":at": event.timestamp,
                    ":type": event.event_type,
                    ":details": event.details,
                    ":ses": event.ses_message_id,
                    ":exp": expiration,
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == _CONDITION_FAILED:
                return False
            raise
        return True
