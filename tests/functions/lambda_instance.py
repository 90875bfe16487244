"""One Lambda "instance" for the load rig: the packaged handler behind a poller that
behaves like the SQS event source mapping (batch size, visibility timeout, deletes all
but ``batchItemFailures``). Runs until terminated; its environment is the planned one.

Usage: lambda_instance.py QUEUE_URL QUEUE_ARN BATCH_SIZE VISIBILITY_TIMEOUT TIMEOUT_SECONDS
"""

from __future__ import annotations

import signal
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "functions"))

import boto3
import lambda_sender.handler as h


def main() -> None:
    queue_url, queue_arn = sys.argv[1], sys.argv[2]
    batch_size, visibility, timeout = (int(v) for v in sys.argv[3:6])
    sqs = boto3.client("sqs")
    running = [True]
    signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
    while running[0]:
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(batch_size, 10),
            VisibilityTimeout=visibility,
            WaitTimeSeconds=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            continue
        deadline = time.monotonic() + timeout
        context = SimpleNamespace(
            function_name="email-sender",
            memory_limit_in_mb=256,
            invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:email-sender",
            aws_request_id=str(uuid.uuid4()),
            get_remaining_time_in_millis=lambda end=deadline: int(
                max(0.0, end - time.monotonic()) * 1000
            ),
        )
        response = h.handler({"Records": [record(m, queue_arn) for m in messages]}, context)
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(done[start : start + 10])
                ],
            )


def record(m: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    return {
        "messageId": m["MessageId"],
        "receiptHandle": m["ReceiptHandle"],
        "body": m["Body"],
        "attributes": m.get("Attributes", {}),
        "messageAttributes": {
            name: {"stringValue": v.get("StringValue"), "dataType": v["DataType"]}
            for name, v in m.get("MessageAttributes", {}).items()
        },
        "md5OfBody": m["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1",
    }


if __name__ == "__main__":
    main()
