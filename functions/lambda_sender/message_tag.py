"""The SES message tags the senders set on every message: ``message_id`` and ``queued_at``.

``message_id`` carries the message ``id``, reversibly.

SES v2 tag values may hold only ASCII letters, digits, ``_`` and ``-``, at most 256
characters (SES API Reference v2, MessageTag); the contract's ``id`` is 1 to 128
printable ASCII characters. So:

- an id made only of that alphabet and not starting with ``_`` is the tag value
  itself (``order-42``, UUIDs, ULIDs: readable in the SES console);
- any other id is ``_`` followed by the unpadded base64url of its UTF-8 bytes
  (RFC 4648 section 5, whose alphabet is exactly SES's): ``a:b`` -> ``_YTpi``.

A value starting with ``_`` is always an encoded one, so decoding is unambiguous, and
128 characters encode to at most 172. This file is kept byte-identical in
``functions/events/`` and ``functions/lambda_sender/`` (each function is packaged on its
own); the Worker has the same rule (``functions/worker/src/ses.js``); the vectors in
``functions/schema/message-id-tag-vectors.json`` pin all three.

``queued_at`` carries when the message entered the send queue (the SQS message's
``SentTimestamp``, the Cloudflare Queue message's ``timestamp``): epoch milliseconds as
decimal digits, inside SES's alphabet as they are. Both names are reserved: the schema's
``x-tags`` lists them and both senders refuse them in a message's ``tags``.
"""

from __future__ import annotations

import base64
import binascii
import re

__all__ = [
    "MESSAGE_ID_TAG",
    "QUEUED_AT_TAG",
    "decode_message_id",
    "decode_queued_at",
    "encode_message_id",
]

MESSAGE_ID_TAG = "message_id"
"""The tag that carries the message ``id`` into SES events."""
QUEUED_AT_TAG = "queued_at"
"""The tag that carries the message's enqueue time (epoch milliseconds) into SES events."""

_PLAIN = re.compile(r"[A-Za-z0-9-][A-Za-z0-9_-]{0,255}")
# 15 digits reach past the year 9999, the last one a datetime can hold.
_EPOCH_MS = re.compile(r"[0-9]{1,15}")
_ENCODED_PREFIX = "_"


def encode_message_id(message_id: str) -> str:
    """The tag value for ``message_id``."""
    if _PLAIN.fullmatch(message_id):
        return message_id
    encoded = base64.urlsafe_b64encode(message_id.encode("utf-8")).decode("ascii")
    return _ENCODED_PREFIX + encoded.rstrip("=")


def decode_message_id(value: str) -> str:
    """The ``id`` a tag value carries; raises ``ValueError`` on a malformed value."""
    if not value.startswith(_ENCODED_PREFIX):
        if not _PLAIN.fullmatch(value):
            raise ValueError(f"not a message id tag value: {value!r}")
        return value
    body = value[len(_ENCODED_PREFIX) :]
    if not re.fullmatch(r"[A-Za-z0-9_-]+", body):
        raise ValueError(f"not a message id tag value: {value!r}")
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError(f"not a message id tag value: {value!r}") from exc


def decode_queued_at(value: str) -> int:
    """The epoch milliseconds a ``queued_at`` tag value carries; raises ``ValueError`` on a
    malformed value."""
    if not _EPOCH_MS.fullmatch(value):
        raise ValueError(f"not a queued_at tag value: {value!r}")
    return int(value)
