"""The rendered Prometheus config, alert rules and Grafana dashboard, with the real tools.

promtool checks the config and rules and runs the rule unit tests (which can fail);
every alert has a case where it fires and one where it stays quiet; every metric the
dashboard and the rules select is one the booted service exports; and a real
Prometheus (Debian's) scrapes the service, evaluates every rule, answers every
dashboard query, and turns TargetDown pending once the service stops.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .support.jobs import run_one_job
from .support.polling import wait_until
from .support.project import run
from .support.prometheus import (
    DASHBOARD,
    DATASOURCES,
    PROMTOOL,
    RULE_TESTS,
    RULES,
    Prometheus,
    alert_rules,
    dashboard_expressions,
    recorded_names,
    rule_groups,
    start_prometheus,
)
from .support.service import Service

SLUG = "my-service"


@pytest.fixture
def service(default_project: Path) -> Iterator[Service]:
    with Service(default_project) as running:
        yield running


# --- promtool -----------------------------------------------------------------------


def test_prometheus_config_and_rules_pass_promtool(default_project: Path) -> None:
    checked = run([PROMTOOL, "check", "config", "observability/prometheus.yml"], default_project)
    assert "SUCCESS: 1 rule files found" in checked.stdout, checked.stdout
    assert str(RULES) in checked.stdout
    rules = run([PROMTOOL, "check", "rules", str(RULES)], default_project)
    assert "SUCCESS" in rules.stdout
    tested = run([PROMTOOL, "test", "rules", str(RULE_TESTS)], default_project)
    assert "SUCCESS" in tested.stdout, tested.stdout


def test_promtool_rule_tests_can_fail(default_project: Path, tmp_path: Path) -> None:
    """A rule with a wrong threshold fails the unit tests."""
    shutil.copytree(default_project / "observability", tmp_path / "observability")
    rules = tmp_path / RULES
    text = rules.read_text()
    assert text.count("> 300") == 1
    rules.write_text(text.replace("> 300", "> 3000"))
    result = run([PROMTOOL, "test", "rules", str(RULE_TESTS)], tmp_path, check=False)
    assert result.returncode != 0
    assert "JobQueueStalled" in result.stdout + result.stderr


def test_every_alert_fires_and_stays_quiet_in_the_rule_tests(default_project: Path) -> None:
    alerts = {rule["alert"] for rule in alert_rules(default_project)}
    assert alerts == {
        "TargetDown",
        "HighErrorRatio",
        "LatencySLOFastBurn",
        "LatencySLOSlowBurn",
        "JobsFailing",
        "JobQueueStalled",
        "JobStoreDiskFilling",
    }
    cases = [
        case
        for test in yaml.safe_load((default_project / RULE_TESTS).read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]
    for alert in alerts:
        outcomes = [bool(case["exp_alerts"]) for case in cases if case["alertname"] == alert]
        assert any(outcomes), f"{alert}: no test where it fires"
        assert not all(outcomes), f"{alert}: no test where it must not fire"


# --- Metric names in the dashboard and the rules ----------------------------------

_PROMQL_KEYWORDS = frozenset(
    [
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "inf",
        "nan",
    ]
)


def promql_metric_names(expression: str) -> set[str]:
    """Metric names an expression selects (not functions, labels, keywords or numbers)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w$.:])([A-Za-z_:][A-Za-z0-9_:]*)(?![\w:]|\s*\()", text):
        name = match.group(1)
        if name.lower() not in _PROMQL_KEYWORDS:
            names.add(name)
    return names


def test_promql_metric_name_extraction() -> None:
    assert promql_metric_names(
        'histogram_quantile(0.99, sum by (route, le) (rate(a_bucket{job="$job", le="0.25"}'
        "[$__rate_interval]))) / on (job) group_left b:ratio:rate5m * 2 > bool 1e3"
    ) == {"a_bucket", "b:ratio:rate5m"}
    assert promql_metric_names("max(x) or up == 0 and y offset 5m") == {"x", "up", "y"}


def exported_metric_names(metrics_text: str) -> set[str]:
    names = set()
    for line in metrics_text.splitlines():
        match = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)[{ ]", line)
        if match and not line.startswith("#"):
            names.add(match.group(1))
    return names


def exercise(service: Service) -> None:
    """Requests on every route family, and one job run to the end."""
    with service.client() as client:
        assert client.get("/healthz").status_code == 200
        assert client.get(f"/api/v1/jobs/{uuid.uuid4()}").status_code == 404
        run_one_job(client)
        assert client.get("/api/v1/jobs", params={"status": "succeeded"}).status_code == 200


def test_dashboard_and_rules_use_only_metrics_the_service_exports(
    default_project: Path, service: Service
) -> None:
    exercise(service)
    with service.client() as client:
        exported = exported_metric_names(client.get("/metrics").text)
    assert "http_requests_total" in exported  # the scrape itself is sane

    dashboard = json.loads((default_project / DASHBOARD).read_text())
    datasource_uid = yaml.safe_load((default_project / DATASOURCES).read_text())["datasources"][0][
        "uid"
    ]
    variables = {variable["name"] for variable in dashboard["templating"]["list"]}
    assert variables == {"job"}
    used: set[str] = set()
    recorded = recorded_names(default_project)
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == datasource_uid, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == datasource_uid, panel["title"]
            names = promql_metric_names(target["expr"])
            assert names, target["expr"]
            unknown = names - exported - recorded
            assert not unknown, f"{panel['title']}: {sorted(unknown)} not exported"
            used |= names
    assert {
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "jobs_finished_total",
        "jobs_running",
        "jobs_queued",
        "jobs_queue_oldest_age_seconds",
    } <= used
    expressions = dashboard_expressions(default_project)
    for quantile in ("0.5", "0.95", "0.99"):
        assert any(f"histogram_quantile({quantile}," in e for e in expressions), quantile
    assert any("sum by (route)" in e and "http_requests_total" in e for e in expressions)
    assert any("sum by (status)" in e and "jobs_finished_total" in e for e in expressions)

    for rule in rule_groups(default_project):
        for entry in rule["rules"]:
            unknown = promql_metric_names(entry["expr"]) - exported - recorded - {"up"}
            assert not unknown, f"{entry.get('alert') or entry.get('record')}: {sorted(unknown)}"


# --- A real Prometheus scraping the service ---------------------------------------


@pytest.fixture
def prometheus(default_project: Path, service: Service, tmp_path: Path) -> Iterator[Prometheus]:
    """A real Prometheus with the project's config and rules, scraping ``service``."""
    started = start_prometheus(default_project, service.port, tmp_path)
    yield started
    started.stop()


def test_prometheus_scrapes_the_service_and_evaluates_the_rules(
    default_project: Path, service: Service, prometheus: Prometheus
) -> None:
    not_found = 7
    with service.client() as client:
        for _ in range(not_found):
            assert client.get(f"/api/v1/jobs/{uuid.uuid4()}").status_code == 404
    exercise(service)  # asks for one more unknown job
    not_found += 1

    counted = (
        f'sum(http_requests_total{{job="{SLUG}", route="/api/v1/jobs/{{job_id}}",'
        ' status_code="404"})'
    )

    def scraped_count() -> float | None:
        result = prometheus.query(counted)
        return float(result[0]["value"][1]) if result else None

    assert wait_until(
        lambda: scraped_count() == not_found,
        message="the requests to be scraped",
        timeout=60,
        interval=0.5,
    )
    assert prometheus.query(f'up{{job="{SLUG}"}}')[0]["value"][1] == "1"

    # Every rule loads and evaluates without error against the real series.
    expected_groups = {g["name"] for g in rule_groups(default_project)}

    def rules_healthy() -> bool:
        groups = prometheus.get("/api/v1/rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        if {group["name"] for group in groups} != expected_groups:
            return False
        return bool(rules) and all(rule["health"] == "ok" for rule in rules)

    wait_until(rules_healthy, message="every rule to evaluate", timeout=30, interval=0.5)
    assert wait_until(
        lambda: prometheus.query(f'job:slo_latency_slow_ratio:rate5m{{job="{SLUG}"}}'),
        message="the latency SLO recording rule",
        timeout=30,
        interval=0.5,
    )

    # Every dashboard query is valid PromQL here; the ones that always have data have it.
    always = ("http_requests_total{job", "jobs_running", "jobs_queued", "oldest_age", "0.99")
    for expression in dashboard_expressions(default_project):
        concrete = expression.replace("$job", SLUG).replace("$__rate_interval", "1m")
        result = prometheus.query(concrete)
        if any(marker in expression for marker in always) and "5.." not in expression:
            assert wait_until(
                lambda c=concrete: prometheus.query(c),
                message=f"data for {concrete}",
                timeout=20,
                interval=0.5,
            )
        else:
            assert isinstance(result, list)

    # The service stops: TargetDown goes pending for its job.
    assert service.stop() == 0

    def target_down() -> list[dict[str, Any]]:
        return [
            alert
            for alert in prometheus.get("/api/v1/alerts")["alerts"]
            if alert["labels"]["alertname"] == "TargetDown" and alert["labels"]["job"] == SLUG
        ]

    (alert,) = wait_until(
        target_down, message="TargetDown to become pending", timeout=30, interval=0.5
    )
    assert alert["state"] == "pending"
    assert alert["labels"]["severity"] == "page"
    assert prometheus.process.poll() is None, prometheus.log.read_text()
