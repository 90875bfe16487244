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

from .email_domain import REGION_RE, DmarcArgs, EmailDomainArgs
from .errors import ConfigError
from .validation import check_email, check_pattern

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
    return StageConfig(
        stack=stack,
        region=region,
        account_id=account_id,
        email=email_args,
        default_from=default_from,
    )


def load_stage_config() -> StageConfig:
    """Read and validate the current stack's config from Pulumi config."""
    config = pulumi.Config(NAMESPACE)
    values = {key: config.get_object(key) for key in ("email", "cloudflare")}
    return parse_stage_config(pulumi.get_stack(), values, pulumi.Config("aws").get("region"))
