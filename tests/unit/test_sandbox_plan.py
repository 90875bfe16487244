"""The sandbox reads the offline plan: what it would start, without starting it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from serverless_mail.sandbox import (
    Faults,
    PlannedResource,
    SandboxError,
    SandboxPlan,
    build_sandbox_plan,
    queue_attributes,
    table_request,
    worker_options,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dev() -> SandboxPlan:
    return build_sandbox_plan(ROOT, "dev")


def test_queue_attributes_come_from_the_planned_inputs(dev: SandboxPlan) -> None:
    for queue in dev.of_type("aws:sqs/queue:Queue"):
        attrs = queue_attributes(queue.inputs)
        assert attrs["MessageRetentionPeriod"] == str(int(queue.inputs["messageRetentionSeconds"]))
        if "redrivePolicy" in queue.inputs:
            assert json.loads(attrs["RedrivePolicy"]) == json.loads(queue.inputs["redrivePolicy"])
            assert attrs["VisibilityTimeout"] == str(int(queue.inputs["visibilityTimeoutSeconds"]))


def test_tables_keep_their_planned_keys(dev: SandboxPlan) -> None:
    for table in dev.of_type("aws:dynamodb/table:Table"):
        request = table_request(table.outputs["name"], table.inputs)
        assert request["KeySchema"][0] == {
            "AttributeName": table.inputs["hashKey"],
            "KeyType": "HASH",
        }
        assert {a["AttributeName"] for a in request["AttributeDefinitions"]} == {
            a["name"] for a in table.inputs["attributes"]
        }


def test_every_planned_worker_binding_reaches_miniflare_by_its_type(dev: SandboxPlan) -> None:
    (script,) = dev.of_type("cloudflare:index/workersScript:WorkersScript")
    options, consumed = worker_options(script, dev, "http://127.0.0.1:1", "http://127.0.0.1:2")
    translated = {
        *options["bindings"],
        *options["queueProducers"],
        *options["ratelimits"],
        *options["durableObjects"],
        *options["kvNamespaces"],
    }
    planned = {b["name"] for b in script.inputs["bindings"]}
    # Every planned binding, plus only the two endpoint overrides the sandbox adds.
    assert translated == planned | {"SES_ENDPOINT", "SQS_ENDPOINT"}
    assert options["modules"][0]["contents"] == script.inputs["content"]
    secrets = {
        b["name"]: b["text"] for b in script.inputs["bindings"] if b["type"] == "secret_text"
    }
    assert all(options["bindings"][k] == v and v != "[secret]" for k, v in secrets.items())
    for consumer in dev.of_type("cloudflare:index/queueConsumer:QueueConsumer"):
        settings = consumer.inputs["settings"]
        (name,) = [
            q.inputs["queueName"]
            for q in dev.of_type("cloudflare:index/queue:Queue")
            if q.outputs.get("queueId") == consumer.inputs["queueId"]
        ]
        assert name in consumed
        assert options["queueConsumers"][name]["maxBatchSize"] == settings["batchSize"]
        assert options["queueConsumers"][name]["maxRetries"] == settings["maxRetries"]
        assert (
            options["queueConsumers"][name]["maxBatchTimeout"] == settings["maxWaitTimeMs"] / 1000
        )


def test_a_binding_type_the_sandbox_cannot_emulate_is_refused_by_name(dev: SandboxPlan) -> None:
    (script,) = dev.of_type("cloudflare:index/workersScript:WorkersScript")
    inputs = dict(
        script.inputs, bindings=[*script.inputs["bindings"], {"type": "vectorize", "name": "INDEX"}]
    )
    odd = PlannedResource(script.type, script.name, inputs, script.outputs)
    with pytest.raises(SandboxError, match="binding 'INDEX' of type 'vectorize'"):
        worker_options(odd, dev, "http://127.0.0.1:1", "http://127.0.0.1:2")


@pytest.mark.parametrize(
    ("switches", "message"),
    [
        ({"throttle": 1.5}, "`throttle` must be between 0 and 1, but 1.5 was given"),
        ({"reject": -0.1}, "`reject` must be between 0 and 1"),
        ({"slow": 1}, r"unknown switch\(es\) \['slow'\]"),
    ],
)
def test_fault_switches_refuse_bad_values(switches: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Faults().update(switches)


def test_fault_shares_are_drawn_and_counted() -> None:
    faults = Faults()
    faults.update({"throttle": 1.0})
    assert [faults.draw() for _ in range(3)] == ["throttle"] * 3
    faults.update({"reset": True, "down_seconds": 60})
    assert faults.draw() == "down"
    assert faults.as_dict()["injected"] == {"throttle": 3, "down": 1}
    faults.update({"reset": True})
    assert faults.draw() is None


def test_an_unknown_stack_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    from serverless_mail.cli import main

    assert main(["sandbox", "--stack", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("serverless-mail: error: unknown stack 'nope'")
