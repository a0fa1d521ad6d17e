"""The default service booted as a real process and spoken to over HTTP."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from .support.jobs import wait_for_job
from .support.project import answers_of, project_python, tool_env
from .support.service import Service

CONTRACT_METRICS = {
    "http_requests_total": "counter",
    "http_request_duration_seconds": "histogram",
    "jobs_submitted_total": "counter",
    "jobs_finished_total": "counter",
    "jobs_running": "gauge",
}


@pytest.fixture(scope="module")
def service(default_project: Path) -> Iterator[Service]:
    with Service(default_project) as running:
        yield running


def test_health_and_readiness(service: Service) -> None:
    with service.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ok", "checks": {"database": "ok"}}


def test_request_ids_are_echoed_or_generated(service: Service) -> None:
    with service.client() as client:
        assert (
            client.get("/healthz", headers={"X-Request-ID": "abc-1"}).headers["x-request-id"]
            == "abc-1"
        )
        generated = client.get("/healthz", headers={"X-Request-ID": "bad id!"}).headers[
            "x-request-id"
        ]
        assert re.fullmatch(r"[0-9a-f]{32}", generated)


def test_a_job_is_submitted_and_finishes(service: Service) -> None:
    with service.client() as client:
        response = client.post(
            "/api/v1/jobs",
            json={"kind": "sleep", "payload": {"seconds": 0.2}},
            headers={"X-Request-ID": "submit-1"},
        )
        assert response.status_code == 202
        job = response.json()
        assert response.headers["location"] == f"/api/v1/jobs/{job['id']}"
        assert client.get(response.headers["location"]).status_code == 200
        done = wait_for_job(client, job["id"], "succeeded")
        assert done["result"] == {"slept_seconds": 0.2}
        assert done["attempts"] == 1
        listed = client.get("/api/v1/jobs", params={"status": "succeeded"}).json()
        assert job["id"] in [item["id"] for item in listed["items"]]
    # Logged after the row says succeeded: wait for it rather than race it.
    service.wait_for_log(job_id=job["id"], event="job succeeded")
    job_lines = list(service.logs_where(job_id=job["id"]))
    assert {line["event"] for line in job_lines} >= {
        "job submitted",
        "job started",
        "job succeeded",
    }
    assert all(line["logger"] for line in job_lines)


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/nowhere", None, 404),
        ("GET", f"/api/v1/jobs/{uuid.UUID(int=1)}", None, 404),
        ("DELETE", "/healthz", None, 405),
        ("POST", "/api/v1/jobs", {"kind": "sleep", "payload": {"seconds": 3600}}, 422),
        ("POST", "/api/v1/jobs", {"kind": "teleport", "payload": {}}, 422),
        ("GET", "/api/v1/jobs?limit=1000", None, 422),
    ],
)
def test_errors_are_problem_json_without_traces(
    service: Service, method: str, path: str, body: dict | None, status: int
) -> None:
    with service.client() as client:
        response = client.request(method, path, json=body)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"]
    problem = response.json()
    assert problem["status"] == status
    assert {"type", "title", "detail"} <= problem.keys()
    if status == 422:
        assert problem["errors"]
        assert all("field" in error for error in problem["errors"])
    assert "Traceback" not in response.text


def test_metrics_have_contract_names_labels_and_route_templates(service: Service) -> None:
    job_id = uuid.uuid4()
    with service.client() as client:
        client.get(f"/api/v1/jobs/{job_id}")
        client.get("/healthz")
        text = client.get("/metrics").text
    for name, kind in CONTRACT_METRICS.items():
        assert f"# TYPE {name} {kind}" in text, name
    assert str(job_id) not in text
    assert re.search(
        r'^http_requests_total\{method="GET",route="/api/v1/jobs/\{job_id\}",'
        r'status_code="404"\} \d',
        text,
        re.MULTILINE,
    )
    assert re.search(
        r'^http_request_duration_seconds_bucket\{le="[^"]+",method="GET",route="/healthz"\}',
        text,
        re.MULTILINE,
    )
    assert re.search(r'^jobs_submitted_total\{kind="sleep"\}', text, re.MULTILINE)
    assert "process_cpu_seconds_total" in text


def test_stdout_is_json_lines_with_the_contract_keys(service: Service) -> None:
    with service.client() as client:
        client.get("/healthz", headers={"X-Request-ID": "log-check-1"})
    service.wait_for_log(request_id="log-check-1", event="request")
    lines = service.log_lines()
    assert lines
    for line in lines:
        assert {"timestamp", "level", "event", "logger"} <= line.keys(), line
        assert datetime.fromisoformat(line["timestamp"]).utcoffset().total_seconds() == 0
    (access,) = service.logs_where(request_id="log-check-1", event="request")
    assert access["logger"] == "access"
    assert (access["method"], access["path"], access["status_code"]) == ("GET", "/healthz", 200)
    assert isinstance(access["duration_ms"], float)
    uvicorn_lines = [line for line in lines if line["logger"].startswith("uvicorn")]
    assert uvicorn_lines, "uvicorn's own records should come out as JSON too"


def test_a_bad_setting_stops_start_with_one_line(default_project: Path) -> None:
    result = subprocess.run(
        [project_python(default_project), "-m", answers_of(default_project)["package_name"]],
        cwd=default_project,
        env=tool_env({"PORT": "not-a-port", "JOB_CONCURRENCY": "0"}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("invalid setting ")
    assert "PORT:" in lines[0]
    assert "JOB_CONCURRENCY:" in lines[0]
    assert "Traceback" not in result.stderr
