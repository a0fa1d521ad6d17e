"""Every variant renders completely and passes its own checks on the raw render."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from .support.project import UV, answers_of, install, render, run
from .support.variants import MATRIX

# A Jinja expression naming a question, or a Jinja statement. Prometheus alert
# templates and Grafana legends use {{ }} of their own, so braces alone prove nothing.
UNRENDERED = re.compile(
    r"\{\{-?\s*(project_name|project_slug|package_name|description|author_|python_version|_copier)"
    r"|\{%-?\s*(if|for|endif|endfor|raw|set)\b"
)

CONTRACT_LAYOUT = [
    "src/{package}/__init__.py",
    "src/{package}/__main__.py",
    "src/{package}/main.py",
    "src/{package}/config.py",
    "tests",
    "migrations/env.py",
    "migrations/versions",
    "pyproject.toml",
    "Dockerfile",
    "compose.yaml",
    "observability",
    "loadtest",
    "docs/runbook.md",
    "README.md",
    ".copier-answers.yml",
]


def assert_fully_rendered(project: Path) -> None:
    for path in project.rglob("*"):
        relative = path.relative_to(project)
        assert "{{" not in str(relative), relative
        assert not path.name.endswith(".jinja"), relative
        if path.is_file() and ".git" not in relative.parts:
            text = path.read_text(errors="replace")
            match = UNRENDERED.search(text)
            assert match is None, f"unrendered Jinja in {relative}: {match and match.group(0)}"


@pytest.mark.parametrize(
    ("name", "answers"),
    [
        pytest.param(name, answers, id=name, marks=[] if name == "defaults" else [pytest.mark.slow])
        for name, answers in MATRIX
    ],
)
def test_variant_renders_and_passes_its_own_checks(
    tmp_path: Path, name: str, answers: dict[str, Any]
) -> None:
    project = render(tmp_path / name, **answers)
    package = answers_of(project)["package_name"]
    for entry in CONTRACT_LAYOUT:
        assert (project / entry.format(package=package)).exists(), entry
    assert_fully_rendered(project)

    install(project)
    run([UV, "run", "--frozen", "ruff", "check", "."], project)
    run([UV, "run", "--frozen", "ruff", "format", "--check", "."], project)
    run([UV, "run", "--frozen", "mypy"], project)
    run([UV, "run", "--frozen", "pytest", "-q", "-p", "no:cacheprovider"], project, timeout=900)


def test_only_what_interpolates_is_a_template() -> None:
    """A `.jinja` file must use Jinja; every other file is copied verbatim."""
    template = Path(__file__).resolve().parents[1] / "template"
    needless = [
        str(path.relative_to(template))
        for path in template.rglob("*.jinja")
        if not re.search(r"\{\{|\{%", path.read_text())
    ]
    assert needless == []
