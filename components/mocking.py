"""Run a Pulumi program in-process under recording mocks: no CLI, no cloud.

Used by the offline plan (``serverless-mail plan``) and by the tests. Every
registered resource is recorded with its type, name, parent (mocks don't report
one, so the monitor records it) and inputs as the engine sees them (secrets and
unknowns kept as such). Any invoke the program makes fails loudly: the
components are written to need none, so an invoke is a bug to see, not to fake.
"""

from __future__ import annotations

import base64
import hashlib
import json
import runpy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

__all__ = [
    "ACCOUNT_ID",
    "RecordedResource",
    "Recording",
    "RecordingMocks",
    "Secret",
    "UnmockedInvokeError",
    "run_program",
]

ACCOUNT_ID = "123456789012"
"""The AWS account every fake ARN is in."""


class UnmockedInvokeError(RuntimeError):
    """The program called a provider function the mocks do not answer."""


@dataclass(frozen=True)
class Secret:
    """An input value the engine sees as secret."""

    value: Any


class _Unknown:
    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN = _Unknown()


@dataclass
class RecordedResource:
    """One registered resource, as the engine saw it."""

    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    inputs: dict[str, Any]
    """Inputs with :class:`Secret` and ``UNKNOWN`` markers kept."""
    struct: struct_pb2.Struct
    """The inputs exactly as sent to the engine (secret signatures included)."""
    provider: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    """Resource options the engine sees that are not inputs (``importId``,
    ``customTimeouts``, the names in ``aliases``), only when set."""

    @property
    def parent_name(self) -> str | None:
        return self.parent.split("::")[-1] if self.parent else None

    def plain_inputs(self, secret: str = "[secret]") -> dict[str, Any]:  # noqa: S107
        """Inputs as JSON-ready values: secrets shown as ``secret``."""
        return _plain(self.inputs, secret)


def _plain(value: Any, secret: str) -> Any:
    if isinstance(value, Secret):
        return secret
    if value is UNKNOWN:
        return "[unknown]"
    if isinstance(value, dict):
        return {k: _plain(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, secret) for v in value]
    return value


def _decode(value: Any) -> Any:
    """Engine wire value → Python, keeping secret and unknown markers."""
    if value == rpc.UNKNOWN:
        return UNKNOWN
    if isinstance(value, dict):
        sig = value.get(rpc._special_sig_key)
        if sig == rpc._special_secret_sig:
            return Secret(_decode(value.get("value")))
        if sig == rpc._special_output_value_sig:
            inner = _decode(value["value"]) if "value" in value else UNKNOWN
            return Secret(inner) if value.get("secret") else inner
        if sig == rpc._special_resource_sig:
            return value.get("urn")
        if sig in (rpc._special_asset_sig, rpc._special_archive_sig):
            return {k: _decode(v) for k, v in value.items() if k != rpc._special_sig_key}
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _fake_name(logical: str) -> str:
    return f"{logical}-{hashlib.sha256(logical.encode()).hexdigest()[:7]}"


class RecordingMocks(pulumi_mocks.Mocks):
    """Mocks that give each resource plausible outputs (ARNs, URLs, DKIM tokens)."""

    def __init__(self, region: str = "us-east-1") -> None:
        self.region = region

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        outputs = dict(inputs)
        fake = _FAKE_OUTPUTS.get(args.typ)
        if fake is not None:
            outputs.update(fake(args.name, inputs, self.region))
        elif args.typ.startswith("aws:"):
            service = args.typ.split(":")[1].split("/")[0]
            outputs.setdefault(
                "arn", f"arn:aws:{service}:{self.region}:{ACCOUNT_ID}:{_fake_name(args.name)}"
            )
        return f"{args.name}-id", outputs

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], None]:
        raise UnmockedInvokeError(
            f"the program called {args.token!r}, which the offline mocks do not answer: "
            "components must not need provider invokes"
        )


def _aws_arn(service: str, resource: str, region: str, account: str = ACCOUNT_ID) -> str:
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def _email_identity(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    domain = inputs.get("emailIdentity", name)
    attrs = dict(inputs.get("dkimSigningAttributes") or {})
    attrs["tokens"] = [hashlib.sha256(f"{domain}-{i}".encode()).hexdigest()[:32] for i in range(3)]
    attrs.setdefault("currentSigningKeyLength", attrs.get("nextSigningKeyLength", "RSA_2048_BIT"))
    return {
        "arn": _aws_arn("ses", f"identity/{domain}", region),
        "dkimSigningAttributes": attrs,
        "identityType": "DOMAIN",
        "verifiedForSendingStatus": False,
    }


def _named(service: str, prefix: str, key: str = "name") -> Callable[..., dict[str, Any]]:
    def fake(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
        physical = inputs.get(key) or _fake_name(name)
        return {key: physical, "arn": _aws_arn(service, f"{prefix}{physical}", region)}

    return fake


def _global(service: str, prefix: str) -> Callable[..., dict[str, Any]]:
    def fake(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
        physical = inputs.get("name") or _fake_name(name)
        return {"name": physical, "arn": f"arn:aws:{service}::{ACCOUNT_ID}:{prefix}{physical}"}

    return fake


def _queue(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    physical = inputs.get("name") or _fake_name(name)
    return {
        "name": physical,
        "arn": _aws_arn("sqs", physical, region),
        "url": f"https://sqs.{region}.amazonaws.com/{ACCOUNT_ID}/{physical}",
    }


def _sns_topic(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    physical = inputs.get("name") or _fake_name(name)
    return {"name": physical, "arn": _aws_arn("sns", physical, region)}


def _config_set(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    physical = inputs.get("configurationSetName") or _fake_name(name)
    return {"arn": _aws_arn("ses", f"configuration-set/{physical}", region)}


def _log_group(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    physical = inputs.get("name") or _fake_name(name)
    return {"name": physical, "arn": _aws_arn("logs", f"log-group:{physical}", region)}


def _access_key(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    return {"id": "AKIAMOCK" + name.upper()[:12], "secret": "mock-secret-" + name}


def _random_password(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    return {"result": hashlib.sha256(name.encode()).hexdigest()}


def _random_bytes(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    raw = hashlib.sha256(name.encode()).digest()[: int(inputs.get("length", 32))]
    return {"base64": base64.b64encode(raw).decode(), "hex": raw.hex()}


def _cf_queue(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    return {"queueId": hashlib.sha256(name.encode()).hexdigest()[:32]}


def _rotating(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    # A fixed base keeps plans reproducible; the provider defaults to the current time.
    base = str(inputs.get("rfc3339") or "2026-01-01T00:00:00Z")
    start = datetime.fromisoformat(base.replace("Z", "+00:00"))
    rotation = start + timedelta(days=float(inputs.get("rotationDays") or 0))
    return {"rfc3339": base, "rotationRfc3339": rotation.strftime("%Y-%m-%dT%H:%M:%SZ")}


def _oidc_provider(name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    url = str(inputs.get("url", "oidc.example")).removeprefix("https://")
    return {"arn": f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{url}"}


_FAKE_OUTPUTS: dict[str, Callable[[str, dict[str, Any], str], dict[str, Any]]] = {
    "aws:sesv2/emailIdentity:EmailIdentity": _email_identity,
    "aws:sesv2/configurationSet:ConfigurationSet": _config_set,
    "aws:sns/topic:Topic": _sns_topic,
    "aws:sqs/queue:Queue": _queue,
    "aws:iam/role:Role": _global("iam", "role/"),
    "aws:iam/user:User": _global("iam", "user/"),
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": _oidc_provider,
    "aws:iam/accessKey:AccessKey": _access_key,
    "aws:lambda/function:Function": _named("lambda", "function:"),
    "aws:dynamodb/table:Table": _named("dynamodb", "table/"),
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:cloudwatch/metricAlarm:MetricAlarm": _named("cloudwatch", "alarm:"),
    "random:index/randomPassword:RandomPassword": _random_password,
    "random:index/randomBytes:RandomBytes": _random_bytes,
    "cloudflare:index/queue:Queue": _cf_queue,
    "time:index/rotating:Rotating": _rotating,
}


def _options(request: Any) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if request.importId:
        options["importId"] = request.importId
    timeouts = {
        key: getattr(request.customTimeouts, key)
        for key in ("create", "update", "delete")
        if getattr(request.customTimeouts, key)
    }
    if timeouts:
        options["customTimeouts"] = timeouts
    aliases = [alias.spec.name for alias in request.aliases if alias.spec.name]
    if aliases:
        options["aliases"] = aliases
    return options


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recorded: dict[str, RecordedResource] = {}
        self.stack_urn: str | None = None

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            self.stack_urn = response.urn
            return response
        inputs = _decode(json_format.MessageToDict(request.object))
        self.recorded[response.urn] = RecordedResource(
            urn=response.urn,
            type=request.type,
            name=request.name,
            parent=request.parent or None,
            custom=request.custom,
            inputs=inputs,
            struct=request.object,
            provider=request.provider or None,
            outputs=_decode(json_format.MessageToDict(response.object)),
            options=_options(request),
        )
        return response


@dataclass
class Recording:
    """What a program registered under the mocks."""

    resources: list[RecordedResource]
    stack_outputs: dict[str, Any]
    stack_urn: str | None = None

    def of_type(self, type_: str) -> list[RecordedResource]:
        """The recorded resources of one type token, in registration order."""
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str) -> RecordedResource:
        """The single resource of ``type_``; fails if there are none or several."""
        found = self.of_type(type_)
        if len(found) != 1:
            raise AssertionError(f"expected one {type_}, found {len(found)}")
        return found[0]

    def named(self, name: str) -> RecordedResource:
        """The resource with logical name ``name``."""
        for r in self.resources:
            if r.name == name:
                return r
        raise KeyError(name)


def run_program(
    program: Callable[[], Any] | Path,
    *,
    project: str = "serverless-mail",
    stack: str = "dev",
    config: Mapping[str, Any] | None = None,
    secret_keys: tuple[str, ...] = (),
    region: str | None = None,
) -> Recording:
    """Run ``program`` (a callable, or a path to a ``__main__.py``) under recording mocks.

    ``config`` maps full keys (``"serverless-mail:email"``) to values; objects are
    passed as JSON, as the Pulumi CLI does. Raises whatever the program raises.
    """
    config = dict(config or {})
    wire = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    set_all_config(wire, list(secret_keys))
    mocks = RecordingMocks(region or str(config.get("aws:region", "us-east-1")))
    monitor = _RecordingMonitor(mocks)
    settings.set_root_resource(None)  # type: ignore[arg-type]
    pulumi_mocks.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
    if isinstance(program, Path):
        path = program

        def body() -> None:
            runpy.run_path(str(path), run_name="__main__")

    else:
        body = program
    exports: dict[str, Any] = {}
    try:
        _sync_await(run_pulumi_func(lambda: _run_and_collect(body, exports)))
    finally:
        settings.set_root_resource(None)  # type: ignore[arg-type]
    return Recording(list(monitor.recorded.values()), exports, monitor.stack_urn)


async def _run_and_collect(body: Callable[[], Any], into: dict[str, Any]) -> None:
    """Run ``body`` and resolve the root stack's exports into ``into``.

    Under mocks the root stack registers its outputs before the program runs, so
    the exports are read from the stack resource directly, secrets marked.
    """
    body()
    root = settings.get_root_resource()
    for key, value in dict(getattr(root, "outputs", {}) or {}).items():
        output = pulumi.Output.from_input(value)
        resolved = await output.future(with_unknowns=True)
        is_secret = await output.is_secret()
        into[key] = Secret(resolved) if is_secret else resolved
