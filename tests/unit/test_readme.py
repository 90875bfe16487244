"""The README as a contract: its generated tables are current and its code runs as written."""

from __future__ import annotations

import re
import sys
from typing import Any

import pytest
import yaml
from serverless_mail import parse_stage_config

from tests.conftest import ROOT, stack_config

sys.path.insert(0, str(ROOT / "scripts"))
import gen_docs

README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.M | re.S)


def test_generated_tables_match_the_dataclasses() -> None:
    assert gen_docs.render_readme(README) == README, "run scripts/gen_docs.py"


def test_every_config_key_is_in_the_reference() -> None:
    from serverless_mail.config import CONFIG_KEYS

    for key in CONFIG_KEYS:
        assert f"| `{key.key}` |" in README


def test_quick_start_has_the_two_commands_and_they_exist() -> None:
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    (commands,) = blocks("sh")[:1]
    assert commands in quick
    lines = [line.split("#")[0].strip() for line in commands.strip().splitlines()]
    assert lines == ["scripts/plan --stack dev", "scripts/test"]
    for line in lines:
        assert (ROOT / line.split()[0]).stat().st_mode & 0o111


def test_the_python_consumer_example_runs_and_its_values_arrive(run: Any) -> None:
    consumer = blocks("python")[0]
    rec = run(lambda: exec(compile(consumer, "README.md", "exec"), {}))
    mapping = rec.named("mail-lambda-queue-events")
    assert mapping.inputs["scalingConfig"]["maximumConcurrency"] == 10
    queue = rec.named("mail-queue-queue")
    assert '"maxReceiveCount": 5' in queue.inputs["redrivePolicy"]
    assert rec.named("mail-queue-alarms-email").inputs["endpoint"] == "oncall@example.com"
    variables = rec.of_type("vercel:index/projectEnvironmentVariable:ProjectEnvironmentVariable")
    assert variables and {v.inputs["projectId"] for v in variables} == {"prj_abc123"}
    assert (
        rec.stack_outputs["worker_url"]
        == "https://serverless-mail-dev-mail-worker.acme.workers.dev"
    )
    assert {"queue_url", "dns_records", "vercel_role_arn"} <= set(rec.stack_outputs)


def test_the_transformation_example_reaches_every_child(run: Any) -> None:
    example = blocks("python")[1]
    rec = run(lambda: exec(compile(example, "README.md", "exec"), {}))
    queue = rec.named("mail-queue-queue")
    assert queue.inputs["tags"] == {"team": "payments"}
    functions = rec.of_type("aws:lambda/function:Function")
    assert functions and {f.inputs["memorySize"] for f in functions} == {1024}
    assert not rec.of_type("cloudflare:index/workersScript:WorkersScript")
    provider = rec.one("pulumi:providers:aws")
    aws_children = [r for r in rec.resources if r.custom and r.type.startswith("aws:")]
    assert aws_children and {(r.provider or "").rsplit("::", 1)[0] for r in aws_children} == {
        provider.urn
    }


def test_the_yaml_example_is_a_valid_stage_fragment() -> None:
    (fragment,) = [b for b in blocks("yaml") if "serverless-mail:lambda" in b]
    config = yaml.safe_load(fragment)["config"]
    base = stack_config("dev")
    merged = {**base, **config}
    values = {k.split(":", 1)[1]: v for k, v in merged.items() if k.startswith("serverless-mail:")}
    args = parse_stage_config("dev", values, merged["aws:region"]).args
    assert args.lambda_sender.memory_mb == 512  # type: ignore[union-attr]
    assert args.lambda_sender.maximum_concurrency == 10  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["scripts/gen_docs.py", "scripts/gen_schema.py"])
def test_generators_named_in_the_readme_exist(name: str) -> None:
    assert name in README and (ROOT / name).is_file()


def test_the_typescript_example_builds_through_the_component_package(tmp_path: Any) -> None:
    """The TypeScript example's inputs, as node evaluates them, go through construct."""
    import json
    import shutil
    import subprocess

    from tests.unit.test_component_package_settings import construct, wire

    (example,) = [b for b in blocks("typescript") if "@pulumi/serverless-mail" in b]
    body = example.replace('import * as sm from "@pulumi/serverless-mail";', "")
    body = re.sub(r"^export ", "", body, flags=re.M)
    stub = (
        "const sm = { TransactionalEmail: class { constructor(name, args) {"
        " process.stdout.write(JSON.stringify({ name, args })); } } };\n"
    )
    script = tmp_path / "example.mjs"
    script.write_text(stub + body)
    node = shutil.which("node")
    assert node, "node is required (it runs the Worker tests too)"
    out = subprocess.run([node, script], capture_output=True, text=True, check=True, timeout=60)
    given = json.loads(out.stdout)
    assert given["name"] == "mail"
    inputs = {k: wire(v) if not isinstance(v, dict) else {i: wire(w) for i, w in v.items()}
              for k, v in given["args"].items()}  # fmt: skip
    plan, outputs = construct(inputs, "dev")
    assert plan.input("mail-lambda-queue-events", "scalingConfig.maximumConcurrency") == 10
    assert outputs["workerUrl"] == "https://serverless-mail-dev-mail-worker.acme.workers.dev"
    assert outputs["workerToken"] == "[secret]"
