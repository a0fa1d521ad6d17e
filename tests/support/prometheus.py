"""A render's Prometheus and Grafana files, and a real Prometheus scraping a service.

Prometheus and promtool are Debian's (``make system-deps``). The server listens on a
free 127.0.0.1 port, keeps its data in the test's directory, and is stopped through
the process handle that started it.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from .polling import wait_until
from .service import free_port

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"

RULES = Path("observability/rules/alerts.yml")
RULE_TESTS = Path("observability/tests/alerts.test.yml")
DASHBOARD = Path("observability/grafana/dashboards/service.json")
DATASOURCES = Path("observability/grafana/provisioning/datasources/prometheus.yml")
DASHBOARD_PROVIDERS = Path("observability/grafana/provisioning/dashboards/dashboards.yml")


def rule_groups(project: Path) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load((project / RULES).read_text())["groups"]
    return groups


def alert_rules(project: Path) -> list[dict[str, Any]]:
    return [rule for group in rule_groups(project) for rule in group["rules"] if "alert" in rule]


def recorded_names(project: Path) -> set[str]:
    rules = [rule for group in rule_groups(project) for rule in group["rules"]]
    return {rule["record"] for rule in rules if "record" in rule}


def dashboard_expressions(project: Path) -> list[str]:
    dashboard = json.loads((project / DASHBOARD).read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def query(self, expression: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expression}, timeout=10)
        body = response.json()
        assert response.status_code == 200, (expression, body)
        assert body["status"] == "success", (expression, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.url}{path}", timeout=10)
        response.raise_for_status()
        return response.json()["data"]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)


def start_prometheus(project: Path, target_port: int, directory: Path) -> Prometheus:
    """/usr/bin/prometheus with the project's config and rules, scraping 127.0.0.1:port
    every second; returns once it is ready."""
    config = yaml.safe_load((project / "observability" / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [
        str(project / "observability" / pattern) for pattern in config["rule_files"]
    ]
    (scrape,) = config["scrape_configs"]
    scrape.update(scrape_interval="1s", scrape_timeout="1s")
    scrape["static_configs"] = [{"targets": [f"127.0.0.1:{target_port}"]}]
    config_path = directory / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    port = free_port()
    log = directory / "prometheus.log"
    with log.open("w") as stream:
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={directory / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=stream,
            stderr=subprocess.STDOUT,
        )
    prometheus = Prometheus(f"http://127.0.0.1:{port}", process, log)

    def ready() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            return httpx.get(f"{prometheus.url}/-/ready", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, message="Prometheus to be ready", timeout=30, interval=0.5)
    except BaseException:
        prometheus.stop()
        raise
    return prometheus
