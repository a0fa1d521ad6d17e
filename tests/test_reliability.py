"""The generated service under load and faults: its own `loadtest/reliability.py`, run here.

The scenarios (drain under load, kill -9 cycles, a soak) are the rendered project's
own (`make reliability`), so teams keep running them; this suite runs each on the
default render and holds it to its report. docs/reliability.md records the
figures. Plus one fault the project cannot stage on its own: a black-holed OTLP
collector (a listener that never accepts, so connections hang instead of being
refused).
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from .support.project import project_python, run
from .support.service import Service

pytestmark = pytest.mark.slow


def scenario(project: Path, name: str, *args: str, timeout: float = 900) -> dict[str, Any]:
    """Run ``loadtest/reliability.py <name>`` in the project; its JSON report."""
    report = project / "loadtest" / "results" / f"{name}.json"
    result = run(
        [project_python(project), "loadtest/reliability.py", name, "--json", str(report), *args],
        project,
        timeout=timeout,
        check=False,
    )
    assert report.is_file(), result.stdout + result.stderr
    loaded: dict[str, Any] = json.loads(report.read_text())
    assert result.returncode == (0 if loaded["held"] else 1), result.stderr
    print(f"{name}: {json.dumps(loaded)}")  # the figures, for the CI log
    return loaded


def test_drain_under_load_fails_no_request_and_loses_no_job(default_project: Path) -> None:
    report = scenario(default_project, "drain", "--threads", "4", "--delay", "2")
    assert report["held"], report
    assert report["exit_status"] == 0
    assert report["failed_before_close"] == 0
    assert "5xx" not in report["outcomes"]
    assert report["outcomes"]["2xx"] > 50  # the load was real
    # Readiness off at once, the listener closed only after the delay.
    assert report["readiness_off_after_s"] < report["listener_closed_after_s"]
    assert report["listener_closed_after_s"] >= 2
    assert report["jobs_requeued_at_drain"] == 2  # the two 30 s jobs
    assert set(report["long_jobs_after_restart"]) <= {"queued", "running", "succeeded"}


def test_twenty_kill_nine_cycles_leave_every_job_succeeded_once(default_project: Path) -> None:
    report = scenario(default_project, "crash", "--rounds", "20", "--lease", "2")
    assert report["held"], report
    assert report["jobs"] == 100
    assert sum(report["attempts"].values()) == 100
    assert report["succeeded_more_than_once"] == []
    assert report["integrity_check"] == "ok"
    assert report["restart_to_orphan_running_s"]["count"] > 0  # some kills hit running jobs


def test_a_soak_keeps_descriptors_flat(default_project: Path) -> None:
    report = scenario(default_project, "soak", "--seconds", "120", "--interval", "5")
    assert report["held"], report
    assert report["requests"] > 1000
    assert report["jobs_submitted"] > 100
    assert report["queue_drain_seconds"] is not None  # the paced queue drained
    assert report["open_fds"]["end"] <= report["open_fds"]["after_warmup"] + 10


class BlackHole:
    """A TCP listener that never accepts: connections queue in its backlog and hang."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port: int = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


def rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))


def test_a_black_holed_collector_neither_blocks_requests_nor_grows_memory(
    default_project: Path,
) -> None:
    hole = BlackHole()
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{hole.port}",
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_TRACES_SAMPLER": "always_on",
        "OTEL_BSP_MAX_QUEUE_SIZE": "512",
    }
    try:
        with Service(default_project, env) as service, service.client() as client:
            assert service.process is not None
            samples: list[int] = []
            warm = 0
            slowest = 0.0
            for round_ in range(6):
                for _ in range(300):
                    started = time.monotonic()
                    response = client.get("/api/v1/jobs", params={"limit": 1})
                    slowest = max(slowest, time.monotonic() - started)
                    assert response.status_code == 200
                samples.append(rss_kb(service.process.pid))
                if round_ == 1:
                    warm = samples[-1]
            metrics = client.get("/metrics").text
    finally:
        hole.close()
    dropped = sum(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("tracing_spans_dropped_total")
    )
    print(f"black hole: rss {samples} kB, slowest request {slowest:.3f} s, dropped {dropped}")
    assert dropped > 0  # the queue filled and let go instead of growing
    assert samples[-1] - warm < 20_000, (
        samples
    )  # bounded: no per-span growth after the queue filled
    # The exporter's own log lines are rate-limited: not one per failed export.
    failures = [
        line for line in service.log_lines() if "export" in str(line.get("event", "")).lower()
    ]
    assert len(failures) <= 5, failures[:10]
