"""The example job kind (``sleep``) submitted to a booted service, and waiting for it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from .polling import wait_until


def submit(
    client: httpx.Client, seconds: float = 0, headers: Mapping[str, str] | None = None
) -> str:
    """Submit a ``sleep`` job; returns its id once the service answered 202."""
    response = client.post(
        "/api/v1/jobs", json={"kind": "sleep", "payload": {"seconds": seconds}}, headers=headers
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    found: dict[str, Any] = client.get(f"/api/v1/jobs/{job_id}").json()
    return found


def wait_for_job(
    client: httpx.Client, job_id: str, status: str = "succeeded", timeout: float = 30
) -> dict[str, Any]:
    """The job once it has ``status``; a timeout shows the job as last seen."""
    latest: dict[str, Any] = {}

    def reached() -> dict[str, Any] | None:
        latest.clear()
        latest.update(job(client, job_id))
        return dict(latest) if latest["status"] == status else None

    return wait_until(
        reached,
        message=f"job {job_id} to be {status}",
        timeout=timeout,
        context=lambda: f"the job: {latest}",
    )


def run_one_job(client: httpx.Client) -> None:
    """Submit a zero-second job and wait, at the URL its Location names, until it succeeded."""
    submitted = client.post("/api/v1/jobs", json={"kind": "sleep", "payload": {"seconds": 0}})
    assert submitted.status_code == 202, submitted.text
    job_url = submitted.headers["location"]
    wait_until(
        lambda: client.get(job_url).json()["status"] == "succeeded",
        message="the job to succeed",
        timeout=30,
    )
