"""The Dockerfile: linted, and its build and command line replayed without a Docker engine.

The wheel is built from exactly the files the build stage copies, installed into a fresh
virtual environment with the runtime stage's own pip command, and the image's ENTRYPOINT,
CMD and HEALTHCHECK are run against the simulator.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import httpx
import pytest

from exporter import __version__
from tests.conftest import TOKEN, free_port, parse_samples, pick, wait_until_ready

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def stages() -> list[list[tuple[str, str]]]:
    split: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            split.append([])
        if split:
            split[-1].append((keyword, rest))
    return split


def arg_defaults() -> dict[str, str]:
    return dict(
        rest.split("=", 1) for keyword, rest in instructions() if keyword == "ARG" and "=" in rest
    )


def first_command(run: str, variables: dict[str, str]) -> list[str]:
    """The first command of a RUN line (up to &&), with ${ARG}s filled in."""
    words = shlex.split(run.split("&&", maxsplit=1)[0])
    return [re.sub(r"\$\{(\w+)\}", lambda m: variables[m.group(1)], word) for word in words]


def exec_form(keyword: str) -> list[str]:
    (value,) = [rest for key, rest in instructions() if key == keyword]
    return json.loads(value.split("CMD", 1)[-1].strip() if keyword == "HEALTHCHECK" else value)


def test_hadolint_is_clean_and_every_ignore_says_why():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run(
        [hadolint, str(DOCKERFILE)], check=False, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for line in DOCKERFILE.read_text().splitlines():
        if "hadolint ignore" in line:
            assert re.search(r"hadolint ignore=[\w,]+\s+\S", line), f"no reason given: {line}"


def test_the_image_is_multi_stage_non_root_and_labelled():
    build, runtime = stages()
    assert build[0] == ("FROM", "${PYTHON_IMAGE} AS build")
    assert runtime[0] == ("FROM", "${PYTHON_IMAGE}")
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", arg_defaults()["PYTHON_IMAGE"])
    assert arg_defaults()["VERSION"] == __version__
    keywords = dict(runtime)
    assert keywords["USER"] == "10001:10001"
    labels = dict(re.findall(r'org\.opencontainers\.image\.(\w+)="([^"]*)"', keywords["LABEL"]))
    assert set(labels) >= {"title", "source", "version", "licenses"} and labels
    assert exec_form("ENTRYPOINT") == ["northflank-backup-exporter"]
    assert exec_form("HEALTHCHECK") == ["python", "-m", "exporter.healthcheck"]


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """A fresh virtual environment holding what the runtime stage installs."""
    work = tmp_path_factory.mktemp("image")
    build, runtime = stages()
    variables = arg_defaults()
    source = work / "src"
    source.mkdir()
    for keyword, rest in build:  # the build stage's COPY lines, to a copy of /src
        if keyword == "COPY":
            *paths, target = rest.split()
            destination = source / target
            for path in paths:
                copied = ROOT / path
                if copied.is_dir():
                    shutil.copytree(
                        copied, destination, ignore=shutil.ignore_patterns("__pycache__")
                    )
                else:
                    shutil.copy(copied, destination)
    environment = work / "venv"
    venv.create(environment, with_pip=True)
    python = str(environment / "bin" / "python")
    wheels = str(work / "wheels")

    def replay(run: str) -> None:
        command = first_command(run, variables)
        assert command[0] == "pip"
        command = [python, "-m", "pip", *command[1:]]
        command = [
            wheels if word == "/wheels" else str(source) if word == "/src" else word
            for word in command
        ]
        subprocess.run(command, check=True, capture_output=True, timeout=600)

    (wheel_run,) = [rest for keyword, rest in build if keyword == "RUN"]
    (install_run,) = [rest for keyword, rest in runtime if keyword == "RUN"]
    replay(wheel_run)
    assert any(name.startswith("northflank_backup_exporter-") for name in os.listdir(wheels))
    replay(install_run)
    return environment


def image_env():
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    for keyword, rest in stages()[1]:
        if keyword == "ENV":
            environment.update(dict(pair.split("=", 1) for pair in rest.split()))
    return {**environment, "NORTHFLANK_API_TOKEN": TOKEN}


def config_file(tmp_path, simulator):
    path = tmp_path / "config.yaml"
    path.write_text(
        f"northflank:\n  api_url: {simulator.base_url}\n"
        "rate_limit:\n  requests_per_hour: 100000\n  reserve: 0\n"
    )
    return str(path)


def test_the_installed_command_line_polls_the_simulator(image, simulator, tmp_path):
    command = [str(image / "bin" / exec_form("ENTRYPOINT")[0]), *exec_form("CMD")]
    result = subprocess.run(
        [*command, "--config.file", config_file(tmp_path, simulator), "--once"],
        check=False,
        capture_output=True,
        text=True,
        env=image_env(),
        cwd=tmp_path,  # not the checkout: only what the wheel installed can be imported
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert pick(parse_samples(result.stdout), "northflank_up", destination="primary-backups") == 1


def test_the_healthcheck_passes_while_serving_and_fails_without(image, simulator, tmp_path):
    port = free_port()
    command = [str(image / "bin" / exec_form("ENTRYPOINT")[0]), *exec_form("CMD")]
    health = [str(image / "bin" / "python"), *exec_form("HEALTHCHECK")[1:]]
    url = f"http://127.0.0.1:{port}/-/healthy"

    def healthcheck() -> int:
        env = {**image_env(), "HEALTHCHECK_URL": url}
        done = subprocess.run(health, check=False, capture_output=True, env=env, cwd=tmp_path)
        return done.returncode

    assert healthcheck() == 1
    server = subprocess.Popen(
        [
            *command,
            "--config.file",
            config_file(tmp_path, simulator),
            "--web.listen-address",
            f"127.0.0.1:{port}",
        ],
        env=image_env(),
        cwd=tmp_path,
        stderr=subprocess.PIPE,
    )
    try:
        try:
            wait_until_ready(port)
        except AssertionError:
            server.terminate()
            raise AssertionError(server.communicate(timeout=10)[1].decode()[-3000:]) from None
        assert healthcheck() == 0
        assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 200
    finally:
        server.terminate()
        code = server.wait(timeout=10)
        assert code == 0, server.stderr.read().decode() if server.stderr else ""
