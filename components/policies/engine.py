"""What every rule module shares: reading analyzer properties, secretness, the
violation type, and running the rules offline (:func:`evaluate`).

Rules see properties the way the analyzer hands them over: engine-side camelCase
keys, unknown values (``pulumi preview`` of resources not created yet) behind a
proxy that raises ``UnknownValueError`` on access. Every rule reads through
:func:`get`, which turns an unknown value into :data:`UNKNOWN`, so a rule skips
what it cannot know instead of failing the whole check.

Secretness: pulumi_policy unwraps secrets before a rule sees them and offers no
way to ask whether a value was one (pulumi/pulumi-policy#241). Rules that judge a
value by its secretness (Worker bindings, Vercel variables) need it, so both entry
points mark every string that was inside a Pulumi secret as a
:class:`SecretString`: :func:`evaluate` from the recording, the pack through
:func:`enable_secret_awareness` (called by ``policy/__main__.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import pulumi_policy.policy as _policy_module
from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import SPECIAL_SECRET_SIG, SPECIAL_SIG_KEY
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

if TYPE_CHECKING:
    from ..mocking import Recording

Level = Literal["mandatory", "advisory"]
Report = Callable[..., None]
"""``report(message, urn=None)``, as pulumi_policy passes it to a rule."""
Args = ResourceValidationArgs | PolicyResource
Policy = ResourceValidationPolicy | StackValidationPolicy

STACK_OUTPUTS_POLICY = "stack-outputs-no-plaintext-secrets"
"""The check :func:`evaluate` runs on stack outputs (no CrossGuard rule can see them)."""


@dataclass(frozen=True)
class Violation:
    """One rule broken by one resource (or by the stack)."""

    policy: str
    message: str
    urn: str
    level: Level

    def as_dict(self) -> dict[str, str]:
        return {
            "policy": self.policy,
            "message": self.message,
            "urn": self.urn,
            "level": self.level,
        }


class _Unknown:
    """What :func:`get` returns for a value not known until the update."""

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN = _Unknown()


def get(value: Any, *path: str | int) -> Any:
    """``value[path0][path1]...``; ``None`` when missing, :data:`UNKNOWN` when unknown."""
    for key in path:
        try:
            if isinstance(key, int):
                if not is_list(value) or key >= len(value):
                    return None
                value = value[key]
            else:
                if not isinstance(value, Mapping) or key not in value:
                    return None
                value = value[key]
        except UnknownValueError:
            return UNKNOWN
    if value == UNKNOWN_STRING_VALUE:
        return UNKNOWN
    return value


def is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def items(value: Any) -> Iterator[Any]:
    """The known elements of a list-like value (nothing if it is not one or unknown)."""
    if not is_list(value):
        return
    for i in range(len(value)):
        item = get(value, i)
        if item is not UNKNOWN:
            yield item


def strings(value: Any) -> list[str]:
    """A field that may be one string or a list of strings: its known strings."""
    if isinstance(value, str):
        return [] if value == UNKNOWN_STRING_VALUE else [value]
    return [v for v in items(value) if isinstance(v, str) and v != UNKNOWN_STRING_VALUE]


def number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else repr(value)


def of_type(args: StackValidationArgs, *types: str) -> list[PolicyResource]:
    return [r for r in args.resources if r.resource_type in types]


# --- Secretness ------------------------------------------------------------


class SecretString(str):
    """A string that was (inside) a Pulumi secret where the program set it."""

    __slots__ = ()


def mark_secret(value: Any) -> Any:
    """``value`` with every string inside it turned into a :class:`SecretString`."""
    if isinstance(value, str):
        return SecretString(value)
    if isinstance(value, dict):
        return {k: mark_secret(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mark_secret(v) for v in value]
    return value


def holds_secret(value: Any) -> bool:
    """Whether ``value`` is, or contains, a string that was a Pulumi secret."""
    if isinstance(value, SecretString):
        return True
    if isinstance(value, Mapping):
        return any(holds_secret(get(value, k)) for k in value)
    return any(holds_secret(v) for v in items(value))


def _mark_wire_secrets(value: Any) -> Any:
    """Engine wire values with each secret signature replaced by its marked value."""
    if isinstance(value, list):
        return [_mark_wire_secrets(v) for v in value]
    if isinstance(value, dict):
        if value.get(SPECIAL_SIG_KEY) == SPECIAL_SECRET_SIG and "value" in value:
            return mark_secret(_mark_wire_secrets(value["value"]))
        return {k: _mark_wire_secrets(v) for k, v in value.items()}
    return value


_ORIGINAL_DESERIALIZE = _policy_module.deserialize_properties


def _deserialize_marking_secrets(props: dict[str, Any], proxy_secrets: bool = False) -> Any:
    if proxy_secrets:  # Remediations keep pulumi_policy's own secret proxies.
        return _ORIGINAL_DESERIALIZE(props, proxy_secrets)
    return _ORIGINAL_DESERIALIZE(_mark_wire_secrets(props), False)


def enable_secret_awareness() -> None:
    """Make the pack's analyzer hand secret strings to rules as :class:`SecretString`.

    pulumi_policy's servicer deserializes properties with secrets unwrapped and
    unmarked (pulumi/pulumi-policy#241); this swaps in a deserializer that keeps
    the values but marks them. A :class:`SecretString` is a ``str``: every rule
    that reads the value reads it as before. Idempotent.
    """
    _policy_module.deserialize_properties = _deserialize_marking_secrets


def secret_awareness_enabled() -> bool:
    return _policy_module.deserialize_properties is _deserialize_marking_secrets


_SECRET_NAME_RE = re.compile(r"TOKEN|SECRET|KEY|PASSWORD|CREDENTIAL", re.IGNORECASE)
_IDENTIFIER_SUFFIX_RE = re.compile(r"_(ARN|NAME|URL|ID|IDS)$", re.IGNORECASE)


def looks_secret(name: str) -> bool:
    """Whether a variable, binding or output name suggests it holds a secret.

    Names with TOKEN, SECRET, KEY, PASSWORD or CREDENTIAL (any case) do, except
    identifiers of those things (``KMS_KEY_ARN``, ``SECRET_NAME``); the AWS access
    key id is a secret here all the same, since it is half of a credential pair.
    The rules judge values by their secretness first; a name is extra evidence.
    """
    if name.upper().replace("-", "_") == "AWS_ACCESS_KEY_ID":
        return True
    return bool(_SECRET_NAME_RE.search(name)) and not _IDENTIFIER_SUFFIX_RE.search(name)


# --- Building the pack -----------------------------------------------------

MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY


def resource_rule(
    name: str, description: str, validate: Callable[..., None], level: EnforcementLevel = MANDATORY
) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(
        name=name, description=description, enforcement_level=level, validate=validate
    )


def stack_rule(
    name: str, description: str, validate: Callable[..., None], level: EnforcementLevel = MANDATORY
) -> StackValidationPolicy:
    return StackValidationPolicy(
        name=name, description=description, enforcement_level=level, validate=validate
    )


# --- Stack outputs (offline plan only) -------------------------------------

# The SDK wraps these inputs in a secret whatever the program passes, so their
# secretness says nothing about the value.
SDK_SECRET_INPUTS = {
    ("vercel:index/projectEnvironmentVariable:ProjectEnvironmentVariable", "value"),
    ("vercel:index/projectEnvironmentVariable:ProjectEnvironmentVariable", "valueWo"),
    ("vercel:index/sharedEnvironmentVariable:SharedEnvironmentVariable", "value"),
    ("vercel:index/sharedEnvironmentVariable:SharedEnvironmentVariable", "valueWo"),
}


def check_stack_outputs(recording: Recording) -> list[Violation]:
    """Stack outputs that expose a secret in plain text.

    CrossGuard rules never see stack outputs, so this runs only in the offline
    plan; in the pack, the per-resource secret rules (Worker bindings, Vercel
    variables) guard the same values where they are used. An output is flagged
    when it is not a secret but its name looks secret, or its value (or a string
    inside it) is a value some resource received as a secret.
    """
    from ..mocking import Secret

    secrets: set[str] = set()

    def collect(value: Any, inside_secret: bool) -> None:
        if isinstance(value, Secret):
            collect(value.value, True)
        elif isinstance(value, Mapping):
            for v in value.values():
                collect(v, inside_secret)
        elif isinstance(value, list):
            for v in value:
                collect(v, inside_secret)
        elif inside_secret and isinstance(value, str) and value:
            secrets.add(value)

    for resource in recording.resources:
        for key, value in resource.inputs.items():
            if (resource.type, key) not in SDK_SECRET_INPUTS:
                collect(value, False)

    def all_strings(value: Any) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, Mapping):
            for v in value.values():
                yield from all_strings(v)
        elif isinstance(value, list):
            for v in value:
                yield from all_strings(v)

    violations = []
    urn = recording.stack_urn or "stack"
    for key, value in recording.stack_outputs.items():
        if isinstance(value, Secret):
            continue
        if looks_secret(key):
            reason = "its name says it holds a secret"
        elif any(s in secrets for s in all_strings(value)):
            reason = "it holds a value that is a secret where the stack uses it"
        else:
            continue
        violations.append(
            Violation(
                STACK_OUTPUTS_POLICY,
                f"Stack output {key} is plain text but {reason}: export it with "
                "pulumi.Output.secret(...) so it is encrypted in the state and masked.",
                urn,
                "mandatory",
            )
        )
    return violations


# --- The offline evaluation ------------------------------------------------


class _Resource:
    """A recorded resource in the shape pulumi_policy hands to a rule."""

    def __init__(self, urn: str, type_: str, name: str, props: Any) -> None:
        self.urn = urn
        self.resource_type = type_
        self.name = name
        self.props = props
        self.opts = None


def _level(policy: Policy) -> Level:
    return "advisory" if policy.enforcement_level == EnforcementLevel.ADVISORY else "mandatory"


def _analyzer_view(value: Any) -> Any:
    """Recorded values as the pack sees them: secrets marked, unknowns as sentinels."""
    from ..mocking import UNKNOWN as RECORDED_UNKNOWN
    from ..mocking import Secret

    if isinstance(value, Secret):
        return mark_secret(_analyzer_view(value.value))
    if value is RECORDED_UNKNOWN:
        return UNKNOWN_STRING_VALUE
    if isinstance(value, dict):
        return {k: _analyzer_view(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_analyzer_view(v) for v in value]
    return value


def evaluate(
    recording: Recording,
    policies: Iterable[Policy] | None = None,
    *,
    stack_outputs: bool = True,
) -> list[Violation]:
    """Run the rules (default: the whole pack) on what a program registered under the mocks.

    Resource rules see each custom resource's inputs; stack rules see every
    resource with its outputs (as ``pulumi preview`` would after creation). Values
    reach the rules as the pack's analyzer gives them: secrets marked, unknowns
    behind the unknown-checking proxy. A rule that trips over an unknown value is
    reported as an advisory "can't run during preview", as the analyzer does. With
    ``stack_outputs``, :func:`check_stack_outputs` runs too.
    """
    if policies is None:
        from .pack import POLICIES

        policies = POLICIES
    custom = [r for r in recording.resources if r.custom]
    resources = [
        _Resource(r.urn, r.type, r.name, unknown_checking_proxy(_analyzer_view(r.inputs)))
        for r in custom
    ]
    stack_view = [
        _Resource(
            r.urn, r.type, r.name, unknown_checking_proxy(_analyzer_view({**r.inputs, **r.outputs}))
        )
        for r in custom
    ]
    violations: list[Violation] = []

    def run(policy: Any, validate: Callable[..., None], args: Any, urn: str) -> None:
        def report(message: str, at: str | None = None) -> None:
            violations.append(Violation(policy.name, message, at or urn, _level(policy)))

        try:
            validate(args, report)
        except UnknownValueError as err:
            violations.append(
                Violation(policy.name, f"can't run during preview: {err.message}", urn, "advisory")
            )

    for policy in policies:
        for validate in _validators(policy):
            if isinstance(policy, ResourceValidationPolicy):
                for resource in resources:
                    run(policy, validate, resource, resource.urn)
            else:
                args = StackValidationArgs(stack_view, None)  # type: ignore[arg-type]
                run(policy, validate, args, recording.stack_urn or "stack")
    if stack_outputs:
        violations += check_stack_outputs(recording)
    return violations


def _validators(policy: Any) -> list[Callable[..., None]]:
    validate = policy.validate
    return list(validate) if isinstance(validate, list) else [validate]
