"""Tracing against a real OTLP receiver: the rendered service booted as a process.

otlp-grpc is the default answer, so it runs on the session's default project;
otlp-http and console get their own render. ``none`` is checked on the render.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from .support.compose import compose_json
from .support.jobs import job
from .support.otlp import OtlpReceiver, ReceivedSpan
from .support.polling import wait_until
from .support.project import install, render
from .support.service import Service, free_port

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
PROBES = ("/healthz", "/readyz", "/metrics")
OTEL_IMPORT = re.compile(r"^\s*(from|import)\s+opentelemetry\b|OTEL_[A-Z]", re.MULTILINE)
EXPORTERS = [
    pytest.param("grpc", id="otlp-grpc"),
    pytest.param("http", id="otlp-http", marks=pytest.mark.slow),
]


@pytest.fixture(scope="module")
def http_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = render(
        tmp_path_factory.mktemp("otlp-http") / "my-service", tracing_exporter="otlp-http"
    )
    install(project)
    return project


@pytest.fixture
def project(request: pytest.FixtureRequest, protocol: str) -> Path:
    name = "default_project" if protocol == "grpc" else "http_project"
    found: Path = request.getfixturevalue(name)
    return found


def wait_for_job(client: httpx.Client, job_id: str, timeout: float = 30) -> int:
    """Poll until the job succeeded; returns how many GETs that took (each is traced)."""
    polls = 0

    def succeeded() -> bool:
        nonlocal polls
        polls += 1
        return job(client, job_id)["status"] == "succeeded"

    wait_until(succeeded, message=f"job {job_id} to succeed", timeout=timeout)
    return polls


def only(spans: list[ReceivedSpan], **match: Any) -> ReceivedSpan:
    found = [span for span in spans if all(getattr(span, k) == v for k, v in match.items())]
    assert len(found) == 1, (match, [(span.kind, span.name) for span in spans])
    return found[0]


@pytest.mark.parametrize("protocol", EXPORTERS)
def test_spans_reach_the_receiver_and_match_the_logs(project: Path, protocol: str) -> None:
    missing = f"/api/v1/jobs/{uuid.uuid4()}"
    with OtlpReceiver(protocol) as receiver:
        service = Service(project, env=receiver.service_env()).start()
        try:
            with service.client() as client:
                for probe in PROBES:
                    assert client.get(probe).status_code == 200
                assert client.get(missing).status_code == 404
                traceparent = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
                assert client.get("/api/v1/jobs", headers={"traceparent": traceparent}).is_success
                submitted = client.post(
                    "/api/v1/jobs", json={"kind": "sleep", "payload": {"seconds": 0}}
                )
                assert submitted.status_code == 202
                job_id = submitted.json()["id"]
                polls = wait_for_job(client, job_id)
        finally:
            assert service.stop() == 0, service.output()  # shutdown flushes every span
        requests = 3 + polls  # missing, traceparent, submission, then the polls
        spans = receiver.wait_for(
            lambda got: (
                sum(span.kind == "SERVER" for span in got) >= requests
                and any(span.kind == "CONSUMER" for span in got)
            )
        )

    servers = [span for span in spans if span.kind == "SERVER"]
    assert len(servers) == requests, "exactly one server span per traced request"
    assert all(span.attributes["url.path"] not in PROBES for span in servers)
    assert not [span for span in spans if any(probe in span.name for probe in PROBES)]

    found = only(servers, name="GET /api/v1/jobs/{job_id}", trace_id=_trace_of(servers, missing))
    assert found.attributes == {
        "http.request.method": "GET",
        "http.route": "/api/v1/jobs/{job_id}",
        "http.response.status_code": 404,
        "url.path": missing,
    }
    assert found.parent_span_id == ""
    assert found.resource["service.name"] == "my-service"
    assert found.resource["service.version"] == "0.1.0"
    assert found.resource["deployment.environment"] == "development"
    assert Counter(span.trace_id for span in servers)[found.trace_id] == 1

    service.wait_for_log(logger="access", path=missing)
    (access,) = service.logs_where(logger="access", path=missing)
    assert (access["trace_id"], access["span_id"]) == (found.trace_id, found.span_id)

    continued = only(servers, name="GET /api/v1/jobs", trace_id=CALLER_TRACE)
    assert continued.parent_span_id == CALLER_SPAN
    assert continued.attributes["http.response.status_code"] == 200

    submit = only(servers, name="POST /api/v1/jobs")
    job = only(spans, kind="CONSUMER")
    assert job.name == "job sleep"
    assert job.attributes["job.id"] == job_id
    assert (job.trace_id, job.parent_span_id) == (submit.trace_id, submit.span_id)
    for line in service.logs_where(logger="worker", job_id=job_id):
        if "attempt" in line:  # job started / succeeded: written inside the job's span
            assert (line["trace_id"], line["span_id"]) == (job.trace_id, job.span_id)

    statements = [span for span in spans if span.kind == "CLIENT"]
    insert = [span for span in statements if span.parent_span_id == submit.span_id]
    assert [span.attributes["db.operation.name"] for span in insert] == ["INSERT"]
    assert {span.attributes["db.system.name"] for span in statements} == {"sqlite"}
    if protocol == "http":
        assert set(receiver.content_encodings) == {"gzip"}


def _trace_of(servers: list[ReceivedSpan], path: str) -> str:
    return next(span.trace_id for span in servers if span.attributes["url.path"] == path)


@pytest.mark.parametrize(
    ("sampler", "exported"),
    [(None, False), ("parentbased_traceidratio", True)],
    ids=["default-ignores-the-caller", "trusted-with-otel-traces-sampler"],
)
def test_a_caller_cannot_force_sampling_unless_trusted(
    default_project: Path, sampler: str | None, exported: bool
) -> None:
    """At ratio 0, a sampled ``traceparent`` exports nothing by default (issue 15).

    Setting ``OTEL_TRACES_SAMPLER`` (here the SDK's parent-based ratio) is how an
    operator behind a trusted gateway says the caller's decision counts.
    """
    traceparent = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
    with OtlpReceiver("grpc") as receiver:
        env = receiver.service_env()
        del env["OTEL_TRACES_SAMPLER"]
        env["OTEL_TRACES_SAMPLER_ARG"] = "0"
        if sampler is not None:
            env["OTEL_TRACES_SAMPLER"] = sampler
        service = Service(default_project, env=env).start()
        try:
            with service.client() as client:
                for _ in range(5):
                    response = client.get("/api/v1/jobs", headers={"traceparent": traceparent})
                    assert response.status_code == 200
                assert client.get("/api/v1/jobs").status_code == 200  # a new trace: ratio 0
        finally:
            assert service.stop() == 0, service.output()  # shutdown flushes every span
        if exported:
            receiver.wait_for(lambda got: sum(span.kind == "SERVER" for span in got) >= 5)
        servers = [span for span in receiver.spans() if span.kind == "SERVER"]

    if not exported:
        assert servers == [], "the caller's sampled flag forced a span"
        return
    assert len(servers) == 5, "only the requests that carried the trusted flag"
    for span in servers:
        assert (span.trace_id, span.parent_span_id) == (CALLER_TRACE, CALLER_SPAN)


@pytest.mark.parametrize("protocol", EXPORTERS)
def test_a_dead_collector_costs_no_request_and_is_logged_rarely(
    project: Path, protocol: str
) -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",  # nothing listens
        "OTEL_TRACES_SAMPLER": "always_on",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_BSP_MAX_QUEUE_SIZE": "64",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "16",
    }
    service = Service(project, env=env).start()
    try:
        with service.client() as client:
            statuses = Counter(client.get("/api/v1/jobs").status_code for _ in range(200))
            time.sleep(1.5)  # let the export thread fail and retry a few times
            metrics = client.get("/metrics").text
    finally:
        assert service.stop() == 0, service.output()
    assert statuses == {200: 200}
    dropped = re.search(r"^tracing_spans_dropped_total (\S+)$", metrics, re.MULTILINE)
    assert dropped is not None
    assert float(dropped.group(1)) > 0, "a full queue drops spans instead of growing"

    otel_lines = [
        line for line in service.log_lines() if line["logger"].startswith("opentelemetry")
    ]
    per_logger = Counter(line["logger"] for line in otel_lines)
    assert otel_lines, "the export failure is logged"
    assert max(per_logger.values()) == 1, otel_lines
    assert len(otel_lines) <= 4, otel_lines


@pytest.mark.parametrize("protocol", EXPORTERS)
def test_spans_reach_a_collector_that_restarts(project: Path, protocol: str) -> None:
    """Export resumes when the collector comes back.

    Against a stopped collector gRPC fails with UNAVAILABLE and the SDK builds a new
    channel and stub; the rendered exporter must put its bytes-taking stub back.
    """
    with OtlpReceiver(protocol) as receiver:
        service = Service(project, env=receiver.service_env()).start()
        try:
            with service.client() as client:
                client.get("/api/v1/jobs")
                receiver.wait_for(lambda spans: len(spans) >= 1)
                receiver.stop()
                statuses = Counter(client.get("/api/v1/jobs").status_code for _ in range(5))
                time.sleep(1.0)  # the export attempts fail against the stopped collector
                before = receiver.span_count
                receiver.start()

                def exported_again() -> bool:
                    if receiver.span_count > before:
                        return True
                    statuses[client.get("/api/v1/jobs").status_code] += 1
                    return False

                wait_until(
                    exported_again,
                    message="spans to reach the restarted collector",
                    timeout=30,
                    interval=0.2,
                    context=service.output,
                )
        finally:
            assert service.stop() == 0, service.output()
    assert receiver.span_count > before, service.output()
    assert set(statuses) == {200}
    assert "Traceback" not in service.output()


@pytest.fixture(scope="module")
def console_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = render(tmp_path_factory.mktemp("console") / "my-service", tracing_exporter="console")
    install(project)
    return project


@pytest.mark.slow
def test_console_exporter_writes_spans_to_stderr_and_keeps_stdout_json(
    console_project: Path,
) -> None:
    env = {"OTEL_TRACES_SAMPLER": "always_on", "OTEL_BSP_SCHEDULE_DELAY": "100"}
    service = Service(console_project, env=env).start()
    try:
        with service.client() as client:
            assert client.get("/api/v1/jobs").status_code == 200
    finally:
        assert service.stop() == 0, service.output()
    lines = service.log_lines()  # fails on any stdout line that is not a JSON object
    (access,) = [
        line for line in lines if line["logger"] == "access" and line["path"] != "/healthz"
    ]
    spans = [json.loads(line) for line in service.stderr if line.startswith("{")]
    server = [span for span in spans if span["kind"] == "SpanKind.SERVER"]
    assert [span["name"] for span in server] == ["GET /api/v1/jobs"]
    assert server[0]["context"]["trace_id"] == f"0x{access['trace_id']}"
    assert server[0]["context"]["span_id"] == f"0x{access['span_id']}"


def test_none_renders_no_opentelemetry_and_the_same_schema(
    tmp_path: Path, default_project: Path
) -> None:
    project = render(tmp_path / "untraced", tracing_exporter="none")
    assert "opentelemetry" not in (project / "pyproject.toml").read_text().lower()
    mentions = [
        str(path.relative_to(project))
        for path in (project / "src").rglob("*")
        if path.is_file() and OTEL_IMPORT.search(path.read_text())
    ]
    assert mentions == []
    observability = {path.name for path in (project / "src/my_service/observability").iterdir()}
    assert observability.isdisjoint({"tracing.py", "export.py", "exporter.py", "sql_spans.py"})
    compose = (project / "compose.yaml").read_text()
    assert "jaeger" not in compose
    assert "OTEL_" not in compose

    def migrations(root: Path) -> dict[str, str]:
        return {
            path.name: path.read_text() for path in (root / "migrations" / "versions").glob("*.py")
        }

    assert migrations(project) == migrations(default_project)


@pytest.mark.parametrize("protocol", EXPORTERS)
def test_compose_sends_traces_to_jaeger_and_grafana_reads_them(
    project: Path, protocol: str
) -> None:
    services = compose_json(project)["services"]
    jaeger = services["jaeger"]
    published = {(port["target"], port["host_ip"]) for port in jaeger["ports"]}
    assert published == {(4317, "127.0.0.1"), (4318, "127.0.0.1"), (16686, "127.0.0.1")}
    otlp_port = 4317 if protocol == "grpc" else 4318
    environment = services["my-service"]["environment"]
    assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://jaeger:{otlp_port}"
    assert "jaeger" not in services["my-service"].get("depends_on", {})

    datasources = project / "observability/grafana/provisioning/datasources/jaeger.yml"
    (datasource,) = yaml.safe_load(datasources.read_text())["datasources"]
    assert (datasource["type"], datasource["url"]) == ("jaeger", "http://jaeger:16686")
    assert "16686" in (project / "README.md").read_text()
