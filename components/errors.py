"""Errors raised by serverless-mail before any resource is created."""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """A stage config value or a component argument is invalid.

    The message names the key (in backticks), the allowed values, the value
    given and the fix, so it can be shown to a user as one line.
    """
