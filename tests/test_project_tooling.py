"""The generated project's own tooling: one task surface for people and its CI."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

from .support.project import TOOLS_BIN, render, run

CHECK_JSONSCHEMA = str(Path(sys.executable).parent / "check-jsonschema")


def test_the_workflow_is_valid_and_runs_make_targets_that_exist(tmp_path: Path) -> None:
    project = render(tmp_path / "project")
    workflow = project / ".github" / "workflows" / "ci.yml"
    run([CHECK_JSONSCHEMA, "--builtin-schema", "vendor.github-workflows", str(workflow)], project)
    steps = [
        step["run"]
        for job in yaml.safe_load(workflow.read_text())["jobs"].values()
        for step in job["steps"]
        if "run" in step
    ]
    targets = [match for step in steps for match in re.findall(r"^make (\w+)$", step)]
    assert targets == ["install", "lint", "typecheck", "test"]
    dry_run = run(["make", "-n", *targets], project, env={"PATH": f"{TOOLS_BIN}:/usr/bin:/bin"})
    assert "uv run pytest" in dry_run.stdout
    assert "uv run mypy" in dry_run.stdout


def test_a_broken_workflow_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "ci.yml"
    broken.write_text("on: push\njobs:\n  check:\n    runs-on: ubuntu-latest\n    stepz: []\n")
    result = run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.github-workflows", str(broken)],
        tmp_path,
        check=False,
    )
    assert result.returncode == 1


def test_pre_commit_runs_the_projects_own_ruff_and_mypy(tmp_path: Path) -> None:
    project = render(tmp_path / "project")
    config = yaml.safe_load((project / ".pre-commit-config.yaml").read_text())
    entries = {hook["id"]: hook["entry"] for repo in config["repos"] for hook in repo["hooks"]}
    assert entries == {
        "ruff-check": "uv run ruff check --fix",
        "ruff-format": "uv run ruff format",
        "mypy": "uv run mypy",
    }
