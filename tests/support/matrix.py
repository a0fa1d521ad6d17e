"""The option matrix: each toggle's values, their full product, a pairwise covering set.

Every answer combination must render lint- and type-clean. Only the dimensions in
``PYTHON_DIMENSIONS`` change a Python file or ``pyproject.toml`` (``test_render``
proves it from the templates' own Jinja variables), so the product of those is every
Python variant there is; it is linted and type-checked in full. A pairwise covering
set of all dimensions (every pair of values in at least one project) also installs
and runs each project's own tests, which boot the service.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

Answers = dict[str, Any]

DIMENSIONS: dict[str, list[Answers]] = {
    "python": [{"python_version": version} for version in ("3.11", "3.12", "3.13")],
    "secrets": [
        {"secrets_backend": "env"},
        {"secrets_backend": "vault", "vault_auth": "token"},
        {"secrets_backend": "vault", "vault_auth": "approle"},
        {"secrets_backend": "vault", "vault_auth": "kubernetes"},
    ],
    "tracing": [
        {"tracing_exporter": exporter} for exporter in ("none", "console", "otlp-grpc", "otlp-http")
    ],
    "deploy": [{"deploy_target": target} for target in ("compose", "kubernetes", "swarm")],
    "logs": [
        {"log_pipeline": pipeline}
        for pipeline in ("stdout", "vector-elasticsearch", "vector-kafka-elasticsearch", "loki")
    ],
    "ci": [{"ci_provider": provider} for provider in ("github", "gitlab", "none")],
}

PYTHON_DIMENSIONS = ("python", "secrets", "tracing")

# The questions whose answers may appear in a Python file, pyproject.toml or a Python
# file's path: identity, and the keys of PYTHON_DIMENSIONS.
IDENTITY_QUESTIONS = frozenset(
    {"project_name", "project_slug", "package_name", "description", "author_name", "author_email"}
)
PYTHON_TOGGLES = frozenset(
    key for name in PYTHON_DIMENSIONS for value in DIMENSIONS[name] for key in value
)
PYTHON_QUESTIONS = IDENTITY_QUESTIONS | PYTHON_TOGGLES

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


DEPLOYMENT_DIMENSIONS = ("secrets", "tracing", "deploy", "logs")


def deployment_product() -> list[Answers]:
    """Every combination of the toggles that the compose, chart and stack files wire in."""
    return [
        merge(parts)
        for parts in itertools.product(*(DIMENSIONS[name] for name in DEPLOYMENT_DIMENSIONS))
    ]


def python_projection(answers: Mapping[str, Any]) -> frozenset[tuple[str, Any]]:
    """The toggles in ``answers`` that decide the Python files."""
    return frozenset((key, value) for key, value in answers.items() if key in PYTHON_TOGGLES)
