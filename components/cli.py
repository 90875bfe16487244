"""``serverless-mail plan``: the offline plan of a stack, with no Pulumi CLI and no cloud.

Runs the project's real ``__main__.py`` under the recording mocks with the
values of ``Pulumi.<stack>.yaml`` (secure values replaced by placeholders) and
prints the resource tree, the DNS records to publish and the policy verdict.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

__all__ = ["PlanError", "load_stack_config", "main", "plan", "run"]

SECRET_PLACEHOLDER = "offline-plan-placeholder-secret"
"""What a ``secure:`` config value reads as in the offline plan."""


class PlanError(Exception):
    """The plan could not run (unknown stack, unreadable files); exit code 2."""


@dataclass
class StackFiles:
    """A project's name, program and one stack's config, read from disk."""

    project: str
    program: Path
    config: dict[str, Any]
    secret_keys: tuple[str, ...]


def find_project_dir(start: Path) -> Path:
    """The nearest folder at or above ``start`` that holds ``Pulumi.yaml``."""
    for folder in (start, *start.parents):
        if (folder / "Pulumi.yaml").is_file():
            return folder
    raise PlanError(f"no Pulumi.yaml in {start} or any folder above it; pass --dir")


def load_stack_config(project_dir: Path, stack: str) -> StackFiles:
    """Read ``Pulumi.yaml`` and ``Pulumi.<stack>.yaml``; secure values become placeholders."""
    project = _read_yaml(project_dir / "Pulumi.yaml")
    if not isinstance(project, dict):
        raise PlanError(f"{project_dir / 'Pulumi.yaml'}: the project file must be a mapping")
    stack_file = project_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        known = sorted(
            p.name.removeprefix("Pulumi.").removesuffix(".yaml")
            for p in project_dir.glob("Pulumi.*.yaml")
        )
        raise PlanError(
            f"unknown stack {stack!r}: there is no {stack_file.name} in {project_dir}; "
            f"stacks here: {', '.join(known) or 'none'}"
        )
    stack_doc = _read_yaml(stack_file) or {}
    if not isinstance(stack_doc, dict):
        raise PlanError(f"{stack_file.name}: the stack file must be a mapping with a `config` key")
    raw = stack_doc.get("config") or {}
    if not isinstance(raw, dict):
        raise PlanError(f"{stack_file.name}: `config` must be a mapping")
    name = project.get("name", "project")
    config: dict[str, Any] = {}
    secret_keys: list[str] = []
    for key, value in raw.items():
        if value is None:
            continue  # `key:` with no value is unset, as `pulumi config` treats it
        full = key if ":" in key else f"{name}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[full] = SECRET_PLACEHOLDER
            secret_keys.append(full)
        else:
            config[full] = value
    return StackFiles(name, project_dir / "__main__.py", config, tuple(secret_keys))


def _read_yaml(path: Path) -> Any:
    """A YAML file's content; an unreadable or malformed file is one line naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise PlanError(f"cannot read {path.name}: {err}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise PlanError(f"{path.name} is not valid YAML{where}: {problem}") from None


def plan(project_dir: Path, stack: str) -> dict[str, Any]:
    """Run the stack program offline; the plan as one JSON-ready object.

    Raises:
        PlanError: the stack or project files are missing or unreadable.
        ConfigError: the stack's config is invalid.
    """
    from .mocking import run_program
    from .policies import evaluate

    files = load_stack_config(project_dir, stack)
    recording = run_program(
        files.program,
        project=files.project,
        stack=stack,
        config=files.config,
        secret_keys=files.secret_keys,
    )
    violations = evaluate(recording)
    outputs = {
        key: ("[secret]" if type(value).__name__ == "Secret" else value)
        for key, value in recording.stack_outputs.items()
    }
    return {
        "stack": stack,
        "resources": [
            {
                "type": r.type,
                "name": r.name,
                "parent": r.parent_name,
                "inputs": r.plain_inputs(),
            }
            for r in recording.resources
        ],
        # Options that are not inputs (an import id, custom timeouts), by resource name;
        # kept out of `resources` so each resource stays {type, name, parent, inputs}.
        "resource_options": {r.name: r.options for r in recording.resources if r.options},
        "dns_records": outputs.get("dns_records", []),
        "outputs": outputs,
        "violations": [v.as_dict() for v in violations],
    }


def render_text(result: dict[str, Any]) -> str:
    """The plan as a readable tree, a DNS table and the policy verdict."""
    lines = [f"Offline plan of stack {result['stack']!r} (Pulumi mocks, no cloud)", ""]
    children: dict[str | None, list[dict[str, Any]]] = {}
    names = {r["name"] for r in result["resources"]}
    for r in result["resources"]:
        parent = r["parent"] if r["parent"] in names else None
        children.setdefault(parent, []).append(r)

    def walk(parent: str | None, depth: int) -> None:
        for r in sorted(children.get(parent, []), key=lambda r: (r["type"], r["name"])):
            lines.append(f"{'  ' * depth}+ {r['type']}  {r['name']}")
            walk(r["name"], depth + 1)

    walk(None, 0)
    lines += ["", f"{len(result['resources'])} resources", "", "DNS records to publish:"]
    records = result["dns_records"]
    width = max((len(rec["name"]) for rec in records), default=4)
    for rec in records:
        prio = f"{rec['priority']} " if rec.get("priority") is not None else ""
        lines.append(f"  {rec['type']:<6}{rec['name']:<{width}}  {prio}{rec['value']}")
    lines += ["", "Stack outputs:"]
    for key, value in result["outputs"].items():
        if key == "dns_records":
            value = f"{len(value)} records (above)"
        elif isinstance(value, (dict, list)):
            value = json.dumps(value)
        lines.append(f"  {key}: {value}")
    lines += ["", "Policy pack:"]
    violations = result["violations"]
    mandatory = [v for v in violations if v["level"] == "mandatory"]
    for v in violations:
        lines.append(f"  [{v['level']}] {v['policy']}: {v['message']} ({v['urn']})")
    lines.append(
        f"  {len(mandatory)} mandatory, {len(violations) - len(mandatory)} advisory "
        f"violation(s): {'FAIL' if mandatory else 'PASS'}"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``serverless-mail`` command."""
    parser = argparse.ArgumentParser(prog="serverless-mail", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    plan_cmd = sub.add_parser("plan", help="offline plan of one stack")
    plan_cmd.add_argument("--stack", "-s", required=True, help="stack name, e.g. dev or prod")
    plan_cmd.add_argument("--json", action="store_true", help="print one JSON object")
    plan_cmd.add_argument("--dir", type=Path, help="project folder (default: nearest Pulumi.yaml)")
    sandbox_cmd = sub.add_parser(
        "sandbox", help="run the planned stack on 127.0.0.1: moto, the Lambda, the Worker"
    )
    sandbox_cmd.add_argument("--stack", "-s", required=True, help="stack name, e.g. dev")
    sandbox_cmd.add_argument(
        "--dir", type=Path, help="project folder (default: nearest Pulumi.yaml)"
    )
    sandbox_cmd.add_argument(
        "--env-file", type=Path, help="where to write the app's variables (default: .env.sandbox)"
    )
    sandbox_cmd.add_argument("--quiet", action="store_true", help="do not echo the Worker's logs")
    args = parser.parse_args(argv)

    if args.command == "sandbox":
        from . import sandbox

        try:
            args.project_dir = args.dir.resolve() if args.dir else find_project_dir(Path.cwd())
        except PlanError as err:
            print(f"serverless-mail: error: {err}", file=sys.stderr)
            return 2
        return sandbox.main(args)
    try:
        project_dir = args.dir.resolve() if args.dir else find_project_dir(Path.cwd())
        result = plan(project_dir, args.stack)
    except (PlanError, ConfigError) as err:
        print(f"serverless-mail: error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(render_text(result))
    return 1 if any(v["level"] == "mandatory" for v in result["violations"]) else 0


def run() -> None:
    """Console-script entry: :func:`main`, then exit without interpreter teardown.

    The mocks leave asyncio loops in the SDK's worker threads; closing them at
    teardown sometimes prints a harmless "Exception ignored" traceback, which a
    command whose output users gate CI on must not print.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
