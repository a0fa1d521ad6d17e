"""Vault as a settings source, and this process's one logged-in session.

Precedence, highest first (config.Settings.settings_customise_sources, through the
integration's ``settings_sources``):

1. values passed to ``Settings(...)`` in code (tests);
2. the KV v2 secret at VAULT_KV_MOUNT/VAULT_SECRET_PATH: a key named like a
   setting (``database_url``) overrides it, other keys are ignored;
3. environment variables;
4. the ``.env`` file;
5. the defaults in config.py.

Vault is used when VAULT_ADDR is set. Without it the service runs on its
environment alone and says so at start: local development and the project's own
tests need no Vault server.

Settings are built before the event loop runs (serving.main) and once more when
uvicorn loads the application, so the blocking login happens there, with bounded
retries. The process keeps the one session it logged in with; the integration's
lifespan hands it to the token keeper, which renews it off the loop.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from pydantic.fields import FieldInfo
from pydantic_settings import PydanticBaseSettingsSource

from ..base import StartupError
from .client import HvacSession, Lease, VaultCallError
from .settings import VaultSettings


class VaultSession(Protocol):
    """What the settings source and the token keeper need from a Vault session."""

    can_login: bool

    def login(self) -> Lease: ...
    def revoke_replaced(self) -> bool: ...
    def lookup(self) -> Lease: ...
    def renew(self) -> Lease: ...
    def read_secret(self) -> dict[str, Any]: ...


class VaultStartupError(StartupError):
    """Vault could not be used at start; ``str()`` is the one line to print (exit status 3)."""


def backoff_delays(attempts: int, first: float = 0.5, cap: float = 8.0) -> Iterator[float]:
    """The waits between ``attempts`` tries: doubling from ``first``, at most ``cap``."""
    for attempt in range(attempts - 1):
        yield min(first * 2**attempt, cap)


# Built once per process by the first settings load, then reused: a second login
# would spend AppRole secret-id uses and leave an orphan token to expire.
_sessions: dict[VaultSettings, tuple[VaultSession, Lease]] = {}
session_factory: Callable[[VaultSettings], VaultSession] = HvacSession


def _past_half_life(lease: Lease) -> bool:
    age = time.monotonic() - lease.obtained_at
    return lease.ttl_seconds > 0 and age > lease.ttl_seconds / 2


def open_session(
    settings: VaultSettings, sleep: Callable[[float], None] = time.sleep
) -> tuple[VaultSession, Lease]:
    """This process's logged-in session, logging in (with retries) the first time.

    A cached session whose token is past half its TTL (uvicorn may load the app long
    after serving.main read the settings) is renewed, or logged in again.
    """
    cached = _sessions.get(settings)
    if cached is not None:
        session, lease = cached
        if not _past_half_life(lease):
            return cached
        if lease.renewable:
            with contextlib.suppress(VaultCallError):  # expired or revoked: log in below
                _sessions[settings] = (session, session.renew())
                return _sessions[settings]
    else:
        missing = settings.missing()
        if missing:
            msg = f"vault: {settings.auth_method} login needs {', '.join(missing)}"
            raise VaultStartupError(msg)
        session = session_factory(settings)
    delays = backoff_delays(settings.start_attempts)
    while True:
        try:
            lease = session.login()
            break
        except VaultCallError as failure:
            delay = next(delays, None)
            if delay is None:
                msg = (
                    f"vault: {failure} at {settings.addr}"
                    f" (gave up after {settings.start_attempts} attempts)"
                )
                raise VaultStartupError(msg) from None
            sleep(delay)
    if cached is not None:
        # The settings load's token, if still valid, would otherwise live out its TTL.
        with contextlib.suppress(VaultCallError):
            session.revoke_replaced()
    _sessions[settings] = (session, lease)
    return session, lease


def process_session() -> tuple[VaultSession, Lease] | None:
    """The session the settings were read with, or None when Vault is not configured."""
    settings = VaultSettings()
    if not settings.addr:
        given = settings.credentials_given()
        if given:
            # Credentials without an address is a deployment that lost VAULT_ADDR: running
            # on the defaults instead of its secrets would be worse than not starting.
            msg = f"vault: VAULT_ADDR is not set, but {', '.join(given)} is; set VAULT_ADDR"
            raise VaultStartupError(msg)
        return None
    return open_session(settings)


def forget_sessions() -> None:
    """Drop the cached sessions (tests, and after a fork)."""
    _sessions.clear()


class VaultSettingsSource(PydanticBaseSettingsSource):
    """The service's KV v2 secret as settings values (see the module docstring)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        # Unused: __call__ reads the whole secret once instead of one field at a time.
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        opened = process_session()
        if opened is None:
            return {}
        session, _lease = opened
        try:
            secret = session.read_secret()
        except VaultCallError as failure:
            settings = VaultSettings()
            msg = f"vault: {failure} at {settings.kv_mount}/{settings.secret_path}"
            raise VaultStartupError(msg) from None
        fields = self.settings_cls.model_fields
        return {key.lower(): value for key, value in secret.items() if key.lower() in fields}
