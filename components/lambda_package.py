"""Deterministic deployment package for the Lambda sender, and its runtime constants.

The zip holds only `lambda_sender/*.py` and the message schema beside them. Powertools
(with its extras) comes from AWS's public Powertools layer and boto3 from the runtime,
so nothing third-party is bundled: the message validator is our own code because
fastjsonschema cannot compile the contract's patterns (see lambda_sender/schema.py).
Entries are sorted, stamped 1980-01-01 and mode 0644, so unchanged source gives the
same bytes and the same hash, and Pulumi does not redeploy the function.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Literal

__all__ = [
    "EVENTS_HANDLER",
    "HANDLER",
    "PACKAGE_FILENAME",
    "POWERTOOLS_LAYER_ACCOUNT",
    "POWERTOOLS_LAYER_VERSION",
    "POWERTOOLS_VERSION",
    "RUNTIME",
    "build_lambda_package",
    "functions_dir",
    "lambda_package_bytes",
    "package_archive",
    "powertools_layer_arn",
    "source_code_hash",
]

HANDLER = "lambda_sender.handler.handler"
EVENTS_HANDLER = "events.handler.handler"
"""The events processor's handler; its package is built by the same code with
``package="events"`` (the folder ``functions/events``, no schema)."""
RUNTIME = "python3.13"
PACKAGE_FILENAME = "lambda_sender.zip"
POWERTOOLS_VERSION = "3.37.0"
"""The Powertools release the code is developed and tested against."""
POWERTOOLS_LAYER_VERSION = 27
"""Layer version number of `AWSLambdaPowertoolsPythonV3-<python>-<arch>`.

The newest number the Powertools docs confirmed when this was written (its homepage,
"Lambda Layer"); the layer matching POWERTOOLS_VERSION exactly may be higher: check
`aws lambda list-layer-versions --layer-name AWSLambdaPowertoolsPythonV3-python313-arm64`
and raise this number. Every feature the sender uses predates layer 27.
"""
POWERTOOLS_LAYER_ACCOUNT = "017000801446"
_CHINA_LAYER_ACCOUNT = "498634801083"

_FIXED_DATE = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o100644 << 16  # regular file, rw-r--r--
_PACKAGE = "lambda_sender"
_SCHEMA = "message.schema.json"


def powertools_layer_arn(region: str, arch: Literal["arm64", "x86_64"] = "arm64") -> str:
    """The ARN of AWS's public Powertools layer for RUNTIME in `region` and `arch`."""
    if arch not in ("arm64", "x86_64"):
        raise ValueError(f"`arch` must be 'arm64' or 'x86_64', but {arch!r} was provided")
    python = RUNTIME.replace(".", "")
    partition, account = "aws", POWERTOOLS_LAYER_ACCOUNT
    if region.startswith("cn-"):
        partition, account = "aws-cn", _CHINA_LAYER_ACCOUNT
    return (
        f"arn:{partition}:lambda:{region}:{account}:layer:"
        f"AWSLambdaPowertoolsPythonV3-{python}-{arch}:{POWERTOOLS_LAYER_VERSION}"
    )


def functions_dir() -> Path:
    """`functions/` inside an installed wheel, else beside `components/` in a checkout."""
    here = Path(__file__).resolve().parent
    installed = here / "functions"
    return installed if installed.is_dir() else here.parent / "functions"


def _entries(functions: Path, package: str = _PACKAGE) -> list[tuple[str, Path]]:
    code = functions / package
    if not (code / "handler.py").is_file():
        # An empty zip would deploy a function that fails on every invocation.
        raise FileNotFoundError(f"no Lambda code at {code}: functions/{package} is missing")
    files = [
        (f"{package}/{p.relative_to(code).as_posix()}", p)
        for p in code.rglob("*.py")
        if "__pycache__" not in p.parts
    ]
    if package == _PACKAGE:
        files.append((f"{_PACKAGE}/{_SCHEMA}", functions / "schema" / _SCHEMA))
    return sorted(files)


def lambda_package_bytes(functions: Path | None = None, package: str = _PACKAGE) -> bytes:
    """The zip's bytes (of ``functions/<package>``); identical for identical source."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, path in _entries(functions or functions_dir(), package):
            info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
            info.external_attr = _FILE_MODE
            info.create_system = 3  # Unix, so the mode bits are honoured
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    return buffer.getvalue()


def build_lambda_package(dest_dir: Path, functions: Path | None = None) -> Path:
    """Write the package to `dest_dir/lambda_sender.zip`, only when its bytes change."""
    data = lambda_package_bytes(functions)
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / PACKAGE_FILENAME
    if target.is_file() and target.read_bytes() == data:
        return target
    partial = target.with_suffix(".zip.tmp")
    partial.write_bytes(data)
    os.replace(partial, target)
    return target


def source_code_hash(package: Path | bytes) -> str:
    """Base64 SHA-256 of the zip, the form of `aws.lambda_.Function.source_code_hash`."""
    data = package if isinstance(package, bytes) else package.read_bytes()
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@functools.cache
def package_archive(package: str = _PACKAGE) -> tuple[Path, str]:
    """The deterministic package of ``functions/<package>``, written once per content to
    the temp directory, and its ``source_code_hash``."""
    data = lambda_package_bytes(package=package)
    code_hash = source_code_hash(data)
    cache = Path(tempfile.gettempdir()) / "serverless-mail"
    target = cache / f"{package}-{hashlib.sha256(data).hexdigest()}.zip"
    if not (target.is_file() and target.read_bytes() == data):
        cache.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(data)
        os.replace(partial, target)
    return target, code_hash
