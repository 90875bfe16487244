"""The stage config: one typed, validated object read from Pulumi config.

Keys live in the ``serverless-mail`` namespace as structured values (one object
per area: ``email``, ``cloudflare``, ...), read with ``require_object``. Every bad
value fails here, before any resource exists, with a message naming the key
(``serverless-mail:email.dmarc.policy``), the allowed values, the value given and
the fix. Defaults are not repeated here: an absent key takes the default written
on the component's ``…Args`` dataclass.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import pulumi

from .email_domain import REGION_RE, DmarcArgs, EmailDomain, EmailDomainArgs
from .email_queue import EmailQueue, EmailQueueArgs
from .errors import ConfigError
from .lambda_sender import LambdaSenderArgs, consumer_queue_args
from .validation import check_email, check_pattern
from .vercel_env import VercelEnvArgs
from .worker_sender import WorkerSenderArgs

__all__ = ["NAMESPACE", "StageConfig", "load_stage_config", "parse_stage_config"]

NAMESPACE = "serverless-mail"

_T = TypeVar("_T")


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(p.title() for p in rest)


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


class _Section:
    """A structured config value: typed access, unknown keys rejected."""

    def __init__(self, key: str, raw: Any) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise ConfigError(
                f"`{key}` must be an object (a YAML mapping), but "
                f"{type(raw).__name__} {raw!r} was provided"
            )
        self.key = key
        self.raw = dict(raw)

    def child(self, name: str) -> _Section:
        return _Section(f"{self.key}.{name}", self.raw.get(name))

    def require(self, name: str) -> Any:
        if name not in self.raw or self.raw[name] in (None, ""):
            raise ConfigError(
                f"`{self.key}.{name}` is required: set it in Pulumi.<stack>.yaml under `{self.key}`"
            )
        return self.raw[name]

    def build(
        self,
        cls: Callable[..., _T],
        *,
        fields: tuple[str, ...],
        fixed: Mapping[str, Any] | None = None,
        convert: Mapping[str, Callable[[Any], Any]] | None = None,
        also_known: tuple[str, ...] = (),
    ) -> _T:
        """Build ``cls`` from the given camelCase keys plus ``fixed`` values.

        Only keys present in config are passed, so the dataclass defaults apply;
        any other key is a typo and is rejected with the list of known keys.
        """
        known = {_camel(f) for f in fields} | set(also_known)
        unknown = sorted(set(self.raw) - known)
        if unknown:
            raise ConfigError(
                f"`{self.key}.{unknown[0]}` is not a known key; the keys of "
                f"`{self.key}` are: {', '.join(sorted(known))}"
            )
        kwargs: dict[str, Any] = dict(fixed or {})
        for f in fields:
            camel = _camel(f)
            if camel in self.raw:
                value = self.raw[camel]
                if convert and f in convert:
                    value = convert[f](value)
                kwargs[f] = value
        return cls(**kwargs)

    def validated(self, fn: Callable[[], None], elsewhere: Mapping[str, str] = {}) -> None:
        """Run a dataclass ``validate`` and rename its argument names to config keys.

        ``elsewhere`` maps arguments that come from another key (``region`` from
        ``aws:region``) to that key.
        """
        try:
            fn()
        except ConfigError as err:

            def rename(m: re.Match[str]) -> str:
                arg = m.group(1) + m.group(2)
                return f"`{elsewhere.get(arg) or self.key + '.' + _config_path(arg)}`"

            message = re.sub(r"`([a-z_]+)((?:\.[a-z_]+|\[\d+\])*)`", rename, str(err))
            raise ConfigError(message) from None


def _config_path(arg_path: str) -> str:
    return ".".join(
        _camel(part)
        if not part.endswith("]")
        else _camel(part.split("[")[0]) + "[" + part.split("[")[1]
        for part in arg_path.split(".")
    )


def _tuple_of_str(key: str) -> Callable[[Any], tuple[str, ...]]:
    def convert(value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"`{key}` must be a list of strings, but {value!r} was provided")
        return tuple(value)

    return convert


@dataclass(frozen=True, kw_only=True)
class StageConfig:
    """Everything one stage (``dev``, ``prod``) needs, validated."""

    stack: str
    """The Pulumi stack (stage) name."""

    region: str
    """``aws:region``: where SES, SQS and Lambda live."""

    account_id: str
    """``serverless-mail:cloudflare.accountId``: the Cloudflare account."""

    email: EmailDomainArgs
    """The sending domain and its DNS (``serverless-mail:email`` + ``cloudflare``)."""

    default_from: str
    """``serverless-mail:email.defaultFrom``. Default: ``no-reply@<domain>``."""

    queue: EmailQueueArgs
    """``serverless-mail:queue``: the SQS queue and its DLQ (the consumer timeout and
    batching window are filled from ``serverless-mail:lambda``)."""

    lambda_sender: Mapping[str, Any] | None
    """``serverless-mail:lambda``: :class:`LambdaSenderArgs` settings, or ``None`` when
    ``enabled: false`` turns the Lambda path off."""

    worker_sender: Mapping[str, Any] | None
    """``serverless-mail:worker``: :class:`WorkerSenderArgs` settings, or ``None`` when
    ``enabled: false`` turns the Worker path off."""

    vercel: Mapping[str, Any] | None
    """``serverless-mail:vercel``: :class:`VercelEnvArgs` settings, or ``None`` when the
    section is absent or ``enabled: false``."""

    @property
    def is_production(self) -> bool:
        """Whether this stage is production (stack name ``prod`` or ``production``)."""
        return self.stack in ("prod", "production")


_EMAIL_FIELDS = tuple(
    f.name
    for f in dataclasses.fields(EmailDomainArgs)
    if f.name not in ("domain", "zone_id", "zone_name", "region", "dmarc")
)
_DMARC_FIELDS = tuple(f.name for f in dataclasses.fields(DmarcArgs))


def _settings_fields(cls: type, wiring: tuple[str, ...]) -> tuple[str, ...]:
    """The fields of an ``…Args`` class that config may set (not the wiring)."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.name not in wiring)


_QUEUE_FIELDS = _settings_fields(
    EmailQueueArgs, ("consumer_timeout_seconds", "batching_window_seconds", "kms_key_arn")
)
_LAMBDA_FIELDS = _settings_fields(LambdaSenderArgs, ("queue", "domain", "default_from", "region"))
_WORKER_FIELDS = _settings_fields(
    WorkerSenderArgs, ("domain", "account_id", "default_from", "region", "zone_id")
)
_VERCEL_FIELDS = _settings_fields(
    VercelEnvArgs,
    (
        "stage",
        "queue_url",
        "queue_arn",
        "region",
        "email_from",
        "worker_url",
        "worker_token",
        "send_statement",
    ),
)


def _stand_in(cls: type[_T], **attributes: Any) -> _T:
    """An instance of a component class that registers nothing.

    It lets config be validated by the component's own ``Args.validate`` (which
    checks the types and attributes of the components it is wired to) before any
    resource exists, so the rules are written once, on the Args.
    """
    obj = cls.__new__(cls)
    obj.__dict__.update(attributes)
    return obj


def _enabled(section: _Section) -> bool:
    enabled = section.raw.pop("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(
            f"`{section.key}.enabled` must be true or false, but {enabled!r} was provided"
        )
    return enabled


def parse_stage_config(stack: str, values: Mapping[str, Any], region: Any) -> StageConfig:
    """Validate raw config values (``{"email": {...}, "cloudflare": {...}}``).

    Args:
        stack: the stack name.
        values: the namespace's structured values, by key without the namespace.
        region: the ``aws:region`` value.

    Raises:
        ConfigError: on the first invalid or missing value.
    """
    check_pattern(
        "aws:region",
        region,
        REGION_RE,
        "an AWS region code such as 'eu-west-1' (pulumi config set aws:region eu-west-1)",
    )
    cloudflare = _Section(f"{NAMESPACE}:cloudflare", values.get("cloudflare"))
    account_id = cloudflare.require("accountId")
    zone_id = cloudflare.require("zoneId")
    zone_name = cloudflare.require("zoneName")
    cloudflare.build(lambda **_: None, fields=("account_id", "zone_id", "zone_name"))
    for key, value in (("accountId", account_id), ("zoneId", zone_id)):
        if not (isinstance(value, str) and re.fullmatch(r"[0-9a-f]{32}", value)):
            raise ConfigError(
                f"`{cloudflare.key}.{key}` must be a Cloudflare id of 32 lower-case hex "
                f"characters (dashboard, Overview page), but {value!r} was provided"
            )

    email = _Section(f"{NAMESPACE}:email", values.get("email"))
    domain = email.require("domain")
    dmarc_section = email.child("dmarc")
    dmarc = dmarc_section.build(
        DmarcArgs,
        fields=_DMARC_FIELDS,
        convert={
            "aggregate_report_addresses": _tuple_of_str(
                f"{dmarc_section.key}.aggregateReportAddresses"
            )
        },
    )
    email_args = email.build(
        EmailDomainArgs,
        fields=(*_EMAIL_FIELDS, "domain"),
        fixed={"zone_id": zone_id, "zone_name": zone_name, "region": region, "dmarc": dmarc},
        also_known=("defaultFrom", "dmarc"),
    )
    email.validated(
        email_args.validate,
        elsewhere={
            "zone_id": f"{cloudflare.key}.zoneId",
            "zone_name": f"{cloudflare.key}.zoneName",
            "region": "aws:region",
        },
    )
    default_from = email.raw.get("defaultFrom", f"no-reply@{domain}")
    check_email(f"{email.key}.defaultFrom", default_from, domain=domain, display_name=True)
    domain_stand_in = _stand_in(EmailDomain, domain=domain)

    lambda_section = _Section(f"{NAMESPACE}:lambda", values.get("lambda"))
    lambda_on = _enabled(lambda_section)
    lambda_settings: dict[str, Any] = lambda_section.build(dict, fields=_LAMBDA_FIELDS)

    queue_section = _Section(f"{NAMESPACE}:queue", values.get("queue"))
    queue_args = consumer_queue_args(
        queue_section.build(EmailQueueArgs, fields=_QUEUE_FIELDS), lambda_settings
    )
    queue_section.validated(
        queue_args.validate,
        elsewhere={
            "consumer_timeout_seconds": f"{lambda_section.key}.timeoutSeconds",
            "batching_window_seconds": f"{lambda_section.key}.batchingWindowSeconds",
        },
    )
    if lambda_on:
        lambda_args = LambdaSenderArgs(
            queue=_stand_in(
                EmailQueue,
                visibility_timeout_seconds=queue_args.effective_visibility_timeout_seconds,
            ),
            domain=domain_stand_in,
            default_from=default_from,
            region=region,
            **lambda_settings,
        )
        lambda_section.validated(
            lambda_args.validate,
            elsewhere={"queue": f"{NAMESPACE}:queue.visibilityTimeoutSeconds"},
        )

    worker_section = _Section(f"{NAMESPACE}:worker", values.get("worker"))
    worker_on = _enabled(worker_section)
    worker_settings: dict[str, Any] = worker_section.build(dict, fields=_WORKER_FIELDS)
    if worker_on:
        if worker_settings.get("custom_domain") is not None:
            worker_settings["zone_id"] = zone_id
        worker_args = WorkerSenderArgs(
            domain=domain_stand_in,
            account_id=account_id,
            default_from=default_from,
            region=region,
            **worker_settings,
        )
        worker_section.validated(
            worker_args.validate, elsewhere={"zone_id": f"{cloudflare.key}.zoneId"}
        )

    vercel_section = _Section(f"{NAMESPACE}:vercel", values.get("vercel"))
    vercel_on = bool(vercel_section.raw) and _enabled(vercel_section)
    vercel_settings: dict[str, Any] = vercel_section.build(
        dict,
        fields=_VERCEL_FIELDS,
        convert={"targets": _tuple_of_str(f"{vercel_section.key}.targets")},
    )
    if vercel_on:
        # Stand-in values for what the stack creates; worker values only when the
        # Worker path is on, so the secret-on-development rule sees the real shape.
        worker_values: dict[str, Any] = (
            {"worker_url": "https://worker.example.invalid", "worker_token": "stand-in"}
            if worker_on
            else {}
        )
        vercel_args = VercelEnvArgs(
            stage=stack,
            queue_url=f"https://sqs.{region}.amazonaws.com/000000000000/stand-in",
            queue_arn=f"arn:aws:sqs:{region}:000000000000:stand-in",
            region=region,
            email_from=default_from,
            **worker_values,
            **vercel_settings,
        )
        vercel_section.validated(vercel_args.validate)

    return StageConfig(
        stack=stack,
        region=region,
        account_id=account_id,
        email=email_args,
        default_from=default_from,
        queue=queue_args,
        lambda_sender=lambda_settings if lambda_on else None,
        worker_sender=worker_settings if worker_on else None,
        vercel=vercel_settings if vercel_on else None,
    )


def load_stage_config() -> StageConfig:
    """Read and validate the current stack's config from Pulumi config."""
    config = pulumi.Config(NAMESPACE)
    values = {key: config.get_object(key) for key in ("email", "cloudflare")}
    return parse_stage_config(pulumi.get_stack(), values, pulumi.Config("aws").get("region"))
