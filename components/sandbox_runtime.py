"""One local Lambda execution environment for ``serverless-mail sandbox``.

Run as a script by the sandbox (never imported): ``python sandbox_runtime.py CODE_DIR
HANDLER``. It imports the handler from the extracted deployment package with the
environment the sandbox gives it (the planned one), which is the cold start: a handler
that reads its configuration at import fails here, loudly, before any event. Then it
reads one JSON event per line on stdin and writes one JSON line per invocation on the
original stdout; the handler's own prints and logs go to stderr.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
import uuid
from typing import Any


class _Context:
    """The parts of the Lambda context object handlers and Powertools read."""

    def __init__(self, timeout_seconds: float) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "sandbox")
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.invoked_function_arn = os.environ.get("SANDBOX_FUNCTION_ARN", "")
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = "sandbox"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> int:
    code_dir, handler_path = sys.argv[1], sys.argv[2]
    # The package's modules, not this script's folder (the library's own modules), come first.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    sys.path.insert(0, code_dir)
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    timeout = float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "30"))
    module_name, _, function_name = handler_path.rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as err:
        traceback.print_exc()
        out.write(json.dumps({"init_error": f"{type(err).__name__}: {err}"}) + "\n")
        return 1
    out.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        event = json.loads(line)
        result: dict[str, Any]
        try:
            result = {"result": handler(event, _Context(timeout))}
        except Exception as err:
            traceback.print_exc()
            result = {"error": f"{type(err).__name__}: {err}"}
        out.write(json.dumps(result, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
