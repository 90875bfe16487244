"""What the Worker's bundle keeps of the message schema (functions/worker/scripts/
schema-bundle.mjs, used by its build): every validation keyword and `x-` rule, none of
the prose; and a schema that starts using `format` stops the build, because the bundle
leaves @cfworker/json-schema's format checkers out."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.conftest import ROOT

WORKER = ROOT / "functions" / "worker"
SCHEMA = ROOT / "functions" / "schema" / "message.schema.json"
PROSE = {"description", "title", "$comment", "x-mailbox"}


def node(script: str, value: Any) -> Any:
    """Run ``script`` with the helpers imported and ``value`` as ``input``."""
    program = (
        "import { usesFormat, withoutProse } from './scripts/schema-bundle.mjs';\n"
        f"const input = {json.dumps(value)};\n"
        f"console.log(JSON.stringify({script}));\n"
    )
    done = subprocess.run(
        ["node", "--input-type=module", "-e", program],
        cwd=WORKER,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def keys(value: Any, path: str = "") -> set[str]:
    if isinstance(value, dict):
        return {f"{path}/{k}" for k in value} | {
            p for k, v in value.items() for p in keys(v, f"{path}/{k}")
        }
    if isinstance(value, list):
        return {p for i, v in enumerate(value) for p in keys(v, f"{path}/{i}")}
    return set()


def is_prose(path: str) -> bool:
    return any(p in PROSE or p.endswith("Why") for p in path.split("/"))


def leaves(value: Any, path: str = "") -> dict[str, Any]:
    """Every scalar of a JSON value by its path."""
    if isinstance(value, dict):
        return {p: v for k, inner in value.items() for p, v in leaves(inner, f"{path}/{k}").items()}
    if isinstance(value, list):
        return {
            p: v for i, inner in enumerate(value) for p, v in leaves(inner, f"{path}/{i}").items()
        }
    return {path: value}


def test_the_bundled_schema_keeps_every_rule_and_drops_only_prose() -> None:
    schema = json.loads(SCHEMA.read_text())
    bundled = node("withoutProse(input)", schema)
    dropped = keys(schema) - keys(bundled)
    # Only prose went (and whatever was inside it)...
    assert dropped
    assert all(is_prose(path) for path in dropped), dropped
    # ...and every leaf outside prose is still there with its value.
    assert leaves(bundled) == {p: v for p, v in leaves(schema).items() if not is_prose(p)}
    assert "description" not in json.dumps(bundled)


@pytest.mark.parametrize(
    "schema",
    [
        {"format": "email"},
        {"properties": {"to": {"type": "string", "format": "email"}}},
        {"$defs": {"x": {"anyOf": [{"type": "string"}, {"format": "uri"}]}}},
    ],
)
def test_a_schema_using_format_anywhere_is_seen(schema: dict[str, Any]) -> None:
    assert node("usesFormat(input)", schema) is True


def test_the_shipped_schema_uses_no_format() -> None:
    assert node("usesFormat(input)", json.loads(SCHEMA.read_text())) is False


def test_the_committed_bundle_holds_no_schema_prose_and_no_format_checkers() -> None:
    bundle = (WORKER / "dist" / "worker.js").read_text()
    schema = json.loads(SCHEMA.read_text())
    assert schema["description"][:40] not in bundle
    assert schema["x-headers"]["refusedPrefixesWhy"][:40] not in bundle
    # @cfworker's format checkers carry these regular expressions and names.
    assert "date-time" not in bundle and "json-pointer" not in bundle
