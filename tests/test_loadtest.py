"""The rendered load test: Locust against a booted service, and the SLO checker's verdicts.

The live run's latencies are noise on a shared machine, so only its form is asserted;
the checker's verdicts are proven on statistics in the live run's own format with
chosen numbers. The load test's code passes ruff and mypy --strict.
"""

from __future__ import annotations

import csv
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from .support.project import install, render, run
from .support.service import Service

SLUG = "my-service"


@pytest.fixture(scope="module")
def loadtest_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rendered project with its loadtest dependency group installed."""
    project = render(tmp_path_factory.mktemp("loadtest") / SLUG)
    install(project, "loadtest")
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
