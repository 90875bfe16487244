"""serverless-mail: Pulumi components for a production-grade transactional email path."""

from __future__ import annotations

from .config import StageConfig, load_stage_config, parse_stage_config
from .email_domain import DmarcArgs, EmailDomain, EmailDomainArgs
from .errors import ConfigError
from .transactional_email import TransactionalEmail, TransactionalEmailArgs

__all__ = [
    "ConfigError",
    "DmarcArgs",
    "EmailDomain",
    "EmailDomainArgs",
    "StageConfig",
    "TransactionalEmail",
    "TransactionalEmailArgs",
    "load_stage_config",
    "parse_stage_config",
]
