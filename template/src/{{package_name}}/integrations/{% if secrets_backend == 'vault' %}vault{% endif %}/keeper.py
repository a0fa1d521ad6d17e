"""Keeps this process's Vault token alive, off the event loop, and answers readiness.

The token is renewed at two thirds of its TTL. When renewal fails, or Vault grants
less than a third of the TTL the login gave (the token nears its max TTL), the
keeper logs in again. A token that cannot be renewed is replaced by a new login
at the same point; with token auth there is nothing to log in with, so the keeper
warns once and readiness turns 503 when the token expires.

hvac is synchronous: every call runs in a worker thread via ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Final

from ...observability.logs import get_logger
from .client import Lease, VaultCallError
from .session import VaultSession, backoff_delays, process_session

RENEW_AT: Final = 2 / 3
MIN_USEFUL_FRACTION: Final = 1 / 3
RETRY_DELAY_SECONDS: Final = 0.5
RETRY_ATTEMPTS: Final = 1_000_000  # while running, keep trying (with capped backoff)
CHECK_TIMEOUT_SECONDS: Final = 3.0

_log = get_logger("vault")


def renewal_delay(lease: Lease, now: float) -> float | None:
    """Seconds from ``now`` until the token should be refreshed; None if it never expires."""
    if lease.ttl_seconds <= 0:
        return None
    return max(lease.obtained_at + lease.ttl_seconds * RENEW_AT - now, 0.0)


def worth_keeping(renewed: Lease, login: Lease) -> bool:
    """Whether a renewal bought enough time, or the max TTL is close and a login is due."""
    return renewed.ttl_seconds >= login.ttl_seconds * MIN_USEFUL_FRACTION


class TokenKeeper:
    """The renewal task and the readiness check (``vault``) for one Vault session."""

    name = "vault"

    def __init__(self, session: VaultSession, lease: Lease) -> None:
        self._session = session
        self._login_lease = lease
        self._lease = lease
        self._task: asyncio.Task[None] | None = None
        self.renewals = 0
        self.logins = 0

    def start(self) -> None:
        """Run the renewal loop in the background until ``stop()``."""
        self._task = asyncio.create_task(self._run(), name="vault-token-keeper")

    async def stop(self) -> None:
        """Cancel the renewal loop and wait for it to end."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def check(self) -> None:
        """Readiness: the token's own lookup, bounded in time."""
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await asyncio.to_thread(self._session.check)

    async def _run(self) -> None:
        while (delay := renewal_delay(self._lease, time.monotonic())) is not None:
            await asyncio.sleep(delay)
            self._lease = await self.refresh()

    async def refresh(self) -> Lease:
        """Renew the token, or log in again when renewal fails or nears the max TTL."""
        if self._lease.renewable:
            try:
                renewed = await asyncio.to_thread(self._session.renew)
            except VaultCallError as failure:
                _log.warning("vault token renewal failed", reason=str(failure))
            else:
                if worth_keeping(renewed, self._login_lease):
                    self.renewals += 1
                    _log.info("vault token renewed", ttl_seconds=renewed.ttl_seconds)
                    return renewed
                _log.info("vault token near its max TTL", ttl_seconds=renewed.ttl_seconds)
        if not self._session.can_login:
            _log.warning("vault token cannot be renewed and token auth cannot log in again")
            return Lease(0.0, renewable=False)
        return await self._login()

    async def _login(self) -> Lease:
        delays = backoff_delays(RETRY_ATTEMPTS, first=RETRY_DELAY_SECONDS, cap=30.0)
        while True:
            try:
                lease = await asyncio.to_thread(self._session.login)
            except VaultCallError as failure:
                delay = next(delays)
                _log.warning("vault login failed, retrying", reason=str(failure), delay=delay)
                await asyncio.sleep(delay)
                continue
            self.logins += 1
            self._login_lease = lease
            _log.info("vault logged in again", ttl_seconds=lease.ttl_seconds)
            return lease


def start_keeper() -> TokenKeeper | None:
    """The keeper for the session the settings came from, started; None without Vault."""
    opened = process_session()
    if opened is None:
        _log.warning("VAULT_ADDR is not set: secrets come from the environment only")
        return None
    session, lease = opened
    _log.info(
        "vault session ready",
        ttl_seconds=lease.ttl_seconds,
        renewable=lease.renewable,
        can_login=session.can_login,
    )
    keeper = TokenKeeper(session, lease)
    keeper.start()
    return keeper
