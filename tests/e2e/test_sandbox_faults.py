"""SES faults injected through the sandbox's switches: every good message still sent once."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from .conftest import assert_stopped_cleanly, project_copy, set_stage_values, start_sandbox

pytestmark = pytest.mark.slow


def _quick_retries(project: Path) -> None:
    # A failed SQS message comes back after the queue's visibility timeout, derived from
    # the Lambda timeout (6 x 30 s in dev): a 3 s timeout brings it back in 18 s. More
    # receives and retries keep a message that meets several faults out of the DLQs.
    set_stage_values(project, "dev", "lambda", {"timeoutSeconds": 3})
    set_stage_values(project, "dev", "queue", {"maxReceiveCount": 10})
    set_stage_values(project, "dev", "worker", {"maxRetries": 10, "retryDelaySeconds": 2})


def test_throttling_errors_and_an_outage_still_send_every_message_once(tmp_path: Path) -> None:
    project, pythonpath = project_copy(tmp_path, _quick_retries)
    sandbox, _proc, output = start_sandbox(project, tmp_path, pythonpath=pythonpath)
    assert sandbox is not None, f"the sandbox did not start:\n{''.join(output[-80:])}"
    try:
        run = uuid.uuid4().hex[:8]
        subjects: list[str] = []

        def send(n: int, phase: str) -> None:
            for i in range(n):
                worker = f"{phase} worker {i} {run}"
                lambda_ = f"{phase} lambda {i} {run}"
                status, body = sandbox.post_worker(
                    "/send",
                    {
                        "id": f"w-{phase}-{i}-{run}",
                        "to": "a@example.org",
                        "subject": worker,
                        "text": "x",
                    },
                )
                assert status == 202, body
                sandbox.enqueue(
                    {
                        "id": f"l-{phase}-{i}-{run}",
                        "to": "b@example.org",
                        "subject": lambda_,
                        "text": "x",
                    }
                )
                subjects.extend([worker, lambda_])

        def injected(kind: str) -> int:
            return int(sandbox.state()["faults"]["injected"].get(kind, 0))

        # GIVEN SES answering every send with a throttle or a 500
        sandbox.faults(throttle=0.5, server_error=0.5)
        send(4, "flaky")
        sandbox.wait_for(
            "throttles and 500s",
            lambda: injected("throttle") >= 2 and injected("server_error") >= 2,
        )
        # AND then SES down, dropping connections, while more mail arrives
        sandbox.faults(throttle=0, server_error=0, down_seconds=600)
        send(3, "outage")
        sandbox.wait_for("calls to the downed SES", lambda: injected("down") >= 4)
        # WHEN SES comes back
        sandbox.faults(reset=True)
        # THEN every message is sent, once, and none was dead-lettered
        sandbox.wait_for(
            "every message sent",
            lambda: set(subjects) <= {m["subject"] for m in sandbox.moto_sent()},
            seconds=240,
        )
        sent = [m["subject"] for m in sandbox.moto_sent()]
        assert sorted(s for s in sent if run in s) == sorted(subjects)
        state = sandbox.state()
        dead = [
            e
            for entries in state["dead_letters"].values()
            for e in entries
            if run in str(e.get("message_id"))
        ]
        assert dead == []
        assert injected("throttle") >= 2 and injected("server_error") >= 2 and injected("down") >= 4
        sandbox.wait_for(
            "nothing in flight",
            lambda: all(
                q["in_flight"] == 0 and q["visible"] == 0
                for q in sandbox.state()["queues"].values()
            ),
        )
    finally:
        assert_stopped_cleanly(sandbox)
