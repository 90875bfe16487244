"""The SES events the sandbox synthesises for a send, read back by the events Lambda's
own parser: SES's mailbox simulator addresses bounce and complain, others deliver."""

from __future__ import annotations

import json
from typing import Any

import pytest
from serverless_mail.sandbox import simulated_events

from functions.events.ses_event import parse_event

NOW = "2026-11-23T06:00:00.123Z"


def sent(*to: str, cc: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "from": "App <no-reply@mail.example.com>",
        "to": list(to),
        "cc": list(cc),
        "bcc": [],
        "subject": "Hello",
        "ses_message_id": "ses-1",
        "tags": {"message_id": "order-1", "queued_at": "1795413600000"},
        "configuration_set": "set",
    }


def parsed(message: dict[str, Any]) -> list[tuple[str, Any]]:
    out = []
    for kind, event in simulated_events(message, NOW):
        parsed = parse_event(json.dumps(event))
        assert parsed.event_type == kind
        assert (parsed.message_id, parsed.ses_message_id) == ("order-1", "ses-1")
        assert parsed.timestamp == NOW
        out.append((parsed.kind, parsed.details))
    return out


def test_an_ordinary_address_is_sent_and_delivered() -> None:
    [(send, _), (delivery, details)] = parsed(sent("Ada <ada@example.org>"))
    assert (send, delivery) == ("sent", "delivered")
    assert details["recipients"] == [{"address": "ada@example.org"}]


@pytest.mark.parametrize(
    ("address", "subtype"),
    [
        ("bounce@simulator.amazonses.com", "General"),
        ("Bounce+signup-7@Simulator.AmazonSES.com", "General"),
        ("suppressionlist@simulator.amazonses.com", "OnAccountSuppressionList"),
    ],
)
def test_the_simulators_bounce_addresses_bounce_for_good(address: str, subtype: str) -> None:
    events = parsed(sent(address))
    assert [k for k, _ in events] == ["sent", "bounced"]
    details = events[1][1]
    assert (details["bounce_type"], details["bounce_subtype"]) == ("Permanent", subtype)
    [recipient] = details["recipients"]
    assert recipient["address"] == address.lower() and recipient["diagnostic"]


def test_the_simulators_complaint_address_is_delivered_then_complains() -> None:
    events = parsed(sent("complaint@simulator.amazonses.com"))
    assert [k for k, _ in events] == ["sent", "delivered", "complained"]
    assert events[2][1]["feedback_type"] == "abuse"
    assert events[2][1]["recipients"] == [{"address": "complaint@simulator.amazonses.com"}]


def test_each_recipient_gets_its_own_outcome() -> None:
    events = parsed(
        sent(
            "ada@example.org",
            "bounce@simulator.amazonses.com",
            cc=("complaint@simulator.amazonses.com",),
        )
    )
    assert [k for k, _ in events] == ["sent", "delivered", "bounced", "complained"]
    assert events[1][1]["recipients"] == [
        {"address": "ada@example.org"},
        {"address": "complaint@simulator.amazonses.com"},
    ]
    assert [r["address"] for r in events[2][1]["recipients"]] == ["bounce@simulator.amazonses.com"]


def test_a_lookalike_domain_is_an_ordinary_address() -> None:
    events = parsed(sent("bounce@simulator.amazonses.com.evil.example"))
    assert [k for k, _ in events] == ["sent", "delivered"]
