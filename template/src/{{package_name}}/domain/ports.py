"""Ports: what the use cases and the worker need from the outside, as protocols.

The adapters (``adapters/``) implement them; ``main.py`` picks which. Tests use the
in-memory job repository of ``tests/fakes.py``, which passes the same contract tests
as the SQL one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from .jobs import Job, JobPage, JobStatus, JsonObject, PageCursor


class JobRepository(Protocol):
    """Durable jobs, and the lease protocol that keeps a running job on one worker.

    A claimed job is leased to an owner until an expiry. Every write that finishes
    a job names the owner and succeeds only while that owner still holds the lease,
    so a worker that lost its lease cannot overwrite the new owner's work.
    """

    async def add(
        self,
        kind: str,
        payload: JsonObject,
        max_attempts: int,
        trace_context: JsonObject | None = None,
    ) -> Job:
        """Store a new queued job and return it."""
        ...

    async def get(self, job_id: UUID) -> Job:
        """The job with ``job_id``; JobNotFoundError if there is none."""
        ...

    async def page(
        self, *, limit: int, status: JobStatus | None = None, cursor: PageCursor | None = None
    ) -> JobPage:
        """Jobs newest first, ``limit`` at a time, after ``cursor``."""
        ...

    async def queue_depth(self) -> tuple[int, float]:
        """Queued jobs, and seconds the oldest due one has waited (0 when none is due)."""
        ...

    async def claim(
        self, owner: str, limit: int, lease_seconds: float, kinds: Sequence[str]
    ) -> list[Job]:
        """Move up to ``limit`` due jobs of ``kinds`` from queued to running, leased to ``owner``."""
        ...

    async def extend_leases(
        self, owner: str, job_ids: Sequence[UUID], lease_seconds: float
    ) -> set[UUID]:
        """Renew ``owner``'s leases on ``job_ids``; returns the ids it still holds."""
        ...

    async def succeed(self, job_id: UUID, owner: str, result: JsonObject) -> bool:
        """Record success; False if ``owner`` no longer holds the job's lease."""
        ...

    async def fail(self, job_id: UUID, owner: str, error: str) -> bool:
        """Record a final failure; False if ``owner`` no longer holds the job's lease."""
        ...

    async def retry_later(self, job_id: UUID, owner: str, error: str, delay_seconds: float) -> bool:
        """Queue the job again after ``delay_seconds``; False if the lease was lost."""
        ...

    async def release(self, owner: str) -> list[UUID]:
        """Put ``owner``'s running jobs back in the queue, not counting the attempt."""
        ...

    async def recover_expired(self) -> tuple[list[Job], list[Job]]:
        """Running jobs whose lease expired: (re-queued, failed on their last attempt)."""
        ...

    async def purge_finished(self, finished_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` succeeded or failed jobs last changed before ``finished_before``."""
        ...


@dataclass(frozen=True, slots=True)
class StorageUsage:
    """How big the job store is, and how much room its disk has left (when known)."""

    size_bytes: int | None
    free_ratio: float | None


class StorageMeter(Protocol):
    """Measures the job store's size and free space, for the disk alert."""

    async def usage(self) -> StorageUsage:
        """The current usage; fields the backend cannot see are None."""
        ...


class ReadinessCheck(Protocol):
    """One dependency /readyz asks about; ``check`` raises when it is not usable."""

    @property
    def name(self) -> str:
        """The key under ``checks`` in the readiness body (``database``, an integration's name)."""
        ...

    async def check(self) -> None:
        """Return when the dependency answers; raise otherwise. Bounded in time."""
        ...


class LivenessCheck(Protocol):
    """Something /healthz asks: once it gives a reason, only a restart of the process helps."""

    @property
    def name(self) -> str:
        """The key under ``checks`` in the failing liveness body (an integration's name)."""
        ...

    def restart_reason(self) -> str | None:
        """Why the process must be restarted, or None. Instant: no I/O, no waiting."""
        ...
