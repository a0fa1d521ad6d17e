"""The in-process job worker: bounded concurrency, leases, retries, graceful drain.

One worker runs in every service process. It claims due jobs of the kinds it
knows from a ``JobRepository`` (domain/ports.py; adapters/sql_jobs.py says why a
claim is atomic), runs at most ``concurrency`` of them at once in a TaskGroup,
renews their leases while they run, and on ``stop()`` claims nothing more, gives
running jobs until the grace deadline, then cancels the rest and puts them back
in the queue.

A run never outlives its lease: when renewals fail (the database is gone) and the
lease this process last secured runs out, the run is cancelled here, because
another replica may already have claimed the job again.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from .domain.jobs import Job, StorageUnavailableError, retry_delay
from .domain.kinds import JobKinds
from .domain.ports import JobRepository
from .observability.hooks import ObservabilityHooks
from .observability.logs import bind_context, get_logger, reset_context
from .observability.metrics import (
    JOBS_FINISHED,
    JOBS_QUEUE_OLDEST_AGE,
    JOBS_QUEUED,
    JOBS_RETRIED,
    JOBS_RUNNING,
)

_ERROR_MAX_CHARS: Final = 2_000
_OUTCOME_RETRY_FIRST_SECONDS: Final = 0.05
_OUTCOME_RETRY_MAX_SECONDS: Final = 2.0
_QUEUE_REPORT_SECONDS: Final = 5.0


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """How a worker paces itself (see Settings for the environment variables)."""

    concurrency: int = 4
    lease_seconds: float = 15.0
    poll_interval_seconds: float = 1.0
    retry_backoff_seconds: float = 2.0
    shutdown_grace_seconds: float = 20.0
    job_timeout_seconds: float = 600.0


def worker_identity() -> str:
    """A lease owner name unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    """Runs jobs from the store until stopped; see the module docstring."""

    def __init__(
        self,
        store: JobRepository,
        kinds: JobKinds,
        options: WorkerOptions,
        hooks: ObservabilityHooks | None = None,
    ) -> None:
        self.owner = worker_identity()
        self._hooks = hooks or ObservabilityHooks()
        self._store = store
        self._kinds = kinds
        self._options = options
        self._log = get_logger("worker")
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._upkeep_stop = asyncio.Event()
        self._deadline: float | None = None
        self._running: dict[uuid.UUID, asyncio.Task[None]] = {}
        # Loop time until which each running job's lease is known to be held.
        self._held_until: dict[uuid.UUID, float] = {}
        # Jobs whose handler returned and whose outcome is being written.
        self._recording: set[uuid.UUID] = set()

    @property
    def running_jobs(self) -> int:
        """How many jobs this worker is executing now."""
        return len(self._running)

    def notify(self) -> None:
        """A job was submitted: look for work now instead of at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Claim nothing more; running jobs get ``shutdown_grace_seconds`` to finish."""
        if not self._stopping.is_set():
            self._deadline = (
                asyncio.get_running_loop().time() + self._options.shutdown_grace_seconds
            )
            self._stopping.set()
            self._wake.set()

    async def run(self) -> None:
        """Claim and run jobs until ``stop()``, then drain; returns when nothing runs."""
        self._log.info("worker started", owner=self.owner, concurrency=self._options.concurrency)
        try:
            async with asyncio.TaskGroup() as group:
                upkeep = [
                    group.create_task(self._keep_leases()),
                    group.create_task(self._report_queue()),
                ]
                await self._claim_until_stopped(group)
                await self._drain()
                # Told, not cancelled: a task cancelled inside a write can leave SQLite's
                # write lock held past the release below. Each finishes its round first.
                self._upkeep_stop.set()
                await asyncio.gather(*upkeep)
        finally:
            await self._release_unfinished()
            self._log.info("worker stopped", owner=self.owner)

    async def _release_unfinished(self) -> None:
        try:
            released = await self._store.release(self.owner)
        except Exception:  # noqa: BLE001 - shutdown goes on; the leases expire instead
            self._log.exception("re-queueing unfinished jobs failed; their leases will expire")
            return
        if released:
            self._log.warning(
                "jobs still running at the grace deadline were re-queued",
                job_ids=[str(job_id) for job_id in released],
            )

    async def _claim_until_stopped(self, group: asyncio.TaskGroup) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            free = self._options.concurrency - len(self._running)
            if free > 0:
                claimed_at = asyncio.get_running_loop().time()
                for job in await self._claim(free):
                    self._held_until[job.id] = claimed_at + self._options.lease_seconds
                    self._running[job.id] = group.create_task(self._execute(job))
            if not self._stopping.is_set():
                await self._sleep(self._options.poll_interval_seconds)

    async def _claim(self, limit: int) -> list[Job]:
        try:
            return await self._store.claim(
                self.owner, limit, self._options.lease_seconds, self._kinds.names
            )
        except Exception:  # noqa: BLE001 - a database hiccup must not stop the worker
            self._log.exception("claiming jobs failed; retrying at the next poll")
            return []

    async def _sleep(self, seconds: float) -> None:
        """Sleep, waking early for a submission, a free slot or ``stop()``."""
        try:
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        except TimeoutError:
            pass

    async def _drain(self) -> None:
        if not self._running:
            return
        self._log.info("draining running jobs", running=len(self._running))
        deadline = self._deadline or asyncio.get_running_loop().time()
        remaining = max(deadline - asyncio.get_running_loop().time(), 0.0)
        _, pending = await asyncio.wait(list(self._running.values()), timeout=remaining)
        for task in pending:
            task.cancel()

    async def _execute(self, job: Job) -> None:
        context = bind_context(job_id=str(job.id), job_kind=job.kind)
        JOBS_RUNNING.inc()
        try:
            with self._hooks.job_execution(job):
                await self._run(job)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the lease expiry recovers the job
            self._log.exception("recording the job's outcome failed; its lease will expire")
        finally:
            JOBS_RUNNING.dec()
            self._running.pop(job.id, None)
            self._held_until.pop(job.id, None)
            self._wake.set()
            reset_context(context)

    async def _run(self, job: Job) -> None:
        self._log.info("job started", attempt=job.attempts)
        kind = self._kinds[job.kind]
        timeout = kind.timeout_seconds or self._options.job_timeout_seconds
        try:
            async with asyncio.timeout(timeout) as deadline:
                result = await kind.run(job.payload)
        except asyncio.CancelledError:
            self._log.warning("job interrupted", attempt=job.attempts)
            raise
        except Exception as error:  # noqa: BLE001 - any handler failure is the job's failure
            if isinstance(error, TimeoutError) and deadline.expired():
                # A hung handler must not hold its slot for ever, nor come back for
                # free at every shutdown: the attempt counts, like any failure.
                error = TimeoutError(f"the job ran past its {timeout:g} s timeout")
            await self._record_failure(job, error)
        else:
            if await self._record(job, lambda: self._store.succeed(job.id, self.owner, result)):
                JOBS_FINISHED.labels(job.kind, "succeeded").inc()
                self._log.info("job succeeded", attempt=job.attempts)
            else:
                self._log.warning("job finished after its lease was lost; result dropped")

    async def _record(self, job: Job, write: Callable[[], Awaitable[bool]]) -> bool:
        """Write the job's outcome, retrying a busy or unreachable store while the lease
        is still ours: dropping the outcome would run the job again once it expired.

        The run is over: while the write is retried, lease renewal must not cancel
        this task (its row may already show the outcome).
        """
        self._recording.add(job.id)
        pause = _OUTCOME_RETRY_FIRST_SECONDS
        try:
            while True:
                try:
                    return await write()
                except StorageUnavailableError as error:
                    loop = asyncio.get_running_loop()
                    until = self._held_until.get(job.id, loop.time())
                    if loop.time() + pause >= until - self._options.lease_seconds / 3:
                        raise
                    self._log.warning(
                        "recording the job's outcome failed; retrying", error=str(error)
                    )
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, _OUTCOME_RETRY_MAX_SECONDS)
        finally:
            self._recording.discard(job.id)

    async def _record_failure(self, job: Job, error: Exception) -> None:
        message = f"{type(error).__name__}: {error}"[:_ERROR_MAX_CHARS]
        if job.attempts < job.max_attempts:
            delay = retry_delay(job.attempts, self._options.retry_backoff_seconds)
            if await self._record(
                job, lambda: self._store.retry_later(job.id, self.owner, message, delay)
            ):
                JOBS_RETRIED.labels(job.kind).inc()
                self._log.warning(
                    "job attempt failed; retrying",
                    attempt=job.attempts,
                    retry_in_seconds=round(delay, 3),
                    error=message,
                )
            return
        if await self._record(job, lambda: self._store.fail(job.id, self.owner, message)):
            JOBS_FINISHED.labels(job.kind, "failed").inc()
            self._log.error("job failed", attempt=job.attempts, error=message)

    async def _keep_leases(self) -> None:
        """Renew our leases and recover jobs whose owner died, a few times per lease."""
        interval = self._options.lease_seconds / 3
        # The first round at once: jobs a crashed predecessor left run again as soon
        # as their leases end, not one interval later.
        first = True
        while first or await self._upkeep_pause(interval):
            first = False
            try:
                await self._renew_leases()
                await self._recover_expired()
            except Exception:  # noqa: BLE001 - keep renewing; a missed beat is retried
                self._log.exception("lease upkeep failed; retrying")
                self._cancel_runs_past_their_lease()

    async def _renew_leases(self) -> None:
        running = list(self._running)
        asked_at = asyncio.get_running_loop().time()
        held = await self._store.extend_leases(self.owner, running, self._options.lease_seconds)
        for job_id in held:
            if job_id in self._held_until:
                self._held_until[job_id] = asked_at + self._options.lease_seconds
        for job_id in set(running) - held:
            self._cancel(job_id, "job lease lost; cancelling this run")

    def _cancel_runs_past_their_lease(self) -> None:
        # Cancel a run whose lease would end before the next renewal round: by then
        # another replica may have recovered and claimed the job.
        horizon = asyncio.get_running_loop().time() + self._options.lease_seconds / 3
        for job_id, until in list(self._held_until.items()):
            if until <= horizon:
                self._cancel(job_id, "job lease ends before renewals recover; cancelling this run")

    def _cancel(self, job_id: uuid.UUID, message: str) -> None:
        task = self._running.get(job_id)
        if job_id in self._recording:
            return  # the run is over; its outcome is being written (fenced by the lease)
        if task is not None and not task.done():
            self._log.warning(message, job_id=str(job_id))
            task.cancel()

    async def _recover_expired(self) -> None:
        requeued, failed = await self._store.recover_expired()
        for job in requeued:
            self._log.warning("job lease expired; re-queued", job_id=str(job.id))
        if requeued:
            self._wake.set()  # claim them now, not at the next poll
        for job in failed:
            JOBS_FINISHED.labels(job.kind, "failed").inc()
            self._log.error("job lease expired on its last attempt; failed", job_id=str(job.id))

    async def _report_queue(self) -> None:
        """Publish the queue's depth and the oldest due job's wait as gauges."""
        while True:
            try:
                queued, oldest_age = await self._store.queue_depth()
            except Exception:  # noqa: BLE001 - a missed sample is harmless
                self._log.exception("reading the queue depth failed")
            else:
                JOBS_QUEUED.set(queued)
                JOBS_QUEUE_OLDEST_AGE.set(oldest_age)
            if not await self._upkeep_pause(_QUEUE_REPORT_SECONDS):
                return

    async def _upkeep_pause(self, seconds: float) -> bool:
        """Wait ``seconds``; False at once when the upkeep is told to stop."""
        try:
            async with asyncio.timeout(seconds):
                await self._upkeep_stop.wait()
        except TimeoutError:
            return True
        return False
