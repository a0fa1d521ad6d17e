"""The update path: a project made from an older template takes a newer one with `copier update`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml
from copier import run_copy, run_update

from .support.project import TEMPLATE_ROOT


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


def template_repository(dest: Path) -> Path:
    """The template's working tree as a fresh git repository, tagged 1.0.0."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=TEMPLATE_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in listed:
        source = TEMPLATE_ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    git(dest, "init", "--quiet", "--initial-branch=main")
    git(dest, "add", "-A")
    git(dest, "commit", "--quiet", "-m", "template 1.0.0")
    git(dest, "tag", "1.0.0")
    return dest


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
    return found


def test_update_keeps_user_edits_and_applies_template_changes(tmp_path: Path) -> None:
    template = template_repository(tmp_path / "template-repo")
    project = tmp_path / "project"
    run_copy(str(template), project, defaults=True, unsafe=True, vcs_ref="1.0.0", quiet=True)
    git(project, "init", "--quiet", "--initial-branch=main")
    git(project, "add", "-A")
    git(project, "commit", "--quiet", "-m", "start from the template")

    # The team edits its project as people do.
    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\n## Our notes\n\nOn-call: #payments-oncall\n")
    kinds = project / "src" / "my_service" / "domain" / "kinds.py"
    assert "le=60" in kinds.read_text()
    kinds.write_text(kinds.read_text().replace("le=60", "le=120"))
    (project / "src" / "my_service" / "billing.py").write_text('"""Our own module."""\n')
    git(project, "add", "-A")
    git(project, "commit", "--quiet", "-m", "our changes")

    # The template moves on: a runbook section and a change to a shipped module.
    runbook = template / "template" / "docs" / "runbook.md.jinja"
    runbook.write_text(runbook.read_text() + "\n## Added in 1.1.0\n\nA new runbook section.\n")
    problems = template / "template" / "src" / "{{package_name}}" / "problems.py"
    problems.write_text(problems.read_text() + "\n\nPROBLEMS_VERSION = 2\n")
    git(template, "add", "-A")
    git(template, "commit", "--quiet", "-m", "template 1.1.0")
    git(template, "tag", "1.1.0")

    run_update(
        project,
        defaults=True,
        overwrite=True,
        unsafe=True,
        vcs_ref="1.1.0",
        quiet=True,
    )

    assert conflicts_in(project) == []
    assert "UU " not in git(project, "status", "--porcelain")
    assert "On-call: #payments-oncall" in readme.read_text()
    assert "le=120" in kinds.read_text()
    assert (project / "src" / "my_service" / "billing.py").exists()
    assert "A new runbook section." in (project / "docs" / "runbook.md").read_text()
    assert "PROBLEMS_VERSION = 2" in (project / "src" / "my_service" / "problems.py").read_text()
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["_commit"] == "1.1.0"
    assert answers["_src_path"] == str(template)
