"""Load: a burst of 50x the send rate through the SQS → Lambda path, at the SES rate (issue 11).

GIVEN the stage's planned sender (the offline plan of dev with a 4 recipients/s quota, the
Worker off and 4 concurrent instances), its planned queue in moto (visibility timeout,
redrive count) and an SES stub that throttles above 4 recipients/s,
WHEN 200 messages (50 seconds of quota) are enqueued at once and 4 handler processes poll
the queue with the planned environment,
THEN every message is sent exactly once, none reaches the DLQ, and the throttled calls
are counted. Before issue 11 the same burst against a 3-receive redrive and no pacing
dead-lettered most of it.
"""

from __future__ import annotations

import time
import uuid

import boto3
import pytest

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

pytestmark = pytest.mark.slow

RATE = 4  # recipients per second, the account's quota in this test
BURST = 50 * RATE


class TestBurstAtTheQuota:
    def test_a_burst_of_50x_the_rate_is_sent_once_each_with_nothing_dead_lettered(
        self, moto_endpoint: str, moto_env: dict[str, str]
    ) -> None:
        planned = planned_lambda(
            {
                "ses": {"maxSendRate": RATE},
                "worker": {"enabled": False},
                "vercel": {"enabled": False},
                "lambda": {"maximumConcurrency": 4},
            }
        )
        # The plan gives each of the 4 instances a quarter of the quota.
        assert planned.environment["EMAIL_MAX_SEND_RATE"] == "1"
        assert planned.maximum_concurrency == 4
        sqs, dynamodb = boto3.client("sqs"), boto3.client("dynamodb")
        name = f"load-{uuid.uuid4().hex[:8]}"
        queue_url, queue_arn, dlq_url = create_queues(sqs, planned, name)
        create_table(dynamodb, name)
        ses = SesStub(rate=RATE)
        env = instance_environment(
            planned, moto=moto_endpoint, ses=ses.endpoint, table=name,
            queue_url=queue_url, dlq_url=dlq_url,
        )  # fmt: skip
        ids = [f"burst-{i:04d}" for i in range(BURST)]
        enqueue_burst(sqs, queue_url, ids)
        instances = start_instances(planned, env, queue_url, queue_arn, planned.maximum_concurrency)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if len(ses.sent) == BURST and queue_depth(sqs, queue_url) == 0:
                    break
                assert all(p.poll() is None for p in instances), "an instance crashed"
                time.sleep(0.5)
        finally:
            stop(instances)
            ses.stop()

        assert sorted(ses.sent) == ids
        assert set(ses.sent.values()) == {1}, "a message was sent twice"
        assert queue_depth(sqs, dlq_url) == 0
        assert queue_depth(sqs, queue_url) == 0
        # Pacing keeps SES throttling rare; every throttled call was retried, not lost.
        print(f"throttled calls: {ses.throttled} of {BURST + ses.throttled}")
        assert ses.throttled <= BURST // 10
        assert ses.first_sent is not None and ses.last_sent is not None
        # Never faster than the quota: its one-second burst plus the rate.
        elapsed = ses.last_sent - ses.first_sent
        assert ses.recipients_sent <= RATE * (elapsed + 1) + 1
