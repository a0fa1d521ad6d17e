"""Every variant renders completely and passes its own checks on the raw render."""

from __future__ import annotations

import fnmatch
import itertools
import math
import re
from pathlib import Path, PurePosixPath

import pytest

from .support import template_tree
from .support.matrix import (
    DEPLOYMENT_QUESTIONS,
    DIMENSIONS,
    PYTHON_DIMENSIONS,
    PYTHON_QUESTIONS,
    Answers,
    covering_set,
    deployment_product,
    name_of,
    python_product,
    python_projection,
    toggles_of,
)
from .support.project import UV, answers_of, install, render, run
from .support.questions import toggles
from .support.tools import deploy_check
from .support.variants import IDENTITY_VARIANTS

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


def identity(index: int) -> Answers:
    """The identity variants in turn, without their Python version (the row sets it)."""
    _, answers = IDENTITY_VARIANTS[index % len(IDENTITY_VARIANTS)]
    return {key: value for key, value in answers.items() if key != "python_version"}


COVERING = [{**identity(index), **row} for index, row in enumerate(covering_set())]
LINT_ONLY = [
    answers
    for answers in python_product()
    if python_projection(answers) not in {python_projection(row) for row in COVERING}
]


def check_render(project: Path) -> None:
    package = answers_of(project)["package_name"]
    for entry in CONTRACT_LAYOUT:
        assert (project / entry.format(package=package)).exists(), entry
    assert_fully_rendered(project)


def lint(project: Path) -> None:
    install(project)
    run([UV, "run", "--frozen", "ruff", "check", "."], project)
    run([UV, "run", "--frozen", "ruff", "format", "--check", "."], project)
    run([UV, "run", "--frozen", "mypy"], project)


@pytest.mark.parametrize(
    ("name", "answers"),
    [pytest.param("defaults", {}, id="defaults")]
    + [
        pytest.param(name, answers, id=name, marks=pytest.mark.slow)
        for name, answers in IDENTITY_VARIANTS
        if name != "defaults"
    ]
    + [
        pytest.param(name_of(row), row, id=f"pairwise-{name_of(row)}", marks=pytest.mark.slow)
        for row in COVERING
    ],
)
def test_variant_renders_and_passes_its_own_checks(
    tmp_path: Path, name: str, answers: Answers
) -> None:
    """The defaults, each identity variant and the pairwise set: lint, types, own tests.

    Also the project's own `make deploy-check`, so compose.yaml and the Helm chart or
    Swarm stack validate with every other toggle the row turns on.
    """
    project = render(tmp_path / "project", **answers)
    check_render(project)
    deploy_check(project)
    lint(project)
    run([UV, "run", "--frozen", "pytest", "-q", "-p", "no:cacheprovider"], project, timeout=900)


@pytest.mark.slow
@pytest.mark.parametrize("answers", [pytest.param(a, id=name_of(a)) for a in LINT_ONLY])
def test_every_python_variant_is_lint_and_type_clean(tmp_path: Path, answers: Answers) -> None:
    """The rest of the Python product: the render, ruff, ruff format and mypy --strict."""
    project = render(tmp_path / "project", **answers)
    check_render(project)
    lint(project)


@pytest.mark.slow
@pytest.mark.parametrize("answers", [pytest.param(a, id=name_of(a)) for a in deployment_product()])
def test_every_deployment_combination_validates(tmp_path: Path, answers: Answers) -> None:
    """compose.yaml and the Helm chart or Swarm stack, for every secrets, tracing, deploy
    target and log pipeline answer together: the project's own `make deploy-check`."""
    deploy_check(render(tmp_path / "project", **answers))


def test_the_covering_set_covers_every_pair_and_the_product_is_complete() -> None:
    sizes = {name: len(values) for name, values in DIMENSIONS.items()}
    for (a, values_a), (b, values_b) in itertools.combinations(DIMENSIONS.items(), 2):
        for value_a, value_b in itertools.product(values_a, values_b):
            assert any(
                value_a.items() <= row.items() and value_b.items() <= row.items()
                for row in COVERING
            ), (a, value_a, b, value_b)
    product = {python_projection(a) for a in python_product()}
    assert len(product) == math.prod(sizes[name] for name in PYTHON_DIMENSIONS)
    assert product == {python_projection(a) for a in COVERING + LINT_ONLY}


def test_every_question_with_choices_is_in_the_matrix() -> None:
    """A new toggle in copier.yml is a dimension of the matrix (support/matrix.py)."""
    assert toggles_of(list(DIMENSIONS)) == set(toggles())
    for name, values in DIMENSIONS.items():
        assert len({name_of(value) for value in values}) == len(values), name


def python_like(path: Path) -> bool:
    name = template_tree.plain(path.name)
    return name.endswith(".py") or name in {"pyproject.toml", ".python-version", "alembic.ini"}


def test_only_python_toggles_reach_python_files() -> None:
    """So the product of PYTHON_DIMENSIONS is every Python variant there is."""
    files = [path for path in template_tree.files() if python_like(path)]
    assert len(files) > 20
    leaks = {}
    for path in files:
        outside = template_tree.answers_reaching(path, PYTHON_QUESTIONS)
        if outside:
            leaks[template_tree.relative(path)] = sorted(outside)
    assert leaks == {}


def deployment_file(path: Path) -> bool:
    """What `make deploy-check` reads: compose.yaml, the compose files it includes, deploy/."""
    plain = PurePosixPath(template_tree.plain(template_tree.relative(path)))
    return plain.parts[0] == "deploy" or fnmatch.fnmatch(plain.name, "compose*.yaml")


def test_only_deployment_toggles_reach_deployment_files() -> None:
    """So the product of DEPLOYMENT_DIMENSIONS is every deployment variant there is."""
    files = [path for path in template_tree.files() if deployment_file(path)]
    assert {PurePosixPath(template_tree.plain(template_tree.relative(p))).name for p in files} >= {
        "compose.yaml",
        "Chart.yaml",
        "stack.yaml",
    }
    leaks = {}
    for path in files:
        outside = template_tree.answers_reaching(path, DEPLOYMENT_QUESTIONS)
        if outside:
            leaks[template_tree.relative(path)] = sorted(outside)
    assert leaks == {}


def test_only_what_interpolates_is_a_template() -> None:
    """A `.jinja` file must use Jinja; every other file is copied verbatim."""
    needless = [
        template_tree.relative(path)
        for path in template_tree.TEMPLATE.rglob("*.jinja")
        if not re.search(r"\{\{|\{%", path.read_text())
    ]
    assert needless == []
