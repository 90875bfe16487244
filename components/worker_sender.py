"""The Cloudflare sender: a Worker that enqueues messages over HTTP and sends them
through SES v2 from a Cloudflare Queue, with its DLQ queue, IAM user and secrets."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_cloudflare as cloudflare
import pulumi_random as random
import pulumiverse_time as time

from .access_keys import (
    ACCESS_KEY_SLOTS,
    MAX_ACCESS_KEY_ROTATION_DAYS,
    active_key_slot,
    rotating_access_keys,
)
from .email_domain import REGION_RE, EmailDomain
from .email_queue import EmailQueue
from .errors import ConfigError
from .lambda_package import functions_dir
from .settings import Bool, Domain, Int, Pattern, check_fields, require_args, rule, strict_args
from .validation import check_email, check_pattern

__all__ = [
    "ACCESS_KEY_SLOTS",
    "DEAD_LETTER_CONSUMER_SETTINGS",
    "GUARD_CLASS",
    "GUARD_MIGRATIONS",
    "IAM_PATH",
    "WORKER_TOKEN_LENGTH",
    "WorkerBundle",
    "WorkerSender",
    "WorkerSenderArgs",
    "active_key_slot",
    "default_script_name",
    "invocation_send_rate",
    "load_worker_bundle",
    "observability_settings",
    "paced_concurrency",
    "parked_queue_name",
    "queue_names",
    "rate_limit_namespace_id",
    "sanitize_name",
    "send_policy_document",
    "worker_url",
]

TYPE = "serverless-mail:index:WorkerSender"

IAM_PATH = "/serverless-mail/"
"""Path of every IAM user the component creates, so they are easy to audit."""

MAX_CONSUMER_CONCURRENCY = 250
"""Cloudflare Queues' ceiling for concurrent consumer invocations."""

WORKER_TOKEN_LENGTH = 48
"""Length of the bearer token of the enqueue API (letters and digits: ~285 bits)."""

RATE_LIMIT_PERIOD_SECONDS = 60
"""Window of the Worker's rate limiter. The Workers Rate Limiting binding takes 10 or 60
seconds; the Worker's ``Retry-After`` is this period (functions/worker/src/config.js)."""

MAX_RATE_LIMIT_PER_MINUTE = 100_000

GUARD_CLASS = "MessageIdGuard"
"""The Durable Object class of the Worker's duplicate guard on the message ``id``
(functions/worker/src/guard.js), bound as ``EMAIL_ID_GUARD``."""

GUARD_MIGRATIONS: cloudflare.WorkersScriptMigrationsArgsDict = {
    "new_tag": "v1",
    "new_sqlite_classes": [GUARD_CLASS],
}
"""The script's Durable Object migration: a namespace needs its class created by a
migration in the same upload, SQLite-backed (the backend every plan offers). Cloudflare
skips a tag the script already has, so every later upload may send it again."""

MIN_SEND_RATE = 0.1
"""Lowest ``max_send_rate`` the Worker can pace to: a 50-recipient message then takes
500 s of one invocation, inside the consumer's 15-minute wall-clock limit."""

DEAD_LETTER_CONSUMER_SETTINGS: cloudflare.QueueConsumerSettingsArgsDict = {
    "batch_size": 10,
    "max_wait_time_ms": 5000,
    # The forwarder (functions/worker/src/dead-letters.js) re-enqueues a letter it could not
    # forward after 10 deliveries, so an SQS outage never reaches 100. Only deliveries that
    # crash before settling count up to it; 100 of them an hour apart outlast the queue's
    # default 4-day retention (Cloudflare Queues limits: max_retries 0 to 100).
    "max_retries": 100,
    "retry_delay": 3600,
    # Dead letters are rare; one invocation at a time keeps SQS calls few and in order.
    "max_concurrency": 1,
}
"""Settings of the consumer on the DLQ queue (API names and units)."""
_TOKEN_RE = re.compile(r"[\x21-\x7e]{32,256}")

# Script names end up as a DNS label (`<script>.<subdomain>.workers.dev`), and queue
# names share the alphabet: lower-case letters, digits and inner dashes, at most 63.
NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
NAME_MAX = 63
_NAME_WHAT = "1 to 63 lower-case letters, digits or inner '-' (a DNS label)"
CLOUDFLARE_ID_RE = re.compile(r"[0-9a-f]{32}")
_ZONE_ID_WHAT = "a Cloudflare zone id (32 lower-case hex characters, from the zone's Overview page)"
_SUBDOMAIN_WHAT = "the account's workers.dev subdomain, one DNS label such as 'my-team'"


@strict_args
@dataclass(frozen=True, kw_only=True)
class WorkerSenderSettings:
    """What a stage may set on :class:`WorkerSender`; :class:`WorkerSenderArgs` adds the wiring."""

    script_name: str | None = field(default=None, metadata=rule(Pattern(NAME_RE, _NAME_WHAT)))
    """Name of the Worker script, also the stem of the queue names. Default: ``None``,
    which means ``<project>-<stack>-<component name>`` in Cloudflare's alphabet
    (lower-case letters, digits, ``-``), at most 63 characters."""

    max_batch_size: int = field(default=10, metadata=rule(Int(1, 100)))
    """Messages per consumer batch (1 to 100); the Worker sends at most 6 of them at
    a time. Default: ``10``."""

    max_batch_timeout_seconds: int = field(default=5, metadata=rule(Int(0, 60)))
    """How long a batch may wait to fill up, in seconds (0 to 60); sent to the API as
    ``max_wait_time_ms``. Default: ``5``."""

    max_retries: int = field(default=5, metadata=rule(Int(0, 100)))
    """Deliveries of a message after the first before the platform moves it to the
    DLQ queue (0 to 100). Default: ``5``."""

    retry_delay_seconds: int = field(default=30, metadata=rule(Int(0, 43200)))
    """Delay before a message the consumer did not ack is delivered again, in seconds
    (0 to 43200); the Worker's own ``retry({delaySeconds})`` overrides it. Default:
    ``30``."""

    custom_domain: str | None = field(default=None, metadata=rule(Domain()))
    """Hostname to serve the enqueue API on, e.g. ``mail-api.example.com``; needs
    ``zone_id``. Default: ``None`` (no custom domain)."""

    workers_dev: bool = field(default=True, metadata=rule(Bool()))
    """Serve the Worker on the account's ``workers.dev`` subdomain. Default: ``True``."""

    workers_dev_subdomain: str | None = field(
        default=None, metadata=rule(Pattern(NAME_RE, _SUBDOMAIN_WHAT))
    )
    """The account's ``workers.dev`` subdomain (``<this>.workers.dev``, shown on the
    dashboard's Workers overview), used only to compute ``url``: the provider cannot
    read it without an invoke. Default: ``None`` (``url`` stays unknown unless
    ``custom_domain`` is set)."""

    observability: bool = field(default=True, metadata=rule(Bool()))
    """Workers Logs on (with invocation logs) for the script. Default: ``True``."""

    rate_limit_per_minute: int = field(
        default=600, metadata=rule(Int(1, MAX_RATE_LIMIT_PER_MINUTE))
    )
    """Enqueue requests (``/send`` or ``/send/batch``) each token may make per minute
    before the Worker answers 429 with ``Retry-After`` (1 to 100000). Cloudflare counts
    per location, so this is a per-location ceiling against a leaked or runaway
    producer, not a quota. Default: ``600``."""

    previous_worker_token: pulumi.Input[str] | None = None
    """The token being rotated out, accepted beside the current one while set (bound
    as the secret ``EMAIL_WORKER_TOKEN_PREVIOUS``). To rotate: set this to the current
    token, replace ``<name>-worker-token``, move producers to the new token, then
    unset it. Printable ASCII, 32 to 256 characters. Default: ``None``."""

    max_concurrency: int = field(default=5, metadata=rule(Int(1, MAX_CONSUMER_CONCURRENCY)))
    """Consumer invocations the queue may run at once (1 to 250); bounds the SES
    sending rate a backlog can reach. With a send rate, at most one invocation per whole
    recipient a second of the Worker's share (at least one). Default: ``5``."""

    access_key_rotation_days: int = field(
        default=30, metadata=rule(Int(1, MAX_ACCESS_KEY_ROTATION_DAYS))
    )
    """Days between access-key rotations (1 to 45). The IAM user has two keys, each
    replaced every twice this period, half a period apart; the Worker always holds
    the newer one, so the key being replaced is never the one in use. Keys are
    replaced by the first ``pulumi up --refresh`` after they are due. Default: ``30``."""


@strict_args
@dataclass(frozen=True, kw_only=True)
class WorkerSenderArgs(WorkerSenderSettings):
    """Arguments of :class:`WorkerSender`."""

    domain: EmailDomain
    """The sending domain: its send grant scopes the IAM user, its name and
    configuration set reach the Worker as vars. Required."""

    account_id: str
    """The Cloudflare account (32 hex characters) that owns the Worker and queues.
    Required."""

    default_from: str
    """``From`` when a message has none: an address on ``domain`` (a display name,
    ``Name <addr>``, is allowed). Required."""

    region: str
    """The SES region the Worker sends through; the domain's region. Required."""

    zone_id: str | None = field(
        default=None, metadata=rule(Pattern(CLOUDFLARE_ID_RE, _ZONE_ID_WHAT, "example.com"))
    )
    """The Cloudflare zone (32 hex characters) that holds ``custom_domain``. Default:
    ``None``; required with ``custom_domain``."""

    dead_letter_target: EmailQueue | None = None
    """The SQS queue whose dead-letter queue also keeps this path's dead letters: the
    Worker consumes its DLQ queue and forwards each letter there (bound as
    ``EMAIL_DEAD_LETTER_QUEUE_URL``; the IAM user may ``sqs:SendMessage`` on that DLQ
    only), so both paths share one DLQ, alarm, redrive and retention.
    :class:`TransactionalEmail` sets its :class:`EmailQueue`. Default: ``None`` (the DLQ
    queue has no consumer: Cloudflare keeps its messages 4 days)."""

    max_send_rate: float | None = None
    """SES recipients per second this whole path may send (its share of
    ``ses.max_send_rate``), split over ``max_concurrency`` consumer invocations.
    Default: ``None`` (no pacing)."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` on the first invalid field."""
        if not isinstance(self.domain, EmailDomain):
            raise ConfigError(
                "`domain` must be an EmailDomain component, but "
                f"{type(self.domain).__name__} was provided"
            )
        check_pattern(
            "account_id",
            self.account_id,
            CLOUDFLARE_ID_RE,
            "a Cloudflare account id (32 lower-case hex characters, from the dashboard's "
            "account home)",
        )
        if self.dead_letter_target is not None and not isinstance(
            self.dead_letter_target, EmailQueue
        ):
            raise ConfigError(
                "`dead_letter_target` must be an EmailQueue component or None, but "
                f"{type(self.dead_letter_target).__name__} was provided"
            )
        check_email("default_from", self.default_from, domain=self.domain.domain, display_name=True)
        check_pattern("region", self.region, REGION_RE, "an AWS region code such as 'eu-west-1'")
        if isinstance(self.previous_worker_token, str) and not _TOKEN_RE.fullmatch(
            self.previous_worker_token
        ):
            raise ConfigError(
                "`previous_worker_token` must be the token being rotated out (32 to 256 "
                f"printable ASCII characters, no spaces), but {len(self.previous_worker_token)} "
                "characters of another form were provided: give the old token, or unset it"
            )
        check_fields(self)
        if self.max_send_rate is not None and (
            isinstance(self.max_send_rate, bool)
            or not isinstance(self.max_send_rate, int | float)
            or not self.max_send_rate >= MIN_SEND_RATE
        ):
            raise ConfigError(
                f"`max_send_rate` must be at least {MIN_SEND_RATE} recipients per second "
                "for the Worker path (its share of the account's SES maximum send rate: "
                "in a stage, the send rate times the Worker's share), but "
                f"{self.max_send_rate!r} was provided: raise the rate or the share, or "
                "give None for no pacing"
            )
        if self.custom_domain is not None:
            if self.zone_id is None:
                raise ConfigError(
                    "`zone_id` is required with `custom_domain`, but none was provided: "
                    f"give the id of the Cloudflare zone that holds {self.custom_domain!r}"
                )
        if self.zone_id is not None:
            if self.custom_domain is None:
                raise ConfigError(
                    f"`zone_id` is only used with `custom_domain`, but {self.zone_id!r} was "
                    "provided without one: set `custom_domain` or remove `zone_id`"
                )
        if self.workers_dev_subdomain is not None:
            if not self.workers_dev:
                raise ConfigError(
                    "`workers_dev_subdomain` is only used with `workers_dev`, but "
                    f"{self.workers_dev_subdomain!r} was provided while `workers_dev` is "
                    "false: enable `workers_dev` or remove `workers_dev_subdomain`"
                )
        if not self.workers_dev and self.custom_domain is None:
            raise ConfigError(
                "`workers_dev` must be true when no `custom_domain` is set, but false was "
                "provided: the enqueue API would have no address; set `custom_domain`"
            )


@dataclass(frozen=True)
class WorkerBundle:
    """The committed Worker bundle and the settings of ``functions/worker/worker.json``."""

    main_module: str
    content: str
    compatibility_date: str
    compatibility_flags: tuple[str, ...]


class WorkerSender(pulumi.ComponentResource):
    """The Cloudflare path: enqueue API and SES v2 sender in one module Worker.

    ``POST /send`` (bearer token) puts messages on a Cloudflare Queue; the same Worker
    consumes the queue (batch size, wait, retries, retry delay, DLQ queue) and sends
    each message with SES v2 as a per-stage IAM user that may only send as the domain.
    Permanent failures are written to the DLQ queue with a reason through the
    ``EMAIL_DLQ`` producer binding. With ``dead_letter_target`` the Worker also consumes
    the DLQ queue and forwards each letter to that EmailQueue's SQS DLQ (acked only once
    SQS accepted it), so both paths' dead letters share one DLQ and its alarm. With
    ``max_send_rate`` the consumer's ``max_concurrency`` and each invocation's pace
    (``EMAIL_MAX_SEND_RATE``) keep the path under that rate; each message ``id`` is
    claimed in the script's ``MessageIdGuard`` Durable Object (``EMAIL_ID_GUARD``), so it
    is sent once.

    Secrets: the IAM access key and the Worker token reach the script only as
    ``secret_text`` bindings and are secret in state and outputs. Cloudflare never
    returns a script's secret values, so a secret changed outside Pulumi (dashboard,
    ``wrangler secret put``) is invisible to ``pulumi refresh`` and ``preview``: change
    secrets here only. Rotate the token with ``pulumi up --replace`` on the
    ``<name>-worker-token`` resource. The access keys rotate on their own schedule
    (``access_key_rotation_days``, ``<name>-key-rotation-a``/``-b``): run
    ``pulumi up --refresh`` at least that often so due keys are replaced.

    Attributes:
        script: the Worker script.
        queue / dead_letter_queue: the message queue and its DLQ queue.
        consumer: the Worker's consumer on ``queue``.
        dead_letter_consumer / parked_queue: with ``dead_letter_target``, the Worker's
            consumer on ``dead_letter_queue`` (forwarding to the SQS DLQ) and the queue
            Cloudflare moves a letter to after that consumer's ``max_retries``; else
            ``None``.
        user: the IAM user the Worker signs SES requests as.
        access_keys / key_rotations: its two keys and their ``time.Rotating``
            schedules, slot ``a`` then ``b``.
        subdomain / custom_domain: the workers.dev route and custom domain, if any.
        script_name: the script's name.
        url: ``https://<custom_domain>`` when set, else
            ``https://<script_name>.<workers_dev_subdomain>.workers.dev`` when that
            subdomain is given, else ``None``: the account's workers.dev subdomain is
            not readable without a provider invoke (find it on the dashboard).
        worker_token: the API's bearer token (secret).
    """

    script: cloudflare.WorkersScript
    queue: cloudflare.Queue
    dead_letter_queue: cloudflare.Queue
    consumer: cloudflare.QueueConsumer
    dead_letter_consumer: cloudflare.QueueConsumer | None
    parked_queue: cloudflare.Queue | None
    user: aws.iam.User
    access_keys: tuple[aws.iam.AccessKey, aws.iam.AccessKey]
    key_rotations: tuple[time.Rotating, time.Rotating]
    subdomain: cloudflare.WorkersScriptSubdomain | None
    custom_domain: cloudflare.WorkersCustomDomain | None
    script_name: str
    url: str | None
    worker_token: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: WorkerSenderArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(TYPE, name, {}, opts)
        require_args(args, WorkerSenderArgs, "WorkerSender")
        args.validate()
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self.script_name = args.script_name or default_script_name(name)

        self._create_queues()
        self._create_sender_identity()
        self._create_worker_token()
        self._deploy_script(load_worker_bundle())
        self._consume_queue()
        self._forward_dead_letters()
        self._route_requests()

        self.url = worker_url(
            self.script_name,
            args.custom_domain,
            args.workers_dev_subdomain if args.workers_dev else None,
        )
        self.worker_token = pulumi.Output.secret(self._token.result)
        self.register_outputs(
            {
                "script_name": self.script_name,
                "queue_name": self.queue.queue_name,
                "dead_letter_queue_name": self.dead_letter_queue.queue_name,
                "url": self.url,
                "worker_token": self.worker_token,
            }
        )

    def _create_queues(self) -> None:
        queue_name, dlq_name = queue_names(self.script_name)
        self.queue = cloudflare.Queue(
            f"{self._name}-queue",
            account_id=self._args.account_id,
            queue_name=queue_name,
            opts=self._child,
        )
        self.dead_letter_queue = cloudflare.Queue(
            f"{self._name}-dlq",
            account_id=self._args.account_id,
            queue_name=dlq_name,
            opts=self._child,
        )

    def _create_sender_identity(self) -> None:
        self.user = aws.iam.User(
            f"{self._name}-user",
            name=self.script_name,
            path=IAM_PATH,
            opts=self._child,
        )
        aws.iam.UserPolicy(
            f"{self._name}-send-email",
            user=self.user.name,
            policy=self._args.domain.grant_send_email().apply(
                lambda statement: json.dumps(send_policy_document(statement))
            ),
            opts=self._child,
        )
        self._allow_dead_letter_forwarding()
        self._rotate_access_keys()

    def _allow_dead_letter_forwarding(self) -> None:
        target = self._args.dead_letter_target
        if target is None:
            return
        statements = [target.grant_dead_letter_send()]
        # An SSE-KMS queue needs its key for a send (SQS Developer Guide, "Key management").
        key = target.grant_encryption_key_use(send=True)
        if key is not None:
            statements.append(key)
        aws.iam.UserPolicy(
            f"{self._name}-forward-dead-letters",
            user=self.user.name,
            policy=pulumi.Output.all(*statements).apply(
                lambda resolved: json.dumps({"Version": "2012-10-17", "Statement": resolved})
            ),
            opts=self._child,
        )

    def _rotate_access_keys(self) -> None:
        rotating = rotating_access_keys(
            user=self.user,
            days=self._args.access_key_rotation_days,
            key_name=f"{self._name}-access-key",
            rotation_name=f"{self._name}-key-rotation",
            parent=self,
            previous_key_name=f"{self._name}-access-key",
        )
        self.access_keys = rotating.keys
        self.key_rotations = rotating.rotations
        self._key_id = rotating.active_id
        self._key_secret = rotating.active_secret

    def _create_worker_token(self) -> None:
        # Kept in state: the token only changes when this resource is replaced.
        self._token = random.RandomPassword(
            f"{self._name}-worker-token",
            length=WORKER_TOKEN_LENGTH,
            special=False,
            # Named `-enqueue-token` before the Worker token got one name everywhere:
            # the alias keeps a deployed stack's token instead of replacing it.
            opts=pulumi.ResourceOptions.merge(
                self._child,
                pulumi.ResourceOptions(aliases=[pulumi.Alias(name=f"{self._name}-enqueue-token")]),
            ),
        )

    def _deploy_script(self, bundle: WorkerBundle) -> None:
        args = self._args
        # `content` rather than `content_file`: a path differs between machines and
        # would show as a change; the bundle's text is the same everywhere.
        self.script = cloudflare.WorkersScript(
            f"{self._name}-script",
            account_id=args.account_id,
            script_name=self.script_name,
            main_module=bundle.main_module,
            content=bundle.content,
            compatibility_date=bundle.compatibility_date,
            compatibility_flags=list(bundle.compatibility_flags),
            bindings=self._bindings(),
            migrations=GUARD_MIGRATIONS,
            observability=observability_settings(args.observability),
            opts=self._child,
        )

    def _bindings(self) -> list[cloudflare.WorkersScriptBindingArgsDict]:
        args = self._args
        # Names and kinds are the Worker's contract: functions/worker/src/config.js.
        return [
            {"name": "EMAIL_QUEUE", "type": "queue", "queue_name": self.queue.queue_name},
            {
                "name": "EMAIL_DLQ",
                "type": "queue",
                "queue_name": self.dead_letter_queue.queue_name,
            },
            {"name": "AWS_REGION", "type": "plain_text", "text": args.region},
            {"name": "EMAIL_DOMAIN", "type": "plain_text", "text": args.domain.domain},
            {"name": "EMAIL_DEFAULT_FROM", "type": "plain_text", "text": args.default_from},
            {
                "name": "EMAIL_CONFIGURATION_SET",
                "type": "plain_text",
                "text": args.domain.configuration_set_name,
            },
            {
                "name": "AWS_ACCESS_KEY_ID",
                "type": "secret_text",
                "text": pulumi.Output.secret(self._key_id),
            },
            {
                "name": "AWS_SECRET_ACCESS_KEY",
                "type": "secret_text",
                "text": pulumi.Output.secret(self._key_secret),
            },
            {
                "name": "EMAIL_WORKER_TOKEN",
                "type": "secret_text",
                "text": pulumi.Output.secret(self._token.result),
            },
            *self._delivery_bindings(),
            *self._api_guard_bindings(),
            *self._dead_letter_bindings(),
        ]

    def _dead_letter_bindings(self) -> list[cloudflare.WorkersScriptBindingArgsDict]:
        target = self._args.dead_letter_target
        if target is None:
            return []
        # `queue` tells the DLQ queue's batches by this name (functions/worker/src/index.js).
        return [
            {
                "name": "EMAIL_DLQ_NAME",
                "type": "plain_text",
                "text": self.dead_letter_queue.queue_name,
            },
            {
                "name": "EMAIL_DEAD_LETTER_QUEUE_URL",
                "type": "plain_text",
                "text": target.dead_letter_queue_url,
            },
        ]

    def _delivery_bindings(self) -> list[cloudflare.WorkersScriptBindingArgsDict]:
        args = self._args
        # The consumer dead-letters a failure on its last delivery itself, with the
        # reason, so it needs the count the platform stops at.
        bindings: list[cloudflare.WorkersScriptBindingArgsDict] = [
            {
                "name": "EMAIL_ID_GUARD",
                "type": "durable_object_namespace",
                "class_name": GUARD_CLASS,
            },
            {"name": "EMAIL_MAX_RETRIES", "type": "plain_text", "text": str(args.max_retries)},
        ]
        if args.max_send_rate is not None:
            concurrency = paced_concurrency(args.max_concurrency, args.max_send_rate)
            bindings.append(
                {
                    "name": "EMAIL_MAX_SEND_RATE",
                    "type": "plain_text",
                    "text": invocation_send_rate(args.max_send_rate, concurrency),
                }
            )
        return bindings

    def _api_guard_bindings(self) -> list[cloudflare.WorkersScriptBindingArgsDict]:
        args = self._args
        # The Workers Rate Limiting binding: `namespace_id` is an integer, as a string,
        # unique in the account; `simple` is the limit per period (10 or 60 s) in one
        # Cloudflare location
        # (https://developers.cloudflare.com/workers/runtime-apis/bindings/rate-limit/).
        bindings: list[cloudflare.WorkersScriptBindingArgsDict] = [
            {
                "name": "EMAIL_RATE_LIMITER",
                "type": "ratelimit",
                "namespace_id": rate_limit_namespace_id(self.script_name),
                "simple": {
                    "limit": args.rate_limit_per_minute,
                    "period": RATE_LIMIT_PERIOD_SECONDS,
                },
            }
        ]
        if args.previous_worker_token is not None:
            bindings.append(
                {
                    "name": "EMAIL_WORKER_TOKEN_PREVIOUS",
                    "type": "secret_text",
                    "text": pulumi.Output.secret(args.previous_worker_token),
                }
            )
        return bindings

    def _consume_queue(self) -> None:
        args = self._args
        # API names and units (ms for the wait, seconds for the delay), not wrangler's.
        self.consumer = cloudflare.QueueConsumer(
            f"{self._name}-consumer",
            account_id=args.account_id,
            queue_id=self.queue.queue_id,
            script_name=self.script.script_name,
            type="worker",
            dead_letter_queue=self.dead_letter_queue.queue_name,
            settings={
                "batch_size": args.max_batch_size,
                "max_retries": args.max_retries,
                "max_wait_time_ms": args.max_batch_timeout_seconds * 1000,
                "retry_delay": args.retry_delay_seconds,
                "max_concurrency": paced_concurrency(args.max_concurrency, args.max_send_rate),
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.script]),
        )

    def _forward_dead_letters(self) -> None:
        self.dead_letter_consumer = None
        self.parked_queue = None
        if self._args.dead_letter_target is None:
            return
        args = self._args
        # Every consumer needs a DLQ of its own, or Cloudflare deletes what exhausts
        # max_retries (Cloudflare Queues, dead letter queues). Only deliveries that keep
        # crashing get here; Cloudflare keeps them 4 days, see the README's Operations.
        self.parked_queue = cloudflare.Queue(
            f"{self._name}-dlq-parked",
            account_id=args.account_id,
            queue_name=parked_queue_name(self.script_name),
            opts=self._child,
        )
        self.dead_letter_consumer = cloudflare.QueueConsumer(
            f"{self._name}-dlq-consumer",
            account_id=args.account_id,
            queue_id=self.dead_letter_queue.queue_id,
            script_name=self.script.script_name,
            type="worker",
            dead_letter_queue=self.parked_queue.queue_name,
            settings=DEAD_LETTER_CONSUMER_SETTINGS,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.script]),
        )

    def _route_requests(self) -> None:
        args = self._args
        self.subdomain = None
        self.custom_domain = None
        if args.workers_dev:
            self.subdomain = cloudflare.WorkersScriptSubdomain(
                f"{self._name}-workers-dev",
                account_id=args.account_id,
                script_name=self.script.script_name,
                enabled=True,
                opts=self._child,
            )
        if args.custom_domain is not None:
            self.custom_domain = cloudflare.WorkersCustomDomain(
                f"{self._name}-custom-domain",
                account_id=args.account_id,
                hostname=args.custom_domain,
                service=self.script.script_name,
                zone_id=args.zone_id,
                opts=self._child,
            )


def paced_concurrency(max_concurrency: int, max_send_rate: float | None) -> int:
    """The consumer's ``max_concurrency``: as set, but with a send rate no more
    invocations than whole recipients per second (at least one), so each invocation
    paces to at least 1 recipient per second."""
    if max_send_rate is None:
        return max_concurrency
    return max(1, min(max_concurrency, math.floor(max_send_rate)))


def invocation_send_rate(max_send_rate: float, concurrency: int) -> str:
    """``EMAIL_MAX_SEND_RATE``: one invocation's share of the path's rate, rounded down
    to 1/1000 so the invocations together never exceed it."""
    share = math.floor(max_send_rate / concurrency * 1000) / 1000
    return f"{share:.3f}".rstrip("0").rstrip(".")


def rate_limit_namespace_id(script_name: str) -> str:
    """The rate limiter's namespace: an integer derived from the script name, so each
    stage's Worker counts on its own and a redeploy keeps its counters."""
    digest = hashlib.sha256(script_name.encode()).digest()
    return str(1000 + int.from_bytes(digest[:4], "big") % 1_000_000_000)


def default_script_name(name: str) -> str:
    """``<project>-<stack>-<name>`` in Cloudflare's alphabet, at most 63 characters."""
    return sanitize_name(f"{pulumi.get_project()}-{pulumi.get_stack()}-{name}")


def sanitize_name(raw: str, limit: int = NAME_MAX) -> str:
    """Lower-case letters, digits and single inner dashes, at most ``limit`` long."""
    name = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", raw.lower())).strip("-")
    return name[:limit].rstrip("-") or "worker"


def queue_names(script_name: str) -> tuple[str, str]:
    """The message queue's and the DLQ queue's names: ``<script>-queue``, ``<script>-dlq``,
    the stem shortened so each stays within 63 characters."""
    queue, dlq = "-queue", "-dlq"
    return (
        sanitize_name(script_name, NAME_MAX - len(queue)) + queue,
        sanitize_name(script_name, NAME_MAX - len(dlq)) + dlq,
    )


def parked_queue_name(script_name: str) -> str:
    """``<script>-dlq-parked``, the stem shortened to stay within 63 characters."""
    suffix = "-dlq-parked"
    return sanitize_name(script_name, NAME_MAX - len(suffix)) + suffix


def worker_url(
    script_name: str, custom_domain: str | None, workers_dev_subdomain: str | None
) -> str | None:
    """The enqueue API's base URL, or ``None`` when it cannot be known offline."""
    if custom_domain is not None:
        return f"https://{custom_domain}"
    if workers_dev_subdomain is not None:
        return f"https://{script_name}.{workers_dev_subdomain}.workers.dev"
    return None


def observability_settings(enabled: bool) -> cloudflare.WorkersScriptObservabilityArgsDict:
    """Workers Logs with invocation logs when ``enabled``; everything off otherwise."""
    if not enabled:
        return {"enabled": False}
    return {"enabled": True, "logs": {"enabled": True, "invocation_logs": True}}


def send_policy_document(statement: dict[str, Any]) -> dict[str, Any]:
    """The IAM user's only policy: the domain's send grant, nothing else."""
    return {"Version": "2012-10-17", "Statement": [statement]}


def load_worker_bundle(functions: Path | None = None) -> WorkerBundle:
    """Read ``worker/worker.json`` and the committed bundle it names."""
    worker = (functions or functions_dir()) / "worker"
    settings = json.loads((worker / "worker.json").read_text(encoding="utf-8"))
    return WorkerBundle(
        main_module=settings["main_module"],
        content=(worker / settings["bundle"]).read_text(encoding="utf-8"),
        compatibility_date=settings["compatibility_date"],
        compatibility_flags=tuple(settings.get("compatibility_flags") or ()),
    )
