"""The whole transactional email path of one stage, wired as one component."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from .config import StageConfig
from .email_domain import EmailDomain, EmailDomainArgs
from .validation import check_email

__all__ = ["TransactionalEmail", "TransactionalEmailArgs"]

TYPE = "serverless-mail:index:TransactionalEmail"


@dataclass(frozen=True, kw_only=True)
class TransactionalEmailArgs:
    """Arguments of :class:`TransactionalEmail`."""

    email: EmailDomainArgs
    """The sending domain and its DNS. Required."""

    default_from: str
    """The sender used when a message names none; on ``email.domain``. Required."""

    @classmethod
    def from_stage(cls, config: StageConfig) -> TransactionalEmailArgs:
        """The arguments a validated stage config describes."""
        return cls(email=config.email, default_from=config.default_from)

    def validate(self) -> None:
        """Raise :class:`ConfigError` on the first invalid field."""
        self.email.validate()
        check_email("default_from", self.default_from, self.email.domain, display_name=True)


class TransactionalEmail(pulumi.ComponentResource):
    """Everything one stage needs to send transactional email.

    Attributes:
        domain: the :class:`EmailDomain`.
        outputs: the values a stack exports (see ``__main__.py``).
    """

    def __init__(
        self,
        name: str,
        args: TransactionalEmailArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(TYPE, name, {}, opts)
        args.validate()
        self._name = name
        self.domain = EmailDomain(f"{name}-domain", args.email, pulumi.ResourceOptions(parent=self))
        self.outputs: dict[str, Any] = {
            "identity_arn": self.domain.arn,
            "configuration_set_name": self.domain.configuration_set_name,
            "events_topic_arn": self.domain.events_topic_arn,
            "dns_records": self.domain.dns_records,
        }
        self.register_outputs(self.outputs)
