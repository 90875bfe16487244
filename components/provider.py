"""The components as a Pulumi component package, for programs in any language.

``pulumi.provider.experimental`` infers the package schema from a component's
type annotations and hands ``construct`` a plain ``dict`` of inputs. Our components
take frozen dataclasses (validated, documented once) and carry provider resources
as attributes, neither of which the analyzer reads. So each exposed component gets
a thin provider-facing twin, generated here from one :data:`EXPOSED` entry:

* its ``Args`` is a ``TypedDict`` derived field by field from the dataclass (fields
  with a default are ``NotRequired``; ``tuple`` becomes a list; ``Literal`` becomes
  its base type, still checked by ``validate()``; nested dataclasses become nested
  types). Descriptions are the dataclass field docstrings, read from source;
* its outputs are the listed attributes, typed ``Output[...]``;
* at ``construct`` it builds the dataclass from the inputs and instantiates the real
  component as its only child (same type token and name), then copies the outputs.

A non-Python program therefore sees one extra component level above the real one;
Python programs import the real classes directly. Adding a component to the package
is one :class:`Exposed` entry; ``scripts/gen_schema.py`` then refreshes the snapshot.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, Optional, TypedDict, Union

import pulumi
from pulumi.provider.experimental.analyzer import Analyzer, is_input, unwrap_input
from pulumi.provider.experimental.schema import generate_schema

from .email_domain import EmailDomain, EmailDomainArgs
from .email_queue import EmailQueue, EmailQueueArgs
from .settings import field_docs, plain_text
from .transactional_email import OUTPUTS, TransactionalEmail, TransactionalEmailArgs
from .vercel_env import VercelEnv, VercelEnvArgs

__all__ = [
    "EXPOSED",
    "PACKAGE_NAME",
    "PACKAGE_VERSION",
    "Exposed",
    "package_schema",
    "provider_components",
]

PACKAGE_NAME = "serverless-mail"
PACKAGE_VERSION = "0.1.0"
"""Kept equal to ``pyproject.toml``'s version (a test checks it)."""


@dataclass(frozen=True)
class Exposed:
    """One component offered to other languages."""

    component: type[Any]
    """The real component class; its ``__init__(name, args, opts)`` takes ``args_type``."""

    args_type: type
    """Its frozen dataclass of arguments."""

    outputs: Mapping[str, Any]
    """Attribute name → Python type of each output (``T | None`` when it may be absent)."""

    read_outputs: Callable[[Any], Mapping[str, Any]] | None = field(default=None)
    """Where the outputs are read from. Default: ``None`` (the attributes themselves)."""

    off_when_absent: tuple[str, ...] = ()
    """Optional parts (settings objects) that an absent or ``null`` input turns off: the
    engine sends no value for either, so the package cannot tell "defaults" from
    "off"; a program asks for a part by giving its settings (``{}`` for defaults).
    Default: none."""


EXPOSED: tuple[Exposed, ...] = (
    Exposed(
        EmailDomain,
        EmailDomainArgs,
        {
            "arn": str,
            "configuration_set_name": str,
            "configuration_set_arn": str,
            "events_topic_arn": str,
            "dns_records": list[dict[str, Any]],
        },
    ),
    Exposed(
        VercelEnv,
        VercelEnvArgs,
        {"role_arn": str | None, "oidc_provider_arn": str | None, "targets": list[str]},
    ),
    Exposed(
        EmailQueue,
        EmailQueueArgs,
        {
            "arn": str,
            "url": str,
            "name": str,
            "dead_letter_queue_arn": str,
            "dead_letter_queue_url": str,
        },
    ),
    # LambdaSender and WorkerSender take other components as arguments, which a
    # package schema cannot express; other languages get them through the aggregate.
    Exposed(
        TransactionalEmail,
        TransactionalEmailArgs,
        OUTPUTS,
        read_outputs=lambda component: component.outputs,
        off_when_absent=("lambda_sender", "worker_sender", "events"),
    ),
)
"""Every component in the package, in schema order: add one entry per component."""


def provider_components() -> list[type[pulumi.ComponentResource]]:
    """The provider-facing component classes, one per :data:`EXPOSED` entry."""
    converter = _Converter()
    return [converter.component(entry) for entry in EXPOSED]


def package_schema() -> dict[str, Any]:
    """The package schema, inferred exactly as ``component_provider_host`` infers it."""
    result = Analyzer(PACKAGE_NAME).analyze(provider_components())
    spec = generate_schema(
        PACKAGE_NAME,
        PACKAGE_VERSION,
        None,
        result["component_definitions"],
        result["type_definitions"],
        sorted(result["dependencies"], key=lambda d: f"{d.name}{d.version}"),
    )
    schema: dict[str, Any] = spec.to_json()
    return schema


_SIMPLE = (str, int, float, bool)
_TYPED_DICT: Any = TypedDict  # the functional form, with names known only at run time


class _Converter:
    """Dataclass types → ``TypedDict`` types for the analyzer, and wire dicts back."""

    def __init__(self) -> None:
        self._typed_dicts: dict[type, type] = {}

    def component(self, entry: Exposed) -> type[pulumi.ComponentResource]:
        real = entry.component
        token = f"{PACKAGE_NAME}:index:{real.__name__}"
        args_dict = self.typed_dict(entry.args_type)
        to_dataclass = self.to_dataclass

        def __init__(
            self: pulumi.ComponentResource,
            name: str,
            args: Mapping[str, Any],
            opts: pulumi.ResourceOptions | None = None,
        ) -> None:
            pulumi.ComponentResource.__init__(self, token, name, {}, opts)
            given = dict(args)
            for part in entry.off_when_absent:
                given.setdefault(part, None)
            inner = real(
                name, to_dataclass(entry.args_type, given), pulumi.ResourceOptions(parent=self)
            )
            values = entry.read_outputs(inner) if entry.read_outputs else None
            outputs = {
                key: values.get(key) if values is not None else getattr(inner, key, None)
                for key in entry.outputs
            }
            for key, value in outputs.items():
                setattr(self, key, list(value) if isinstance(value, tuple) else value)
            self.register_outputs({k: getattr(self, k) for k in outputs})

        __init__.__annotations__ = {
            "name": str,
            "args": args_dict,
            "opts": Optional[pulumi.ResourceOptions],  # noqa: UP045
            "return": None,
        }
        namespace = {
            "__init__": __init__,
            "__doc__": plain_text(real.__doc__ or ""),
            "__module__": __name__,
            "__qualname__": real.__name__,
            "__annotations__": {k: _output_type(t) for k, t in entry.outputs.items()},
        }
        return types.new_class(
            real.__name__, (pulumi.ComponentResource,), exec_body=lambda ns: ns.update(namespace)
        )

    def typed_dict(self, dc: type) -> type:
        if dc in self._typed_dicts:
            return self._typed_dicts[dc]
        hints = _annotations(dc)
        fields: dict[str, Any] = {}
        for f in dataclasses.fields(dc):
            ptype = self.provider_type(hints[f.name], f"{dc.__name__}.{f.name}")
            has_default = (
                f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            )
            fields[f.name] = NotRequired[ptype] if has_default else ptype
        td: type = _TYPED_DICT(dc.__name__, fields)
        # The analyzer reads field descriptions from the class source: point it at the
        # dataclass, whose field docstrings are the one documentation of each argument.
        td.__module__ = dc.__module__
        td.__qualname__ = dc.__qualname__
        td.__doc__ = plain_text(dc.__doc__ or "")
        td.__dataclass_source__ = dc  # type: ignore[attr-defined]
        self._typed_dicts[dc] = td
        return td

    def provider_type(self, t: Any, where: str) -> Any:
        origin, args = typing.get_origin(t), typing.get_args(t)
        if origin in (Union, types.UnionType) and type(None) in args:
            rest = _typed_arms(args)
            inner = rest[0] if len(rest) == 1 else Union[rest]  # noqa: UP007
            return Optional[self.provider_type(inner, where)]  # noqa: UP045
        if is_input(t):
            return pulumi.Input[self.provider_type(unwrap_input(t), where)]  # type: ignore[misc]
        if t in _SIMPLE or t is Any:
            return t
        if origin is Literal:
            return type(args[0])
        if origin in (tuple, list) and args:
            return list[self.provider_type(args[0], where)]  # type: ignore[misc]
        if origin in (dict, Mapping) and len(args) == 2 and args[0] is str:
            return dict[str, self.provider_type(args[1], where)]  # type: ignore[misc]
        if dataclasses.is_dataclass(t) and isinstance(t, type):
            return self.typed_dict(t)
        raise TypeError(f"{where}: the component package cannot express {t!r}")

    def to_dataclass(self, dc: type, values: Mapping[str, Any]) -> Any:
        hints = _annotations(dc)
        kwargs = {
            f.name: self._from_wire(hints[f.name], values[f.name])
            for f in dataclasses.fields(dc)
            if f.name in values
        }
        return dc(**kwargs)

    def _from_wire(self, t: Any, value: Any) -> Any:
        if value is None or isinstance(value, pulumi.Output):
            return value
        origin, args = typing.get_origin(t), typing.get_args(t)
        if origin in (Union, types.UnionType) and type(None) in args:
            rest = _typed_arms(args)
            return self._from_wire(rest[0], value) if len(rest) == 1 else value
        if t is int and isinstance(value, float) and value.is_integer():
            # Numbers arrive as floats; the experimental host converts integer inputs
            # but then stores the unconverted value (pulumi 3.272, component.py).
            return int(value)
        if dataclasses.is_dataclass(t) and isinstance(t, type) and isinstance(value, Mapping):
            return self.to_dataclass(t, value)
        if origin is tuple and isinstance(value, list):
            return tuple(self._from_wire(args[0], v) for v in value)
        return value


def _output_type(t: Any) -> Any:
    """``pulumi.Output[T]``, optional when ``t`` is ``T | None``."""
    args = typing.get_args(t)
    if typing.get_origin(t) in (Union, types.UnionType) and type(None) in args:
        (inner,) = (a for a in args if a is not type(None))
        return Optional[pulumi.Output[inner]]  # type: ignore[valid-type]  # noqa: UP045
    return pulumi.Output[t]


def _typed_arms(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """A union's arms without ``None``, and without a ``Mapping`` arm that only stands
    beside a settings dataclass for Python callers (``X | Mapping[str, Any] | None``)."""
    rest = tuple(a for a in args if a is not type(None))
    if any(dataclasses.is_dataclass(a) for a in rest):
        rest = tuple(a for a in rest if typing.get_origin(a) not in (Mapping, dict))
    return rest


_ORIGINAL_GET_DOCSTRING = Analyzer.get_docstring


def _plain_docstring(self: Analyzer, typ: type, name: str) -> str | None:
    source = getattr(typ, "__dataclass_source__", None)
    if source is not None:
        # Our TypedDicts stand for a dataclass whose fields may be inherited
        # (VercelEnvArgs from VercelEnvSettings): read each field's own docstring.
        found: str | None = field_docs(source).get(name)
    else:
        found = _ORIGINAL_GET_DOCSTRING(self, typ, name)
    return plain_text(found) if found else found


def _annotations(dc: type) -> dict[str, Any]:
    """A dataclass's field annotations, evaluated, its bases' included."""
    hints: dict[str, Any] = {}
    for klass in reversed(dc.__mro__):
        if dataclasses.is_dataclass(klass):
            hints.update(inspect.get_annotations(klass, eval_str=True))
    return hints


# The analyzer (ours and the one component_provider_host builds) reads descriptions
# straight from the dataclass field docstrings, which are written in reStructuredText
# for Python readers; other languages' SDKs show descriptions as plain text.
Analyzer.get_docstring = _plain_docstring  # type: ignore[method-assign]
