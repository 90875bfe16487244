"""Checked settings: each ``…Args`` field carries the rule its values must follow.

A field's rule (range, choices, pattern) is written once, as field metadata::

    memory_mb: int = field(default=256, metadata=rule(Int(128, 10240)))

and used three ways: ``check_fields`` validates it (the Python API and the stage config
alike), the stage-config key table (``serverless_mail.config.CONFIG_KEYS``) reads its type
and range for the README's config reference, and the config contract test writes a value
outside it. ``strict_args`` makes an ``…Args`` class refuse unknown, missing and
positional arguments with a :class:`ConfigError` (a did-you-mean, never a ``TypeError``).
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import difflib
import functools
import inspect
import itertools
import re
import textwrap
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import ConfigError
from .validation import (
    check_bool,
    check_domain,
    check_email,
    check_int,
    check_pattern,
    is_unresolved,
)

__all__ = [
    "Bool",
    "Choice",
    "ChoiceList",
    "Domain",
    "Email",
    "EmailList",
    "Int",
    "Number",
    "Pattern",
    "Rule",
    "check_fields",
    "did_you_mean",
    "field_docs",
    "field_rule",
    "plain_text",
    "prefixed",
    "rule",
    "strict_args",
]

_C = TypeVar("_C", bound=type)


class Rule:
    """What one setting's values must be; ``check`` raises :class:`ConfigError`."""

    type_name = "value"

    def check(self, key: str, value: Any) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        """The allowed values, for the config reference."""
        return self.type_name

    def invalid_example(self) -> Any:
        """A value this rule refuses (used by the config contract test)."""
        return {"not": "valid"}


@dataclass(frozen=True)
class Number(Rule):
    """A number (integer or decimal) in ``(low, high]``, or ``[low, high]`` when
    ``low_inclusive``."""

    low: float
    high: float
    low_inclusive: bool = False
    example_invalid: float = -1.0
    hint: str = ""
    """Said after the range in messages and docs, e.g. ``a rate: 0.05 is 5%``."""
    type_name = "number"

    def check(self, key: str, value: Any) -> None:
        if is_unresolved(value):
            return
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(
                f"`{key}` must be a number {self._range()}, but {value!r} "
                f"({type(value).__name__}) was provided"
            )
        above = value >= self.low if self.low_inclusive else value > self.low
        if not (above and value <= self.high):
            raise ConfigError(f"`{key}` must be {self._range()}, but {value} was provided")

    def _range(self) -> str:
        hint = f" ({self.hint})" if self.hint else ""
        if self.low_inclusive:
            return f"from {self.low:g} to {self.high:g}{hint}"
        return f"above {self.low:g} and at most {self.high:g}{hint}"

    def describe(self) -> str:
        return f"number, {self._range()}"

    def invalid_example(self) -> Any:
        return self.example_invalid


@dataclass(frozen=True)
class Int(Rule):
    """A whole number in ``[low, high]``."""

    low: int
    high: int
    type_name = "integer"

    def check(self, key: str, value: Any) -> None:
        check_int(key, value, self.low, self.high)

    def describe(self) -> str:
        return f"integer, {self.low} to {self.high}"

    def invalid_example(self) -> Any:
        return self.high + 1


@dataclass(frozen=True)
class Bool(Rule):
    """``true`` or ``false``."""

    type_name = "bool"

    def check(self, key: str, value: Any) -> None:
        check_bool(key, value)

    def describe(self) -> str:
        return "bool"

    def invalid_example(self) -> Any:
        return "yes"


@dataclass(frozen=True)
class Choice(Rule):
    """One of a closed set of values (strings or numbers, never a bool)."""

    values: tuple[Any, ...]
    what: str | None = None
    """Names the set in the message (e.g. "CloudWatch's retention values")."""

    @property
    def type_name(self) -> str:  # type: ignore[override]
        return "integer" if all(isinstance(v, int) for v in self.values) else "string"

    def check(self, key: str, value: Any) -> None:
        if is_unresolved(value):
            return
        if isinstance(value, bool) or value not in self.values:
            listed = ", ".join(repr(v) for v in self.values)
            shown = repr(value) if isinstance(value, str) else str(value)
            what = f"{self.what} ({listed})" if self.what else listed
            raise ConfigError(f"`{key}` must be one of {what}, but {shown} was provided")

    def describe(self) -> str:
        return " \\| ".join(f"`{v}`" for v in self.values)

    def invalid_example(self) -> Any:
        return -1 if self.type_name == "integer" else "not-a-choice"


@dataclass(frozen=True)
class Pattern(Rule):
    """A string matching ``regex``; ``what`` describes it in messages and docs."""

    regex: re.Pattern[str]
    what: str
    example_invalid: str = "Not Valid!"
    type_name = "string"

    def check(self, key: str, value: Any) -> None:
        check_pattern(key, value, self.regex, self.what)

    def describe(self) -> str:
        return self.what

    def invalid_example(self) -> Any:
        return self.example_invalid


@dataclass(frozen=True)
class Domain(Rule):
    """A lower-case DNS name."""

    type_name = "domain"

    def check(self, key: str, value: Any) -> None:
        check_domain(key, value)

    def describe(self) -> str:
        return "lower-case domain name"

    def invalid_example(self) -> Any:
        return "https://Example.com/"


@dataclass(frozen=True)
class Email(Rule):
    """An address, optionally with a display name (``Name <addr>``)."""

    display_name: bool = False
    type_name = "address"

    def check(self, key: str, value: Any) -> None:
        check_email(key, value, display_name=self.display_name)

    def describe(self) -> str:
        return "address or `Name <address>`" if self.display_name else "address"

    def invalid_example(self) -> Any:
        return "not-an-address"


@dataclass(frozen=True)
class EmailList(Rule):
    """A list of bare addresses."""

    type_name = "list of addresses"

    def check(self, key: str, value: Any) -> None:
        if is_unresolved(value):
            return
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ConfigError(
                f"`{key}` must be a list of addresses such as ['reports@example.com'], "
                f"but {value!r} was provided"
            )
        for i, address in enumerate(value):
            check_email(f"{key}[{i}]", address)

    def describe(self) -> str:
        return "list of addresses"

    def invalid_example(self) -> Any:
        return ["not-an-address"]


def rule(r: Rule) -> dict[str, Any]:
    """Field metadata carrying ``r``: ``field(default=..., metadata=rule(Int(1, 9)))``."""
    return {"rule": r}


def field_rule(f: dataclasses.Field[Any]) -> Rule | None:
    """The rule a dataclass field carries, if any."""
    found = f.metadata.get("rule")
    return found if isinstance(found, Rule) else None


def check_fields(args: Any, prefix: str = "") -> None:
    """Check every field of ``args`` that carries a rule (``None`` means unset)."""
    for f in dataclasses.fields(args):
        r = field_rule(f)
        value = getattr(args, f.name)
        if r is not None and value is not None:
            r.check(prefix + f.name, value)


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean `x`?)`` for the closest known name, else ``""``."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    if not close:
        lowered = {k.lower(): k for k in known}
        hit = lowered.get(name.lower().replace("_", "").replace("-", ""))
        close = [hit] if hit else []
    return f" (did you mean `{close[0]}`?)" if close else ""


def strict_args(cls: _C) -> _C:
    """Make a dataclass's ``__init__`` raise :class:`ConfigError`, not ``TypeError``.

    An unknown argument gets a did-you-mean and the list of known ones, a missing
    required one is named, positional arguments are refused. The signature seen by
    ``inspect`` and IDEs is the dataclass's own.
    """
    generated: Callable[..., None] = cls.__init__  # type: ignore[misc]
    fields = [f for f in dataclasses.fields(cls) if f.init]
    names = [f.name for f in fields]
    required = [
        f.name
        for f in fields
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    owner = cls.__name__

    @functools.wraps(generated)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if args:
            raise ConfigError(
                f"`{owner}` takes keyword arguments only, but {len(args)} positional "
                f"argument(s) were provided: name them, e.g. `{owner}({names[0]}=...)`"
            )
        for name in kwargs:
            if name not in names:
                raise ConfigError(
                    f"`{name}` is not an argument of `{owner}`{did_you_mean(name, names)}; "
                    f"its arguments are: {', '.join(names)}"
                )
        missing = [name for name in required if name not in kwargs]
        if missing:
            raise ConfigError(
                f"`{missing[0]}` is required by `{owner}`, but none was provided: "
                f"pass `{missing[0]}=...`"
            )
        generated(self, **kwargs)

    __init__.__signature__ = inspect.signature(generated)  # type: ignore[attr-defined]
    cls.__init__ = __init__  # type: ignore[misc]
    return cls


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Each field's docstring (the string literal after it), read from the source of
    ``cls`` and its dataclass bases.

    Dataclass field docstrings are the one documentation of each argument (STYLE.md);
    Python keeps no reference to them at run time, so they are read from the class
    source, which the wheel ships.
    """
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not dataclasses.is_dataclass(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        tree = ast.parse(source)
        body = next(n for n in tree.body if isinstance(n, ast.ClassDef)).body
        for node, following in itertools.pairwise(body):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[node.target.id] = inspect.cleandoc(following.value.value)
    return docs


@dataclass(frozen=True)
class ChoiceList(Rule):
    """A non-empty list of distinct values from a closed set."""

    values: tuple[str, ...]
    example: str
    type_name = "list"

    def check(self, key: str, value: Any) -> None:
        if is_unresolved(value):
            return
        if isinstance(value, str) or not isinstance(value, (tuple, list)):
            raise ConfigError(
                f"`{key}` must be a list such as {self.example}, but {value!r} was provided"
            )
        if not value:
            raise ConfigError(
                f"`{key}` must name at least one of {', '.join(map(repr, self.values))}, "
                "but an empty list was provided"
            )
        for i, item in enumerate(value):
            Choice(self.values).check(f"{key}[{i}]", item)
        if len(set(value)) != len(value):
            raise ConfigError(f"`{key}` must not repeat a value, but {list(value)!r} was provided")

    def describe(self) -> str:
        return "list of " + " \\| ".join(f"`{v}`" for v in self.values)

    def invalid_example(self) -> Any:
        return ["prod"]


_ARG_NAME_RE = re.compile(r"`([a-z_][a-z0-9_]*)((?:\.[a-z_][a-z0-9_]*|\[\d+\])*)`")


@contextlib.contextmanager
def prefixed(prefix: str, rename: Mapping[str, str] | None = None) -> Iterator[None]:
    """Re-raise a :class:`ConfigError` with its argument names under ``prefix``.

    ``timeout_seconds`` raised while checking the Lambda settings becomes
    ``lambda_sender.timeout_seconds``; names in ``rename`` (wiring the caller filled
    from elsewhere) become the name given there instead.
    """
    try:
        yield
    except ConfigError as err:
        renames = rename or {}

        def qualify(m: re.Match[str]) -> str:
            head, tail = m.group(1), m.group(2)
            if head in renames:
                return f"`{renames[head]}{tail}`"
            return f"`{prefix}.{head}{tail}`"

        raise ConfigError(_ARG_NAME_RE.sub(qualify, str(err))) from None


_RST_LITERAL = re.compile(r"``([^`]+)``")
_RST_ROLE = re.compile(r":(?:class|data|meth|func|attr):`~?([^`]+)`")


def plain_text(doc: str) -> str:
    """A docstring as a schema description: reStructuredText markup as plain backticks,
    indentation removed, wrapped lines joined into paragraphs."""
    text = _RST_ROLE.sub(r"`\1`", _RST_LITERAL.sub(r"`\1`", inspect.cleandoc(doc)))
    paragraphs = re.split(r"\n\s*\n", text)
    return "\n\n".join(
        p if re.search(r"^\s*(?:[-*]|\w[\w /]*:\s*$)", p, re.M) else " ".join(p.split())
        for p in paragraphs
    )


def require_args(args: Any, cls: type, component: str) -> None:
    """Refuse a component's ``args`` of the wrong type with a :class:`ConfigError` (a
    mapping or a string would otherwise fail later as an ``AttributeError``)."""
    if not isinstance(args, cls):
        raise ConfigError(
            f"`args` of {component} must be a {cls.__name__}, but {type(args).__name__} "
            f"was provided: build it as {cls.__name__}(...)"
        )
