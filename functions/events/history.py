"""The message history in DynamoDB: one timeline item per SES event, one status item
per message, both under our message ``id``.

Items (hash key ``id``, range key ``sk``):

- ``sk = "event#<timestamp>#<event key>"``: one per SES event, written only if absent,
  so a redelivered or duplicated event is recorded once; a Query on ``id`` returns the
  timeline in time order. ``webhooks_delivered`` holds the endpoints that took it.
- ``sk = "event#<queued_at>#queued"``: when the message entered the send queue
  (``event_type`` ``QUEUED``, kind ``queued``), from the ``queued_at`` tag the senders
  put on every message. Every event of the message carries the tag, so each puts this
  item if absent: whichever arrives first records it, and its key is the same for all.
  No component sees the enqueue itself, so it is written with the message's first SES
  event, and no webhook is sent for it (webhooks are per SES event; the app did the
  enqueue).
- ``sk = "status"``: the message's current ``status``, replaced only by a more
  significant status, or an equally significant later one (a conditional update:
  events may arrive in any order, and concurrent invocations race safely). ``queued``
  (rank 0) only takes where no status exists yet, i.e. when the first event to arrive
  is not a status (an open or a click).

Every item carries ``expiration`` (epoch seconds), the table's TTL attribute.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from .ses_event import STATUS_RANK, SesEvent

__all__ = ["QUEUED_EVENT_TYPE", "STATUS_SK", "History", "Recorded", "event_sk", "queued_sk"]

STATUS_SK = "status"
QUEUED_EVENT_TYPE = "QUEUED"
_QUEUED = "queued"
_CONDITION_FAILED = "ConditionalCheckFailedException"


def event_sk(event: SesEvent) -> str:
    """The range key of an event's timeline item."""
    return f"event#{event.timestamp}#{event.key[:32]}"


def queued_sk(queued_at: str) -> str:
    """The range key of a message's ``queued`` item: the same from every event."""
    return f"event#{queued_at}#{_QUEUED}"


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
        queued = self._queued(event)
        if queued is not None:
            # Before the event's own item: a recorded event implies its `queued` item.
            self._put_item(queued, expiration)
        item = self._event_item(event)
        duplicate = not self._put_item(item, expiration)
        delivered: frozenset[str] = frozenset()
        if duplicate:
            stored = self._table.get_item(
                Key={"id": event.message_id, "sk": event_sk(event)},
                ConsistentRead=True,
                ProjectionExpression="webhooks_delivered",
            ).get("Item", {})
            delivered = frozenset(stored.get("webhooks_delivered", ()))
        changed = event.rank is not None and self._raise_status(item, event.rank, expiration)
        if queued is not None and event.rank is None:
            # A status event leaves a status of rank 10 or more, which `queued` never
            # replaces: only an event that is not a status can find none yet.
            self._raise_status(queued, STATUS_RANK[_QUEUED], expiration)
        return Recorded(duplicate, changed, delivered)

    def mark_delivered(self, event: SesEvent, endpoint_key: str) -> None:
        """Remember that one endpoint took the event, so a retry skips it."""
        assert event.message_id is not None
        self._table.update_item(
            Key={"id": event.message_id, "sk": event_sk(event)},
            UpdateExpression="ADD webhooks_delivered :k",
            ExpressionAttributeValues={":k": {endpoint_key}},
        )

    @staticmethod
    def _event_item(event: SesEvent) -> dict[str, Any]:
        return {
            "id": event.message_id,
            "sk": event_sk(event),
            "event_type": event.event_type,
            "kind": event.kind,
            "timestamp": event.timestamp,
            "ses_message_id": event.ses_message_id,
            "details": event.details,
        }

    @staticmethod
    def _queued(event: SesEvent) -> dict[str, Any] | None:
        """The message's ``queued`` item, from the event's ``queued_at`` tag."""
        if event.queued_at is None:
            return None
        return {
            "id": event.message_id,
            "sk": queued_sk(event.queued_at),
            "event_type": QUEUED_EVENT_TYPE,
            "kind": _QUEUED,
            "timestamp": event.queued_at,
            "ses_message_id": event.ses_message_id,
            "details": {},
        }

    def _put_item(self, item: dict[str, Any], expiration: int) -> bool:
        """Put a timeline item if absent; False if it was there already."""
        try:
            self._table.put_item(
                Item={**item, "expiration": expiration},
                ConditionExpression="attribute_not_exists(sk)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == _CONDITION_FAILED:
                return False
            raise
        return True

    def _raise_status(self, item: dict[str, Any], rank: int, expiration: int) -> bool:
        """Make a timeline item's kind the message's status, if it ranks high enough."""
        try:
            self._table.update_item(
                Key={"id": item["id"], "sk": STATUS_SK},
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
                    ":status": item["kind"],
                    ":rank": rank,
                    ":at": item["timestamp"],
                    ":type": item["event_type"],
                    ":details": item["details"],
                    ":ses": item["ses_message_id"],
                    ":exp": expiration,
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == _CONDITION_FAILED:
                return False
            raise
        return True
