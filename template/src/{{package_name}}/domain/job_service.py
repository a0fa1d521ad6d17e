"""The job use cases: submit, look up and list jobs.

The API calls these; they know the job kinds and the repository port, nothing
of HTTP or SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from .jobs import Job, JobPage, JobStatus, JsonObject, PageCursor
from .kinds import JobKinds
from .ports import JobRepository


def _no_trace_context() -> JsonObject | None:
    return None


class JobService:
    """Submit, get and list jobs against a ``JobRepository``."""

    def __init__(
        self,
        repository: JobRepository,
        kinds: JobKinds,
        *,
        max_attempts: int,
        on_submitted: Callable[[Job], None] = lambda _job: None,
        trace_context: Callable[[], JsonObject | None] = _no_trace_context,
    ) -> None:
        """``on_submitted`` runs after a job is stored (it wakes the worker).

        ``trace_context`` returns what to store with a job submitted now, so its
        execution continues the submitting request's trace (tracing).
        """
        self._repository = repository
        self._kinds = kinds
        self._max_attempts = max_attempts
        self._on_submitted = on_submitted
        self._trace_context = trace_context

    async def submit(self, kind: str, payload: JsonObject) -> Job:
        """Validate and store a job; InvalidJobError for an unknown kind or a refused payload."""
        normalised = self._kinds.validate(kind, payload)
        job = await self._repository.add(
            kind, normalised, self._max_attempts, self._trace_context()
        )
        self._on_submitted(job)
        return job

    async def get(self, job_id: UUID) -> Job:
        """The job with ``job_id``; JobNotFoundError if there is none."""
        return await self._repository.get(job_id)

    async def list(
        self, *, limit: int, status: JobStatus | None = None, cursor: str | None = None
    ) -> JobPage:
        """Jobs newest first; InvalidJobError for a cursor that no page handed out."""
        after = PageCursor.decode(cursor) if cursor is not None else None
        return await self._repository.page(limit=limit, status=status, cursor=after)
