"""On-demand benchmarks of the Lambda sender: `python bench/bench_lambda.py`.

(a) one batch of 10 messages against a local SES v2 stub answering after 50 ms, vs one
    round trip (the floor) and vs the same handler with EMAIL_SEND_CONCURRENCY=1;
(b) cold import of the handler module vs `import boto3` alone (fresh interpreters);
(c) the deployment package's size;
(d) the same batch with idempotency ON against a DynamoDB stub answering after 10 ms, vs
    the floor of one SES round trip plus two DynamoDB round trips (Powertools writes the
    in-progress record, then the result);
(e) sustained throughput of 4 planned handler instances under an SES stub enforcing
    10 recipients/s (moto SQS and DynamoDB, a burst of 200), as a fraction of that rate,
    and the messages that reached the DLQ.
Idempotency is switched off with Powertools' own POWERTOOLS_IDEMPOTENCY_DISABLED flag so
(a) measures the send path; (d) turns it on.
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
DYNAMODB_LATENCY_S = 0.010
RATE = 10
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


class _DynamoDBStub(BaseHTTPRequestHandler):
    """DynamoDB's JSON protocol for the idempotency layer's writes: every conditional
    PutItem and UpdateItem succeeds (the ids are new) after its own latency."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(DYNAMODB_LATENCY_S)
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


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
    idempotency = os.environ.get("POWERTOOLS_IDEMPOTENCY_DISABLED") != "true"
    trips = []
    for _ in range(RUNS):
        started = time.perf_counter()
        if idempotency:
            h._client("dynamodb").put_item(TableName="bench", Item={"id": {"S": "floor"}})
        h._client("sesv2").send_email(
            FromEmailAddress="noreply@mail.example.com",
            Destination={"ToAddresses": ["a@example.org"]},
            Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}}},
        )
        if idempotency:
            h._client("dynamodb").update_item(
                TableName="bench", Key={"id": {"S": "floor"}}, UpdateExpression="SET a = :a",
                ExpressionAttributeValues={":a": {"S": "b"}},
            )  # fmt: skip
        trips.append(time.perf_counter() - started)
    print(json.dumps({"batch": statistics.median(batches), "trip": statistics.median(trips)}))


def _batch(endpoint: str, concurrency: int, dynamodb: str | None = None) -> dict[str, float]:
    env = _env({"AWS_ENDPOINT_URL_SESV2": endpoint, "EMAIL_SEND_CONCURRENCY": str(concurrency)})
    if dynamodb is not None:
        del env["POWERTOOLS_IDEMPOTENCY_DISABLED"]
        env["AWS_ENDPOINT_URL_DYNAMODB"] = dynamodb
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


def _sustained() -> tuple[float, int, int]:
    """(e): recipients/s sent after the stub's one-second burst, as a fraction of RATE;
    messages in the DLQ; throttled calls."""
    import boto3

    sys.path.insert(0, str(REPO))
    from tests.functions.lambda_rig import (
        SesStub,
        create_queues,
        create_table,
        enqueue_burst,
        instance_environment,
        planned_lambda,
        queue_depth,
        start_instances,
        stop,
    )

    planned = planned_lambda(
        {
            "ses": {"maxSendRate": RATE},
            "worker": {"enabled": False},
            "vercel": {"enabled": False},
            "lambda": {"maximumConcurrency": 4},
        }
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    local = {
        "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
    }  # fmt: skip
    os.environ.update(local)
    ses = SesStub(rate=RATE)
    instances: list[Any] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                sqs = boto3.client("sqs")
                sqs.list_queues()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        queue_url, queue_arn, dlq_url = create_queues(sqs, planned, "bench")
        create_table(boto3.client("dynamodb"), "bench")
        env = instance_environment(
            planned, moto=endpoint, ses=ses.endpoint, table="bench",
            queue_url=queue_url, dlq_url=dlq_url,
        )  # fmt: skip
        burst = 20 * RATE
        enqueue_burst(sqs, queue_url, [f"b-{i}" for i in range(burst)])
        instances = start_instances(planned, env, queue_url, queue_arn, planned.maximum_concurrency)
        deadline = time.monotonic() + 120
        while len(ses.sent) < burst and time.monotonic() < deadline:
            time.sleep(0.2)
        stop(instances)
        instances = []
        assert ses.first_sent is not None and ses.last_sent is not None
        rate = (ses.recipients_sent - RATE) / (ses.last_sent - ses.first_sent)
        return rate / RATE, queue_depth(sqs, dlq_url), ses.throttled
    finally:
        stop(instances)
        ses.stop()
        moto.terminate()
        moto.wait(timeout=10)


def main() -> None:
    server, endpoint = _serve(_SesStub)
    dynamo_server, dynamo_endpoint = _serve(_DynamoDBStub)
    try:
        concurrent = _batch(endpoint, 10)
        sequential = _batch(endpoint, 1)
        idempotent = _batch(endpoint, 10, dynamo_endpoint)
    finally:
        server.shutdown()
        dynamo_server.shutdown()
    sustained, dead, throttled = _sustained()
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
        (
            "(d) floor: 1 SES + 2 DynamoDB round trips",
            f"{idempotent['trip'] * 1000:.1f} ms",
            "",
        ),
        (
            f"(d) batch of {BATCH}, idempotency on",
            f"{idempotent['batch'] * 1000:.1f} ms",
            f"{idempotent['batch'] / idempotent['trip']:.2f}x floor (target <= 1.5x)",
        ),
        (
            f"(e) sustained, 4 instances, SES at {RATE}/s",
            f"{sustained * RATE:.2f}/s",
            f"{sustained:.2f}x the rate (target >= 0.9); DLQ {dead} (target 0); "
            f"throttled calls {throttled}",
        ),
    ]
    print(
        f"median of {RUNS}; SES stub latency {LATENCY_S * 1000:.0f} ms; DynamoDB stub "
        f"{DYNAMODB_LATENCY_S * 1000:.0f} ms; idempotency disabled in (a), on in (d) and (e)"
    )
    width = max(len(r[0]) for r in rows)
    for name, value, ratio in rows:
        print(f"{name:<{width}}  {value:>12}  {ratio}")


if __name__ == "__main__":
    if "--child-batch" in sys.argv:
        _child_batch()
    else:
        main()
