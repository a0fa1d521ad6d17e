"""One cache of rendered projects for a test session (one per xdist worker).

Tests that only read a render share it: each answer set is rendered once, on first
use. A test that changes files renders its own copy with ``project.render``.
Modules name their renders by short keys (``"kubernetes:vault-token-otlp-http"``);
``RenderCache.keyed`` reads such keys through a function that turns one into
answers, so every module's renders come from this one cache.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .project import DEFAULT_ANSWERS, render

Answers = dict[str, Any]


class RenderCache:
    """Renders by their answers, made on first use."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self._factory = factory
        self._renders: dict[tuple[tuple[str, Any], ...], Path] = {}

    def get(self, **answers: Any) -> Path:
        """The render of ``answers`` (the defaults for the rest)."""
        key = tuple(sorted(answers.items()))
        if key not in self._renders:
            name = "-".join(str(value) for _, value in key) or "defaults"
            folder = self._factory.mktemp(re.sub(r"[^A-Za-z0-9.-]+", "_", name)[:60])
            slug = answers.get("project_slug", DEFAULT_ANSWERS["project_slug"])
            self._renders[key] = render(folder / slug, **answers)
        return self._renders[key]

    def keyed(self, answers_of_key: Callable[[str], Answers]) -> KeyedRenders:
        return KeyedRenders(self, answers_of_key)


class KeyedRenders:
    """The cache read by a module's own keys: ``renders["loki:kubernetes"]``."""

    def __init__(self, cache: RenderCache, answers_of_key: Callable[[str], Answers]) -> None:
        self._cache = cache
        self._answers_of_key = answers_of_key

    def __getitem__(self, key: str) -> Path:
        return self._cache.get(**self._answers_of_key(key))
