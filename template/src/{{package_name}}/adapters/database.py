"""The database as the service sees it, whichever backend was rendered (engine.py).

The engine is created once per process; readiness asks it for ``SELECT 1``; logs
and errors show its URL only with the password masked.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final, Protocol

from sqlalchemy import make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from .engine import URL_SCHEME, create_engine
from .sql_jobs import write_refusal

READINESS_TIMEOUT_SECONDS: Final = 2.0
START_RETRY_PAUSE_SECONDS: Final = 0.5

__all__ = ["URL_SCHEME", "DatabaseCheck", "create_engine", "display_url", "wait_until_reachable"]


def display_url(url: URL | str) -> str:
    """A database URL with any password masked, for logs and error messages."""
    return make_url(url).render_as_string(hide_password=True)


class WriteProbe(Protocol):
    """The job store's own account of its writes (adapters/sql_jobs.py)."""

    write_refused: str | None

    async def probe_write(self) -> None: ...


class DatabaseCheck:
    """Readiness: the database answers ``SELECT 1``, and takes writes if they failed."""

    name = "database"

    def __init__(
        self,
        engine: AsyncEngine,
        timeout_seconds: float = READINESS_TIMEOUT_SECONDS,
        writes: WriteProbe | None = None,
    ) -> None:
        self._engine = engine
        self._timeout = timeout_seconds
        self._writes = writes

    async def check(self) -> None:
        """Round-trip ``SELECT 1``, then a write probe while writes are refused."""
        async with asyncio.timeout(self._timeout):
            async with self._engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            if self._writes is not None and self._writes.write_refused is not None:
                await self._writes.probe_write()


async def wait_until_reachable(database_url: str, timeout_seconds: float) -> str | None:
    """Try the database until it answers or ``timeout_seconds`` pass.

    Returns None when it answered, else one line naming the (masked) URL and the
    last error's type, never its message: a driver may quote the connection string.
    """
    deadline = time.monotonic() + timeout_seconds
    attempts = 0
    while True:
        attempts += 1
        try:
            await _answer_once(database_url, max(deadline - time.monotonic(), 0.1))
        except Exception as error:  # noqa: BLE001 - every failure is reported the same way
            if time.monotonic() + START_RETRY_PAUSE_SECONDS >= deadline:
                return (
                    f"database unreachable at {display_url(database_url)}: {_reason(error)}"
                    f" (gave up after {attempts} attempts in {timeout_seconds:g} s)"
                )
            await asyncio.sleep(START_RETRY_PAUSE_SECONDS)
        else:
            return None


async def _answer_once(database_url: str, timeout_seconds: float) -> None:
    engine = create_engine(database_url)
    try:
        await DatabaseCheck(engine, min(timeout_seconds, READINESS_TIMEOUT_SECONDS * 2)).check()
    finally:
        await engine.dispose()


def _reason(error: BaseException) -> str:
    # SQLAlchemy wraps the driver's error as ``orig``; its class name says what
    # happened (ConnectionRefusedError, InvalidPasswordError, NotADirectoryError ...).
    orig = getattr(error, "orig", None)
    name = type(orig if orig is not None else error).__name__
    refusal = write_refusal(error)
    return f"{name} ({refusal})" if refusal else name
