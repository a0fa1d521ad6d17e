"""The Vector pipelines (vector-elasticsearch, vector-kafka-elasticsearch): configs, VRL,
Kafka and Elasticsearch, against what the service really logs.

Vector, Kafka's own clients, Elasticsearch and Kibana do not run here, so:
- ran for real: the service (a booted process gives the JSON lines); Vector's own VRL
  compiler and runtime (the vector-vrl wheel) compiles every remap program and runs
  the agent's and the aggregator's programs over those real lines; a Kafka-API broker
  (Tansu) with two consumers of the aggregators' group;
- checked statically: Vector's topology (every input names a defined component,
  every sink is fed, nothing dangles), Kafka topic and key, the Elasticsearch data
  stream against the index template and Kibana's data view.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from .support.compose import compose_json
from .support.kafka import kafka_broker
from .support.logs import (
    EXCEPTION_FIELDS,
    KEPT_FIELDS,
    PIPELINE_FIELDS,
    TRACE_FIELDS,
    VECTOR,
    real_keys,
)
from .support.polling import wait_until
from .support.project import run
from .support.renders import KeyedRenders
from .support.vector import (
    assert_vector_topology,
    merge_vector,
    read_yaml,
    remap_programs,
    vector_sets,
)
from .support.vrl import run_vrl

# Renders and the booted service's lines shared with the other pipeline modules.
pytestmark = pytest.mark.xdist_group("logs")

SLUG = "my-service"


@pytest.mark.parametrize("pipeline", VECTOR)
def test_vector_configs_are_wired_and_their_vrl_compiles(
    renders: KeyedRenders, pipeline: str
) -> None:
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
    renders: KeyedRenders, real_lines: list[dict[str, Any]], pipeline: str
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


def test_kafka_topic_key_and_buffers_agree(renders: KeyedRenders) -> None:
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
    config = compose_json(project)
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


def test_kafka_leg_on_a_real_broker(
    renders: KeyedRenders, real_lines: list[dict[str, Any]]
) -> None:
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
    command = compose_json(project)["services"]["kafka-topics"]["command"]
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

        def everything_received() -> bool:
            # Each poll waits up to 500 ms and drives its consumer's group membership;
            # time between polls stalls the rebalance, so no sleep (interval=0).
            for consumer in consumers:
                for records in consumer.poll(timeout_ms=500).values():
                    for record in records:
                        received[(record.partition, record.offset)] = record
            return len(received) >= len(sent) and all(c.assignment() for c in consumers)

        try:
            wait_until(
                everything_received,
                message="both aggregators to be assigned and every record to arrive",
                timeout=180,
                interval=0,
                context=lambda: f"received {len(received)} of {len(sent)}",
            )
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
    renders: KeyedRenders, real_lines: list[dict[str, Any]], pipeline: str
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
    services = compose_json(project)["services"]
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
