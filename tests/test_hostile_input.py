"""The default service as a real process, against clients that do not play fair.

Raw sockets on 127.0.0.1: bodies too large or too slow, heads too large or too slow,
request ids made to break log lines, cursors at the edges of time; then schemathesis
over the service's own OpenAPI document, which must find no server error.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .support.service import Service

BODY_TIMEOUT_SECONDS = 1
HEAD_TIMEOUT_SECONDS = 2  # KEEP_ALIVE_TIMEOUT_SECONDS: the head's time too
MIB = 1_048_576
ST = str(Path(sys.executable).parent / "st")


@pytest.fixture(scope="module")
def service(default_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    # A database of its own: schemathesis submits hundreds of jobs of up to 60 s,
    # which other tests booting the shared default project would otherwise wait behind.
    database = tmp_path_factory.mktemp("hostile") / "app.db"
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "REQUEST_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT_SECONDS),
        "KEEP_ALIVE_TIMEOUT_SECONDS": str(HEAD_TIMEOUT_SECONDS),
    }
    with Service(default_project, env) as running:
        yield running


def exchange(service: Service, *parts: bytes, pause: float = 0.0, wait: float = 15.0) -> bytes:
    """Send ``parts`` (``pause`` seconds apart) and read until the server closes."""
    with socket.create_connection(("127.0.0.1", service.port), timeout=wait) as sock:
        try:
            for part in parts:
                sock.sendall(part)
                time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused mid-send: what it answered is still to be read
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass  # closed with our bytes unread: the kernel resets, after the answer
        return received


def problem_of(response: bytes, status: int) -> tuple[dict[str, str], dict[str, Any]]:
    """The response's headers and problem+json body; asserts the status and the shape."""
    head, _, body = response.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    assert status_line.startswith(f"HTTP/1.1 {status} "), response[:300]
    headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines)}
    assert headers["content-type"] == "application/problem+json"
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])
    problem: dict[str, Any] = json.loads(body)
    assert problem["status"] == status
    return headers, problem


POST = b"POST /api/v1/jobs HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n"


def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(service: Service) -> None:
    started = time.monotonic()
    response = exchange(service, POST + f"content-length: {5 * MIB}\r\n\r\n".encode())
    headers, problem = problem_of(response, 413)
    assert headers["connection"] == "close"
    assert problem["detail"] == f"The request body is larger than {MIB} bytes."
    assert time.monotonic() - started < BODY_TIMEOUT_SECONDS  # no wait for a body


def test_a_chunked_body_is_refused_once_past_the_limit(service: Service) -> None:
    chunk = b"x" * 65536
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    response = exchange(service, POST + b"transfer-encoding: chunked\r\n\r\n", *[framed] * 48)
    problem_of(response, 413)


def test_a_body_that_stops_arriving_is_a_408(service: Service) -> None:
    started = time.monotonic()
    response = exchange(service, POST + b"content-length: 100\r\n\r\n{")
    headers, _problem = problem_of(response, 408)
    assert headers["connection"] == "close"
    assert BODY_TIMEOUT_SECONDS <= time.monotonic() - started < BODY_TIMEOUT_SECONDS + 5


def test_a_body_dripping_a_byte_at_a_time_is_a_408(service: Service) -> None:
    """The timeout bounds the whole body, not the gap between two bytes."""
    started = time.monotonic()
    drip = [b"{"] + [b" "] * 30
    response = exchange(service, POST + b"content-length: 100\r\n\r\n", *drip, pause=0.1)
    problem_of(response, 408)
    assert time.monotonic() - started < BODY_TIMEOUT_SECONDS + 5


def test_a_head_over_the_limit_is_a_431(service: Service) -> None:
    response = exchange(service, b"GET /healthz HTTP/1.1\r\nx-big: " + b"a" * 100_000 + b"\r\n\r\n")
    headers, _problem = problem_of(response, 431)
    assert headers["connection"] == "close"


def test_a_head_that_stops_arriving_is_a_408_and_an_idle_connection_closes(
    service: Service,
) -> None:
    started = time.monotonic()
    problem_of(exchange(service, b"GET /healthz HTTP/1.1\r\nhost: test\r\n"), 408)
    assert HEAD_TIMEOUT_SECONDS <= time.monotonic() - started < HEAD_TIMEOUT_SECONDS + 5
    started = time.monotonic()
    assert exchange(service) == b""
    assert time.monotonic() - started < HEAD_TIMEOUT_SECONDS + 5


def test_json_nested_past_the_parser_is_refused_not_a_500(service: Service) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    response = exchange(
        service, POST + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode() + body
    )
    problem_of(response, 400)


@pytest.mark.parametrize(
    "sent",
    [b"x" * 10_000, b"bad id with spaces", b"id\twith\ttabs", b"\xc3\xa9t\xc3\xa9", b"a" * 129],
)
def test_an_odd_request_id_is_replaced_and_never_logged(service: Service, sent: bytes) -> None:
    request = b"GET /healthz HTTP/1.1\r\nconnection: close\r\nx-request-id: %s\r\n\r\n" % sent
    response = exchange(service, request)
    head = response.partition(b"\r\n\r\n")[0].decode("latin-1")
    assert head.startswith("HTTP/1.1 200 ")
    (echoed,) = re.findall(r"\r\nx-request-id: ([^\r]*)", head)
    assert re.fullmatch(r"[0-9a-f]{32}", echoed)
    service.wait_for_log(request_id=echoed, event="request")
    spellings = {sent.decode("latin-1"), sent.decode("utf-8", "replace")}
    assert not any(raw in line for raw in spellings for line in service.stdout)


def test_a_request_id_with_a_newline_never_reaches_the_logs(service: Service) -> None:
    marker = f"forged-{uuid.uuid4().hex}"
    exchange(
        service,
        b"GET /healthz HTTP/1.1\r\nconnection: close\r\nx-request-id: a\n"
        + marker.encode()
        + b'": "x"\r\n\r\n',
    )
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nconnection: close\r\nx-request-id: after\r\n\r\n")
        while sock.recv(65536):
            pass
    service.wait_for_log(request_id="after", event="request")
    assert not any(marker in line for line in service.stdout)
    service.log_lines()  # every line still one JSON object


def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (f"9999-12-31T23:59:59.999999+00:00|{uuid.UUID(int=2**128 - 1)}", 200),
        (f"0001-01-01T00:00:00+00:00|{uuid.UUID(int=0)}", 200),
        (f"9999-12-31T23:59:59.999999-23:59|{uuid.UUID(int=0)}", 422),
        (f"0001-01-01T00:00:00+23:59|{uuid.UUID(int=0)}", 422),
        (f"2026-01-01T00:00:00+00:00|{'f' * 150}", 422),
    ],
)
def test_a_cursor_at_the_edges_of_time_is_a_page_or_a_422(
    service: Service, raw: str, status: int
) -> None:
    with service.client() as client:
        client.post("/api/v1/jobs", json={"kind": "sleep", "payload": {"seconds": 0}})
        response = client.get("/api/v1/jobs", params={"cursor": cursor(raw)})
    assert response.status_code == status, response.text


def test_options_is_a_405_naming_every_method_of_the_path(service: Service) -> None:
    with service.client() as client:
        response = client.options("/api/v1/jobs")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.headers["content-type"] == "application/problem+json"


# The one check the schema cannot satisfy: a cursor is opaque, so a string the schema
# allows is still refused (422) unless this service handed it out.
SCHEMATHESIS_CONFIG = """
[[operations]]
include-name = "GET /api/v1/jobs"
checks.positive_data_acceptance.enabled = false
"""


@pytest.mark.timeout(240)
def test_schemathesis_finds_no_server_error(service: Service, tmp_path: Path) -> None:
    """Every check schemathesis has, over the service's own OpenAPI document.

    Bounded: 30 examples per operation, 60 s in all (fuzzing and stateful tests repeat
    until then). One worker: in worker threads, CPython 3.11.7's ast.parse (which
    hypothesis calls for filter descriptions in the coverage phase) fails with
    "AST constructor recursion depth mismatch", an error of the tool, not the service.
    """
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG)
    reports = tmp_path / "reports"
    result = subprocess.run(
        [
            *(ST, "--config-file", str(config), "run", f"{service.url}/openapi.json"),
            *("--max-examples", "30", "--max-time", "60", "--workers", "1"),
            *("--generation-database", "none", "--no-color", "--seed", "20261202"),
            *("--report", "json", "--report-dir", str(reports)),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    (report_file,) = reports.glob("*.json")
    report = json.loads(report_file.read_text())
    summary = (
        f"{report['test_cases']['generated']} test cases, failures {report['failures']}, "
        f"errors {report['errors']}\n{result.stdout[-4000:]}"
    )
    cases, seconds = report["test_cases"]["generated"], report["running_time"]
    print(f"schemathesis: {cases} test cases in {seconds:.0f} s")  # the figure, with -s
    assert report["operations"]["tested"] == report["operations"]["total"] >= 5, summary
    assert report["test_cases"]["generated"] >= 500, summary
    assert report["failures"] == [], summary
    assert report["errors"] == [], summary
    assert result.returncode == 0, summary
    assert not any(line.get("level") == "error" for line in service.log_lines()), summary
