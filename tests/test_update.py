"""The update path: `copier update` keeps a team's work and applies the template's.

Each test builds the template as a throwaway git repository with release tags, so an
old and a new version exist side by side. Copier exits 0 even when it leaves
conflicts, so every test looks for conflict markers, unmerged paths and `.rej` files.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from copier import run_copy, run_update

from .support.project import TEMPLATE_ROOT, UV, install, run

PACKAGE = Path("src/my_service")
# Answers the template records about itself; equal projects may differ only here.
VOLATILE_ANSWERS = {"_commit", "_src_path"}


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        env={
            "GIT_AUTHOR_NAME": "Test",
            "GIT_AUTHOR_EMAIL": "test@example.com",
            "GIT_COMMITTER_NAME": "Test",
            "GIT_COMMITTER_EMAIL": "test@example.com",
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(cwd),
        },
    )
    return result.stdout


def commit_all(cwd: Path, message: str, tag: str | None = None) -> None:
    git(cwd, "add", "-A")
    git(cwd, "commit", "--quiet", "--allow-empty", "-m", message)
    if tag:
        git(cwd, "tag", tag)


def template_repository(dest: Path) -> Path:
    """The template's working tree as a fresh git repository, tagged v1.0.0."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=TEMPLATE_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    for name in listed:
        source = TEMPLATE_ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    git(dest, "init", "--quiet", "--initial-branch=main")
    commit_all(dest, "template 1.0.0", tag="v1.0.0")
    return dest


def new_project(template: Path, dest: Path, ref: str = "v1.0.0", **answers: Any) -> Path:
    run_copy(str(template), dest, data=answers, defaults=True, unsafe=True, vcs_ref=ref, quiet=True)
    git(dest, "init", "--quiet", "--initial-branch=main")
    commit_all(dest, "start from the template")
    return dest


def update(project: Path, ref: str, **answers: Any) -> None:
    run_update(
        project,
        data=answers,
        defaults=True,
        overwrite=True,
        unsafe=True,
        vcs_ref=ref,
        quiet=True,
    )


def conflicts_in(project: Path) -> list[str]:
    found = []
    for path in project.rglob("*"):
        if ".git" in path.parts or not path.is_file():
            continue
        if path.suffix == ".rej":
            found.append(f"{path}: rejected hunk")
            continue
        text = path.read_text(errors="replace")
        if "<<<<<<< " in text or ">>>>>>> " in text:
            found.append(f"{path}: conflict markers")
    unmerged = git(project, "diff", "--name-only", "--diff-filter=U").split()
    return found + [f"{name}: unmerged" for name in unmerged]


def tree(project: Path) -> dict[str, str]:
    """Every file of a project by relative path, answers without the volatile keys."""
    files = {}
    for path in sorted(project.rglob("*")):
        relative = path.relative_to(project)
        if relative.parts[0] == ".git" or not path.is_file():
            continue
        if relative == Path(".copier-answers.yml"):
            answers = yaml.safe_load(path.read_text())
            files[str(relative)] = repr(
                {key: value for key, value in answers.items() if key not in VOLATILE_ANSWERS}
            )
        else:
            files[str(relative)] = path.read_text(errors="replace")
    return files


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def release_1_1(template: Path) -> None:
    """The template moves on: a runbook section, a module fix, a new file, a README line."""
    source = template / "template"
    runbook = source / "docs" / "runbook.md.jinja"
    runbook.write_text(runbook.read_text() + "\n## Added in 1.1.0\n\nA new runbook section.\n")
    problems = source / "src" / "{{package_name}}" / "problems.py"
    problems.write_text(problems.read_text() + "\n\nPROBLEMS_VERSION = 2\n")
    handlers = source / "src" / "{{package_name}}" / "domain" / "handlers.py"
    handlers.write_text(handlers.read_text() + "\n\nTEMPLATE_ONLY = True\n")
    (source / "docs" / "capacity.md").write_text("# Capacity planning\n")
    edit(source / "README.md.jinja", "## Development", "## Development\n\nTemplate 1.1.0 note.")
    commit_all(template, "template 1.1.0", tag="v1.1.0")


def make_user_edits(project: Path) -> None:
    """What a team does to its project between updates."""
    readme = project / "README.md"
    edit(
        readme,
        "Submit a job and watch it run:",
        "Submit a job (see #payments-oncall) and watch it run:",
    )
    edit(
        project / PACKAGE / "domain" / "handlers.py",
        "the template's example of a job.",
        "our first job kind.",
    )
    edit(project / PACKAGE / "api" / "jobs.py", "le=100)] = 20", "le=100)] = 50")
    (project / PACKAGE / "billing.py").write_text('"""Our own module."""\n\nRATE = 3\n')
    (project / ".pre-commit-config.yaml").unlink()
    commit_all(project, "our changes")


@pytest.mark.slow
def test_update_keeps_user_edits_and_applies_template_changes(tmp_path: Path) -> None:
    template = template_repository(tmp_path / "template-repo")
    project = new_project(template, tmp_path / "project")
    make_user_edits(project)
    release_1_1(template)

    update(project, "v1.1.0")

    assert conflicts_in(project) == []
    readme = (project / "README.md").read_text()
    assert "Submit a job (see #payments-oncall) and watch it run:" in readme
    assert "Template 1.1.0 note." in readme
    handlers = (project / PACKAGE / "domain" / "handlers.py").read_text()
    assert "our first job kind." in handlers
    assert "TEMPLATE_ONLY" not in handlers, "handlers.py is the team's (_skip_if_exists)"
    assert "le=100)] = 50" in (project / PACKAGE / "api" / "jobs.py").read_text()
    assert (project / PACKAGE / "billing.py").read_text().endswith("RATE = 3\n")
    assert not (project / ".pre-commit-config.yaml").exists(), "a deleted file stays deleted"
    assert "A new runbook section." in (project / "docs" / "runbook.md").read_text()
    assert "PROBLEMS_VERSION = 2" in (project / PACKAGE / "problems.py").read_text()
    assert (project / "docs" / "capacity.md").exists()
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["_commit"] == "v1.1.0"
    assert answers["_src_path"] == str(template)

    install(project)
    run([UV, "run", "--frozen", "ruff", "check", "."], project)
    run([UV, "run", "--frozen", "ruff", "format", "--check", "."], project)
    run([UV, "run", "--frozen", "mypy"], project)
    run([UV, "run", "--frozen", "pytest", "-q", "-p", "no:cacheprovider"], project, timeout=900)


def test_update_to_the_same_version_with_defaults_changes_nothing(tmp_path: Path) -> None:
    template = template_repository(tmp_path / "template-repo")
    project = new_project(template, tmp_path / "project")
    before = tree(project)
    update(project, "v1.0.0")
    assert conflicts_in(project) == []
    assert tree(project) == before


# Switching a toggle on an existing project gives what a fresh render with the new
# answers gives. Each toggle lands with its entry here.
TOGGLE_SWITCHES = [
    pytest.param({"database": "postgresql"}, id="database-sqlite-to-postgresql"),
    pytest.param({"ci_provider": "gitlab"}, id="ci-github-to-gitlab"),
    pytest.param({"ci_provider": "none"}, id="ci-github-to-none"),
    pytest.param({"secrets_backend": "vault"}, id="secrets-env-to-vault"),
    pytest.param({"tracing_exporter": "none"}, id="tracing-otlp-grpc-to-none"),
    pytest.param({"log_pipeline": "loki"}, id="logs-stdout-to-loki"),
    pytest.param({"deploy_target": "kubernetes"}, id="deploy-compose-to-kubernetes"),
    pytest.param({"deploy_target": "swarm"}, id="deploy-compose-to-swarm"),
]


@pytest.mark.slow
@pytest.mark.parametrize("answers", TOGGLE_SWITCHES)
def test_switching_a_toggle_equals_a_fresh_render(tmp_path: Path, answers: dict[str, Any]) -> None:
    template = template_repository(tmp_path / "template-repo")
    project = new_project(template, tmp_path / "project")
    billing = project / PACKAGE / "billing.py"
    billing.write_text('"""Our own module."""\n')
    commit_all(project, "our module")

    update(project, "v1.0.0", **answers)

    assert conflicts_in(project) == []
    expected = tree(new_project(template, tmp_path / "fresh", **answers))
    switched = tree(project)
    assert switched.pop(str(billing.relative_to(project))) == '"""Our own module."""\n'
    assert switched.keys() == expected.keys()
    differing = [name for name in expected if switched[name] != expected[name]]
    assert differing == []
