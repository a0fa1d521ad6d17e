"""Render the template, install a rendered project, run its tools."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from copier import run_copy

TEMPLATE_ROOT = Path(__file__).resolve().parents[2]
# Empty Copier user settings, so a developer's own never leak into --defaults renders.
# tests/conftest.py puts it in the environment of the whole test process (in-process
# copier calls and every subprocess: the rendered projects' tools, `copier update`).
COPIER_SETTINGS = TEMPLATE_ROOT / "tests" / "copier-settings.yml"
TOOLS_BIN = Path(sys.executable).parent
UV = str(TOOLS_BIN / "uv")

DEFAULT_ANSWERS: dict[str, Any] = {
    "project_name": "My Service",
    "project_slug": "my-service",
    "package_name": "my_service",
    "python_version": "3.12",
}


def pyenv_python(version: str) -> str | None:
    """An interpreter for ``version`` (``3.12``) from pyenv or PATH, or None."""
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates = sorted(Path(root, "versions").glob(f"{version}.*/bin/python{version}"))
    if candidates:
        return str(candidates[-1])
    found = shutil.which(f"python{version}")
    if found and subprocess.run([found, "-V"], capture_output=True, check=False).returncode == 0:
        return found
    return None


def tool_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for uv and the rendered projects' tools: one shared uv cache, no downloads."""
    env = dict(os.environ)
    env.setdefault("UV_CACHE_DIR", str(Path.home() / ".cache" / "uv"))
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env["UV_NO_PROGRESS"] = "1"
    env.pop("VIRTUAL_ENV", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if extra:
        env.update(extra)
    return env


def run(
    command: Sequence[str],
    cwd: Path,
    *,
    timeout: float = 600,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``command``; on failure raise with its whole output in the message."""
    result = subprocess.run(
        list(command),
        cwd=cwd,
        env=tool_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {result.returncode} in {cwd}\n"
            f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
        )
    return result


def render(dest: Path, **answers: Any) -> Path:
    """Render the working tree of the template into ``dest`` with ``answers``."""
    run_copy(
        str(TEMPLATE_ROOT),
        dest,
        data=answers,
        defaults=True,
        unsafe=True,
        quiet=True,
        vcs_ref="HEAD",
    )
    return dest


def answers_of(project: Path) -> dict[str, Any]:
    """The answers recorded in a rendered project's ``.copier-answers.yml``."""
    import yaml

    loaded: dict[str, Any] = yaml.safe_load((project / ".copier-answers.yml").read_text())
    return loaded


def install(project: Path, *groups: str) -> None:
    """``uv sync`` the rendered project, and its dependency ``groups``, with the
    interpreter its answers ask for."""
    version = answers_of(project)["python_version"]
    python = pyenv_python(version)
    command = [UV, "sync", "--quiet", *(arg for group in groups for arg in ("--group", group))]
    if python:
        command += ["--python", python]
    run(command, project, timeout=900)


def project_python(project: Path) -> str:
    """The rendered project's virtualenv interpreter."""
    return str(project / ".venv" / "bin" / "python")
