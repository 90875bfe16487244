"""`pip install -e .` (and the `-e .` in requirements.txt that Pulumi's toolchain runs)
installs the checkout itself: the import name `serverless_mail` maps to `components/`,
the runtime code is read from `functions/` as it is now, and no copy is made.

Installs into a fresh virtual environment with no network (`--no-index`, no build
isolation: the repository venv has the build backend, reached through a `.pth` line).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def run(*cmd: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kwargs
    )
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result


def tree_state(root: Path) -> dict[str, int]:
    """Every file below ``root`` with its modification time (in nanoseconds)."""
    return {
        str(path.relative_to(root)): path.stat().st_mtime_ns
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the work tree as a clean clone has it (no venv, caches or modules)."""
    copy = tmp_path_factory.mktemp("editable") / "serverless-mail"
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            "node_modules",
            "*.egg-info",
            "build",
            "dist",
            ".*_cache",
            "__pycache__",
        ),
    )
    shutil.copytree(
        ROOT / "functions" / "worker" / "dist",
        copy / "functions" / "worker" / "dist",
        dirs_exist_ok=True,
    )
    return copy


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("editable") / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    (site / "site-packages" / "repo_venv_packages.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n"
    )
    return venv


@pytest.fixture(scope="module")
def installed(venv: Path, checkout: Path) -> tuple[dict[str, int], dict[str, int]]:
    """Install requirements.txt into ``venv`` from ``checkout``; the tree before and after."""
    before = tree_state(checkout)
    # The pinned third-party packages are already visible (the .pth line), so this
    # installs exactly the `-e .` line, as `pulumi up` would on a fresh machine.
    run(
        sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install",
        "--no-index", "--no-build-isolation", "--quiet", "-r", checkout / "requirements.txt",
        cwd=checkout,
    )  # fmt: skip
    return before, tree_state(checkout)


def test_requirements_install_the_checkout_editable(
    venv: Path, checkout: Path, installed: tuple[dict[str, int], dict[str, int]]
) -> None:
    before, after = installed
    # No file of the checkout is changed; setuptools' only write is its package metadata
    # (serverless_mail.egg-info, ignored by git): no build/ copy of the code.
    assert {k: v for k, v in after.items() if k in before} == before
    assert {k.split("/")[0] for k in set(after) - set(before)} <= {"serverless_mail.egg-info"}
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    probe = (
        "import json, serverless_mail; from serverless_mail.lambda_package import functions_dir;"
        "print(json.dumps([serverless_mail.__file__, str(functions_dir())]))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    out = run(venv / "bin" / "python", "-c", probe, cwd=venv, env=env).stdout
    package, functions = json.loads(out)
    assert Path(package) == checkout / "components" / "__init__.py"
    assert Path(functions) == checkout / "functions"
    # An edit to the checkout's runtime code is what the next plan packages.
    handler = checkout / "functions" / "lambda_sender" / "handler.py"
    handler.write_text(handler.read_text() + "\n# edited after install\n")
    zip_probe = (
        "import io, zipfile; from serverless_mail.lambda_package import lambda_package_bytes;"
        "z = zipfile.ZipFile(io.BytesIO(lambda_package_bytes()));"
        "print(z.read('lambda_sender/handler.py').decode().endswith('edited after install\\n'))"
    )
    assert run(venv / "bin" / "python", "-c", zip_probe, cwd=venv, env=env).stdout.strip() == "True"


def test_the_installed_command_plans_the_dev_stack(
    venv: Path, checkout: Path, installed: tuple[dict[str, int], dict[str, int]]
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    result = run(
        venv / "bin" / "serverless-mail", "plan", "--stack", "dev", "--dir", checkout, env=env
    )
    assert "+ serverless-mail:index:TransactionalEmail  mail" in result.stdout
    assert result.stdout.rstrip().endswith("PASS")
