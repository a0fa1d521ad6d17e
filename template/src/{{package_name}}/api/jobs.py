"""The job API: submit, look up and list jobs."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any
from uuid import UUID

from fastapi import FastAPI, Query, Response

from ..domain.jobs import JobStatus
from ..observability.logs import get_logger
from ..observability.metrics import JOBS_SUBMITTED
from .dependencies import JobServiceDep
from .schemas import JobList, JobOut, JobSubmission, Problem

PREFIX = "/api/v1/jobs"
_log = get_logger("jobs")
# The literal, not problems.PROBLEM_JSON: the POST path stays the eight files it is.
_PROBLEM = {"model": Problem, "content": {"application/problem+json": {}}}


def _problem(description: str) -> dict[str, Any]:
    return {**_PROBLEM, "description": description}


# What POST answers besides 202, and why (docs/design.md, "Request limits").
_SUBMISSION_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _problem("The body is not JSON text the service can read: not UTF-8, or nested too deep."),
    408: _problem("The body did not arrive within REQUEST_BODY_TIMEOUT_SECONDS."),
    413: _problem("The body is, or declares it is, larger than MAX_REQUEST_BODY_BYTES."),
    422: _problem(
        "Malformed JSON, an unknown kind, a payload the kind refuses, or one nested too deep."
    ),
}


async def submit_job(submission: JobSubmission, response: Response, jobs: JobServiceDep) -> JobOut:
    """Store a job and queue it; 422 for an unknown kind or a payload the kind refuses."""
    job = await jobs.submit(submission.kind, submission.payload)
    JOBS_SUBMITTED.labels(job.kind).inc()
    response.headers["Location"] = f"{PREFIX}/{job.id}"
    _log.info("job submitted", job_id=str(job.id), job_kind=job.kind)
    return JobOut.of(job)


async def get_job(job_id: UUID, jobs: JobServiceDep) -> JobOut:
    """The job with this id; 404 if there is none."""
    return JobOut.of(await jobs.get(job_id))


async def list_jobs(
    jobs: JobServiceDep,
    status: JobStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> JobList:
    """Jobs newest first; filter by ``status``; page with ``limit`` and ``cursor``."""
    return JobList.of(await jobs.list(limit=limit, status=status, cursor=cursor))


def add_job_routes(app: FastAPI) -> None:
    """Register the job API on ``app`` (see api/__init__.py for why)."""
    tags: list[str | Enum] = ["jobs"]
    app.add_api_route(
        PREFIX,
        submit_job,
        methods=["POST"],
        status_code=202,
        tags=tags,
        responses=_SUBMISSION_ERRORS,
    )
    app.add_api_route(
        f"{PREFIX}/{{job_id}}",
        get_job,
        methods=["GET"],
        tags=tags,
        responses={404: _PROBLEM, 422: _PROBLEM},
    )
    app.add_api_route(PREFIX, list_jobs, methods=["GET"], tags=tags, responses={422: _PROBLEM})
