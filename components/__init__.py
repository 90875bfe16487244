"""serverless-mail: Pulumi components for a production-grade transactional email path."""

from __future__ import annotations

from .config import StageConfig, load_stage_config, parse_stage_config
from .email_domain import DmarcArgs, EmailDomain, EmailDomainArgs
from .email_queue import EmailQueue, EmailQueueArgs
from .errors import ConfigError
from .lambda_sender import LambdaSender, LambdaSenderArgs
from .transactional_email import TransactionalEmail, TransactionalEmailArgs
from .vercel_env import VercelEnv, VercelEnvArgs
from .worker_sender import WorkerSender, WorkerSenderArgs

__all__ = [
    "ConfigError",
    "DmarcArgs",
    "EmailDomain",
    "EmailDomainArgs",
    "EmailQueue",
    "EmailQueueArgs",
    "LambdaSender",
    "LambdaSenderArgs",
    "StageConfig",
    "TransactionalEmail",
    "TransactionalEmailArgs",
    "VercelEnv",
    "VercelEnvArgs",
    "WorkerSender",
    "WorkerSenderArgs",
    "load_stage_config",
    "parse_stage_config",
]
