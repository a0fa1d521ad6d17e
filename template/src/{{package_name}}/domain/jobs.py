"""Jobs: what a job is, its life cycle, and the rules for retrying one.

Plain Python: no web framework and no database here.
"""

from __future__ import annotations

import base64
import binascii
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

JsonObject = dict[str, Any]


class JobStatus(StrEnum):
    """queued -> running -> succeeded | failed; running -> queued on retry or drain."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Job:
    """A unit of background work, as stored."""

    id: UUID
    kind: str
    payload: JsonObject
    status: JobStatus
    attempts: int
    max_attempts: int
    result: JsonObject | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    # W3C trace context of the submitting request (traceparent, tracestate), if traced.
    trace_context: JsonObject | None = None


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid field of a request, named by its dotted location."""

    field: str
    message: str
    type: str


class JobNotFoundError(LookupError):
    """No job has the requested id."""

    def __init__(self, job_id: UUID) -> None:
        super().__init__(f"no job with id {job_id}")
        self.job_id = job_id


class StorageUnavailableError(Exception):
    """The job store is unreachable or busy for now; the caller may try again shortly."""


class InvalidJobError(ValueError):
    """A submission names an unknown kind or carries a payload its kind refuses."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{error.field}: {error.message}" for error in errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class PageCursor:
    """Position after the last job of a page (newest first: created_at, then id)."""

    created_at: datetime
    job_id: UUID

    def encode(self) -> str:
        raw = f"{self.created_at.isoformat()}|{self.job_id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> PageCursor:
        """Parse a cursor from a previous page; InvalidJobError if it is not one.

        The time comes back in UTC, as stored. One whose offset moves it out of
        datetime's range (year 1 or 9999 at the edge) is no cursor of ours either.
        """
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            created_at, _, job_id = raw.partition("|")
            moment = datetime.fromisoformat(created_at)
            if moment.tzinfo is None:
                msg = "a cursor's time must carry its offset"
                raise ValueError(msg)
            return cls(moment.astimezone(UTC), UUID(job_id))
        except (ValueError, OverflowError, binascii.Error) as error:
            field = FieldError("query.cursor", "is not a cursor from a previous page", "cursor")
            raise InvalidJobError([field]) from error


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of jobs and the cursor of the next page, if there is one."""

    items: list[Job]
    next_cursor: str | None


def retry_delay(
    attempt: int,
    base_seconds: float,
    cap_seconds: float = 300.0,
    jitter: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before attempt ``attempt + 1``: exponential, capped, jittered.

    The jitter keeps jobs that failed together from retrying together.
    """
    ceiling = min(cap_seconds, base_seconds * 2.0 ** max(attempt - 1, 0))
    return ceiling * (0.5 + jitter() / 2)
