"""The committed SigV4 vector for the Worker is what botocore produces today."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "functions/worker/test/fixtures/make_sigv4_vector.py"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_sigv4_vector", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_sigv4_vector_matches_botocore() -> None:
    generator = _load_generator()

    committed = json.loads(generator.VECTOR_PATH.read_text(encoding="utf-8"))

    assert committed == generator.make_vector()


def test_sigv4_vector_signs_only_host_and_date() -> None:
    committed = json.loads(_load_generator().VECTOR_PATH.read_text(encoding="utf-8"))

    assert "SignedHeaders=host;x-amz-date," in committed["authorization"]
    assert "/eu-west-1/ses/aws4_request" in committed["authorization"]
