"""SQLite's disk full or read-only, for real: a small tmpfs the test mounts (as root).

The service must answer 503 problem+json naming the cause, report the database
failing in /readyz while /healthz stays 200, lose no job that was accepted, and
come back by itself once the disk has room or is writable again.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .support.jobs import submit, wait_for_job
from .support.polling import wait_until
from .support.service import Service

pytestmark = pytest.mark.xdist_group("storage-faults")


def mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, (
        f"mount {' '.join(args)}: {result.stderr} (the test runs as root)"
    )


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs mounted for this test only."""
    point = tmp_path / "disk"
    point.mkdir()
    mount("-t", "tmpfs", "-o", "size=4m", "tmpfs", str(point))
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


def fill(disk: Path) -> Path:
    """Write a filler file until the disk refuses (ENOSPC); returns it for removal."""
    filler = disk / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for _ in range(100_000):
            try:
                os.write(descriptor, b"\0" * 4096)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
                break
    finally:
        os.close(descriptor)
    return filler


def post(client: httpx.Client) -> httpx.Response:
    return client.post("/api/v1/jobs", json={"kind": "sleep", "payload": {"seconds": 0}})


def readiness(client: httpx.Client) -> dict[str, object]:
    response = client.get("/readyz")
    body: dict[str, object] = response.json()
    return {"status_code": response.status_code, **body}


def test_a_full_disk_is_a_clear_503_and_the_service_recovers(
    default_project: Path, small_disk: Path
) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{small_disk / 'app.db'}"}
    with Service(default_project, env) as service, service.client() as client:
        before = submit(client, 0)
        wait_for_job(client, before)
        filler = fill(small_disk)
        refused = wait_until(
            lambda: (r := post(client)).status_code == 503 and r,
            message="a submission refused once the disk is full",
            timeout=60,
        )
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["detail"] == "The job store cannot write: disk full; retry shortly."
        state = readiness(client)
        assert (state["status_code"], state["checks"]) == (503, {"database": "failing"})
        assert client.get("/healthz").status_code == 200
        filler.unlink()
        wait_until(
            lambda: client.get("/readyz").status_code == 200,
            message="readiness back once the disk has room",
            timeout=60,
        )
        after = submit(client, 0)
        wait_for_job(client, after)
        assert wait_for_job(client, before)["status"] == "succeeded"  # nothing lost
    assert any(service.logs_where(event="job store unavailable"))


def test_a_read_only_disk_at_start_stops_the_service_with_a_clear_line(
    default_project: Path, small_disk: Path
) -> None:
    """A volume mounted read-only (a mistake in the deployment): no silent half-start."""
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{small_disk / 'app.db'}"}
    with Service(default_project, env) as first, first.client() as client:
        wait_for_job(client, submit(client, 0))  # the database exists, migrated
    mount("-o", "remount,ro", str(small_disk))
    try:
        service = Service(default_project, {**env, "DATABASE_CONNECT_TIMEOUT_SECONDS": "2"})
        service.start(wait=False)
        process = service.process
        assert process is not None
        wait_until(lambda: process.poll() is not None, message="the service to exit", timeout=60)
        code = service.stop()
    finally:
        mount("-o", "remount,rw", str(small_disk))
    assert code != 0
    (line,) = service.stderr
    assert line.startswith("database unreachable at sqlite+aiosqlite:"), line
    assert "OperationalError (cannot open the database file) (gave up after" in line
