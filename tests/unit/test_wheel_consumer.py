"""The wheel works as an installed package: a consumer outside the repository builds
the components from it, and the Lambda and Worker code come from inside the wheel.

Builds the wheel offline (``--no-isolation``: the venv has the build backend), installs
it with no dependencies into a fresh virtual environment, and lets that environment see
the repository venv's third-party packages through a ``.pth`` line. A ``.pth`` line is
appended to ``sys.path`` after the fresh venv's own site-packages, so the installed
``serverless_mail`` shadows the repository venv's development symlink; the test checks
that it does. The consumer runs from a temporary directory under the recording mocks.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PKG = "serverless_mail"
WHEEL_FILES = (
    f"{PKG}/__init__.py",
    f"{PKG}/py.typed",
    f"{PKG}/functions/lambda_sender/handler.py",
    f"{PKG}/functions/schema/message.schema.json",
    f"{PKG}/functions/worker/dist/worker.js",
    f"{PKG}/functions/worker/worker.json",
)
MARKER = b"\n# wheel-consumer: this copy is the installed one\n"
"""Appended to the installed handler: the Lambda zip carries it only if it was built
from the installed package (the repository's copy is otherwise byte-identical)."""

COMPONENT = "serverless-mail:index:"
FUNCTION = "aws:lambda/function:Function"
SCRIPT = "cloudflare:index/workersScript:WorkersScript"

CONSUMER = textwrap.dedent(
    """
    import json
    import sys

    import serverless_mail
    from serverless_mail import (
        EmailDomain,
        EmailDomainArgs,
        TransactionalEmail,
        TransactionalEmailArgs,
    )
    from serverless_mail.lambda_package import functions_dir
    from serverless_mail.mocking import run_program

    def domain_args(domain: str) -> EmailDomainArgs:
        return EmailDomainArgs(
            domain=domain,
            zone_id="00112233445566778899aabbccddeeff",
            zone_name="example.com",
            region="eu-west-1",
        )

    def program() -> None:
        TransactionalEmail(
            "app",
            TransactionalEmailArgs(
                email=domain_args("mail.example.com"),
                default_from="Example <no-reply@mail.example.com>",
                account_id="0123456789abcdef0123456789abcdef",
            ),
        )
        EmailDomain("standalone", domain_args("news.example.com"))

    rec = run_program(program, config={"aws:region": "eu-west-1"})
    json.dump(
        {
            "package_file": serverless_mail.__file__,
            "functions_dir": str(functions_dir()),
            "resources": [
                {"type": r.type, "name": r.name, "parent": r.parent_name,
                 "inputs": r.plain_inputs()}
                for r in rec.resources
            ],
        },
        sys.stdout,
    )
    """
)


def run(*cmd: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=120, **kwargs
    )
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Built from a copy: setuptools writes build/ and its egg-info beside pyproject.toml.
    source = tmp_path_factory.mktemp("source") / "serverless-mail"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "node_modules", "*.egg-info", "build", ".*_cache", "__pycache__"
        ),
    )
    run(sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", out, cwd=source)
    (built,) = out.glob("serverless_mail-*.whl")
    return built


@pytest.fixture(scope="module")
def consumer(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Install the wheel in a fresh venv and run the consumer program from outside the
    repository; its JSON report, plus where things live."""
    tmp = tmp_path_factory.mktemp("consumer")
    venv = tmp / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    run(
        sys.executable, "-m", "pip", "--python", python, "install",
        "--no-deps", "--no-index", "--no-compile", "--quiet", wheel,
    )  # fmt: skip
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = site / "site-packages"
    assert (site / PKG / "__init__.py").is_file()
    (site / "repo_venv_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    handler = site / PKG / "functions" / "lambda_sender" / "handler.py"
    handler.write_bytes(handler.read_bytes() + MARKER)

    (tmp / "consumer.py").write_text(CONSUMER)
    scratch = tmp / "scratch"  # the Lambda zip is written under the temp directory
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(VIRTUAL_ENV=str(venv), TMPDIR=str(scratch), PYTHONDONTWRITEBYTECODE="1")
    result = run(python, "consumer.py", cwd=tmp, env=env)
    return {"site": site, "scratch": scratch, **json.loads(result.stdout)}


def test_wheel_holds_the_package_and_its_function_code(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert set(WHEEL_FILES) <= names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_consumer_imports_the_installed_package_not_the_repository(
    consumer: dict[str, Any],
) -> None:
    site: Path = consumer["site"]
    package = Path(consumer["package_file"])
    assert package == site / PKG / "__init__.py"
    assert ROOT not in package.resolve().parents
    assert Path(consumer["functions_dir"]) == site / PKG / "functions"


def test_components_are_registered_with_their_type_tokens(consumer: dict[str, Any]) -> None:
    resources = consumer["resources"]
    components = sorted(
        (r["type"], r["name"], r["parent"]) for r in resources if r["type"].startswith(COMPONENT)
    )
    domains = [c for c in components if c[0] == f"{COMPONENT}EmailDomain"]
    assert [name for _, name, _ in domains] == ["app-domain", "standalone"]
    assert domains[0][2] == "app"
    assert domains[1][2] != "app"
    assert (f"{COMPONENT}TransactionalEmail", "app") in {(t, n) for t, n, _ in components}
    assert {t for t, _, _ in components} == {
        f"{COMPONENT}TransactionalEmail",
        f"{COMPONENT}EmailDomain",
        f"{COMPONENT}EmailQueue",
        f"{COMPONENT}LambdaSender",
        f"{COMPONENT}WorkerSender",
        f"{COMPONENT}EmailEvents",
        f"{COMPONENT}EmailAlarms",
    }


def test_lambda_code_is_built_from_the_installed_package(
    consumer: dict[str, Any], wheel: Path
) -> None:
    (function,) = [
        r
        for r in consumer["resources"]
        if r["type"] == FUNCTION and r["inputs"]["handler"] == "lambda_sender.handler.handler"
    ]
    path = Path(function["inputs"]["code"]["path"])
    assert path.parent == consumer["scratch"] / "serverless-mail"
    data = path.read_bytes()
    assert (
        function["inputs"]["sourceCodeHash"]
        == base64.b64encode(hashlib.sha256(data).digest()).decode()
    )

    prefix = f"{PKG}/functions/"
    with zipfile.ZipFile(wheel) as archive:
        expected = {
            n.removeprefix(prefix): archive.read(n)
            for n in archive.namelist()
            if n.startswith(f"{prefix}lambda_sender/") and n.endswith(".py")
        }
        expected["lambda_sender/message.schema.json"] = archive.read(
            f"{prefix}schema/message.schema.json"
        )
    expected["lambda_sender/handler.py"] += MARKER
    with zipfile.ZipFile(path) as package:
        got = {n: package.read(n) for n in package.namelist()}
    assert got == expected


def test_events_code_is_built_from_the_installed_package(
    consumer: dict[str, Any], wheel: Path
) -> None:
    (function,) = [
        r
        for r in consumer["resources"]
        if r["type"] == FUNCTION and r["inputs"]["handler"] == "events.handler.handler"
    ]
    prefix = f"{PKG}/functions/"
    with zipfile.ZipFile(wheel) as archive:
        expected = {
            n.removeprefix(prefix): archive.read(n)
            for n in archive.namelist()
            if n.startswith(f"{prefix}events/") and n.endswith(".py")
        }
    assert "events/handler.py" in expected
    with zipfile.ZipFile(Path(function["inputs"]["code"]["path"])) as package:
        assert {n: package.read(n) for n in package.namelist()} == expected


def test_worker_script_is_the_wheels_bundle(consumer: dict[str, Any], wheel: Path) -> None:
    (script,) = [r for r in consumer["resources"] if r["type"] == SCRIPT]
    with zipfile.ZipFile(wheel) as archive:
        bundle = archive.read(f"{PKG}/functions/worker/dist/worker.js")
    assert script["inputs"]["content"].encode() == bundle
