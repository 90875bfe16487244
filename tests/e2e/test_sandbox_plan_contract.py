"""The plan is what runs: break one planned input and the sandbox stops, loudly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import project_copy, start_sandbox

pytestmark = pytest.mark.slow


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    # Exactly one: if the component changed, this test must be updated, not pass vacuously.
    assert text.count(old) == 1, f"{old!r} is not in {path.name} exactly once"
    path.write_text(text.replace(old, new), encoding="utf-8")


def _rename_lambda_variable(project: Path) -> None:
    _replace(
        project / "components" / "lambda_sender.py",
        '"EMAIL_DOMAIN": args.domain.domain',
        '"EMAIL_SENDING_DOMAIN": args.domain.domain',
    )


def _rename_worker_binding(project: Path) -> None:
    _replace(
        project / "components" / "worker_sender.py",
        '{"name": "EMAIL_DOMAIN", "type": "plain_text"',
        '{"name": "EMAIL_SENDING_DOMAIN", "type": "plain_text"',
    )


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (_rename_lambda_variable, ["mail-lambda-function", "EMAIL_DOMAIN", "cold start"]),
        (_rename_worker_binding, ["mail-worker-script", "missing bindings", "EMAIL_DOMAIN"]),
    ],
    ids=["lambda-environment-variable", "worker-binding"],
)
def test_a_renamed_planned_input_stops_the_sandbox_naming_it(
    tmp_path: Path, edit: Callable[[Path], None], expected: list[str]
) -> None:
    # GIVEN a copy of the project whose component plans one input under another name
    project, pythonpath = project_copy(tmp_path, edit)
    # WHEN the sandbox starts that copy's dev stack
    running, proc, output = start_sandbox(project, tmp_path, pythonpath=pythonpath)
    # THEN it never becomes ready, exits 1 by itself and names the input
    assert running is None, "the sandbox started with a broken plan"
    assert proc.returncode == 1, "".join(output)
    errors = [line for line in output if line.startswith("serverless-mail: error:")]
    assert errors, "".join(output[-40:])
    for fragment in expected:
        assert fragment in errors[0], errors[0]
    assert "serverless-mail sandbox: stopped" in "".join(output)
