"""The README's read of a message's status ("From the app"), run as written with boto3
against moto DynamoDB: the table created as the dev stage plans it, the history written
by the events function's own writer, the environment the app gets from Vercel."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from serverless_mail.mocking import Recording, Secret

from functions.events.history import History
from functions.events.message_tag import encode_message_id
from functions.events.ses_event import parse_event
from tests.conftest import ROOT, run_stack

VARIABLE = "vercel:index/projectEnvironmentVariable:ProjectEnvironmentVariable"


def readme_history_read() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    app = readme.split("### From the app", 1)[1].split("\n## ", 1)[0]
    (block,) = [
        b
        for b in re.findall(r"^```python\n(.*?)^```", app, flags=re.M | re.S)
        if "EMAIL_HISTORY_TABLE" in b
    ]
    return block


def app_environment(rec: Recording) -> dict[str, str]:
    """The values Vercel gives the preview deployment (the SDK marks every one secret)."""
    env = {}
    for r in rec.of_type(VARIABLE):
        if "preview" in r.inputs["targets"]:
            value = r.inputs["value"]
            env[r.inputs["key"]] = value.value if isinstance(value, Secret) else value
    return env


def ses_event(event_type: str, message_id: str, at: str, **detail: Any) -> str:
    import json

    mail = {
        "timestamp": at,
        "source": "no-reply@dev-mail.example.com",
        "sendingAccountId": "123456789012",
        "messageId": "0100018c-ses-1",
        "destination": ["ada@customer.test"],
        "tags": {"message_id": [encode_message_id(message_id)]},
    }
    key = {"Send": "send", "Delivery": "delivery", "Bounce": "bounce"}[event_type]
    body = {**detail} if event_type == "Send" else {"timestamp": at, **detail}
    return json.dumps({"eventType": event_type, "mail": mail, key: body})


@pytest.fixture
def planned_table(moto_endpoint: str, moto_env: dict[str, str]) -> Iterator[Any]:
    rec = run_stack("dev")
    inputs = rec.named("mail-events-history").inputs
    name = rec.named("mail-events-history").outputs["name"]
    urllib.request.urlopen(
        urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST"), timeout=5
    ).close()
    table = boto3.resource("dynamodb", region_name="eu-west-1").create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": inputs["hashKey"], "KeyType": "HASH"},
            {"AttributeName": inputs["rangeKey"], "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": a["name"], "AttributeType": a["type"]} for a in inputs["attributes"]
        ],
        BillingMode=inputs["billingMode"],
    )
    yield rec, table


def test_the_readme_read_returns_a_messages_status_and_timeline(
    planned_table: tuple[Recording, Any], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    rec, table = planned_table
    # GIVEN receipt-1042 was sent, then bounced (out of order), and another message sent
    history = History(table, ttl_days=90)
    for body in (
        ses_event(
            "Bounce",
            "receipt-1042",
            "2026-11-23T10:02:00.000Z",
            bounceType="Permanent",
            bounceSubType="General",
            bouncedRecipients=[{"emailAddress": "ada@customer.test"}],
        ),
        ses_event("Send", "receipt-1042", "2026-11-23T10:00:00.000Z"),
        ses_event("Send", "receipt-9", "2026-11-23T10:01:00.000Z"),
    ):
        history.record(parse_event(body))
    # AND the app's environment is what the plan gives its Vercel deployment
    env = app_environment(rec)
    assert env["EMAIL_HISTORY_TABLE"] == table.name
    for key in ("EMAIL_HISTORY_TABLE", "EMAIL_AWS_REGION"):
        monkeypatch.setenv(key, env[key])
    # WHEN the README's snippet runs as written
    scope: dict[str, Any] = {}
    exec(compile(readme_history_read(), "README.md", "exec"), scope)
    # THEN it reads the message's status and its own timeline, in time order
    assert scope["status"]["status"] == "bounced"
    assert scope["status"]["status_details"]["bounce_type"] == "Permanent"
    assert [e["event_type"] for e in scope["timeline"]] == ["SEND", "BOUNCE"]
    assert capsys.readouterr().out == "bounced ['SEND', 'BOUNCE']\n"


def test_the_readme_read_uses_only_what_the_app_is_granted() -> None:
    # The snippet's calls are the two actions the app's identity holds, nothing more.
    snippet = readme_history_read()
    calls = set(re.findall(r"\.(get_item|query|scan|put_item|update_item|delete_item)\(", snippet))
    assert calls == {"get_item", "query"}
