"""The Lambda deployment package is deterministic and holds only our code and schema."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    # By path: the module must stay importable without the rest of `components`.
    spec = importlib.util.spec_from_file_location(
        "lambda_package_under_test", REPO / "components" / "lambda_package.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lp = _load()


def test_two_builds_give_identical_bytes(tmp_path):
    first = lp.build_lambda_package(tmp_path / "a").read_bytes()
    second = lp.build_lambda_package(tmp_path / "b").read_bytes()

    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()
    assert lp.source_code_hash(first) == lp.source_code_hash(tmp_path / "b" / lp.PACKAGE_FILENAME)


def test_package_changes_when_source_changes(tmp_path):
    functions = tmp_path / "functions"
    (functions / "lambda_sender").mkdir(parents=True)
    (functions / "schema").mkdir()
    (functions / "schema" / "message.schema.json").write_text("{}")
    (functions / "lambda_sender" / "handler.py").write_text("x = 1\n")
    before = lp.lambda_package_bytes(functions)
    (functions / "lambda_sender" / "handler.py").write_text("x = 2\n")

    assert lp.lambda_package_bytes(functions) != before


def test_package_holds_only_our_code_and_the_schema(tmp_path):
    data = lp.build_lambda_package(tmp_path).read_bytes()
    code = REPO / "functions" / "lambda_sender"
    expected = sorted(
        [f"lambda_sender/{p.name}" for p in code.glob("*.py")]
        + ["lambda_sender/message.schema.json"]
    )

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        names = [i.filename for i in infos]
        schema = archive.read("lambda_sender/message.schema.json")

    assert names == expected
    assert "lambda_sender/handler.py" in names
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}
    assert schema == (REPO / "functions" / "schema" / "message.schema.json").read_bytes()


def test_handler_imports_from_the_unzipped_package(tmp_path, moto_env):
    import subprocess
    import sys

    with zipfile.ZipFile(lp.build_lambda_package(tmp_path / "zip")) as archive:
        archive.extractall(tmp_path / "task")
    result = subprocess.run(
        [sys.executable, "-c", "import lambda_sender.handler as h; print(h.SCHEMA.max_recipients)"],
        cwd=tmp_path / "task",
        env=moto_env | {"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "50"


@pytest.mark.parametrize(
    ("region", "arch", "expected"),
    [
        (
            "eu-west-1",
            "arm64",
            "arn:aws:lambda:eu-west-1:017000801446:layer:"
            "AWSLambdaPowertoolsPythonV3-python313-arm64:",
        ),
        (
            "us-east-1",
            "x86_64",
            "arn:aws:lambda:us-east-1:017000801446:layer:"
            "AWSLambdaPowertoolsPythonV3-python313-x86_64:",
        ),
        (
            "cn-north-1",
            "arm64",
            "arn:aws-cn:lambda:cn-north-1:498634801083:layer:"
            "AWSLambdaPowertoolsPythonV3-python313-arm64:",
        ),
    ],
)
def test_powertools_layer_arn(region, arch, expected):
    assert lp.powertools_layer_arn(region, arch) == f"{expected}{lp.POWERTOOLS_LAYER_VERSION}"


def test_layer_arn_rejects_an_unknown_arch():
    with pytest.raises(ValueError, match="`arch` must be 'arm64' or 'x86_64', but 'sparc'"):
        lp.powertools_layer_arn("eu-west-1", "sparc")


def test_runtime_constants():
    assert lp.HANDLER == "lambda_sender.handler.handler"
    assert lp.RUNTIME == "python3.13"
