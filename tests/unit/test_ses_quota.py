"""The shared SES send rate: one `ses` section, split between the paths (issue 11).

Through the stage file and the real ``__main__.py`` (the offline plan), as a user sets it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from serverless_mail import EmailDomainArgs, SesQuotaSettings, TransactionalEmailArgs
from serverless_mail.cli import main
from serverless_mail.errors import ConfigError

from tests.conftest import ROOT

EMAIL = EmailDomainArgs(
    domain="mail.example.com",
    zone_id="00112233445566778899aabbccddeeff",
    zone_name="example.com",
    region="eu-west-1",
)
ACCOUNT = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("project")
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, folder / name)
    return folder


def plan(project: Path, capsys: Any, **sections: dict[str, Any]) -> tuple[int, Any, str]:
    config = dict(yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"])
    for section, values in sections.items():
        node = config.setdefault(f"serverless-mail:{section}", {})
        node.update(values)
    (project / "Pulumi.rate.yaml").write_text(yaml.safe_dump({"config": config}))
    code = main(["plan", "--stack", "rate", "--dir", str(project), "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 else None, err


def lambda_env(result: dict[str, Any]) -> dict[str, str]:
    [function] = [r for r in result["resources"] if r["name"] == "mail-lambda-function"]
    return dict(function["inputs"]["environment"]["variables"])


class TestSplit:
    def test_both_paths_on_share_the_rate_by_worker_share(self) -> None:
        args = TransactionalEmailArgs(
            email=EMAIL,
            account_id=ACCOUNT,
            ses=SesQuotaSettings(max_send_rate=20, worker_share=0.25),
        )
        assert args.send_rates == (15.0, 5.0)

    def test_a_path_that_is_off_gets_nothing_and_the_other_everything(self) -> None:
        ses = SesQuotaSettings(max_send_rate=14, worker_share=0.25)
        assert TransactionalEmailArgs(email=EMAIL, worker_sender=None, ses=ses).send_rates == (
            14.0,
            None,
        )
        assert TransactionalEmailArgs(
            email=EMAIL, account_id=ACCOUNT, lambda_sender=None, ses=ses
        ).send_rates == (None, 14.0)

    def test_a_mapping_is_accepted_for_ses(self) -> None:
        args = TransactionalEmailArgs(email=EMAIL, worker_sender=None, ses={"max_send_rate": 3})
        assert args.ses == SesQuotaSettings(max_send_rate=3)


class TestStageFile:
    def test_each_lambda_instance_gets_its_share_of_the_lambda_path(
        self, project: Path, capsys: Any
    ) -> None:
        code, result, err = plan(
            project,
            capsys,
            ses={"maxSendRate": 14, "workerShare": 0.5},
            **{"lambda": {"maximumConcurrency": 4}},
        )
        assert code == 0, err
        assert lambda_env(result)["EMAIL_MAX_SEND_RATE"] == "1.75"

    def test_with_the_worker_off_the_lambda_path_gets_the_whole_rate(
        self, project: Path, capsys: Any
    ) -> None:
        code, result, err = plan(
            project,
            capsys,
            ses={"maxSendRate": 14, "workerShare": 0.5},
            worker={"enabled": False},
            vercel={"enabled": False},
        )
        assert code == 0, err
        assert lambda_env(result)["EMAIL_MAX_SEND_RATE"] == "7"  # 14 / 2 instances

    @pytest.mark.parametrize(
        ("share", "path"), [(0, "serverless-mail:worker"), (1, "serverless-mail:lambda")]
    )
    def test_a_path_that_is_on_without_a_share_is_refused(
        self, project: Path, capsys: Any, share: float, path: str
    ) -> None:
        code, _, err = plan(project, capsys, ses={"workerShare": share})
        assert code == 2
        [line] = err.strip().splitlines()
        assert f"`serverless-mail:ses.workerShare` is {share} while `{path}` is on" in line

    def test_a_lambda_share_too_small_for_one_full_message_is_refused_naming_the_keys(
        self, project: Path, capsys: Any
    ) -> None:
        code, _, err = plan(
            project,
            capsys,
            ses={"maxSendRate": 1, "workerShare": 0.5},
            **{"lambda": {"maximumConcurrency": 10}},
        )
        assert code == 2
        [line] = err.strip().splitlines()
        for key in ("ses.maxSendRate", "ses.workerShare", "lambda.maximumConcurrency"):
            assert f"`serverless-mail:{key}`" in line, line
        assert "0.05 recipients/s" in line and "1000 s" in line


def test_python_api_refuses_the_same_with_argument_names() -> None:
    with pytest.raises(ConfigError, match=r"`ses.max_send_rate` \(1\) x \(1 - `ses.worker_share`"):
        TransactionalEmailArgs(
            email=EMAIL,
            account_id=ACCOUNT,
            ses=SesQuotaSettings(max_send_rate=1),
            lambda_sender={"maximum_concurrency": 10},
        ).validate()
