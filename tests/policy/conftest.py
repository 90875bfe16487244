"""Running the pack through pulumi_policy's analyzer servicer, as the Pulumi CLI does.

Requests are built from what the mocks recorded: ``Analyze`` gets each resource's
inputs exactly as the engine received them (secret signatures included),
``AnalyzeStack`` every resource with its outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf import struct_pb2
from pulumi.runtime import proto
from pulumi_policy import EnforcementLevel
from pulumi_policy.deserialize import SPECIAL_SECRET_SIG, SPECIAL_SIG_KEY
from pulumi_policy.policy import _PolicyAnalyzerServicer
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE
from serverless_mail.mocking import UNKNOWN, Recording, Secret
from serverless_mail.policies import POLICIES, enable_secret_awareness


def make_servicer() -> _PolicyAnalyzerServicer:
    """The servicer as ``policy/__main__.py`` sets the pack up (secret awareness on)."""
    enable_secret_awareness()
    return _PolicyAnalyzerServicer("serverless-mail", "0.1.0", POLICIES, EnforcementLevel.MANDATORY)


def wire(value: Any) -> Any:
    """A recorded value back in the engine's wire form."""
    if isinstance(value, Secret):
        return {SPECIAL_SIG_KEY: SPECIAL_SECRET_SIG, "value": wire(value.value)}
    if value is UNKNOWN:
        return UNKNOWN_STRING_VALUE
    if isinstance(value, dict):
        return {k: wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [wire(v) for v in value]
    return value


def make_struct(value: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(wire(value))
    return message


def analyze_recording(recording: Recording) -> list[Any]:
    """Every diagnostic the servicer returns for a recording (resource and stack rules)."""
    analyzer = make_servicer()
    custom = [r for r in recording.resources if r.custom]
    diagnostics: list[Any] = []
    for r in custom:
        request = proto.AnalyzeRequest(type=r.type, properties=r.struct, urn=r.urn, name=r.name)
        diagnostics += analyzer.Analyze(request, None).diagnostics
    stack = proto.AnalyzeStackRequest(
        resources=[
            proto.AnalyzerResource(
                type=r.type,
                urn=r.urn,
                name=r.name,
                properties=make_struct({**r.inputs, **r.outputs}),
                parent=r.parent or "",
            )
            for r in custom
        ]
    )
    diagnostics += analyzer.AnalyzeStack(stack, None).diagnostics
    return diagnostics


@pytest.fixture
def analyze() -> Callable[[Recording], list[Any]]:
    return analyze_recording


@pytest.fixture
def servicer() -> Callable[[], _PolicyAnalyzerServicer]:
    return make_servicer


@pytest.fixture
def struct() -> Callable[[dict[str, Any]], struct_pb2.Struct]:
    return make_struct
