"""No work lost: SIGTERM drains, SIGKILL recovers, and WORKERS=2 counts every request once."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from .support.jobs import job, submit
from .support.polling import wait_until
from .support.service import Service


def metric_sum(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}(\{{(?P<labels>[^}}]*)\}})? (?P<value>\S+)$", line)
        if not match:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"] or ""))
        if all(found.get(key) == value for key, value in labels.items()):
            total += float(match["value"])
    return total


def test_sigterm_drains_running_jobs_then_requeues_the_rest(
    default_project: Path, tmp_path: Path
) -> None:
    env = {
        "SHUTDOWN_GRACE_SECONDS": "3",
        "JOB_CONCURRENCY": "4",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}",
    }
    first = Service(default_project, env).start()
    with first.client() as client:
        short = [submit(client, 1.0) for _ in range(2)]
        long = [submit(client, 6.0) for _ in range(2)]
        wait_until(
            lambda: all(job(client, j)["status"] == "running" for j in short + long),
            message="all four jobs running",
            timeout=60,
        )
    sent = time.monotonic()
    code = first.stop(signal.SIGTERM, timeout=30)
    elapsed = time.monotonic() - sent
    assert code == 0, first.output()
    # Within the grace period (3 s), plus start-up slack for a loaded machine.
    assert elapsed < 3 + 7, f"stopped after {elapsed:.1f}s"
    (requeued,) = first.logs_where(event="jobs still running at the grace deadline were re-queued")
    assert sorted(requeued["job_ids"]) == sorted(long)
    assert any(first.logs_where(event="draining running jobs"))

    with Service(default_project, env) as second, second.client() as client:
        for job_id in short:
            assert (job(client, job_id)["status"], job(client, job_id)["attempts"]) == (
                "succeeded",
                1,
            )
        wait_until(
            lambda: all(job(client, j)["status"] == "succeeded" for j in long),
            message="the re-queued jobs to finish after restart",
            timeout=60,
        )
        for job_id in long:
            assert job(client, job_id)["attempts"] == 1  # the interrupted attempt is not counted


def test_sigkill_while_jobs_run_reruns_them_after_restart(
    default_project: Path, tmp_path: Path
) -> None:
    env = {
        "JOB_LEASE_SECONDS": "2",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}",
    }
    first = Service(default_project, env).start()
    with first.client() as client:
        jobs = [submit(client, 2.0) for _ in range(3)]
        wait_until(
            lambda: all(job(client, j)["status"] == "running" for j in jobs),
            message="jobs running",
            timeout=60,
        )
    first.kill_group()

    with Service(default_project, env) as second, second.client() as client:
        wait_until(
            lambda: all(job(client, j)["status"] == "succeeded" for j in jobs),
            message="the killed process's jobs to run again",
            timeout=60,
        )
        for job_id in jobs:
            assert job(client, job_id)["attempts"] == 2
    recovered = {line["job_id"] for line in second.logs_where(event="job lease expired; re-queued")}
    assert recovered == set(jobs)


def worker_pids(supervisor: int) -> list[int]:
    """uvicorn's worker processes under ``supervisor`` (not multiprocessing's tracker)."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    workers = []
    for pid in children:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"spawn_main" in command:
            workers.append(int(pid))
    return workers


def test_two_workers_count_every_request_exactly_once(default_project: Path) -> None:
    with Service(default_project, {"WORKERS": "2", "JOB_CONCURRENCY": "2"}) as service:
        assert service.process is not None
        wait_until(
            lambda: len(worker_pids(service.process.pid)) == 2, message="two workers", timeout=60
        )
        with service.client() as client:
            before = metric_sum(
                client.get("/metrics").text, "http_requests_total", route="/healthz"
            )
        for _ in range(10):  # separate connections, so both workers take requests
            with service.client() as client:
                for _ in range(30):
                    assert client.get("/healthz").status_code == 200
        scrapes = []
        for _ in range(6):
            with service.client() as client:
                scrapes.append(client.get("/metrics").text)
        counts = {
            metric_sum(text, "http_requests_total", route="/healthz") - before for text in scrapes
        }
        assert counts == {300.0}
        pids = {
            pid
            for text in scrapes
            for pid in re.findall(r'process_cpu_seconds_total\{pid="(\d+)"\}', text)
        }
        assert pids == set(map(str, worker_pids(service.process.pid)))

        with service.client() as client:
            jobs = [submit(client, 0.1) for _ in range(20)]
            wait_until(
                lambda: all(job(client, j)["status"] == "succeeded" for j in jobs),
                message="jobs done",
                timeout=60,
            )
            assert {job(client, j)["attempts"] for j in jobs} == {1}
            text = client.get("/metrics").text
        assert metric_sum(text, "jobs_submitted_total", kind="sleep") == 20
        assert metric_sum(text, "jobs_finished_total", kind="sleep", status="succeeded") == 20


def test_a_dead_workers_running_jobs_leave_the_gauge(default_project: Path) -> None:
    env = {"WORKERS": "2", "JOB_CONCURRENCY": "2", "JOB_LEASE_SECONDS": "120"}
    with Service(default_project, env) as service:
        assert service.process is not None
        wait_until(
            lambda: len(worker_pids(service.process.pid)) == 2, message="two workers", timeout=60
        )

        def running_gauge() -> float:
            with service.client() as client:
                return metric_sum(client.get("/metrics").text, "jobs_running")

        with service.client() as client:
            for _ in range(4):
                submit(client, 60)
        wait_until(
            lambda: running_gauge() == 4, message="four jobs running over two workers", timeout=60
        )
        victim = worker_pids(service.process.pid)[0]
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: running_gauge() == 2,
            message="the dead worker's jobs to leave jobs_running",
            timeout=60,
        )
        wait_until(
            lambda: (
                len(worker_pids(service.process.pid)) == 2
                and victim not in worker_pids(service.process.pid)
            ),
            message="uvicorn to replace the dead worker",
            timeout=60,
        )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_idle_service_exits_zero_on(default_project: Path, sig: int) -> None:
    service = Service(default_project).start()
    assert service.stop(sig, timeout=30) == 0, service.output()
    events = [line["event"] for line in service.log_lines()]
    assert events.index("service stopped") > events.index("service started")
