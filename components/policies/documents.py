"""IAM policy documents, normalised once for every rule that reads them.

A document may arrive as a JSON string or an object; ``Statement`` as an object
or a list; ``Action``/``Resource`` as a string or a list; element names, principal
types and condition keys in any case (IAM matches condition keys and service
prefixes case-insensitively: IAM User Guide, "IAM JSON policy elements:
Condition"). Rules read :class:`Statement` and never the raw JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from .engine import UNKNOWN, Args, get, items, strings

# Where each resource type carries a policy document, and what kind it is.
IDENTITY = "identity"
TRUST = "trust"
RESOURCE = "resource"
KEY = "key"

_DOCUMENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "aws:iam/rolePolicy:RolePolicy": (("policy", IDENTITY),),
    "aws:iam/userPolicy:UserPolicy": (("policy", IDENTITY),),
    "aws:iam/groupPolicy:GroupPolicy": (("policy", IDENTITY),),
    "aws:iam/policy:Policy": (("policy", IDENTITY),),
    "aws:iam/role:Role": (("assumeRolePolicy", TRUST),),
    "aws:sqs/queuePolicy:QueuePolicy": (("policy", RESOURCE),),
    "aws:sqs/queue:Queue": (("policy", RESOURCE),),
    "aws:sns/topicPolicy:TopicPolicy": (("policy", RESOURCE),),
    "aws:sns/topic:Topic": (("policy", RESOURCE),),
    "aws:kms/key:Key": (("policy", KEY),),
    "aws:kms/keyPolicy:KeyPolicy": (("policy", KEY),),
}


@dataclass(frozen=True)
class Statement:
    """One statement, every field normalised.

    ``principals`` maps a lower-case principal type (``aws``, ``service``,
    ``federated``, ``canonicaluser``) to its values; ``Principal: "*"`` is
    ``{"*": ("*",)}``. ``conditions`` maps an operator (as written) to its block,
    whose keys are lower-cased.
    """

    where: str
    kind: str
    sid: str | None
    allow: bool
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] = ()
    principals: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    not_principal: bool = False
    conditions: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)

    @property
    def public(self) -> bool:
        """``Principal: "*"`` in any spelling (``"*"``, ``{"AWS": "*"}``, ``{"AWS": ["*"]}``)."""
        return any("*" in values for values in self.principals.values())

    @property
    def services(self) -> tuple[str, ...]:
        return self.principals.get("service", ())

    def condition_values(self, key: str, operators: tuple[str, ...]) -> list[str] | None:
        """Values ``key`` is tested against under exactly one of ``operators``; None if never."""
        found: list[str] | None = None
        for operator, block in self.conditions.items():
            if operator.lower() in {o.lower() for o in operators} and key.lower() in block:
                found = (found or []) + list(block[key.lower()])
        return found

    def condition_keys(self) -> set[str]:
        return {key for block in self.conditions.values() for key in block}


def parse_document(document: Any) -> Mapping[str, Any] | None:
    """A policy document given as a JSON string or an object; ``None`` if unknown."""
    if document is UNKNOWN or document is None:
        return None
    if isinstance(document, str):
        if document == UNKNOWN_STRING_VALUE:
            return None
        try:
            parsed = json.loads(document)
        except ValueError:
            return None  # The provider rejects it on its own; nothing to judge here.
        return parsed if isinstance(parsed, Mapping) else None
    return document if isinstance(document, Mapping) else None


def _field(mapping: Any, name: str) -> Any:
    """``mapping[name]`` matching the element name case-insensitively."""
    if not isinstance(mapping, Mapping):
        return None
    for key in mapping:
        if str(key).lower() == name.lower():
            return get(mapping, key)
    return None


def _principals(value: Any) -> dict[str, tuple[str, ...]]:
    if isinstance(value, str):
        return {"*": ("*",)} if value == "*" else {"aws": (value,)}
    out: dict[str, tuple[str, ...]] = {}
    if isinstance(value, Mapping):
        for key in value:
            values = tuple(strings(get(value, key)))
            kind = str(key).lower()
            out[kind] = out.get(kind, ()) + values
    return out


def _conditions(value: Any) -> dict[str, dict[str, tuple[str, ...]]]:
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    if isinstance(value, Mapping):
        for operator in value:
            block = get(value, operator)
            if isinstance(block, Mapping):
                out[str(operator)] = {str(k).lower(): tuple(strings(get(block, k))) for k in block}
    return out


def statements_of(document: Mapping[str, Any], where: str, kind: str) -> Iterator[Statement]:
    raw = _field(document, "Statement")
    listed = [raw] if isinstance(raw, Mapping) else list(items(raw))
    for statement in listed:
        if not isinstance(statement, Mapping):
            continue
        effect = _field(statement, "Effect")
        principal = _field(statement, "Principal")
        not_principal = _field(statement, "NotPrincipal")
        yield Statement(
            where=where,
            kind=kind,
            sid=sid if isinstance(sid := _field(statement, "Sid"), str) else None,
            # Anything but an explicit Deny is judged as an Allow: IAM rejects other
            # effects, and a rule must not be skipped by a misspelling.
            allow=not (isinstance(effect, str) and effect.lower() == "deny"),
            actions=tuple(strings(_field(statement, "Action"))),
            not_actions=tuple(strings(_field(statement, "NotAction"))),
            resources=tuple(strings(_field(statement, "Resource"))),
            not_resources=tuple(strings(_field(statement, "NotResource"))),
            principals=_principals(principal if principal is not None else not_principal),
            not_principal=not_principal is not None,
            conditions=_conditions(_field(statement, "Condition")),
        )


def statements(args: Args, kinds: tuple[str, ...] | None = None) -> Iterator[Statement]:
    """Every statement of every policy document ``args`` carries (of ``kinds``)."""
    props = args.props
    for key, kind in _DOCUMENTS.get(args.resource_type, ()):
        if kinds is not None and kind not in kinds:
            continue
        document = parse_document(get(props, key))
        if document is not None:
            yield from statements_of(document, key, kind)
    if args.resource_type == "aws:iam/role:Role" and (kinds is None or IDENTITY in kinds):
        for inline in items(get(props, "inlinePolicies")):
            document = parse_document(get(inline, "policy"))
            if document is not None:
                where = f"inline_policies[{get(inline, 'name')}]"
                yield from statements_of(document, where, IDENTITY)


def has_wildcard(value: str) -> bool:
    return "*" in value or "?" in value


def matches(pattern: str, value: str) -> bool:
    """IAM's matching of an action pattern: ``*`` any run, ``?`` one character, no case."""
    regex = "".join(
        ".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.lower()
    )
    return re.fullmatch(regex, value.lower(), re.DOTALL) is not None


def grants(statement: Statement, action: str) -> bool:
    """Whether the statement's Action (or NotAction) covers ``action``, as IAM matches it."""
    if statement.not_actions:
        return not any(matches(a, action) for a in statement.not_actions)
    return any(matches(a, action) for a in statement.actions)


def service(action: str) -> str:
    return action.split(":", 1)[0].lower()
