"""Errors, never tracebacks: every bad stage file is one line and exit 2, every bad
Python argument a ConfigError before the first child resource."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import serverless_mail as sm
import yaml
from serverless_mail import ConfigError
from serverless_mail.cli import main
from serverless_mail.config import CONFIG_KEYS, MOVED_KEYS, NAMESPACE
from serverless_mail.settings import (
    Bool,
    Choice,
    ChoiceList,
    EmailList,
    Int,
    field_docs,
    field_rule,
)

from tests.conftest import ROOT
from tests.unit.test_config_contract import base_stage, set_key


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("errors")
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, folder / name)
    return folder


def plan_text(project: Path, text: str, capsys: Any) -> tuple[int, str, str]:
    (project / "Pulumi.bad.yaml").write_text(text)
    code = main(["plan", "--stack", "bad", "--dir", str(project)])
    out, err = capsys.readouterr()
    return code, out, err


def plan_config(project: Path, config: dict[str, Any], capsys: Any) -> tuple[int, str, str]:
    return plan_text(project, yaml.safe_dump({"config": config}), capsys)


def assert_one_line(code: int, out: str, err: str, *fragments: str) -> str:
    assert code == 2, out[-500:]
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and lines[0].startswith("serverless-mail: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def mutate(edit: Any) -> dict[str, Any]:
    config = base_stage()
    edit(config)
    return config


SECTION = NAMESPACE + ":"

BAD_STAGES = [
    ("section given as a string", lambda c: c.update({SECTION + "lambda": "fast"}),
     ["`serverless-mail:lambda` must be an object", "str 'fast'"]),
    ("section given as a list", lambda c: c.update({SECTION + "worker": ["a"]}),
     ["`serverless-mail:worker` must be an object"]),
    ("section given as a number", lambda c: c.update({SECTION + "queue": 5}),
     ["`serverless-mail:queue` must be an object"]),
    ("nested object given as a string", lambda c: c[SECTION + "email"].update(dmarc="none"),
     ["`serverless-mail:email.dmarc` must be an object"]),
    ("misspelled section", lambda c: c.update({SECTION + "lamda": {"memoryMb": 512}}),
     ["`serverless-mail:lamda` is not a known section (did you mean `lambda`?)"]),
    ("unknown section", lambda c: c.update({SECTION + "billing": {"x": 1}}),
     ["`serverless-mail:billing` is not a known section; the sections are: cloudflare"]),
    ("misspelled key", lambda c: c[SECTION + "lambda"].update(memroyMb=512),
     ["`serverless-mail:lambda.memroyMb` is not a known key (did you mean `memoryMb`?)"]),
    ("snake_case key", lambda c: c[SECTION + "lambda"].update(memory_mb=512),
     ["`serverless-mail:lambda.memory_mb` is not a known key (did you mean `memoryMb`?)"]),
    ("misspelled nested key", lambda c: c[SECTION + "email"]["dmarc"].update(polcy="none"),
     ["`serverless-mail:email.dmarc.polcy` is not a known key (did you mean `policy`?)"]),
    ("key of another section", lambda c: c[SECTION + "worker"].update(memoryMb=512),
     ["`serverless-mail:worker.memoryMb` is not a known key"]),
    ("namespace with an underscore", lambda c: c.update({"serverless_mail:lambda": {}}),
     ["`serverless_mail:lambda` is in namespace `serverless_mail`",
      "did you mean `serverless-mail:lambda`?"]),
    ("namespace misspelled", lambda c: c.update({"serverles-mail:worker": {}}),
     ["namespace `serverles-mail`"]),
    ("namespace run together", lambda c: c.update({"serverlessmail:email": {}}),
     ["namespace `serverlessmail`"]),
    ("missing vercel.teamSlug", lambda c: c[SECTION + "vercel"].pop("teamSlug"),
     ["`serverless-mail:vercel.teamSlug` is required"]),
    ("missing email.domain", lambda c: c[SECTION + "email"].pop("domain"),
     ["`serverless-mail:email.domain` is required"]),
    ("missing cloudflare section", lambda c: c.pop(SECTION + "cloudflare"),
     ["`serverless-mail:cloudflare.zoneId` is required"]),
    ("missing aws:region", lambda c: c.pop("aws:region"), ["`aws:region` is required"]),
    ("custom domain outside the zone",
     lambda c: c[SECTION + "worker"].update(customDomain="mail.other.org"),
     ["`serverless-mail:worker.customDomain` must be in the zone",
      "`serverless-mail:cloudflare.zoneName`"]),
    ("maxReceiveCount above the pack's range", lambda c: c[SECTION + "queue"].update(
        maxReceiveCount=20), ["`serverless-mail:queue.maxReceiveCount` must be between 3 and 10"]),
    ("memoryMb too small", lambda c: c[SECTION + "lambda"].update(memoryMb=64),
     ["`serverless-mail:lambda.memoryMb` must be between 128 and 10240, but 64"]),
    ("architecture misspelled", lambda c: c[SECTION + "lambda"].update(architecture="arm"),
     ["`serverless-mail:lambda.architecture` must be one of 'arm64', 'x86_64', but 'arm'"]),
    ("vercel target misspelled", lambda c: c[SECTION + "vercel"].update(targets=["prod"]),
     ["`serverless-mail:vercel.targets[0]` must be one of 'production'"]),
    ("enabled as a string", lambda c: c[SECTION + "lambda"].update(enabled="no"),
     ["`serverless-mail:lambda.enabled` must be true or false"]),
    ("reserved below maximum concurrency",
     lambda c: c[SECTION + "lambda"].update(reservedConcurrency=1),
     ["`serverless-mail:lambda.reservedConcurrency` must be at least "
      "`serverless-mail:lambda.maximumConcurrency`"]),
    ("vercel on, worker URL unknown",
     lambda c: c[SECTION + "worker"].pop("workersDevSubdomain"),
     ["`serverless-mail:worker.workersDevSubdomain` (or "
      "`serverless-mail:worker.customDomain`) is required while `serverless-mail:vercel` is on"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("edit", "fragments"), [c[1:] for c in BAD_STAGES], ids=[c[0] for c in BAD_STAGES]
)
def test_bad_stage_exits_2_with_one_line(
    edit: Any, fragments: list[str], project: Path, capsys: Any
) -> None:
    assert_one_line(*plan_config(project, mutate(edit), capsys), *fragments)


@pytest.mark.parametrize("old", sorted(MOVED_KEYS))
def test_an_alarm_key_left_in_the_events_section_says_where_it_moved(
    old: str, project: Path, capsys: Any
) -> None:
    # GIVEN a 0.1.0 stage file with a threshold under `events`
    new = MOVED_KEYS[old]
    value = next(k for k in CONFIG_KEYS if k.key == f"{NAMESPACE}:{new}").default
    config = mutate(
        lambda c: c.setdefault(SECTION + "events", {}).update({old.split(".")[1]: value})
    )
    # THEN the plan stops in one line naming both keys
    assert_one_line(
        *plan_config(project, config, capsys),
        f"`{NAMESPACE}:{old}` moved to `{NAMESPACE}:{new}`",
    )


BAD_FILES = [
    ("yaml syntax", "config:\n  aws:region: [eu-west-1\n", ["Pulumi.bad.yaml is not valid YAML at line"]),
    ("tab indentation", "config:\n\taws:region: eu-west-1\n", ["Pulumi.bad.yaml is not valid YAML"]),
    ("not a mapping", "- a\n- b\n", ["Pulumi.bad.yaml: the stack file must be a mapping"]),
    ("config is a list", "config:\n  - a\n", ["Pulumi.bad.yaml: `config` must be a mapping"]),
    ("not UTF-8", "config:\n  aws:region: \udcff\n", ["cannot read Pulumi.bad.yaml"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "fragments"), [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES]
)
def test_malformed_stage_file_exits_2_with_one_line_naming_the_file(
    text: str, fragments: list[str], project: Path, capsys: Any
) -> None:
    (project / "Pulumi.bad.yaml").write_bytes(text.encode("utf-8", "surrogateescape"))
    code = main(["plan", "--stack", "bad", "--dir", str(project)])
    assert_one_line(code, *capsys.readouterr(), *fragments)


def wrong_types(rule: Any) -> list[Any]:
    """Values of the wrong YAML type for a rule: every one must be refused."""
    if isinstance(rule, Int):
        return ["512", 512.5, True, [1], {"a": 1}]
    if isinstance(rule, Bool):
        return ["true", 1, [], {"a": 1}]
    if isinstance(rule, (EmailList, ChoiceList)):
        return ["a@example.com", 5, {"a": 1}, [5]]
    if isinstance(rule, Choice) and rule.type_name == "integer":
        return ["30", True, [30], {"a": 1}]
    if rule.type_name == "number":
        return ["5", True, [5], {"a": 1}]
    return [5, True, ["x"], {"a": 1}]


CLASS_CASES = [(key.key, value) for key in CONFIG_KEYS for value in wrong_types(key.rule)]


@pytest.mark.parametrize(("key", "value"), CLASS_CASES, ids=[f"{k}={v!r}" for k, v in CLASS_CASES])
def test_every_key_refuses_every_wrong_type_with_one_line(
    key: str, value: Any, project: Path, capsys: Any
) -> None:
    config = base_stage()
    set_key(config, key, value)
    line = assert_one_line(*plan_config(project, config, capsys))
    assert f"`{key}" in line


# --- the Python API -------------------------------------------------------------------

ARGS_CLASSES = [getattr(sm, name) for name in sm.__all__ if name.endswith(("Args", "Settings"))]


@pytest.mark.parametrize("cls", ARGS_CLASSES, ids=lambda c: c.__name__)
def test_unknown_argument_is_a_config_error_with_a_suggestion(cls: type) -> None:
    import dataclasses

    first = dataclasses.fields(cls)[0].name
    typo = first[:-1] + first[-1].upper() + "x"
    with pytest.raises(ConfigError, match=rf"^`{typo}` is not an argument of `{cls.__name__}` "
                       rf"\(did you mean `{first}`\?\); its arguments are: "):  # fmt: skip
        cls(**{typo: 1})


@pytest.mark.parametrize("cls", ARGS_CLASSES, ids=lambda c: c.__name__)
def test_every_field_says_its_default_or_that_it_is_required(cls: type) -> None:
    import dataclasses

    docs = field_docs(cls)
    for f in dataclasses.fields(cls):
        required = f.default is f.default_factory is dataclasses.MISSING
        text = docs.get(f.name, "").rstrip()
        assert text.endswith("Required.") if required else "Default:" in text, f.name


# A token being rotated out is a secret Output, never a stage value: nothing to check.
RULELESS = {("WorkerSenderSettings", "previous_worker_token")}


@pytest.mark.parametrize(
    "cls", [c for c in ARGS_CLASSES if c.__name__.endswith("Settings")], ids=lambda c: c.__name__
)
def test_every_setting_carries_its_rule(cls: type) -> None:
    import dataclasses

    missing = {(cls.__name__, f.name) for f in dataclasses.fields(cls) if field_rule(f) is None}
    assert missing <= RULELESS


@pytest.mark.parametrize("cls", ARGS_CLASSES, ids=lambda c: c.__name__)
def test_positional_arguments_are_a_config_error(cls: type) -> None:
    with pytest.raises(ConfigError, match=rf"^`{cls.__name__}` takes keyword arguments only"):
        cls("x")


def test_a_missing_required_argument_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"^`email` is required by `TransactionalEmailArgs`"):
        sm.TransactionalEmailArgs()


def email() -> sm.EmailDomainArgs:
    return sm.EmailDomainArgs(
        domain="mail.example.com",
        zone_id="00112233445566778899aabbccddeeff",
        zone_name="example.com",
        region="eu-west-1",
    )


BAD_ARGUMENTS = [
    ({"lambda_sender": {"memroy_mb": 512}},
     r"^`lambda_sender.memroy_mb` is not an argument of `LambdaSenderSettings` "
     r"\(did you mean `lambda_sender.memory_mb`\?\)"),
    ({"lambda_sender": sm.LambdaSenderSettings(memory_mb=64)},
     r"^`lambda_sender.memory_mb` must be between 128 and 10240, but 64 was provided$"),
    ({"worker_sender": {"max_retries": "5"}},
     r"^`worker_sender.max_retries` must be a whole number between 0 and 100"),
    ({"worker_sender": "on"},
     r"^`worker_sender` must be a WorkerSenderSettings, a mapping of its fields or None"),
    ({"email": "mail.example.com"}, r"^`email` must be an EmailDomainArgs, but str"),
    ({"queue": {"max_receive_count": 5}}, r"^`queue` must be an EmailQueueArgs, but dict"),
    ({"default_from": "no-reply@elsewhere.org"},
     r"^`default_from` must be an address on 'mail.example.com'"),
    ({"account_id": None},
     r"^`account_id` \(the Cloudflare account\) is required while `worker_sender` is on"),
    ({"worker_sender": {"custom_domain": "api.other.org"}},
     r"^`worker_sender.custom_domain` must be in the zone `email.zone_name`"),
    ({"worker_sender": None,
      "vercel": {"team_slug": "acme", "project_id": "prj_1", "project_name": "shop",
                 "targets": ["prod"]}},
     r"^`vercel.targets\[0\]` must be one of 'production', 'preview', 'development'"),
    ({"vercel": {"team_slug": "acme", "project_id": "prj_1", "project_name": "shop"}},
     r"^`worker_sender.workers_dev_subdomain` \(or `worker_sender.custom_domain`\) is "
     r"required while `vercel` is on"),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "message"), BAD_ARGUMENTS, ids=[m for _, m in BAD_ARGUMENTS])
def test_bad_arguments_fail_before_the_first_child(
    changes: dict[str, Any], message: str, run: Any
) -> None:
    kwargs: dict[str, Any] = {
        "email": email(),
        "account_id": "0123456789abcdef0123456789abcdef",
        **changes,
    }

    def program() -> None:
        sm.TransactionalEmail("mail", sm.TransactionalEmailArgs(**kwargs))

    created: list[Any] = []
    with pytest.raises(ConfigError, match=message):
        created.append(run(program))
    assert created == []


def test_a_bad_argument_registers_nothing_but_the_component(run: Any) -> None:
    recorded: list[str] = []

    def program() -> None:
        args = sm.TransactionalEmailArgs(email=email(), worker_sender=None,
                                         lambda_sender={"memory_mb": 64})  # fmt: skip
        try:
            sm.TransactionalEmail("mail", args)
        except ConfigError as err:
            recorded.append(str(err))

    rec = run(program)
    assert recorded == [
        "`lambda_sender.memory_mb` must be between 128 and 10240, but 64 was provided"
    ]
    assert [r.type for r in rec.resources] == ["serverless-mail:index:TransactionalEmail"]


def test_config_error_prints_as_one_line_under_pulumi_up() -> None:
    import pulumi

    # The language host prints a RunError's message alone, without a stack trace.
    assert issubclass(ConfigError, pulumi.RunError) and issubclass(ConfigError, ValueError)


COMPONENTS = [
    (sm.EmailDomain, "EmailDomainArgs"),
    (sm.EmailQueue, "EmailQueueArgs"),
    (sm.LambdaSender, "LambdaSenderArgs"),
    (sm.WorkerSender, "WorkerSenderArgs"),
    (sm.VercelEnv, "VercelEnvArgs"),
    (sm.EmailEvents, "EmailEventsArgs"),
    (sm.EmailAlarms, "EmailAlarmsArgs"),
    (sm.TransactionalEmail, "TransactionalEmailArgs"),
]


@pytest.mark.parametrize(
    ("component", "args_name"), COMPONENTS, ids=lambda c: getattr(c, "__name__", c)
)
@pytest.mark.parametrize("given", [{"domain": "mail.example.com"}, "mail.example.com"])
def test_a_component_refuses_args_of_the_wrong_type(
    component: type, args_name: str, given: Any, run: Any
) -> None:
    def program() -> None:
        component("mail", given)

    with pytest.raises(
        ConfigError, match=rf"^`args` of {component.__name__} must be a {args_name}, but "
    ):
        run(program)
