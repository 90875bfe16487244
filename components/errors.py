"""Errors raised by serverless-mail before any resource is created."""

from __future__ import annotations

import pulumi

__all__ = ["ConfigError"]


class ConfigError(pulumi.RunError, ValueError):
    """A stage config value or a component argument is invalid.

    The message names the key (in backticks), the allowed values, the value
    given and the fix, so it can be shown to a user as one line. It is a
    :class:`pulumi.RunError`, which ``pulumi up`` prints as that one line instead of
    a stack trace (as it does for its own ``ConfigTypeError``).
    """
