"""The message `id` as the SES `message_id` tag: the shared vectors, both Python copies
(the events processor and the Lambda sender are packaged separately), round trips."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path
from types import ModuleType

import pytest

from functions.events import message_tag as events_tag
from functions.lambda_sender import message_tag as sender_tag

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
VECTORS = json.loads((FUNCTIONS / "schema" / "message-id-tag-vectors.json").read_text())["vectors"]
# SES API Reference v2, MessageTag: letters, digits, `_` and `-`, at most 256 characters.
SES_TAG_VALUE = re.compile(r"[A-Za-z0-9_-]{1,256}")
MODULES = [pytest.param(events_tag, id="events"), pytest.param(sender_tag, id="lambda_sender")]


class TestSharedVectors:
    @pytest.mark.parametrize("module", MODULES)
    @pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["id"][:24])
    def test_encodes_and_decodes_every_vector(self, module: ModuleType, vector: dict) -> None:
        assert module.encode_message_id(vector["id"]) == vector["tag"]
        assert module.decode_message_id(vector["tag"]) == vector["id"]

    def test_vectors_cover_plain_encoded_and_longest_ids(self) -> None:
        tags = [v["tag"] for v in VECTORS]
        assert any(not t.startswith("_") for t in tags)
        assert any(t.startswith("_") for t in tags)
        assert max(len(v["id"]) for v in VECTORS) == 128  # the contract's longest id

    def test_both_python_copies_are_the_same_file(self) -> None:
        assert (FUNCTIONS / "events" / "message_tag.py").read_bytes() == (
            FUNCTIONS / "lambda_sender" / "message_tag.py"
        ).read_bytes()


class TestEncoding:
    @pytest.mark.parametrize(
        "message_id",
        ["x", "order-42", "a.b", "a@b", "_x", "__", "~" * 128, string.punctuation, "é"],
    )
    def test_every_value_is_inside_ses_alphabet_and_round_trips(self, message_id: str) -> None:
        tag = events_tag.encode_message_id(message_id)
        assert SES_TAG_VALUE.fullmatch(tag)
        assert events_tag.decode_message_id(tag) == message_id

    def test_an_id_in_the_alphabet_is_its_own_tag(self) -> None:
        assert events_tag.encode_message_id("01HZX3K9-abc_def") == "01HZX3K9-abc_def"

    @pytest.mark.parametrize("value", ["", "a.b", "_a.b", "_", "_!!"])
    def test_a_malformed_tag_value_is_refused(self, value: str) -> None:
        with pytest.raises(ValueError, match="not a message id tag value"):
            events_tag.decode_message_id(value)


class TestQueuedAt:
    @pytest.mark.parametrize("module", MODULES)
    def test_epoch_milliseconds_are_their_own_tag_value(self, module: ModuleType) -> None:
        assert SES_TAG_VALUE.fullmatch("1700000000123")
        assert module.decode_queued_at("1700000000123") == 1700000000123

    @pytest.mark.parametrize("value", ["", "-1", "1.5", "1e12", " 1", "\uff11", "1" * 16])
    def test_anything_but_up_to_15_ascii_digits_is_refused(self, value: str) -> None:
        with pytest.raises(ValueError, match="not a queued_at tag value"):
            events_tag.decode_queued_at(value)
