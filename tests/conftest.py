"""Shared fixtures: stack configs from the repository and the recording mocks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

# Importing the Cloudflare SDK costs seconds: pay it once per session, here.
import pulumi_cloudflare  # noqa: F401
import pytest
from serverless_mail.cli import load_stack_config
from serverless_mail.mocking import Recording, run_program

ROOT = Path(__file__).resolve().parents[1]
STACKS = ("dev", "prod")


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


def stack_config(stack: str) -> dict[str, Any]:
    """The config of ``Pulumi.<stack>.yaml`` as the offline plan feeds it."""
    return load_stack_config(ROOT, stack).config


def run_stack(stack: str, overrides: dict[str, Any] | None = None) -> Recording:
    """Run the real ``__main__.py`` for ``stack`` under the recording mocks."""
    files = load_stack_config(ROOT, stack)
    config = {**files.config, **(overrides or {})}
    return run_program(
        files.program,
        project=files.project,
        stack=stack,
        config=config,
        secret_keys=files.secret_keys,
    )


@pytest.fixture(scope="session")
def stack_recordings() -> dict[str, Recording]:
    """One run per stage, shared by every test that only reads it."""
    return {stack: run_stack(stack) for stack in STACKS}


@pytest.fixture
def run() -> Callable[..., Recording]:
    """Run a program (callable) under fresh recording mocks."""

    def _run(program: Callable[[], Any], **kwargs: Any) -> Recording:
        kwargs.setdefault("config", {"aws:region": "eu-west-1"})
        return run_program(program, **kwargs)

    return _run
