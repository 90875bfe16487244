"""Signed webhooks per the Standard Webhooks specification (standardwebhooks.com).

Each request carries ``webhook-id`` (the event's identity: the same on every retry, the
receiver's idempotency key), ``webhook-timestamp`` (Unix seconds, set per attempt so a
receiver's 5-minute tolerance holds after a backoff) and ``webhook-signature``
(``v1,<base64 HMAC-SHA256 over "<id>.<timestamp>.<body>">``, the key being the
base64-decoded part of the ``whsec_`` secret).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from .config import WEBHOOK_SECRET_PREFIX
from .errors import WebhookError
from .ses_event import SesEvent

__all__ = ["body_of", "deliver", "endpoint_key", "payload", "redact_url", "sign", "webhook_id"]

_USER_AGENT = "serverless-mail-webhooks/1"
# An endpoint's error page says nothing more after this many characters.
_MAX_ERROR_BODY = 200


def webhook_id(event: SesEvent) -> str:
    """The ``webhook-id`` of an event: stable across retries and duplicates."""
    return f"msg_{event.key[:32]}"


def endpoint_key(url: str) -> str:
    """A short, stable key of an endpoint, stored instead of its URL."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def redact_url(url: str) -> str:
    """The URL without query or credentials (they may hold a token), for logs and the DLQ."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def payload(event: SesEvent) -> dict[str, Any]:
    """The JSON body: ``type``, ``timestamp``, ``data`` (the Standard Webhooks shape)."""
    return {
        "type": f"email.{event.kind}",
        "timestamp": event.timestamp,
        "data": {
            "message_id": event.message_id,
            "ses_message_id": event.ses_message_id,
            "event_type": event.event_type,
            "status": event.kind,
            "details": event.details,
            "tags": event.tags,
        },
    }


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` value for one request."""
    key = base64.b64decode(secret.removeprefix(WEBHOOK_SECRET_PREFIX))
    content = f"{msg_id}.{timestamp}.{body}".encode()
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def deliver(
    url: str, secret: str, msg_id: str, body: str, timeout: float, now: float | None = None
) -> int:
    """POST one signed event; return the status, raise :class:`WebhookError` otherwise."""
    shown = redact_url(url)
    if not url.startswith("https://"):
        raise WebhookError(shown, "not an https:// URL")
    timestamp = int(now if now is not None else time.time())
    request = urllib.request.Request(  # noqa: S310 (https only, checked above)
        url,
        data=body.encode("utf-8"),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": _USER_AGENT,
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, msg_id, timestamp, body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        # Redirects are not followed for a POST: a moved endpoint is a configuration fix.
        text = exc.read(_MAX_ERROR_BODY).decode("utf-8", "replace").strip()
        reason = f"HTTP {exc.code}" + (f": {text}" if text else "")
        raise WebhookError(shown, reason, exc.code) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        cause = getattr(exc, "reason", exc)
        raise WebhookError(shown, f"no answer ({type(cause).__name__}: {cause})") from None


def body_of(event: SesEvent) -> str:
    """The serialized body, compact and stable."""
    return json.dumps(payload(event), separators=(",", ":"), sort_keys=True)
