"""serverless-mail: Pulumi components for a production-grade transactional email path."""

from __future__ import annotations

from .config import CONFIG_KEYS, ConfigKey, StageConfig, load_stage_config, parse_stage_config
from .email_alarms import EmailAlarms, EmailAlarmsArgs, EmailAlarmsSettings
from .email_domain import DmarcArgs, EmailDomain, EmailDomainArgs
from .email_events import EmailEvents, EmailEventsArgs, EmailEventsSettings
from .email_queue import EmailQueue, EmailQueueArgs
from .errors import ConfigError
from .lambda_sender import LambdaSender, LambdaSenderArgs, LambdaSenderSettings
from .ses_quota import SesQuotaSettings
from .transactional_email import TransactionalEmail, TransactionalEmailArgs
from .vercel_env import VercelEnv, VercelEnvArgs, VercelEnvSettings
from .worker_sender import WorkerSender, WorkerSenderArgs, WorkerSenderSettings

__all__ = [
    "CONFIG_KEYS",
    "ConfigError",
    "ConfigKey",
    "DmarcArgs",
    "EmailAlarms",
    "EmailAlarmsArgs",
    "EmailAlarmsSettings",
    "EmailDomain",
    "EmailDomainArgs",
    "EmailEvents",
    "EmailEventsArgs",
    "EmailEventsSettings",
    "EmailQueue",
    "EmailQueueArgs",
    "LambdaSender",
    "LambdaSenderArgs",
    "LambdaSenderSettings",
    "SesQuotaSettings",
    "StageConfig",
    "TransactionalEmail",
    "TransactionalEmailArgs",
    "VercelEnv",
    "VercelEnvArgs",
    "VercelEnvSettings",
    "WorkerSender",
    "WorkerSenderArgs",
    "WorkerSenderSettings",
    "load_stage_config",
    "parse_stage_config",
]
