"""The rendered Dockerfile, proven with hadolint and by replaying its build without Docker.

hadolint passes, the stages have the production shape (uv, a builder, a non-root
runtime with a HEALTHCHECK), .dockerignore admits only what the image needs, and the
builder's steps run on exactly that build context: the service starts from the
result with the image's ENV, WORKDIR and CMD, and its HEALTHCHECK judges it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from .support.dockerfile import (
    docker_context,
    dockerfile_instructions,
    env_of,
    exec_form,
    hadolint,
    healthcheck_argv,
    stages,
    user_of,
)
from .support.jobs import run_one_job
from .support.polling import wait_until
from .support.project import UV, answers_of, pyenv_python, render, run, tool_env
from .support.service import free_port

PACKAGE = "my_service"


@pytest.mark.parametrize(
    ("answers", "python_version", "package"),
    [
        ({}, "3.12", PACKAGE),
        (
            {
                "project_name": "Billing Jobs",
                "project_slug": "billing-jobs",
                "package_name": "billing",
                "python_version": "3.13",
            },
            "3.13",
            "billing",
        ),
    ],
    ids=["default", "python3.13"],
)
def test_dockerfile_passes_hadolint_and_has_the_production_shape(
    tmp_path: Path, answers: dict[str, str], python_version: str, package: str
) -> None:
    project = render(tmp_path / "project", **answers)
    dockerfile = project / "Dockerfile"
    result = hadolint(project)
    assert result.returncode == 0, result.stdout + result.stderr

    instructions = dockerfile_instructions(dockerfile)
    by_stage = stages(instructions)
    assert by_stage["uv"][0].arguments == "ghcr.io/astral-sh/uv:0.13 AS uv"
    builder = by_stage["builder"]
    runtime = by_stage["runtime"]
    assert builder[0].arguments == f"python:{python_version}-slim AS builder"
    assert runtime[0].arguments == f"python:{python_version}-slim AS runtime"
    syncs = [i.arguments for i in builder if i.keyword == "RUN" and "uv sync" in i.arguments]
    assert len(syncs) == 2, syncs
    assert syncs[0].endswith("uv sync --locked --no-dev --no-install-project"), syncs[0]
    assert syncs[1].endswith("uv sync --locked --no-dev"), syncs[1]

    env = env_of(runtime)
    assert env["HOST"] == "0.0.0.0"
    assert env["PORT"] == "8000"
    assert env["PATH"] == "/app/.venv/bin:$PATH"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert "PROMETHEUS_MULTIPROC_DIR" not in env, "one worker keeps its samples in memory"
    assert user_of(runtime).split(":")[0] == "10001", "the runtime runs as a fixed non-root uid"
    (workdir,) = [i.arguments for i in runtime if i.keyword == "WORKDIR"]
    assert workdir == "/app"
    (stop,) = [i.arguments for i in runtime if i.keyword == "STOPSIGNAL"]
    assert stop == "SIGTERM"
    (cmd,) = [i.arguments for i in runtime if i.keyword == "CMD"]
    assert exec_form(cmd) == ["python", "-m", package]
    assert healthcheck_argv(runtime)[:2] == ["python", "-c"]
    assert "{{" not in dockerfile.read_text()


def test_dockerignore_admits_only_what_the_image_needs(
    default_project: Path, tmp_path: Path
) -> None:
    context = docker_context(default_project)
    assert {"pyproject.toml", "uv.lock", "README.md", "alembic.ini"} <= context
    assert f"src/{PACKAGE}/__main__.py" in context
    assert any(name.startswith("migrations/versions/") for name in context)

    # Local state and secrets a developer's checkout holds never reach the daemon.
    shutil.copy2(default_project / ".dockerignore", tmp_path / ".dockerignore")
    tree = {
        "pyproject.toml": True,
        "uv.lock": True,
        "README.md": True,
        "alembic.ini": True,
        f"src/{PACKAGE}/main.py": True,
        "migrations/env.py": True,
        "migrations/versions/0001_create_jobs.py": True,
        ".env": False,
        "data/app.db": False,
        ".venv/bin/python": False,
        ".git/config": False,
        f"src/{PACKAGE}/__pycache__/main.cpython-312.pyc": False,
        "migrations/__pycache__/env.cpython-312.pyc": False,
        "tests/test_api.py": False,
        "loadtest/results_stats.csv": False,
        ".copier-answers.yml": False,
        "compose.yaml": False,
    }
    for name in tree:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    assert docker_context(tmp_path) == {name for name, wanted in tree.items() if wanted}


def test_image_build_steps_work_on_the_build_context(default_project: Path, tmp_path: Path) -> None:
    """Replay the Dockerfile without a Docker daemon: the same files, commands and runtime.

    Only what .dockerignore admits is copied, each builder step's sources are
    checked to exist in the context, the two ``uv sync`` steps run as written, and
    the service starts from the result with the image's ENV, WORKDIR and CMD, with
    the HEALTHCHECK command judging it.
    """
    instructions = dockerfile_instructions(default_project / "Dockerfile")
    by_stage = stages(instructions)
    context = docker_context(default_project)
    app = tmp_path / "app"
    app.mkdir()

    python = pyenv_python(answers_of(default_project)["python_version"])
    assert python, "the project's Python version is not installed"
    build_env = {
        **env_of(by_stage["builder"]),
        "UV_PROJECT_ENVIRONMENT": str(app / ".venv"),
        "UV_PYTHON": python,
    }
    for instruction in by_stage["builder"]:
        if instruction.keyword == "COPY" and not instruction.arguments.startswith("--from"):
            *sources, destination = instruction.arguments.split()
            for source in sources:
                files = [
                    name for name in context if name == source or name.startswith(f"{source}/")
                ]
                assert files, f"COPY {source}: not in the build context"
                for name in files:
                    target = app / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(default_project / name, target)
            assert destination in {"./", f"./{sources[0]}"}, instruction
        elif instruction.keyword == "RUN" and "uv sync" in instruction.arguments:
            mounts = re.findall(
                r"--mount=type=bind,source=([^,]+),target=([^\s]+)", instruction.arguments
            )
            for source, target in mounts:
                assert source in context, f"bind mount {source}: not in the build context"
                if not (app / target).exists():
                    shutil.copy2(default_project / source, app / target)
            command = instruction.arguments.split("uv sync", 1)[1].split()
            run([UV, "sync", "--quiet", *command], app, env=build_env, timeout=600)
            for _source, target in mounts:
                if not any(
                    i.keyword == "COPY" and target in i.arguments.split() for i in instructions
                ):
                    (app / target).unlink()
    assert (app / ".venv" / "bin" / "python").exists()
    dev_only = app / ".venv" / "bin" / "pytest"
    assert not dev_only.exists(), "--no-dev must leave the dev tools out of the image"

    runtime = by_stage["runtime"]
    (app / "data").mkdir()
    port = free_port()
    image_env = {
        key: value.replace("/app", str(app)).replace("$PATH", os.environ["PATH"])
        for key, value in env_of(runtime).items()
    }
    image_env["PORT"] = str(port)
    env = tool_env(image_env)
    env.pop("DATABASE_URL", None)
    (cmd,) = [exec_form(i.arguments) for i in runtime if i.keyword == "CMD"]
    healthcheck = healthcheck_argv(runtime)

    def healthy() -> bool:
        probe = subprocess.run(
            healthcheck, cwd=app, env=env, capture_output=True, timeout=10, check=False
        )
        return probe.returncode == 0

    log_path = tmp_path / "service.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            cmd, cwd=app, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until(
            healthy,
            message="the HEALTHCHECK command to pass",
            timeout=60,
            interval=0.5,
            context=log_path.read_text,
        )
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            run_one_job(client)
            assert client.get("/readyz").status_code == 200
        assert (app / "data" / "app.db").exists(), "the default SQLite database lives in /app/data"
        (stop_signal,) = [i.arguments for i in runtime if i.keyword == "STOPSIGNAL"]
        process.send_signal(signal.Signals[stop_signal])
        assert process.wait(timeout=60) == 0, log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    assert not healthy(), "the HEALTHCHECK command must fail once the service is down"
