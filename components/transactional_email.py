"""The whole transactional email path of one stage, wired as one component."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

from .config import StageConfig
from .email_domain import EmailDomain, EmailDomainArgs
from .email_queue import EmailQueue, EmailQueueArgs
from .lambda_sender import LambdaSender, LambdaSenderArgs, consumer_queue_args
from .validation import check_email
from .vercel_env import VercelEnv, VercelEnvArgs
from .worker_sender import WorkerSender, WorkerSenderArgs

__all__ = ["TransactionalEmail", "TransactionalEmailArgs"]

TYPE = "serverless-mail:index:TransactionalEmail"


@dataclass(frozen=True, kw_only=True)
class TransactionalEmailArgs:
    """Arguments of :class:`TransactionalEmail`."""

    email: EmailDomainArgs
    """The sending domain and its DNS. Required."""

    default_from: str
    """The sender used when a message names none; on ``email.domain``. Required."""

    account_id: str
    """The Cloudflare account that runs the Worker. Required."""

    queue: EmailQueueArgs = field(default_factory=EmailQueueArgs)
    """The SQS queue; its consumer timeout and batching window are overwritten from
    ``lambda_sender`` so the visibility timeout always fits the consumer.
    Default: ``EmailQueueArgs()``."""

    lambda_sender: Mapping[str, Any] | None = field(default_factory=dict)
    """Settings of :class:`LambdaSenderArgs` (not its wiring), or ``None`` to turn the
    Lambda path off. Default: ``{}`` (on, with LambdaSenderArgs' defaults)."""

    worker_sender: Mapping[str, Any] | None = field(default_factory=dict)
    """Settings of :class:`WorkerSenderArgs` (not its wiring), or ``None`` to turn the
    Worker path off. Default: ``{}`` (on, with WorkerSenderArgs' defaults)."""

    vercel: Mapping[str, Any] | None = None
    """Settings of :class:`VercelEnvArgs` (team, project, targets, OIDC), or ``None``
    for no Vercel variables. Default: ``None``."""

    stage: str | None = None
    """The stage, which picks the Vercel targets. Default: ``None`` (the stack name)."""

    @classmethod
    def from_stage(cls, config: StageConfig) -> TransactionalEmailArgs:
        """The arguments a validated stage config describes."""
        return cls(
            email=config.email,
            default_from=config.default_from,
            account_id=config.account_id,
            queue=config.queue,
            lambda_sender=config.lambda_sender,
            worker_sender=config.worker_sender,
            vercel=config.vercel,
            stage=config.stack,
        )

    def validate(self) -> None:
        """Raise :class:`ConfigError` on the first invalid field.

        The senders' own settings are checked by their Args as they are built, before
        each sender's first child.
        """
        self.email.validate()
        check_email("default_from", self.default_from, self.email.domain, display_name=True)
        self.queue.validate()


class TransactionalEmail(pulumi.ComponentResource):
    """Everything one stage needs to send transactional email.

    Attributes:
        domain: the :class:`EmailDomain`.
        queue: the :class:`EmailQueue`.
        lambda_sender: the :class:`LambdaSender`, or ``None`` when that path is off.
        worker_sender: the :class:`WorkerSender`, or ``None`` when that path is off.
        vercel: the :class:`VercelEnv`, or ``None`` without Vercel settings.
        outputs: the values a stack exports (see ``__main__.py``); secrets are secret.
    """

    lambda_sender: LambdaSender | None
    worker_sender: WorkerSender | None
    vercel: VercelEnv | None

    def __init__(
        self,
        name: str,
        args: TransactionalEmailArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(TYPE, name, {}, opts)
        args.validate()
        self._name = name
        self._args = args
        child = pulumi.ResourceOptions(parent=self)

        self.domain = EmailDomain(f"{name}-domain", args.email, child)
        self._create_aws_path(child)
        self._create_worker_path(child)
        self._publish_vercel_env(child)

        self.outputs: dict[str, Any] = {
            "identity_arn": self.domain.arn,
            "configuration_set_name": self.domain.configuration_set_name,
            "events_topic_arn": self.domain.events_topic_arn,
            "dns_records": self.domain.dns_records,
            "queue_url": self.queue.url,
            "dead_letter_queue_url": self.queue.dead_letter_queue_url,
            "alarm_topic_arn": self.queue.alarm_topic.arn,
        }
        if self.lambda_sender is not None:
            self.outputs["lambda_function_name"] = self.lambda_sender.function_name
        if self.worker_sender is not None:
            self.outputs["worker_url"] = self.worker_sender.url
            self.outputs["worker_script_name"] = self.worker_sender.script_name
            self.outputs["worker_enqueue_token"] = self.worker_sender.enqueue_token
        if self.vercel is not None:
            self.outputs["vercel_role_arn"] = self.vercel.role_arn
        self.register_outputs(self.outputs)

    def _create_aws_path(self, child: pulumi.ResourceOptions) -> None:
        args = self._args
        settings = dict(args.lambda_sender or {})
        queue_args = consumer_queue_args(args.queue, settings)
        # The queue exists even with the Lambda path off: producers (the Vercel app)
        # can still enqueue, and a consumer can be attached later without data loss.
        self.queue = EmailQueue(f"{self._name}-queue", queue_args, child)
        self.lambda_sender = None
        if args.lambda_sender is not None:
            self.lambda_sender = LambdaSender(
                f"{self._name}-lambda",
                LambdaSenderArgs(
                    queue=self.queue,
                    domain=self.domain,
                    default_from=args.default_from,
                    region=args.email.region,
                    **settings,
                ),
                child,
            )

    def _create_worker_path(self, child: pulumi.ResourceOptions) -> None:
        args = self._args
        self.worker_sender = None
        if args.worker_sender is not None:
            self.worker_sender = WorkerSender(
                f"{self._name}-worker",
                WorkerSenderArgs(
                    domain=self.domain,
                    account_id=args.account_id,
                    default_from=args.default_from,
                    region=args.email.region,
                    **dict(args.worker_sender),
                ),
                child,
            )

    def _publish_vercel_env(self, child: pulumi.ResourceOptions) -> None:
        args = self._args
        self.vercel = None
        if args.vercel is None:
            return
        worker = self.worker_sender
        self.vercel = VercelEnv(
            f"{self._name}-vercel",
            VercelEnvArgs(
                stage=args.stage or pulumi.get_stack(),
                queue_url=self.queue.url,
                queue_arn=self.queue.arn,
                region=args.email.region,
                email_from=args.default_from,
                worker_url=worker.url if worker is not None else None,
                worker_token=worker.enqueue_token if worker is not None else None,
                send_statement=self.queue.grant_send_messages(),
                **dict(args.vercel),
            ),
            child,
        )
