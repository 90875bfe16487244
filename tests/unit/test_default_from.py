"""A stack's default sender must be one the senders will send: checked at plan time.

Both senders re-parse every mailbox and refuse a display name that holds an address
or needs quoting; ``check_email(display_name=True)`` (behind every component's
``default_from``/``email_from``) refuses the same names, so a bad default fails the
plan instead of every send.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from serverless_mail import ConfigError, EmailDomain, EmailDomainArgs
from serverless_mail.validation import check_email
from serverless_mail.worker_sender import WorkerSender, WorkerSenderArgs

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "functions"))

from lambda_sender.address import AddressError, parse_mailbox

CASES = [
    ("Example <no-reply@mail.example.com>", True),
    ("Example Dev <no-reply@mail.example.com>", True),
    ("Example Inc. <no-reply@mail.example.com>", True),
    ('"Acme, Inc." <no-reply@mail.example.com>', True),
    ('"Acme \\"Mail\\"" <no-reply@mail.example.com>', True),
    ("no-reply@mail.example.com", True),
    ("security@paypal.com <no-reply@mail.example.com>", False),
    ('"security@paypal.com" <no-reply@mail.example.com>', False),
    ("Acme, Inc <no-reply@mail.example.com>", False),
    ("Acme; Inc <no-reply@mail.example.com>", False),
    ("Acme (Mail) <no-reply@mail.example.com>", False),
    ("Acme: Mail <no-reply@mail.example.com>", False),
    ('"Acme" Mail <no-reply@mail.example.com>', False),
    ("=?UTF-8?Q?x=40y?= <no-reply@mail.example.com>", False),
]


@pytest.mark.parametrize(("value", "ok"), CASES, ids=[c[0] for c in CASES])
def test_component_check_agrees_with_the_senders_parser(value: str, ok: bool) -> None:
    try:
        parse_mailbox(value)
        sender_ok = True
    except AddressError:
        sender_ok = False
    assert sender_ok is ok
    if ok:
        check_email("default_from", value, domain="mail.example.com", display_name=True)
    else:
        with pytest.raises(ConfigError, match=r"^`default_from` must have a display name"):
            check_email("default_from", value, domain="mail.example.com", display_name=True)


def test_worker_sender_refuses_an_address_like_default_from_before_any_child(run: Any) -> None:
    errors: list[ConfigError] = []

    def program() -> None:
        domain = EmailDomain(
            "mail",
            EmailDomainArgs(
                domain="mail.example.com",
                zone_id="00112233445566778899aabbccddeeff",
                zone_name="example.com",
                region="eu-west-1",
            ),
        )
        try:
            WorkerSender(
                "worker",
                WorkerSenderArgs(
                    domain=domain,
                    account_id="0123456789abcdef0123456789abcdef",
                    default_from="security@paypal.com <no-reply@mail.example.com>",
                    region="eu-west-1",
                ),
            )
        except ConfigError as error:
            errors.append(error)

    rec = run(program)
    assert [str(e) for e in errors] == [
        "`default_from` must have a display name without '@' or '=?...?=', with , ; : ( ) "
        '[ ] \\ " only inside one quoted name (e.g. \'"Acme, Inc." <no-reply@example.com>\'), '
        "but 'security@paypal.com <no-reply@mail.example.com>' was provided"
    ]
    assert [r.name for r in rec.resources if r.parent_name == "worker"] == []
