"""Argument checks shared by every component and by the stage config loader.

Each check raises :class:`ConfigError` naming the argument in backticks, the
allowed values, the value given and the fix. Values that are still unresolved
``pulumi.Output`` objects are skipped: they can only be checked at deploy time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import pulumi

from .errors import ConfigError

__all__ = [
    "DOMAIN_RE",
    "EMAIL_RE",
    "check_bool",
    "check_choice",
    "check_domain",
    "check_email",
    "check_int",
    "check_pattern",
    "is_unresolved",
]

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
DOMAIN_RE = re.compile(rf"^(?:{_LABEL}\.)+[a-z]{{2,63}}$")
"""A lower-case, fully qualified DNS name without a trailing dot."""

EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@(?P<domain>[A-Za-z0-9.-]+)$")
"""A bare address ``local@domain`` (no display name)."""

MAILBOX_RE = re.compile(r"^(?P<name>[ -;=?-~]{1,200}) <(?P<address>[^<>\s]+)>$")
"""``Display Name <local@domain>``: the display name is printable ASCII."""

_QUOTED_NAME_RE = re.compile(r'"(?:[^"\\]|\\.)*"')
_UNQUOTED_SPECIALS = set('()[]:;\\,"')
_ENCODED_WORD_RE = re.compile(r"=\?[^?]*\?[bq]\?[^?]*\?=", re.IGNORECASE)


def is_unresolved(value: Any) -> bool:
    """Whether ``value`` is a Pulumi Output (or awaitable) we cannot check now."""
    return isinstance(value, pulumi.Output)


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def check_int(key: str, value: Any, low: int, high: int) -> None:
    """``value`` is a whole number between ``low`` and ``high`` inclusive."""
    if is_unresolved(value):
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(
            f"`{key}` must be a whole number between {low} and {high}, "
            f"but {_shown(value)} ({type(value).__name__}) was provided"
        )
    if not low <= value <= high:
        raise ConfigError(f"`{key}` must be between {low} and {high}, but {value} was provided")


def check_bool(key: str, value: Any) -> None:
    """``value`` is ``True`` or ``False`` (not a string such as ``"yes"``)."""
    if is_unresolved(value):
        return
    if not isinstance(value, bool):
        raise ConfigError(
            f"`{key}` must be true or false, but {_shown(value)} "
            f"({type(value).__name__}) was provided"
        )


def check_choice(key: str, value: Any, choices: Iterable[str]) -> None:
    """``value`` is one of ``choices``."""
    if is_unresolved(value):
        return
    allowed = tuple(choices)
    if value not in allowed:
        raise ConfigError(
            f"`{key}` must be one of {', '.join(repr(c) for c in allowed)}, "
            f"but {_shown(value)} was provided"
        )


def check_pattern(key: str, value: Any, pattern: re.Pattern[str], what: str) -> None:
    """``value`` is a string matching ``pattern``; ``what`` describes it."""
    if is_unresolved(value):
        return
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ConfigError(f"`{key}` must be {what}, but {_shown(value)} was provided")


def check_domain(key: str, value: Any) -> None:
    """``value`` is a lower-case DNS name such as ``mail.example.com``."""
    if is_unresolved(value):
        return
    if not isinstance(value, str) or len(value) > 253 or not DOMAIN_RE.fullmatch(value):
        raise ConfigError(
            f"`{key}` must be a lower-case domain name such as 'mail.example.com' "
            f"(no scheme, no trailing dot), but {_shown(value)} was provided"
        )


def check_email(
    key: str, value: Any, domain: str | None = None, display_name: bool = False
) -> None:
    """``value`` is ``local@domain`` (or, with ``display_name``, ``Name <local@domain>``);
    with ``domain``, on it or a subdomain of it."""
    if is_unresolved(value):
        return
    address = value
    if display_name and isinstance(value, str) and (mailbox := MAILBOX_RE.fullmatch(value)):
        address = mailbox["address"]
        _check_display_name(key, value, mailbox["name"].strip())
    match = EMAIL_RE.fullmatch(address) if isinstance(address, str) else None
    if match is None:
        raise ConfigError(
            f"`{key}` must be an email address such as 'no-reply@example.com', "
            f"but {_shown(value)} was provided"
        )
    if domain is not None and not is_on_domain(match["domain"], domain):
        raise ConfigError(
            f"`{key}` must be an address on {domain!r} or one of its subdomains so "
            f"mail is DKIM-aligned, but {_shown(value)} was provided"
        )


def _check_display_name(key: str, value: str, name: str) -> None:
    # The senders send only what they can parse as one mailbox and refuse a name that
    # looks like an address (functions/lambda_sender/address.py, src/address.js): a
    # default they would refuse must fail here, not on every send.
    quoted = bool(_QUOTED_NAME_RE.fullmatch(name))
    if (
        "@" in name
        or _ENCODED_WORD_RE.search(name)
        or (not quoted and _UNQUOTED_SPECIALS.intersection(name))
    ):
        raise ConfigError(
            f"`{key}` must have a display name without '@' or '=?...?=', with , ; : ( ) "
            '[ ] \\ " only inside one quoted name (e.g. \'"Acme, Inc." <no-reply@example.com>\'), '
            f"but {_shown(value)} was provided"
        )


def is_on_domain(host: str, domain: str) -> bool:
    """Whether ``host`` is ``domain`` or a subdomain of it (case-insensitive)."""
    host, domain = host.lower(), domain.lower()
    return host == domain or host.endswith("." + domain)
