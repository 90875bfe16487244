"""Configuration of the events processor, read once from the environment at cold start.

The EmailEvents component sets every variable; its planned ``environment`` is the
contract (tests run the handler with it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import ConfigError

__all__ = ["WEBHOOK_SECRET_PREFIX", "EventsConfig"]

WEBHOOK_SECRET_PREFIX = "whsec_"
"""Standard Webhooks: a secret is ``whsec_`` followed by the base64 of the key bytes."""


@dataclass(frozen=True, kw_only=True)
class EventsConfig:
    """Everything the handler needs from its environment."""

    history_table: str
    """`EMAIL_HISTORY_TABLE`: DynamoDB table, hash key `id`, range key `sk`, TTL `expiration`."""
    history_ttl_days: int
    """`EMAIL_HISTORY_TTL_DAYS`: how long a message's history is kept after its last event."""
    queue_url: str
    """`EMAIL_EVENTS_QUEUE_URL`: the queue the function consumes (for retry backoff)."""
    dead_letter_queue_url: str
    """`EMAIL_EVENTS_DEAD_LETTER_QUEUE_URL`: where undeliverable events go, with their reason."""
    max_attempts: int
    """`EMAIL_EVENTS_MAX_ATTEMPTS`: receives of one event before it is dead-lettered."""
    retry_base_seconds: int
    """`EMAIL_EVENTS_RETRY_BASE_SECONDS`: first retry delay; doubles on every attempt."""
    retry_max_seconds: int
    """`EMAIL_EVENTS_RETRY_MAX_SECONDS`: the longest retry delay."""
    webhook_urls: tuple[str, ...]
    """`EMAIL_WEBHOOK_URLS`: a JSON list of HTTPS endpoints (empty: no webhooks)."""
    webhook_secret: str | None
    """`EMAIL_WEBHOOK_SECRET`: the `whsec_` signing secret (set when there are endpoints)."""
    webhook_timeout_seconds: int
    """`EMAIL_WEBHOOK_TIMEOUT_SECONDS`: how long one endpoint may take to answer."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EventsConfig:
        """Read and check the configuration; raise `ConfigError` naming the variable."""
        env = os.environ if env is None else env

        def required(name: str, what: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise ConfigError(
                    f"`{name}` must be set to {what}, but it is missing or empty; "
                    "set it in the function's environment (the EmailEvents component does)"
                )
            return value

        def integer(name: str, low: int, high: int) -> int:
            raw = required(name, f"an integer between {low} and {high}")
            try:
                value = int(raw)
            except ValueError:
                value = low - 1
            if not low <= value <= high:
                raise ConfigError(
                    f"`{name}` must be an integer between {low} and {high}, "
                    f"but {raw!r} was provided"
                )
            return value

        raw_urls = env.get("EMAIL_WEBHOOK_URLS", "").strip() or "[]"
        try:
            urls = json.loads(raw_urls)
        except ValueError:
            urls = None
        if not isinstance(urls, list) or not all(
            isinstance(u, str) and u.startswith("https://") for u in urls
        ):
            raise ConfigError(
                "`EMAIL_WEBHOOK_URLS` must be a JSON list of https:// URLs, "
                f"but {raw_urls!r} was provided"
            )
        secret = env.get("EMAIL_WEBHOOK_SECRET", "").strip() or None
        if urls and (secret is None or not secret.startswith(WEBHOOK_SECRET_PREFIX)):
            raise ConfigError(
                "`EMAIL_WEBHOOK_SECRET` must be a `whsec_` secret when `EMAIL_WEBHOOK_URLS` "
                "names endpoints, but it is missing or has no `whsec_` prefix"
            )
        return cls(
            history_table=required("EMAIL_HISTORY_TABLE", "the DynamoDB history table name"),
            history_ttl_days=integer("EMAIL_HISTORY_TTL_DAYS", 1, 3650),
            queue_url=required("EMAIL_EVENTS_QUEUE_URL", "the URL of the events queue"),
            dead_letter_queue_url=required(
                "EMAIL_EVENTS_DEAD_LETTER_QUEUE_URL", "the URL of the events dead-letter queue"
            ),
            max_attempts=integer("EMAIL_EVENTS_MAX_ATTEMPTS", 1, 100),
            retry_base_seconds=integer("EMAIL_EVENTS_RETRY_BASE_SECONDS", 0, 43200),
            retry_max_seconds=integer("EMAIL_EVENTS_RETRY_MAX_SECONDS", 0, 43200),
            webhook_urls=tuple(urls),
            webhook_secret=secret,
            webhook_timeout_seconds=integer("EMAIL_WEBHOOK_TIMEOUT_SECONDS", 1, 60),
        )
