"""Fixtures for the template's tests. Helpers live in tests/support/."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from .support.deploy import deploy_answers
from .support.logs import pipeline_answers, service_lines
from .support.project import COPIER_SETTINGS, install
from .support.renders import KeyedRenders, RenderCache

_PREVIOUS_SETTINGS = pytest.StashKey[str | None]()


def pytest_configure(config: pytest.Config) -> None:
    """The one place COPIER_SETTINGS_PATH is set, for the whole test process.

    Copier's user settings must not leak into --defaults renders: in-process renders
    read the variable, and every subprocess (the rendered projects' tools, `copier
    update`) inherits it through ``project.tool_env``. xdist workers run this too.
    """
    config.stash[_PREVIOUS_SETTINGS] = os.environ.get("COPIER_SETTINGS_PATH")
    os.environ["COPIER_SETTINGS_PATH"] = str(COPIER_SETTINGS)


def pytest_unconfigure(config: pytest.Config) -> None:
    previous = config.stash.get(_PREVIOUS_SETTINGS, None)
    if previous is None:
        os.environ.pop("COPIER_SETTINGS_PATH", None)
    else:
        os.environ["COPIER_SETTINGS_PATH"] = previous


@pytest.fixture(scope="session")
def render_cache(tmp_path_factory: pytest.TempPathFactory) -> RenderCache:
    """Renders shared by every test of the session (per xdist worker) that only reads them."""
    return RenderCache(tmp_path_factory)


@pytest.fixture(scope="session")
def default_project(render_cache: RenderCache) -> Path:
    """The default answers rendered and installed once per test session (per xdist worker)."""
    project = render_cache.get()
    install(project)
    return project


@pytest.fixture(scope="session")
def rendered_projects(render_cache: RenderCache) -> KeyedRenders:
    """``"<deploy_target>:<answer set>"`` (support/deploy.py) -> a shared render."""
    return render_cache.keyed(deploy_answers)


@pytest.fixture(scope="session")
def renders(render_cache: RenderCache) -> KeyedRenders:
    """``"<log_pipeline>:<deploy_target>[:<tracing_exporter>]"`` -> a shared render."""
    return render_cache.keyed(pipeline_answers)


@pytest.fixture(scope="session")
def real_lines(default_project: Path) -> list[dict[str, Any]]:
    """The booted default service's JSON lines (support/logs.py), for the pipeline tests."""
    return service_lines(default_project)
