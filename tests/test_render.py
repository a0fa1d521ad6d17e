"""Every variant renders completely and passes its own checks on the raw render."""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import pytest
from jinja2 import Environment, meta

from .support.matrix import (
    DIMENSIONS,
    PYTHON_DIMENSIONS,
    PYTHON_QUESTIONS,
    Answers,
    covering_set,
    deployment_product,
    name_of,
    python_product,
    python_projection,
)
from .support.project import TEMPLATE_ROOT, UV, answers_of, install, render, run
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


def jinja_names(source: str) -> set[str]:
    return set(meta.find_undeclared_variables(Environment().parse(source)))


def test_only_python_toggles_reach_python_files() -> None:
    """So the product of PYTHON_DIMENSIONS is every Python variant there is."""
    template = TEMPLATE_ROOT / "template"
    python_like = [
        path
        for path in template.rglob("*")
        if path.is_file()
        and (
            path.name.removesuffix(".jinja").endswith(".py")
            or path.name.removesuffix(".jinja")
            in {"pyproject.toml", ".python-version", "alembic.ini"}
        )
    ]
    assert len(python_like) > 20
    leaks = {}
    for path in python_like:
        relative = str(path.relative_to(template))
        names = jinja_names(relative)
        if path.name.endswith(".jinja"):
            names |= jinja_names(path.read_text())
        elif names - PYTHON_QUESTIONS:
            # A verbatim file that another toggle adds or removes is the same text in
            # every render that has it; the covering set lints and runs it there.
            names = jinja_names(str(path.parent.relative_to(template)))
        if names - PYTHON_QUESTIONS - {"_copier_conf"}:
            leaks[relative] = sorted(names - PYTHON_QUESTIONS)
    assert leaks == {}


def test_only_what_interpolates_is_a_template() -> None:
    """A `.jinja` file must use Jinja; every other file is copied verbatim."""
    template = Path(__file__).resolve().parents[1] / "template"
    needless = [
        str(path.relative_to(template))
        for path in template.rglob("*.jinja")
        if not re.search(r"\{\{|\{%", path.read_text())
    ]
    assert needless == []
