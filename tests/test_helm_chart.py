"""The kubernetes deploy target's Helm chart, proven with the tools operators use, without
a cluster.

The chart is rendered and linted by Helm's own engine in-process (helm-python-sdk),
every manifest is validated against the Kubernetes API schemas in strict mode (the
kubernetes-validate CLI), the prometheus-operator objects it has no schema for are
checked field by field, values.schema.json refuses wrong values, the properties that
matter in production are asserted on the result, and the service booted with the
chart's settings answers the Deployment's probes. What needs a cluster (a real
rollout) is not proven here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import helm_python as helm
import httpx
import pytest
import yaml

from .support.deploy import ANSWER_SETS
from .support.dockerfile import runtime_stage, user_of
from .support.helm_chart import (
    OPERATOR_KINDS,
    by_kind,
    chart_dir,
    config_data,
    container_of,
    kubernetes_validate,
    lint_and_validate_long_slug_chart,
    lint_problems,
    matches,
    pod_spec,
    render_chart,
)
from .support.polling import wait_until
from .support.project import install, render
from .support.renders import KeyedRenders
from .support.service import Service, free_port

# Renders shared with the other deploy modules: one xdist worker runs them all.
pytestmark = pytest.mark.xdist_group("deploy")

SLUG = "my-service"
CHART = Path("deploy/helm") / SLUG

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


@pytest.mark.parametrize("answer_set", list(ANSWER_SETS))
@pytest.mark.parametrize("values_name", ["default-values", "scaled-values"])
def test_chart_lints_and_every_manifest_passes_strict_validation(
    rendered_projects: KeyedRenders, tmp_path: Path, answer_set: str, values_name: str
) -> None:
    project = rendered_projects[f"kubernetes:{answer_set}"]
    values = SCALED_VALUES if values_name == "scaled-values" else None
    assert lint_problems(chart_dir(project), values) == []
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
    rendered_projects: KeyedRenders, values_name: str
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
    uid, gid = (int(part) for part in user_of(runtime_stage(project)).split(":"))
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
    rendered_projects: KeyedRenders,
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
            },
        ),
        (
            "vault-token-otlp-http",
            {
                "OTEL_SERVICE_NAME": SLUG,
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability.svc:4318",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            },
        ),
        (
            "vault-approle-console",
            {
                "OTEL_SERVICE_NAME": SLUG,
            },
        ),
        ("env-no-tracing", {}),
    ],
)
def test_tracing_settings_follow_the_exporter(
    rendered_projects: KeyedRenders, answer_set: str, expected_env: dict[str, str]
) -> None:
    manifests, _ = render_chart(rendered_projects[f"kubernetes:{answer_set}"])
    otel = {k: v for k, v in config_data(manifests).items() if k.startswith("OTEL_")}
    assert otel == expected_env


def test_vault_kubernetes_auth_uses_a_projected_token_and_no_secret(
    rendered_projects: KeyedRenders,
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


def test_vault_approle_reads_the_operators_secret(rendered_projects: KeyedRenders) -> None:
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


def test_vault_token_comes_from_the_operators_secret(rendered_projects: KeyedRenders) -> None:
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
    rendered_projects: KeyedRenders, values: dict[str, Any], refusal: str
) -> None:
    project = rendered_projects["kubernetes:env-otlp-grpc"]
    with pytest.raises(helm.HelmValuesError) as refused:
        render_chart(project, values)
    assert refusal in str(refused.value)
    assert any(refusal in problem["error"] for problem in lint_problems(chart_dir(project), values))


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
    rendered_projects: KeyedRenders, answer_set: str, values: dict[str, Any], refusal: str
) -> None:
    with pytest.raises(helm.HelmValuesError) as refused:
        render_chart(rendered_projects[f"kubernetes:{answer_set}"], values)
    assert refusal in str(refused.value)


def test_schema_accepts_what_the_docs_suggest(rendered_projects: KeyedRenders) -> None:
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
    assert lint_problems(chart_dir(project), documented) == []


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
    rendered_projects: KeyedRenders,
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
    chart = chart_dir(project)
    metadata = helm.Chart.load(chart).metadata
    assert metadata["name"] == chart.name == "uberwachungs-dienst-fur-zahler"
    assert metadata["description"] == answers["description"]
    assert metadata["maintainers"] == [
        {"name": answers["author_name"], "email": answers["author_email"]}
    ]
    assert lint_problems(chart, kube_version=None) == []


def test_strict_validation_catches_a_misspelt_field(
    rendered_projects: KeyedRenders, tmp_path: Path
) -> None:
    """The validation above can fail: one misspelt probe field is refused."""
    manifests, _ = render_chart(rendered_projects["kubernetes:env-otlp-grpc"])
    probe = container_of(manifests)["readinessProbe"]["httpGet"]
    probe["paht"] = probe.pop("path")
    with pytest.raises(AssertionError, match="paht"):
        kubernetes_validate(manifests, tmp_path)


def test_booted_service_takes_the_charts_settings_and_answers_its_probes(
    rendered_projects: KeyedRenders,
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

        assert wait_until(
            refuses_traffic,
            message="readiness to turn 503 after SIGTERM",
            timeout=60,
            interval=0.5,
            context=service.output,
        )
        # One SIGTERM, as the kubelet sends: wait for the drain, do not signal again.
        service.process.wait(timeout=120)
        assert service.stop() == 0, service.output()  # signals nothing once exited
