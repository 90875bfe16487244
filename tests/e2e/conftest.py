"""The sandbox as a user starts it: ``serverless-mail sandbox`` in a subprocess.

Each test gets a running sandbox of a project (the repository, or a modified copy of
it), the variables it printed for an app, and helpers to send through both paths;
every process is stopped, and checked gone, when the test ends.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
START_DEADLINE_SECONDS = 180
"""Generous: the plan, moto and workerd start on 2 shared cores."""


@dataclass
class Running:
    """A started sandbox: its process, its printed variables and its output so far."""

    proc: subprocess.Popen[str]
    env: dict[str, str]
    output: list[str] = field(default_factory=list)

    def url(self, key: str) -> str:
        return self.env[key]

    # --- the Worker path ----------------------------------------------------------

    def post_worker(self, path: str, body: Any, token: str | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(
            self.env["EMAIL_WORKER_URL"] + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={
                "Authorization": f"Bearer {token or self.env['EMAIL_WORKER_TOKEN']}",
                "Content-Type": "application/json",
            },
        )
        return _call(request)

    # --- the SQS path ---------------------------------------------------------------

    def sqs(self) -> Any:
        return boto3.client(
            "sqs",
            endpoint_url=self.env["AWS_ENDPOINT_URL_SQS"],
            region_name=self.env["AWS_REGION"],
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
        )

    def enqueue(self, body: Any) -> None:
        raw = body if isinstance(body, str) else json.dumps(body)
        self.sqs().send_message(QueueUrl=self.env["EMAIL_QUEUE_URL"], MessageBody=raw)

    # --- what happened ----------------------------------------------------------------

    def moto_sent(self) -> list[dict[str, Any]]:
        """Mail moto sent: ``GET /moto-api/data.json`` → ``ses.Message``."""
        url = self.env["SANDBOX_MOTO_URL"] + "/moto-api/data.json"
        with urllib.request.urlopen(url, timeout=30) as resp:
            data = json.load(resp)
        return list((data.get("ses") or {}).get("Message") or [])

    def state(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.env["SANDBOX_VIEWER_URL"] + "/api/state", timeout=30) as r:
            return dict(json.load(r))

    def faults(self, **switches: Any) -> dict[str, Any]:
        request = urllib.request.Request(
            self.env["SANDBOX_FAULTS_URL"],
            data=json.dumps(switches).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        status, body = _call(request)
        assert status == 200, body
        return dict(body)

    def wait_for(self, what: str, check: Callable[[], bool], seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the sandbox exited while waiting for {what}:\n{self.log()}")
            if check():
                return
            time.sleep(0.5)
        raise AssertionError(
            f"gave up waiting for {what}; state: {json.dumps(self.state())[:3000]}"
        )

    def log(self) -> str:
        return "".join(self.output[-80:])


def _call(request: urllib.request.Request) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def _read_env(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = json.loads(value)
    return env


def start_sandbox(
    project: Path, tmp: Path, pythonpath: Path | None = None, stack: str = "dev"
) -> tuple[Running | None, subprocess.Popen[str], list[str]]:
    """Start ``serverless-mail sandbox`` and wait until it is ready or has exited."""
    env_file = tmp / ".env.sandbox"
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = f"{pythonpath}{os.pathsep}{env.get('PYTHONPATH', '')}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "serverless_mail.cli",
            "sandbox",
            "--stack",
            stack,
            "--dir",
            str(project),
            "--env-file",
            str(env_file),
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=str(tmp),
        env=env,
        start_new_session=True,
    )
    output: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            if line.strip() == "SANDBOX_READY":
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while time.monotonic() < deadline and not ready.is_set() and proc.poll() is None:
        time.sleep(0.2)
    if not ready.is_set():
        if proc.poll() is None:
            stop_sandbox(proc)
        else:
            time.sleep(0.5)  # let the pump read the last lines
        return None, proc, output
    return Running(proc, _read_env(env_file), output), proc, output


def stop_sandbox(proc: subprocess.Popen[str], ctrl_c: bool = False) -> int:
    """SIGTERM, or Ctrl-C (SIGINT to its process group, as a terminal sends it); the
    sandbox must exit by itself, else it is killed and the test fails."""
    if proc.poll() is None:
        if ctrl_c:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            raise AssertionError("the sandbox did not stop on SIGTERM") from None
    return int(proc.returncode)


def refuses_connections(url: str) -> bool:
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((host, int(port))) != 0


def assert_stopped_cleanly(running: Running, ctrl_c: bool = False) -> None:
    code = stop_sandbox(running.proc, ctrl_c)
    assert code == 0, running.log()
    # Every server it started is gone: moto, workerd, the viewer and the SES proxy.
    for key in ("SANDBOX_MOTO_URL", "EMAIL_WORKER_URL", "SANDBOX_VIEWER_URL", "SANDBOX_SES_URL"):
        assert refuses_connections(running.env[key]), f"{key} still answers after stop"


@pytest.fixture(scope="session")
def dev_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The repository's dev stack, running, shared by the tests that only send to it;
    stopped (and checked stopped) at the end of the session."""
    running, _proc, output = start_sandbox(ROOT, tmp_path_factory.mktemp("sandbox"))
    assert running is not None, f"the sandbox did not start:\n{''.join(output[-80:])}"
    try:
        yield running
    finally:
        assert_stopped_cleanly(running, ctrl_c=True)


def project_copy(tmp: Path, edit: Callable[[Path], None]) -> tuple[Path, Path]:
    """A copy of the project (program, stage files, components, functions) changed by
    ``edit``, and a folder to put first on PYTHONPATH so ``serverless_mail`` is the copy."""
    project = tmp / "project"
    project.mkdir()
    for name in ("__main__.py", "Pulumi.yaml", *[p.name for p in ROOT.glob("Pulumi.*.yaml")]):
        shutil.copy2(ROOT / name, project / name)
    shutil.copytree(
        ROOT / "components", project / "components", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(
        ROOT / "functions",
        project / "functions",
        ignore=shutil.ignore_patterns("__pycache__", "node_modules"),
    )
    # The Worker's Node packages are read, never written: share them.
    (project / "functions" / "worker" / "node_modules").symlink_to(
        ROOT / "functions" / "worker" / "node_modules"
    )
    path = tmp / "pythonpath"
    path.mkdir()
    (path / "serverless_mail").symlink_to(project / "components")
    edit(project)
    return project, path


def set_stage_values(project: Path, stack: str, section: str, values: dict[str, Any]) -> None:
    """Change keys of one ``serverless-mail:<section>`` object in a copy's stage file."""
    path = project / f"Pulumi.{stack}.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    key = f"serverless-mail:{section}"
    doc["config"][key] = {**(doc["config"].get(key) or {}), **values}
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
