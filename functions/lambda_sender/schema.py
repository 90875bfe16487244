"""Loads the message schema and validates instances against it.

The contract is a JSON Schema 2020-12 document shared with the Worker. fastjsonschema
(the engine behind Powertools' validation utility) cannot compile it: it rewrites every
`$` of a pattern into `\\Z`, including the literal `$` inside the mailbox character
class, and fails with "bad escape \\Z". The full `jsonschema` package needs the native
`rpds-py`, which would have to be built per architecture. The schema uses a small,
closed set of keywords, so this module implements exactly those, refuses to load a
schema that uses any other (a silently ignored keyword would accept bad mail), and the
tests check it agrees with the `jsonschema` reference implementation on every vector.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from .address import HeaderRules, header_error
from .errors import SchemaError

__all__ = ["SCHEMA_FILENAME", "MessageSchema", "find_schema_path", "load_schema"]

SCHEMA_FILENAME = "message.schema.json"

_HERE = Path(__file__).resolve().parent
# Inside the deployment zip the builder puts the schema beside the code; in a source
# checkout it lives in functions/schema/.
_SCHEMA_CANDIDATES = (_HERE / SCHEMA_FILENAME, _HERE.parent / "schema" / SCHEMA_FILENAME)

_ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "title",
        "description",
        "examples",
        "default",
        "x-limits",
        "x-mailbox",
        "x-headers",
        "x-tags",
    }
)
_ASSERTIONS = frozenset(
    {
        "$ref",
        "$defs",
        "type",
        "required",
        "properties",
        "additionalProperties",
        "propertyNames",
        "maxProperties",
        "items",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "pattern",
        "allOf",
        "anyOf",
        "oneOf",
        "not",
    }
)
_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def find_schema_path() -> Path:
    """Return the schema beside the code (zip) or in ``../schema`` (source checkout)."""
    for candidate in _SCHEMA_CANDIDATES:
        if candidate.is_file():
            return candidate
    raise SchemaError(
        f"`{SCHEMA_FILENAME}` not found; looked in: "
        + ", ".join(str(c) for c in _SCHEMA_CANDIDATES)
    )


@cache
def load_schema() -> MessageSchema:
    """Load and check the message schema once per process."""
    return MessageSchema(json.loads(find_schema_path().read_text(encoding="utf-8")))


class MessageSchema:
    """A validator for the subset of JSON Schema 2020-12 the message contract uses."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        limits = document.get("x-limits", {})
        try:
            self.max_recipients = int(limits["maxRecipients"])
            self.max_message_bytes = int(limits["maxMessageBytes"])
        except (KeyError, TypeError, ValueError) as exc:
            raise SchemaError(
                "`x-limits` must give integer `maxRecipients` and `maxMessageBytes`"
            ) from exc
        try:
            self.header_rules = HeaderRules.from_schema(document["x-headers"])
        except (KeyError, TypeError) as exc:
            raise SchemaError(
                "`x-headers` must give the lists `allowed`, `allowedPrefixes` and `refusedPrefixes`"
            ) from exc
        try:
            self.reserved_tags = tuple(str(n) for n in document["x-tags"]["reserved"])
        except (KeyError, TypeError) as exc:
            raise SchemaError("`x-tags` must give the list `reserved`") from exc
        self._patterns: dict[str, re.Pattern[str]] = {}
        self._check(document, "#")

    def header_error(self, name: str) -> str | None:
        """Why the schema's ``x-headers`` allow-list refuses a custom header, or None."""
        return header_error(name, self.header_rules)

    def first_error(self, instance: Any) -> str | None:
        """Return the reason the instance breaks the schema, or None when it conforms."""
        return self._validate(self.document, instance, "message", None)

    # Schema loading -------------------------------------------------------------

    def _check(self, schema: Any, where: str) -> None:
        if isinstance(schema, bool):
            return
        if not isinstance(schema, dict):
            raise SchemaError(f"{where}: a schema must be an object or a boolean")
        unknown = set(schema) - _ANNOTATIONS - _ASSERTIONS
        if unknown:
            raise SchemaError(
                f"{where}: unsupported keyword(s) {sorted(unknown)}; extend lambda_sender/schema.py"
            )
        ref = schema.get("$ref")
        if ref is not None and not (isinstance(ref, str) and ref.startswith("#/")):
            raise SchemaError(f"{where}: only local `$ref`s (#/...) are supported, got {ref!r}")
        if "pattern" in schema:
            self._patterns[schema["pattern"]] = re.compile(schema["pattern"])
        for key in ("properties", "$defs"):
            for name, sub in schema.get(key, {}).items():
                self._check(sub, f"{where}/{key}/{name}")
        for key in ("items", "propertyNames", "not", "additionalProperties"):
            if key in schema:
                self._check(schema[key], f"{where}/{key}")
        for key in ("allOf", "anyOf", "oneOf"):
            for i, sub in enumerate(schema.get(key, [])):
                self._check(sub, f"{where}/{key}/{i}")
        if ref is not None:
            self._resolve(ref)

    def _resolve(self, ref: str) -> Any:
        node: Any = self.document
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise SchemaError(f"`$ref` {ref!r} does not resolve")
            node = node[part]
        return node

    # Validation -------------------------------------------------------------------

    def _validate(self, schema: Any, value: Any, path: str, rule: str | None) -> str | None:
        # `rule` is the name of the innermost $defs entry, so a reason says which
        # contract rule failed ("singleLine") rather than only a keyword.
        if schema is True:
            return None
        if schema is False:
            return f"`{path}` is not allowed"
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            error = self._validate(self._resolve(schema["$ref"]), value, path, name)
            if error:
                return error
        expected = schema.get("type")
        if expected is not None and not _TYPES[expected](value):
            return f"`{path}` must be of type {expected}"
        if isinstance(value, str):
            error = self._validate_string(schema, value, path, rule)
        elif isinstance(value, dict):
            error = self._validate_object(schema, value, path, rule)
        elif isinstance(value, list):
            error = self._validate_array(schema, value, path, rule)
        else:
            error = None
        if error:
            return error
        for sub in schema.get("allOf", []):
            error = self._validate(sub, value, path, rule)
            if error:
                return error
        if "anyOf" in schema:
            errors = [self._validate(sub, value, path, rule) for sub in schema["anyOf"]]
            if all(errors):
                return (
                    _best(errors)
                    if _mentions_present_field(errors)
                    else _any_of_reason(schema["anyOf"], path)
                )
        if "oneOf" in schema:
            errors = [self._validate(sub, value, path, rule) for sub in schema["oneOf"]]
            matched = errors.count(None)
            if matched == 0:
                return _best(errors)
            if matched > 1:
                return f"`{path}` matches more than one allowed form"
        if "not" in schema and self._validate(schema["not"], value, path, rule) is None:
            if rule == "singleLine":
                return f"`{path}` must be a single line: CR and LF are not allowed"
            return f"`{path}` matches a forbidden form"
        return None

    def _validate_string(
        self, schema: dict[str, Any], value: str, path: str, rule: str | None
    ) -> str | None:
        if "minLength" in schema and len(value) < schema["minLength"]:
            return f"`{path}` must be at least {schema['minLength']} character(s) long"
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            limit = schema["maxLength"]
            return f"`{path}` must be at most {limit} characters long, but has {len(value)}"
        if "pattern" in schema and not self._patterns[schema["pattern"]].search(value):
            what = (
                f"a valid {rule}"
                if rule and rule != "singleLine"
                else "the allowed characters and form"
            )
            return f"`{path}` must be {what}"
        return None

    def _validate_object(
        self, schema: dict[str, Any], value: dict[str, Any], path: str, rule: str | None
    ) -> str | None:
        for name in schema.get("required", []):
            if name not in value:
                return f"`{_join(path, name)}` is required"
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            return (
                f"`{path}` may have at most {schema['maxProperties']} entries, but has {len(value)}"
            )
        properties = schema.get("properties", {})
        for name, item in value.items():
            if "propertyNames" in schema:
                error = self._validate(
                    schema["propertyNames"], name, f"{path} key {name!r}"[:200], rule
                )
                if error:
                    return error
            if name in properties:
                sub = properties[name]
            elif "additionalProperties" in schema:
                sub = schema["additionalProperties"]
                if sub is False:
                    return f"`{_join(path, name)}` is not a field of the message contract"
            else:
                continue
            error = self._validate(sub, item, _join(path, name), None)
            if error:
                return error
        return None

    def _validate_array(
        self, schema: dict[str, Any], value: list[Any], path: str, rule: str | None
    ) -> str | None:
        if "minItems" in schema and len(value) < schema["minItems"]:
            return f"`{path}` must have at least {schema['minItems']} item(s)"
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            return f"`{path}` may have at most {schema['maxItems']} items, but has {len(value)}"
        if "items" in schema:
            for i, item in enumerate(value):
                error = self._validate(schema["items"], item, f"{path}[{i}]", rule)
                if error:
                    return error
        return None


def _join(path: str, name: str) -> str:
    return name if path == "message" else f"{path}.{name}"


def _best(errors: list[str | None]) -> str:
    # A branch that failed on its `type` says least about what the sender got wrong.
    specific = [e for e in errors if e and " must be of type " not in e]
    return (specific or [e for e in errors if e])[0]


def _mentions_present_field(errors: list[str | None]) -> bool:
    return any(e and not e.endswith("is required") for e in errors)


def _any_of_reason(branches: list[Any], path: str) -> str:
    names = [n for b in branches if isinstance(b, dict) for n in b.get("required", [])]
    if names:
        return f"`{path}` needs at least one of: " + ", ".join(f"`{n}`" for n in names)
    return f"`{path}` matches none of the allowed forms"
