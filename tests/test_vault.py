"""The vault variant booted against a real OpenBao dev server.

One project is rendered (vault, AppRole) and booted with each auth method through
VAULT_AUTH_METHOD, whose default is the answer to ``vault_auth``. Every run's
stdout and stderr is checked for the tokens, secret ids and secret values the
test handed out.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import postgres
from .support.compose import compose_json
from .support.jobs import submit, wait_for_job
from .support.openbao import (
    BAO,
    OpenBao,
    TokenReviewStandIn,
    self_signed_ca_pem,
    service_account_jwt,
)
from .support.polling import holds_for, wait_until
from .support.project import install, render, run
from .support.questions import choices
from .support.service import Service, free_port

SLUG = "vaulted"
PACKAGE = "vaulted"
POLICY = "vaulted-read"
# Vault and OpenBao token formats (service and batch, old and new prefixes).
TOKEN_PATTERN = re.compile(r"\b(?:hvs|hvb|s|b)\.[A-Za-z0-9_-]{20,}")

pytestmark = pytest.mark.xdist_group("vault")


def installed_render(tmp_path_factory: pytest.TempPathFactory, **answers: str) -> Path:
    """This module's service (slug ``vaulted``, vault) on ``answers``, installed."""
    rendered = render(
        tmp_path_factory.mktemp("vault") / SLUG,
        project_name="Vaulted",
        secrets_backend="vault",
        **answers,
    )
    install(rendered)
    return rendered


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return installed_render(tmp_path_factory, vault_auth="approle")


@pytest.fixture(scope="module")
def bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    server = OpenBao(tmp_path_factory.mktemp("bao") / "bao.log").start()
    try:
        client = server.client()
        client.sys.create_or_update_policy(
            POLICY,
            f'path "secret/data/{SLUG}" {{ capabilities = ["read"] }}\n',
        )
        client.sys.enable_auth_method("approle")
        yield server
    finally:
        server.stop()


def write_secret(bao: OpenBao, **values: str) -> None:
    bao.client().secrets.kv.v2.create_or_update_secret(
        path=SLUG, secret=values, mount_point="secret"
    )


def assert_clean(output: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in output, "a secret value appears in the output"
    assert TOKEN_PATTERN.search(output) is None, "a Vault token appears in the output"


def events(service: Service, event: str) -> list[dict]:
    return list(service.logs_where(event=event, logger="vault"))


def test_token_auth_takes_the_database_url_from_vault(
    project: Path, bao: OpenBao, tmp_path: Path
) -> None:
    vault_db = tmp_path / "from-vault.db"
    env_db = tmp_path / "from-env.db"
    database_url = f"sqlite+aiosqlite:///{vault_db}"
    write_secret(bao, database_url=database_url, api_key="kv-only-value-7f3a")
    token = bao.client().auth.token.create(policies=[POLICY], ttl="1h")["auth"]["client_token"]
    env = {
        "VAULT_ADDR": bao.addr,
        "VAULT_AUTH_METHOD": "token",
        "VAULT_TOKEN": token,
        "DATABASE_URL": f"sqlite+aiosqlite:///{env_db}",
    }
    with Service(project, env) as service, service.client() as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ok", "checks": {"database": "ok", "vault": "ok"}}
        (session,) = events(service, "vault session ready")
        assert session["renewable"] is True
        job = client.post("/api/v1/jobs", json={"kind": "sleep", "payload": {"seconds": 0}})
        assert job.status_code == 202
        code = service.stop()
    assert code == 0
    with sqlite3.connect(vault_db) as connection:
        (count,) = connection.execute("select count(*) from jobs").fetchone()
    assert count == 1  # the job went to the database Vault named, not the environment's
    assert not env_db.exists()
    # The sqlite path is logged on purpose (display_url hides only passwords); the
    # secret value is the KV key the service does not use.
    assert_clean(service.output(), token, "kv-only-value-7f3a", bao.root_token)


@pytest.fixture(scope="module")
def postgresql_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same service on the postgresql answer (tracing off: no collector here)."""
    return installed_render(
        tmp_path_factory, vault_auth="token", database="postgresql", tracing_exporter="none"
    )


def test_postgresql_takes_its_url_and_password_from_vault(
    postgresql_project: Path, bao: OpenBao
) -> None:
    """The database Vault names is the one used; its password is never printed."""
    password = "vault-pg-Secret-3e81"  # made up, to look for
    with postgres.temporary_role(password) as role, postgres.temporary_database(role) as name:
        write_secret(bao, database_url=postgres.url(name, user=role, password=password))
        token = bao.client().auth.token.create(policies=[POLICY], ttl="1h")["auth"]
        env = {
            "VAULT_ADDR": bao.addr,
            "VAULT_TOKEN": token["client_token"],
            # Unreachable on purpose: only Vault's URL leads anywhere.
            "DATABASE_URL": postgres.url("not_this_one", password="env-only").replace(
                f":{postgres.PORT}/", ":9/"
            ),
        }
        with Service(postgresql_project, env) as service, service.client() as client:
            ready = client.get("/readyz")
            assert ready.json() == {"status": "ok", "checks": {"database": "ok", "vault": "ok"}}
            job_id = submit(client)
            wait_for_job(client, job_id)
            texts = [client.get("/metrics").text, ready.text]
            code = service.stop()
        stored = postgres.psql(f"SELECT status FROM jobs WHERE id = '{job_id}'", database=name)
    assert code == 0
    assert stored == "succeeded"  # in the database Vault named
    (started,) = service.logs_where(event="service started")
    assert started["database"].startswith(f"postgresql+asyncpg://{role}:")
    assert started["database"].endswith(f"@127.0.0.1:{postgres.PORT}/{name}")  # password masked
    for text in (service.output(), *texts):
        assert_clean(text, password, token["client_token"], bao.root_token)


def test_approle_with_a_short_ttl_renews_and_logs_in_again(
    project: Path, bao: OpenBao, tmp_path: Path
) -> None:
    client = bao.client()
    client.auth.approle.create_or_update_approle(
        "vaulted",
        token_policies=[POLICY],
        token_ttl="3s",
        token_max_ttl="7s",
        secret_id_num_uses=0,
    )
    role_id = client.auth.approle.read_role_id("vaulted")["data"]["role_id"]
    secret_id = client.auth.approle.generate_secret_id("vaulted")["data"]["secret_id"]
    secret_file = tmp_path / "secret-id"
    secret_file.write_text(secret_id + "\n")
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'approle.db'}"
    write_secret(bao, database_url=database_url)
    env = {
        "VAULT_ADDR": bao.addr,
        "VAULT_ROLE_ID": role_id,
        "VAULT_SECRET_ID_FILE": str(secret_file),
    }
    with Service(project, env) as service, service.client() as client:

        def stays_ready() -> None:
            ready = client.get("/readyz")
            assert ready.status_code == 200, (ready.json(), service.output())

        def logged_in_again() -> bool:
            if events(service, "vault logged in again"):
                return True
            stays_ready()
            return False

        # Several TTLs (3 s each, at most 7 s per login): ready the whole time.
        wait_until(
            logged_in_again,
            message="a second AppRole login",
            timeout=120,
            interval=0.5,
            context=service.output,
        )
        holds_for(stays_ready, seconds=10, interval=0.5)  # and for 3 more TTLs after it
        job = client.post("/api/v1/jobs", json={"kind": "sleep", "payload": {"seconds": 0}})
        assert job.status_code == 202
        assert service.stop() == 0
    assert events(service, "vault token renewed")
    assert events(service, "vault logged in again")
    assert (tmp_path / "approle.db").exists()
    assert_clean(service.output(), role_id, secret_id, bao.root_token)


def test_each_worker_process_logs_in_itself(project: Path, bao: OpenBao, tmp_path: Path) -> None:
    client = bao.client()
    client.auth.approle.create_or_update_approle("workers", token_policies=[POLICY])
    role_id = client.auth.approle.read_role_id("workers")["data"]["role_id"]
    secret_id = client.auth.approle.generate_secret_id("workers")["data"]["secret_id"]
    write_secret(bao, database_url=f"sqlite+aiosqlite:///{tmp_path / 'workers.db'}")
    env = {
        "VAULT_ADDR": bao.addr,
        "VAULT_ROLE_ID": role_id,
        "VAULT_SECRET_ID": secret_id,
        "WORKERS": "2",
    }
    with Service(project, env) as service, service.client() as http:
        wait_until(
            lambda: len(events(service, "vault session ready")) >= 2,
            message="both workers' Vault sessions",
            timeout=60,
            interval=0.2,
            context=service.output,
        )
        for _ in range(10):  # whichever worker answers, Vault is ready in it
            assert http.get("/readyz").json()["checks"]["vault"] == "ok"
        assert service.stop() == 0
    assert (tmp_path / "workers.db").exists()
    assert_clean(service.output(), role_id, secret_id, bao.root_token)


def test_kubernetes_auth_end_to_end(project: Path, bao: OpenBao, tmp_path: Path) -> None:
    jwt = service_account_jwt("shop", "vaulted")
    token_file = tmp_path / "token"
    token_file.write_text(jwt)
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'k8s.db'}"
    write_secret(bao, database_url=database_url)
    with TokenReviewStandIn(jwt, "shop", "vaulted") as kubernetes:
        client = bao.client()
        client.sys.enable_auth_method("kubernetes", path="k8s-test")
        client.auth.kubernetes.configure(
            kubernetes_host=kubernetes.url,
            kubernetes_ca_cert=self_signed_ca_pem(),
            disable_local_ca_jwt=True,
            mount_point="k8s-test",
        )
        client.auth.kubernetes.create_role(
            "vaulted",
            bound_service_account_names="vaulted",
            bound_service_account_namespaces="shop",
            policies=[POLICY],
            ttl="1h",
            mount_point="k8s-test",
        )
        env = {
            "VAULT_ADDR": bao.addr,
            "VAULT_AUTH_METHOD": "kubernetes",
            "VAULT_K8S_ROLE": "vaulted",
            "VAULT_K8S_MOUNT": "k8s-test",
            "VAULT_K8S_TOKEN_PATH": str(token_file),
        }
        with Service(project, env) as service, service.client() as http:
            ready = http.get("/readyz")
            assert ready.json() == {"status": "ok", "checks": {"database": "ok", "vault": "ok"}}
            assert service.stop() == 0
        assert [review["body"]["spec"]["token"] for review in kubernetes.reviews] == [jwt]
    assert (tmp_path / "k8s.db").exists()
    assert_clean(service.output(), jwt, bao.root_token)


def start_failing(project: Path, env: dict[str, str]) -> tuple[int, str, str]:
    service = Service(project, {"VAULT_START_ATTEMPTS": "2", **env}).start(wait=False)
    assert service.process is not None
    code = service.process.wait(timeout=120)
    service.stop()
    return code, "\n".join(service.stdout), "\n".join(service.stderr)


def test_wrong_credentials_exit_non_zero_with_one_clean_line(project: Path, bao: OpenBao) -> None:
    client = bao.client()
    client.auth.approle.create_or_update_approle("wrong", token_policies=[POLICY])
    role_id = client.auth.approle.read_role_id("wrong")["data"]["role_id"]
    wrong_secret_id = "00000000-1111-2222-3333-444444444444"
    code, stdout, stderr = start_failing(
        project,
        {"VAULT_ADDR": bao.addr, "VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": wrong_secret_id},
    )
    assert code == 3
    assert stdout == ""
    assert stderr.count("\n") == 0
    assert stderr.startswith("vault: approle login: credentials or request refused"), stderr
    assert "gave up after 2 attempts" in stderr
    assert_clean(stdout + stderr, role_id, wrong_secret_id, bao.root_token)

    bad_token = "s.NotARealTokenButShapedLikeOne1234"
    code, stdout, stderr = start_failing(
        project, {"VAULT_ADDR": bao.addr, "VAULT_AUTH_METHOD": "token", "VAULT_TOKEN": bad_token}
    )
    assert code == 3
    assert stderr.startswith("vault: token lookup: credentials refused"), stderr
    assert bad_token not in stdout + stderr


def test_unreachable_vault_exits_non_zero_after_retries(project: Path) -> None:
    secret_id = "55555555-6666-7777-8888-999999999999"
    code, stdout, stderr = start_failing(
        project,
        {
            "VAULT_ADDR": f"http://127.0.0.1:{free_port()}",
            "VAULT_ROLE_ID": "some-role",
            "VAULT_SECRET_ID": secret_id,
        },
    )
    assert code == 3
    assert stderr.count("\n") == 0
    assert stderr.startswith("vault: approle login: Vault unreachable"), stderr
    assert secret_id not in stdout + stderr


def test_vault_stopped_while_running_fails_neither_probe(project: Path, tmp_path: Path) -> None:
    """Readiness reads the token keeper, not Vault (issue 15): an outage shorter than the
    token's TTL leaves the service ready. tests/test_vault_keeper.py renews through one
    and loses a token."""
    own = OpenBao(tmp_path / "bao.log").start()
    try:
        client = own.client()
        client.sys.create_or_update_policy(
            POLICY, f'path "secret/data/{SLUG}" {{ capabilities = ["read"] }}\n'
        )
        client.secrets.kv.v2.create_or_update_secret(
            path=SLUG, secret={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"}
        )
        token = client.auth.token.create(policies=[POLICY], ttl="1h")["auth"]["client_token"]
        env = {"VAULT_ADDR": own.addr, "VAULT_AUTH_METHOD": "token", "VAULT_TOKEN": token}
        with Service(project, env) as service, service.client() as client:
            assert client.get("/readyz").json()["checks"]["vault"] == "ok"
            own.stop()

            def both_probes_ok() -> None:
                ready = client.get("/readyz")
                assert ready.status_code == 200, ready.json()
                assert client.get("/healthz").status_code == 200

            holds_for(both_probes_ok, seconds=5, interval=0.2)
            assert service.stop() == 0
        assert_clean(service.output(), token, own.root_token)
    finally:
        own.stop()


def test_the_env_variant_has_no_vault_code(default_project: Path) -> None:
    assert "hvac" not in (default_project / "pyproject.toml").read_text()
    package = default_project / "src" / "my_service"
    vault_files = [path.name for path in package.rglob("*vault*")]
    assert vault_files == []
    assert not (default_project / "vault").exists()
    assert not [path for path in (default_project / "tests").rglob("*vault*")]
    assert "VAULT_" not in (default_project / "compose.yaml").read_text()
    sources = "\n".join(path.read_text() for path in package.rglob("*.py"))
    assert "vault" not in sources.lower()
    assert "hvac" not in sources


def test_the_compose_init_script_configures_a_real_server(
    project: Path, bao: OpenBao, tmp_path: Path
) -> None:
    """vault/init.sh, as compose runs it, against the dev server: then the service logs in."""
    approle_dir = tmp_path / "approle"
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'compose.db'}"
    service_token = "vaulted-dev-token"
    init_env = {
        "BAO_ADDR": bao.addr,
        "BAO_TOKEN": bao.root_token,
        "SERVICE": SLUG,
        "ROLE_ID": "vaulted-dev-role",
        "SERVICE_TOKEN": service_token,
        "APPROLE_DIR": str(approle_dir),
        "DATABASE_URL": database_url,
        "PATH": f"{Path(BAO).parent}:/usr/bin:/bin",
    }
    for _ in range(2):  # compose may run it again: it must be idempotent
        done = run(["sh", "vault/init.sh"], project, env=init_env)
        assert "vault ready for vaulted" in done.stdout
    secret_id = (approle_dir / "secret-id").read_text().strip()
    assert bao.client().read("auth/approle/role/vaulted")["data"]["token_policies"] == [
        "vaulted-read"
    ]

    env = {
        "VAULT_ADDR": bao.addr,
        "VAULT_AUTH_METHOD": "approle",
        "VAULT_ROLE_ID": "vaulted-dev-role",
        "VAULT_SECRET_ID_FILE": str(approle_dir / "secret-id"),
    }
    with Service(project, env) as service, service.client() as client:
        assert client.get("/readyz").json()["checks"]["vault"] == "ok"
        assert service.stop() == 0
    assert (tmp_path / "compose.db").exists()
    assert_clean(service.output(), secret_id, "change-me-in-vault", bao.root_token)

    env = {"VAULT_ADDR": bao.addr, "VAULT_AUTH_METHOD": "token", "VAULT_TOKEN": service_token}
    with Service(project, env) as service, service.client() as client:
        assert client.get("/readyz").json()["checks"]["vault"] == "ok"
        assert service.stop() == 0
    assert_clean(service.output(), service_token, "change-me-in-vault")


@pytest.mark.parametrize("auth", choices("vault_auth"))
def test_compose_runs_the_dev_server_and_init_before_the_service(tmp_path: Path, auth: str) -> None:
    rendered = render(tmp_path / "p", secrets_backend="vault", vault_auth=auth)
    services = compose_json(rendered)["services"]
    app = services["my-service"]
    assert app["depends_on"]["vault-init"]["condition"] == "service_completed_successfully"
    assert services["vault-init"]["depends_on"]["vault"]["condition"] == "service_healthy"
    assert services["vault"]["healthcheck"]["test"][0] == "CMD"
    init_volumes = {v["target"]: v for v in services["vault-init"]["volumes"]}
    assert Path(init_volumes["/vault/init.sh"]["source"]) == rendered / "vault" / "init.sh"
    environment = app["environment"]
    assert environment["VAULT_ADDR"] == "http://vault:8200"
    if auth == "token":
        assert environment["VAULT_TOKEN"] == services["vault-init"]["environment"]["SERVICE_TOKEN"]
    else:
        assert environment["VAULT_AUTH_METHOD"] == "approle"
        assert environment["VAULT_ROLE_ID"] == services["vault-init"]["environment"]["ROLE_ID"]
        mounted = {v["target"]: v["source"] for v in app["volumes"]}
        secret_dir = Path(environment["VAULT_SECRET_ID_FILE"]).parent
        assert mounted[str(secret_dir)] == "vault-approle"
        assert services["vault-init"]["environment"]["APPROLE_DIR"] == str(secret_dir)


def test_https_with_a_private_ca_needs_vault_cacert(project: Path, tmp_path: Path) -> None:
    own = OpenBao(tmp_path / "bao.log", tls_dir=tmp_path / "tls").start()
    try:
        assert own.ca_cert is not None
        client = own.client()
        client.secrets.kv.v2.create_or_update_secret(
            path=SLUG, secret={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'tls.db'}"}
        )
        token = client.auth.token.create(policies=["root"], ttl="1h")["auth"]["client_token"]
        env = {"VAULT_ADDR": own.addr, "VAULT_AUTH_METHOD": "token", "VAULT_TOKEN": token}
        code, _stdout, stderr = start_failing(project, env)
        assert code == 3
        assert stderr.startswith("vault: token lookup: Vault unreachable (SSLError)"), stderr

        env["VAULT_CACERT"] = str(own.ca_cert)
        with Service(project, env) as service, service.client() as http:
            assert http.get("/readyz").json()["checks"]["vault"] == "ok"
            assert service.stop() == 0
        assert (tmp_path / "tls.db").exists()
        assert_clean(service.output(), token, own.root_token)
    finally:
        own.stop()
