"""The loki pipeline: Grafana Alloy's configs, Loki's and Grafana's, against what the
service really logs.

Neither Alloy nor Loki runs here (no Python parser or binary): Alloy's component
references are read by tests/support/alloy.py (every reference declared, every
component read), labels stay low-cardinality and the kept fields go to structured
metadata, Loki accepts that metadata, and Grafana's datasource links a log line's
trace_id to Jaeger.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from .support import alloy
from .support.compose import compose_json
from .support.logs import KEPT_FIELDS, TRACE_FIELDS, real_keys
from .support.renders import KeyedRenders
from .support.vector import read_yaml

# Renders and the booted service's lines shared with the other pipeline modules.
pytestmark = pytest.mark.xdist_group("logs")

SLUG = "my-service"


def assert_loki_pipeline(declared: dict[str, alloy.Block], lines: set[str]) -> None:
    process = declared["loki.process.service"]
    (json_stage,) = process.children("stage.json")
    extracted = json_stage.attributes["expressions"]
    assert set(extracted.values()) <= lines | TRACE_FIELDS, set(extracted.values()) - lines
    (labels,) = process.children("stage.labels")
    assert set(labels.attributes["values"]) == {"level"}, "labels stay low-cardinality"
    (metadata,) = process.children("stage.structured_metadata")
    kept = set(metadata.attributes["values"])
    assert KEPT_FIELDS - {"level"} <= kept
    assert kept <= set(extracted)
    (stamp,) = process.children("stage.timestamp")
    assert stamp.attributes["source"] in extracted
    relabel = declared["discovery.relabel.service"]
    assert {rule.attributes["target_label"] for rule in relabel.children("rule")} == {"service"}
    (endpoint,) = declared["loki.write.default"].children("endpoint")
    assert endpoint.attributes["url"] == alloy.Call("sys.env", ("LOKI_URL",))


def test_alloy_pipeline_parses_and_keeps_labels_low(
    renders: KeyedRenders, real_lines: list[dict[str, Any]]
) -> None:
    project = renders["loki:compose"]
    base = project / "observability/alloy"
    assert {p.name for p in base.iterdir()} == {"sources-docker.alloy", "pipeline.alloy"}
    blocks = [b for f in sorted(base.iterdir()) for b in alloy.parse(f.read_text())]
    declared = alloy.assert_wiring(blocks)
    assert_loki_pipeline(declared, real_keys(real_lines))
    (flt,) = declared["discovery.docker.containers"].children("filter")
    assert flt.attributes == {"name": "label", "values": ["shipshape.service"]}


def test_alloy_reader_refuses_what_it_cannot_read() -> None:
    """The wiring checks above can fail: a typo or a dangling reference is caught."""
    with pytest.raises(SyntaxError):
        alloy.parse('loki.write "default" { endpoint { url = } }')
    blocks = alloy.parse(
        'loki.source.api "x" { forward_to = [loki.write.missing.receiver] }\n'
        'loki.write "default" { endpoint { url = "http://l" } }'
    )
    with pytest.raises(AssertionError, match="undeclared"):
        alloy.assert_wiring(blocks)


def test_loki_config_allows_structured_metadata(renders: KeyedRenders) -> None:
    project = renders["loki:compose"]
    config = read_yaml(project / "observability/loki/loki.yaml")
    assert config["limits_config"]["allow_structured_metadata"] is True
    (schema,) = config["schema_config"]["configs"]
    assert (schema["schema"], schema["store"]) == ("v13", "tsdb")
    services = compose_json(project)["services"]
    port = config["server"]["http_listen_port"]
    assert services["alloy"]["environment"]["LOKI_URL"] == f"http://loki:{port}/loki/api/v1/push"
    assert services["alloy"]["depends_on"]["loki"]["condition"] == "service_healthy"
    # loki -health asks its own default address: the config must listen there.
    assert services["loki"]["healthcheck"]["test"] == ["CMD", "/usr/bin/loki", "-health"]
    assert port == 3100


@pytest.mark.parametrize("tracing", ["otlp-grpc", "none"])
def test_grafana_gets_loki_and_a_logs_panel_linked_to_traces(
    renders: KeyedRenders, tracing: str
) -> None:
    project = renders[f"loki:compose:{tracing}"]
    grafana = project / "observability/grafana"
    (source,) = read_yaml(grafana / "provisioning/datasources/loki.yml")["datasources"]
    assert (source["uid"], source["type"], source["url"]) == ("loki", "loki", "http://loki:3100")
    derived = source["jsonData"].get("derivedFields")
    if tracing == "none":
        assert derived is None
    else:
        (link,) = derived
        jaeger = read_yaml(grafana / "provisioning/datasources/jaeger.yml")["datasources"]
        assert link["datasourceUid"] == jaeger[0]["uid"] == "jaeger"
        assert (link["matcherType"], link["matcherRegex"]) == ("label", "trace_id")
    dashboard = json.loads((grafana / "dashboards/logs.json").read_text())
    logs = [p for p in dashboard["panels"] if p["type"] == "logs"]
    assert logs
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "loki"
        for target in panel["targets"]:
            assert f'service="{SLUG}"' in target["expr"]
            assert re.findall(r"\{([a-z_]+)=", target["expr"]) == ["service"]
    (query,) = logs[0]["targets"]
    assert "request_id=~" in query["expr"]
    assert "trace_id=~" in query["expr"]
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"request_id", "trace_id", "level"} <= variables
