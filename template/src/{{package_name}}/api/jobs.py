"""The job API: submit, look up and list jobs."""

from __future__ import annotations

from enum import Enum
from typing import Annotated
from uuid import UUID

from fastapi import FastAPI, Query, Response

from ..domain.jobs import JobStatus, PageCursor
from ..observability.logs import get_logger
from ..observability.metrics import JOBS_SUBMITTED
from .dependencies import JobKindsDep, JobStoreDep, SettingsDep, WorkerDep
from .schemas import JobList, JobOut, JobSubmission, Problem

PREFIX = "/api/v1/jobs"
_log = get_logger("jobs")
_PROBLEM = {"model": Problem, "content": {"application/problem+json": {}}}


async def submit_job(
    submission: JobSubmission,
    response: Response,
    store: JobStoreDep,
    kinds: JobKindsDep,
    worker: WorkerDep,
    settings: SettingsDep,
) -> JobOut:
    """Store a job and queue it; 422 for an unknown kind or a payload the kind refuses."""
    payload = kinds.validate(submission.kind, submission.payload)
    job = await store.add(submission.kind, payload, settings.job_max_attempts)
    JOBS_SUBMITTED.labels(job.kind).inc()
    worker.notify()
    response.headers["Location"] = f"{PREFIX}/{job.id}"
    _log.info("job submitted", job_id=str(job.id), job_kind=job.kind)
    return JobOut.of(job)


async def get_job(job_id: UUID, store: JobStoreDep) -> JobOut:
    """The job with this id; 404 if there is none."""
    return JobOut.of(await store.get(job_id))


async def list_jobs(
    store: JobStoreDep,
    status: JobStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> JobList:
    """Jobs newest first; filter by ``status``; page with ``limit`` and ``cursor``."""
    after = PageCursor.decode(cursor) if cursor is not None else None
    return JobList.of(await store.page(limit=limit, status=status, cursor=after))


def add_job_routes(app: FastAPI) -> None:
    """Register the job API on ``app`` (see api/__init__.py for why)."""
    tags: list[str | Enum] = ["jobs"]
    app.add_api_route(
        PREFIX,
        submit_job,
        methods=["POST"],
        status_code=202,
        tags=tags,
        responses={422: _PROBLEM},
    )
    app.add_api_route(
        f"{PREFIX}/{{job_id}}",
        get_job,
        methods=["GET"],
        tags=tags,
        responses={404: _PROBLEM, 422: _PROBLEM},
    )
    app.add_api_route(PREFIX, list_jobs, methods=["GET"], tags=tags, responses={422: _PROBLEM})
