"""An OTLP trace receiver for the tests: gRPC or HTTP/protobuf, on a free loopback port.

The gRPC side is grpcio with opentelemetry-proto's ``TraceServiceServicer``; the
HTTP side answers ``POST /v1/traces`` with a protobuf body, gzip or not, as a
collector does. Every received span is kept, flattened with its resource, until
the test reads it.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1 import trace_pb2

from .polling import wait_until

Protocol = Literal["grpc", "http"]


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    return getattr(value, kind) if kind else None


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs if isinstance(pair, KeyValue)}


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as the collector saw it; ids in lower-case hex, as in traceparent."""

    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    status_code: str
    links: list[tuple[str, str]] = field(default_factory=list)


def flatten(request: trace_service_pb2.ExportTraceServiceRequest) -> list[ReceivedSpan]:
    spans = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        name=span.name,
                        kind=trace_pb2.Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        attributes=_attributes(span.attributes),
                        resource=resource,
                        status_code=trace_pb2.Status.StatusCode.Name(span.status.code),
                        links=[(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
                    )
                )
    return spans


class OtlpReceiver:
    """Collects spans exported over OTLP; ``service_env()`` points a service at it."""

    def __init__(self, protocol: Protocol, *, keep_spans: bool = True) -> None:
        self.protocol = protocol
        self.keep_spans = keep_spans  # False: count spans only (a long benchmark run)
        self.span_count = 0
        self.port = 0
        self.requests = 0
        self.content_encodings: list[str] = []
        self._spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        self._grpc: grpc.Server | None = None
        self._http: ThreadingHTTPServer | None = None

    # --- what arrived -------------------------------------------------------

    def record(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        spans = flatten(request) if self.keep_spans else []
        count = sum(
            len(scope.spans)
            for resource in request.resource_spans
            for scope in resource.scope_spans
        )
        with self._lock:
            self.requests += 1
            self.span_count += count
            self._spans.extend(spans)

    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    def wait_for(
        self, predicate: Callable[[list[ReceivedSpan]], bool], timeout: float = 30.0
    ) -> list[ReceivedSpan]:
        """Poll until ``predicate(spans)`` holds; fail with what arrived otherwise."""

        def arrived() -> tuple[list[ReceivedSpan]] | None:
            spans = self.spans()
            return (spans,) if predicate(spans) else None

        (found,) = wait_until(
            arrived,
            message="the spans to arrive",
            timeout=timeout,
            interval=0.05,
            context=lambda: f"got {[(span.kind, span.name) for span in self.spans()]}",
        )
        return found

    # --- serving --------------------------------------------------------------

    def service_env(self) -> dict[str, str]:
        """OTEL_* for a service exporting here, quickly and with every trace sampled."""
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{self.port}",
            "OTEL_TRACES_SAMPLER": "parentbased_always_on",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        if self.protocol == "http":
            env["OTEL_EXPORTER_OTLP_COMPRESSION"] = "gzip"
        return env

    def start(self) -> OtlpReceiver:
        if self.protocol == "grpc":
            self._start_grpc()
        else:
            self._start_http()
        return self

    def _start_grpc(self) -> None:
        receiver = self

        class Servicer(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(
                self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
            ) -> trace_service_pb2.ExportTraceServiceResponse:
                receiver.record(request)
                return trace_service_pb2.ExportTraceServiceResponse()

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Servicer(), server)
        # Reuse the port the previous start bound (a restarted collector).
        self.port = server.add_insecure_port(f"127.0.0.1:{self.port}")
        server.start()
        self._grpc = server

    def _start_http(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                encoding = self.headers.get("Content-Encoding", "identity")
                receiver.content_encodings.append(encoding)
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                if encoding == "gzip":
                    body = gzip.decompress(body)
                request = trace_service_pb2.ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver.record(request)
                answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                """Write nothing: http.server's per-request lines would bury the service's."""

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._http = server

    def stop(self) -> None:
        """Stop answering (a dead collector); ``start()`` again on the same port."""
        if self._grpc is not None:
            self._grpc.stop(grace=None).wait(10)
            self._grpc = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
