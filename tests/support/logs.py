"""What the log pipelines carry: the service's real JSON lines and the fields that matter.

The pipelines' Python side never changes with the answer (``test_log_pipeline_targets``
proves it), so the lines of the booted default project stand for every variant.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from .jobs import submit
from .polling import wait_until
from .questions import choices
from .service import Service

# The pipelines that ship somewhere (stdout ships nothing), and those built on Vector.
PIPELINES = [pipeline for pipeline in choices("log_pipeline") if pipeline != "stdout"]
VECTOR = [pipeline for pipeline in PIPELINES if pipeline.startswith("vector")]
# Fields tracing adds (contract §7): the default project traces, and the request below
# sends a sampled traceparent that the service is told to trust (by default a caller's
# flag does not decide), so its lines carry them.
TRACE_FIELDS = {"trace_id", "span_id"}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
# Only on a line with a traceback (logs.py's ExceptionRenderer); no request here fails.
EXCEPTION_FIELDS = {"exception"}
# What the pipeline adds to the service's own fields.
PIPELINE_FIELDS = {"@timestamp", "service", "instance", "stream"}
# The fields the issue asks every pipeline to keep searchable.
KEPT_FIELDS = {"request_id", "trace_id", "level", "job_id"}


def service_lines(project: Path) -> list[dict[str, Any]]:
    """JSON lines of the booted service: a request, a job submitted and run, a 404."""
    # A database of its own: the shared default project's file may hold other tests'
    # jobs (long ones among them) that the worker would run first.
    with tempfile.TemporaryDirectory(prefix="lines-") as folder:
        return _lines_of(project, Path(folder) / "lines.db")


def _lines_of(project: Path, database: Path) -> list[dict[str, Any]]:
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
    }
    with Service(project, env) as service, service.client() as client:
        assert client.get("/healthz").status_code == 200
        job_id = submit(
            client, 0, headers={"X-Request-ID": "pipeline-check-1", "traceparent": TRACEPARENT}
        )
        wait_until(
            lambda: client.get(f"/api/v1/jobs/{job_id}").json()["status"] == "succeeded",
            message=f"job {job_id} to succeed",
            timeout=60,
            context=service.output,
        )
        assert client.get("/api/v1/jobs/unknown").status_code in {404, 422}
        wait_until(
            lambda: any(line.get("job_id") == job_id for line in service.log_lines()),
            message=f"the log lines of job {job_id}",
            timeout=60,
            context=service.output,
        )
        lines = service.log_lines()
    assert any(line.get("request_id") == "pipeline-check-1" for line in lines)
    assert any(line.get("trace_id") == TRACE_ID and "span_id" in line for line in lines)
    return lines


def real_keys(lines: list[dict[str, Any]]) -> set[str]:
    return {key for line in lines for key in line}


def pipeline_answers(key: str) -> dict[str, Any]:
    """``"<log_pipeline>:<deploy_target>[:<tracing_exporter>]"`` -> the answers of that render."""
    pipeline, target, *tracing = key.split(":")
    answers: dict[str, Any] = {"log_pipeline": pipeline, "deploy_target": target}
    if tracing:
        answers["tracing_exporter"] = tracing[0]
    return answers
