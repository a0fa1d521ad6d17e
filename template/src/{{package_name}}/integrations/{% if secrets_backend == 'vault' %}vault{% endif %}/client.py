"""Vault over HTTP through hvac: log in, renew, revoke, look up the token, read the KV v2 secret.

Every method here is synchronous and talks to Vault over the network. Callers in
the running service use them through ``asyncio.to_thread`` (see keeper.py);
settings are read before the event loop starts (see session.py).

Failures come out as ``VaultCallError`` with a reason written here, never hvac's own
message: Vault echoes request details in some errors, and nothing that reaches a
log line or the exit message may carry a token or secret id.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hvac
from hvac import exceptions

from .settings import VaultSettings


@dataclass(frozen=True, slots=True)
class Lease:
    """What Vault said about the token after a login or renewal (0 s: never expires)."""

    ttl_seconds: float
    renewable: bool
    # When the TTL started counting (time.monotonic()): the lease from the settings
    # load reaches the token keeper only once the application has started.
    obtained_at: float = field(default_factory=time.monotonic, compare=False)


class VaultCallError(Exception):
    """A Vault call failed; ``str()`` is a reason safe to log.

    ``refused``: Vault answered and turned the request down (401, 403, or 400 for a
    login): asking again with the same token or credentials cannot succeed. Anything
    else (unreachable, sealed, a 5xx, a file not readable) may pass.
    """

    def __init__(self, reason: str, *, refused: bool = False) -> None:
        super().__init__(reason)
        self.refused = refused


# A revoked or expired token is a 403 ("permission denied"); a wrong AppRole secret id
# or Kubernetes JWT is a 400.
_REFUSALS = (exceptions.Unauthorized, exceptions.Forbidden, exceptions.InvalidRequest)

_REASONS: list[tuple[type[Exception], str]] = [
    (exceptions.Unauthorized, "credentials refused (unauthorized)"),
    (exceptions.Forbidden, "credentials refused or not allowed (permission denied)"),
    (exceptions.InvalidPath, "path not found"),
    # A wrong AppRole secret id or Kubernetes JWT is a 400, not a 403.
    (exceptions.InvalidRequest, "credentials or request refused (invalid request)"),
    (exceptions.VaultDown, "Vault is sealed or in maintenance"),
    (exceptions.VaultNotInitialized, "Vault is not initialized"),
    (exceptions.VaultError, "Vault answered with an error"),
    (OSError, "Vault unreachable"),  # requests' errors are OSErrors
]


def _reason(error: Exception) -> str:
    for kind, reason in _REASONS:
        if isinstance(error, kind):
            return f"{reason} ({type(error).__name__})"
    return type(error).__name__


def read_secret_id(settings: VaultSettings) -> str:
    """VAULT_SECRET_ID, or the file VAULT_SECRET_ID_FILE names (read at each login)."""
    if settings.secret_id_file is not None:
        return _read_file(settings.secret_id_file, "VAULT_SECRET_ID_FILE")
    if settings.secret_id is None:
        msg = "approle login: neither VAULT_SECRET_ID nor VAULT_SECRET_ID_FILE is set"
        raise VaultCallError(msg)
    return settings.secret_id.get_secret_value()


def read_k8s_token(settings: VaultSettings) -> str:
    """The pod's service-account token (kubelet rotates the file, so read at each login)."""
    return _read_file(settings.k8s_token_path, "VAULT_K8S_TOKEN_PATH")


def _read_file(path: Path, variable: str) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as error:
        msg = f"cannot read the file {variable} names: {type(error).__name__}"
        raise VaultCallError(msg) from None


class HvacSession:
    """One authenticated hvac client, for one process."""

    def __init__(self, settings: VaultSettings) -> None:
        self.settings = settings
        self.can_login = settings.auth_method != "token"
        token = settings.token.get_secret_value() if settings.token else None
        self._client = self._new_client(token)
        # The token a login replaced, until revoke_replaced() revokes it.
        self._replaced: str | None = None

    def _new_client(self, token: str | None) -> hvac.Client:
        settings = self.settings
        return hvac.Client(
            url=settings.addr,
            token=token,
            verify=str(settings.cacert) if settings.cacert else True,
            timeout=settings.timeout_seconds,
        )

    def _call(self, what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - turned into a safe, typed failure
            refused = isinstance(error, _REFUSALS)
            raise VaultCallError(f"{what}: {_reason(error)}", refused=refused) from None

    def login(self) -> Lease:
        """Authenticate with the configured method; the client keeps the new token.

        With token auth this is the token's own lookup. Otherwise the token the
        client held before is kept aside for ``revoke_replaced``.
        """
        settings = self.settings
        method = settings.auth_method
        auth = self._client.auth
        if method == "token":
            return self.lookup()
        previous = self._client.token
        if method == "approle":
            response = self._call(
                "approle login",
                auth.approle.login,
                role_id=settings.role_id.get_secret_value(),
                secret_id=read_secret_id(settings),
                mount_point=settings.approle_mount,
            )
        else:
            response = self._call(
                "kubernetes login",
                auth.kubernetes.login,
                role=settings.k8s_role,
                jwt=read_k8s_token(settings),
                mount_point=settings.k8s_mount,
            )
        lease = _lease(f"{method} login", response)
        if previous and previous != self._client.token:
            self._replaced = previous
        return lease

    def revoke_replaced(self) -> bool:
        """Revoke the token the last login replaced (with that token); False if none."""
        replaced, self._replaced = self._replaced, None
        if replaced is None:
            return False
        old = self._new_client(replaced)
        try:
            self._call("revoking the replaced token", old.auth.token.revoke_self)
        finally:
            old.adapter.close()
        return True

    def lookup(self) -> Lease:
        """The current token's own lookup: the TTL it has left, and whether it renews."""
        data = self._call("token lookup", self._client.auth.token.lookup_self)["data"]
        return Lease(float(data["ttl"]), bool(data["renewable"]))

    def renew(self) -> Lease:
        """Extend the current token's TTL (Vault caps it at the token's max TTL)."""
        response = self._call("token renewal", self._client.auth.token.renew_self)
        return _lease("token renewal", response)

    def read_secret(self) -> dict[str, Any]:
        """The latest version of the service's KV v2 secret."""
        response = self._call(
            "reading the secret",
            self._client.secrets.kv.v2.read_secret_version,
            path=self.settings.secret_path,
            mount_point=self.settings.kv_mount,
            raise_on_deleted_version=True,
        )
        data: dict[str, Any] = response["data"]["data"]
        return data


def _lease(what: str, response: Any) -> Lease:
    try:
        auth = response["auth"]
        return Lease(float(auth["lease_duration"]), bool(auth["renewable"]))
    except (KeyError, TypeError, ValueError):
        # Not a Vault answer (a proxy's page?): fail like any other call, so the
        # keeper retries instead of dying.
        raise VaultCallError(f"{what}: unexpected answer") from None
