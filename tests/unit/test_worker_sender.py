"""WorkerSender: exact children, bindings, consumer settings, the bundle, IAM scope,
secrets kept secret, and every validation message."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pulumi
import pytest
from serverless_mail import ConfigError, EmailDomain, EmailDomainArgs, EmailQueue, EmailQueueArgs
from serverless_mail.mocking import Recording, Secret
from serverless_mail.worker_sender import (
    DEAD_LETTER_CONSUMER_SETTINGS,
    WorkerSender,
    WorkerSenderArgs,
    active_key_slot,
    load_worker_bundle,
    parked_queue_name,
    queue_names,
    rate_limit_namespace_id,
    sanitize_name,
    worker_url,
)

ROOT = Path(__file__).resolve().parents[2]
WORKER_DIR = ROOT / "functions" / "worker"
ACCOUNT_ID = "0123456789abcdef0123456789abcdef"
ZONE_ID = "00112233445566778899aabbccddeeff"
DOMAIN_ARGS = EmailDomainArgs(
    domain="mail.example.com", zone_id=ZONE_ID, zone_name="example.com", region="eu-west-1"
)
REQUIRED: dict[str, Any] = {
    "account_id": ACCOUNT_ID,
    "default_from": "Example <no-reply@mail.example.com>",
    "region": "eu-west-1",
}

TYPE = "serverless-mail:index:WorkerSender"
SCRIPT = "cloudflare:index/workersScript:WorkersScript"
QUEUE = "cloudflare:index/queue:Queue"
CONSUMER = "cloudflare:index/queueConsumer:QueueConsumer"
SUBDOMAIN = "cloudflare:index/workersScriptSubdomain:WorkersScriptSubdomain"
CUSTOM_DOMAIN = "cloudflare:index/workersCustomDomain:WorkersCustomDomain"
USER = "aws:iam/user:User"
USER_POLICY = "aws:iam/userPolicy:UserPolicy"
ACCESS_KEY = "aws:iam/accessKey:AccessKey"
PASSWORD = "random:index/randomPassword:RandomPassword"
ROTATING = "time:index/rotating:Rotating"


def build(
    run: Any, *, target: EmailQueueArgs | None = None, **settings: Any
) -> tuple[Recording, dict[str, Any]]:
    """Run an EmailDomain plus a WorkerSender named ``worker`` (forwarding dead letters to
    an EmailQueue named ``email`` built from ``target``, if given); capture plain
    attributes and the domain's grant, export the secret ones so their secrecy is recorded."""
    captured: dict[str, Any] = {}
    run_kwargs = {k: settings.pop(k) for k in ("project", "stack") if k in settings}

    def program() -> None:
        domain = EmailDomain("mail", DOMAIN_ARGS)
        domain.grant_send_email().apply(lambda s: captured.setdefault("grant", s))
        if target is not None:
            queue = EmailQueue("email", target)
            settings["dead_letter_target"] = queue
            queue.dead_letter_queue_arn.apply(lambda arn: captured.setdefault("sqs_dlq_arn", arn))
            queue.dead_letter_queue_url.apply(lambda url: captured.setdefault("sqs_dlq_url", url))
        sender = WorkerSender("worker", WorkerSenderArgs(domain=domain, **{**REQUIRED, **settings}))
        captured["sender"] = sender
        pulumi.export("worker_token", sender.worker_token)
        pulumi.export("url", sender.url)
        pulumi.export("script_name", sender.script_name)

    return run(program, **run_kwargs), captured


def type_counts(rec: Recording, parent: str = "worker") -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in rec.resources:
        if r.parent_name == parent:
            counts[r.type] = counts.get(r.type, 0) + 1
    return counts


BASE_CHILDREN = {
    SCRIPT: 1,
    QUEUE: 2,
    CONSUMER: 1,
    USER: 1,
    USER_POLICY: 1,
    ACCESS_KEY: 2,
    ROTATING: 2,
    PASSWORD: 1,
}


def test_default_children_are_exactly_these_with_workers_dev(run: Any) -> None:
    rec, _ = build(run)
    assert rec.one(TYPE).parent_name == "serverless-mail-dev"
    assert rec.one(TYPE).inputs == {}
    assert type_counts(rec) == {**BASE_CHILDREN, SUBDOMAIN: 1}


def test_custom_domain_only_has_no_workers_dev_route(run: Any) -> None:
    rec, _ = build(run, custom_domain="mail-api.example.com", zone_id=ZONE_ID, workers_dev=False)
    assert type_counts(rec) == {**BASE_CHILDREN, CUSTOM_DOMAIN: 1}


def test_custom_domain_and_workers_dev_together(run: Any) -> None:
    rec, _ = build(run, custom_domain="mail-api.example.com", zone_id=ZONE_ID)
    assert type_counts(rec) == {**BASE_CHILDREN, SUBDOMAIN: 1, CUSTOM_DOMAIN: 1}


def test_queues_are_named_from_the_script(run: Any) -> None:
    rec, _ = build(run)
    assert rec.named("worker-queue").inputs == {
        "accountId": ACCOUNT_ID,
        "queueName": "serverless-mail-dev-worker-queue",
    }
    assert rec.named("worker-dlq").inputs == {
        "accountId": ACCOUNT_ID,
        "queueName": "serverless-mail-dev-worker-dlq",
    }


def test_script_uploads_the_committed_bundle_as_a_module(run: Any) -> None:
    rec, _ = build(run)
    script = rec.one(SCRIPT).inputs
    settings = json.loads((WORKER_DIR / "worker.json").read_text())
    assert settings["main_module"] == "worker.js"
    assert script["mainModule"] == settings["main_module"]
    assert script["compatibilityDate"] == settings["compatibility_date"]
    assert script["compatibilityFlags"] == settings["compatibility_flags"]
    assert script["content"].encode() == (WORKER_DIR / settings["bundle"]).read_bytes()
    assert script["scriptName"] == "serverless-mail-dev-worker"
    assert script["accountId"] == ACCOUNT_ID
    assert "contentFile" not in script
    assert "bodyPart" not in script  # a body part would mean service-worker syntax


def test_bindings_are_exactly_the_workers_contract(run: Any) -> None:
    rec, _ = build(run)
    token = rec.one(PASSWORD).outputs["result"]
    # The second schedule replaces its key last, so the Worker holds key b first.
    key = rec.named("worker-access-key-b")
    assert rec.one(SCRIPT).inputs["bindings"] == [
        {"name": "EMAIL_QUEUE", "type": "queue", "queueName": "serverless-mail-dev-worker-queue"},
        {"name": "EMAIL_DLQ", "type": "queue", "queueName": "serverless-mail-dev-worker-dlq"},
        {"name": "AWS_REGION", "type": "plain_text", "text": "eu-west-1"},
        {"name": "EMAIL_DOMAIN", "type": "plain_text", "text": "mail.example.com"},
        {
            "name": "EMAIL_DEFAULT_FROM",
            "type": "plain_text",
            "text": "Example <no-reply@mail.example.com>",
        },
        {
            "name": "EMAIL_CONFIGURATION_SET",
            "type": "plain_text",
            "text": "serverless-mail-dev-mail",
        },
        {
            "name": "AWS_ACCESS_KEY_ID",
            "type": "secret_text",
            "text": Secret("worker-access-key-b-id"),
        },
        {
            "name": "AWS_SECRET_ACCESS_KEY",
            "type": "secret_text",
            "text": Secret(key.outputs["secret"]),
        },
        {"name": "EMAIL_WORKER_TOKEN", "type": "secret_text", "text": Secret(token)},
        {
            "name": "EMAIL_ID_GUARD",
            "type": "durable_object_namespace",
            "className": "MessageIdGuard",
        },
        {"name": "EMAIL_MAX_RETRIES", "type": "plain_text", "text": "5"},
        {
            "name": "EMAIL_RATE_LIMITER",
            "type": "ratelimit",
            "namespaceId": rate_limit_namespace_id("serverless-mail-dev-worker"),
            "simple": {"limit": 600, "period": 60},
        },
    ]


def test_bindings_are_every_name_the_worker_checks_for(run: Any) -> None:
    # functions/worker/src/config.js lists what `fetch` and `queue` refuse to run without,
    # and the one optional binding (the previous token, bound only when given).
    # The DLQ forwarder's two are bound only with a `dead_letter_target`.
    config_js = (WORKER_DIR / "src" / "config.js").read_text()
    named = set(re.findall(r'"([A-Z][A-Z0-9_]+)"', config_js))
    previous = {"EMAIL_WORKER_TOKEN_PREVIOUS"}
    forwarding = {"EMAIL_DLQ_NAME", "EMAIL_DEAD_LETTER_QUEUE_URL"}
    pacing = {"EMAIL_MAX_SEND_RATE"}  # bound only with a `max_send_rate`
    assert 'PREVIOUS_TOKEN_BINDING = "EMAIL_WORKER_TOKEN_PREVIOUS"' in config_js
    assert 'DLQ_NAME_BINDING = "EMAIL_DLQ_NAME"' in config_js
    assert 'SEND_RATE_BINDING = "EMAIL_MAX_SEND_RATE"' in config_js
    rec, _ = build(run)
    bound = {b["name"] for b in rec.one(SCRIPT).inputs["bindings"]}
    assert len(named) == 16
    assert bound == named - previous - forwarding - pacing
    rec, _ = build(run, previous_worker_token="p" * 48, target=EmailQueueArgs(), max_send_rate=14.0)
    assert {b["name"] for b in rec.one(SCRIPT).inputs["bindings"]} == named


def test_observability_logs_on_by_default_and_off_when_asked(run: Any) -> None:
    rec, _ = build(run)
    assert rec.one(SCRIPT).inputs["observability"] == {
        "enabled": True,
        "logs": {"enabled": True, "invocationLogs": True},
    }
    rec, _ = build(run, observability=False)
    assert rec.one(SCRIPT).inputs["observability"] == {"enabled": False}


def test_consumer_uses_api_names_and_units_with_the_dlq(run: Any) -> None:
    rec, _ = build(run)
    queue = rec.named("worker-queue")
    assert rec.one(CONSUMER).inputs == {
        "accountId": ACCOUNT_ID,
        "queueId": queue.outputs["queueId"],
        "scriptName": "serverless-mail-dev-worker",
        "type": "worker",
        "deadLetterQueue": "serverless-mail-dev-worker-dlq",
        "settings": {
            "batchSize": 10,
            "maxRetries": 5,
            "maxWaitTimeMs": 5000,
            "retryDelay": 30,
            "maxConcurrency": 5,
        },
    }


def test_consumer_settings_follow_the_args(run: Any) -> None:
    rec, _ = build(
        run,
        max_batch_size=100,
        max_batch_timeout_seconds=0,
        max_retries=0,
        retry_delay_seconds=43200,
        max_concurrency=250,
    )
    assert rec.one(CONSUMER).inputs["settings"] == {
        "batchSize": 100,
        "maxRetries": 0,
        "maxWaitTimeMs": 0,
        "retryDelay": 43200,
        "maxConcurrency": 250,
    }


def test_workers_dev_route_is_enabled_for_the_script(run: Any) -> None:
    rec, _ = build(run)
    assert rec.one(SUBDOMAIN).inputs == {
        "accountId": ACCOUNT_ID,
        "scriptName": "serverless-mail-dev-worker",
        "enabled": True,
    }


def test_custom_domain_routes_the_hostname_to_the_script(run: Any) -> None:
    rec, _ = build(run, custom_domain="mail-api.example.com", zone_id=ZONE_ID)
    assert rec.one(CUSTOM_DOMAIN).inputs == {
        "accountId": ACCOUNT_ID,
        "hostname": "mail-api.example.com",
        "service": "serverless-mail-dev-worker",
        "zoneId": ZONE_ID,
    }


def test_iam_user_may_only_send_as_the_domain(run: Any) -> None:
    rec, captured = build(run)
    assert rec.one(USER).inputs == {
        "name": "serverless-mail-dev-worker",
        "path": "/serverless-mail/",
    }
    policy = rec.one(USER_POLICY).inputs
    assert policy["user"] == "serverless-mail-dev-worker"
    assert json.loads(policy["policy"]) == {
        "Version": "2012-10-17",
        "Statement": [captured["grant"]],
    }
    assert sorted((k.name, k.inputs) for k in rec.of_type(ACCESS_KEY)) == [
        ("worker-access-key-a", {"user": "serverless-mail-dev-worker"}),
        ("worker-access-key-b", {"user": "serverless-mail-dev-worker"}),
    ]


def test_worker_token_is_a_48_character_alphanumeric_random_password(run: Any) -> None:
    rec, _ = build(run)
    assert rec.one(PASSWORD).name == "worker-worker-token"
    assert rec.one(PASSWORD).inputs == {"length": 48, "special": False}


def _walk(value: Any, inside_secret: bool = False) -> Iterator[tuple[Any, bool]]:
    if isinstance(value, Secret):
        yield from _walk(value.value, True)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _walk(v, inside_secret)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v, inside_secret)
    else:
        yield value, inside_secret


def test_access_key_and_token_are_secret_wherever_they_appear(run: Any) -> None:
    rec, _ = build(run)
    token = rec.one(PASSWORD).outputs["result"]
    key_secret = rec.named("worker-access-key-b").outputs["secret"]
    key_id = "worker-access-key-b-id"
    idle = {rec.named("worker-access-key-a").outputs["secret"], "worker-access-key-a-id"}
    sensitive = {token, key_secret, key_id, *idle}
    seen = []
    for r in rec.resources:
        for value, secret in _walk(r.inputs):
            if value in sensitive:
                seen.append((r.name, value))
                assert secret, f"{r.name} has a sensitive value outside a secret"
    assert sorted(seen) == sorted(
        [("worker-script", key_id), ("worker-script", key_secret), ("worker-script", token)]
    )
    for name, out in rec.stack_outputs.items():
        for value, secret in _walk(out):
            assert value not in sensitive or secret, f"stack output {name} leaks a secret"
    assert rec.stack_outputs["worker_token"] == Secret(token)


def test_component_attributes(run: Any) -> None:
    rec, captured = build(run)
    sender = captured["sender"]
    assert sender.script_name == "serverless-mail-dev-worker"
    assert sender.url is None
    assert sender.custom_domain is None
    assert sender.subdomain is not None
    assert rec.stack_outputs["url"] is None
    assert rec.stack_outputs["script_name"] == "serverless-mail-dev-worker"


@pytest.mark.parametrize(
    ("settings", "url"),
    [
        ({}, None),
        ({"workers_dev_subdomain": "acme"}, "https://serverless-mail-dev-worker.acme.workers.dev"),
        (
            {"custom_domain": "api.example.com", "zone_id": ZONE_ID, "workers_dev_subdomain": "a"},
            "https://api.example.com",
        ),
        (
            {"custom_domain": "api.example.com", "zone_id": ZONE_ID, "workers_dev": False},
            "https://api.example.com",
        ),
    ],
)
def test_url_is_the_custom_domain_else_workers_dev_when_known(
    settings: dict[str, Any], url: str | None, run: Any
) -> None:
    rec, captured = build(run, **settings)
    assert captured["sender"].url == url
    assert rec.stack_outputs["url"] == url


def test_explicit_script_name_names_script_queues_and_user(run: Any) -> None:
    rec, _ = build(run, script_name="mailer")
    assert rec.one(SCRIPT).inputs["scriptName"] == "mailer"
    assert rec.named("worker-queue").inputs["queueName"] == "mailer-queue"
    assert rec.named("worker-dlq").inputs["queueName"] == "mailer-dlq"
    assert rec.one(USER).inputs["name"] == "mailer"


def test_default_script_name_is_sanitized_to_cloudflares_alphabet(run: Any) -> None:
    rec, _ = build(run, project="My_Mail", stack="Prod.EU")
    assert rec.one(SCRIPT).inputs["scriptName"] == "my-mail-prod-eu-worker"


def test_long_default_names_stay_within_63_characters(run: Any) -> None:
    rec, _ = build(run, project="p" * 40, stack="s" * 40)
    name = rec.one(SCRIPT).inputs["scriptName"]
    assert name == "p" * 40 + "-" + "s" * 22
    queues = [rec.named(n).inputs["queueName"] for n in ("worker-queue", "worker-dlq")]
    assert queues == ["p" * 40 + "-" + "s" * 16 + "-queue", "p" * 40 + "-" + "s" * 18 + "-dlq"]
    assert all(len(n) <= 63 for n in [name, *queues])


def test_pure_helpers() -> None:
    assert sanitize_name("--A__b..c--") == "a-b-c"
    assert sanitize_name("a" * 62 + "-b") == "a" * 62
    assert queue_names("x") == ("x-queue", "x-dlq")
    assert worker_url("s", None, None) is None
    assert worker_url("s", None, "team") == "https://s.team.workers.dev"
    assert worker_url("s", "h.example.com", "team") == "https://h.example.com"


def test_load_worker_bundle_reads_worker_json(tmp_path: Path) -> None:
    worker = tmp_path / "worker"
    (worker / "out").mkdir(parents=True)
    (worker / "out" / "w.mjs").write_text("export default {};\n")
    (worker / "worker.json").write_text(
        json.dumps(
            {
                "main_module": "w.mjs",
                "bundle": "out/w.mjs",
                "compatibility_date": "2025-01-02",
                "compatibility_flags": ["nodejs_compat"],
            }
        )
    )
    bundle = load_worker_bundle(tmp_path)
    assert bundle.main_module == "w.mjs"
    assert bundle.content == "export default {};\n"
    assert bundle.compatibility_date == "2025-01-02"
    assert bundle.compatibility_flags == ("nodejs_compat",)


def test_domain_must_be_an_email_domain() -> None:
    args = WorkerSenderArgs(domain="mail.example.com", **REQUIRED)
    with pytest.raises(ConfigError, match=r"`domain` must be an EmailDomain component, but str"):
        args.validate()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"account_id": "ABC"}, r"`account_id` must be a Cloudflare account id .* but 'ABC' was"),
        (
            {"default_from": "no-reply"},
            r"`default_from` must be an email address .* but 'no-reply' was provided",
        ),
        (
            {"default_from": "no-reply@other.org"},
            r"`default_from` must be an address on 'mail.example.com' .* 'no-reply@other.org'",
        ),
        ({"region": "eu_west_1"}, r"`region` must be an AWS region code .* 'eu_west_1'"),
        (
            {"script_name": "My_Worker"},
            r"`script_name` must be 1 to 63 lower-case letters, .* but 'My_Worker' was provided",
        ),
        ({"script_name": "a" * 64}, r"`script_name` must be 1 to 63 lower-case letters"),
        ({"max_batch_size": 0}, r"`max_batch_size` must be between 1 and 100, but 0 was"),
        ({"max_batch_size": 101}, r"`max_batch_size` must be between 1 and 100, but 101 was"),
        (
            {"max_batch_size": "10"},
            r"`max_batch_size` must be a whole number between 1 and 100, but '10' \(str\)",
        ),
        (
            {"max_batch_timeout_seconds": 61},
            r"`max_batch_timeout_seconds` must be between 0 and 60, but 61 was",
        ),
        (
            {"max_batch_timeout_seconds": 0.5},
            r"`max_batch_timeout_seconds` must be a whole number between 0 and 60, but 0.5",
        ),
        ({"max_retries": 101}, r"`max_retries` must be between 0 and 100, but 101 was"),
        ({"max_retries": -1}, r"`max_retries` must be between 0 and 100, but -1 was"),
        (
            {"retry_delay_seconds": 43201},
            r"`retry_delay_seconds` must be between 0 and 43200, but 43201 was",
        ),
        ({"max_concurrency": 0}, r"`max_concurrency` must be between 1 and 250, but 0 was"),
        (
            {"max_send_rate": 0},
            r"`max_send_rate` must be at least 0.1 recipients per second for the Worker path "
            r".* but 0 was provided",
        ),
        ({"max_send_rate": 0.05}, r"`max_send_rate` must be at least 0.1 .* but 0.05 was"),
        ({"max_send_rate": float("nan")}, r"`max_send_rate` must be at least 0.1 .* but nan was"),
        ({"max_send_rate": True}, r"`max_send_rate` must be at least 0.1 .* but True was"),
        ({"max_send_rate": "14"}, r"`max_send_rate` must be at least 0.1 .* but '14' was"),
        ({"max_concurrency": 251}, r"`max_concurrency` must be between 1 and 250, but 251 was"),
        (
            {"access_key_rotation_days": 0},
            r"`access_key_rotation_days` must be between 1 and 45, but 0 was",
        ),
        (
            {"access_key_rotation_days": 46},
            r"`access_key_rotation_days` must be between 1 and 45, but 46 was",
        ),
        ({"workers_dev": "yes"}, r"`workers_dev` must be true or false, but 'yes' \(str\)"),
        ({"observability": 1}, r"`observability` must be true or false, but 1 \(int\)"),
        (
            {"custom_domain": "https://api.example.com", "zone_id": ZONE_ID},
            r"`custom_domain` must be a lower-case domain name .* 'https://api.example.com'",
        ),
        (
            {"custom_domain": "api.example.com"},
            r"`zone_id` is required with `custom_domain`, but none was provided: .* "
            r"'api.example.com'",
        ),
        (
            {"zone_id": ZONE_ID},
            r"`zone_id` is only used with `custom_domain`, but '0011.*' was provided without one",
        ),
        (
            {"custom_domain": "api.example.com", "zone_id": "zone"},
            r"`zone_id` must be a Cloudflare zone id .* but 'zone' was provided",
        ),
        (
            {"workers_dev": False, "workers_dev_subdomain": "team"},
            r"`workers_dev_subdomain` is only used with `workers_dev`, but 'team' was provided "
            r"while `workers_dev` is false",
        ),
        (
            {"workers_dev_subdomain": "team.workers.dev"},
            r"`workers_dev_subdomain` must be the account's workers.dev subdomain, .* "
            r"'team.workers.dev'",
        ),
        (
            {"workers_dev": False},
            r"`workers_dev` must be true when no `custom_domain` is set, but false was provided",
        ),
    ],
)
def test_invalid_args_fail_before_any_child_exists(
    settings: dict[str, Any], message: str, run: Any
) -> None:
    errors: list[ConfigError] = []

    def program() -> None:
        domain = EmailDomain("mail", DOMAIN_ARGS)
        try:
            WorkerSender("worker", WorkerSenderArgs(domain=domain, **{**REQUIRED, **settings}))
        except ConfigError as error:
            errors.append(error)

    rec = run(program)
    assert len(errors) == 1
    with pytest.raises(ConfigError, match=message):
        raise errors[0]
    assert [r.name for r in rec.resources if r.parent_name == "worker"] == []


# --- Access keys that rotate -----------------------------------------------


def test_access_keys_rotate_on_two_schedules_half_a_period_apart(run: Any) -> None:
    rec, _ = build(run)
    first, second = rec.of_type(ROTATING)
    user = {"user": "serverless-mail-dev-worker"}
    # THEN each key lives two periods (2 x 30 days), the second starting 30 days later
    assert (first.name, first.inputs) == (
        "worker-key-rotation-a",
        {"rotationDays": 60, "triggers": user},
    )
    assert first.outputs["rfc3339"] == "2026-01-01T00:00:00Z"
    assert (second.name, second.inputs) == (
        "worker-key-rotation-b",
        {"rotationDays": 60, "triggers": user, "rfc3339": "2026-01-31T00:00:00Z"},
    )
    assert [first.parent_name, second.parent_name] == ["worker", "worker"]


def test_rotation_period_follows_the_args(run: Any) -> None:
    rec, _ = build(run, access_key_rotation_days=7)
    first, second = rec.of_type(ROTATING)
    assert first.inputs["rotationDays"] == 14
    assert second.inputs["rotationDays"] == 14
    assert second.inputs["rfc3339"] == "2026-01-08T00:00:00Z"


def test_each_key_is_replaced_with_its_schedule_deleting_first(
    run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Mocks do not record resource options: capture them from the register requests.
    from serverless_mail import mocking

    requests: dict[str, Any] = {}
    original = mocking._RecordingMonitor.RegisterResource

    def register(self: Any, request: Any) -> Any:
        requests[request.name] = request
        return original(self, request)

    monkeypatch.setattr(mocking._RecordingMonitor, "RegisterResource", register)
    rec, _ = build(run)
    bases = {r.name: r.outputs["rfc3339"] for r in rec.of_type(ROTATING)}
    assert bases == {
        "worker-key-rotation-a": "2026-01-01T00:00:00Z",
        "worker-key-rotation-b": "2026-01-31T00:00:00Z",
    }
    for slot in ("a", "b"):
        key = requests[f"worker-access-key-{slot}"]
        # THEN the key is replaced whenever its schedule's base changes (a rotation
        # recreates the schedule with a new base), and, two keys per IAM user at
        # most, the old one is deleted before the new one is created
        assert key.replacement_trigger.string_value == bases[f"worker-key-rotation-{slot}"]
        assert list(key.replace_with) == []
        assert key.deleteBeforeReplace is True
    # AND the first key keeps the resource of the single key it succeeds
    assert [a.spec.name for a in requests["worker-access-key-a"].aliases] == ["worker-access-key"]
    assert list(requests["worker-key-rotation-b"].ignoreChanges) == ["rfc3339"]


@pytest.mark.parametrize(
    ("rotations", "slot"),
    [
        (["2026-03-02T00:00:00Z", "2026-04-01T00:00:00Z"], 1),
        (["2026-05-01T00:00:00Z", "2026-04-01T00:00:00Z"], 0),
        (["2026-05-01T00:00:00+00:00", "2026-05-01T01:00:00+02:00"], 0),
    ],
)
def test_active_key_is_the_one_replaced_last(rotations: list[str], slot: int) -> None:
    assert active_key_slot(rotations) == slot


@pytest.mark.parametrize("days", [1, 7, 30, 45])
def test_the_key_being_replaced_is_never_the_one_the_worker_holds(days: int) -> None:
    # GIVEN the two schedules as first deployed: key b's starts `days` after key a's
    base = datetime(2026, 1, 1, tzinfo=UTC)
    rotations = [base + timedelta(days=2 * days), base + timedelta(days=3 * days)]
    created = [base, base]
    for _ in range(12):
        due = min(range(2), key=lambda i: rotations[i])
        held = active_key_slot([r.isoformat() for r in rotations])
        # THEN the due key is not the one in use, and the one in use stays valid
        assert held != due
        assert rotations[held] > rotations[due]
        # WHEN the due key is replaced at its rotation time
        now = rotations[due]
        rotations[due] = now + timedelta(days=2 * days)
        created[due] = now
        # THEN the Worker moves to the new key, and no key outlives two periods + one
        assert active_key_slot([r.isoformat() for r in rotations]) == due
        assert all(now - c <= timedelta(days=3 * days) for c in created)


def test_rate_limiter_binding_follows_the_arg_and_counts_per_minute(run: Any) -> None:
    rec, _ = build(run, rate_limit_per_minute=5)
    [limiter] = [b for b in rec.one(SCRIPT).inputs["bindings"] if b["type"] == "ratelimit"]
    assert limiter == {
        "name": "EMAIL_RATE_LIMITER",
        "type": "ratelimit",
        "namespaceId": rate_limit_namespace_id("serverless-mail-dev-worker"),
        "simple": {"limit": 5, "period": 60},
    }
    # The Worker's Retry-After assumes the same period.
    config_js = (WORKER_DIR / "src" / "config.js").read_text()
    assert "export const RATE_LIMIT_PERIOD_SECONDS = 60;" in config_js


def test_rate_limiter_namespace_is_an_integer_per_script() -> None:
    ids = {rate_limit_namespace_id(f"serverless-mail-{stage}-worker") for stage in ("dev", "prod")}
    assert len(ids) == 2
    for value in ids:
        assert value.isdigit() and int(value) >= 1000
    assert rate_limit_namespace_id("x") == rate_limit_namespace_id("x")


def test_previous_token_is_bound_as_a_secret_only_when_given(run: Any) -> None:
    rec, _ = build(run)
    names = [b["name"] for b in rec.one(SCRIPT).inputs["bindings"]]
    assert "EMAIL_WORKER_TOKEN_PREVIOUS" not in names

    previous = "Old0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"
    rec, _ = build(run, previous_worker_token=previous)
    bindings = rec.one(SCRIPT).inputs["bindings"]
    assert bindings[-1] == {
        "name": "EMAIL_WORKER_TOKEN_PREVIOUS",
        "type": "secret_text",
        "text": Secret(previous),
    }
    assert [b["name"] for b in bindings[:-1]] == names


def test_previous_token_given_as_a_secret_output_stays_secret(run: Any) -> None:
    previous = "Old0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"
    rec, _ = build(run, previous_worker_token=pulumi.Output.secret(previous))
    assert rec.one(SCRIPT).inputs["bindings"][-1]["text"] == Secret(previous)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"rate_limit_per_minute": 0}, r"`rate_limit_per_minute` must be between 1 and 100000"),
        (
            {"rate_limit_per_minute": 100_001},
            r"`rate_limit_per_minute` must be between 1 and 100000, but 100001",
        ),
        (
            {"rate_limit_per_minute": "600"},
            r"`rate_limit_per_minute` must be a whole number between 1 and 100000, but '600'",
        ),
        ({"previous_worker_token": ""}, r"`previous_worker_token` must be the token being"),
        ({"previous_worker_token": "short"}, r"32 to 256 printable ASCII .* but 5 characters"),
        (
            {"previous_worker_token": "x" * 40 + " " + "y"},
            r"`previous_worker_token` must be the token being rotated out",
        ),
    ],
)
def test_api_guard_args_are_checked_before_any_child_exists(
    settings: dict[str, Any], message: str, run: Any
) -> None:
    errors: list[ConfigError] = []

    def program() -> None:
        domain = EmailDomain("mail", DOMAIN_ARGS)
        try:
            WorkerSender("worker", WorkerSenderArgs(domain=domain, **{**REQUIRED, **settings}))
        except ConfigError as error:
            errors.append(error)

    rec = run(program)
    assert len(errors) == 1
    with pytest.raises(ConfigError, match=message):
        raise errors[0]
    assert [r.name for r in rec.resources if r.parent_name == "worker"] == []


def test_worker_token_keeps_the_deployed_token_through_its_rename(run: Any) -> None:
    rec, _ = build(run)
    token = rec.one(PASSWORD)
    assert token.name == "worker-worker-token"
    assert token.options["aliases"] == ["worker-enqueue-token"]


class TestDeadLetterForwarding:
    """With ``dead_letter_target``, the Worker consumes its DLQ queue and forwards each
    letter to the EmailQueue's SQS DLQ: one consumer, one parked queue, two bindings and
    one policy more, each with exact inputs."""

    def test_adds_exactly_a_consumer_a_parked_queue_and_a_policy(self, run: Any) -> None:
        rec, _ = build(run, target=EmailQueueArgs())
        assert type_counts(rec) == {
            **BASE_CHILDREN,
            SUBDOMAIN: 1,
            QUEUE: 3,
            CONSUMER: 2,
            USER_POLICY: 2,
        }

    def test_dlq_consumer_uses_api_names_and_units_and_parks_what_exhausts_retries(
        self, run: Any
    ) -> None:
        rec, _ = build(run, target=EmailQueueArgs())
        assert rec.named("worker-dlq-parked").inputs == {
            "accountId": ACCOUNT_ID,
            "queueName": "serverless-mail-dev-worker-dlq-parked",
        }
        assert rec.named("worker-dlq-consumer").inputs == {
            "accountId": ACCOUNT_ID,
            "queueId": rec.named("worker-dlq").outputs["queueId"],
            "scriptName": "serverless-mail-dev-worker",
            "type": "worker",
            "deadLetterQueue": "serverless-mail-dev-worker-dlq-parked",
            "settings": {
                "batchSize": 10,
                "maxWaitTimeMs": 5000,
                "maxRetries": 100,
                "retryDelay": 3600,
                "maxConcurrency": 1,
            },
        }

    def test_the_forwarder_re_enqueues_long_before_max_retries(self) -> None:
        # dead-letters.js re-enqueues after REQUEUE_AFTER_ATTEMPTS failed deliveries; it
        # must stay below the consumer's max_retries or Cloudflare parks the letter first.
        source = (WORKER_DIR / "src" / "dead-letters.js").read_text()
        match = re.search(r"REQUEUE_AFTER_ATTEMPTS = (\d+);", source)
        assert match is not None
        assert 1 <= int(match.group(1)) < DEAD_LETTER_CONSUMER_SETTINGS["max_retries"] // 2

    def test_binds_the_dlq_queue_name_and_the_sqs_dlq_url(self, run: Any) -> None:
        rec, captured = build(run, target=EmailQueueArgs())
        assert rec.one(SCRIPT).inputs["bindings"][-2:] == [
            {
                "name": "EMAIL_DLQ_NAME",
                "type": "plain_text",
                "text": "serverless-mail-dev-worker-dlq",
            },
            {
                "name": "EMAIL_DEAD_LETTER_QUEUE_URL",
                "type": "plain_text",
                "text": captured["sqs_dlq_url"],
            },
        ]
        assert captured["sqs_dlq_url"].startswith("https://sqs.")

    def test_user_may_only_send_to_the_sqs_dlq(self, run: Any) -> None:
        rec, captured = build(run, target=EmailQueueArgs())
        policy = rec.named("worker-forward-dead-letters").inputs
        assert policy["user"] == "serverless-mail-dev-worker"
        [statement] = json.loads(policy["policy"])["Statement"]
        assert statement == {
            "Sid": statement["Sid"],
            "Effect": "Allow",
            "Action": ["sqs:SendMessage"],
            "Resource": captured["sqs_dlq_arn"],
        }
        assert statement["Sid"].startswith("SendDeadLetters")
        assert ":email-dlq" in captured["sqs_dlq_arn"]

    def test_a_kms_encrypted_dlq_adds_exactly_the_key_use_a_sender_needs(self, run: Any) -> None:
        key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        rec, captured = build(run, target=EmailQueueArgs(kms_key_arn=key))
        statements = json.loads(rec.named("worker-forward-dead-letters").inputs["policy"])
        assert [(s["Action"], s["Resource"]) for s in statements["Statement"]] == [
            (["sqs:SendMessage"], captured["sqs_dlq_arn"]),
            (["kms:GenerateDataKey", "kms:Decrypt"], key),
        ]

    def test_without_a_target_nothing_consumes_the_dlq_queue(self, run: Any) -> None:
        rec, _ = build(run)
        assert [c.name for c in rec.of_type(CONSUMER)] == ["worker-consumer"]
        assert [p.name for p in rec.of_type(USER_POLICY)] == ["worker-send-email"]

    def test_a_target_that_is_not_an_email_queue_is_refused(self, run: Any) -> None:
        with pytest.raises(
            ConfigError,
            match=r"^`dead_letter_target` must be an EmailQueue component or None, but str "
            r"was provided$",
        ):
            build(run, dead_letter_target="https://sqs.eu-west-1.amazonaws.com/1/dlq")

    @pytest.mark.parametrize(
        ("script", "parked"),
        [
            ("app-prod-mail", "app-prod-mail-dlq-parked"),
            ("a" * 63, "a" * 52 + "-dlq-parked"),
            ("x" * 51 + "-yy", "x" * 51 + "-dlq-parked"),  # no '--' where the stem is cut
        ],
    )
    def test_parked_queue_name_stays_a_63_character_queue_name(
        self, script: str, parked: str
    ) -> None:
        assert parked_queue_name(script) == parked
        assert len(parked) <= 63


@pytest.mark.parametrize(
    ("max_concurrency", "max_send_rate", "concurrency", "per_invocation"),
    [
        (5, 14.0, 5, "2.8"),  # a new production account's 14/s, the default concurrency
        (5, 1.0, 1, "1"),  # the sandbox's 1/s: one invocation at 1/s
        (5, 0.5, 1, "0.5"),
        (5, 2.5, 2, "1.25"),
        (5, 10 / 3, 3, "1.111"),  # rounded down, so 3 invocations stay under 10/3
        (250, 100.0, 100, "1"),
        (3, 50, 3, "16.666"),
    ],
)
def test_send_rate_bounds_the_consumer_and_paces_each_invocation(
    run: Any, max_concurrency: int, max_send_rate: float, concurrency: int, per_invocation: str
) -> None:
    # GIVEN the path's share of the SES rate WHEN planned THEN the consumer runs at most
    # `concurrency` invocations, each told its share: together at most the path's rate.
    rec, _ = build(run, max_concurrency=max_concurrency, max_send_rate=max_send_rate)
    assert rec.one(CONSUMER).inputs["settings"]["maxConcurrency"] == concurrency
    rate = [b for b in rec.one(SCRIPT).inputs["bindings"] if b["name"] == "EMAIL_MAX_SEND_RATE"]
    assert rate == [{"name": "EMAIL_MAX_SEND_RATE", "type": "plain_text", "text": per_invocation}]
    assert float(per_invocation) * concurrency <= max_send_rate


def test_without_a_send_rate_there_is_no_pacing_binding_and_concurrency_is_as_set(
    run: Any,
) -> None:
    rec, _ = build(run, max_concurrency=7)
    assert rec.one(CONSUMER).inputs["settings"]["maxConcurrency"] == 7
    names = [b["name"] for b in rec.one(SCRIPT).inputs["bindings"]]
    assert "EMAIL_MAX_SEND_RATE" not in names


def test_max_retries_reaches_the_worker_so_it_dead_letters_the_last_delivery_itself(
    run: Any,
) -> None:
    rec, _ = build(run, max_retries=2)
    bindings = rec.one(SCRIPT).inputs["bindings"]
    assert {"name": "EMAIL_MAX_RETRIES", "type": "plain_text", "text": "2"} in bindings
    assert rec.one(CONSUMER).inputs["settings"]["maxRetries"] == 2


def test_script_creates_the_duplicate_guards_sqlite_durable_object_class(run: Any) -> None:
    rec, _ = build(run)
    script = rec.one(SCRIPT).inputs
    assert script["migrations"] == {"newTag": "v1", "newSqliteClasses": ["MessageIdGuard"]}
    guard = [b for b in script["bindings"] if b["type"] == "durable_object_namespace"]
    # Bound to a class of this script (no scriptName), the class the bundle exports.
    assert guard == [
        {
            "name": "EMAIL_ID_GUARD",
            "type": "durable_object_namespace",
            "className": "MessageIdGuard",
        }
    ]
    assert re.search(r"export\{[^}]*\bas MessageIdGuard\b", script["content"])


def test_each_path_has_its_own_guard_the_worker_cannot_reach_the_idempotency_table(
    run: Any,
) -> None:
    # README, "Delivery guarantees": the Worker's guard is its Durable Object; its IAM
    # user is granted nothing on DynamoDB, so the Lambda's idempotency records are out of
    # its reach and an id enqueued on both paths is sent by each. Keep an id on one path.
    rec, _ = build(run, target=EmailQueueArgs())
    actions = [
        action
        for policy in rec.of_type(USER_POLICY)
        for statement in json.loads(policy.inputs["policy"])["Statement"]
        for action in (
            [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        )
    ]
    assert len(rec.of_type(USER_POLICY)) == 2
    assert actions and not [a for a in actions if a.lower().startswith("dynamodb:")]
    bindings = rec.one(SCRIPT).inputs["bindings"]
    assert [b["name"] for b in bindings if b["type"] == "durable_object_namespace"] == [
        "EMAIL_ID_GUARD"
    ]


def test_a_stage_leaving_the_worker_under_the_pacing_floor_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the sandbox's 1 recipient/s with 5% of it for the Worker (0.05/s, too slow for
    # a 50-recipient message inside one consumer invocation) WHEN planned THEN exit 2.
    from serverless_mail.cli import main

    from tests.unit.test_config_contract import base_stage, set_key

    for name in ("Pulumi.yaml", "__main__.py"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    config = base_stage()
    set_key(config, "serverless-mail:ses.maxSendRate", 1)
    set_key(config, "serverless-mail:ses.workerShare", 0.05)
    (tmp_path / "Pulumi.slow.yaml").write_text(json.dumps({"config": config}))

    code = main(["plan", "--stack", "slow", "--dir", str(tmp_path)])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert err[0].startswith(
        "serverless-mail: error: `serverless-mail:ses.maxSendRate` must be at least 0.1 "
        "recipients per second for the Worker path (its share of the account's SES maximum "
        "send rate: in a stage, the send rate times the Worker's share), but 0.05 was provided"
    )
