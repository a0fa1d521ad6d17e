"""Keeps this process's Vault token alive, off the event loop; /readyz and /healthz read it.

The token is renewed at two thirds of its TTL. A renewal that fails for a reason
that may pass (Vault unreachable, sealed, a 5xx) is retried with capped backoff
until it succeeds or the lease really ends: the TTL Vault gave at the last
successful renewal, login or lookup. Then:

- AppRole and Kubernetes log in again (retrying the same way) when Vault refuses
  the renewal, when the lease ends, when Vault grants less than a third of the
  login's TTL (the max TTL is near) or when the token is not renewable; the
  token the login replaced is revoked.
- Token auth has nothing to log in with. A token Vault refuses (revoked,
  expired) or whose TTL ran out is the end of this process's use of Vault.

When the process holds no valid token and cannot get one by itself (token auth
as above; a login Vault refuses once the token is gone), the keeper is dead: it
logs one error line and the liveness check fails, so the platform restarts the
process, which reads its credentials again (docs/design.md says why not exit).

Readiness is "the token is valid now" and liveness "the keeper is not dead",
both read from the keeper's state: no probe calls Vault.

hvac is synchronous: every call runs in a worker thread via ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from typing import Final

from ...observability.logs import get_logger
from .client import Lease, VaultCallError
from .session import VaultSession, backoff_delays, process_session

RENEW_AT: Final = 2 / 3
MIN_USEFUL_FRACTION: Final = 1 / 3
RETRY_DELAY_SECONDS: Final = 0.5
RETRY_CAP_SECONDS: Final = 30.0
RETRY_ATTEMPTS: Final = 1_000_000  # while running, keep trying (with capped backoff)
# A token-auth renewal that moves the expiry by less than this fraction of the TTL: the
# token is at its max TTL (Vault grants only the time left), so renewing again is useless.
MIN_EXTENSION_FRACTION: Final = 0.05
_RESTART_HINT: Final = "restart with a valid VAULT_TOKEN"
_RESTART_ANY: Final = "restart with valid credentials"

_log = get_logger("vault")


def renewal_delay(lease: Lease, now: float) -> float | None:
    """Seconds from ``now`` until the token should be refreshed; None if it never expires."""
    if lease.ttl_seconds <= 0:
        return None
    return max(lease.obtained_at + lease.ttl_seconds * RENEW_AT - now, 0.0)


def expires_at(lease: Lease) -> float | None:
    """When (``time.monotonic()``) the token of ``lease`` expires; None if it never does."""
    if lease.ttl_seconds <= 0:
        return None
    return lease.obtained_at + lease.ttl_seconds


def worth_keeping(renewed: Lease, login: Lease) -> bool:
    """Whether a renewal bought enough time, or the max TTL is close and a login is due."""
    return renewed.ttl_seconds >= login.ttl_seconds * MIN_USEFUL_FRACTION


class TokenNotValidError(Exception):
    """Readiness: the keeper holds no valid token; ``str()`` says since when and why."""


@dataclasses.dataclass(frozen=True, slots=True)
class KeeperState:
    """What the keeper knows, as the probes read it."""

    valid_until: float | None  # time.monotonic() when the token expires; None: never
    last_result: str  # "logged in", "renewed", or the last failure's reason
    dead: str | None  # why only a restart can help, once it cannot
    renewals: int
    logins: int

    def valid(self, now: float) -> bool:
        """Whether the token can still be used at ``now``."""
        return self.dead is None and (self.valid_until is None or now < self.valid_until)


class TokenKeeper:
    """The renewal task, the ``vault`` readiness check and the ``vault`` liveness check."""

    name = "vault"

    def __init__(self, session: VaultSession, lease: Lease) -> None:
        self._session = session
        self._login_lease = lease
        self._lease = lease
        self._valid_until = expires_at(lease)
        self._last_result = "logged in" if session.can_login else "token looked up"
        self._dead: str | None = None
        self._task: asyncio.Task[None] | None = None
        self.renewals = 0
        self.logins = 0

    @property
    def state(self) -> KeeperState:
        """A snapshot of the token's validity and the last renewal or login result."""
        return KeeperState(
            self._valid_until, self._last_result, self._dead, self.renewals, self.logins
        )

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
        """Readiness: the token is valid now, by the keeper's state (no call to Vault)."""
        state = self.state
        if state.dead is not None:
            raise TokenNotValidError(state.dead)
        until = state.valid_until
        if until is not None and (ago := time.monotonic() - until) >= 0:
            raise TokenNotValidError(f"token expired {ago:.0f} s ago; last: {state.last_result}")

    def restart_reason(self) -> str | None:
        """Liveness: why this process must be restarted (the keeper is dead), or None."""
        return self._dead

    async def _run(self) -> None:
        while (
            self._dead is None
            and (delay := renewal_delay(self._lease, time.monotonic())) is not None
        ):
            await asyncio.sleep(delay)
            await self.refresh()

    async def refresh(self) -> None:
        """Renew the token (retrying), or log in again; record why when neither can work."""
        lost = "token not renewable"
        if self._lease.renewable:
            renewed = await self._renew()
            if isinstance(renewed, str):
                lost = renewed
            elif self._keep(renewed):
                return
        if self._session.can_login:
            await self._login()
        elif self._lease.renewable:
            self._die(f"{lost}; token auth cannot log in again: {_RESTART_HINT}")
        else:
            await self._wait_out()

    def _keep(self, renewed: Lease) -> bool:
        """Use a renewal's lease, unless a login would do better (max TTL near)."""
        if self._session.can_login and not worth_keeping(renewed, self._login_lease):
            _log.info("vault token near its max TTL", ttl_seconds=renewed.ttl_seconds)
            return False
        previous = self._valid_until
        new_end = expires_at(renewed)
        if (
            not self._session.can_login
            and previous is not None
            and new_end is not None
            and new_end - previous < self._lease.ttl_seconds * MIN_EXTENSION_FRACTION
        ):
            renewed = dataclasses.replace(renewed, renewable=False)
        self.renewals += 1
        self._use(renewed, "renewed")
        _log.info("vault token renewed", ttl_seconds=renewed.ttl_seconds)
        return True

    async def _renew(self) -> Lease | str:
        """The renewed lease, or why the token is lost: Vault refused, or the lease ended."""
        delays = backoff_delays(RETRY_ATTEMPTS, first=RETRY_DELAY_SECONDS, cap=RETRY_CAP_SECONDS)
        while True:
            try:
                return await asyncio.to_thread(self._session.renew)
            except VaultCallError as failure:
                self._last_result = str(failure)
                if failure.refused and (lost := await self._confirm_refusal(failure)):
                    return lost
                left = None if self._valid_until is None else self._valid_until - time.monotonic()
                if left is not None and left <= 0:
                    _log.warning("vault token expired, renewal failing", reason=str(failure))
                    return f"token expired while renewal failed ({failure})"
                delay = next(delays) if left is None else min(next(delays), left)
                _log.warning(
                    "vault token renewal failed, retrying",
                    reason=str(failure),
                    delay=round(delay, 3),
                    expires_in_seconds=None if left is None else round(left, 1),
                )
                await asyncio.sleep(delay)

    async def _confirm_refusal(self, refusal: VaultCallError) -> str | None:
        """After a refused renewal, whether the token itself is gone (its lookup refused too).

        Returns why renewal is over, or None to retry (the lookup did not get through).
        A token that still looks up is valid but may not be renewed: it is kept,
        not renewable, until a login replaces it or it expires.
        """
        try:
            looked_up = await asyncio.to_thread(self._session.lookup)
        except VaultCallError as failure:
            if not failure.refused:
                return None
            self._valid_until = time.monotonic()  # revoked or expired: unusable from now on
            _log.warning("vault token renewal refused, the token is gone", reason=str(refusal))
            return str(refusal)
        _log.warning("vault token renewal refused, the token is still valid", reason=str(refusal))
        self._use(dataclasses.replace(looked_up, renewable=False), str(refusal))
        return str(refusal)

    async def _login(self) -> None:
        delays = backoff_delays(RETRY_ATTEMPTS, first=RETRY_DELAY_SECONDS, cap=RETRY_CAP_SECONDS)
        while True:
            try:
                lease = await asyncio.to_thread(self._session.login)
            except VaultCallError as failure:
                self._last_result = str(failure)
                if failure.refused and not self.state.valid(time.monotonic()):
                    self._die(f"{failure}, with no valid token left: {_RESTART_ANY}")
                    return
                delay = next(delays)
                _log.warning("vault login failed, retrying", reason=str(failure), delay=delay)
                await asyncio.sleep(delay)
                continue
            self.logins += 1
            self._login_lease = lease
            self._use(lease, "logged in")
            _log.info("vault logged in again", ttl_seconds=lease.ttl_seconds)
            await self._revoke_replaced()
            return

    async def _revoke_replaced(self) -> None:
        try:
            revoked = await asyncio.to_thread(self._session.revoke_replaced)
        except VaultCallError as failure:
            if failure.refused:  # it expired or was revoked already: nothing left to do
                _log.info("vault replaced token already gone", reason=str(failure))
            else:  # it expires at the end of its TTL
                _log.warning("vault replaced token not revoked", reason=str(failure))
        else:
            if revoked:
                _log.info("vault replaced token revoked")

    async def _wait_out(self) -> None:
        """A token that cannot be renewed (further) nor replaced: serve until it expires."""
        until = self._valid_until
        left = 0.0 if until is None else until - time.monotonic()
        _log.warning(
            "vault token cannot be renewed and token auth cannot log in again",
            expires_in_seconds=round(left, 1),
        )
        await asyncio.sleep(max(left, 0.0))
        self._die(f"token expired, not renewable (further); {_RESTART_HINT}")

    def _use(self, lease: Lease, result: str) -> None:
        self._lease = lease
        self._valid_until = expires_at(lease)
        self._last_result = result

    def _die(self, reason: str) -> None:
        self._dead = f"vault: {reason}"
        self._last_result = reason
        _log.error("vault token lost, liveness failing", reason=self._dead)


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
