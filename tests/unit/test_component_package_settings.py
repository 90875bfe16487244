"""The component package takes every setting the Python API takes.

Each config contract case (one per stage-config key) is turned into the inputs the
engine sends to ``construct`` for ``TransactionalEmail``: camelCase names, numbers as
floats, a path that is off simply absent. The provider host builds the real component
under the mocks, and the same check as the config contract test must pass on what it
planned. Outputs come back camelCase, every one the Python component has, secrets
still secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pytest
from pulumi.provider.experimental.component import ComponentProvider
from serverless_mail.config import CONFIG_KEYS, NAMESPACE, ConfigKey, stage_value
from serverless_mail.mocking import Secret, run_program
from serverless_mail.provider import PACKAGE_NAME, PACKAGE_VERSION, provider_components
from serverless_mail.transactional_email import OUTPUTS

from tests.unit.test_config_contract import CASES_BY_KEY, Plan, arrived, base_stage, set_key

PATHS = {"lambda": "lambdaSender", "worker": "workerSender", "vercel": "vercel", "events": "events"}


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def wire(value: Any) -> Any:
    """A value as the engine sends it: every number a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return [wire(v) for v in value] if isinstance(value, list) else value
    return float(value)


def package_inputs(config: Mapping[str, Any], stack: str) -> dict[str, Any]:
    """The TransactionalEmail inputs that say what the stage file says."""
    inputs: dict[str, Any] = {"stage": stack}
    sections_on = {
        "lambda": stage_value(config, _key("lambda.enabled")) is not False,
        "worker": stage_value(config, _key("worker.enabled")) is not False,
        "vercel": bool(config.get(f"{NAMESPACE}:vercel"))
        and stage_value(config, _key("vercel.enabled")) is not False,
        "events": stage_value(config, _key("events.enabled")) is not False
        if any(k.section == "events" for k in CONFIG_KEYS)
        else False,
    }
    for section, path in PATHS.items():
        if sections_on.get(section):
            inputs[path] = {}
    for key in CONFIG_KEYS:
        value = stage_value(config, key)
        if value is None or key.name == "enabled":
            continue
        if key.section in PATHS and not sections_on[key.section]:
            continue
        *parents, leaf = [camel(part) for part in key.arg.split(".")]
        node = inputs
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = wire(value)
    return inputs


def _key(short: str) -> ConfigKey:
    found = [k for k in CONFIG_KEYS if k.key == f"{NAMESPACE}:{short}"]
    return found[0] if found else ConfigKey("x", short, "x", None, None, "")


def construct(inputs: dict[str, Any], stack: str) -> tuple[Plan, dict[str, Any]]:
    host = ComponentProvider(provider_components(), PACKAGE_NAME, None, PACKAGE_VERSION)

    def program() -> None:
        result = host.construct("mail", f"{PACKAGE_NAME}:index:TransactionalEmail", inputs, None)
        # Exported, the state comes back resolved, secrets marked (Secret).
        for key, value in result.state.items():
            pulumi.export(key, value)

    rec = run_program(program, stack=stack, config={"aws:region": "eu-west-1"})
    outputs = {
        key: "[secret]" if isinstance(value, Secret) else value
        for key, value in rec.stack_outputs.items()
    }
    plan = Plan(
        {
            "resources": [
                {"type": r.type, "name": r.name, "parent": r.parent_name,
                 "inputs": r.plain_inputs()}
                for r in rec.resources
            ],
            "outputs": {_snake(k): v for k, v in outputs.items() if v is not None},
            "resource_options": {r.name: r.options for r in rec.resources if r.options},
            "dns_records": outputs.get("dnsRecords") or [],
        }
    )  # fmt: skip
    return plan, outputs


def _snake(camel_name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in camel_name)


@pytest.mark.parametrize("key", [k.key for k in CONFIG_KEYS])
def test_every_setting_reaches_the_planned_resource_through_construct(key: str) -> None:
    case = CASES_BY_KEY[key]
    config = base_stage()
    table_key = next(k for k in CONFIG_KEYS if k.key == key)
    if not table_key.required and not (table_key.default_text or "").startswith("required"):
        set_key(config, key, None)
    for other, value in case.also.items():
        set_key(config, other if other.startswith("aws:") else f"{NAMESPACE}:{other}", value)
    set_key(config, key, case.value)
    plan, _ = construct(package_inputs(config, "contract"), "contract")
    assert arrived(case, plan)


def test_every_output_of_the_python_component_is_offered_and_the_token_stays_secret() -> None:
    _, outputs = construct(package_inputs(base_stage(), "dev"), "dev")
    # Exported state holds each output that has a value (None ones are dropped).
    assert set(outputs) <= {camel(k) for k in OUTPUTS}
    assert {
        "identityArn", "configurationSetName", "eventsTopicArn", "dnsRecords", "queueUrl",
        "queueArn", "deadLetterQueueUrl", "alarmTopicArn", "lambdaFunctionName", "workerUrl",
        "workerScriptName", "workerToken", "vercelRoleArn",
    } <= set(outputs)  # fmt: skip
    assert outputs["workerToken"] == "[secret]"


def test_an_absent_path_is_off() -> None:
    inputs = package_inputs(base_stage(), "dev")
    del inputs["lambdaSender"], inputs["workerSender"], inputs["vercel"]
    plan, outputs = construct(inputs, "dev")
    assert not any(
        n.startswith(("mail-lambda", "mail-worker", "mail-vercel")) for n in plan.by_name
    )
    assert outputs.get("lambdaFunctionName") is None and outputs.get("workerUrl") is None
    assert plan.exists("mail-queue-queue")


def test_integral_floats_are_accepted_and_fractions_refused() -> None:
    inputs = package_inputs(base_stage(), "dev")
    inputs["lambdaSender"]["memoryMb"] = 1024.0
    plan, _ = construct(inputs, "dev")
    assert plan.input("mail-lambda-function", "memorySize") == 1024
    inputs["lambdaSender"]["memoryMb"] = 1024.5
    with pytest.raises(Exception, match=r"`lambda_sender.memory_mb` must be a whole number"):
        construct(inputs, "dev")
