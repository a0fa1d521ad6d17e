"""The generated service's layers, checked on real renders (issue 13's rules).

- ``api/`` and ``worker.py`` import no adapter and no integration: they see ports.
- The core modules carry no integration Jinja: config, main, serving, the API,
  the worker and the domain are the same file in every variant that has them.
- ``POST /api/v1/jobs`` is followed through at most eight of the package's files.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from .support.project import TEMPLATE_ROOT
from .support.renders import RenderCache

PACKAGE_TEMPLATE = TEMPLATE_ROOT / "template" / "src" / "{{package_name}}"
CORE = [
    "config.py",
    "main.py",
    "serving.py",
    "lifecycle.py",
    "worker.py",
    "api",
    "domain",
    "adapters/database.py",
    "adapters/sql_jobs.py",
    "adapters/migrations.py",
    "observability/hooks.py",
    "observability/middleware.py",
]
VARIANTS = {
    "default": {},
    "everything": {
        "secrets_backend": "vault",
        "tracing_exporter": "otlp-grpc",
        "database": "postgresql",
        "deploy_target": "kubernetes",
    },
}
# The files a reader opens following the POST path, from the route to the row.
POST_PATH = [
    "api/jobs.py",
    "api/schemas.py",
    "api/dependencies.py",
    "domain/job_service.py",
    "domain/kinds.py",
    "domain/ports.py",
    "domain/jobs.py",
    "adapters/sql_jobs.py",
]


@pytest.fixture(scope="module", params=list(VARIANTS))
def package(request: pytest.FixtureRequest, render_cache: RenderCache) -> Path:
    project = render_cache.get(**VARIANTS[request.param])
    return project / "src" / "my_service"


def imports_of(package: Path, relative: str) -> set[str]:
    """The package modules that the file or folder ``relative`` imports (relative imports)."""
    target = package / relative
    modules = sorted(target.rglob("*.py")) if target.is_dir() else [target]
    found: set[str] = set()
    for module in modules:
        found |= package_imports_in(package, module.relative_to(package))
    return found


# Imported along the path but not followed by a reader of POST: logging and metrics,
# and the Lifecycle type that ApiState carries for /readyz.
SIDE_MODULES = ("observability", "lifecycle")


def package_imports_in(root: Path, local: Path) -> set[str]:
    """Dotted names (under the package) of what ``local`` imports with ``from .x import``."""
    parts = local.with_suffix("").parts
    tree = ast.parse((root / local).read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(parts[: len(parts) - node.level])
            found.add(".".join([*base, *(node.module or "").split(".")]).strip("."))
    return found


@pytest.mark.parametrize("layer", ["api", "worker.py", "domain"])
def test_api_worker_and_domain_import_no_adapter_or_integration(package: Path, layer: str) -> None:
    imported = imports_of(package, layer)
    leaks = sorted(
        name for name in imported if name.startswith(("adapters", "integrations", "main"))
    )
    assert leaks == [], f"{layer} imports {leaks}"


def test_the_domain_imports_neither_fastapi_nor_sqlalchemy(package: Path) -> None:
    for module in (package / "domain").rglob("*.py"):
        text = module.read_text()
        assert not re.search(r"^\s*(from|import) (fastapi|sqlalchemy|starlette)", text, re.M), (
            module
        )


def test_only_main_names_the_sql_repository(package: Path) -> None:
    users = sorted(
        str(module.relative_to(package))
        for module in package.rglob("*.py")
        if "SqlJobRepository" in module.read_text() and module.name != "sql_jobs.py"
    )
    assert users == ["main.py"]


def test_the_post_path_is_at_most_eight_files(package: Path) -> None:
    """Each file on the path exists, and from the route the path reaches nothing else
    of the package but logging and metrics (observability/)."""
    assert len(POST_PATH) <= 8
    for relative in POST_PATH:
        assert (package / relative).is_file(), relative
    reached = set()
    for relative in POST_PATH:
        reached |= package_imports_in(package, Path(relative))
    on_path = {str(Path(relative).with_suffix("")).replace("/", ".") for relative in POST_PATH}
    outside = sorted(
        name
        for name in reached
        if name and name not in on_path and not name.startswith(SIDE_MODULES)
    )
    assert outside == [], f"the POST path also needs {outside}"


def test_core_modules_carry_no_integration_jinja() -> None:
    """Vault and tracing plug in through integrations/: no core template names them."""
    offenders = []
    for entry in CORE:
        for path in (
            sorted((PACKAGE_TEMPLATE / entry).rglob("*"))
            if (PACKAGE_TEMPLATE / entry).is_dir()
            else [PACKAGE_TEMPLATE / entry, PACKAGE_TEMPLATE / f"{entry}.jinja"]
        ):
            if not path.is_file():
                continue
            text = path.read_text() + str(path)
            if re.search(r"secrets_backend|tracing_exporter|vault_auth", text):
                offenders.append(str(path.relative_to(PACKAGE_TEMPLATE)))
    assert offenders == []
    assert (PACKAGE_TEMPLATE / "config.py").is_file()
    assert (PACKAGE_TEMPLATE / "main.py").is_file()
