"""Configuration of the sender, read once from the environment at cold start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from .address import AddressError, parse_mailbox
from .errors import ConfigError
from .message import address_domain, is_on_domain

__all__ = ["DEFAULT_CONCURRENCY", "MAX_CONCURRENCY", "SenderConfig"]

DEFAULT_CONCURRENCY = 10
# SQS hands Lambda at most 10 records per batch for standard queues by default and
# 10,000 with a batching window; 50 threads is far past the point where SES's own
# per-second quota, not the client, becomes the limit.
MAX_CONCURRENCY = 50


@dataclass(frozen=True, kw_only=True)
class SenderConfig:
    """Everything the handler needs from its environment."""

    domain: str
    """`EMAIL_DOMAIN`: the stack's sending domain; `from` must be on it or a subdomain."""
    default_from: str
    """`EMAIL_DEFAULT_FROM`: sender used when a message has no `from`."""
    configuration_set: str
    """`EMAIL_CONFIGURATION_SET`: SES configuration set (events, suppression)."""
    idempotency_table: str
    """`EMAIL_IDEMPOTENCY_TABLE`: DynamoDB table, hash key `id`, TTL attribute `expiration`."""
    dead_letter_queue_url: str
    """`EMAIL_DEAD_LETTER_QUEUE_URL`: where rejected messages go, with their reason."""
    concurrency: int = DEFAULT_CONCURRENCY
    """`EMAIL_SEND_CONCURRENCY`: sends in flight per batch. Default: 10."""
    max_send_rate: float | None = None
    """`EMAIL_MAX_SEND_RATE`: recipients per second this instance may send (its share of
    the account's SES rate). Default: `None` (not paced)."""
    queue_url: str | None = None
    """`EMAIL_QUEUE_URL`: the queue itself, where a paced or throttled message goes back
    as a delayed copy. Default: `None` (such a message is a batch item failure instead)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SenderConfig:
        """Read and check the configuration; raise `ConfigError` naming the variable."""
        env = os.environ if env is None else env

        def required(name: str, what: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise ConfigError(
                    f"`{name}` must be set to {what}, but it is missing or empty; "
                    "set it in the function's environment (the LambdaSender component does)"
                )
            return value

        domain = required(
            "EMAIL_DOMAIN", "the stack's sending domain (e.g. mail.example.com)"
        ).lower()
        default_from = required("EMAIL_DEFAULT_FROM", f"a sender address on {domain}")
        try:
            parse_mailbox(default_from)
        except AddressError as exc:
            raise ConfigError(
                f"`EMAIL_DEFAULT_FROM` {exc.reason}; use e.g. 'Example <noreply@{domain}>'"
            ) from None
        if not is_on_domain(default_from, domain):
            raise ConfigError(
                f"`EMAIL_DEFAULT_FROM` must be an address on `EMAIL_DOMAIN` ({domain}) "
                "or a subdomain, "
                f"but its domain is {address_domain(default_from)!r}; use e.g. noreply@{domain}"
            )
        raw_concurrency = env.get("EMAIL_SEND_CONCURRENCY", "").strip() or str(DEFAULT_CONCURRENCY)
        try:
            concurrency = int(raw_concurrency)
        except ValueError:
            concurrency = 0
        if not 1 <= concurrency <= MAX_CONCURRENCY:
            raise ConfigError(
                f"`EMAIL_SEND_CONCURRENCY` must be an integer between 1 and {MAX_CONCURRENCY}, "
                f"but {raw_concurrency!r} was provided"
            )
        raw_rate = env.get("EMAIL_MAX_SEND_RATE", "").strip()
        max_send_rate: float | None = None
        if raw_rate:
            try:
                max_send_rate = float(raw_rate)
            except ValueError:
                max_send_rate = 0.0
            if not 0 < max_send_rate < float("inf"):
                raise ConfigError(
                    "`EMAIL_MAX_SEND_RATE` must be a number of recipients per second above 0, "
                    f"but {raw_rate!r} was provided"
                )
        return cls(
            domain=domain,
            default_from=default_from,
            configuration_set=required("EMAIL_CONFIGURATION_SET", "the SES configuration set name"),
            idempotency_table=required(
                "EMAIL_IDEMPOTENCY_TABLE", "the DynamoDB idempotency table name"
            ),
            dead_letter_queue_url=required(
                "EMAIL_DEAD_LETTER_QUEUE_URL",
                "the URL of the SQS dead-letter queue for rejected messages",
            ),
            concurrency=concurrency,
            max_send_rate=max_send_rate,
            queue_url=env.get("EMAIL_QUEUE_URL", "").strip() or None,
        )
