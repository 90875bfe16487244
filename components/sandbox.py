"""``serverless-mail sandbox``: the planned stack running on 127.0.0.1, both paths.

Builds the stack's offline plan and starts what it planned, from the planned
resources and their inputs (never hand-written copies): moto for SQS, SES v2,
DynamoDB and SNS; every planned Lambda function (the packaged zip, extracted) under
a local event-source-mapping loop with its planned environment and settings; the
planned Worker script in workerd (Miniflare) with its planned bindings and queue
consumers; an SES fault-injecting proxy both paths send through; and a mail viewer.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import json
import os
import queue
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = [
    "SandboxError",
    "SandboxPlan",
    "build_sandbox_plan",
    "main",
]

HOST = "127.0.0.1"
SANDBOX_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox"}
"""moto accepts any credentials; these say where they come from."""
LOCAL_POLLERS_WITHOUT_LIMIT = 5
"""Pollers for a mapping that plans no maximum concurrency (AWS would scale to 1000)."""

_HERE = Path(__file__).resolve().parent


class SandboxError(Exception):
    """A planned input does not fit the code, or a local server would not start."""


# --- the plan, read --------------------------------------------------------------


def _reveal(value: Any) -> Any:
    """Recorded inputs with secrets unwrapped: the sandbox needs their values."""
    from .mocking import Secret

    if isinstance(value, Secret):
        return _reveal(value.value)
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_reveal(v) for v in value]
    return value


@dataclass
class PlannedResource:
    type: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]


@dataclass
class SandboxPlan:
    """The recorded plan of one stack, with the values the sandbox needs revealed."""

    stack: str
    region: str
    resources: list[PlannedResource]
    stack_outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.type == type_]

    def by_output(self, type_: str, key: str, value: Any) -> PlannedResource:
        for r in self.of_type(type_):
            if r.outputs.get(key) == value:
                return r
        raise SandboxError(f"the plan has no {type_} whose {key} is {value!r}")


def build_sandbox_plan(project_dir: Path, stack: str) -> SandboxPlan:
    """Run the stack program under the recording mocks, as ``serverless-mail plan`` does."""
    from .cli import load_stack_config
    from .mocking import run_program

    files = load_stack_config(project_dir, stack)
    recording = run_program(
        files.program,
        project=files.project,
        stack=stack,
        config=files.config,
        secret_keys=files.secret_keys,
    )
    resources = [
        PlannedResource(r.type, r.name, _reveal(r.inputs), _reveal(r.outputs))
        for r in recording.resources
    ]
    return SandboxPlan(
        stack=stack,
        region=str(files.config.get("aws:region", "us-east-1")),
        resources=resources,
        stack_outputs=_reveal(recording.stack_outputs),
    )


# --- small helpers ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, deadline: float, proc: subprocess.Popen[Any] | None = None) -> None:
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SandboxError(f"{proc.args!r} exited with {proc.returncode} while starting")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - local URL
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise SandboxError(f"{url} did not answer in time")


def _stop_process(proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL to the whole process group (workerd is node's child)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def _int(value: Any, default: int) -> int:
    return default if value is None else int(value)


# --- moto: SQS, SES v2, DynamoDB, SNS as planned ---------------------------------

_QUEUE_ATTRIBUTES = {
    "visibilityTimeoutSeconds": "VisibilityTimeout",
    "messageRetentionSeconds": "MessageRetentionPeriod",
    "delaySeconds": "DelaySeconds",
    "receiveWaitTimeSeconds": "ReceiveMessageWaitTimeSeconds",
    "maxMessageSize": "MaximumMessageSize",
    "redrivePolicy": "RedrivePolicy",
    "fifoQueue": "FifoQueue",
    "contentBasedDeduplication": "ContentBasedDeduplication",
}


def queue_attributes(inputs: dict[str, Any]) -> dict[str, str]:
    """A planned ``aws:sqs/queue:Queue``'s inputs as SQS ``CreateQueue`` attributes."""
    attrs: dict[str, str] = {}
    for key, attr in _QUEUE_ATTRIBUTES.items():
        value = inputs.get(key)
        if value is None:
            continue
        if isinstance(value, bool):
            attrs[attr] = "true" if value else "false"
        elif isinstance(value, float) and value.is_integer():
            attrs[attr] = str(int(value))
        else:
            attrs[attr] = str(value)
    return attrs


def table_request(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """A planned ``aws:dynamodb/table:Table``'s inputs as a ``CreateTable`` request."""
    keys = [{"AttributeName": inputs["hashKey"], "KeyType": "HASH"}]
    if inputs.get("rangeKey"):
        keys.append({"AttributeName": inputs["rangeKey"], "KeyType": "RANGE"})
    return {
        "TableName": name,
        "KeySchema": keys,
        "AttributeDefinitions": [
            {"AttributeName": a["name"], "AttributeType": a["type"]} for a in inputs["attributes"]
        ],
        "BillingMode": inputs.get("billingMode", "PAY_PER_REQUEST"),
    }


class Moto:
    """``moto_server`` from this Python's environment, on 127.0.0.1."""

    def __init__(self, region: str, log: Path) -> None:
        self.region = region
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        binary = Path(sys.executable).with_name("moto_server")
        if not binary.exists():
            raise SandboxError(f"{binary} is missing: run scripts/bootstrap")
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [str(binary), "-H", HOST, "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait_http(f"{self.url}/moto-api/data.json", time.monotonic() + 60, self.proc)

    def client(self, service: str, endpoint: str | None = None) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=endpoint or self.url,
            region_name=self.region,
            aws_access_key_id=SANDBOX_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=SANDBOX_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def data(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=10) as resp:  # noqa: S310
            return dict(json.load(resp))

    def stop(self) -> None:
        _stop_process(self.proc)
        self._log.close()


@dataclass
class LocalAws:
    """What the planned AWS resources became in moto."""

    queue_urls: dict[str, str]
    """Planned queue ARN → local queue URL."""
    planned_queue_urls: dict[str, str]
    """Planned queue URL → local queue URL."""
    queue_names: dict[str, str]
    """Planned queue ARN → logical name."""
    dead_letter_queues: list[str]
    """Local URLs of queues that are some queue's redrive target."""


def provision_aws(plan: SandboxPlan, moto: Moto) -> LocalAws:
    """Create every planned queue, table, SES identity, configuration set and topic."""
    sqs = moto.client("sqs")
    queues = plan.of_type("aws:sqs/queue:Queue")
    # Redrive targets first: SQS refuses a redrive policy naming a queue that does not exist.
    queues.sort(key=lambda q: "redrivePolicy" in q.inputs)
    local = LocalAws({}, {}, {}, [])
    targets: set[str] = set()
    for q in queues:
        attrs = queue_attributes(q.inputs)
        if "RedrivePolicy" in attrs:
            targets.add(json.loads(attrs["RedrivePolicy"])["deadLetterTargetArn"])
        url = sqs.create_queue(QueueName=q.outputs["name"], Attributes=attrs)["QueueUrl"]
        local.queue_urls[q.outputs["arn"]] = url
        local.planned_queue_urls[q.outputs["url"]] = url
        local.queue_names[q.outputs["arn"]] = q.name
    local.dead_letter_queues = [local.queue_urls[arn] for arn in sorted(targets)]
    dynamodb = moto.client("dynamodb")
    for t in plan.of_type("aws:dynamodb/table:Table"):
        dynamodb.create_table(**table_request(t.outputs["name"], t.inputs))
        ttl = t.inputs.get("ttl") or {}
        if ttl.get("enabled"):
            dynamodb.update_time_to_live(
                TableName=t.outputs["name"],
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["attributeName"]},
            )
    sesv2 = moto.client("sesv2")
    for c in plan.of_type("aws:sesv2/configurationSet:ConfigurationSet"):
        sesv2.create_configuration_set(ConfigurationSetName=c.inputs["configurationSetName"])
    for i in plan.of_type("aws:sesv2/emailIdentity:EmailIdentity"):
        sesv2.create_email_identity(EmailIdentity=i.inputs["emailIdentity"])
    sns = moto.client("sns")
    for topic in plan.of_type("aws:sns/topic:Topic"):
        sns.create_topic(Name=topic.outputs["name"])
    return local


# --- SES fault injection ---------------------------------------------------------


@dataclass
class Faults:
    """Switches for the SES endpoint both paths send through (``/api/faults``)."""

    throttle: float = 0.0
    """Share of sends answered 429 TooManyRequestsException (transient)."""
    server_error: float = 0.0
    """Share of sends answered 500 InternalFailure (transient)."""
    reject: float = 0.0
    """Share of sends answered 400 MessageRejected (permanent)."""
    down_until: float = 0.0
    """Until this ``time.time()``, every call's connection is dropped unanswered."""
    injected: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def as_dict(self) -> dict[str, Any]:
        with self.lock:
            return {
                "throttle": self.throttle,
                "server_error": self.server_error,
                "reject": self.reject,
                "down_for_seconds": max(0.0, round(self.down_until - time.time(), 1)),
                "injected": dict(self.injected),
            }

    def update(self, body: dict[str, Any]) -> None:
        allowed = {"throttle", "server_error", "reject", "down_seconds", "reset"}
        unknown = set(body) - allowed
        if unknown:
            raise ValueError(f"unknown switch(es) {sorted(unknown)}; allowed: {sorted(allowed)}")
        with self.lock:
            if body.get("reset"):
                self.throttle = self.server_error = self.reject = 0.0
                self.down_until = 0.0
            for key in ("throttle", "server_error", "reject"):
                if key in body:
                    value = float(body[key])
                    if not 0.0 <= value <= 1.0:
                        raise ValueError(f"`{key}` must be between 0 and 1, but {value} was given")
                    setattr(self, key, value)
            if "down_seconds" in body:
                self.down_until = time.time() + float(body["down_seconds"])

    def draw(self) -> str | None:
        """The fault for one send, counted, or None."""
        with self.lock:
            fault = None
            if time.time() < self.down_until:
                fault = "down"
            else:
                roll = random.random()  # noqa: S311 - fault injection, not crypto
                for name in ("throttle", "server_error", "reject"):
                    share = float(getattr(self, name))
                    if roll < share:
                        fault = name
                        break
                    roll -= share
            if fault:
                self.injected[fault] = self.injected.get(fault, 0) + 1
            return fault


_FAULT_RESPONSES = {
    "throttle": (429, "TooManyRequestsException", "Maximum sending rate exceeded (sandbox)."),
    "server_error": (500, "InternalFailure", "Injected internal failure (sandbox)."),
    "reject": (400, "MessageRejected", "Injected permanent rejection (sandbox)."),
}


def _ses_proxy_handler(
    upstream: str, faults: Faults, on_send: Callable[[bytes, bytes], None]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # workerd's fetch needs HTTP/1.1 with Content-Length from a local stub.
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _proxy(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            is_send = self.command == "POST" and self.path.startswith("/v2/email/outbound-emails")
            fault = faults.draw() if is_send else None
            if fault == "down":
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault:
                status, code, message = _FAULT_RESPONSES[fault]
                payload = json.dumps({"message": message}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("x-amzn-ErrorType", code)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            request = urllib.request.Request(  # noqa: S310 - moto on 127.0.0.1
                upstream + self.path,
                data=body if self.command not in ("GET", "HEAD") else None,
                method=self.command,
                headers={k: v for k, v in self.headers.items() if k.lower() != "host"},
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310
                    status, headers, payload = resp.status, resp.headers, resp.read()
            except urllib.error.HTTPError as err:
                status, headers, payload = err.code, err.headers, err.read()
            self.send_response(status)
            for key, value in headers.items():
                if key.lower() not in (
                    "content-length",
                    "transfer-encoding",
                    "connection",
                    "date",
                    "server",
                ):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            if is_send and status == 200:
                on_send(body, payload)

        do_GET = do_POST = do_PUT = do_DELETE = _proxy

    return Handler


# --- the Lambda path: packaged handler + local event source mapping --------------


class LambdaRuntime:
    """One warm execution environment: ``sandbox_runtime.py`` in a child process."""

    def __init__(self, name: str, code_dir: Path, handler: str, env: dict[str, str]) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, str(_HERE / "sandbox_runtime.py"), str(code_dir), handler],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
            env=env,
            text=True,
            start_new_session=True,
        )
        first = self._read()
        if "init_error" in first:
            self.stop()
            raise SandboxError(
                f"the planned function {name!r} fails at cold start with its planned "
                f"environment: {first['init_error']}"
            )

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SandboxError(f"the function {self.name!r} runtime exited ({self.proc.poll()})")
        return dict(json.loads(line))

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(event) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def stop(self) -> None:
        if self.proc.stdin:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        _stop_process(self.proc, grace=5)


SIMULATOR_DOMAIN = "simulator.amazonses.com"
"""SES's mailbox simulator (SES Developer Guide, "Using the mailbox simulator"): the
sandbox answers its addresses the way SES does, so bounces and complaints can be tried
locally; any other address is delivered."""


def simulated_events(sent: dict[str, Any], now: str) -> list[tuple[str, dict[str, Any]]]:
    """The SES events (type, event JSON) one accepted send produces: SEND, then per
    recipient what the mailbox simulator would do: ``bounce@`` a permanent bounce,
    ``suppressionlist@`` a bounce for the account's suppression list, ``complaint@`` a
    delivery and then a complaint, anything else a delivery. ``+label`` is allowed."""
    recipients = [*sent["to"], *sent["cc"], *sent["bcc"]]
    mail = {
        "timestamp": now,
        "source": sent["from"],
        "sendingAccountId": "123456789012",
        "messageId": sent["ses_message_id"],
        "destination": recipients,
        "headersTruncated": False,
        "headers": [],
        "commonHeaders": {"from": [sent["from"]], "to": sent["to"], "subject": sent["subject"]},
        "tags": {
            **{k: [v] for k, v in sent["tags"].items()},
            "ses:configuration-set": [sent.get("configuration_set") or ""],
        },
    }
    by_kind: dict[str, list[str]] = {"bounce": [], "suppressionlist": [], "complaint": []}
    delivered: list[str] = []
    for recipient in recipients:
        address = email.utils.parseaddr(recipient)[1].lower()
        local, _, domain = address.partition("@")
        kind = local.split("+", 1)[0]
        if domain == SIMULATOR_DOMAIN and kind in ("bounce", "suppressionlist"):
            by_kind[kind].append(address)
            continue
        delivered.append(address)
        if domain == SIMULATOR_DOMAIN and kind == "complaint":
            by_kind["complaint"].append(address)
    events: list[tuple[str, dict[str, Any]]] = [
        ("SEND", {"eventType": "Send", "mail": mail, "send": {}})
    ]
    if delivered:
        events.append(
            (
                "DELIVERY",
                {
                    "eventType": "Delivery",
                    "mail": mail,
                    "delivery": {
                        "timestamp": now,
                        "processingTimeMillis": 1,
                        "recipients": delivered,
                        "smtpResponse": "250 2.0.0 OK (serverless-mail sandbox)",
                        "reportingMTA": "sandbox.local",
                    },
                },
            )
        )
    for kind, subtype, diagnostic in (
        ("bounce", "General", "smtp; 550 5.1.1 user unknown"),
        ("suppressionlist", "OnAccountSuppressionList", "Amazon SES did not send the message"),
    ):
        if by_kind[kind]:
            events.append(
                (
                    "BOUNCE",
                    {
                        "eventType": "Bounce",
                        "mail": mail,
                        "bounce": {
                            "bounceType": "Permanent",
                            "bounceSubType": subtype,
                            "bouncedRecipients": [
                                {
                                    "emailAddress": a,
                                    "action": "failed",
                                    "status": "5.1.1",
                                    "diagnosticCode": diagnostic,
                                }
                                for a in by_kind[kind]
                            ],
                            "timestamp": now,
                            "feedbackId": f"sandbox-{kind}-{sent['ses_message_id']}",
                            "reportingMTA": "dns; sandbox.local",
                        },
                    },
                )
            )
    if by_kind["complaint"]:
        events.append(
            (
                "COMPLAINT",
                {
                    "eventType": "Complaint",
                    "mail": mail,
                    "complaint": {
                        "complainedRecipients": [{"emailAddress": a} for a in by_kind["complaint"]],
                        "timestamp": now,
                        "feedbackId": f"sandbox-complaint-{sent['ses_message_id']}",
                        "complaintFeedbackType": "abuse",
                    },
                },
            )
        )
    return events


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """Received SQS messages (``ReceiveMessage`` with every attribute) as the Lambda
    event the SQS event source sends: message attributes in its camelCase shape, binary
    values base64-encoded (Lambda Developer Guide, "Using Lambda with Amazon SQS")."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {
                    name: lambda_message_attribute(value)
                    for name, value in (m.get("MessageAttributes") or {}).items()
                },
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def lambda_message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """One ``ReceiveMessage`` attribute as a Lambda SQS record carries it."""
    out: dict[str, Any] = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    return out


class EventSourceMapping:
    """The planned SQS → Lambda mapping, run locally.

    Honours the planned ``batchSize``, ``maximumBatchingWindowInSeconds``,
    ``scalingConfig.maximumConcurrency`` (one poller per unit) and
    ``functionResponseTypes``: with ``ReportBatchItemFailures`` only the reported
    items stay; without it, any failure leaves the whole batch. What stays is not
    deleted and comes back after the queue's visibility timeout, as on AWS, and the
    queue's redrive policy (moto) moves it to the DLQ after ``maxReceiveCount``.
    """

    def __init__(
        self,
        name: str,
        inputs: dict[str, Any],
        queue_url: str,
        runtimes: list[LambdaRuntime],
        sqs: Any,
        region: str,
        on_error: Callable[[str], None],
    ) -> None:
        self.name = name
        self.queue_arn = inputs["eventSourceArn"]
        self.queue_url = queue_url
        self.batch_size = _int(inputs.get("batchSize"), 10)
        self.window = float(inputs.get("maximumBatchingWindowInSeconds") or 0)
        self.report_failures = "ReportBatchItemFailures" in (
            inputs.get("functionResponseTypes") or []
        )
        self.runtimes = runtimes
        self.sqs = sqs
        self.region = region
        self.on_error = on_error
        self.stopping = threading.Event()
        self.threads = [
            threading.Thread(target=self._poll, args=(rt,), name=f"esm-{name}-{i}", daemon=True)
            for i, rt in enumerate(runtimes)
        ]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def _receive(self) -> list[dict[str, Any]]:
        """One batch: up to ``batchSize`` messages, gathered for at most the batching
        window from the first one (SQS returns at most 10 per receive)."""
        batch: list[dict[str, Any]] = []
        deadline: float | None = None
        while len(batch) < self.batch_size and not self.stopping.is_set():
            wait = 1
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                wait = min(1, int(left))
            got = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.batch_size - len(batch)),
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not batch and not got:
                break  # nothing yet: the caller polls again, checking for a stop
            if deadline is None:
                deadline = time.monotonic() + self.window
            batch += got
        return batch

    def _poll(self, runtime: LambdaRuntime) -> None:
        while not self.stopping.is_set():
            try:
                messages = self._receive()
                if not messages:
                    continue
                reply = runtime.invoke(sqs_event(messages, self.queue_arn, self.region))
                failed: set[str]
                if "error" in reply:
                    failed = {m["MessageId"] for m in messages}
                elif self.report_failures:
                    items = (reply.get("result") or {}).get("batchItemFailures") or []
                    failed = {i["itemIdentifier"] for i in items}
                else:
                    failed = set()
                done = [m for m in messages if m["MessageId"] not in failed]
                for start in range(0, len(done), 10):
                    self.sqs.delete_message_batch(
                        QueueUrl=self.queue_url,
                        Entries=[
                            {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                            for n, m in enumerate(done[start : start + 10])
                        ],
                    )
            except SandboxError as err:
                self.on_error(str(err))
                return
            except Exception as err:
                if not self.stopping.is_set():
                    print(f"sandbox: {self.name}: {type(err).__name__}: {err}", file=sys.stderr)
                    time.sleep(1)

    def stop(self) -> None:
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=5)


def function_environment(
    planned: dict[str, str], local: LocalAws, moto_url: str, ses_url: str, region: str
) -> dict[str, str]:
    """The planned variables, with planned queue URLs resolved to the local ones, plus
    what points the AWS SDK at the sandbox (``AWS_ENDPOINT_URL*``, region, credentials)."""
    env = {key: local.planned_queue_urls.get(value, value) for key, value in planned.items()}
    base = {
        k: v
        for k, v in os.environ.items()
        if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    }
    return {
        **base,
        **SANDBOX_CREDENTIALS,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ENDPOINT_URL": moto_url,
        # SES goes through the fault-injecting proxy, like the Worker's SES_ENDPOINT.
        "AWS_ENDPOINT_URL_SESV2": ses_url,
        "PYTHONUNBUFFERED": "1",
        **env,
    }


# --- the Worker path: the planned script in workerd ------------------------------

_RECORDER = """
export default {
  async queue(batch, env) {
    const entries = batch.messages.map((m) => ({ id: m.id, body: m.body, attempts: m.attempts,
      timestamp: m.timestamp }));
    const resp = await fetch(`${env.SANDBOX_SINK}/${encodeURIComponent(batch.queue)}`, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify(entries) });
    if (resp.ok) batch.ackAll(); else batch.retryAll();
  },
};
"""


def worker_options(
    script: PlannedResource, plan: SandboxPlan, ses_url: str, sqs_url: str
) -> tuple[dict[str, Any], set[str]]:
    """Miniflare options for one planned ``WorkersScript``, from its planned inputs.

    Returns the options and the names of the queues its planned consumers read.
    Every planned binding is translated by its type; a type the sandbox cannot
    emulate is an error rather than a binding silently left out.
    """
    inputs = script.inputs
    bindings: dict[str, Any] = {}
    producers: dict[str, str] = {}
    ratelimits: dict[str, Any] = {}
    durable_objects: dict[str, Any] = {}
    kv_namespaces: dict[str, str] = {}
    for b in inputs.get("bindings") or []:
        kind, name = b.get("type"), b.get("name")
        if kind in ("plain_text", "secret_text"):
            bindings[name] = b["text"]
        elif kind == "json":
            bindings[name] = (
                json.loads(b["json"]) if isinstance(b.get("json"), str) else b.get("json")
            )
        elif kind == "queue":
            producers[name] = b["queueName"]
        elif kind == "ratelimit":
            simple = b.get("simple") or {}
            ratelimits[name] = {
                "namespace_id": str(b.get("namespaceId", "0")),
                "simple": {"limit": int(simple["limit"]), "period": int(simple["period"])},
            }
        elif kind == "durable_object_namespace":
            durable_objects[name] = {
                "className": b["className"],
                **({"scriptName": b["scriptName"]} if b.get("scriptName") else {}),
                # New classes are SQLite-backed on Cloudflare (`new_sqlite_classes` migrations).
                "useSQLite": True,
            }
        elif kind == "kv_namespace":
            kv_namespaces[name] = str(b.get("namespaceId") or name)
        else:
            raise SandboxError(
                f"the planned Worker {script.name!r} has a binding {name!r} of type {kind!r}, "
                "which the sandbox does not emulate"
            )
    # The endpoint overrides the Worker reads are the only inputs the sandbox adds:
    # deployed, it calls the regional SES endpoint and the DLQ URL's own SQS origin.
    bindings.setdefault("SES_ENDPOINT", ses_url)
    bindings.setdefault("SQS_ENDPOINT", sqs_url)
    queue_names = {
        q.outputs.get("queueId"): q.inputs["queueName"]
        for q in plan.of_type("cloudflare:index/queue:Queue")
    }
    consumers: dict[str, Any] = {}
    for c in plan.of_type("cloudflare:index/queueConsumer:QueueConsumer"):
        if c.inputs.get("scriptName") != inputs.get("scriptName"):
            continue
        queue_name = queue_names.get(c.inputs.get("queueId")) or c.inputs.get("queueName")
        if not queue_name:
            raise SandboxError(f"the planned consumer {c.name!r} names no planned queue")
        s = c.inputs.get("settings") or {}
        options: dict[str, Any] = {}
        if s.get("batchSize") is not None:
            options["maxBatchSize"] = int(s["batchSize"])
        if s.get("maxWaitTimeMs") is not None:
            options["maxBatchTimeout"] = float(s["maxWaitTimeMs"]) / 1000
        if s.get("maxRetries") is not None:
            options["maxRetries"] = int(s["maxRetries"])
        if s.get("retryDelay") is not None:
            options["retryDelay"] = int(s["retryDelay"])
        if s.get("maxConcurrency") is not None:
            options["maxConcurrency"] = int(s["maxConcurrency"])
        if c.inputs.get("deadLetterQueue"):
            options["deadLetterQueue"] = c.inputs["deadLetterQueue"]
        consumers[queue_name] = options
    return (
        {
            "name": inputs.get("scriptName") or script.name,
            "modules": [
                {
                    "type": "ESModule",
                    "path": inputs.get("mainModule", "worker.js"),
                    "contents": inputs["content"],
                }
            ],
            "compatibilityDate": inputs.get("compatibilityDate"),
            "compatibilityFlags": list(inputs.get("compatibilityFlags") or []),
            "bindings": bindings,
            "queueProducers": producers,
            "queueConsumers": consumers,
            "ratelimits": ratelimits,
            "durableObjects": durable_objects,
            "kvNamespaces": kv_namespaces,
        },
        set(consumers),
    )


class Workerd:
    """The planned Worker scripts (and the DLQ recorder) under Miniflare."""

    def __init__(
        self, workers: list[dict[str, Any]], workdir: Path, on_log: Callable[[str], None]
    ) -> None:
        from .lambda_package import functions_dir

        node_modules = functions_dir() / "worker" / "node_modules"
        entry = node_modules / "miniflare" / "dist" / "src" / "index.js"
        if not entry.is_file():
            raise SandboxError(
                f"{entry} is missing: run scripts/bootstrap (the Worker's Node packages)"
            )
        node = shutil.which("node")
        if not node:
            raise SandboxError("node is not on PATH: the Worker path needs Node 20+")
        self.port = free_port()
        config = workdir / "miniflare.json"
        config.write_text(
            json.dumps({"miniflare": str(entry), "port": self.port, "workers": workers})
        )
        self.proc = subprocess.Popen(
            [node, str(_HERE / "sandbox_miniflare.mjs"), str(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=str(workdir),
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        self.url = ""
        for line in self.proc.stdout:
            if line.startswith("SANDBOX_READY "):
                self.url = line.split(" ", 1)[1].strip().rstrip("/")
                break
            on_log(line.rstrip("\n"))
        if not self.url:
            self.proc.wait(10)
            raise SandboxError(f"Miniflare did not start (exit {self.proc.returncode}); see above")
        self._reader = threading.Thread(target=self._read, args=(on_log,), daemon=True)
        self._reader.start()

    def _read(self, on_log: Callable[[str], None]) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            on_log(line.rstrip("\n"))

    def stop(self) -> None:
        _stop_process(self.proc)


# --- the sandbox ------------------------------------------------------------------


class Sandbox:
    """Everything the plan planned, started on 127.0.0.1; :meth:`stop` ends it all."""

    def __init__(self, plan: SandboxPlan, workdir: Path, *, quiet: bool = False) -> None:
        self.plan = plan
        self.workdir = workdir
        self.quiet = quiet
        self.faults = Faults()
        self.worker_dlq: dict[str, list[dict[str, Any]]] = {}
        self.errors: queue.Queue[str] = queue.Queue()
        self.moto: Moto | None = None
        self.workerd: Workerd | None = None
        self.runtimes: list[LambdaRuntime] = []
        self.mappings: list[EventSourceMapping] = []
        self.servers: list[ThreadingHTTPServer] = []
        self.env: dict[str, str] = {}
        self.sends = 0
        self.sent: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    # starting ---------------------------------------------------------------------

    def start(self) -> None:
        self.moto = Moto(self.plan.region, self.workdir / "moto.log")
        self.local = provision_aws(self.plan, self.moto)
        self.event_routes = self._event_routes()
        self.ses_url = self._serve(
            _ses_proxy_handler(self.moto.url, self.faults, self._record_send)
        )
        self.viewer_url = self._serve(_viewer_handler(self))
        self._start_lambdas()
        self._start_worker()
        self.env = self._app_env()

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> str:
        server = ThreadingHTTPServer((HOST, 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.servers.append(server)
        return f"http://{HOST}:{server.server_address[1]}"

    def _event_routes(self) -> dict[str, list[tuple[str, bool]]]:
        """Planned SES event type → the local queues its SNS topic delivers to (raw or not).

        moto's SES publishes no events, so the sandbox synthesises what SES would
        publish for each sent message (SEND, then DELIVERY, or BOUNCE and COMPLAINT for
        the mailbox simulator's addresses: :func:`simulated_events`) along the planned
        route: configuration set event destination → SNS topic → SQS subscription →
        events queue.
        """
        routes: dict[str, list[tuple[str, bool]]] = {}
        subscriptions = self.plan.of_type("aws:sns/topicSubscription:TopicSubscription")
        for dest in self.plan.of_type(
            "aws:sesv2/configurationSetEventDestination:ConfigurationSetEventDestination"
        ):
            d = dest.inputs.get("eventDestination") or {}
            topic = (d.get("snsDestination") or {}).get("topicArn")
            if not d.get("enabled", True) or not topic:
                continue
            for sub in subscriptions:
                url = self.local.queue_urls.get(str(sub.inputs.get("endpoint")))
                if (
                    sub.inputs.get("topic") != topic
                    or sub.inputs.get("protocol") != "sqs"
                    or not url
                ):
                    continue
                for kind in d.get("matchingEventTypes") or []:
                    routes.setdefault(kind, []).append(
                        (url, bool(sub.inputs.get("rawMessageDelivery")))
                    )
        return routes

    def _publish_events(self, sent: dict[str, Any]) -> None:
        assert self.moto is not None
        if not self.event_routes:
            return
        sqs = self.moto.client("sqs")
        # To the millisecond, as SES stamps events: the tags forwarded below carry the
        # senders' `queued_at` (epoch ms), and the history orders its `queued` item by it.
        stamp = time.time()
        now = (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp))
            + f".{int(stamp * 1000) % 1000:03d}Z"
        )
        events = simulated_events(sent, now)
        for kind, event in events:
            for url, raw in self.event_routes.get(kind, []):
                body = json.dumps(event)
                if not raw:
                    body = json.dumps({"Type": "Notification", "Message": body})
                sqs.send_message(QueueUrl=url, MessageBody=body)

    def _record_send(self, request: bytes, response: bytes) -> None:
        """A SendEmail that reached moto: kept with what moto does not store (tags,
        headers, both bodies), and its SES events synthesised where the plan wants them."""
        try:
            sent = _sent_from_request(json.loads(request), json.loads(response))
        except (ValueError, AttributeError, TypeError):
            return
        with self._lock:
            self.sends += 1
            self.sent.append(sent)
        self._publish_events(sent)

    def _start_lambdas(self) -> None:
        assert self.moto is not None
        functions = {
            f.outputs.get("arn"): f for f in self.plan.of_type("aws:lambda/function:Function")
        }
        for mapping in self.plan.of_type("aws:lambda/eventSourceMapping:EventSourceMapping"):
            inputs = mapping.inputs
            function = functions.get(inputs.get("functionName"))
            if function is None:
                raise SandboxError(f"the mapping {mapping.name!r} names no planned function")
            queue_url = self.local.queue_urls.get(inputs.get("eventSourceArn", ""))
            if queue_url is None:
                raise SandboxError(f"the mapping {mapping.name!r} reads no planned SQS queue")
            code_dir = self._extract(function)
            planned_env = (function.inputs.get("environment") or {}).get("variables") or {}
            env = function_environment(
                {k: str(v) for k, v in planned_env.items()},
                self.local,
                self.moto.url,
                self.ses_url,
                self.plan.region,
            )
            env.update(
                AWS_LAMBDA_FUNCTION_NAME=str(function.inputs.get("name") or function.name),
                AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(_int(function.inputs.get("memorySize"), 128)),
                AWS_LAMBDA_FUNCTION_TIMEOUT=str(_int(function.inputs.get("timeout"), 3)),
                SANDBOX_FUNCTION_ARN=str(function.outputs.get("arn", "")),
            )
            concurrency = _int(
                (inputs.get("scalingConfig") or {}).get("maximumConcurrency"),
                LOCAL_POLLERS_WITHOUT_LIMIT,
            )
            runtimes: list[LambdaRuntime] = []
            for _ in range(concurrency):
                # Kept as each starts, so a later one failing its cold start stops them all.
                runtimes.append(
                    LambdaRuntime(function.name, code_dir, function.inputs["handler"], env)
                )
                self.runtimes.append(runtimes[-1])
            esm = EventSourceMapping(
                mapping.name,
                inputs,
                queue_url,
                runtimes,
                self.moto.client("sqs"),
                self.plan.region,
                self.errors.put,
            )
            self.mappings.append(esm)
            esm.start()

    def _extract(self, function: PlannedResource) -> Path:
        code = function.inputs.get("code") or {}
        path = Path(str(code.get("path", ""))) if isinstance(code, dict) else Path()
        if not path.is_file():
            raise SandboxError(
                f"the planned function {function.name!r} has no code archive on disk ({path})"
            )
        target = self.workdir / "lambda" / function.name
        with zipfile.ZipFile(path) as archive:
            archive.extractall(target)
        return target

    def _start_worker(self) -> None:
        assert self.moto is not None
        scripts = self.plan.of_type("cloudflare:index/workersScript:WorkersScript")
        if not scripts:
            self.worker_url = ""
            return
        workers: list[dict[str, Any]] = []
        consumed: set[str] = set()
        for script in scripts:
            options, queues = worker_options(script, self.plan, self.ses_url, self.moto.url)
            workers.append(options)
            consumed |= queues
        # Queues no planned consumer reads (the DLQ) are read by a recorder that hands
        # each entry to the viewer, so dead letters and their reasons can be seen.
        unread = sorted(
            q.inputs["queueName"]
            for q in self.plan.of_type("cloudflare:index/queue:Queue")
            if q.inputs["queueName"] not in consumed
        )
        if unread:
            workers.append(
                {
                    "name": "sandbox-recorder",
                    "modules": [{"type": "ESModule", "path": "recorder.js", "contents": _RECORDER}],
                    "compatibilityDate": workers[0]["compatibilityDate"],
                    "bindings": {"SANDBOX_SINK": f"{self.viewer_url}/api/worker-dlq"},
                    "queueConsumers": {
                        name: {"maxBatchSize": 100, "maxBatchTimeout": 0.5} for name in unread
                    },
                }
            )
        self.workerd = Workerd(workers, self.workdir, self._worker_log)
        self.worker_url = self.workerd.url
        self._check_worker_bindings(scripts[0])

    def _worker_log(self, line: str) -> None:
        if not self.quiet:
            print(f"[worker] {line}", file=sys.stderr)
        if "missing_bindings" in line:
            self.errors.put(f"the planned Worker reports missing bindings: {line.strip()}")

    def _check_worker_bindings(self, script: PlannedResource) -> None:
        """Ask the Worker, with its planned token, to check its own bindings.

        An empty message is refused as invalid (400) after the Worker has checked that
        every binding it needs is present; a 500 means one is missing.
        """
        token = self._token(script)
        request = urllib.request.Request(  # noqa: S310 - our Worker on 127.0.0.1
            f"{self.worker_url}/send",
            data=b"{}",
            method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310
                status, body = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, body = err.code, err.read()
        if status >= 500 or status == 401:
            raise SandboxError(
                f"the planned Worker {script.name!r} refuses to run with its planned bindings: "
                f"{status} {body.decode(errors='replace')}"
            )

    def _token(self, script: PlannedResource) -> str:
        for b in script.inputs.get("bindings") or []:
            if (
                b.get("type") == "secret_text"
                and "TOKEN" in str(b.get("name"))
                and "PREVIOUS" not in str(b.get("name"))
            ):
                return str(b["text"])
        return ""

    def _app_env(self) -> dict[str, str]:
        """What an app needs to send locally, named as the planned app variables are."""
        assert self.moto is not None
        replace = dict(self.local.planned_queue_urls)
        planned_worker_url = self.plan.stack_outputs.get("worker_url")
        if isinstance(planned_worker_url, str) and self.worker_url:
            replace[planned_worker_url] = self.worker_url
        env: dict[str, str] = {}
        for var in self.plan.of_type(
            "vercel:index/projectEnvironmentVariable:ProjectEnvironmentVariable"
        ):
            key, value = str(var.inputs.get("key")), str(var.inputs.get("value", ""))
            env[key] = replace.get(value, value)
        scripts = self.plan.of_type("cloudflare:index/workersScript:WorkersScript")
        if scripts:
            env.setdefault("EMAIL_WORKER_URL", self.worker_url)
            env.setdefault("EMAIL_WORKER_TOKEN", self._token(scripts[0]))
        queue_url = self.plan.stack_outputs.get("queue_url")
        if isinstance(queue_url, str):
            env.setdefault("EMAIL_QUEUE_URL", replace.get(queue_url, queue_url))
        env.pop("EMAIL_AWS_ROLE_ARN", None)  # no role to assume locally: the keys below
        env.update(
            {
                "EMAIL_AWS_REGION": self.plan.region,
                "AWS_REGION": self.plan.region,
                "AWS_ENDPOINT_URL_SQS": self.moto.url,
                **SANDBOX_CREDENTIALS,
                "SANDBOX_VIEWER_URL": self.viewer_url,
                "SANDBOX_FAULTS_URL": f"{self.viewer_url}/api/faults",
                "SANDBOX_MOTO_URL": self.moto.url,
                "SANDBOX_SES_URL": self.ses_url,
            }
        )
        return env

    # state for the viewer and tests -------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Sent mail (moto), both DLQs with reasons, each message's status, faults."""
        assert self.moto is not None
        in_moto = {m.get("id") for m in _moto_messages(self.moto.data())}
        with self._lock:
            sent = [dict(m, in_moto=m["ses_message_id"] in in_moto) for m in self.sent]
        dlqs: dict[str, list[dict[str, Any]]] = {}
        sqs = self.moto.client("sqs")
        for url in self.local.dead_letter_queues:
            dlqs[url.rsplit("/", 1)[-1]] = [_sqs_dlq_entry(m) for m in _peek(sqs, url)]
        with self._lock:
            for name, entries in self.worker_dlq.items():
                dlqs[name] = [_worker_dlq_entry(e) for e in entries]
        in_flight = {}
        for url in self.local.queue_urls.values():
            attrs = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            in_flight[url.rsplit("/", 1)[-1]] = {
                "visible": int(attrs.get("ApproximateNumberOfMessages", 0)),
                "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
            }
        status: dict[str, str] = {}
        for queue_name, entries in dlqs.items():
            for e in entries:
                if e.get("message_id"):
                    status[str(e["message_id"])] = f"dead-lettered ({queue_name})"
        for s in sent:
            if s.get("message_id"):
                status[str(s["message_id"])] = "sent"
        return {
            "sent": sent,
            "dead_letters": dlqs,
            "queues": in_flight,
            "status": status,
            "faults": self.faults.as_dict(),
            "ses_sends_through_proxy": self.sends,
        }

    def record_worker_dlq(self, queue_name: str, entries: list[dict[str, Any]]) -> None:
        with self._lock:
            self.worker_dlq.setdefault(queue_name, []).extend(entries)

    # stopping ---------------------------------------------------------------------

    def stop(self) -> None:
        for esm in self.mappings:
            esm.stopping.set()
        for esm in self.mappings:
            esm.stop()
        for rt in self.runtimes:
            rt.stop()
        if self.workerd is not None:
            self.workerd.stop()
        for server in self.servers:
            server.shutdown()
            server.server_close()
        if self.moto is not None:
            self.moto.stop()


def _moto_messages(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The mail moto sent (``ses.Message`` of ``/moto-api/data.json``)."""
    messages = (data.get("ses") or {}).get("Message") or []
    return [m for m in messages if isinstance(m, dict)]


def _message_tag_decoder() -> Callable[[str], str]:
    """The senders' own decoder of the ``message_id`` tag (functions/lambda_sender)."""
    import importlib.util

    from .lambda_package import functions_dir

    path = functions_dir() / "lambda_sender" / "message_tag.py"
    spec = importlib.util.spec_from_file_location("_sandbox_message_tag", path)
    if spec is None or spec.loader is None:
        raise SandboxError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.decode_message_id


def _sent_from_request(request: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """One SES v2 ``SendEmail`` request (simple content) as the viewer shows it."""
    tags = {t["Name"]: t["Value"] for t in request.get("EmailTags") or []}
    message_id = None
    if "message_id" in tags:
        try:
            message_id = _message_tag_decoder()(tags["message_id"])
        except Exception:
            message_id = tags["message_id"]
    simple = (request.get("Content") or {}).get("Simple") or {}
    body = simple.get("Body") or {}
    destination = request.get("Destination") or {}
    return {
        "ses_message_id": response.get("MessageId"),
        "message_id": message_id,
        "from": request.get("FromEmailAddress"),
        "to": destination.get("ToAddresses") or [],
        "cc": destination.get("CcAddresses") or [],
        "bcc": destination.get("BccAddresses") or [],
        "reply_to": request.get("ReplyToAddresses") or [],
        "subject": (simple.get("Subject") or {}).get("Data"),
        "tags": tags,
        "headers": {h["Name"]: h["Value"] for h in simple.get("Headers") or []},
        "html": (body.get("Html") or {}).get("Data"),
        "text": (body.get("Text") or {}).get("Data"),
        "configuration_set": request.get("ConfigurationSetName"),
        "sent_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _peek(sqs: Any, url: str) -> list[dict[str, Any]]:
    """A DLQ's messages, left in place (visibility 0): the viewer only looks."""
    seen: dict[str, dict[str, Any]] = {}
    for _ in range(5):
        got = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        new = [m for m in got if m["MessageId"] not in seen]
        for m in got:
            seen[m["MessageId"]] = m
        if not new:
            break
    return list(seen.values())


def _sqs_dlq_entry(m: dict[str, Any]) -> dict[str, Any]:
    try:
        body = json.loads(m["Body"])
    except ValueError:
        body = m["Body"]
    entry = body if isinstance(body, dict) else {"message": body}
    message = entry.get("message") if isinstance(entry.get("message"), dict) else entry
    # The Lambda sender puts its reason in message attributes; a body with a `reason`
    # is another writer's; neither is a message SQS redrove after maxReceiveCount.
    attrs = {k: v.get("StringValue") for k, v in (m.get("MessageAttributes") or {}).items()}
    reason = attrs.get("error_reason") or entry.get("reason")
    return {
        "reason": reason or "redriven after maxReceiveCount (no reason attached)",
        "error_class": attrs.get("error_class") or entry.get("error_class"),
        "message_id": attrs.get("email_id")
        or entry.get("message_id")
        or (message.get("id") if isinstance(message, dict) else None),
        "receive_count": int(m.get("Attributes", {}).get("ApproximateReceiveCount", 0)),
        "entry": entry,
    }


def _worker_dlq_entry(e: dict[str, Any]) -> dict[str, Any]:
    body = e.get("body")
    entry = body if isinstance(body, dict) else {"message": body}
    message = entry.get("message") if isinstance(entry.get("message"), dict) else entry
    return {
        "reason": entry.get("reason")
        or "moved by the platform after max_retries (no reason attached)",
        "error_class": entry.get("error_class"),
        "message_id": entry.get("message_id")
        or (message.get("id") if isinstance(message, dict) else None),
        "entry": entry,
    }


# --- the viewer and control API ----------------------------------------------------


def _viewer_handler(sandbox: Sandbox) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, value: Any) -> None:
            self._send(status, json.dumps(value, default=str).encode(), "application/json")

        def do_GET(self) -> None:
            if self.path in ("/", "/index.html"):
                self._send(200, VIEWER_HTML.encode(), "text/html; charset=utf-8")
            elif self.path == "/api/state":
                self._json(200, sandbox.state())
            elif self.path == "/api/faults":
                self._json(200, sandbox.faults.as_dict())
            elif self.path == "/api/env":
                self._json(200, sandbox.env)
            else:
                self._json(404, {"error": "not found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                self._json(400, {"error": "body must be JSON"})
                return
            if self.path == "/api/faults":
                try:
                    sandbox.faults.update(body)
                except (ValueError, TypeError) as err:
                    self._json(400, {"error": str(err)})
                    return
                self._json(200, sandbox.faults.as_dict())
            elif self.path.startswith("/api/worker-dlq/"):
                name = urllib.request.url2pathname(self.path.rsplit("/", 1)[-1])
                sandbox.record_worker_dlq(name, body if isinstance(body, list) else [body])
                self._json(200, {"ok": True})
            else:
                self._json(404, {"error": "not found"})

        def do_DELETE(self) -> None:
            if self.path == "/api/faults":
                sandbox.faults.update({"reset": True})
                self._json(200, sandbox.faults.as_dict())
            else:
                self._json(404, {"error": "not found"})

    return Handler


VIEWER_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>serverless-mail sandbox</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5rem;color:#222}
h1{font-size:1.3rem}h2{font-size:1.1rem;margin-top:1.5rem}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ddd;padding:.3rem .5rem;
text-align:left;vertical-align:top}th{background:#f4f4f4}
.mail{border:1px solid #ccc;border-radius:6px;padding:.6rem;margin:.6rem 0}
.meta{font-family:ui-monospace,monospace;font-size:12px;white-space:pre-wrap}
iframe{width:100%;height:180px;border:1px solid #ddd;background:#fff}
pre{white-space:pre-wrap;background:#f8f8f8;padding:.4rem;margin:.3rem 0}
.status-sent{color:#070}.status-dead{color:#a00}
</style></head><body>
<h1>serverless-mail sandbox</h1>
<p id="summary">loading&hellip;</p>
<h2>Message status</h2><table id="status"><thead><tr><th>message id</th><th>status</th></tr></thead>
<tbody></tbody></table>
<h2>Sent mail</h2><div id="sent"></div>
<h2>Dead letters</h2><div id="dlq"></div>
<h2>Queues</h2><table id="queues"><thead><tr><th>queue</th><th>visible</th><th>in flight</th></tr>
</thead><tbody></tbody></table>
<script>
"use strict";
// Everything from the state is written with textContent or as an iframe's srcdoc
// (sandbox attribute without allow-scripts): mail HTML never runs in this page.
function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}
function render(state) {
  const sentCount = state.sent.length;
  const dlqCount = Object.values(state.dead_letters).reduce((n, l) => n + l.length, 0);
  document.getElementById("summary").textContent =
    `${sentCount} sent, ${dlqCount} dead-lettered; faults: ${JSON.stringify(state.faults)}`;
  const status = document.querySelector("#status tbody");
  status.replaceChildren(...Object.entries(state.status).map(([id, s]) => {
    const tr = el("tr", {"data-message-id": id});
    tr.append(el("td", {}, id), el("td", {class: s === "sent" ? "status-sent" : "status-dead"}, s));
    return tr;
  }));
  const sent = document.getElementById("sent");
  sent.replaceChildren(...state.sent.map((m) => {
    const div = el("div", {class: "mail", "data-message-id": m.message_id || ""});
    div.append(el("div", {class: "meta"},
      `From: ${m.from}\\nTo: ${m.to.join(", ")}\\nCc: ${m.cc.join(", ")}\\n` +
      `Bcc: ${m.bcc.join(", ")}\\nReply-To: ${m.reply_to.join(", ")}\\nSubject: ${m.subject}\\n` +
      `Tags: ${JSON.stringify(m.tags)}\\nHeaders: ${JSON.stringify(m.headers)}\\n` +
      `Message id: ${m.message_id}  SES id: ${m.ses_message_id}`));
    if (m.html) div.append(el("iframe", {sandbox: "", srcdoc: m.html, title: "HTML body"}));
    if (m.text) div.append(el("pre", {class: "text"}, m.text));
    return div;
  }));
  const dlq = document.getElementById("dlq");
  dlq.replaceChildren(...Object.entries(state.dead_letters).map(([name, entries]) => {
    const box = el("div", {class: "mail", "data-queue": name});
    box.append(el("strong", {}, `${name} (${entries.length})`));
    for (const e of entries) {
      const row = el("div", {class: "dead-letter", "data-message-id": e.message_id || ""});
      row.append(el("div", {class: "meta"}, `${e.message_id}: ${e.reason}`));
      box.append(row);
    }
    return box;
  }));
  const queues = document.querySelector("#queues tbody");
  queues.replaceChildren(...Object.entries(state.queues).map(([name, q]) => {
    const tr = el("tr");
    tr.append(el("td", {}, name), el("td", {}, q.visible), el("td", {}, q.in_flight));
    return tr;
  }));
}
async function refresh() {
  try {
    const resp = await fetch("/api/state", {cache: "no-store"});
    render(await resp.json());
  } catch (error) {
    document.getElementById("summary").textContent = `sandbox unreachable: ${error}`;
  }
}
refresh();
setInterval(refresh, 1000);
</script></body></html>
"""


# --- entry point -------------------------------------------------------------------


def write_env_file(path: Path, env: dict[str, str]) -> None:
    lines = ["# Written by `serverless-mail sandbox`: what an app needs to send locally."]
    lines += [f"{key}={json.dumps(value)}" for key, value in sorted(env.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run(project_dir: Path, stack: str, *, env_file: Path | None, quiet: bool = False) -> int:
    """Start the sandbox, print what an app needs, run until SIGINT/SIGTERM."""
    from .cli import PlanError

    try:
        plan = build_sandbox_plan(project_dir, stack)
    except (ConfigError, PlanError) as err:
        print(f"serverless-mail: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Ctrl-C while the plan is built: nothing has started yet, so nothing to stop.
        print("serverless-mail sandbox: stopped before it started", file=sys.stderr)
        return 130
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    workdir = Path(tempfile.mkdtemp(prefix="serverless-mail-sandbox-"))
    sandbox = Sandbox(plan, workdir, quiet=quiet)
    code = 0
    try:
        sandbox.start()
        env_path = env_file or project_dir / ".env.sandbox"
        write_env_file(env_path, sandbox.env)
        print(f"serverless-mail sandbox: stack {stack!r} is running on {HOST}", flush=True)
        for key, value in sorted(sandbox.env.items()):
            print(f"  {key}={value}", flush=True)
        print(f"written to {env_path}; mail viewer: {sandbox.viewer_url}", flush=True)
        print("SANDBOX_READY", flush=True)
        while not stop.is_set():
            try:
                error = sandbox.errors.get(timeout=0.5)
            except queue.Empty:
                continue
            print(f"serverless-mail: error: {error}", file=sys.stderr, flush=True)
            code = 1
            break
    except SandboxError as err:
        print(f"serverless-mail: error: {err}", file=sys.stderr, flush=True)
        code = 1
    finally:
        sandbox.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        print("serverless-mail sandbox: stopped", file=sys.stderr, flush=True)
    return code


def main(args: Any) -> int:
    """``serverless-mail sandbox`` with parsed arguments (see :mod:`serverless_mail.cli`)."""
    return run(args.project_dir, args.stack, env_file=args.env_file, quiet=args.quiet)
