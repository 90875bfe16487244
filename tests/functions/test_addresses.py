"""Mailboxes and headers that cannot be injected, as the Lambda sender enforces them.

functions/schema/address-vectors.json is shared with the Worker's vitest suite
(functions/worker/test/address.test.js): both senders must give every vector the same
verdict, refusal code and re-serialised form.
"""

from __future__ import annotations

import json
import sys
from email.header import decode_header, make_header
from email.headerregistry import HeaderRegistry
from pathlib import Path
from typing import Any

import pytest

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
sys.path.insert(0, str(FUNCTIONS))

from lambda_sender.address import AddressError, parse_mailbox  # noqa: E402
from lambda_sender.config import SenderConfig  # noqa: E402
from lambda_sender.errors import ConfigError, InvalidMessageError  # noqa: E402
from lambda_sender.message import build_send_email_request, parse_message  # noqa: E402
from lambda_sender.schema import load_schema  # noqa: E402

VECTORS = json.loads((FUNCTIONS / "schema" / "address-vectors.json").read_text())
DOMAIN = VECTORS["domain"]
MAILBOXES = VECTORS["mailboxes"]
VALID = [v for v in MAILBOXES if v["valid"]]
FROM = VECTORS["from"]
HEADERS = VECTORS["headers"]
# Every class of attack the issue lists has vectors (a class with none would be a gap).
CLASSES = {
    "plain",
    "comma",
    "semicolon",
    "quotes",
    "escaped-quotes",
    "comment",
    "angle-brackets",
    "control",
    "bidi",
    "encoded-word",
    "look-alike",
    "group",
    "idn",
    "non-ascii-name",
    "local-part",
}


def vector_id(vector: dict[str, Any]) -> str:
    return f"{vector.get('class', 'from')}:{vector['input']!a}"[:90]


def body(**fields: Any) -> str:
    message = {"id": "v-1", "to": "ada@customer.test", "subject": "s", "text": "t", **fields}
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def send_request(**fields: Any) -> dict[str, Any]:
    email = parse_message(body(**fields), load_schema(), DOMAIN)
    return build_send_email_request(
        email.fields, default_from=f"noreply@{DOMAIN}", configuration_set="cs"
    )


def test_every_attack_class_has_refused_and_accepted_vectors() -> None:
    assert {v["class"] for v in MAILBOXES} == CLASSES
    refused = {v["class"] for v in MAILBOXES if not v["valid"]}
    assert refused == CLASSES - {"plain", "non-ascii-name"}
    assert len(MAILBOXES) >= 100


@pytest.mark.parametrize("vector", MAILBOXES, ids=vector_id)
def test_mailbox_vector_verdict_code_and_sent_form(vector: dict[str, Any]) -> None:
    if vector["valid"]:
        assert str(parse_mailbox(vector["input"])) == vector["canonical"]
    else:
        with pytest.raises(AddressError) as raised:
            parse_mailbox(vector["input"])
        assert raised.value.code == vector["code"], raised.value.reason


@pytest.mark.parametrize("vector", VALID, ids=vector_id)
def test_sent_form_is_exactly_one_mailbox_to_the_stdlib_parser(vector: dict[str, Any]) -> None:
    # The stdlib's RFC 5322 parser stands in for the receiving side: what we send must
    # read back as one mailbox, the same name and address, without a defect.
    parsed = parse_mailbox(vector["input"])
    header = HeaderRegistry()("To", vector["canonical"])
    assert header.defects == ()
    [address] = header.addresses
    assert address.addr_spec == parsed.address
    assert vector["canonical"].isascii()
    if parsed.name.isascii():
        assert address.display_name == parsed.name
    else:
        # RFC 2047 section 6.2: white space between adjacent encoded-words is dropped
        # on decoding (headerregistry keeps it; email.header follows the RFC).
        words = vector["canonical"][: vector["canonical"].rindex("<")].strip()
        assert all(len(w) <= 75 for w in words.split(" "))
        assert str(make_header(decode_header(words))) == parsed.name


@pytest.mark.parametrize("field", ["to", "cc", "bcc", "reply_to"], ids=lambda f: f"in {f}")
@pytest.mark.parametrize("vector", MAILBOXES, ids=vector_id)
def test_every_mailbox_field_gives_the_vector_verdict(vector: dict[str, Any], field: str) -> None:
    fields = {field: [vector["input"]]}
    if vector["valid"]:
        request = send_request(**fields)
        sent = (
            request["ReplyToAddresses"]
            if field == "reply_to"
            else request["Destination"][f"{field.capitalize()}Addresses"]
        )
        assert sent == [vector["canonical"]]
    else:
        # The schema (single line, an @) or the mailbox parser refuses it, naming the item.
        with pytest.raises(InvalidMessageError, match=rf"^`{field}\[0\]` "):
            send_request(**fields)


@pytest.mark.parametrize("vector", FROM, ids=vector_id)
def test_from_vector(vector: dict[str, Any]) -> None:
    if vector["valid"]:
        assert send_request(**{"from": vector["input"]})["FromEmailAddress"] == vector["canonical"]
    else:
        with pytest.raises(InvalidMessageError, match=rf"\[{vector['code']}\]$"):
            send_request(**{"from": vector["input"]})


@pytest.mark.parametrize("vector", HEADERS, ids=lambda v: v["name"])
def test_header_vector(vector: dict[str, Any]) -> None:
    headers = {vector["name"]: "v"}
    if vector["valid"]:
        request = send_request(headers=headers)
        assert request["Content"]["Simple"]["Headers"] == [{"Name": vector["name"], "Value": "v"}]
    else:
        with pytest.raises(
            InvalidMessageError, match=rf"the header '{vector['name']}' is not allowed.*"
        ):
            send_request(headers=headers)


def test_refused_header_names_cover_the_issues_list() -> None:
    refused = {v["name"].lower() for v in HEADERS if not v["valid"]}
    for name in (
        "From Sender Return-Path To Cc Bcc Reply-To DKIM-Signature Authentication-Results Received"
    ).split():
        assert name.lower() in refused


def test_a_header_given_twice_in_two_cases_is_refused() -> None:
    with pytest.raises(InvalidMessageError, match=r"'list-unsubscribe' is given twice"):
        send_request(headers={"List-Unsubscribe": "<https://a>", "list-unsubscribe": "<https://b>"})


def test_comma_in_a_quoted_name_counts_once_toward_the_limit() -> None:
    names = [f'"Customer, No {i}" <c{i}@customer.test>' for i in range(50)]
    request = send_request(to=names[:30], cc=names[30:40], bcc=names[40:])
    destination = request["Destination"]
    assert sum(len(v) for v in destination.values()) == 50
    assert destination["ToAddresses"][0] == '"Customer, No 0" <c0@customer.test>'
    with pytest.raises(InvalidMessageError, match=r"51 recipients .* over the limit of 50"):
        send_request(to=names[:30], cc=names[30:40], bcc=[*names[40:], "one@more.test"])


def test_the_issues_comma_name_is_refused_not_counted_as_one() -> None:
    with pytest.raises(InvalidMessageError, match=r"\[display-name-address\]$"):
        send_request(to="x@evil.test, Bob <bob@customer.test>")


def test_default_from_is_sent_re_serialised() -> None:
    email = parse_message(body(), load_schema(), DOMAIN)
    request = build_send_email_request(
        email.fields,
        default_from='"Acme,  Inc."  <NoReply@Mail.Example.com>',
        configuration_set="c",
    )
    assert request["FromEmailAddress"] == '"Acme, Inc." <NoReply@mail.example.com>'


@pytest.mark.parametrize(
    ("default_from", "message"),
    [
        (
            "security@paypal.com <noreply@mail.example.com>",
            r"display name that contains an address",
        ),
        ("Acme <noreply@mail.example.com>, eve@evil.test", r"must be one mailbox"),
        ("Acme\u202e <noreply@mail.example.com>", r"U\+202E"),
    ],
)
def test_cold_start_refuses_an_injectable_default_from(default_from: str, message: str) -> None:
    env = {
        "EMAIL_DOMAIN": DOMAIN,
        "EMAIL_DEFAULT_FROM": default_from,
        "EMAIL_CONFIGURATION_SET": "cs",
        "EMAIL_IDEMPOTENCY_TABLE": "t",
        "EMAIL_DEAD_LETTER_QUEUE_URL": "https://sqs.example/q",
    }
    with pytest.raises(ConfigError, match=rf"`EMAIL_DEFAULT_FROM` .*{message}"):
        SenderConfig.from_env(env)


@pytest.mark.slow
def test_through_the_handler_a_comma_name_is_sent_once_quoted_and_an_injection_dead_lettered(
    moto_aws: Any, lambda_poll: Any, lambda_module: Any
) -> None:
    # GIVEN the real handler draining a real queue (moto) with an SES spy
    calls: list[dict[str, Any]] = []

    def spy(params: dict[str, Any], **_: Any) -> None:
        calls.append(json.loads(params["body"]))

    events = lambda_module._client("sesv2").meta.events
    events.register("before-call.sesv2.SendEmail", spy, unique_id="address-spy")
    injected = body(id="inject-1", to="x@evil.test, Bob <bob@customer.test>")
    try:
        moto_aws.send(body(id="ok-1", to='"Smith, John" <john@customer.test>'))
        moto_aws.send(injected)
        moto_aws.send(body(id="hdr-1", headers={"Sender": "ceo@mail.example.com"}))
        # WHEN it polls
        rounds = lambda_poll()
    finally:
        events.unregister("before-call.sesv2.SendEmail", unique_id="address-spy")

    # THEN the quoted name went out as one quoted recipient, the others to the DLQ
    assert [r.failures for r in rounds] == [[]]
    assert [c["Destination"]["ToAddresses"] for c in calls] == [
        ['"Smith, John" <john@customer.test>']
    ]
    dead = {
        json.loads(d["Body"])["id"]: d["MessageAttributes"]["error_reason"]["StringValue"]
        for d in moto_aws.dead_letters()
    }
    assert dead.keys() == {"inject-1", "hdr-1"}
    assert dead["inject-1"].endswith("[display-name-address]")
    assert "the header 'Sender' is not allowed" in dead["hdr-1"]
