"""The jobs table, and the SQL job repository (domain/ports.py) on SQLite and PostgreSQL.

Claiming is one ``WITH due AS (SELECT ... LIMIT n) UPDATE ... WHERE id IN due
RETURNING`` statement: the rows it changes from ``queued`` to ``running`` belong to the
caller, whatever other processes do at the same moment. SQLite serialises
writers on its database lock; on PostgreSQL the inner select carries
``FOR UPDATE SKIP LOCKED`` (SQLAlchemy drops that clause for SQLite), so
concurrent claimers skip each other's rows instead of waiting.

A claimed job carries a lease (owner and expiry). The owner extends it while
the job runs; a job whose lease expired (its process died) is put back in the
queue, and every write that finishes a job checks the lease, so a worker that
lost its lease cannot overwrite the new owner's work.

Submissions and outcomes are written by group commit (``GroupCommit``): calls that
arrive while a write of theirs is in flight wait for it, then go together in the
next one, as one statement in one transaction. A lone call is written at once (no
timer), so batching adds no latency; under load one commit carries many jobs,
which is what makes the store fast (docs/design.md, "Group commit").
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Generic, TypeVar
from uuid import UUID, uuid4

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    TypeDecorator,
    Update,
    and_,
    bindparam,
    case,
    delete,
    func,
    null,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from ..domain.jobs import (
    Job,
    JobNotFoundError,
    JobPage,
    JobStatus,
    JsonObject,
    PageCursor,
    StorageUnavailableError,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            msg = "naive datetime given to a UTC column"
            raise ValueError(msg)
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


jobs = Table(
    "jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(100), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("result", JSON, nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("run_after", UTCDateTime, nullable=False),
    Column("lease_owner", String(128), nullable=True),
    Column("lease_expires_at", UTCDateTime, nullable=True),
    Column("trace_context", JSON, nullable=True),
    CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed')", name="status"),
    Index("ix_jobs_claim", "status", "run_after"),
    Index("ix_jobs_newest", "created_at", "id"),
    Index("ix_jobs_lease", "status", "lease_expires_at"),
    Index("ix_jobs_finished", "status", "updated_at"),
)


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _to_job(row: Row[Any]) -> Job:
    return _job_of(row._mapping)


def _job_of(values: Mapping[Any, Any]) -> Job:
    """A job from its column values: a row read back, or the values just inserted."""
    return Job(
        id=UUID(values["id"]),
        kind=values["kind"],
        payload=values["payload"],
        status=JobStatus(values["status"]),
        attempts=values["attempts"],
        max_attempts=values["max_attempts"],
        result=values["result"],
        error=values["error"],
        created_at=values["created_at"],
        updated_at=values["updated_at"],
        trace_context=values["trace_context"],
    )


# What SQLite and PostgreSQL say when the store cannot take writes at all, as
# opposed to a busy or unreachable database: readiness stays off until a write works.
_WRITE_REFUSALS = {
    "database or disk is full": "disk full",
    "could not extend file": "disk full",
    "no space left on device": "disk full",
    "readonly database": "read-only",
    "read-only file system": "read-only",
    "read-only transaction": "read-only",
    # SQLite in WAL mode on a read-only volume cannot create its -shm file.
    "unable to open database file": "cannot open the database file",
}


def write_refusal(error: BaseException) -> str | None:
    """``disk full`` or ``read-only`` when ``error`` says writes cannot succeed, else None."""
    text = str(getattr(error, "orig", error)).lower()
    return next((reason for key, reason in _WRITE_REFUSALS.items() if key in text), None)


_RELEASED_LEASE = {"lease_owner": None, "lease_expires_at": None}
_INSERT: Final = jobs.insert()


def _claim_statement() -> Update:
    """The claim, built once with bound parameters: building it took most of a claim's CPU."""
    now = bindparam("now", type_=UTCDateTime())
    due = (
        select(jobs.c.id)
        .where(
            jobs.c.status == JobStatus.QUEUED.value,
            jobs.c.run_after <= now,
            jobs.c.kind.in_(bindparam("kinds", expanding=True)),
        )
        .order_by(jobs.c.run_after, jobs.c.created_at)
        .limit(bindparam("limit", type_=Integer()))
        .with_for_update(skip_locked=True)
        # Materialised on PostgreSQL: a LIMIT ... SKIP LOCKED subquery that the
        # planner re-runs inside the IN (a semi-join) picks new rows each time,
        # and the claim would take more than ``limit`` jobs.
        .cte("due")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    return (
        update(jobs)
        .where(jobs.c.id.in_(select(due.c.id)), jobs.c.status == JobStatus.QUEUED.value)
        .values(
            status=JobStatus.RUNNING.value,
            attempts=jobs.c.attempts + 1,
            lease_owner=bindparam("owner", type_=String()),
            lease_expires_at=bindparam("lease_expires_at", type_=UTCDateTime()),
            updated_at=now,
        )
        .returning(jobs)
    )


_CLAIM: Final = _claim_statement()
# Rows per group commit: bounds one statement's size (and its bound parameters).
GROUP_COMMIT_MAX_ROWS: Final = 200


Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    """Write items in batches: one writer at a time, taking everything that waits.

    ``write`` stores a batch in one transaction and returns one result per item.
    A caller whose batch fails gets the error; a caller cancelled while waiting
    (a client that went away) does not cancel the write, which the other items
    of its batch need.
    """

    def __init__(
        self,
        write: Callable[[list[Item]], Awaitable[list[Result]]],
        max_batch: int = GROUP_COMMIT_MAX_ROWS,
    ) -> None:
        self._write = write
        self._max_batch = max_batch
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        """Write ``item`` with whatever else is waiting; its result once committed."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_waiting())
        return await future

    async def _write_waiting(self) -> None:
        batch: list[tuple[Item, asyncio.Future[Result]]] = []
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                try:
                    results = await self._write([item for item, _ in batch])
                except Exception as error:  # noqa: BLE001 - each caller gets it
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(_copy_of(error))
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        except asyncio.CancelledError:
            # The loop is closing: nobody waits for an answer any more.
            for _, future in batch + self._waiting:
                future.cancel()
            self._waiting.clear()
            raise
        finally:
            self._writer = None


def _copy_of(error: Exception) -> Exception:
    """One exception per waiting caller: a raised exception collects its traceback."""
    if isinstance(error, StorageUnavailableError):
        copy = StorageUnavailableError(str(error))
        copy.__cause__ = error.__cause__
        return copy
    return error


@dataclass(frozen=True, slots=True)
class _Outcome:
    """How a leased run ended, as one row of a batched outcome write."""

    job_id: str
    owner: str
    status: str
    result: JsonObject | None = None
    error: str | None = None
    run_after: datetime | None = None


def _per_row(ids: list[str], values: list[Any], kind: Any) -> ColumnElement[Any] | Any:
    """One value for every row, or a ``CASE id WHEN ... END`` choosing each row's own."""
    if all(value == values[0] for value in values):
        first = values[0]
        return null() if first is None else first
    whens = {
        job_id: null() if value is None else type_coerce(value, kind)
        for job_id, value in zip(ids, values, strict=True)
    }
    return case(whens, value=jobs.c.id)


class SqlJobRepository:
    """Jobs in the service's database (a ``JobRepository``). Every write is one statement."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        # Why writes last failed for good (disk full, read-only); None once one works.
        self.write_refused: str | None = None
        self._inserts = GroupCommit(self._insert)
        self._outcomes = GroupCommit(self._write_outcomes)

    @asynccontextmanager
    async def _unavailable_as_domain_error(self) -> AsyncIterator[None]:
        """A database that is down, unreachable, locked or full: StorageUnavailableError.

        Callers answer 503 (the API) or retry at the next poll (the worker). The
        message names the error's type or a fixed reason only: the driver's text
        may quote a statement.
        """
        try:
            yield
        except (OperationalError, InterfaceError, OSError, TimeoutError) as error:
            refusal = write_refusal(error)
            if refusal is not None:
                self.write_refused = refusal
                raise StorageUnavailableError(f"the job store cannot write: {refusal}") from error
            raise StorageUnavailableError(type(error).__name__) from error

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        async with self._unavailable_as_domain_error(), self._engine.connect() as connection:
            yield connection

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        async with self._unavailable_as_domain_error(), self._engine.begin() as connection:
            yield connection

    async def probe_write(self) -> None:
        """Rewrite one row as it is; StorageUnavailableError while writes are refused.

        Readiness calls this only after a write was refused, so that it turns back
        on by itself once the disk has room again (no traffic reaches a pod that
        is not ready, so a submission would never clear it).
        """
        oldest = select(jobs.c.id).order_by(jobs.c.created_at).limit(1).scalar_subquery()
        async with self._transaction() as connection:
            await connection.execute(
                update(jobs).where(jobs.c.id == oldest).values(updated_at=jobs.c.updated_at)
            )
        self.write_refused = None

    async def add(
        self,
        kind: str,
        payload: JsonObject,
        max_attempts: int,
        trace_context: JsonObject | None = None,
    ) -> Job:
        """Store a new queued job and return it."""
        now = utc_now()
        values = {
            "id": str(uuid4()),
            "kind": kind,
            "payload": payload,
            "status": JobStatus.QUEUED.value,
            "attempts": 0,
            "max_attempts": max_attempts,
            "result": None,
            "error": None,
            "created_at": now,
            "updated_at": now,
            "run_after": now,
            "trace_context": trace_context,
            **_RELEASED_LEASE,
        }
        await self._inserts.submit(values)
        return _job_of(values)

    async def _insert(self, rows: list[dict[str, Any]]) -> list[None]:
        # One INSERT for the batch: executemany, which SQLAlchemy sends as
        # multi-row VALUES where the driver allows.
        async with self._transaction() as connection:
            await connection.execute(_INSERT, rows)
        self.write_refused = None
        return [None] * len(rows)

    async def get(self, job_id: UUID) -> Job:
        """The job with ``job_id``; JobNotFoundError if there is none."""
        async with self._connection() as connection:
            row = (
                await connection.execute(select(jobs).where(jobs.c.id == str(job_id)))
            ).one_or_none()
        if row is None:
            raise JobNotFoundError(job_id)
        return _to_job(row)

    async def page(
        self, *, limit: int, status: JobStatus | None = None, cursor: PageCursor | None = None
    ) -> JobPage:
        """Jobs newest first, ``limit`` at a time, after ``cursor``."""
        query = select(jobs).order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit + 1)
        if status is not None:
            query = query.where(jobs.c.status == status.value)
        if cursor is not None:
            query = query.where(
                or_(
                    jobs.c.created_at < cursor.created_at,
                    and_(jobs.c.created_at == cursor.created_at, jobs.c.id < str(cursor.job_id)),
                )
            )
        async with self._connection() as connection:
            rows = (await connection.execute(query)).all()
        items = [_to_job(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = items[-1]
            next_cursor = PageCursor(last.created_at, last.id).encode()
        return JobPage(items=items, next_cursor=next_cursor)

    async def queue_depth(self) -> tuple[int, float]:
        """Queued jobs, and seconds the oldest due one has waited (0 when none is due)."""
        now = utc_now()
        queued = jobs.c.status == JobStatus.QUEUED.value
        statement = select(
            select(func.count()).where(queued).scalar_subquery(),
            select(func.min(jobs.c.run_after))
            .where(queued, jobs.c.run_after <= now)
            .scalar_subquery(),
        )
        async with self._connection() as connection:
            count, oldest = (await connection.execute(statement)).one()
        if oldest is None:
            return count, 0.0
        return count, (now - oldest).total_seconds()

    async def claim(
        self, owner: str, limit: int, lease_seconds: float, kinds: Sequence[str]
    ) -> list[Job]:
        """Move up to ``limit`` due jobs of ``kinds`` from queued to running, leased to ``owner``.

        Only kinds this process knows: during a rolling update an old replica must
        not take a kind only the new version can run.
        """
        now = utc_now()
        parameters = {
            "now": now,
            "kinds": list(kinds),
            "limit": limit,
            "owner": owner,
            "lease_expires_at": now + timedelta(seconds=lease_seconds),
        }
        async with self._transaction() as connection:
            rows = (await connection.execute(_CLAIM, parameters)).all()
        return sorted((_to_job(row) for row in rows), key=lambda job: job.created_at)

    async def extend_leases(
        self, owner: str, job_ids: Sequence[UUID], lease_seconds: float
    ) -> set[UUID]:
        """Renew ``owner``'s leases on ``job_ids``; returns the ids it still holds."""
        if not job_ids:
            return set()
        now = utc_now()
        statement = (
            update(jobs)
            .where(
                jobs.c.id.in_([str(job_id) for job_id in job_ids]),
                jobs.c.lease_owner == owner,
                jobs.c.status == JobStatus.RUNNING.value,
            )
            .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
            .returning(jobs.c.id)
        )
        async with self._transaction() as connection:
            held = (await connection.execute(statement)).scalars().all()
        return {UUID(job_id) for job_id in held}

    async def succeed(self, job_id: UUID, owner: str, result: JsonObject) -> bool:
        """Record success; False if ``owner`` no longer holds the job's lease."""
        return await self._outcomes.submit(
            _Outcome(str(job_id), owner, JobStatus.SUCCEEDED.value, result=result)
        )

    async def fail(self, job_id: UUID, owner: str, error: str) -> bool:
        """Record a final failure; False if ``owner`` no longer holds the job's lease."""
        return await self._outcomes.submit(
            _Outcome(str(job_id), owner, JobStatus.FAILED.value, error=error)
        )

    async def retry_later(self, job_id: UUID, owner: str, error: str, delay_seconds: float) -> bool:
        """Queue the job again after ``delay_seconds``; False if the lease was lost."""
        run_after = utc_now() + timedelta(seconds=delay_seconds)
        return await self._outcomes.submit(
            _Outcome(str(job_id), owner, JobStatus.QUEUED.value, error=error, run_after=run_after)
        )

    async def _write_outcomes(self, outcomes: list[_Outcome]) -> list[bool]:
        """One fenced UPDATE per lease owner in the batch (one in a service process).

        Each row changes only while its owner still holds the lease; RETURNING
        says which did.
        """
        now = utc_now()
        written: set[tuple[str, str]] = set()
        async with self._transaction() as connection:
            for owner in dict.fromkeys(outcome.owner for outcome in outcomes):
                mine = [outcome for outcome in outcomes if outcome.owner == owner]
                ids = [outcome.job_id for outcome in mine]
                values: dict[str, Any] = {
                    "status": _per_row(ids, [o.status for o in mine], String()),
                    "result": _per_row(ids, [o.result for o in mine], JSON()),
                    "error": _per_row(ids, [o.error for o in mine], Text()),
                    "updated_at": now,
                    **_RELEASED_LEASE,
                }
                if any(outcome.run_after is not None for outcome in mine):
                    values["run_after"] = case(
                        {
                            o.job_id: type_coerce(o.run_after, UTCDateTime())
                            for o in mine
                            if o.run_after is not None
                        },
                        value=jobs.c.id,
                        else_=jobs.c.run_after,
                    )
                statement = (
                    update(jobs)
                    .where(
                        jobs.c.id.in_(ids),
                        jobs.c.lease_owner == owner,
                        jobs.c.status == JobStatus.RUNNING.value,
                    )
                    .values(values)
                    .returning(jobs.c.id)
                )
                held = (await connection.execute(statement)).scalars().all()
                written.update((owner, job_id) for job_id in held)
        self.write_refused = None
        return [(outcome.owner, outcome.job_id) in written for outcome in outcomes]

    async def release(self, owner: str) -> list[UUID]:
        """Put ``owner``'s running jobs back in the queue (graceful shutdown).

        The interrupted attempt is not counted: the job did not fail.
        """
        now = utc_now()
        statement = (
            update(jobs)
            .where(jobs.c.lease_owner == owner, jobs.c.status == JobStatus.RUNNING.value)
            .values(
                status=JobStatus.QUEUED.value,
                attempts=jobs.c.attempts - 1,
                run_after=now,
                updated_at=now,
                **_RELEASED_LEASE,
            )
            .returning(jobs.c.id)
        )
        async with self._transaction() as connection:
            released = (await connection.execute(statement)).scalars().all()
        return [UUID(job_id) for job_id in released]

    async def recover_expired(self) -> tuple[list[Job], list[Job]]:
        """Handle running jobs whose lease expired (their process died).

        Returns (requeued, failed): a job with attempts left goes back to the
        queue; one that used its last attempt fails.
        """
        now = utc_now()
        expired = and_(jobs.c.status == JobStatus.RUNNING.value, jobs.c.lease_expires_at < now)
        requeue = (
            update(jobs)
            .where(expired, jobs.c.attempts < jobs.c.max_attempts)
            .values(status=JobStatus.QUEUED.value, run_after=now, updated_at=now, **_RELEASED_LEASE)
            .returning(jobs)
        )
        give_up = (
            update(jobs)
            .where(expired, jobs.c.attempts >= jobs.c.max_attempts)
            .values(
                status=JobStatus.FAILED.value,
                error="lease expired: the process running the last attempt stopped",
                updated_at=now,
                **_RELEASED_LEASE,
            )
            .returning(jobs)
        )
        async with self._transaction() as connection:
            requeued = (await connection.execute(requeue)).all()
            failed = (await connection.execute(give_up)).all()
        return [_to_job(row) for row in requeued], [_to_job(row) for row in failed]

    async def purge_finished(self, finished_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` finished jobs last changed before ``finished_before``.

        Batched, so one purge never holds the write lock (SQLite) or a long
        transaction (PostgreSQL) for the whole backlog.
        """
        finished = (
            select(jobs.c.id)
            .where(
                jobs.c.status.in_([JobStatus.SUCCEEDED.value, JobStatus.FAILED.value]),
                jobs.c.updated_at < finished_before,
            )
            .order_by(jobs.c.updated_at)
            .limit(limit)
            .scalar_subquery()
        )
        async with self._transaction() as connection:
            deleted = await connection.execute(delete(jobs).where(jobs.c.id.in_(finished)))
        return deleted.rowcount
