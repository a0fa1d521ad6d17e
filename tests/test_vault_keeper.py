"""The vault variant's token keeper against a real OpenBao: outages, revocation, re-login.

- token auth rides out a Vault that stops and comes back (sealed, then unsealed) before
  the token's TTL ends: renewal is retried, readiness never drops;
- a revoked token fails liveness (/healthz 503) with one error line saying why;
- a new login revokes the token it replaces (looked up as root: gone), so tokens do
  not pile up.

The outage needs a server that keeps its tokens across a restart, so that test runs
its own ``bao server`` on raft storage (init, unseal); the others use the dev server.
"""

from __future__ import annotations

import datetime
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hvac
import pytest
from hvac import exceptions

from .support.openbao import BAO, OpenBao
from .support.polling import holds_for, wait_until
from .support.project import install, render
from .support.service import Service, free_port

SLUG = "kept"
POLICY = "kept-read"
READ_SECRET = f'path "secret/data/{SLUG}" {{ capabilities = ["read"] }}\n'
TOKEN_PATTERN = re.compile(r"\b(?:hvs|hvb|s|b)\.[A-Za-z0-9_-]{20,}")

pytestmark = pytest.mark.xdist_group("vault-keeper")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rendered = render(
        tmp_path_factory.mktemp("keeper") / SLUG,
        project_name="Kept",
        secrets_backend="vault",
        vault_auth="token",
    )
    install(rendered)
    return rendered


@pytest.fixture
def dev_bao(tmp_path: Path) -> Iterator[OpenBao]:
    server = OpenBao(tmp_path / "bao.log").start()
    try:
        client = server.client()
        client.sys.create_or_update_policy(POLICY, READ_SECRET)
        write_secret(client, tmp_path)
        yield server
    finally:
        server.stop()


class RestartableOpenBao:
    """``bao server`` on raft storage: stopped and started again, it keeps its tokens.

    It starts sealed, like a real server: ``start()`` initialises it the first time
    (one unseal key) and ``unseal()`` opens it.
    """

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        cluster_port = free_port()
        (root / "raft").mkdir(parents=True)
        self.log_path = root / "bao.log"
        self.config = root / "bao.hcl"
        self.config.write_text(
            f'storage "raft" {{\n  path = "{root / "raft"}"\n  node_id = "kept"\n}}\n'
            f'listener "tcp" {{\n  address = "127.0.0.1:{self.port}"\n'
            f'  cluster_address = "127.0.0.1:{cluster_port}"\n  tls_disable = true\n}}\n'
            f'api_addr = "{self.addr}"\ncluster_addr = "http://127.0.0.1:{cluster_port}"\n'
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.unseal_key = ""
        self.root_token = ""

    @property
    def addr(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _health(self) -> int | None:
        try:
            return httpx.get(f"{self.addr}/v1/sys/health", timeout=1).status_code
        except httpx.TransportError:
            return None

    def start(self) -> RestartableOpenBao:
        """Start the server and wait until it answers (sealed: 503; new: 501)."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [BAO, "server", f"-config={self.config}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        process = self.process

        def answers() -> int | None:
            assert process.poll() is None, self.log_path.read_text()
            return self._health()

        status = wait_until(answers, message="OpenBao to answer", timeout=60)
        if status == 501:  # not initialised yet
            init = httpx.put(
                f"{self.addr}/v1/sys/init",
                json={"secret_shares": 1, "secret_threshold": 1},
                timeout=30,
            ).json()
            self.unseal_key, self.root_token = init["keys"][0], init["root_token"]
        return self

    def unseal(self) -> None:
        httpx.put(f"{self.addr}/v1/sys/unseal", json={"key": self.unseal_key}, timeout=30)
        wait_until(lambda: self._health() == 200, message="OpenBao unsealed", timeout=60)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)

    def client(self) -> hvac.Client:
        return hvac.Client(url=self.addr, token=self.root_token, timeout=10)


def write_secret(client: hvac.Client, tmp_path: Path) -> None:
    client.secrets.kv.v2.create_or_update_secret(
        path=SLUG,
        secret={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'kept.db'}"},
        mount_point="secret",
    )


def vault_lines(service: Service, **match: Any) -> list[dict[str, Any]]:
    return list(service.logs_where(logger="vault", **match))


def assert_clean(output: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in output, "a secret value appears in the output"
    assert TOKEN_PATTERN.search(output) is None, "a Vault token appears in the output"


def test_token_auth_rides_out_a_vault_outage_shorter_than_its_ttl(
    project: Path, tmp_path: Path
) -> None:
    bao = RestartableOpenBao(tmp_path / "bao").start()
    try:
        bao.unseal()
        root = bao.client()
        root.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
        root.sys.create_or_update_policy(POLICY, READ_SECRET)
        write_secret(root, tmp_path)
        # Renewed at two thirds of what is left when the service looks it up (under 27 s),
        # then retried at +0.5, +1.5, +3.5, +7.5 s... until the TTL ends. 40 s leaves room
        # for a slow start on a loaded machine.
        created = datetime.datetime.now(datetime.UTC)
        token = root.auth.token.create(policies=[POLICY], ttl="40s")["auth"]["client_token"]
        env = {"VAULT_ADDR": bao.addr, "VAULT_AUTH_METHOD": "token", "VAULT_TOKEN": token}
        with Service(project, env) as service, service.client() as client:
            bao.stop()

            def ready() -> None:
                answer = client.get("/readyz")
                assert answer.status_code == 200, (answer.json(), service.output())
                assert client.get("/healthz").status_code == 200

            def renewal_failing() -> bool:
                ready()
                return len(vault_lines(service, event="vault token renewal failed, retrying")) >= 2

            wait_until(
                renewal_failing,
                message="two failed renewals with Vault stopped",
                timeout=60,
                interval=0.25,
                context=service.output,
            )
            bao.start()  # sealed at first: 503, which is retried like a refused connection
            bao.unseal()

            def renewed() -> bool:
                ready()
                return bool(vault_lines(service, event="vault token renewed"))

            wait_until(
                renewed, message="a renewal once Vault is back", timeout=20, context=service.output
            )
            # Past the TTL the token had when Vault stopped: still ready, so it was renewed.
            past_ttl = 43 - (datetime.datetime.now(datetime.UTC) - created).total_seconds()
            holds_for(ready, seconds=max(past_ttl, 1.0), interval=0.25)
            assert root.auth.token.lookup(token)["data"]["ttl"] > 0
            assert service.stop() == 0
        assert not vault_lines(service, level="error")
        failures = vault_lines(service, event="vault token renewal failed, retrying")
        reasons = {line["reason"] for line in failures}
        assert "token renewal: Vault unreachable (ConnectionError)" in reasons
        assert not [reason for reason in reasons if "refused" in reason]
        assert_clean(service.output(), token, bao.root_token, bao.unseal_key)
    finally:
        bao.stop()


def test_a_revoked_token_fails_liveness_with_one_line(project: Path, dev_bao: OpenBao) -> None:
    root = dev_bao.client()
    # Long enough to outlast a slow start on a loaded machine; renewed (refused) at two
    # thirds of what is left at the service's lookup, under 20 s.
    token = root.auth.token.create(policies=[POLICY], ttl="30s")["auth"]["client_token"]
    env = {"VAULT_ADDR": dev_bao.addr, "VAULT_AUTH_METHOD": "token", "VAULT_TOKEN": token}
    with Service(project, env) as service, service.client() as client:
        assert client.get("/readyz").json()["checks"]["vault"] == "ok"
        root.auth.token.revoke(token)

        def liveness_failing() -> dict[str, Any] | None:
            answer = client.get("/healthz")
            return answer.json() if answer.status_code == 503 else None

        alive = wait_until(
            liveness_failing,
            message="liveness to fail after the revocation (at the next renewal)",
            timeout=40,
            interval=0.2,
            context=service.output,
        )
        assert alive == {"status": "unavailable", "checks": {"vault": "failing"}}
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"database": "ok", "vault": "failing"}
        assert service.stop() == 0  # the platform's restart drains as any SIGTERM does
    (line,) = vault_lines(service, level="error")
    assert line["event"] == "vault token lost, liveness failing"
    assert line["reason"] == (
        "vault: token renewal: credentials refused or not allowed (permission denied)"
        " (Forbidden); token auth cannot log in again: restart with a valid VAULT_TOKEN"
    )
    assert_clean(service.output(), token, dev_bao.root_token)


def approle_tokens(root: hvac.Client, role: str) -> dict[str, dict[str, Any]]:
    """The live tokens an AppRole role's logins made, by accessor (as root sees them)."""
    found = {}
    for accessor in root.list("auth/token/accessors")["data"]["keys"]:
        try:
            data = root.auth.token.lookup_accessor(accessor)["data"]
        except exceptions.InvalidRequest:  # revoked meanwhile
            continue
        if (data.get("meta") or {}).get("role_name") == role:
            found[accessor] = data
    return found


def test_a_new_login_revokes_the_token_it_replaced(
    project: Path, dev_bao: OpenBao, tmp_path: Path
) -> None:
    root = dev_bao.client()
    root.sys.enable_auth_method("approle")
    # No renew-self for this role (and no default policy): every renewal is refused while
    # the token stays valid, so the keeper logs in again at 8 s, 4 s before it expires.
    root.sys.create_or_update_policy(
        "kept-no-renewal",
        READ_SECRET
        + 'path "auth/token/lookup-self" { capabilities = ["read"] }\n'
        + 'path "auth/token/revoke-self" { capabilities = ["update"] }\n',
    )
    root.auth.approle.create_or_update_approle(
        "kept",
        token_policies=["kept-no-renewal"],
        token_no_default_policy=True,
        token_ttl="12s",
        token_max_ttl="1h",
    )
    role_id = root.auth.approle.read_role_id("kept")["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id("kept")["data"]["secret_id"]
    env = {
        "VAULT_ADDR": dev_bao.addr,
        "VAULT_AUTH_METHOD": "approle",
        "VAULT_ROLE_ID": role_id,
        "VAULT_SECRET_ID": secret_id,
    }
    with Service(project, env) as service, service.client() as client:
        at_start = approle_tokens(root, "kept")
        assert len(at_start) == 1, f"{len(at_start)} live tokens for the role after the start"
        ((first, first_data),) = at_start.items()
        expires = datetime.datetime.fromisoformat(first_data["expire_time"])

        def one_live_token() -> dict[str, dict[str, Any]] | None:
            tokens = approle_tokens(root, "kept")
            return tokens if len(tokens) == 1 else None

        for logins in (1, 2):

            def logged_in_again(times: int = logins) -> bool:
                return len(vault_lines(service, event="vault logged in again")) >= times

            wait_until(
                logged_in_again,
                message=f"re-login {logins}",
                timeout=30,
                interval=0.1,
                context=service.output,
            )
            live = wait_until(
                one_live_token,
                message="one live token for the role",
                timeout=5,
                interval=0.1,
                context=lambda: approle_tokens(root, "kept"),
            )
            assert first not in live
            if logins == 1:  # gone before its TTL ran out: revoked, not expired
                assert datetime.datetime.now(datetime.UTC) < expires
            assert client.get("/readyz").status_code == 200
        assert service.stop() == 0
    revoked = vault_lines(service, event="vault replaced token revoked")
    assert len(revoked) >= 2
    assert not vault_lines(service, level="error")
    assert_clean(service.output(), role_id, secret_id, dev_bao.root_token)
