"""The message contract as the Lambda enforces it: shared vectors, limits, domain rule."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
sys.path.insert(0, str(FUNCTIONS))

from lambda_sender.errors import InvalidMessageError, SchemaError  # noqa: E402
from lambda_sender.message import build_send_email_request, is_on_domain, parse_message  # noqa: E402
from lambda_sender.message_tag import MESSAGE_ID_TAG, QUEUED_AT_TAG  # noqa: E402
from lambda_sender.schema import MessageSchema, load_schema  # noqa: E402

SCHEMA_DOC = json.loads((FUNCTIONS / "schema" / "message.schema.json").read_text())
VECTORS = json.loads((FUNCTIONS / "schema" / "examples.json").read_text())
CASES = VECTORS["cases"]


def serialized(message: Any) -> str:
    # The producers' JSON.stringify form: compact, UTF-8, the size x-limits speaks of.
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_shared_vector(case):
    schema = load_schema()
    if case["valid"]:
        email = parse_message(serialized(case["message"]), schema, VECTORS["domain"])
        assert email.id == case["message"]["id"]
        build_send_email_request(email.fields, default_from="a@b.c", configuration_set="cs")
    else:
        with pytest.raises(InvalidMessageError) as raised:
            parse_message(serialized(case["message"]), schema, VECTORS["domain"])
        assert raised.value.reason
        if "code" in case:
            assert raised.value.reason.endswith(f"[{case['code']}]")


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_validator_agrees_with_reference_jsonschema(case):
    reference = jsonschema.Draft202012Validator(SCHEMA_DOC).is_valid(case["message"])
    assert (load_schema().first_error(case["message"]) is None) is reference


def test_limits_come_from_the_schema():
    schema = load_schema()
    assert schema.max_recipients == SCHEMA_DOC["x-limits"]["maxRecipients"]
    assert schema.max_message_bytes == SCHEMA_DOC["x-limits"]["maxMessageBytes"]


def test_lower_limits_in_a_schema_are_enforced():
    doc = json.loads(json.dumps(SCHEMA_DOC))
    doc["x-limits"].update(maxRecipients=2, maxMessageBytes=200)
    schema = MessageSchema(doc)
    three = {"id": "a", "to": ["a@x.io", "b@x.io"], "cc": "c@x.io", "subject": "s", "text": "t"}
    with pytest.raises(InvalidMessageError, match=r"3 recipients .* over the limit of 2"):
        parse_message(serialized(three), schema, "x.io")
    big = {"id": "a", "to": "a@x.io", "subject": "s", "text": "t" * 200}
    with pytest.raises(InvalidMessageError, match="over the limit of 200 bytes"):
        parse_message(serialized(big), schema, "x.io")


def test_schema_with_an_unknown_keyword_is_refused():
    doc = json.loads(json.dumps(SCHEMA_DOC))
    doc["properties"]["subject"]["format"] = "email"
    with pytest.raises(SchemaError, match=r"unsupported keyword\(s\) \['format'\]"):
        MessageSchema(doc)


@pytest.mark.parametrize(
    ("mailbox", "ok"),
    [
        ("x@mail.example.com", True),
        ("x@MAIL.example.com", True),
        ("x@news.mail.example.com", True),
        ("Team <x@mail.example.com>", True),
        ("x@example.com", False),
        ("x@notmail.example.com", False),
        ("x@mail.example.com.evil.test", False),
        ("x@evil.test", False),
    ],
)
def test_from_must_be_on_the_domain_or_a_subdomain(mailbox, ok):
    assert is_on_domain(mailbox, "mail.example.com") is ok


def test_default_from_is_used_when_message_has_none():
    request = build_send_email_request(
        {"id": "a", "to": "a@x.io", "subject": "s", "text": "t"},
        default_from="noreply@x.io",
        configuration_set="cs",
    )
    assert request["FromEmailAddress"] == "noreply@x.io"
    assert "ReplyToAddresses" not in request
    assert request["EmailTags"] == [{"Name": "message_id", "Value": "a"}]
    assert "Headers" not in request["Content"]["Simple"]


def test_the_schema_reserves_exactly_the_tags_the_sender_sets():
    assert SCHEMA_DOC["x-tags"]["reserved"] == [MESSAGE_ID_TAG, QUEUED_AT_TAG]
    assert load_schema().reserved_tags == (MESSAGE_ID_TAG, QUEUED_AT_TAG)


@pytest.mark.parametrize("name", [MESSAGE_ID_TAG, QUEUED_AT_TAG])
def test_a_reserved_tag_name_is_refused_naming_it_and_the_fix(name):
    body = serialized({"id": "a", "to": "a@x.io", "subject": "s", "text": "t", "tags": {name: "1"}})

    with pytest.raises(
        InvalidMessageError,
        match=(
            rf"^`tags`: '{name}' is a reserved tag name: the sender sets message_id and "
            r"queued_at on every message itself; rename the tag \[reserved-tag\]$"
        ),
    ):
        parse_message(body, load_schema(), "x.io")


def test_a_schema_without_reserved_tags_is_refused():
    doc = json.loads(json.dumps(SCHEMA_DOC))
    del doc["x-tags"]
    with pytest.raises(SchemaError, match="`x-tags` must give the list `reserved`"):
        MessageSchema(doc)


def test_the_enqueue_time_is_tagged_after_the_id_and_outside_the_fields():
    fields = {"id": "a", "to": "a@x.io", "subject": "s", "text": "t", "tags": {"kind": "k"}}

    request = build_send_email_request(
        fields, default_from="noreply@x.io", configuration_set="cs", queued_at=1700000000123
    )

    assert request["EmailTags"] == [
        {"Name": "kind", "Value": "k"},
        {"Name": "message_id", "Value": "a"},
        {"Name": "queued_at", "Value": "1700000000123"},
    ]
    assert fields == {"id": "a", "to": "a@x.io", "subject": "s", "text": "t", "tags": {"kind": "k"}}
