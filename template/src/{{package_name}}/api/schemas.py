"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ..domain.jobs import Job, JobPage, JobStatus

# Levels of objects and arrays a payload may nest, itself included: deep enough for
# any real job, shallow enough that storing and serialising it never recurses far.
MAX_PAYLOAD_DEPTH: Final = 32


def nesting_depth(value: object) -> int:
    """How many objects and arrays deep ``value`` nests (a scalar is 0), without recursion."""
    deepest = 0
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            pending.extend((child, depth + 1) for child in item)
    return deepest


def _shallow(payload: dict[str, Any]) -> dict[str, Any]:
    if nesting_depth(payload) > MAX_PAYLOAD_DEPTH:
        msg = f"nests deeper than {MAX_PAYLOAD_DEPTH} levels of objects and arrays"
        raise ValueError(msg)
    return payload


class JobSubmission(BaseModel):
    """A job to run: its kind and the kind's payload."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(min_length=1, max_length=100, examples=["sleep"])
    payload: Annotated[dict[str, Any], AfterValidator(_shallow)] = Field(
        default_factory=dict, examples=[{"seconds": 1}]
    )


class JobOut(BaseModel):
    """A job as the API shows it."""

    id: UUID
    kind: str
    payload: dict[str, Any]
    status: JobStatus
    attempts: int
    result: dict[str, Any] | None
    error: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, job: Job) -> JobOut:
        """The API view of a stored job."""
        return cls(
            id=job.id,
            kind=job.kind,
            payload=job.payload,
            status=job.status,
            attempts=job.attempts,
            result=job.result,
            error=job.error,
            created_at=job.created_at,
            updated_at=job.updated_at,
        )


class JobList(BaseModel):
    """One page of jobs, newest first."""

    items: list[JobOut]
    next_cursor: str | None

    @classmethod
    def of(cls, page: JobPage) -> JobList:
        """The API view of a page of stored jobs."""
        return cls(items=[JobOut.of(job) for job in page.items], next_cursor=page.next_cursor)


class Health(BaseModel):
    """Liveness: the process runs."""

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """Readiness: every dependency answers and shutdown has not begun."""

    status: Literal["ok", "unavailable", "shutting_down"]
    checks: dict[str, Literal["ok", "failing"]]


class InvalidField(BaseModel):
    """One invalid part of a request."""

    field: str = Field(examples=["body.payload.seconds"])
    message: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem document (``application/problem+json``)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[InvalidField] | None = Field(
        default=None, description="Present on 422: every invalid field."
    )
