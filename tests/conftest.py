"""Fixtures for the template's tests. Helpers live in tests/support/."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .support.project import TEMPLATE_ROOT, install, render


@pytest.fixture(scope="session", autouse=True)
def _isolated_copier_settings() -> Iterator[None]:
    """Copier's user settings must not leak into --defaults renders."""
    previous = os.environ.get("COPIER_SETTINGS_PATH")
    os.environ["COPIER_SETTINGS_PATH"] = str(TEMPLATE_ROOT / "tests" / "copier-settings.yml")
    yield
    if previous is None:
        os.environ.pop("COPIER_SETTINGS_PATH", None)
    else:
        os.environ["COPIER_SETTINGS_PATH"] = previous


@pytest.fixture(scope="session")
def default_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default answers rendered and installed once per test session (per xdist worker)."""
    project = render(tmp_path_factory.mktemp("default") / "my-service")
    install(project)
    return project
