"""What the service's observability costs, against bare FastAPI, in one run.

Renders the template's service (one render per distinct set of answers),
installs it, then boots each target in turn as a real process pinned to one CPU
and loads ``GET /healthz`` with wrk pinned to the other. Targets alternate
round by round (bare, service, bare, service, ...), each boot gets a warm-up
run before the measured one, and the table compares medians and per-round
ratios against the baseline. Nothing is asserted about speed; see README.md.
Examples are in EXAMPLES below (``--help`` prints them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO

from copier.errors import DirtyLocalWarning

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.project import answers_of, install, project_python, render, tool_env  # noqa: E402
from tests.support.service import free_port  # noqa: E402

EXAMPLES: Final = """examples (from the repository root):
  .venv/bin/python bench/run.py
  .venv/bin/python bench/run.py --rounds 5 --duration 15 --json out.json
  .venv/bin/python bench/run.py --project /tmp/my-service   # an installed render
  .venv/bin/python bench/run.py --target bare --target service \\
      --target traced=service --answers traced:tracing_exporter=otlp-grpc \\
      --env traced:OTEL_TRACES_SAMPLER=always_on
"""

BARE_APP: Final = Path(__file__).resolve().parent / "bare_app.py"
SERVICE: Final = "service"
BARE: Final = "bare"
KINDS: Final = (SERVICE, BARE)
DEFAULT_TARGETS: Final = (BARE, SERVICE)
PATH: Final = "/healthz"
HEALTHY_BODY: Final = {"status": "ok"}
GOAL_THROUGHPUT_RATIO: Final = 0.85
BOOT_TIMEOUT_SECONDS: Final = 60.0
STOP_TIMEOUT_SECONDS: Final = 30.0
_NAME: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
_TIME_UNITS: Final = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION: Final = r"([\d.]+)(us|ms|s|m|h)"
_LABEL: Final = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
_REQUESTS_SAMPLE: Final = re.compile(r"^http_requests_total\{([^}]*)\}\s+(\S+)", re.MULTILINE)


class BenchError(RuntimeError):
    """The benchmark cannot give a trustworthy figure; the message says why."""


# --- targets -----------------------------------------------------------------


@dataclass(frozen=True)
class TargetSpec:
    """A named thing to measure: the rendered service (with answers) or bare FastAPI."""

    name: str
    kind: str
    answers: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """A target ready to boot: its spec and the installed project whose venv runs it."""

    spec: TargetSpec
    project: Path
    data_dir: Path

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> str:
        return self.spec.kind


def parse_target(text: str) -> tuple[str, str]:
    """``NAME`` (a kind used as its own name) or ``NAME=KIND``."""
    name, sep, kind = text.partition("=")
    kind = kind if sep else name
    if not _NAME.match(name):
        raise BenchError(f"--target {text!r}: a name is a letter then letters, digits, _ . -")
    if kind not in KINDS:
        raise BenchError(f"--target {text!r}: the kind is one of {', '.join(KINDS)}")
    return name, kind


def parse_scoped(text: str, option: str) -> tuple[str | None, str, str]:
    """``[TARGET:]KEY=VALUE`` as (target or None for every target, key, value)."""
    head, sep, value = text.partition("=")
    scope, colon, key = head.rpartition(":")
    if not sep or not key:
        raise BenchError(f"{option} {text!r}: expected [TARGET:]KEY=VALUE")
    return (scope if colon else None), key, value


def build_specs(
    targets: Sequence[str], answers: Sequence[str], env: Sequence[str]
) -> list[TargetSpec]:
    """Target specs with their answers and environment overrides applied."""
    kinds = dict(parse_target(text) for text in targets)
    if len(kinds) != len(targets):
        raise BenchError("--target: every target needs its own name")
    answers_of_target: dict[str, dict[str, str]] = {name: {} for name in kinds}
    env_of_target: dict[str, dict[str, str]] = {name: {} for name in kinds}
    for text in answers:
        scope, key, value = parse_scoped(text, "--answers")
        for name in _scope_names(scope, kinds, text, "--answers"):
            if kinds[name] == BARE:
                if scope is not None:
                    raise BenchError(f"--answers {text!r}: {name} is bare FastAPI, not rendered")
                continue
            answers_of_target[name][key] = value
    for text in env:
        scope, key, value = parse_scoped(text, "--env")
        for name in _scope_names(scope, kinds, text, "--env"):
            env_of_target[name][key] = value
    return [
        TargetSpec(name, kind, answers_of_target[name], env_of_target[name])
        for name, kind in kinds.items()
    ]


def _scope_names(scope: str | None, kinds: Mapping[str, str], text: str, option: str) -> list[str]:
    if scope is None:
        return list(kinds)
    if scope not in kinds:
        raise BenchError(f"{option} {text!r}: no target named {scope!r}")
    return [scope]


def check_installed(project: Path) -> Path:
    """``project`` is a rendered project with its venv installed."""
    project = project.resolve()
    for needed in (".copier-answers.yml", ".venv/bin/python"):
        if not (project / needed).exists():
            raise BenchError(f"--project {project}: no {needed}; render and install it first")
    return project


def prepare_targets(
    specs: Sequence[TargetSpec], workdir: Path, project: Path | None = None
) -> list[Target]:
    """Render and install one project per distinct set of answers.

    ``project``, when given, stands for the default answers instead of a fresh
    render. Bare targets run with the first service target's venv (the default
    project when no service target is asked for), so both run the same libraries.
    """
    projects: dict[tuple[tuple[str, str], ...], Path] = {}
    if project is not None:
        projects[()] = check_installed(project)

    def project_for(answers: Mapping[str, str]) -> Path:
        key = tuple(sorted(answers.items()))
        if key not in projects:
            dest = workdir / f"project-{len(projects) + 1}"
            shown = " ".join(f"{k}={v}" for k, v in key) or "defaults"
            progress(f"rendering and installing the service ({shown}) in {dest}")
            try:
                install(render(dest, **answers))
            except AssertionError as error:  # tests/support/project.py's failed command
                raise BenchError(f"the service ({shown}) does not install:\n{error}") from None
            projects[key] = dest
        return projects[key]

    services = [spec for spec in specs if spec.kind == SERVICE]
    bare_project = project_for(services[0].answers if services else {})
    return [
        Target(
            spec,
            project_for(spec.answers) if spec.kind == SERVICE else bare_project,
            workdir / f"data-{spec.name}",
        )
        for spec in specs
    ]


# --- one server process ------------------------------------------------------


class Server:
    """One target booted on a free loopback port, pinned to ``cpu``.

    The process started here is the interpreter itself (taskset execs it), so
    its pid is the one whose CPU time is read and the one that is signalled.
    """

    def __init__(self, target: Target, cpu: int, log_path: Path) -> None:
        self.target = target
        self.cpu = cpu
        self.port = free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        python = project_python(self.target.project)
        if self.target.kind == BARE:
            program = [python, str(BARE_APP), "--host", "127.0.0.1", "--port", str(self.port)]
        else:
            program = [python, "-m", answers_of(self.target.project)["package_name"]]
        return ["taskset", "-c", str(self.cpu), *program]

    def environment(self) -> dict[str, str]:
        self.target.data_dir.mkdir(parents=True, exist_ok=True)
        database = self.target.data_dir / "app.db"
        settings = {
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WORKERS": "1",
            "LOG_LEVEL": "info",
            "LOG_FORMAT": "json",
            "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        }
        return tool_env({**settings, **self.target.spec.env})

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"--- {' '.join(self.command())}\n".encode())
            log.flush()
            # stdout (the JSON log lines) is written, to /dev/null: that cost is measured.
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.target.project,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        self._wait_healthy()
        comm = Path(f"/proc/{self.pid}/comm").read_text().strip()
        if comm == "taskset":
            raise BenchError(f"{self.target.name}: pid {self.pid} is still taskset")

    @property
    def pid(self) -> int:
        if self.process is None:
            raise BenchError("the server was not started")
        return self.process.pid

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + BOOT_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise BenchError(
                    f"{self.target.name} exited {self.process.returncode} while booting\n"
                    + self.log_tail()
                )
            try:
                status, body = http_get(f"{self.url}{PATH}")
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
                continue
            if status == 200 and json.loads(body) == HEALTHY_BODY:
                return
            raise BenchError(f"{self.target.name}: GET {PATH} answered {status} {body!r}")
        raise BenchError(f"{self.target.name} not healthy after {BOOT_TIMEOUT_SECONDS}s")

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the process (all its threads) so far."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        # Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        fields = stat.rpartition(")")[2].split()
        ticks = int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def healthz_count(self) -> int:
        """``http_requests_total`` for ``GET /healthz`` answered 200, from /metrics."""
        status, body = http_get(f"{self.url}/metrics")
        if status != 200:
            raise BenchError(f"{self.target.name}: GET /metrics answered {status}")
        return healthz_requests(body.decode())

    def stop(self) -> None:
        """SIGTERM the process started here, SIGKILL it if it lingers, and reap it."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@contextmanager
def running(target: Target, cpu: int, log_path: Path) -> Iterator[Server]:
    """A booted server, stopped on the way out whatever happened."""
    server = Server(target, cpu, log_path)
    try:
        server.start()
        try:
            yield server
        except BenchError as error:
            tail = server.log_tail()
            raise BenchError(f"{error}\n--- {target.name} stderr, last lines ---\n{tail}") from None
    finally:
        server.stop()


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """Status and body of a GET on loopback; HTTP errors are answers too."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def healthz_requests(exposition: str) -> int:
    """The ``GET /healthz`` 200 count in a Prometheus text exposition."""
    total = 0.0
    for match in _REQUESTS_SAMPLE.finditer(exposition):
        labels = dict(_LABEL.findall(match[1]))
        if labels == {"method": "GET", "route": PATH, "status_code": "200"}:
            total += float(match[2])
    return round(total)


# --- wrk ---------------------------------------------------------------------


@dataclass(frozen=True)
class LoadOptions:
    """How wrk loads a target, and where the processes run."""

    duration: int
    warmup: int
    connections: int
    threads: int
    server_cpu: int
    client_cpu: int

    def wrk_command(self, url: str, seconds: int) -> list[str]:
        return [
            "taskset",
            "-c",
            str(self.client_cpu),
            "wrk",
            f"-t{self.threads}",
            f"-c{self.connections}",
            f"-d{seconds}s",
            "--latency",
            url,
        ]


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run reports."""

    requests: int
    seconds: float
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    error_responses: int
    socket_errors: int


def seconds_of(value: str, unit: str) -> float:
    """wrk's ``2.75ms`` as seconds."""
    return float(value) * _TIME_UNITS[unit]


def _search(pattern: str, output: str) -> re.Match[str]:
    match = re.search(pattern, output, re.MULTILINE)
    if match is None:
        raise BenchError(f"wrk output has no match for {pattern!r}:\n{output}")
    return match


def parse_wrk(output: str) -> WrkResult:
    """Parse the text ``wrk --latency`` prints."""
    totals = _search(rf"^\s*(\d+) requests in {_DURATION}", output)
    p50 = _search(rf"^\s*50(?:\.0+)?%\s+{_DURATION}\s*$", output)
    p99 = _search(rf"^\s*99(?:\.0+)?%\s+{_DURATION}\s*$", output)
    rate = _search(r"^Requests/sec:\s+([\d.]+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkResult(
        requests=int(totals[1]),
        seconds=seconds_of(totals[2], totals[3]),
        requests_per_second=float(rate[1]),
        p50_ms=seconds_of(p50[1], p50[2]) * 1000,
        p99_ms=seconds_of(p99[1], p99[2]) * 1000,
        error_responses=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=sum(int(count) for count in sockets.groups()) if sockets else 0,
    )


def run_wrk(options: LoadOptions, url: str, seconds: int) -> WrkResult:
    """Load ``url`` for ``seconds``; fail on any error response or socket error."""
    command = options.wrk_command(url, seconds)
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    if result.returncode != 0:
        raise BenchError(f"{' '.join(command)} exited {result.returncode}\n{result.stderr}")
    parsed = parse_wrk(result.stdout)
    if parsed.error_responses or parsed.socket_errors or not parsed.requests:
        raise BenchError(f"wrk saw errors or no requests against {url}:\n{result.stdout}")
    return parsed


# --- measuring ---------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One measured round of one target."""

    target: str
    kind: str
    round: int
    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    cpu_seconds: float
    cpu_us_per_request: float
    counted_by_service: int | None


def measure(target: Target, round_number: int, options: LoadOptions, logs: Path) -> Sample:
    """Boot ``target``, warm it up, then measure one wrk run against it."""
    with running(target, options.server_cpu, logs / f"{target.name}.log") as server:
        url = f"{server.url}{PATH}"
        run_wrk(options, url, options.warmup)
        counted_before = server.healthz_count() if target.kind == SERVICE else None
        cpu_before = server.cpu_seconds()
        load = run_wrk(options, url, options.duration)
        cpu = server.cpu_seconds() - cpu_before
        counted = None
        if counted_before is not None:
            counted = server.healthz_count() - counted_before
            check_counted(target.name, counted, load.requests, options.connections)
    return Sample(
        target=target.name,
        kind=target.kind,
        round=round_number,
        requests=load.requests,
        requests_per_second=load.requests_per_second,
        p50_ms=load.p50_ms,
        p99_ms=load.p99_ms,
        cpu_seconds=cpu,
        cpu_us_per_request=cpu / load.requests * 1e6,
        counted_by_service=counted,
    )


def check_counted(name: str, counted: int, requests: int, connections: int) -> None:
    """The service's own counter must agree with wrk, give or take in-flight requests.

    wrk does not count responses still in flight when it stops (one per
    connection at most), and warm-up stragglers may land after the first read.
    """
    if abs(counted - requests) > 2 * connections:
        raise BenchError(
            f"{name}: /metrics counted {counted} GET {PATH} 200s, wrk completed {requests}"
        )


def measure_all(
    targets: Sequence[Target], rounds: int, options: LoadOptions, logs: Path
) -> list[Sample]:
    """Every target once per round, in the order given, ``rounds`` times."""
    samples = []
    for round_number in range(1, rounds + 1):
        for target in targets:
            sample = measure(target, round_number, options, logs)
            progress(
                f"round {round_number}/{rounds} {target.name:<12}"
                f" {sample.requests_per_second:9.0f} req/s"
                f"  p50 {sample.p50_ms:6.2f} ms  p99 {sample.p99_ms:6.2f} ms"
                f"  {sample.cpu_us_per_request:6.1f} µs CPU/req"
            )
            samples.append(sample)
    return samples


# --- summary -----------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """Median and range of one figure across rounds."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values))


@dataclass(frozen=True)
class Summary:
    """One target across its rounds, and its ratios to the baseline.

    A ratio's median is median over baseline median; its low and high are the
    extremes of the per-round ratios (round i of this target over round i of
    the baseline, measured next to each other).
    """

    target: str
    kind: str
    rounds: int
    requests_per_second: Spread
    p50_ms: Spread
    p99_ms: Spread
    cpu_us_per_request: Spread
    throughput_ratio: Spread
    cpu_ratio: Spread


def _ratio(
    mine: Sequence[Sample], base: Sequence[Sample], figure: Callable[[Sample], float]
) -> Spread:
    paired = [figure(a) / figure(b) for a, b in zip(mine, base, strict=True)]
    median = statistics.median([figure(s) for s in mine]) / statistics.median(
        [figure(s) for s in base]
    )
    return Spread(median, min(paired), max(paired))


def summarise(samples: Sequence[Sample], targets: Sequence[Target], baseline: str) -> list[Summary]:
    """Per-target medians, ranges and ratios to ``baseline``."""
    by_target = {t.name: [s for s in samples if s.target == t.name] for t in targets}
    base = by_target[baseline]

    def rps(sample: Sample) -> float:
        return sample.requests_per_second

    def cpu(sample: Sample) -> float:
        return sample.cpu_us_per_request

    return [
        Summary(
            target=target.name,
            kind=target.kind,
            rounds=len(mine),
            requests_per_second=Spread.of([rps(s) for s in mine]),
            p50_ms=Spread.of([s.p50_ms for s in mine]),
            p99_ms=Spread.of([s.p99_ms for s in mine]),
            cpu_us_per_request=Spread.of([cpu(s) for s in mine]),
            throughput_ratio=_ratio(mine, base, rps),
            cpu_ratio=_ratio(mine, base, cpu),
        )
        for target in targets
        for mine in [by_target[target.name]]
    ]


def _row(summary: Summary) -> list[str]:
    rps, cpu = summary.requests_per_second, summary.cpu_us_per_request
    thr, cpr = summary.throughput_ratio, summary.cpu_ratio
    return [
        summary.target,
        f"{rps.median:.0f}",
        f"{rps.low:.0f}-{rps.high:.0f}",
        f"{summary.p50_ms.median:.2f}",
        f"{summary.p99_ms.median:.2f}",
        f"{cpu.median:.1f}",
        f"{cpu.low:.1f}-{cpu.high:.1f}",
        f"{thr.median:.3f} ({thr.low:.3f}-{thr.high:.3f})",
        f"{cpr.median:.3f} ({cpr.low:.3f}-{cpr.high:.3f})",
    ]


def format_table(summaries: Sequence[Summary], baseline: str) -> str:
    """The results as an aligned text table with a legend."""
    header = [
        "target",
        "req/s",
        "req/s range",
        "p50 ms",
        "p99 ms",
        "CPU µs/req",
        "CPU range",
        f"req/s ÷ {baseline}",
        f"CPU ÷ {baseline}",
    ]
    rows = [header, *(_row(summary) for summary in summaries)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += [
        "",
        "Figures are medians over rounds; ranges are the lowest and highest round.",
        f"Ratios: median over {baseline}'s median; in parentheses the lowest and highest",
        f"per-round ratio (round i over {baseline}'s round i, measured back to back).",
        f"Goal, logs plus metrics: req/s ÷ {baseline} of {GOAL_THROUGHPUT_RATIO:.2f} or more.",
    ]
    return "\n".join(lines)


# --- the run -----------------------------------------------------------------


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def check_machine(options: LoadOptions) -> None:
    """taskset and wrk exist, and the two CPUs asked for are ours to use."""
    for tool in ("taskset", "wrk"):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} is not installed (Debian packages util-linux, wrk)")
    allowed = os.sched_getaffinity(0)
    for cpu in (options.server_cpu, options.client_cpu):
        if cpu not in allowed:
            raise BenchError(f"CPU {cpu} is not available here (allowed: {sorted(allowed)})")
    if options.server_cpu == options.client_cpu:
        raise BenchError("the server and wrk need different CPUs")


_VERSIONS_SCRIPT: Final = """
import importlib.metadata as m, json, platform
import httptools, uvloop  # the service's uvicorn picks these when they import
names = ("fastapi", "starlette", "pydantic", "uvicorn", "uvloop", "httptools", "structlog",
         "prometheus-client")
print(json.dumps({"python": platform.python_version(), **{n: m.version(n) for n in names}}))
"""


def environment_report(targets: Sequence[Target], options: LoadOptions) -> dict[str, Any]:
    """Machine, pins and library versions, for the header and the JSON file."""
    versions = {}
    for project in dict.fromkeys(target.project for target in targets):
        result = subprocess.run(
            [project_python(project), "-c", _VERSIONS_SCRIPT],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise BenchError(f"{project}: uvloop and httptools must import\n{result.stderr}")
        versions[str(project)] = json.loads(result.stdout)
    return {
        "machine": platform.node(),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "server_cpu": options.server_cpu,
        "client_cpu": options.client_cpu,
        "wrk": " ".join(options.wrk_command(f"http://127.0.0.1:PORT{PATH}", options.duration)),
        "versions": versions,
    }


def print_header(report: Mapping[str, Any], rounds: int, options: LoadOptions, out: TextIO) -> None:
    load = ", ".join(f"{value:.2f}" for value in report["load_average_at_start"])
    print(
        f"{report['cpus']} CPUs, load average {load} at start; server on CPU"
        f" {options.server_cpu}, wrk on CPU {options.client_cpu}",
        file=out,
    )
    print(f"{rounds} rounds; each boot: {options.warmup} s warm-up, then {report['wrk']}", file=out)
    for project, versions in report["versions"].items():
        shown = ", ".join(f"{name} {version}" for name, version in versions.items())
        print(f"{Path(project).name}: {shown}", file=out)
    print(file=out)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXAMPLES,
    )
    parser.add_argument(
        "--target",
        action="append",
        metavar="NAME[=KIND]",
        help=f"a target to measure, kind {' or '.join(KINDS)}; repeatable;"
        f" default: {' '.join(DEFAULT_TARGETS)}",
    )
    parser.add_argument(
        "--answers",
        action="append",
        default=[],
        metavar="[TARGET:]KEY=VALUE",
        help="a Copier answer for every service target, or for TARGET only; repeatable",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="[TARGET:]KEY=VALUE",
        help="an environment variable for every target, or for TARGET only; repeatable",
    )
    parser.add_argument("--baseline", help="target the ratios divide by (default: the first bare)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per target (default 3)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per boot")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--server-cpu", type=int, default=0, help="CPU the server is pinned to")
    parser.add_argument("--client-cpu", type=int, default=1, help="CPU wrk is pinned to")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    parser.add_argument(
        "--project",
        type=Path,
        metavar="PATH",
        help="a rendered, installed project to use for the default answers instead of"
        " rendering one (for example one being tuned by hand)",
    )
    return parser.parse_args(argv)


def _baseline(requested: str | None, specs: Sequence[TargetSpec]) -> str:
    if requested is not None:
        if requested not in {spec.name for spec in specs}:
            raise BenchError(f"--baseline {requested!r}: no such target")
        return requested
    bare = [spec.name for spec in specs if spec.kind == BARE]
    return bare[0] if bare else specs[0].name


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _arguments(argv)
    if min(arguments.rounds, arguments.duration, arguments.warmup, arguments.connections) < 1:
        raise BenchError("--rounds, --duration, --warmup and --connections must be 1 or more")
    options = LoadOptions(
        duration=arguments.duration,
        warmup=arguments.warmup,
        connections=arguments.connections,
        threads=arguments.threads,
        server_cpu=arguments.server_cpu,
        client_cpu=arguments.client_cpu,
    )
    specs = build_specs(arguments.target or DEFAULT_TARGETS, arguments.answers, arguments.env)
    baseline = _baseline(arguments.baseline, specs)
    check_machine(options)

    # Renders the working tree; Copier's user settings stay out (as in tests/conftest.py).
    os.environ["COPIER_SETTINGS_PATH"] = str(REPO_ROOT / "tests" / "copier-settings.yml")
    warnings.filterwarnings("ignore", category=DirtyLocalWarning)
    with tempfile.TemporaryDirectory(prefix="shipshape-bench-") as scratch:
        workdir = Path(scratch)
        targets = prepare_targets(specs, workdir, arguments.project)
        report = environment_report(targets, options)
        logs = workdir / "logs"
        logs.mkdir()
        samples = measure_all(targets, arguments.rounds, options, logs)

    summaries = summarise(samples, targets, baseline)
    print()
    print_header(report, arguments.rounds, options, sys.stdout)
    print(format_table(summaries, baseline))
    if arguments.json:
        document = {
            "config": {**asdict(options), "rounds": arguments.rounds, "baseline": baseline},
            "targets": [asdict(spec) for spec in specs],
            "environment": report,
            "samples": [asdict(sample) for sample in samples],
            "summary": [asdict(summary) for summary in summaries],
        }
        arguments.json.write_text(json.dumps(document, indent=2) + "\n")
        progress(f"wrote {arguments.json}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        raise SystemExit(1) from None
