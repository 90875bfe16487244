"""The stage config: every key of ``Pulumi.<stack>.yaml``, read, checked, and turned
into one :class:`TransactionalEmailArgs`.

:data:`CONFIG_KEYS` is the one table of keys. It is derived from the components' own
``…Args``/``…Settings`` dataclasses: each key's type and range is the rule its field
carries (``serverless_mail.settings``), its default the field's default, its doc the
field's docstring. Validation walks that table, the README's config reference is
generated from it (``scripts/gen_docs.py``, checked in CI), and the config contract test
writes a valid and an invalid value for every row of it.

Every section lives in the ``serverless-mail`` namespace as one structured object
(``serverless-mail:lambda: {memoryMb: 512}``). An unknown section or key, a section that
is not an object, a missing required key and a bad value are each one
:class:`ConfigError` naming the key (``serverless-mail:lambda.memoryMb``), before any
resource exists.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi.runtime.config

from .email_alarms import EmailAlarmsSettings
from .email_domain import DmarcArgs, EmailDomainArgs
from .email_events import EmailEventsSettings
from .email_queue import EmailQueueArgs
from .errors import ConfigError
from .lambda_sender import LambdaSenderSettings
from .ses_quota import SesQuotaSettings
from .settings import Bool, Rule, did_you_mean, field_docs, field_rule, plain_text
from .transactional_email import TransactionalEmailArgs
from .vercel_env import VercelEnvSettings
from .worker_sender import WorkerSenderSettings

__all__ = [
    "CONFIG_KEYS",
    "MOVED_KEYS",
    "NAMESPACE",
    "REQUIRED",
    "SECTIONS",
    "ConfigKey",
    "StageConfig",
    "config_reference",
    "load_stage_config",
    "parse_stage_config",
    "stage_value",
]

NAMESPACE = "serverless-mail"

REQUIRED = "required"


@dataclass(frozen=True)
class ConfigKey:
    """One key of a stage file."""

    section: str
    """``email``, ``lambda`` … (``aws`` for ``aws:region``)."""

    name: str
    """The camelCase name inside the section, dotted when nested (``dmarc.policy``)."""

    arg: str
    """Where the value goes: a path in :class:`TransactionalEmailArgs`
    (``lambda_sender.memory_mb``), or ``<section>.enabled``."""

    rule: Rule | None
    """What the value must be."""

    default: Any
    """The default value, or :data:`REQUIRED`."""

    doc: str
    """The field's docstring."""

    default_text: str | None = None
    """Shown instead of ``default`` where the default is computed."""

    @property
    def key(self) -> str:
        """The full key as a user writes it: ``serverless-mail:lambda.memoryMb``."""
        if self.section == "aws":
            return f"aws:{self.name}"
        return f"{NAMESPACE}:{self.section}.{self.name}"

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(p.title() for p in rest)


def _field_keys(
    section: str, cls: type, arg_prefix: str, *, skip: tuple[str, ...] = (), name_prefix: str = ""
) -> Iterator[ConfigKey]:
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = REQUIRED
        yield ConfigKey(
            section=section,
            name=name_prefix + _camel(f.name),
            arg=f"{arg_prefix}.{f.name}" if arg_prefix else f.name,
            rule=field_rule(f),
            default=default,
            doc=docs.get(f.name, ""),
        )


MOVED_KEYS: dict[str, str] = {
    f"events.{name}": f"alarms.{name}"
    for name in (
        "bounceRateWarning",
        "bounceRateCritical",
        "complaintRateWarning",
        "complaintRateCritical",
        "reputationMinSends",
        "reputationPeriodSeconds",
        "sendQueueAgeSeconds",
        "lambdaErrorsThreshold",
        "lambdaThrottlesThreshold",
        "alarmPeriodSeconds",
    )
}
"""Keys that moved (0.1.0 → 0.2.0): the alarms outlive the events pipeline, so their
thresholds have their own section. A stage file still using the old key is told where
it went, in one line."""


def _enabled_key(section: str, what: str, default: Any) -> ConfigKey:
    shown = "``true``" if default else "on while the section is present"
    return ConfigKey(
        section=section,
        name="enabled",
        arg=f"{section}.enabled",
        rule=Bool(),
        default=default,
        doc=f"Turn {what} on or off. Default: {shown}.",
    )


def _single(cls: type, name: str) -> dataclasses.Field[Any]:
    return next(f for f in dataclasses.fields(cls) if f.name == name)


def _key_table() -> tuple[ConfigKey, ...]:
    email_docs = field_docs(EmailDomainArgs)
    top_docs = field_docs(TransactionalEmailArgs)

    def from_field(section: str, name: str, cls: type, field_name: str, arg: str) -> ConfigKey:
        f = _single(cls, field_name)
        docs = field_docs(cls)
        default = REQUIRED if f.default is dataclasses.MISSING else f.default
        return ConfigKey(section, name, arg, field_rule(f), default, docs.get(field_name, ""))

    keys = [
        from_field("aws", "region", EmailDomainArgs, "region", "email.region"),
        dataclasses.replace(
            from_field(
                "cloudflare", "accountId", TransactionalEmailArgs, "account_id", "account_id"
            ),
            default_text="required while the Worker path is on",
        ),
        from_field("cloudflare", "zoneId", EmailDomainArgs, "zone_id", "email.zone_id"),
        from_field("cloudflare", "zoneName", EmailDomainArgs, "zone_name", "email.zone_name"),
        ConfigKey(
            "email",
            "domain",
            "email.domain",
            field_rule(_single(EmailDomainArgs, "domain")),
            REQUIRED,
            email_docs["domain"],
        ),
        dataclasses.replace(
            from_field(
                "email", "defaultFrom", TransactionalEmailArgs, "default_from", "default_from"
            ),
            doc=top_docs["default_from"],
            default_text="no-reply@<domain>",
        ),
        *_field_keys(
            "email",
            EmailDomainArgs,
            "email",
            # `publish_events` follows `events.enabled`.
            skip=("domain", "zone_id", "zone_name", "region", "dmarc", "publish_events"),
        ),
        *_field_keys("email", DmarcArgs, "email.dmarc", name_prefix="dmarc."),
        *_field_keys(
            "queue",
            EmailQueueArgs,
            "queue",
            skip=("consumer_timeout_seconds", "batching_window_seconds"),
        ),
        _enabled_key("lambda", "the SQS → Lambda sending path", True),
        *_field_keys("lambda", LambdaSenderSettings, "lambda_sender"),
        _enabled_key("worker", "the Cloudflare Queue → Worker sending path", True),
        # A token being rotated out is a secret: Python callers pass it as a Pulumi
        # secret; a stage file's structured values would hold it in plain text.
        *_field_keys(
            "worker", WorkerSenderSettings, "worker_sender", skip=("previous_worker_token",)
        ),
        _enabled_key(
            "events",
            "the SES events pipeline (event publishing, history, webhooks and the "
            "pipeline's alarms; the `alarms` section stays)",
            True,
        ),
        *_field_keys("events", EmailEventsSettings, "events"),
        *_field_keys("alarms", EmailAlarmsSettings, "alarms"),
        *_field_keys("ses", SesQuotaSettings, "ses"),
        _enabled_key("vercel", "the Vercel variables and the app's AWS identity", None),
        *_field_keys("vercel", VercelEnvSettings, "vercel"),
    ]
    return tuple(
        dataclasses.replace(k, default_text="derived")
        if k.arg == "queue.visibility_timeout_seconds"
        else k
        for k in keys
    )


CONFIG_KEYS: tuple[ConfigKey, ...] = _key_table()
"""Every key a stage file may hold, in reference order."""

SECTIONS: tuple[str, ...] = tuple(
    dict.fromkeys(k.section for k in CONFIG_KEYS if k.section != "aws")
)
"""The sections of the ``serverless-mail`` namespace."""

_BY_KEY = {k.key: k for k in CONFIG_KEYS}
_BY_ARG = {k.arg: k for k in CONFIG_KEYS}

# Namespaces a stage file may hold besides ours: the providers the stack uses and
# Pulumi's own. Any other namespace close to ours is a misspelling.
_OTHER_NAMESPACES = ("aws", "cloudflare", "vercel", "random", "time", "pulumi")


@dataclass(frozen=True, kw_only=True)
class StageConfig:
    """One stage (``dev``, ``prod``), validated: the aggregate's arguments."""

    stack: str
    """The Pulumi stack (stage) name."""

    args: TransactionalEmailArgs
    """What ``__main__.py`` builds the stack from."""

    @property
    def is_production(self) -> bool:
        """Whether this stage is production (stack name ``prod`` or ``production``)."""
        return self.stack in ("prod", "production")


def _section_values(section: str, raw: Any) -> dict[str, Any]:
    """A section's keys flattened (``dmarc.policy``), each checked to be known."""
    key = f"{NAMESPACE}:{section}"
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"`{key}` must be an object (a YAML mapping of keys such as "
            f"`{_first_key(section)}`), but {type(raw).__name__} {raw!r} was provided"
        )
    known = {k.name for k in CONFIG_KEYS if k.section == section}
    nested = {name.split(".")[0] for name in known if "." in name}
    flat: dict[str, Any] = {}
    for name, value in raw.items():
        if name in nested:
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise ConfigError(
                    f"`{key}.{name}` must be an object (a YAML mapping), but "
                    f"{type(value).__name__} {value!r} was provided"
                )
            for inner, inner_value in value.items():
                flat[f"{name}.{inner}"] = inner_value
        else:
            flat[str(name)] = value
    # An explicit null is the same as leaving the key out: its default applies.
    flat = {name: value for name, value in flat.items() if value is not None}
    for name in flat:
        moved = MOVED_KEYS.get(f"{section}.{name}")
        if moved is not None:
            raise ConfigError(
                f"`{key}.{name}` moved to `{NAMESPACE}:{moved}` (the alarms stay when the "
                f"events pipeline is off): move the value under `{NAMESPACE}:alarms`"
            )
        if name not in known:
            group, _, leaf = name.rpartition(".")
            within = sorted(
                k.removeprefix(f"{group}.") if group else k
                for k in known
                if (k.startswith(f"{group}.") if group else True)
            )
            where = f"{key}.{group}" if group else key
            raise ConfigError(
                f"`{key}.{name}` is not a known key{did_you_mean(leaf, within)}; the "
                f"keys of `{where}` are: {', '.join(within)}"
            )
    return flat


def _first_key(section: str) -> str:
    return next(k.name for k in CONFIG_KEYS if k.section == section and k.name != "enabled")


def _check_sections(values: Mapping[str, Any]) -> None:
    for name in values:
        if name not in SECTIONS:
            raise ConfigError(
                f"`{NAMESPACE}:{name}` is not a known section{did_you_mean(name, SECTIONS)}; "
                f"the sections are: {', '.join(SECTIONS)}"
            )


def check_namespaces(keys: list[str]) -> None:
    """Refuse a config key whose namespace looks like a misspelling of ours."""
    for full in keys:
        namespace = full.split(":", 1)[0]
        if namespace in (NAMESPACE, *_OTHER_NAMESPACES) or ":" not in full:
            continue
        if difflib.get_close_matches(namespace, [NAMESPACE], n=1, cutoff=0.75) or (
            re.sub(r"[^a-z]", "", namespace.lower()) == "serverlessmail"
        ):
            raise ConfigError(
                f"`{full}` is in namespace `{namespace}`, which nothing reads "
                f"(did you mean `{NAMESPACE}:{full.split(':', 1)[1]}`?)"
            )


def _present(values: Mapping[str, dict[str, Any]], section: str, name: str) -> bool:
    return values.get(section, {}).get(name) not in (None, "")


def _require(key: ConfigKey, why: str = "") -> ConfigError:
    where = f"under `{NAMESPACE}:{key.section}`" if key.section != "aws" else ""
    how = (
        f"set it in Pulumi.<stack>.yaml {where}".rstrip()
        if key.section != "aws"
        else "pulumi config set aws:region eu-west-1"
    )
    return ConfigError(f"`{key.key}` is required{why}: {how}")


def parse_stage_config(stack: str, values: Mapping[str, Any], region: Any) -> StageConfig:
    """Validate raw config values (``{"email": {...}, "cloudflare": {...}, ...}``).

    Args:
        stack: the stack name.
        values: the namespace's structured values, by section name.
        region: the ``aws:region`` value.

    Raises:
        ConfigError: on the first unknown, missing or invalid value.
    """
    _check_sections(values)
    flat = {section: _section_values(section, values.get(section)) for section in SECTIONS}
    flat["aws"] = {"region": region} if region not in (None, "") else {}

    on = {
        "lambda": flat["lambda"].get("enabled", True),
        "worker": flat["worker"].get("enabled", True),
        "vercel": flat["vercel"].get("enabled", bool(flat["vercel"])),
        "events": flat["events"].get("enabled", True),
    }
    for key in CONFIG_KEYS:
        present = _present(flat, key.section, key.name)
        active = on.get(key.section, True) is not False or key.name == "enabled"
        if present and key.rule is not None:
            key.rule.check(key.key, flat[key.section][key.name])
        elif not present and key.required and active:
            if key.section == "vercel" and not flat["vercel"]:
                continue
            raise _require(key, " while the section is present" if key.section == "vercel" else "")
    if on["worker"] and not _present(flat, "cloudflare", "accountId"):
        raise _require(
            _BY_KEY[f"{NAMESPACE}:cloudflare.accountId"],
            " while the Worker path is on (`serverless-mail:worker.enabled`)",
        )
    args = _build_args(stack, flat, on)
    try:
        args.validate()
    except ConfigError as err:
        raise ConfigError(_config_names(str(err))) from None
    return StageConfig(stack=stack, args=args)


def _build_args(
    stack: str, flat: Mapping[str, dict[str, Any]], on: Mapping[str, Any]
) -> TransactionalEmailArgs:
    """The aggregate's arguments: each present key set at its ``arg`` path."""
    tree: dict[str, Any] = {}
    for key in CONFIG_KEYS:
        if key.name == "enabled" or not _present(flat, key.section, key.name):
            continue
        value = flat[key.section][key.name]
        if isinstance(value, list):
            value = tuple(value)
        node = tree
        *parents, leaf = key.arg.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    email = tree.pop("email")
    dmarc = email.pop("dmarc", {})
    paths = {
        "lambda_sender": "lambda",
        "worker_sender": "worker",
        "vercel": "vercel",
        "events": "events",
    }
    # A path switched off is None even when its section still holds settings.
    settings = {arg: tree.pop(arg, {}) if on[section] else None for arg, section in paths.items()}
    return TransactionalEmailArgs(
        email=EmailDomainArgs(**email, dmarc=DmarcArgs(**dmarc)),
        queue=EmailQueueArgs(**tree.pop("queue", {})),
        ses=SesQuotaSettings(**tree.pop("ses", {})),
        alarms=EmailAlarmsSettings(**tree.pop("alarms", {})),
        stage=stack,
        **settings,
        **{k: v for k, v in tree.items() if k not in paths},
    )


# A whole part named in a message (``while `vercel` is on``) → its section.
_SECTION_ARGS = {
    "email": "email",
    "queue": "queue",
    "lambda_sender": "lambda",
    "worker_sender": "worker",
    "vercel": "vercel",
    "events": "events",
    "ses": "ses",
    "alarms": "alarms",
}

_ARG_PATH_RE = re.compile(r"`([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*)((?:\[\d+\])?)`")


def _config_names(message: str) -> str:
    """Rewrite argument paths in a validation message as the config keys they come from."""

    def rename(m: re.Match[str]) -> str:
        key = _BY_ARG.get(m.group(1))
        if key is not None:
            return f"`{key.key}{m.group(2)}`"
        section = _SECTION_ARGS.get(m.group(1))
        return f"`{NAMESPACE}:{section}`" if section else m.group(0)

    return _ARG_PATH_RE.sub(rename, message)


def load_stage_config() -> StageConfig:
    """Read and validate the current stack's config from Pulumi config.

    Reads every key the engine passed (so an unknown section or a misspelled namespace
    is reported, not ignored), then every section of :data:`SECTIONS`.
    """
    present = sorted(
        {**pulumi.runtime.config.get_config_env(), **pulumi.runtime.config.CONFIG.get()}
    )
    check_namespaces(present)
    config = pulumi.Config(NAMESPACE)
    values: dict[str, Any] = {}
    for full in present:
        namespace, _, name = full.partition(":")
        if namespace != NAMESPACE:
            continue
        try:
            values[name] = config.get_object(name)
        except pulumi.ConfigTypeError:
            values[name] = config.get(name)
    return parse_stage_config(pulumi.get_stack(), values, pulumi.Config("aws").get("region"))


def _shown_default(key: ConfigKey) -> str:
    if key.default_text is not None:
        return (
            key.default_text
            if key.default_text.startswith("required")
            else (f"`{key.default_text}`")
        )
    if key.required:
        return "required"
    return _shown_value(key.default, unset="unset")


def _shown_value(value: Any, unset: str = "-") -> str:
    if value is None:
        return unset
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (list, tuple)):
        return "`[" + ", ".join(str(v) for v in value) + "]`"
    return f"`{value}`"


def stage_value(stage: Mapping[str, Any], key: ConfigKey) -> Any:
    """The value a stage's ``config`` mapping gives ``key`` (``None`` when absent)."""
    if key.section == "aws":
        return stage.get(key.key)
    node: Any = stage.get(f"{NAMESPACE}:{key.section}") or {}
    for part in key.name.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def config_reference(stages: Mapping[str, Mapping[str, Any]]) -> str:
    """The README's config reference: one row per key of :data:`CONFIG_KEYS`, with each
    given stage's value (``stages``: stage name → its ``config`` mapping)."""
    names = list(stages)
    head = ["key", "type and allowed values", "default", *names, "what it does"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in CONFIG_KEYS:
        doc = plain_text(re.sub(r"\s*Required\.\s*$", "", key.doc)).replace("\n", " ")
        cells = [
            f"`{key.key}`",
            key.rule.describe() if key.rule is not None else "",
            _shown_default(key),
            *(_shown_value(stage_value(stages[n], key)) for n in names),
            doc.replace("|", "\\|"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
