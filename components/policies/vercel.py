"""Rules on Vercel environment variables (project, plural and shared resources)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from .engine import UNKNOWN, Args, Report, get, holds_secret, items, looks_secret, strings

VARIABLE = "vercel:index/projectEnvironmentVariable:ProjectEnvironmentVariable"
VARIABLES = "vercel:index/projectEnvironmentVariables:ProjectEnvironmentVariables"
SHARED = "vercel:index/sharedEnvironmentVariable:SharedEnvironmentVariable"
_VALUE_KEYS = ("value", "valueWo")


def _variables(args: Args) -> Iterator[Mapping[str, Any]]:
    if args.resource_type in (VARIABLE, SHARED):
        yield args.props
    elif args.resource_type == VARIABLES:
        for variable in items(get(args.props, "variables")):
            if isinstance(variable, Mapping):
                yield variable


def _secret_variables(args: Args) -> Iterator[tuple[str, bool, bool, bool]]:
    """``(key, sensitive, development only, by key)`` for each variable holding a secret.

    A variable holds a secret when its value is a Pulumi secret or its key looks
    secret (``by key``). The Vercel SDK makes every ``ProjectEnvironmentVariable``
    and ``SharedEnvironmentVariable`` value a secret itself, so for those the value
    always counts as one.
    """
    for variable in _variables(args):
        key = get(variable, "key")
        if not isinstance(key, str):
            continue
        by_key = looks_secret(key)
        if not (by_key or any(holds_secret(get(variable, k)) for k in _VALUE_KEYS)):
            continue
        sensitive = get(variable, "sensitive")
        if sensitive is UNKNOWN:
            continue
        targets = strings(get(variable, "targets"))
        yield key, sensitive is True, targets == ["development"], by_key


def vercel_secret_env_sensitive(args: ResourceValidationArgs, report: Report) -> None:
    for key, sensitive, development_only, _ in _secret_variables(args):
        if not sensitive and not development_only:
            report(
                f"Vercel variable {key} holds a secret but is not sensitive: set "
                "sensitive=True so its value cannot be read back from the dashboard or API "
                "(Vercel docs, sensitive environment variables)."
            )


def vercel_development_secret_env(args: ResourceValidationArgs, report: Report) -> None:
    sdk_secret = args.resource_type in (VARIABLE, SHARED)
    for key, sensitive, development_only, by_key in _secret_variables(args):
        # Where the SDK made the value secret, only the key is evidence: the advice
        # (a credential of its own for development) fits secrets, not every value.
        if not sensitive and development_only and (by_key or not sdk_secret):
            report(
                f"Vercel variable {key} holds a secret readable by the team: Vercel refuses "
                "sensitive values for the development target, so give development a "
                "low-privilege credential of its own."
            )
