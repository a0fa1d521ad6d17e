"""The option matrix: each toggle's values, their full product, a pairwise covering set.

The values are copier.yml's own choices (``questions.py`` reads them), so a new
choice is in the matrix the moment it is in the questionnaire.

Every answer combination must render lint- and type-clean. Only the dimensions in
``PYTHON_DIMENSIONS`` change a Python file or ``pyproject.toml`` (``test_render``
proves it from the templates' own Jinja variables), so the product of those is every
Python variant there is; it is linted and type-checked in full. Likewise only
``DEPLOYMENT_DIMENSIONS`` reach the files `make deploy-check` validates, and their
product is rendered and checked in full. A pairwise covering set of all dimensions
(every pair of values in at least one project) also installs and runs each
project's own tests, which boot the service.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from .questions import choices, questions

Answers = dict[str, Any]

# Each dimension of the matrix and the question it varies, in the order test ids name
# them. Every question with choices in copier.yml is one (test_matrix checks it).
QUESTION_OF = {
    "python": "python_version",
    "database": "database",
    "secrets": "secrets_backend",
    "tracing": "tracing_exporter",
    "deploy": "deploy_target",
    "logs": "log_pipeline",
    "ci": "ci_provider",
}
# Asked only when secrets_backend == vault: not a dimension of its own but the vault
# value's variants.
VAULT_AUTH_WHEN = "{{ secrets_backend == 'vault' }}"


def _secrets() -> list[Answers]:
    assert questions()["vault_auth"]["when"] == VAULT_AUTH_WHEN, "the secrets dimension below"
    return [
        {"secrets_backend": backend, "vault_auth": auth}
        if backend == "vault"
        else {"secrets_backend": backend}
        for backend in choices("secrets_backend")
        for auth in (choices("vault_auth") if backend == "vault" else [None])
    ]


DIMENSIONS: dict[str, list[Answers]] = {
    name: _secrets() if name == "secrets" else [{key: value} for value in choices(key)]
    for name, key in QUESTION_OF.items()
}

PYTHON_DIMENSIONS = ("python", "database", "secrets", "tracing")
# What compose.yaml (and the files it includes), the Helm chart and the Swarm stack
# wire in. database is here ahead of its deployment files (a PostgreSQL service):
# until they use it, its two values render the same deployment files.
DEPLOYMENT_DIMENSIONS = ("database", "secrets", "tracing", "deploy", "logs")

# Free-text questions (no choices): any render may carry any value of them.
IDENTITY_QUESTIONS = frozenset(key for key, q in questions().items() if "choices" not in q)


def toggles_of(dimensions: Sequence[str]) -> frozenset[str]:
    """The questions the given dimensions answer."""
    return frozenset(key for name in dimensions for value in DIMENSIONS[name] for key in value)


# The questions whose answers may appear in a Python file, pyproject.toml or a Python
# file's path: identity, and the keys of PYTHON_DIMENSIONS.
PYTHON_TOGGLES = toggles_of(PYTHON_DIMENSIONS)
PYTHON_QUESTIONS = IDENTITY_QUESTIONS | PYTHON_TOGGLES
# The same for the deployment files.
DEPLOYMENT_QUESTIONS = IDENTITY_QUESTIONS | toggles_of(DEPLOYMENT_DIMENSIONS)

Row = tuple[int, ...]


def _pairs_of(row: Row) -> set[tuple[int, int, int, int]]:
    return {(a, row[a], b, row[b]) for a, b in itertools.combinations(range(len(row)), 2)}


def _gain(
    row: Sequence[int | None], dimension: int, value: int, uncovered: set[tuple[int, int, int, int]]
) -> int:
    """How many uncovered pairs choosing ``value`` for ``dimension`` would cover."""
    return sum(
        1
        for other, chosen in enumerate(row)
        if chosen is not None
        and (
            (dimension, value, other, chosen) in uncovered
            or (other, chosen, dimension, value) in uncovered
        )
    )


def pairwise(sizes: Sequence[int]) -> list[Row]:
    """Rows of value indexes such that every pair of values of two dimensions is in a row.

    Greedy and deterministic: each new row takes, dimension by dimension, the value
    that covers the most pairs not yet covered (ties: the lowest index).
    """
    uncovered = {
        (a, i, b, j)
        for a, b in itertools.combinations(range(len(sizes)), 2)
        for i in range(sizes[a])
        for j in range(sizes[b])
    }
    rows: list[Row] = []
    while uncovered:
        # Start from the first uncovered pair so every row makes progress.
        a, i, b, j = min(uncovered)
        row: list[int | None] = [None] * len(sizes)
        row[a], row[b] = i, j
        for dimension in range(len(sizes)):
            if row[dimension] is None:
                row[dimension] = max(
                    range(sizes[dimension]),
                    key=lambda value, d=dimension: (_gain(row, d, value, uncovered), -value),
                )
        complete = tuple(value for value in row if value is not None)
        uncovered -= _pairs_of(complete)
        rows.append(complete)
    return rows


def merge(parts: Sequence[Mapping[str, Any]]) -> Answers:
    merged: Answers = {}
    for part in parts:
        merged.update(part)
    return merged


def name_of(answers: Mapping[str, Any]) -> str:
    """A short test id: the toggles' values joined by dashes."""
    return "-".join(str(value) for key, value in answers.items() if key not in IDENTITY_QUESTIONS)


def covering_set() -> list[Answers]:
    """The pairwise covering set over every dimension, as answer dictionaries."""
    names = list(DIMENSIONS)
    rows = pairwise([len(DIMENSIONS[name]) for name in names])
    return [
        merge([DIMENSIONS[name][index] for name, index in zip(names, row, strict=True)])
        for row in rows
    ]


def python_product() -> list[Answers]:
    """Every combination of the dimensions that change Python files."""
    return [
        merge(parts)
        for parts in itertools.product(*(DIMENSIONS[name] for name in PYTHON_DIMENSIONS))
    ]


def deployment_product() -> list[Answers]:
    """Every combination of the toggles that the compose, chart and stack files wire in."""
    return [
        merge(parts)
        for parts in itertools.product(*(DIMENSIONS[name] for name in DEPLOYMENT_DIMENSIONS))
    ]


def python_projection(answers: Mapping[str, Any]) -> frozenset[tuple[str, Any]]:
    """The toggles in ``answers`` that decide the Python files."""
    return frozenset((key, value) for key, value in answers.items() if key in PYTHON_TOGGLES)
