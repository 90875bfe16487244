"""The message contract in code: parse a record body, check it, build the SES request.

The schema carries the structural rules; the rules it leaves to code (`x-limits`, the
mailbox syntax of `x-mailbox`, the header allow-list of `x-headers`, the reserved tag
names of `x-tags`) and the `from` domain are checked here, with the numbers and lists
read from the schema so both senders share one source. SES receives every mailbox
re-serialised by `address.parse_mailbox`, never the producer's text.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from .address import AddressError, parse_mailbox
from .errors import InvalidMessageError
from .message_tag import MESSAGE_ID_TAG, QUEUED_AT_TAG, encode_message_id
from .schema import MessageSchema

__all__ = [
    "Email",
    "address_domain",
    "as_list",
    "build_send_email_request",
    "canonical_mailboxes",
    "is_on_domain",
    "parse_message",
    "recipient_count",
    "redact",
]

_RECIPIENT_FIELDS = ("to", "cc", "bcc")
_MAILBOX_FIELDS = (*_RECIPIENT_FIELDS, "reply_to", "from")
_UTF8 = "UTF-8"


@dataclass(frozen=True)
class Email:
    """A body that passed every contract rule."""

    id: str
    fields: dict[str, Any]
    """The parsed body, unchanged (the idempotency utility hashes it by `id`)."""

    @property
    def recipient_count(self) -> int:
        return recipient_count(self.fields)

    @property
    def recipient_domains(self) -> list[str]:
        """Distinct recipient domains: enough to diagnose delivery, no personal data."""
        return sorted(
            {address_domain(a) for f in _RECIPIENT_FIELDS for a in as_list(self.fields.get(f))}
        )


def as_list(value: str | list[str] | None) -> list[str]:
    """A mailbox field may be one address or a list of them."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def recipient_count(fields: dict[str, Any]) -> int:
    return sum(len(as_list(fields.get(f))) for f in _RECIPIENT_FIELDS)


def canonical_mailboxes(value: str | list[str] | None) -> list[str]:
    """The re-serialised form of each mailbox of a checked field, as SES receives it."""
    return [str(parse_mailbox(m)) for m in as_list(value)]


def address_domain(mailbox: str) -> str:
    """The domain of ``local@domain`` or ``Name <local@domain>``: lower-case ASCII
    (punycode) when the mailbox parses, else a best-effort cut for error messages."""
    try:
        return parse_mailbox(mailbox).domain
    except AddressError:
        pass
    address = mailbox.strip()
    if address.endswith(">") and "<" in address:
        address = address[address.rindex("<") + 1 : -1]
    return address.rpartition("@")[2].lower()


def is_on_domain(mailbox: str, domain: str) -> bool:
    """True for the domain itself or a subdomain; a suffix like ``notexample.com`` is not one."""
    host, domain = address_domain(mailbox), domain.lower().rstrip(".")
    return host == domain or host.endswith("." + domain)


def redact(mailbox: str) -> str:
    """Domain plus a short hash: correlatable across log lines, not a readable address."""
    digest = hashlib.sha256(mailbox.strip().lower().encode()).hexdigest()[:12]
    return f"{digest}@{address_domain(mailbox)}"


def parse_message(body: str, schema: MessageSchema, domain: str) -> Email:
    """Parse and check a record body; raise `InvalidMessageError` with the reason."""
    size = len(body.encode("utf-8"))
    if size > schema.max_message_bytes:
        raise InvalidMessageError(
            f"the message is {size} bytes, over the limit of {schema.max_message_bytes} bytes"
        )
    try:
        fields = json.loads(body)
    except ValueError as exc:
        raise InvalidMessageError(
            "the body is not valid JSON: "
            f"{exc.__class__.__name__} at position {getattr(exc, 'pos', '?')}"
        ) from None
    error = schema.first_error(fields)
    if error:
        raise InvalidMessageError(error)
    _check_mailboxes(fields)
    _check_headers(fields.get("headers") or {}, schema)
    _check_tags(fields.get("tags") or {}, schema)
    count = recipient_count(fields)
    if count > schema.max_recipients:
        raise InvalidMessageError(
            f"the message has {count} recipients in `to`, `cc` and `bcc`, "
            f"over the limit of {schema.max_recipients}"
        )
    sender = fields.get("from")
    if sender is not None and not is_on_domain(sender, domain):
        raise InvalidMessageError(
            f"`from` must be on {domain} or one of its subdomains, "
            f"but its domain is {address_domain(sender)!r} [not-on-domain]"
        )
    return Email(id=fields["id"], fields=fields)


def _check_mailboxes(fields: dict[str, Any]) -> None:
    # Each string is exactly one mailbox once it parses, so counting strings counts
    # recipients: a comma in a name can neither add one nor slip past the limit.
    for name in _MAILBOX_FIELDS:
        value = fields.get(name)
        for i, mailbox in enumerate(as_list(value)):
            try:
                parse_mailbox(mailbox)
            except AddressError as exc:
                where = name if isinstance(value, str) else f"{name}[{i}]"
                raise InvalidMessageError(f"`{where}` {exc.reason} [{exc.code}]") from None


def _check_headers(headers: dict[str, str], schema: MessageSchema) -> None:
    seen: set[str] = set()
    for name in headers:
        reason = schema.header_error(name)
        if reason:
            raise InvalidMessageError(f"`headers`: {reason} [header-not-allowed]")
        if name.lower() in seen:
            raise InvalidMessageError(
                f"`headers`: {name!r} is given twice (header names are case-insensitive) "
                "[duplicate-header]"
            )
        seen.add(name.lower())


def _check_tags(tags: dict[str, str], schema: MessageSchema) -> None:
    for name in tags:
        if name in schema.reserved_tags:
            raise InvalidMessageError(
                f"`tags`: {name!r} is a reserved tag name: the sender sets "
                f"{' and '.join(schema.reserved_tags)} on every message itself; "
                "rename the tag [reserved-tag]"
            )


def build_send_email_request(
    fields: dict[str, Any],
    *,
    default_from: str,
    configuration_set: str,
    queued_at: int | None = None,
) -> dict[str, Any]:
    """The keyword arguments of SES v2 ``send_email`` for a checked message.

    ``queued_at`` (epoch milliseconds) is when the message entered the queue; it travels
    as a tag, outside ``fields``, so the idempotency hash of ``fields`` never sees it.
    """
    destination = {
        key: canonical_mailboxes(fields.get(name))
        for name, key in (("to", "ToAddresses"), ("cc", "CcAddresses"), ("bcc", "BccAddresses"))
        if fields.get(name)
    }
    body = {
        key: {"Data": fields[name], "Charset": _UTF8}
        for name, key in (("text", "Text"), ("html", "Html"))
        if fields.get(name)
    }
    simple: dict[str, Any] = {
        "Subject": {"Data": fields["subject"], "Charset": _UTF8},
        "Body": body,
    }
    if fields.get("headers"):
        # SES v2 Simple content takes custom headers since 2024 (botocore's model has
        # Message.Headers); parse_message let through only the `x-headers` allow-list.
        simple["Headers"] = [{"Name": k, "Value": v} for k, v in fields["headers"].items()]
    request: dict[str, Any] = {
        "FromEmailAddress": str(parse_mailbox(fields.get("from") or default_from)),
        "Destination": destination,
        "Content": {"Simple": simple},
        "ConfigurationSetName": configuration_set,
    }
    if fields.get("reply_to"):
        request["ReplyToAddresses"] = canonical_mailboxes(fields["reply_to"])
    # parse_message refused the reserved names in `tags`, so these are added once.
    tags = [{"Name": k, "Value": v} for k, v in (fields.get("tags") or {}).items()]
    # Our `id` travels as a tag so every SES event of this message names it (the
    # events processor keys the message history on it); encoded into SES's tag alphabet.
    tags.append({"Name": MESSAGE_ID_TAG, "Value": encode_message_id(fields["id"])})
    if queued_at is not None:
        # The events processor records the message's `queued` item from it.
        tags.append({"Name": QUEUED_AT_TAG, "Value": str(queued_at)})
    request["EmailTags"] = tags
    return request
