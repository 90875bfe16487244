"""A local SQS → Lambda rig for load tests and benchmarks (issue 11).

- :func:`planned_lambda` runs the offline plan of a stage and returns what it planned for
  the sender: the function's environment, the event source's batch size and maximum
  concurrency, the queue's visibility timeout and redrive count.
- :class:`SesStub` is an SES v2 ``SendEmail`` endpoint on 127.0.0.1 that enforces a send
  rate in recipients per second (a token bucket holding one second of rate, as SES allows
  short bursts) and answers above it with SES's 429 ``TooManyRequestsException``; it
  records every message it accepted and every call it throttled.
- :func:`start_instances` starts N handler "instances", each a process importing the
  packaged handler with the planned environment and polling the queue like Lambda's
  event source mapping: batch size, visibility timeout, deletes all but
  ``batchItemFailures`` (``ReportBatchItemFailures``).

Everything listens on or talks to 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = REPO / "functions"
INSTANCE = Path(__file__).with_name("lambda_instance.py")


@dataclass(frozen=True)
class PlannedLambda:
    environment: dict[str, str]
    batch_size: int
    maximum_concurrency: int
    timeout_seconds: int
    visibility_timeout_seconds: int
    max_receive_count: int


def planned_lambda(stage_overrides: dict[str, dict[str, Any]]) -> PlannedLambda:
    """The dev stage with ``stage_overrides`` (section → keys), through the offline plan."""
    from serverless_mail.cli import plan

    config = dict(yaml.safe_load((REPO / "Pulumi.dev.yaml").read_text())["config"])
    for section, values in stage_overrides.items():
        config.setdefault(f"serverless-mail:{section}", {}).update(values)
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        for name in ("Pulumi.yaml", "__main__.py"):
            shutil.copy(REPO / name, project / name)
        (project / "Pulumi.load.yaml").write_text(yaml.safe_dump({"config": config}))
        result = plan(project, "load")
    by_name = {r["name"]: r["inputs"] for r in result["resources"]}
    function = by_name["mail-lambda-function"]
    mapping = by_name["mail-lambda-queue-events"]
    queue = by_name["mail-queue-queue"]
    return PlannedLambda(
        environment={k: str(v) for k, v in function["environment"]["variables"].items()},
        batch_size=int(mapping["batchSize"]),
        maximum_concurrency=int(mapping["scalingConfig"]["maximumConcurrency"]),
        timeout_seconds=int(function["timeout"]),
        visibility_timeout_seconds=int(queue["visibilityTimeoutSeconds"]),
        max_receive_count=int(json.loads(queue["redrivePolicy"])["maxReceiveCount"]),
    )


@dataclass
class SesStub:
    """SES v2 SendEmail at ``rate`` recipients per second (see the module docstring)."""

    rate: float
    latency: float = 0.0
    sent: Counter[str] = field(default_factory=Counter)
    """Accepted messages by subject (the load tests put the message id there)."""
    throttled: int = 0
    first_sent: float | None = None
    last_sent: float | None = None
    recipients_sent: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens = self.rate
        self._stamp = time.monotonic()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                if stub.latency:
                    time.sleep(stub.latency)
                destination = body.get("Destination", {})
                count = sum(len(destination.get(k, [])) for k in destination)
                subject = body["Content"]["Simple"]["Subject"]["Data"]
                if stub._take(count, subject):
                    self._answer(200, {"MessageId": str(uuid.uuid4())}, {})
                else:
                    # SES v2 (rest-json): the error code travels in x-amzn-ErrorType.
                    self._answer(
                        429,
                        {"message": "Maximum sending rate exceeded."},
                        {"x-amzn-ErrorType": "TooManyRequestsException"},
                    )

            def _answer(
                self, status: int, payload: dict[str, Any], headers: dict[str, str]
            ) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _take(self, count: int, subject: str) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.rate, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens < min(count, self.rate):
                self.throttled += 1
                return False
            self._tokens -= count
            self.sent[subject] += 1
            self.recipients_sent += count
            self.first_sent = self.first_sent or now
            self.last_sent = now
            return True

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def instance_environment(
    planned: PlannedLambda, *, moto: str, ses: str, table: str, queue_url: str, dlq_url: str
) -> dict[str, str]:
    """The planned environment, with the resource names the local services gave the
    planned table and queues, and the endpoints of those services."""
    env = dict(planned.environment)
    for name, value in (
        ("EMAIL_IDEMPOTENCY_TABLE", table),
        ("EMAIL_QUEUE_URL", queue_url),
        ("EMAIL_DEAD_LETTER_QUEUE_URL", dlq_url),
    ):
        assert name in env, f"the plan no longer sets {name}"
        env[name] = value
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_ENDPOINT_URL": moto,
        "AWS_ENDPOINT_URL_SESV2": ses,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": "email-sender",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        **{k: v for k, v in env.items() if k != "POWERTOOLS_LOG_LEVEL"},
    }


def start_instances(
    planned: PlannedLambda, env: dict[str, str], queue_url: str, queue_arn: str, count: int
) -> list[subprocess.Popen[bytes]]:
    """``count`` handler instances polling ``queue_url`` (stop them with :func:`stop`)."""
    args = [
        sys.executable,
        str(INSTANCE),
        queue_url,
        queue_arn,
        str(planned.batch_size),
        str(planned.visibility_timeout_seconds),
        str(planned.timeout_seconds),
    ]
    return [
        subprocess.Popen(args, env=env, cwd=FUNCTIONS, stdout=subprocess.DEVNULL)
        for _ in range(count)
    ]


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for p in processes:
        p.terminate()
    for p in processes:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)


def create_queues(sqs: Any, planned: PlannedLambda, name: str) -> tuple[str, str, str]:
    """The planned queue (visibility timeout, redrive count) and its DLQ, in moto:
    ``(queue_url, queue_arn, dlq_url)``."""
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(planned.visibility_timeout_seconds),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": planned.max_receive_count}
            ),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    return queue_url, queue_arn, dlq_url


def create_table(dynamodb: Any, name: str) -> None:
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def enqueue_burst(sqs: Any, queue_url: str, ids: list[str]) -> None:
    for start in range(0, len(ids), 10):
        entries = [
            {
                "Id": str(i),
                "MessageBody": json.dumps(
                    {"id": mid, "to": f"{mid}@example.org", "subject": mid, "text": "load"}
                ),
            }
            for i, mid in enumerate(ids[start : start + 10])
        ]
        sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)


def queue_depth(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())
