"""Both paths of the planned dev stack, end to end, through ``serverless-mail sandbox``."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest

from .conftest import Running

pytestmark = pytest.mark.slow


@pytest.fixture
def sandbox(dev_sandbox: Running) -> Running:
    return dev_sandbox


def _subjects(sandbox: Running) -> list[str]:
    return [m["subject"] for m in sandbox.moto_sent()]


def _nothing_in_flight(sandbox: Running) -> bool:
    queues = sandbox.state()["queues"]
    return all(q["in_flight"] == 0 for q in queues.values()) and all(
        q["visible"] == 0 for name, q in queues.items() if "dlq" not in name
    )


def _history(sandbox: Running, message_id: str) -> dict[str, dict[str, Any]]:
    """A message's items in the planned history table, by range key (strings kept)."""
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=sandbox.env["AWS_ENDPOINT_URL_SQS"],
        region_name=sandbox.env["AWS_REGION"],
        aws_access_key_id=sandbox.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=sandbox.env["AWS_SECRET_ACCESS_KEY"],
    )
    items = dynamodb.query(
        TableName=sandbox.env["EMAIL_HISTORY_TABLE"],
        KeyConditionExpression="id = :id",
        ExpressionAttributeValues={":id": {"S": message_id}},
    )["Items"]
    return {i["sk"]["S"]: {k: v["S"] for k, v in i.items() if "S" in v} for i in items}


def test_the_printed_variables_point_at_the_sandbox(sandbox: Running) -> None:
    env = sandbox.env
    assert env["EMAIL_WORKER_URL"].startswith("http://127.0.0.1:")
    assert env["EMAIL_QUEUE_URL"].startswith(env["AWS_ENDPOINT_URL_SQS"] + "/")
    assert env["EMAIL_AWS_REGION"] == env["AWS_REGION"] == "eu-west-1"
    assert len(env["EMAIL_WORKER_TOKEN"]) >= 32
    printed = sandbox.log()
    for key in (
        "EMAIL_WORKER_URL",
        "EMAIL_QUEUE_URL",
        "EMAIL_WORKER_TOKEN",
        "AWS_ENDPOINT_URL_SQS",
    ):
        assert f"{key}={env[key]}" in printed


def test_good_mail_is_sent_exactly_once_on_both_paths(sandbox: Running) -> None:
    # GIVEN one message for each path, each with a unique id and subject
    run = uuid.uuid4().hex[:8]
    worker = {
        "id": f"worker-{run}",
        "to": "Ada <ada@example.org>",
        "subject": f"worker path {run}",
        "html": "<p>Hello <b>Ada</b></p>",
        "text": "Hello Ada",
        "tags": {"kind": "welcome"},
    }
    lambda_ = {
        "id": f"lambda-{run}",
        "to": ["bob@example.org"],
        "subject": f"lambda path {run}",
        "text": "Hi Bob",
    }
    # WHEN the app sends them to the printed Worker URL and SQS queue
    status, body = sandbox.post_worker("/send", worker)
    assert status == 202 or status == 200, body
    sandbox.enqueue(lambda_)
    # THEN moto sent each once, with the planned sender, and nothing is left in flight
    sandbox.wait_for(
        "both messages sent",
        lambda: {worker["subject"], lambda_["subject"]} <= set(_subjects(sandbox)),
    )
    sandbox.wait_for("the queues to drain", lambda: _nothing_in_flight(sandbox))
    subjects = _subjects(sandbox)
    assert subjects.count(worker["subject"]) == 1
    assert subjects.count(lambda_["subject"]) == 1
    sent = {m["subject"]: m for m in sandbox.moto_sent()}
    assert sent[worker["subject"]]["source"] == "Example Dev <no-reply@dev-mail.example.com>"
    assert sent[worker["subject"]]["destinations"]["ToAddresses"] == ["Ada <ada@example.org>"]
    assert sent[lambda_["subject"]]["destinations"]["ToAddresses"] == ["bob@example.org"]
    # and the viewer's state knows each by its id, with its tags
    state = sandbox.state()
    assert state["status"][worker["id"]] == "sent"
    assert state["status"][lambda_["id"]] == "sent"

    # and the events path recorded both in the planned history table: SEND and DELIVERY
    # events synthesised for what SES accepted, through the events queue and Lambda
    def history(message_id: str) -> dict[str, dict[str, str]]:
        return _history(sandbox, message_id)

    # and each path tagged the send with its queue's enqueue time, recorded as the
    # message's `queued` item, no later than SES's SEND
    for message_id in (worker["id"], lambda_["id"]):
        sandbox.wait_for(f"the history of {message_id}", lambda m=message_id: len(history(m)) == 4)
        items = history(message_id)
        timeline = {item["kind"]: item for sk, item in items.items() if sk.startswith("event#")}
        assert sorted(timeline) == ["delivered", "queued", "sent"]
        queued, sent = timeline["queued"], timeline["sent"]
        assert queued["sk"] == f"event#{queued['timestamp']}#queued"
        assert queued["event_type"] == "QUEUED"
        assert queued["timestamp"] <= sent["timestamp"]
        assert items["status"]["status"] == "delivered"
    viewed = {m["message_id"]: m for m in state["sent"]}
    assert viewed[worker["id"]]["tags"]["kind"] == "welcome"
    assert viewed[worker["id"]]["html"] == worker["html"]
    assert viewed[lambda_["id"]]["text"] == "Hi Bob"


def test_the_mailbox_simulator_bounces_and_complains_into_the_history(
    sandbox: Running,
) -> None:
    # GIVEN a message to SES's bounce address through the Worker, and one to its
    # complaint address through SQS
    run = uuid.uuid4().hex[:8]
    bounce = {
        "id": f"bounce-{run}",
        "to": "bounce@simulator.amazonses.com",
        "subject": f"bounce {run}",
        "text": "x",
    }
    complaint = {
        "id": f"complaint-{run}",
        "to": "complaint@simulator.amazonses.com",
        "subject": f"complaint {run}",
        "text": "x",
    }
    status, body = sandbox.post_worker("/send", bounce)
    assert status in (200, 202), body
    sandbox.enqueue(complaint)
    # THEN each ends with SES's verdict as its status, with the details kept
    for message, final in ((bounce, "bounced"), (complaint, "complained")):
        sandbox.wait_for(
            f"{message['id']} to be {final}",
            lambda m=message, f=final: (
                _history(sandbox, m["id"]).get("status", {}).get("status") == f
            ),
        )
    kinds = {
        m["id"]: sorted(i["kind"] for sk, i in _history(sandbox, m["id"]).items() if sk != "status")
        for m in (bounce, complaint)
    }
    assert kinds == {
        bounce["id"]: ["bounced", "queued", "sent"],
        complaint["id"]: ["complained", "delivered", "queued", "sent"],
    }
    assert _history(sandbox, bounce["id"])["status"]["status_event_type"] == "BOUNCE"


def test_hostile_mail_is_refused_or_dead_lettered_with_a_reason(sandbox: Running) -> None:
    run = uuid.uuid4().hex[:8]
    off_domain = {
        "id": f"spoof-{run}",
        "to": "x@example.org",
        "from": "ceo@evil.example",
        "subject": f"spoof {run}",
        "text": "pay",
    }
    # The Worker refuses it at the door, with the reason
    status, body = sandbox.post_worker("/send", off_domain)
    assert status == 400, body
    assert "not-on-domain" in str(body)
    # A wrong token is refused before anything else
    status, _ = sandbox.post_worker("/send", off_domain, token="not-the-token-" + "0" * 40)
    assert status == 401
    # The Lambda dead-letters it, and a body that is not JSON, each with its reason
    sandbox.enqueue(off_domain)
    sandbox.enqueue("{not json " + run)
    dlq = "mail-queue-dlq"

    def dead_letters() -> list[dict[str, object]]:
        state = sandbox.state()["dead_letters"]
        return [e for name, entries in state.items() if name.startswith(dlq) for e in entries]

    sandbox.wait_for(
        "two Lambda dead letters",
        lambda: sum(1 for e in dead_letters() if run in str(e["entry"])) == 2,
    )
    entries = [e for e in dead_letters() if run in str(e["entry"])]
    reasons = sorted(str(e["reason"]) for e in entries)
    assert any("not-on-domain" in r for r in reasons), reasons
    assert all(e["error_class"] == "InvalidMessage" for e in entries), entries
    # A message SES refuses for good is dead-lettered by both paths with SES's reason
    sandbox.faults(reject=1.0)
    try:
        rejected = {
            "id": f"rejected-{run}",
            "to": "y@example.org",
            "subject": f"rejected {run}",
            "text": "no",
        }
        status, body = sandbox.post_worker("/send", {**rejected, "id": f"w-{rejected['id']}"})
        assert status in (200, 202), body
        sandbox.enqueue({**rejected, "id": f"l-{rejected['id']}"})

        def rejected_entries() -> list[dict[str, object]]:
            state = sandbox.state()["dead_letters"]
            return [
                e
                for entries in state.values()
                for e in entries
                if e["error_class"] == "MessageRejected" and run in str(e["message_id"])
            ]

        sandbox.wait_for(
            "both paths to dead-letter the rejected message", lambda: len(rejected_entries()) == 2
        )
    finally:
        sandbox.faults(reset=True)
    ids = sorted(str(e["message_id"]) for e in rejected_entries())
    assert ids == [f"l-rejected-{run}", f"w-rejected-{run}"]
    # nothing hostile was sent, and nothing is left in flight
    assert not [s for s in _subjects(sandbox) if run in s]
    sandbox.wait_for("the queues to drain", lambda: _nothing_in_flight(sandbox))


def test_an_id_is_sent_once_per_path_and_twice_across_both(sandbox: Running) -> None:
    """What the README's Delivery guarantees say: each path's guard sends an id once, and
    the two guards are separate, so the same id through both paths is sent twice."""
    run = uuid.uuid4().hex[:8]
    message = {
        "id": f"both-{run}",
        "to": "cy@example.org",
        "subject": f"both paths {run}",
        "text": "Hi Cy",
    }
    # WHEN the app sends the same message twice through each path (the second SQS copy
    # after the first is sent: a copy that meets the first still in progress waits out the
    # visibility timeout, as Powertools' idempotency answers "in progress")
    for _ in range(2):
        status, body = sandbox.post_worker("/send", message)
        assert status in (200, 202), body
    sandbox.enqueue(message)
    sandbox.wait_for("one send per path", lambda: _subjects(sandbox).count(message["subject"]) >= 2)
    sandbox.wait_for("the queues to drain", lambda: _nothing_in_flight(sandbox))
    # (a marker sent after the copy shows the copy was taken off the queue, not pending)
    marker = {**message, "id": f"marker-{run}", "subject": f"marker {run}"}
    sandbox.enqueue(message)
    sandbox.enqueue(marker)
    sandbox.wait_for("the marker sent", lambda: marker["subject"] in _subjects(sandbox))
    sandbox.wait_for("the queues to drain", lambda: _nothing_in_flight(sandbox))
    # THEN it is sent once by each path, and nothing is left in flight
    assert _subjects(sandbox).count(message["subject"]) == 2
    assert message["id"] not in str(sandbox.state()["dead_letters"])
