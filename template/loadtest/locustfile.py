"""Load-test scenario: users submit short sleep jobs, poll them, list jobs, probe liveness.

Requests are named by route template (``/api/v1/jobs/{job_id}``), so Locust's
statistics line up with the service's own metrics and with the SLO in slo.toml.
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import Final

from locust import HttpUser, between, task

SLEEP_SECONDS: Final = (0.0, 0.05, 0.1, 0.2)
"""Payloads cycle through these: jobs long enough to overlap, short enough to finish."""

TRACKED_JOBS: Final = 20
"""Each user polls the jobs it submitted most recently, up to this many."""


class JobsUser(HttpUser):
    """A client of the jobs API."""

    wait_time = between(0.1, 0.5)

    def on_start(self) -> None:
        self._seconds = itertools.cycle(SLEEP_SECONDS)
        self._job_ids: deque[str] = deque(maxlen=TRACKED_JOBS)

    @task(3)
    def submit_job(self) -> None:
        payload = {"kind": "sleep", "payload": {"seconds": next(self._seconds)}}
        with self.client.post(
            "/api/v1/jobs", json=payload, name="/api/v1/jobs", catch_response=True
        ) as response:
            if response.status_code != 202:
                response.failure(f"expected 202, got {response.status_code}")
                return
            self._job_ids.append(response.json()["id"])

    @task(3)
    def poll_job(self) -> None:
        if not self._job_ids:
            return
        job_id = self._job_ids[0]
        self._job_ids.rotate(-1)
        with self.client.get(
            f"/api/v1/jobs/{job_id}", name="/api/v1/jobs/{job_id}", catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"expected 200, got {response.status_code}")
                return
            job = response.json()
            if job["status"] == "failed":
                response.failure(f"job {job_id} failed: {job['error']}")

    @task(2)
    def list_jobs(self) -> None:
        self.client.get("/api/v1/jobs?limit=20", name="/api/v1/jobs")

    @task(1)
    def healthz(self) -> None:
        self.client.get("/healthz", name="/healthz")
