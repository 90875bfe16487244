"""The config contract: every key of the stage config, through the path `pulumi up` takes.

For each row of ``CONFIG_KEYS`` a stage file (the shipped dev stage with that one key
changed to a valid, non-default value) goes through the real ``__main__.py`` in the
offline plan (``serverless-mail plan --json``), and the test asserts the value arrived
in the planned resource input it controls. Then one invalid value per key must exit 2
with one line naming the key. A key added to the table without a case here fails
``test_every_key_has_a_contract_case``.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from serverless_mail.cli import main
from serverless_mail.config import CONFIG_KEYS, NAMESPACE

from tests.conftest import ROOT

# --- the plan as the tests read it ----------------------------------------------------


class Plan:
    """One offline plan's JSON, with look-ups by logical name."""

    def __init__(self, result: dict[str, Any]) -> None:
        self.result = result
        self.by_name = {r["name"]: r for r in result["resources"]}

    def exists(self, name: str) -> bool:
        return name in self.by_name

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [r for r in self.result["resources"] if r["type"] == type_]

    def input(self, name: str, path: str) -> Any:
        value: Any = self.by_name[name]["inputs"]
        for part in path.split("."):
            value = value[int(part)] if isinstance(value, list) else value[part]
        return value

    def json_input(self, name: str, path: str) -> Any:
        return json.loads(self.input(name, path))

    def env(self, variable: str) -> str:
        return str(self.input("mail-lambda-function", f"environment.variables.{variable}"))

    def consumer(self, setting: str) -> Any:
        return self.input("mail-worker-consumer", f"settings.{setting}")

    def events_env(self, variable: str) -> str:
        return str(self.input("mail-events-function", f"environment.variables.{variable}"))

    def alarm(self, name: str, path: str = "threshold") -> Any:
        return self.input(f"mail-alarms-{name}", path)

    def events_alarm(self, name: str, path: str = "threshold") -> Any:
        return self.input(f"mail-events-{name}", path)

    def dmarc(self) -> str:
        return str(self.input("mail-domain-dmarc", "content"))

    def output(self, key: str) -> Any:
        return self.result["outputs"][key]

    def options(self, name: str) -> dict[str, Any]:
        return dict(self.result["resource_options"].get(name, {}))

    def vercel_variables(self) -> list[dict[str, Any]]:
        return [
            r["inputs"]
            for r in self.result["resources"]
            if r["type"] == "vercel:index/projectEnvironmentVariable:ProjectEnvironmentVariable"
        ]


def worker_binding(plan: Plan, name: str) -> Any:
    """The text of the planned Worker script's binding ``name``."""
    bindings = plan.input("mail-worker-script", "bindings")
    return next(b.get("text") for b in bindings if b["name"] == name)


def base_stage() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"])


def set_key(config: dict[str, Any], key: str, value: Any) -> None:
    """Set ``serverless-mail:lambda.memoryMb`` (or ``aws:region``) in a stage config."""
    if key.startswith("aws:"):
        config[key] = value
        return
    section, _, path = key.removeprefix(f"{NAMESPACE}:").partition(".")
    node = config.setdefault(f"{NAMESPACE}:{section}", {})
    *parents, leaf = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder holding the repository's own Pulumi.yaml and __main__.py."""
    folder = tmp_path_factory.mktemp("project")
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, folder / name)
    return folder


def run_plan(project: Path, config: dict[str, Any], capsys: Any) -> tuple[int, str, str]:
    (project / "Pulumi.contract.yaml").write_text(yaml.safe_dump({"config": config}))
    code = main(["plan", "--stack", "contract", "--dir", str(project), "--json"])
    out, err = capsys.readouterr()
    return code, out, err


# --- one case per key -----------------------------------------------------------------

KMS_KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
PROVIDER_ARN = "arn:aws:iam::123456789012:oidc-provider/oidc.vercel.com/example-team"


@dataclass(frozen=True)
class Case:
    key: str
    """The key without the namespace: ``lambda.memoryMb`` (or ``aws:region``)."""
    value: Any
    """A valid value that differs from the default and from the dev stage's."""
    arrived: Callable[[Plan], bool]
    """Whether the value reached the planned input it controls."""
    also: dict[str, Any] = field(default_factory=dict)
    """Other keys the value needs (``batchSize`` above 10 needs a window)."""

    @property
    def full_key(self) -> str:
        return self.key if self.key.startswith("aws:") else f"{NAMESPACE}:{self.key}"


CASES = [
    Case(
        "aws:region",
        "ap-southeast-3",
        # ap-southeast-3 signs with a region-specific DKIM domain.
        lambda p: (
            p.input("mail-domain-mail-from-mx", "content")
            == "feedback-smtp.ap-southeast-3.amazonses.com"
            and str(p.input("mail-domain-dkim-1", "content")).endswith(
                ".dkim.ap-southeast-3.amazonses.com"
            )
        ),
    ),
    Case(
        "cloudflare.accountId",
        "fedcba9876543210fedcba9876543210",
        lambda p: (
            p.input("mail-worker-queue", "accountId") == "fedcba9876543210fedcba9876543210"
            and p.input("mail-worker-consumer", "accountId") == "fedcba9876543210fedcba9876543210"
        ),
    ),
    Case(
        "cloudflare.zoneId",
        "ffffeeeeddddccccbbbbaaaa99998888",
        lambda p: (
            {p.input(n, "zoneId") for n in p.by_name if n.startswith("mail-domain-dkim")}
            == {"ffffeeeeddddccccbbbbaaaa99998888"}
        ),
    ),
    Case(
        # The zone name reaches no resource: it is what the domain (and the Worker's
        # custom domain) must be in. The plan runs with both moved into the new zone.
        "cloudflare.zoneName",
        "example.org",
        lambda p: p.input("mail-domain-identity", "emailIdentity") == "dev-mail.example.org",
        also={
            "email.domain": "dev-mail.example.org",
            "email.defaultFrom": "no-reply@dev-mail.example.org",
        },
    ),
    Case(
        "email.domain",
        "mail.example.com",
        lambda p: (
            p.input("mail-domain-identity", "emailIdentity") == "mail.example.com"
            and p.input("mail-domain-dmarc", "name") == "_dmarc.mail.example.com"
        ),
        also={"email.defaultFrom": "no-reply@mail.example.com"},
    ),
    Case(
        "email.defaultFrom",
        "Alerts <alerts@dev-mail.example.com>",
        lambda p: p.env("EMAIL_DEFAULT_FROM") == "Alerts <alerts@dev-mail.example.com>",
    ),
    Case(
        "email.mailFromSubdomain",
        "mx1",
        lambda p: p.input("mail-domain-mail-from", "mailFromDomain") == "mx1.dev-mail.example.com",
    ),
    Case(
        "email.mailFromBehaviorOnMxFailure",
        "REJECT_MESSAGE",
        lambda p: p.input("mail-domain-mail-from", "behaviorOnMxFailure") == "REJECT_MESSAGE",
    ),
    Case("email.dnsTtl", 600, lambda p: p.input("mail-domain-dmarc", "ttl") == 600),
    Case(
        "email.waitForVerification",
        True,
        lambda p: p.input("mail-domain-verification", "domain") == "dev-mail.example.com",
    ),
    Case(
        "email.verificationTimeoutMinutes",
        42,
        lambda p: p.options("mail-domain-verification")["customTimeouts"]["create"] == "42m",
        also={"email.waitForVerification": True},
    ),
    Case(
        "email.configurationSetName",
        "shop-dev",
        lambda p: (
            p.input("mail-domain-config", "configurationSetName") == "shop-dev"
            and p.env("EMAIL_CONFIGURATION_SET") == "shop-dev"
        ),
    ),
    Case("email.dmarc.policy", "reject", lambda p: "; p=reject;" in p.dmarc()),
    Case("email.dmarc.subdomainPolicy", "reject", lambda p: "; sp=reject;" in p.dmarc()),
    Case("email.dmarc.percent", 25, lambda p: "; pct=25;" in p.dmarc()),
    Case(
        "email.dmarc.aggregateReportAddresses",
        ["dmarc@example.com", "dmarc@reports.example.net"],
        lambda p: "; rua=mailto:dmarc@example.com,mailto:dmarc@reports.example.net;" in p.dmarc(),
    ),
    Case("email.dmarc.dkimAlignment", "s", lambda p: "; adkim=s;" in p.dmarc()),
    Case("email.dmarc.spfAlignment", "s", lambda p: p.dmarc().endswith('; aspf=s"')),
    Case(
        "email.dmarc.publish",
        False,
        lambda p: (
            not p.exists("mail-domain-dmarc")
            and all(not r["name"].startswith("_dmarc.") for r in p.result["dns_records"])
        ),
    ),
    Case(
        "email.dmarc.adoptRecordId",
        "0123456789abcdef0123456789abcdef",
        lambda p: (
            p.options("mail-domain-dmarc")["importId"]
            == "00112233445566778899aabbccddeeff/0123456789abcdef0123456789abcdef"
        ),
    ),
    Case(
        "queue.maxReceiveCount",
        7,
        lambda p: p.json_input("mail-queue-queue", "redrivePolicy")["maxReceiveCount"] == 7,
    ),
    Case(
        "queue.messageRetentionSeconds",
        86400,
        lambda p: p.input("mail-queue-queue", "messageRetentionSeconds") == 86400,
    ),
    Case(
        "queue.visibilityTimeoutSeconds",
        900,
        lambda p: p.input("mail-queue-queue", "visibilityTimeoutSeconds") == 900,
    ),
    Case(
        "queue.kmsKeyArn",
        KMS_KEY,
        lambda p: (
            p.input("mail-queue-queue", "kmsMasterKeyId") == KMS_KEY
            and p.input("mail-queue-dlq", "kmsMasterKeyId") == KMS_KEY
        ),
    ),
    Case(
        "queue.alarmEmail",
        "ops@example.com",
        lambda p: p.input("mail-queue-alarms-email", "endpoint") == "ops@example.com",
    ),
    Case(
        "lambda.enabled",
        False,
        lambda p: (
            not any(n.startswith("mail-lambda") for n in p.by_name)
            and "lambda_function_name" not in p.result["outputs"]
            and p.exists("mail-queue-queue")
        ),
    ),
    Case("lambda.timeoutSeconds", 60, lambda p: p.input("mail-lambda-function", "timeout") == 60),
    Case("lambda.memoryMb", 1024, lambda p: p.input("mail-lambda-function", "memorySize") == 1024),
    Case(
        "lambda.batchSize",
        50,
        lambda p: p.input("mail-lambda-queue-events", "batchSize") == 50,
        also={"lambda.batchingWindowSeconds": 2},
    ),
    Case(
        "lambda.batchingWindowSeconds",
        3,
        lambda p: (
            p.input("mail-lambda-queue-events", "maximumBatchingWindowInSeconds") == 3
            # The queue's visibility timeout follows the window (6 x 30 + 3).
            and p.input("mail-queue-queue", "visibilityTimeoutSeconds") == 183
        ),
    ),
    Case(
        "lambda.maximumConcurrency",
        7,
        lambda p: p.input("mail-lambda-queue-events", "scalingConfig.maximumConcurrency") == 7,
    ),
    Case(
        "lambda.reservedConcurrency",
        30,
        lambda p: p.input("mail-lambda-function", "reservedConcurrentExecutions") == 30,
    ),
    Case("lambda.sendConcurrency", 4, lambda p: p.env("EMAIL_SEND_CONCURRENCY") == "4"),
    Case(
        "lambda.logRetentionDays",
        60,
        lambda p: p.input("mail-lambda-logs", "retentionInDays") == 60,
    ),
    Case(
        "lambda.pointInTimeRecovery",
        False,
        lambda p: p.input("mail-lambda-idempotency", "pointInTimeRecovery.enabled") is False,
    ),
    Case(
        "lambda.architecture",
        "x86_64",
        lambda p: (
            p.input("mail-lambda-function", "architectures") == ["x86_64"]
            and str(p.input("mail-lambda-function", "layers.0")).endswith(":27")
            and "x86_64" in str(p.input("mail-lambda-function", "layers.0"))
        ),
    ),
    Case("lambda.logLevel", "WARNING", lambda p: p.env("POWERTOOLS_LOG_LEVEL") == "WARNING"),
    Case(
        "worker.enabled",
        False,
        lambda p: (
            not any(n.startswith("mail-worker") for n in p.by_name)
            and "worker_url" not in p.result["outputs"]
            and {v["key"] for v in p.vercel_variables()}.isdisjoint(
                {"EMAIL_WORKER_URL", "EMAIL_WORKER_TOKEN"}
            )
        ),
    ),
    Case(
        "worker.scriptName",
        "mail-api-dev",
        lambda p: (
            p.input("mail-worker-script", "scriptName") == "mail-api-dev"
            and p.input("mail-worker-consumer", "scriptName") == "mail-api-dev"
        ),
    ),
    Case("worker.maxBatchSize", 25, lambda p: p.consumer("batchSize") == 25),
    Case("worker.maxBatchTimeoutSeconds", 9, lambda p: p.consumer("maxWaitTimeMs") == 9000),
    Case("worker.maxRetries", 7, lambda p: p.consumer("maxRetries") == 7),
    Case("worker.retryDelaySeconds", 45, lambda p: p.consumer("retryDelay") == 45),
    Case(
        "worker.customDomain",
        "mail-api.example.com",
        lambda p: (
            p.input("mail-worker-custom-domain", "hostname") == "mail-api.example.com"
            and p.input("mail-worker-custom-domain", "zoneId") == "00112233445566778899aabbccddeeff"
            and p.output("worker_url") == "https://mail-api.example.com"
        ),
    ),
    Case(
        "worker.workersDev",
        False,
        lambda p: not p.exists("mail-worker-workers-dev") and p.exists("mail-worker-custom-domain"),
        also={"worker.customDomain": "mail-api.example.com", "worker.workersDevSubdomain": None},
    ),
    Case(
        "worker.workersDevSubdomain",
        "acme",
        lambda p: (
            p.output("worker_url")
            == "https://serverless-mail-contract-mail-worker.acme.workers.dev"
        ),
        # Without a subdomain the Worker's URL is unknown, which Vercel cannot take.
        also={"vercel.enabled": False},
    ),
    Case(
        "worker.observability",
        False,
        lambda p: p.input("mail-worker-script", "observability.enabled") is False,
    ),
    Case(
        "worker.rateLimitPerMinute",
        120,
        lambda p: (
            [
                b["simple"]
                for b in p.input("mail-worker-script", "bindings")
                if b["name"] == "EMAIL_RATE_LIMITER"
            ]
            == [{"limit": 120, "period": 60}]
        ),
    ),
    Case(
        "worker.maxConcurrency",
        3,
        lambda p: p.consumer("maxConcurrency") == 3,
        # dev's sandbox quota leaves the Worker 0.3 recipients/s, one invocation; at
        # 14/s its 4.2 allow up to 4, so the setting is what limits it.
        also={"ses.maxSendRate": 14},
    ),
    Case(
        "worker.accessKeyRotationDays",
        20,
        # Two keys, each replaced every second period, half a period apart.
        lambda p: (
            p.input("mail-worker-key-rotation-a", "rotationDays") == 40
            and p.input("mail-worker-key-rotation-b", "rotationDays") == 40
        ),
    ),
    Case(
        "events.enabled",
        False,
        # The pipeline and SES's publishing to the topic go; the alarms every stage keeps
        # stay, and the plan still passes the pack (the test asserts exit 0).
        lambda p: (
            not any(n.startswith("mail-events") for n in p.by_name)
            and not p.exists("mail-domain-events-destination")
            and "events_queue_url" not in p.result["outputs"]
            and "history_table_name" not in p.result["outputs"]
            and {"bounce-rate-critical", "complaint-rate-critical", "send-queue-age"}
            <= {n.removeprefix("mail-alarms-") for n in p.by_name}
        ),
    ),
    Case(
        "events.webhookUrls",
        ["https://app.example.com/hooks/email", "https://audit.example.net/ses"],
        lambda p: (
            p.events_env("EMAIL_WEBHOOK_URLS")
            == '["https://app.example.com/hooks/email", "https://audit.example.net/ses"]'
            and p.exists("mail-events-webhook-secret")
        ),
        # A batch may call each endpoint once per message, one after another.
        also={"events.timeoutSeconds": 120},
    ),
    Case(
        "events.webhookTimeoutSeconds",
        10,
        lambda p: p.events_env("EMAIL_WEBHOOK_TIMEOUT_SECONDS") == "10",
    ),
    Case(
        "events.engagementEvents",
        True,
        lambda p: (
            {"OPEN", "CLICK"}
            <= set(p.input("mail-events-destination", "eventDestination.matchingEventTypes"))
        ),
    ),
    Case("events.historyTtlDays", 30, lambda p: p.events_env("EMAIL_HISTORY_TTL_DAYS") == "30"),
    Case(
        "events.pointInTimeRecovery",
        False,
        lambda p: p.input("mail-events-history", "pointInTimeRecovery.enabled") is False,
    ),
    Case("events.maxAttempts", 4, lambda p: p.events_env("EMAIL_EVENTS_MAX_ATTEMPTS") == "4"),
    Case(
        "events.retryBaseSeconds",
        10,
        lambda p: p.events_env("EMAIL_EVENTS_RETRY_BASE_SECONDS") == "10",
    ),
    Case(
        "events.retryMaxSeconds",
        600,
        lambda p: p.events_env("EMAIL_EVENTS_RETRY_MAX_SECONDS") == "600",
    ),
    Case(
        "events.messageRetentionSeconds",
        86400,
        lambda p: p.input("mail-events-queue", "messageRetentionSeconds") == 86400,
    ),
    Case("events.timeoutSeconds", 30, lambda p: p.input("mail-events-function", "timeout") == 30),
    Case("events.memoryMb", 512, lambda p: p.input("mail-events-function", "memorySize") == 512),
    Case("events.batchSize", 5, lambda p: p.input("mail-events-queue-events", "batchSize") == 5),
    Case(
        "events.maximumConcurrency",
        4,
        lambda p: p.input("mail-events-queue-events", "scalingConfig.maximumConcurrency") == 4,
    ),
    Case(
        "events.logRetentionDays",
        60,
        lambda p: p.input("mail-events-logs", "retentionInDays") == 60,
    ),
    Case(
        "events.architecture",
        "x86_64",
        lambda p: p.input("mail-events-function", "architectures") == ["x86_64"],
    ),
    Case("events.logLevel", "DEBUG", lambda p: p.events_env("POWERTOOLS_LOG_LEVEL") == "DEBUG"),
    Case("alarms.bounceRateWarning", 0.03, lambda p: p.alarm("bounce-rate-warning") == 0.03),
    Case("alarms.bounceRateCritical", 0.04, lambda p: p.alarm("bounce-rate-critical") == 0.04),
    Case(
        "alarms.complaintRateWarning",
        0.0003,
        lambda p: p.alarm("complaint-rate-warning") == 0.0003,
    ),
    Case(
        "alarms.complaintRateCritical",
        0.0008,
        lambda p: p.alarm("complaint-rate-critical") == 0.0008,
    ),
    Case(
        "alarms.reputationMinSends",
        500,
        lambda p: (
            p.alarm("bounce-rate-critical", "metricQueries.2.expression")
            == "IF(sends >= 500, rate, 0)"
        ),
    ),
    Case(
        "alarms.reputationPeriodSeconds",
        7200,
        lambda p: p.alarm("complaint-rate-critical", "metricQueries.0.metric.period") == 7200,
    ),
    Case("alarms.sendQueueAgeSeconds", 600, lambda p: p.alarm("send-queue-age") == 600),
    Case("events.eventsQueueAgeSeconds", 1800, lambda p: p.events_alarm("queue-age") == 1800),
    Case(
        "alarms.lambdaErrorsThreshold",
        3,
        lambda p: p.events_alarm("function-errors") == 3 and p.alarm("sender-function-errors") == 3,
    ),
    Case(
        "alarms.lambdaThrottlesThreshold",
        2,
        lambda p: (
            p.events_alarm("function-throttles") == 2 and p.alarm("sender-function-throttles") == 2
        ),
    ),
    Case(
        "alarms.dailyQuotaHeldThreshold",
        5,
        lambda p: (
            p.alarm("daily-quota-held") == 5
            and p.alarm("daily-quota-held", "metricName") == "DailyQuotaHeld"
            and p.alarm("daily-quota-held", "dimensions.service")
            == p.env("POWERTOOLS_SERVICE_NAME")
        ),
    ),
    Case(
        "alarms.alarmPeriodSeconds",
        120,
        lambda p: (
            p.events_alarm("function-errors", "period") == 120
            and p.alarm("send-queue-age", "period") == 120
            and p.alarm("daily-quota-held", "period") == 120
        ),
    ),
    # dev shares 1 recipient/s, 0.3 to the Worker, over 2 Lambda instances; the Worker's
    # share is split over its consumer's invocations (one per whole recipient/s, <= 5).
    Case(
        "ses.maxSendRate",
        20,
        lambda p: (
            p.env("EMAIL_MAX_SEND_RATE") == "7"
            and worker_binding(p, "EMAIL_MAX_SEND_RATE") == "1.2"
            and p.consumer("maxConcurrency") == 5
        ),
    ),
    Case(
        "ses.workerShare",
        0.2,
        lambda p: (
            p.env("EMAIL_MAX_SEND_RATE") == "0.4"
            and worker_binding(p, "EMAIL_MAX_SEND_RATE") == "0.2"
        ),
    ),
    Case(
        "vercel.enabled",
        False,
        lambda p: (
            not any(n.startswith("mail-vercel") for n in p.by_name)
            and "vercel_role_arn" not in p.result["outputs"]
        ),
    ),
    Case(
        "vercel.teamSlug",
        "acme",
        lambda p: p.input("mail-vercel-oidc", "url") == "https://oidc.vercel.com/acme",
    ),
    Case(
        "vercel.projectId",
        "prj_Other123",
        lambda p: {v["projectId"] for v in p.vercel_variables()} == {"prj_Other123"},
    ),
    Case(
        "vercel.projectName",
        "shop",
        lambda p: (
            "project:shop:environment:"
            in json.dumps(p.json_input("mail-vercel-role", "assumeRolePolicy"))
        ),
    ),
    Case(
        "vercel.teamId",
        "team_Other123",
        lambda p: {v["teamId"] for v in p.vercel_variables()} == {"team_Other123"},
    ),
    Case(
        "vercel.targets",
        ["preview"],
        lambda p: {tuple(v["targets"]) for v in p.vercel_variables()} == {("preview",)},
    ),
    Case(
        "vercel.oidc",
        False,
        lambda p: (
            not p.exists("mail-vercel-oidc")
            and any(
                r["type"] == "aws:iam/user:User" and r["name"].startswith("mail-vercel")
                for r in p.result["resources"]
            )
        ),
    ),
    Case(
        "vercel.accessKeyRotationDays",
        10,
        lambda p: p.input("mail-vercel-key-rotation-a", "rotationDays") == 20,
        also={"vercel.oidc": False},
    ),
    Case(
        "vercel.reuseAccountOidcProvider",
        True,
        lambda p: (
            not p.exists("mail-vercel-oidc")
            and p.json_input("mail-vercel-role", "assumeRolePolicy")["Statement"][0]["Principal"]
            == {"Federated": PROVIDER_ARN}
        ),
    ),
    Case(
        "vercel.oidcProviderArn",
        PROVIDER_ARN,
        lambda p: (
            not p.exists("mail-vercel-oidc")
            and p.json_input("mail-vercel-role", "assumeRolePolicy")["Statement"][0]["Principal"]
            == {"Federated": PROVIDER_ARN}
        ),
    ),
]

CASES_BY_KEY = {case.full_key: case for case in CASES}


def arrived(case: Case, plan: Plan) -> bool:
    """``case.arrived``, where a resource or input that does not exist means no."""
    try:
        return case.arrived(plan)
    except (KeyError, IndexError):
        return False


def test_every_key_has_a_contract_case() -> None:
    assert sorted(CASES_BY_KEY) == sorted(k.key for k in CONFIG_KEYS)
    assert len(CASES_BY_KEY) == len(CASES)


@pytest.mark.parametrize("key", [k.key for k in CONFIG_KEYS])
def test_a_non_default_value_reaches_the_planned_resource(
    key: str, project: Path, capsys: Any
) -> None:
    case = CASES_BY_KEY[key]
    config = base_stage()
    table_key = next(k for k in CONFIG_KEYS if k.key == key)
    if not table_key.required and not (table_key.default_text or "").startswith("required"):
        set_key(config, key, None)  # the base takes the default, whatever dev says
    assert case.value != table_key.default, "the contract value must not be the default"
    for other, value in case.also.items():
        set_key(config, other if other.startswith("aws:") else f"{NAMESPACE}:{other}", value)
    # GIVEN the plan without the change does not show the value (or, where the other
    # keys only make sense with it, such as a domain in the new zone, is refused)
    code, out, err = run_plan(project, config, capsys)
    if code == 0:
        assert not arrived(case, Plan(json.loads(out))), "the base stage already shows it"
    else:
        assert code == 2 and case.also, err
    # WHEN the key is set
    set_key(config, key, case.value)
    code, out, err = run_plan(project, config, capsys)
    # THEN the plan passes and the value is in the resource input it controls
    assert code == 0, err
    assert case.arrived(Plan(json.loads(out)))


@pytest.mark.parametrize("key", [k.key for k in CONFIG_KEYS])
def test_an_invalid_value_exits_2_with_one_line_naming_the_key(
    key: str, project: Path, capsys: Any
) -> None:
    table_key = next(k for k in CONFIG_KEYS if k.key == key)
    assert table_key.rule is not None, f"{key} has no rule"
    config = copy.deepcopy(base_stage())
    for other, value in CASES_BY_KEY[key].also.items():
        set_key(config, other if other.startswith("aws:") else f"{NAMESPACE}:{other}", value)
    set_key(config, key, table_key.rule.invalid_example())
    code, out, err = run_plan(project, config, capsys)
    assert code == 2, out
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("serverless-mail: error: ")
    assert f"`{key}`" in lines[0] or f"`{key}[" in lines[0], lines[0]


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize("lambda_on", [True, False])
def test_a_shipped_stage_without_the_events_pipeline_keeps_its_alarms_and_passes_the_pack(
    stack: str, lambda_on: bool, project: Path, capsys: Any
) -> None:
    # GIVEN a shipped stage with the events pipeline (and maybe the Lambda path) off
    config = dict(yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"])
    set_key(config, f"{NAMESPACE}:events.enabled", False)
    set_key(config, f"{NAMESPACE}:lambda.enabled", lambda_on)
    # WHEN it is planned
    code, out, err = run_plan(project, config, capsys)
    # THEN the pack passes with no violation at all
    assert code == 0, err
    plan = Plan(json.loads(out))
    assert plan.result["violations"] == []
    # AND nothing of the pipeline is planned, and SES publishes to no topic
    assert not [n for n in plan.by_name if n.startswith("mail-events")]
    assert not plan.of_type(
        "aws:sesv2/configurationSetEventDestination:ConfigurationSetEventDestination"
    )
    # AND the alarms every stage keeps are there, to the stack's alarm topic
    alarms = {n.removeprefix("mail-alarms-") for n in plan.by_name if n.startswith("mail-alarms-")}
    expected = {
        "bounce-rate-warning",
        "bounce-rate-critical",
        "complaint-rate-warning",
        "complaint-rate-critical",
        "send-queue-age",
        "dashboard",
    }
    sender = {
        "sender-function-errors",
        "sender-function-throttles",
        "daily-quota-held",
        "sending-paused",
    }
    assert alarms == (expected | sender if lambda_on else expected)
    assert plan.output("dashboard_name") == plan.input("mail-alarms-dashboard", "dashboardName")
