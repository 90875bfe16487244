"""On-demand benchmarks of the Lambda sender: `python bench/bench_lambda.py`.

(a) one batch of 10 messages against a local SES v2 stub answering after 50 ms, vs one
    round trip (the floor) and vs the same handler with EMAIL_SEND_CONCURRENCY=1;
(b) cold import of the handler module vs `import boto3` alone (fresh interpreters);
(c) the deployment package's size.
Idempotency is switched off with Powertools' own POWERTOOLS_IDEMPOTENCY_DISABLED flag so
(a) measures the send path; with it on, each record adds two DynamoDB writes.
Not collected by pytest (no test_ prefix). Talks only to 127.0.0.1.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FUNCTIONS = REPO / "functions"
LATENCY_S = 0.050
BATCH = 10
RUNS = 7


class _SesStub(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as SES; needs Content-Length

    def setup(self) -> None:
        super().setup()
        # Without it, Nagle's algorithm and delayed ACKs add ~40 ms to each reply.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(LATENCY_S)
        body = json.dumps({"MessageId": str(uuid.uuid4())}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _env(extra: dict[str, str]) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # nothing else may leave the machine
        "EMAIL_DOMAIN": "mail.example.com",
        "EMAIL_DEFAULT_FROM": "noreply@mail.example.com",
        "EMAIL_CONFIGURATION_SET": "bench",
        "EMAIL_IDEMPOTENCY_TABLE": "bench",
        "EMAIL_DEAD_LETTER_QUEUE_URL": "http://127.0.0.1:9/000000000000/dlq",
        "POWERTOOLS_IDEMPOTENCY_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        **extra,
    }


def _child_batch() -> None:
    """Runs inside a fresh interpreter: time RUNS batches and one bare round trip."""
    sys.path.insert(0, str(FUNCTIONS))
    import lambda_sender.handler as h

    context = SimpleNamespace(
        function_name="bench",
        memory_limit_in_mb=256,
        invoked_function_arn="arn:aws:lambda:us-east-1:000000000000:function:bench",
        aws_request_id="bench",
        get_remaining_time_in_millis=lambda: 30_000,
    )

    def event() -> dict[str, Any]:
        records = []
        for i in range(BATCH):
            body = {"id": str(uuid.uuid4()), "to": f"u{i}@example.org", "subject": "s", "text": "t"}
            records.append(
                {
                    "messageId": str(uuid.uuid4()),
                    "receiptHandle": "r",
                    "body": json.dumps(body),
                    "attributes": {},
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:q",
                    "awsRegion": "us-east-1",
                }
            )
        return {"Records": records}

    h.handler(event(), context)  # warm: connections open, as in a warm Lambda
    batches = []
    for _ in range(RUNS):
        started = time.perf_counter()
        response = h.handler(event(), context)
        batches.append(time.perf_counter() - started)
        assert response["batchItemFailures"] == [], response
    trips = []
    for _ in range(RUNS):
        started = time.perf_counter()
        h._client("sesv2").send_email(
            FromEmailAddress="noreply@mail.example.com",
            Destination={"ToAddresses": ["a@example.org"]},
            Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}}},
        )
        trips.append(time.perf_counter() - started)
    print(json.dumps({"batch": statistics.median(batches), "trip": statistics.median(trips)}))


def _batch(endpoint: str, concurrency: int) -> dict[str, float]:
    env = _env({"AWS_ENDPOINT_URL_SESV2": endpoint, "EMAIL_SEND_CONCURRENCY": str(concurrency)})
    out = subprocess.run(
        [sys.executable, __file__, "--child-batch"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def _import_time(statement: str) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    samples = []
    for _ in range(RUNS):
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=FUNCTIONS,
            env=_env({}),
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        samples.append(float(out.strip()))
    return statistics.median(samples)


def _package() -> tuple[int, int]:
    spec = importlib.util.spec_from_file_location("lp", REPO / "components" / "lambda_package.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data = module.lambda_package_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        unzipped = sum(i.file_size for i in archive.infolist())
    return len(data), unzipped


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SesStub)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        concurrent = _batch(endpoint, 10)
        sequential = _batch(endpoint, 1)
    finally:
        server.shutdown()
    boto3_import = _import_time("import boto3")
    handler_import = _import_time("import lambda_sender.handler")
    zipped, unzipped = _package()

    floor = concurrent["trip"]
    rows = [
        ("(a) one SES round trip (floor)", f"{floor * 1000:.1f} ms", ""),
        (
            f"(a) batch of {BATCH}, concurrency 10",
            f"{concurrent['batch'] * 1000:.1f} ms",
            f"{concurrent['batch'] / floor:.2f}x floor (target <= 2x)",
        ),
        (
            f"(a) batch of {BATCH}, concurrency 1",
            f"{sequential['batch'] * 1000:.1f} ms",
            f"{sequential['batch'] / concurrent['batch']:.2f}x slower (target >= 5x)",
        ),
        ("(b) import boto3", f"{boto3_import * 1000:.1f} ms", ""),
        (
            "(b) import lambda_sender.handler",
            f"{handler_import * 1000:.1f} ms",
            f"{handler_import / boto3_import:.2f}x boto3 (target <= 1.5x)",
        ),
        ("(c) package, zipped", f"{zipped} B", ""),
        ("(c) package, unzipped", f"{unzipped} B", f"{zipped / unzipped:.2f} ratio"),
    ]
    print(f"median of {RUNS}; SES stub latency {LATENCY_S * 1000:.0f} ms; idempotency disabled")
    width = max(len(r[0]) for r in rows)
    for name, value, ratio in rows:
        print(f"{name:<{width}}  {value:>12}  {ratio}")


if __name__ == "__main__":
    if "--child-batch" in sys.argv:
        _child_batch()
    else:
        main()
