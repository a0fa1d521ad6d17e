"""Vault (hvac; OpenBao works too): settings from a KV v2 secret, a token kept alive.

- settings.py: the VAULT_* variables;
- client.py: hvac calls, failures turned into reasons safe to log;
- session.py: the one login per process, and the secret as a settings source;
- keeper.py: token renewal off the event loop, and the readiness and liveness checks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from ...domain.ports import LivenessCheck, ReadinessCheck
from ..base import Integration
from .keeper import TokenKeeper, start_keeper
from .session import VaultSettingsSource


class VaultIntegration(Integration):
    """The Vault secret above the environment; the token renewed while the app runs."""

    name = "vault"

    def __init__(self) -> None:
        self._keeper: TokenKeeper | None = None

    def settings_sources(
        self, settings_cls: type[BaseSettings]
    ) -> Sequence[PydanticBaseSettingsSource]:
        """The service's KV v2 secret (nothing when VAULT_ADDR is not set)."""
        return (VaultSettingsSource(settings_cls),)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Sequence[ReadinessCheck]]:
        """The token keeper for the session the settings came from; readiness asks it."""
        keeper = start_keeper()
        if keeper is None:
            yield ()
            return
        self._keeper = keeper
        try:
            yield (keeper,)
        finally:
            self._keeper = None
            await keeper.stop()

    def liveness_checks(self) -> Sequence[LivenessCheck]:
        """The running keeper: once it has no valid token and cannot get one, restart."""
        return () if self._keeper is None else (self._keeper,)
