"""`bench/jobs.py`, the jobs-throughput benchmark `make bench` runs, on a small backlog.

Speed is not asserted (the machine is shared); what is: the script runs end to end
on the default render with two processes sharing one SQLite file, its exactly-once
check passes (every job succeeded once, one `job started` line each), its table is
printed, and its JSON report carries the figures the table is made from.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from .support.project import run

REPO_ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def test_the_jobs_benchmark_runs_and_checks_exactly_once(
    default_project: Path, tmp_path: Path
) -> None:
    report = tmp_path / "jobs.json"
    result = run(
        [
            sys.executable,
            "bench/jobs.py",
            "--project",
            f"sqlite={default_project}",
            "--database",
            "sqlite",
            "--processes",
            "2",
            "--no-tuned",
            "--jobs",
            "120",
            "--warmup-jobs",
            "10",
            "--clients",
            "4",
            "--json",
            str(report),
        ],
        REPO_ROOT,
    )  # exit status 0: the exactly-once check found nothing
    assert "exactly once" in result.stdout
    (sample,) = json.loads(report.read_text())["samples"]
    assert sample["database"] == "sqlite"
    assert sample["processes"] == 2
    assert sample["jobs"] == 120
    assert sample["checks"] == []
    assert sample["jobs_per_second"] > 0
    assert sample["service_cpu_ms_per_job"] > 0
    assert len(sample["share_per_process"]) == 2
