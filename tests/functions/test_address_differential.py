"""Held-out corpus: both senders' mailbox parsers must agree beyond the shared vectors.

Thousands of mailboxes are generated from hostile fragments (separators, quotes,
escapes, comments, angle brackets, controls, bidi and zero-width characters,
encoded-words, full-width look-alikes, groups, IDN labels). The Lambda's parser runs
here; the Worker's ``src/address.js`` runs in Node on the same strings. Every string
must get the same verdict, the same refusal code and the same sent form, and every
accepted one must read back as exactly one mailbox with the stdlib's RFC 5322 parser.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from email.headerregistry import HeaderRegistry
from pathlib import Path

import pytest

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
WORKER = FUNCTIONS / "worker"
sys.path.insert(0, str(FUNCTIONS))

from lambda_sender.address import AddressError, parse_mailbox  # noqa: E402

pytestmark = pytest.mark.slow

NAMES = [
    "Ada",
    "Ada Lovelace",
    "Smith, John",
    "x@evil.test",
    "x\uff20evil.test",
    "Ada (x)",
    "Ada <b>",
    "J\u00fcrgen",
    "\u0410\u0434\u0430",
    "Ada; Eve",
    "a:b",
    "=?UTF-8?Q?x=40y?=",
    "=? ok",
    "O'Brien",
    "Ada.",
    "\u00c9" * 30,
    "\u4f8b\u3048",
    "Smith\uff0c John",
    "",
]
WRAPS = ["{n}", '"{n}"', '"{n}', '{n}"', '"{q}"', "{n} {n}", '"{n}" {n}']
LOCALS = [
    "ada",
    "a.b",
    "o'brien+tag",
    ".ada",
    "a..b",
    "\u0430da",
    "a b",
    '"ada"',
    "a(b)",
    "a" * 65,
    "",
]
DOMAINS = [
    "customer.test",
    "Customer.TEST",
    "b\u00fccher.test",
    "xn--bcher-kva.test",
    "xn--zz.test",
    "stra\u00dfe.test",
    "a\u05d0.test",
    "\u05d0\u05d1.test",
    "\u043f\u0440\u0438\u043c\u0435\u0440.test",
    "customer\uff0etest",
    "customer\u3002test",
    "\uff43ustomer.test",
    "cust_omer.test",
    "-a.test",
    "customer",
    "customer.test.",
    "[192.0.2.1]",
    "customer.test (c)",
]
# "\ud800" is a lone surrogate, which a JSON body can carry as an escape.
INJECT = [
    "",
    ",",
    ";",
    ", eve@evil.test",
    "\r\n",
    "\u0000",
    "\u202e",
    "\u200b",
    "\u00a0",
    "\t",
    ">",
    "<",
    "\ud800",
]


def corpus(size: int, seed: int = 20261123) -> list[str]:
    rng = random.Random(seed)
    out: set[str] = set()
    while len(out) < size:
        name = rng.choice(NAMES)
        wrap = rng.choice(WRAPS).format(n=name, q=name.replace('"', '\\"'))
        # Mostly well-formed parts, so hostile fragments land in otherwise valid mailboxes.
        local = rng.choice(LOCALS[:3] if rng.random() < 0.6 else LOCALS)
        domain = rng.choice(DOMAINS[:4] if rng.random() < 0.6 else DOMAINS)
        addr = f"{local}@{domain}"
        form = rng.randrange(4)
        text = {0: addr, 1: f"{wrap} <{addr}>", 2: f"<{addr}>", 3: f"{wrap}<{addr}>"}[form]
        if rng.random() < 0.35:
            pos = rng.randrange(len(text) + 1)
            text = text[:pos] + rng.choice(INJECT) + text[pos:]
        out.add(text)
    return sorted(out)


def python_verdicts(inputs: list[str]) -> list[list[str]]:
    verdicts = []
    for text in inputs:
        try:
            verdicts.append(["ok", str(parse_mailbox(text))])
        except AddressError as exc:
            verdicts.append(["err", exc.code])
    return verdicts


def worker_verdicts(inputs: list[str]) -> list[list[str]]:
    node = shutil.which("node")
    assert node, "node is required: the Worker's parser runs in it (see functions/worker/README.md)"
    script = (
        "import { readFileSync } from 'node:fs';"
        "import { AddressError, canonicalMailbox } from './src/address.js';"
        "const inputs = JSON.parse(readFileSync(0, 'utf8'));"
        "const out = inputs.map((text) => { try { return ['ok', canonicalMailbox(text)]; }"
        " catch (e) { if (!(e instanceof AddressError)) throw e; return ['err', e.code]; } });"
        "process.stdout.write(JSON.stringify(out));"
    )
    result = subprocess.run(
        [node, "--input-type=module", "-e", script],
        input=json.dumps(inputs),
        capture_output=True,
        text=True,
        cwd=WORKER,
        check=True,
        timeout=60,
    )
    verdicts: list[list[str]] = json.loads(result.stdout)
    return verdicts


CORPUS = corpus(3000)


def test_both_senders_agree_on_a_held_out_corpus() -> None:
    python, worker = python_verdicts(CORPUS), worker_verdicts(CORPUS)
    differences = [
        (text, p, w) for text, p, w in zip(CORPUS, python, worker, strict=True) if p != w
    ]
    assert differences == []
    # The corpus is hostile, not trivial: it exercises most codes and many accepts.
    codes = {v[1] for v in python if v[0] == "err"}
    assert codes == {
        "forbidden-character",
        "syntax",
        "encoded-word",
        "display-name-address",
        "local-part",
        "domain",
    }
    assert 300 < sum(v[0] == "ok" for v in python) < len(CORPUS) // 2


def test_every_accepted_mailbox_reads_back_as_exactly_one() -> None:
    for text, (verdict, sent) in zip(CORPUS, python_verdicts(CORPUS), strict=True):
        if verdict != "ok":
            continue
        header = HeaderRegistry()("To", sent)
        assert header.defects == (), (text, sent)
        assert len(header.addresses) == 1, (text, sent)
        assert header.addresses[0].addr_spec == parse_mailbox(text).address
        assert sent.isascii()
