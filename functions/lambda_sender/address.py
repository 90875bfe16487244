"""Mailboxes and headers that cannot be injected: parse, check, re-serialise.

Every mailbox string of a message must be exactly one RFC 5322 mailbox in a strict
subset (the schema's ``x-mailbox`` says which); what SES receives is the re-serialised
form, never the producer's text, so a comma or a quote in a display name can never add
a recipient. The Worker implements the same rules (functions/worker/src/address.js) and
both are held to functions/schema/address-vectors.json: same verdict, same refusal
code, same output.

SES v2 wants 7-bit addresses: "the local part ... may only contain 7-bit ASCII
characters", a non-ASCII domain "must be encoded using Punycode" and a non-ASCII
display name "must be encoded using MIME encoded-word syntax, as described in RFC 2047"
(SES v2 API reference, SendEmail, FromEmailAddress and Destination).
"""

from __future__ import annotations

import base64
import encodings.idna
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import formataddr
from typing import Any

__all__ = [
    "AddressError",
    "HeaderRules",
    "Mailbox",
    "header_error",
    "parse_mailbox",
]

# Characters a name may hold: letters, marks, numbers, punctuation, symbols and the
# ASCII space. Everything else (controls, bidi and zero-width format characters,
# separators such as U+2028 and NO-BREAK SPACE, private use, unassigned) is refused
# anywhere in a mailbox: none has a place in an address and each has been used to
# make what a reader sees differ from what a parser sees.
_ALLOWED_CATEGORIES = frozenset("LMNPS")
# RFC 5322 specials that only a quoted-string may carry in a display name ('.' is
# allowed unquoted: obs-phrase, "John Q. Public").
_UNQUOTED_SPECIALS = frozenset('()<>[]:;@\\,"')
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_ENCODED_WORD = re.compile(r"=\?[^?]*\?[bq]\?[^?]*\?=", re.IGNORECASE)
_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_DOMAIN_CHARS = re.compile(r"[A-Za-z0-9.-]")
# IDNA2008/UTS 46 "deviation" characters: IDNA2003 (Python's codec) maps them away
# while UTS 46 (the Worker's URL parser) keeps them, so the two would send different
# domains. Refused rather than guessed.
_DEVIATIONS = frozenset("\u00df\u03c2")
_MAX_LOCAL = 64
_MAX_DOMAIN = 253
# RFC 2047 section 2: an encoded-word is at most 75 characters; 45 bytes of UTF-8 are
# 60 of base64, plus 12 for "=?UTF-8?B?" and "?=".
_ENCODED_WORD_BYTES = 45


class AddressError(ValueError):
    """A mailbox or header the contract refuses; ``code`` is shared with the Worker."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Mailbox:
    """One parsed mailbox: the display name (``""`` when none) and the 7-bit address."""

    name: str
    local: str
    domain: str
    """The domain in ASCII (punycode), lower-case."""

    @property
    def address(self) -> str:
        return f"{self.local}@{self.domain}"

    def __str__(self) -> str:
        """The form SES receives."""
        if not self.name:
            return self.address
        if self.name.isascii():
            # Quotes the name when it holds a special and escapes \ and " inside.
            return formataddr((self.name, self.address))
        # formataddr(charset="utf-8") writes one encoded-word of any length; RFC 2047
        # caps each at 75 characters, so the name is split on code points.
        return f"{_encode_words(self.name)} <{self.address}>"


def parse_mailbox(text: str) -> Mailbox:
    """Parse one mailbox string; raise :class:`AddressError` with a code and a reason."""
    for char in text:
        if char != " " and unicodedata.category(char)[0] not in _ALLOWED_CATEGORIES:
            raise AddressError(
                "forbidden-character",
                f"holds the character U+{ord(char):04X} ({unicodedata.name(char, 'unnamed')}): "
                "controls, bidi and zero-width characters and non-ASCII spaces are not allowed",
            )
    text = text.strip(" ")
    if text.endswith(">"):
        start = text.rfind("<")
        if start < 0:
            raise AddressError("syntax", "has a '>' without a '<'")
        name_part, addr = text[:start].strip(" "), text[start + 1 : -1]
    else:
        name_part, addr = None, text
    if "<" in addr or ">" in addr:
        raise AddressError(
            "syntax",
            "must be one mailbox, 'address' or 'Name <address>', with nothing after the '>'",
        )
    name = _parse_display_name(name_part) if name_part else ""
    local, domain = _parse_addr_spec(addr.strip(" "))
    return Mailbox(name=name, local=local, domain=domain)


def _parse_display_name(part: str) -> str:
    if part.startswith('"'):
        name = _unquote(part)
        quoted = True
    else:
        name, quoted = part, False
    if _ENCODED_WORD.search(name):
        raise AddressError(
            "encoded-word",
            "has an RFC 2047 encoded-word in its display name: send the name as plain "
            "Unicode, the sender encodes it",
        )
    if "@" in unicodedata.normalize("NFKC", name):
        raise AddressError(
            "display-name-address",
            "has a display name that contains an address ('@'): a name must not look like "
            "a sender or a recipient",
        )
    if not quoted and (specials := sorted(_UNQUOTED_SPECIALS.intersection(name))):
        raise AddressError(
            "syntax",
            f"has {' '.join(specials)} in an unquoted display name: quote the name "
            '("Smith, John" <john@example.com>)',
        )
    # Runs of spaces in a phrase mean one space (RFC 5322 folding white space).
    return " ".join(name.split())


def _unquote(part: str) -> str:
    """The content of one RFC 5322 quoted-string that spans all of ``part``."""
    chars: list[str] = []
    i = 1
    while i < len(part):
        char = part[i]
        if char == "\\":
            if i + 1 >= len(part):
                break
            chars.append(part[i + 1])
            i += 2
            continue
        if char == '"':
            if i != len(part) - 1:
                raise AddressError(
                    "syntax",
                    "has text after the closing quote of its display name: quote the whole name",
                )
            return "".join(chars)
        chars.append(char)
        i += 1
    raise AddressError("syntax", "has a display name whose opening quote is never closed")


def _parse_addr_spec(addr: str) -> tuple[str, str]:
    if addr.count("@") != 1:
        raise AddressError(
            "syntax", f"must hold exactly one '@' in its address, but has {addr.count('@')}"
        )
    local, domain = addr.split("@")
    if not local.isascii():
        raise AddressError(
            "local-part", "has a non-ASCII local part, which SES cannot send to (7-bit only)"
        )
    if not _DOT_ATOM.fullmatch(local):
        raise AddressError(
            "syntax",
            "has a local part that is not a dot-atom (letters, digits, !#$%&'*+/=?^_`{|}~- "
            "and single inner dots; no quotes, spaces or comments)",
        )
    if len(local) > _MAX_LOCAL:
        raise AddressError(
            "local-part", f"has a local part of {len(local)} characters, over {_MAX_LOCAL}"
        )
    return local, _ascii_domain(domain)


def _ascii_domain(domain: str) -> str:
    """The domain as lower-case LDH labels (punycode for internationalised ones)."""
    if any(c.isascii() and not _DOMAIN_CHARS.match(c) for c in domain):
        raise AddressError(
            "domain",
            f"has a domain {domain!r} with characters a host name cannot hold "
            "(no spaces, comments, brackets, '_' or punctuation)",
        )
    labels = domain.lower().split(".")
    if len(labels) < 2 or "" in labels:
        raise AddressError(
            "domain", f"has a domain {domain!r} that is not a dotted host name such as example.com"
        )
    ascii_labels = [_ascii_label(label, domain) for label in labels]
    result = ".".join(ascii_labels)
    if len(result) > _MAX_DOMAIN:
        raise AddressError("domain", f"has a domain of {len(result)} characters, over 253")
    return result


def _ascii_label(label: str, domain: str) -> str:
    if label.isascii():
        if label.startswith("xn--"):
            # An already-encoded label must decode to one the rules below accept and
            # encode back to itself.
            try:
                unicode = encodings.idna.ToUnicode(label)
            except UnicodeError:
                unicode = label
            if unicode == label or _encode_label(unicode, domain) != label:
                raise AddressError(
                    "domain", f"has a domain {domain!r} with an invalid punycode label"
                )
        elif not _LDH_LABEL.fullmatch(label):
            raise AddressError(
                "domain",
                f"has a domain {domain!r} with the label {label!r}: 1 to 63 letters, digits "
                "or inner '-'",
            )
        return label
    return _encode_label(label, domain)


def _encode_label(label: str, domain: str) -> str:
    for char in label:
        if not char.isascii() and (
            char in _DEVIATIONS or unicodedata.category(char)[0] not in "LMN"
        ):
            raise AddressError(
                "domain",
                f"has a domain {domain!r} with U+{ord(char):04X}, which an internationalised "
                "label may not hold (letters, marks and digits only; no ß or ς)",
            )
    if unicodedata.normalize("NFKC", label) != label:
        raise AddressError(
            "domain",
            f"has a domain {domain!r} with full-width or compatibility characters; write "
            "the domain in its normal form",
        )
    try:
        encoded = encodings.idna.ToASCII(label).decode("ascii")
    except UnicodeError as exc:
        raise AddressError(
            "domain", f"has a domain {domain!r} that is not a valid internationalised name: {exc}"
        ) from None
    if not _LDH_LABEL.fullmatch(encoded):
        raise AddressError("domain", f"has a domain {domain!r} with an invalid label")
    return encoded


def _encode_words(name: str) -> str:
    words: list[bytes] = []
    chunk = b""
    for char in name:
        data = char.encode("utf-8")
        if len(chunk) + len(data) > _ENCODED_WORD_BYTES:
            words.append(chunk)
            chunk = b""
        chunk += data
    words.append(chunk)
    return " ".join(f"=?UTF-8?B?{base64.b64encode(w).decode('ascii')}?=" for w in words)


@dataclass(frozen=True)
class HeaderRules:
    """The schema's ``x-headers`` allow-list."""

    allowed: tuple[str, ...]
    allowed_prefixes: tuple[str, ...]
    refused_prefixes: tuple[str, ...]

    @classmethod
    def from_schema(cls, section: Mapping[str, Any]) -> HeaderRules:
        return cls(
            allowed=tuple(section["allowed"]),
            allowed_prefixes=tuple(section["allowedPrefixes"]),
            refused_prefixes=tuple(section["refusedPrefixes"]),
        )


def header_error(name: str, rules: HeaderRules) -> str | None:
    """Why a custom header name is refused, or None when the allow-list admits it."""
    # Header names are case-insensitive (RFC 5322 section 1.2.2).
    key = name.lower()
    if key in (a.lower() for a in rules.allowed):
        return None
    if any(
        key.startswith(p.lower()) and len(key) > len(p) for p in rules.allowed_prefixes
    ) and not any(key.startswith(p.lower()) for p in rules.refused_prefixes):
        return None
    return (
        f"the header {name!r} is not allowed: custom headers are "
        + ", ".join(rules.allowed)
        + ", "
        + ", ".join(f"{p}*" for p in rules.allowed_prefixes)
        + " (except "
        + ", ".join(f"{p}*" for p in rules.refused_prefixes)
        + "); the sender sets From, To, Reply-To and the rest itself"
    )
