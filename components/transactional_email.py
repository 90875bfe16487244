"""The whole transactional email path of one stage, wired as one component."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pulumi

from .email_alarms import EmailAlarms, EmailAlarmsArgs, EmailAlarmsSettings
from .email_domain import EmailDomain, EmailDomainArgs
from .email_events import TYPE as EVENTS_TYPE
from .email_events import (
    EmailEvents,
    EmailEventsArgs,
    EmailEventsSettings,
    read_history_statement,
)
from .email_queue import EmailQueue, EmailQueueArgs
from .errors import ConfigError
from .lambda_sender import SERVICE_NAME as SENDER_SERVICE
from .lambda_sender import LambdaSender, LambdaSenderArgs, LambdaSenderSettings
from .ses_quota import MAX_DELAY_SECONDS, MAX_RECIPIENTS, SesQuotaSettings, split_send_rate
from .settings import Email, Pattern, check_fields, prefixed, require_args, rule, strict_args
from .validation import check_email, is_on_domain
from .vercel_env import VercelEnv, VercelEnvArgs, VercelEnvSettings
from .worker_sender import CLOUDFLARE_ID_RE, WorkerSender, WorkerSenderArgs, WorkerSenderSettings

__all__ = ["OUTPUTS", "TransactionalEmail", "TransactionalEmailArgs"]

TYPE = "serverless-mail:index:TransactionalEmail"

_S = TypeVar("_S")

OUTPUTS: dict[str, Any] = {
    "identity_arn": str,
    "configuration_set_name": str,
    "events_topic_arn": str,
    "dns_records": list[dict[str, Any]],
    "queue_url": str,
    "queue_arn": str,
    "dead_letter_queue_url": str,
    "alarm_topic_arn": str,
    "lambda_function_name": str | None,
    "worker_url": str | None,
    "worker_script_name": str | None,
    "worker_token": str | None,
    "vercel_role_arn": str | None,
    "events_queue_url": str | None,
    "history_table_name": str | None,
    "webhook_secret": str | None,
    "dashboard_name": str,
}
"""Every output :class:`TransactionalEmail` may have, with its type (``| None``: only
while the path that makes it is on). ``worker_token`` and ``webhook_secret`` are
secret."""

# Wiring the aggregate fills in for each part, by the argument name that part's own
# validation uses → the aggregate's argument it comes from.
_LAMBDA_WIRING = {
    "queue": "queue.visibility_timeout_seconds",
    "domain": "email.domain",
    "default_from": "default_from",
    "region": "email.region",
    "max_send_rate": "ses.max_send_rate",
}
_WORKER_WIRING = {
    "domain": "email.domain",
    "account_id": "account_id",
    "default_from": "default_from",
    "region": "email.region",
    "zone_id": "email.zone_id",
    "max_send_rate": "ses.max_send_rate",
}
_VERCEL_WIRING = {"region": "email.region", "email_from": "default_from"}
_EVENTS_WIRING = {"domain": "email.domain", "region": "email.region", "alarms": "alarms"}
_QUEUE_WIRING = {
    "consumer_timeout_seconds": "lambda_sender.timeout_seconds",
    "batching_window_seconds": "lambda_sender.batching_window_seconds",
}


@strict_args
@dataclass(frozen=True, kw_only=True)
class TransactionalEmailArgs:
    """Arguments of :class:`TransactionalEmail`."""

    email: EmailDomainArgs
    """The sending domain and its DNS. Required."""

    default_from: str | None = field(default=None, metadata=rule(Email(display_name=True)))
    """The sender used when a message names none, on ``email.domain`` (``Name <addr>``
    allowed). Default: ``None``, which means ``no-reply@<email.domain>``."""

    account_id: str | None = field(
        default=None,
        metadata=rule(
            Pattern(
                CLOUDFLARE_ID_RE,
                "a Cloudflare account id (32 lower-case hex characters, from the "
                "dashboard's account home)",
            )
        ),
    )
    """The Cloudflare account that runs the Worker; required while ``worker_sender`` is
    on. Default: ``None``."""

    queue: EmailQueueArgs = field(default_factory=EmailQueueArgs)
    """The SQS queue; its consumer timeout and batching window are overwritten from
    ``lambda_sender`` so the visibility timeout always fits the consumer.
    Default: ``EmailQueueArgs()``."""

    lambda_sender: LambdaSenderSettings | Mapping[str, Any] | None = field(
        default_factory=LambdaSenderSettings
    )
    """The SQS → Lambda path's settings (a mapping of the same names is accepted), or
    ``None`` to turn that path off. Default: ``LambdaSenderSettings()`` (on; in the
    component package an absent value is off: pass ``{}`` for the defaults)."""

    worker_sender: WorkerSenderSettings | Mapping[str, Any] | None = field(
        default_factory=WorkerSenderSettings
    )
    """The Cloudflare Queue → Worker path's settings (a mapping of the same names is
    accepted), or ``None`` to turn that path off. Default: ``WorkerSenderSettings()``
    (on; in the component package an absent value is off: pass ``{}`` for the
    defaults)."""

    events: EmailEventsSettings | Mapping[str, Any] | None = field(
        default_factory=EmailEventsSettings
    )
    """Every SES event to a message history and signed webhooks, with the pipeline's own
    queue-age, DLQ and function alarms (a mapping of the same names is accepted), or
    ``None`` to turn it off: SES then publishes no events, and ``alarms`` stay.
    Default: ``EmailEventsSettings()`` (on)."""

    alarms: EmailAlarmsSettings = field(default_factory=EmailAlarmsSettings)
    """The thresholds of the alarms every stack keeps: SES reputation (with a volume
    guard), the send queue's age, the Lambda sender's errors, throttles, daily-quota
    holds and sending pauses, and the events pipeline's alarms while it is on (a mapping
    of the same names is accepted). Default: ``EmailAlarmsSettings()``."""

    ses: SesQuotaSettings = field(default_factory=SesQuotaSettings)
    """The account's SES send rate and its split between the two paths (a mapping of
    the same names is accepted); each path paces its share. Default:
    ``SesQuotaSettings()`` (14 recipients per second, half to each path)."""

    vercel: VercelEnvSettings | Mapping[str, Any] | None = None
    """The Vercel project that gets the app's variables (team, project, targets, OIDC),
    or ``None`` for no Vercel variables. Default: ``None``."""

    stage: str | None = None
    """The stage, which picks the Vercel targets. Default: ``None`` (the stack name)."""

    def __post_init__(self) -> None:
        for name, cls in (
            ("lambda_sender", LambdaSenderSettings),
            ("worker_sender", WorkerSenderSettings),
            ("vercel", VercelEnvSettings),
            ("events", EmailEventsSettings),
            ("ses", SesQuotaSettings),
            ("alarms", EmailAlarmsSettings),
        ):
            value = getattr(self, name)
            if value is None and name in ("ses", "alarms"):
                raise ConfigError(
                    f"`{name}` must be a {cls.__name__} or a mapping of its fields (it cannot "
                    "be turned off), but None was provided"
                )
            if isinstance(value, Mapping):
                with prefixed(name):
                    object.__setattr__(self, name, cls(**value))
            elif value is not None and not isinstance(value, cls):
                raise ConfigError(
                    f"`{name}` must be a {cls.__name__}, a mapping of its fields"
                    f"{'' if name in ('ses', 'alarms') else ' or None'}, "
                    f"but {type(value).__name__} was provided"
                )

    @property
    def resolved_default_from(self) -> str:
        """``default_from``, or ``no-reply@<email.domain>``."""
        return self.default_from or f"no-reply@{self.email.domain}"

    @property
    def send_rates(self) -> tuple[float | None, float | None]:
        """Recipients per second each path may send, ``(lambda, worker)``: the one
        place ``ses`` is split (``None`` for a path that is off)."""
        return split_send_rate(
            _settings(self.ses),
            lambda_on=self.lambda_sender is not None,
            worker_on=self.worker_sender is not None,
        )

    @property
    def consumer_queue(self) -> EmailQueueArgs:
        """``queue`` with the consumer timeout and window of the Lambda settings."""
        lambda_settings = self.lambda_sender
        assert not isinstance(lambda_settings, Mapping)
        return consumer_queue_args(self.queue, lambda_settings)

    def validate(self) -> None:
        """Raise :class:`ConfigError` on the first invalid field, of this component or of
        any part it builds, before any resource exists.

        Argument names in messages are paths from here (``lambda_sender.memory_mb``), so
        a stage config can map each to its key.
        """
        if not isinstance(self.email, EmailDomainArgs):
            raise ConfigError(
                f"`email` must be an EmailDomainArgs, but {type(self.email).__name__} was provided"
            )
        if not isinstance(self.queue, EmailQueueArgs):
            raise ConfigError(
                f"`queue` must be an EmailQueueArgs, but {type(self.queue).__name__} was provided"
            )
        with prefixed("email"):
            self.email.validate()
        check_fields(self)
        with prefixed("ses"):
            check_fields(_settings(self.ses))
        with prefixed("alarms"):
            _settings(self.alarms).check()
        self._validate_send_rates()
        check_email(
            "default_from", self.resolved_default_from, self.email.domain, display_name=True
        )
        with prefixed("queue", _QUEUE_WIRING):
            self.consumer_queue.validate()
        domain = _stand_in(EmailDomain, domain=self.email.domain)
        if self.lambda_sender is not None:
            queue = _stand_in(
                EmailQueue,
                visibility_timeout_seconds=self.consumer_queue.effective_visibility_timeout_seconds,
            )
            with prefixed("lambda_sender", _LAMBDA_WIRING):
                self.lambda_args(queue, domain).validate()
        if self.worker_sender is not None:
            self._validate_worker(domain)
        if self.events is not None:
            with prefixed("events", _EVENTS_WIRING):
                self.events_args(domain, alarm_topic_arn="stand-in").validate()
        if self.vercel is not None:
            self._validate_worker_url_for_vercel()
            region = self.email.region
            worker = (
                ("https://worker.example.invalid", "stand-in")
                if self.worker_sender is not None
                else None
            )
            events = _settings(self.events) if self.events is not None else None
            with prefixed("vercel", _VERCEL_WIRING):
                self.vercel_args(
                    queue_url=f"https://sqs.{region}.amazonaws.com/000000000000/stand-in",
                    queue_arn=f"arn:aws:sqs:{region}:000000000000:stand-in",
                    worker=worker,
                    send_statement=None,
                    webhook_secret="stand-in" if events and events.webhook_urls else None,
                    history=(
                        "stand-in",
                        read_history_statement(f"arn:aws:dynamodb:{region}:000000000000:table/x"),
                    )
                    if events
                    else None,
                ).validate()

    def _validate_send_rates(self) -> None:
        ses = _settings(self.ses)
        lambda_rate, worker_rate = self.send_rates
        for path, rate, share in (
            ("worker_sender", worker_rate, "0"),
            ("lambda_sender", lambda_rate, "1"),
        ):
            if rate is not None and rate <= 0:
                raise ConfigError(
                    f"`ses.worker_share` is {share} while `{path}` is on, which leaves that "
                    f"path no part of `ses.max_send_rate`: give it a share, or turn it off"
                )
        if lambda_rate is None:
            return
        lambda_settings = _settings(self.lambda_sender)
        per_instance = lambda_rate / lambda_settings.maximum_concurrency
        # A message of MAX_RECIPIENTS costs that many seconds of an instance's share
        # divided by its rate; a message deferred for it waits at most one SQS delay.
        if MAX_RECIPIENTS / per_instance > MAX_DELAY_SECONDS:
            raise ConfigError(
                f"`ses.max_send_rate` ({ses.max_send_rate:g}) x (1 - `ses.worker_share` "
                f"{ses.worker_share:g}) / `lambda_sender.maximum_concurrency` "
                f"({lambda_settings.maximum_concurrency}) leaves each Lambda instance "
                f"{per_instance:.3g} recipients/s, so one message of {MAX_RECIPIENTS} "
                f"recipients takes {MAX_RECIPIENTS / per_instance:.0f} s, longer than the "
                f"{MAX_DELAY_SECONDS} s SQS can delay it: lower "
                "`lambda_sender.maximum_concurrency` or `ses.worker_share`, or raise "
                "`ses.max_send_rate` to the account's quota"
            )

    def _validate_worker(self, domain: EmailDomain) -> None:
        settings = _settings(self.worker_sender)
        if self.account_id is None:
            raise ConfigError(
                "`account_id` (the Cloudflare account) is required while `worker_sender` "
                "is on, but none was provided: set it, or turn the Worker path off with "
                "`worker_sender=None`"
            )
        custom = settings.custom_domain
        if isinstance(custom, str) and not is_on_domain(custom, self.email.zone_name):
            raise ConfigError(
                f"`worker_sender.custom_domain` must be in the zone `email.zone_name` "
                f"({self.email.zone_name!r}), the zone the stack manages DNS in, but "
                f"{custom!r} was provided: use a hostname such as "
                f"'mail-api.{self.email.zone_name}'"
            )
        with prefixed("worker_sender", _WORKER_WIRING):
            self.worker_args(domain).validate()

    def _validate_worker_url_for_vercel(self) -> None:
        if self.worker_sender is None:
            return
        settings = _settings(self.worker_sender)
        if settings.custom_domain is None and settings.workers_dev_subdomain is None:
            raise ConfigError(
                "`worker_sender.workers_dev_subdomain` (or `worker_sender.custom_domain`) is "
                "required while `vercel` is on, but neither was provided: the provider "
                "cannot read the account's workers.dev subdomain, so the Worker's URL "
                "would be unknown and the app could not reach it"
            )

    def lambda_args(self, queue: EmailQueue, domain: EmailDomain) -> LambdaSenderArgs:
        """The :class:`LambdaSenderArgs` for ``queue`` and ``domain``."""
        return LambdaSenderArgs(
            queue=queue,
            domain=domain,
            default_from=self.resolved_default_from,
            region=self.email.region,
            max_send_rate=self.send_rates[0],
            **_fields(_settings(self.lambda_sender)),
        )

    def worker_args(
        self, domain: EmailDomain, dead_letter_target: EmailQueue | None = None
    ) -> WorkerSenderArgs:
        """The :class:`WorkerSenderArgs` for ``domain`` (its zone serves a custom domain),
        forwarding its dead letters to ``dead_letter_target``'s DLQ."""
        settings = _settings(self.worker_sender)
        return WorkerSenderArgs(
            domain=domain,
            dead_letter_target=dead_letter_target,
            account_id=self.account_id or "",
            default_from=self.resolved_default_from,
            region=self.email.region,
            zone_id=self.email.zone_id if settings.custom_domain is not None else None,  # type: ignore[arg-type]
            max_send_rate=self.send_rates[1],
            **_fields(settings),
        )

    def events_args(
        self, domain: EmailDomain, *, alarm_topic_arn: pulumi.Input[str]
    ) -> EmailEventsArgs:
        """The :class:`EmailEventsArgs` for ``domain``, alarming to ``alarm_topic_arn``."""
        return EmailEventsArgs(
            domain=domain,
            region=self.email.region,
            alarm_topic_arn=alarm_topic_arn,
            alarms=_settings(self.alarms),
            **_fields(_settings(self.events)),
        )

    def alarms_args(
        self,
        queue: EmailQueue,
        *,
        sender_function_name: pulumi.Input[str] | None = None,
        events: dict[str, pulumi.Input[str]] | None = None,
        moved_from: tuple[str, pulumi.Input[str]] | None = None,
    ) -> EmailAlarmsArgs:
        """The :class:`EmailAlarmsArgs` for the send ``queue`` (whose alarm topic they
        notify), the Lambda sender's function and the events pipeline's names."""
        return EmailAlarmsArgs(
            region=self.email.region,
            alarm_topic_arn=queue.alarm_topic.arn,
            send_queue=queue,
            sender_function_name=sender_function_name,
            sender_service=SENDER_SERVICE if sender_function_name is not None else None,
            events=events,
            moved_from=moved_from,
            **_fields(_settings(self.alarms)),
        )

    def vercel_args(
        self,
        *,
        queue_url: pulumi.Input[str],
        queue_arn: pulumi.Input[str],
        worker: tuple[pulumi.Input[str], pulumi.Input[str]] | None,
        send_statement: pulumi.Input[dict[str, Any]] | None,
        webhook_secret: pulumi.Input[str] | None = None,
        history: tuple[pulumi.Input[str], pulumi.Input[dict[str, Any]] | None] | None = None,
    ) -> VercelEnvArgs:
        """The :class:`VercelEnvArgs` for the queue, the (optional) Worker URL and token,
        webhook secret and message history (its table name and read statement)."""
        return VercelEnvArgs(
            stage=self.stage or pulumi.get_stack(),
            queue_url=queue_url,
            queue_arn=queue_arn,
            region=self.email.region,
            email_from=self.resolved_default_from,
            worker_url=worker[0] if worker else None,
            worker_token=worker[1] if worker else None,
            send_statement=send_statement,
            webhook_secret=webhook_secret,
            history_table_name=history[0] if history else None,
            history_read_statement=history[1] if history else None,
            **_fields(_settings(self.vercel)),
        )


class TransactionalEmail(pulumi.ComponentResource):
    """Everything one stage needs to send transactional email.

    Attributes:
        domain: the :class:`EmailDomain`.
        queue: the :class:`EmailQueue`.
        lambda_sender: the :class:`LambdaSender`, or ``None`` when that path is off.
        worker_sender: the :class:`WorkerSender`, or ``None`` when that path is off.
        vercel: the :class:`VercelEnv`, or ``None`` without Vercel settings.
        events: the :class:`EmailEvents`, or ``None`` when turned off.
        alarms: the :class:`EmailAlarms` (always on).
        outputs: the values a stack exports (see :data:`OUTPUTS`); secrets are secret.
    """

    lambda_sender: LambdaSender | None
    worker_sender: WorkerSender | None
    vercel: VercelEnv | None
    events: EmailEvents | None
    alarms: EmailAlarms

    def __init__(
        self,
        name: str,
        args: TransactionalEmailArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(TYPE, name, {}, opts)
        require_args(args, TransactionalEmailArgs, "TransactionalEmail")
        args.validate()
        self._name = name
        self._args = args
        child = pulumi.ResourceOptions(parent=self)

        # SES publishes events only while the pipeline consumes them: a topic nobody
        # reads loses them silently (and the pack's `ses-events-topic-subscribed` fails).
        self.domain = EmailDomain(
            f"{name}-domain",
            dataclasses.replace(args.email, publish_events=args.events is not None),
            child,
        )
        self._create_aws_path(child)
        self._create_events(child)
        self._create_alarms(child)
        self._create_worker_path(child)
        self._publish_vercel_env(child)

        self.outputs: dict[str, Any] = {
            "identity_arn": self.domain.arn,
            "configuration_set_name": self.domain.configuration_set_name,
            "events_topic_arn": self.domain.events_topic_arn,
            "dns_records": self.domain.dns_records,
            "queue_url": self.queue.url,
            "queue_arn": self.queue.arn,
            "dead_letter_queue_url": self.queue.dead_letter_queue_url,
            "alarm_topic_arn": self.queue.alarm_topic.arn,
            "dashboard_name": self.alarms.dashboard_name,
        }
        if self.lambda_sender is not None:
            self.outputs["lambda_function_name"] = self.lambda_sender.function_name
        if self.worker_sender is not None:
            self.outputs["worker_url"] = self.worker_sender.url
            self.outputs["worker_script_name"] = self.worker_sender.script_name
            self.outputs["worker_token"] = self.worker_sender.worker_token
        if self.vercel is not None:
            self.outputs["vercel_role_arn"] = self.vercel.role_arn
        if self.events is not None:
            self.outputs["events_queue_url"] = self.events.queue_url
            self.outputs["history_table_name"] = self.events.history_table_name
            if self.events.webhook_secret is not None:
                self.outputs["webhook_secret"] = self.events.webhook_secret
        self.register_outputs(self.outputs)

    def _create_aws_path(self, child: pulumi.ResourceOptions) -> None:
        args = self._args
        # The queue exists even with the Lambda path off: producers (the Vercel app)
        # can still enqueue, and a consumer can be attached later without data loss.
        self.queue = EmailQueue(f"{self._name}-queue", args.consumer_queue, child)
        self.lambda_sender = None
        if args.lambda_sender is not None:
            self.lambda_sender = LambdaSender(
                f"{self._name}-lambda", args.lambda_args(self.queue, self.domain), child
            )

    def _create_events(self, child: pulumi.ResourceOptions) -> None:
        self.events = None
        if self._args.events is None:
            return
        self.events = EmailEvents(
            f"{self._name}-events",
            self._args.events_args(self.domain, alarm_topic_arn=self.queue.alarm_topic.arn),
            child,
        )

    def _create_alarms(self, child: pulumi.ResourceOptions) -> None:
        sender, events = self.lambda_sender, self.events
        # Until 0.1.0 these alarms and the dashboard were children of the EmailEvents:
        # aliases move them here instead of replacing them.
        events_name = f"{self._name}-events"
        self.alarms = EmailAlarms(
            f"{self._name}-alarms",
            self._args.alarms_args(
                self.queue,
                sender_function_name=sender.function_name if sender is not None else None,
                events={
                    "queue": events.queue.name,
                    "dlq": events.dead_letter_queue.name,
                    "function": events.function.name,
                }
                if events is not None
                else None,
                moved_from=(events_name, pulumi.create_urn(events_name, EVENTS_TYPE, parent=self)),
            ),
            child,
        )

    def _create_worker_path(self, child: pulumi.ResourceOptions) -> None:
        self.worker_sender = None
        if self._args.worker_sender is not None:
            # Both paths' dead letters end in the one SQS DLQ: one alarm, redrive, retention.
            self.worker_sender = WorkerSender(
                f"{self._name}-worker", self._args.worker_args(self.domain, self.queue), child
            )

    def _publish_vercel_env(self, child: pulumi.ResourceOptions) -> None:
        self.vercel = None
        if self._args.vercel is None:
            return
        worker = self.worker_sender
        worker_values: tuple[pulumi.Input[str], pulumi.Input[str]] | None = None
        if worker is not None:
            # validate() refuses a Worker with an unknown URL while Vercel is on.
            assert worker.url is not None
            worker_values = (worker.url, worker.worker_token)
        # The events part exists by now: the app gets the webhook secret and reads the
        # message history with its own identity.
        events = self.events
        self.vercel = VercelEnv(
            f"{self._name}-vercel",
            self._args.vercel_args(
                queue_url=self.queue.url,
                queue_arn=self.queue.arn,
                worker=worker_values,
                send_statement=self.queue.grant_send_messages(),
                webhook_secret=events.webhook_secret if events else None,
                history=(events.history_table_name, events.grant_read_history())
                if events
                else None,
            ),
            child,
        )


def consumer_queue_args(
    queue: EmailQueueArgs, lambda_settings: LambdaSenderSettings | None
) -> EmailQueueArgs:
    """``queue`` with its consumer timeout and batching window taken from the Lambda
    settings (or their defaults), so the derived visibility timeout always fits the
    function that consumes the queue."""
    settings = lambda_settings or LambdaSenderSettings()
    return dataclasses.replace(
        queue,
        consumer_timeout_seconds=settings.timeout_seconds,
        batching_window_seconds=settings.batching_window_seconds,
    )


def _settings(value: _S | Mapping[str, Any] | None) -> _S:
    """A settings field after ``__post_init__``: never a mapping; ``None`` is checked by
    the callers."""
    assert value is not None and not isinstance(value, Mapping)
    return value


def _fields(settings: Any) -> dict[str, Any]:
    """A settings dataclass as keyword arguments (shallow: nested values kept as is)."""
    return {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}


def _stand_in(cls: type[_S], **attributes: Any) -> _S:
    """An instance of a component class that registers nothing.

    It lets the parts' own ``validate`` (which checks the types and attributes of the
    components they are wired to) run before any resource exists, so each rule is
    written once, on its Args.
    """
    obj = cls.__new__(cls)
    obj.__dict__.update(attributes)
    return obj
