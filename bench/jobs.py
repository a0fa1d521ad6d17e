"""Job throughput, submit to succeeded, on SQLite and PostgreSQL, one and two processes.

Renders the service once per database answer, installs it, then for every
configuration (database, number of service processes, worker settings) and
round: creates a fresh database, boots that many separate service processes on
their own ports sharing it (replicas, not uvicorn workers), warms them up,
submits ``--jobs`` trivial jobs (kind ``sleep``, 0 s) over HTTP from
``--clients`` concurrent connections spread over the processes, and waits,
bounded, until none is queued or running. The clock runs from the first
submission to the last job's ``updated_at`` as the service recorded it.

Then it checks what must hold whatever the speed: every submitted job
succeeded, with ``attempts == 1``, and the logs of all processes show exactly
one ``job started`` line per job. A failed check is printed and makes the exit
status 1; a job without its ``job succeeded`` line, and every warning the
service logged, are printed as warnings. Nothing is asserted about speed. The
table gives ratios against the first configuration in the same run. Examples
are in EXAMPLES below (``--help`` prints them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from copier import run_copy
from copier.errors import DirtyLocalWarning

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.project import answers_of, install, project_python, render, tool_env  # noqa: E402

EXAMPLES: Final = """examples (from the repository root):
  .venv/bin/python bench/jobs.py                       # defaults and JOB_CONCURRENCY=32
  .venv/bin/python bench/jobs.py --jobs 5000 --rounds 3 --json jobs.json
  .venv/bin/python bench/jobs.py --clients 8 --processes 1     # latency-bound: fewer clients
  .venv/bin/python bench/jobs.py --database sqlite --processes 1 --tuned JOB_CONCURRENCY=64
  .venv/bin/python bench/jobs.py --no-tuned --project sqlite=/tmp/s --project postgresql=/tmp/p
"""

DATABASES: Final = ("sqlite", "postgresql")
JOBS_PATH: Final = "/api/v1/jobs"
TRIVIAL_JOB: Final = b'{"kind":"sleep","payload":{"seconds":0}}'
DEFAULT_TUNED: Final = ("JOB_CONCURRENCY=32",)
# Enough connections to keep one process busy: each submission waits for its group
# commit, so a closed loop of 8 clients left the event loop idle about half the time
# (py-spy) and measured the commit's latency, 8 / latency, not the service's
# capacity. At 32 the service processes use about one CPU for the jobs/s they do
# (CPU ms/job x jobs/s), and more clients add queueing, not throughput.
DEFAULT_CLIENTS: Final = 32
DEFAULT_POSTGRES: Final = "postgresql://postgres@127.0.0.1:5432"
BOOT_TIMEOUT_SECONDS: Final = 90.0
STOP_TIMEOUT_SECONDS: Final = 40.0
REQUEST_TIMEOUT_SECONDS: Final = 30.0
POLL_SECONDS: Final = 0.1
PAGE_LIMIT: Final = 100
RETRY_PAUSE_SECONDS: Final = 0.05
MAX_RETRIED_SUBMISSIONS: Final = 1_000
GOAL_JOBS_PER_SECOND: Final = 1_000


class BenchError(RuntimeError):
    """The benchmark cannot give a trustworthy figure; the message says why."""


def progress(message: str) -> None:
    print(f"[jobs] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- a lean HTTP/1.1 client ----------------------------------------------------
#
# The machine this runs on may have two CPUs for the client, the service
# processes and PostgreSQL together; httpx spends several times the CPU per
# request of this keep-alive client, CPU the service would not get. The service
# answers every request here with a Content-Length (uvicorn, JSON bodies).


class Connection:
    """One keep-alive HTTP/1.1 connection to a service on loopback."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> Connection:
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._writer is not None:
            self._writer.close()
            with suppress(ConnectionError):
                await self._writer.wait_closed()

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
        """Status and decoded JSON body of one request."""
        if self._reader is None or self._writer is None:
            raise BenchError("the connection is not open")
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self._writer.write(head.encode("ascii") + b"\r\n" + (body or b""))
        async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
            raw = await self._reader.readuntil(b"\r\n\r\n")
            status_line, *header_lines = raw.decode("latin-1").split("\r\n")
            headers = {}
            for line in header_lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "content-length" not in headers:
                raise BenchError(f"{method} {path}: a response without Content-Length: {raw!r}")
            payload = await self._reader.readexactly(int(headers["content-length"]))
        return int(status_line.split()[1]), json.loads(payload) if payload else None


async def get_json(port: int, path: str) -> tuple[int, Any]:
    async with Connection(port) as connection:
        return await connection.request("GET", path)


# --- databases -----------------------------------------------------------------


@dataclass(frozen=True)
class Postgres:
    """Where the benchmark creates (and drops) a fresh database per run."""

    host: str
    port: int
    user: str

    @classmethod
    def parse(cls, url: str) -> Postgres:
        parts = urllib.parse.urlsplit(url)
        if not parts.hostname:
            raise BenchError(f"--postgres {url!r}: expected postgresql://USER@HOST:PORT")
        return cls(parts.hostname, parts.port or 5432, parts.username or "postgres")

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{self.user}@{self.host}:{self.port}/{database}"

    def psql(self, sql: str) -> str:
        command = ["psql", "-h", self.host, "-p", str(self.port), "-U", self.user]
        command += ["-d", "postgres", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if result.returncode != 0:
            raise BenchError(f"psql -c {sql!r} exited {result.returncode}: {result.stderr.strip()}")
        return result.stdout

    def check(self) -> None:
        try:
            self.psql("SELECT 1")
        except (BenchError, FileNotFoundError) as error:
            raise BenchError(
                f"PostgreSQL at {self.host}:{self.port} does not answer ({error});"
                " start it, or measure SQLite only with --database sqlite"
            ) from None

    @contextmanager
    def database(self, name: str) -> Iterator[str]:
        """A fresh database for one run, dropped on the way out."""
        self.psql(f'CREATE DATABASE "{name}"')
        try:
            yield self.url(name)
        finally:
            self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class BackendCpu:
    """CPU time of the PostgreSQL backends serving one database, read from /proc.

    A backend is found by its process title (``postgres: 15/main: USER DB ...``).
    ``sample()`` runs a few times a second during a run: a backend opened during
    the run counts from zero, and one that closed keeps its last sample (the pool
    closes overflow connections as they come back).
    """

    def __init__(self, user: str, database: str) -> None:
        self._marker = f": {user} {database} ".encode()
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}

    def _scan(self) -> dict[int, float]:
        found = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                title = Path(entry.path, "cmdline").read_bytes()
            except OSError:
                continue
            if self._marker in title:
                found[int(entry.name)] = cpu_seconds(int(entry.name))
        return found

    def start(self) -> None:
        self._first = self._scan()
        self._last = dict(self._first)

    def sample(self) -> None:
        for pid, seconds in self._scan().items():
            self._first.setdefault(pid, 0.0)
            self._last[pid] = max(seconds, self._last.get(pid, 0.0))

    def seconds(self) -> float:
        return sum(self._last[pid] - self._first.get(pid, 0.0) for pid in self._last)


async def sample_until_cancelled(meter: BackendCpu, interval: float = 0.25) -> None:
    while True:
        await asyncio.sleep(interval)
        meter.sample()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (all its threads) so far; 0 once gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- configurations and service processes ----------------------------------------


@dataclass(frozen=True)
class Config:
    """One row of the table: a database, how many processes, which worker settings."""

    database: str
    processes: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def settings(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.env.items()) or "defaults"

    @property
    def name(self) -> str:
        return f"{self.database} x{self.processes} {self.settings}"


class Server:
    """One service process on a free loopback port; stdout (its JSON log) to a file."""

    def __init__(self, project: Path, env: Mapping[str, str], log_dir: Path, index: int) -> None:
        self.project = project
        self.port = free_port()
        self.env = env
        self.stdout_path = log_dir / f"process-{index}.jsonl"
        self.stderr_path = log_dir / f"process-{index}.stderr"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        settings = {"HOST": "127.0.0.1", "PORT": str(self.port), **self.env}
        environment = tool_env(settings)
        # Boot time only: without bytecode files every boot compiles every module again.
        environment.pop("PYTHONDONTWRITEBYTECODE", None)
        command = [project_python(self.project), "-m", answers_of(self.project)["package_name"]]
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                command,
                cwd=self.project,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        if self.process is None:
            raise BenchError("the server was not started")
        return self.process.pid

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + BOOT_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise BenchError(
                    f"a service process exited {self.process.returncode} while booting\n"
                    + self.stderr_tail()
                )
            try:
                status, _ = await get_json(self.port, "/readyz")
            except (OSError, TimeoutError, asyncio.IncompleteReadError):
                status = 0
            if status == 200:
                return
            await asyncio.sleep(0.1)
        raise BenchError(f"not ready after {BOOT_TIMEOUT_SECONDS:g} s\n{self.stderr_tail()}")

    def stop(self) -> int | None:
        """SIGTERM the process started here, SIGKILL it if it lingers; its exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        return self.process.returncode

    def stderr_tail(self, lines: int = 30) -> str:
        text = self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""
        out = self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""
        return "\n".join((text + out).splitlines()[-lines:])

    def log_events(self) -> Iterator[dict[str, Any]]:
        for line in self.stdout_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue


# --- one measured run ---------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One configuration's measured run."""

    config: str
    database: str
    processes: int
    settings: str
    round: int
    load_average: float
    jobs: int
    submit_seconds: float
    total_seconds: float | None
    jobs_per_second: float | None
    service_cpu_ms_per_job: float
    database_cpu_ms_per_job: float | None
    client_cpu_ms_per_job: float
    share_per_process: list[int]
    submissions_retried_after_503: int
    checks: list[str]
    warnings: list[str]

    @property
    def ok(self) -> bool:
        return not self.checks


async def submit_all(ports: Sequence[int], count: int, clients: int) -> tuple[list[str], int]:
    """Submit ``count`` trivial jobs from ``clients`` connections spread over ``ports``.

    Returns the jobs' ids and how many submissions answered 503 (the job store
    was unavailable, SQLite's busy timeout for example) and were retried, as a
    client following the problem's advice would.
    """
    remaining = count
    ids: list[str] = []
    unavailable = 0

    async def client(port: int) -> None:
        nonlocal remaining, unavailable
        async with Connection(port) as connection:
            while remaining > 0:
                remaining -= 1
                while True:
                    status, body = await connection.request("POST", JOBS_PATH, TRIVIAL_JOB)
                    if status != 503 or unavailable >= MAX_RETRIED_SUBMISSIONS:
                        break
                    unavailable += 1
                    await asyncio.sleep(RETRY_PAUSE_SECONDS)
                if status != 202:
                    raise BenchError(f"POST {JOBS_PATH} answered {status}: {body}")
                ids.append(body["id"])

    async with asyncio.TaskGroup() as group:
        for index in range(clients):
            group.create_task(client(ports[index % len(ports)]))
    return ids, unavailable


async def wait_drained(ports: Sequence[int], timeout: float) -> bool:
    """Poll until no job is queued or running (cheap: two one-item pages); False on timeout."""
    deadline = time.monotonic() + timeout
    turn = 0
    connections = [Connection(port) for port in ports]
    for connection in connections:
        await connection.__aenter__()
    try:
        while time.monotonic() < deadline:
            connection = connections[turn % len(connections)]
            turn += 1
            empty = True
            for status in ("queued", "running"):
                code, body = await connection.request("GET", f"{JOBS_PATH}?status={status}&limit=1")
                if code != 200:
                    raise BenchError(f"GET {JOBS_PATH}?status={status} answered {code}: {body}")
                if body["items"]:
                    empty = False
                    break
            if empty:
                return True
            await asyncio.sleep(POLL_SECONDS)
        return False
    finally:
        for connection in connections:
            await connection.__aexit__()


async def all_jobs(port: int) -> dict[str, dict[str, Any]]:
    """Every job in the database, by id, paged through the API."""
    found: dict[str, dict[str, Any]] = {}
    cursor: str | None = None
    async with Connection(port) as connection:
        while True:
            path = f"{JOBS_PATH}?limit={PAGE_LIMIT}"
            if cursor is not None:
                path += f"&cursor={urllib.parse.quote(cursor)}"
            status, body = await connection.request("GET", path)
            if status != 200:
                raise BenchError(f"GET {path} answered {status}: {body}")
            found.update((job["id"], job) for job in body["items"])
            cursor = body["next_cursor"]
            if cursor is None:
                return found


@dataclass(frozen=True)
class Findings:
    """What the checks found: violations fail the run, warnings are printed."""

    violations: list[str]
    warnings: list[str]
    share_per_process: list[int]


# Lines a healthy run may log at warning level: the OTLP exporter retrying against
# the collector that the benchmark does not run.
_EXPECTED_WARNING_LOGGERS: Final = ("opentelemetry.",)


def check_exactly_once(
    ids: Sequence[str], stored: Mapping[str, Mapping[str, Any]], servers: Sequence[Server]
) -> Findings:
    """Every job stored, succeeded, claimed once and started once; what the logs say.

    A violation is a broken promise of the job API: a job lost, not succeeded,
    claimed more than once (``attempts``), or started more than once. A job that
    succeeded without its ``job succeeded`` line, and warning or error lines the
    service logged, are warnings: the outcome is right, its report is not.
    """
    violations = []
    if len(set(ids)) != len(ids):
        violations.append(f"{len(ids) - len(set(ids))} duplicate ids handed out")
    missing = [job_id for job_id in ids if job_id not in stored]
    statuses = Counter(stored[job_id]["status"] for job_id in ids if job_id in stored)
    attempts = Counter(stored[job_id]["attempts"] for job_id in ids if job_id in stored)
    if missing:
        violations.append(f"{len(missing)} submitted jobs not found")
    if statuses != Counter({"succeeded": len(ids)}):
        violations.append(f"statuses {dict(statuses)}")
    if attempts != Counter({1: len(ids)}):
        violations.append(f"attempts {dict(attempts)}")
    started: Counter[str] = Counter()
    succeeded: Counter[str] = Counter()
    logged: Counter[str] = Counter()
    share = []
    for server in servers:
        ran = 0
        for event in server.log_events():
            name = str(event.get("event", ""))
            if name == "job started":
                started[event.get("job_id", "")] += 1
                ran += 1
            elif name == "job succeeded":
                succeeded[event.get("job_id", "")] += 1
            elif event.get("level") in {"warning", "error", "critical"} and not str(
                event.get("logger", "")
            ).startswith(_EXPECTED_WARNING_LOGGERS):
                logged[name.splitlines()[0][:100]] += 1
        share.append(ran)
    wrong = [job_id for job_id in ids if started[job_id] != 1]
    if wrong:
        violations.append(f"{len(wrong)} jobs without exactly one 'job started' log line")
    warnings = []
    unreported = [job_id for job_id in ids if succeeded[job_id] != 1]
    if unreported:
        warnings.append(
            f"{len(unreported)} succeeded jobs without exactly one 'job succeeded' log line"
        )
    warnings += [f"the service logged {event!r} {count} time(s)" for event, count in logged.items()]
    return Findings(violations, warnings, share)


def _timestamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


async def measure(
    config: Config,
    round_number: int,
    project: Path,
    database_url: str,
    options: Options,
    log_dir: Path,
    backends: BackendCpu | None,
) -> Sample:
    """Boot ``config.processes`` processes on one database, warm up, then measure."""
    env = {
        "DATABASE_URL": database_url,
        "WORKERS": "1",
        "LOG_LEVEL": "info",
        "LOG_FORMAT": "json",
        **options.env,
        **config.env,
    }
    servers = [Server(project, env, log_dir, index) for index in range(config.processes)]
    try:
        for server in servers:
            server.start()
        for server in servers:
            await server.wait_ready()
        ports = [server.port for server in servers]
        warm, _ = await submit_all(ports, options.warmup_jobs, options.clients)
        if not await wait_drained(ports, options.timeout):
            raise BenchError(f"the {len(warm)} warm-up jobs did not finish in {options.timeout} s")

        pids = [server.pid for server in servers]
        cpu_before = sum(cpu_seconds(pid) for pid in pids)
        sampler = None
        if backends is not None:
            backends.start()
            sampler = asyncio.create_task(sample_until_cancelled(backends))
        client_before = time.process_time()
        load = os.getloadavg()[0]
        started = time.time()
        ids, unavailable = await submit_all(ports, options.jobs, options.clients)
        submitted = time.time()
        drained = await wait_drained(ports, options.timeout)
        cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
        client_cpu = time.process_time() - client_before
        db_cpu = None
        if backends is not None and sampler is not None:
            sampler.cancel()
            backends.sample()
            db_cpu = backends.seconds()

        stored = await all_jobs(ports[0])
    finally:
        statuses = [server.stop() for server in servers]
    findings = check_exactly_once(ids, stored, servers)
    problems = findings.violations
    if not drained:
        problems.insert(0, f"jobs still queued or running after {options.timeout:g} s")
    if any(status != 0 for status in statuses):
        problems.append(f"exit statuses after SIGTERM {statuses}")
    total = None
    if drained:
        finished = [_timestamp(stored[i]["updated_at"]) for i in ids if i in stored]
        total = max(finished) - started if finished else None
    count = len(ids)
    return Sample(
        config=config.name,
        database=config.database,
        processes=config.processes,
        settings=config.settings,
        round=round_number,
        load_average=load,
        jobs=count,
        submit_seconds=submitted - started,
        total_seconds=total,
        jobs_per_second=count / total if total else None,
        service_cpu_ms_per_job=cpu / count * 1e3,
        database_cpu_ms_per_job=db_cpu / count * 1e3 if db_cpu is not None else None,
        client_cpu_ms_per_job=client_cpu / count * 1e3,
        share_per_process=findings.share_per_process,
        submissions_retried_after_503=unavailable,
        checks=problems,
        warnings=findings.warnings,
    )


@dataclass(frozen=True)
class Options:
    jobs: int
    warmup_jobs: int
    clients: int
    timeout: float
    env: dict[str, str]


async def run_config(
    config: Config,
    round_number: int,
    project: Path,
    options: Options,
    workdir: Path,
    postgres: Postgres | None,
    serial: int,
) -> Sample:
    log_dir = workdir / f"run-{serial}"
    log_dir.mkdir()
    if config.database == "sqlite":
        url = f"sqlite+aiosqlite:///{log_dir / 'jobs.db'}"
        return await measure(config, round_number, project, url, options, log_dir, None)
    if postgres is None:
        raise BenchError("no PostgreSQL configured")
    name = f"shipshape_bench_{os.getpid()}_{serial}"
    with postgres.database(name) as url:
        return await measure(
            config,
            round_number,
            project,
            url,
            options,
            log_dir,
            BackendCpu(postgres.user, name),
        )


# --- summary ----------------------------------------------------------------------


def summary_rows(samples: Sequence[Sample], configs: Sequence[Config]) -> list[list[str]]:
    """One row per configuration: medians over rounds, ratio against the first row."""

    def median(values: Sequence[float | None]) -> float | None:
        known = [value for value in values if value is not None]
        return statistics.median(known) if known and len(known) == len(values) else None

    by_config = {c.name: [s for s in samples if s.config == c.name] for c in configs}
    base = median([s.jobs_per_second for s in by_config[configs[0].name]])
    rows = []
    for config in configs:
        mine = by_config[config.name]
        rate = median([s.jobs_per_second for s in mine])
        rates = [s.jobs_per_second for s in mine if s.jobs_per_second is not None]
        total = median([s.total_seconds for s in mine])
        db_cpu = median([s.database_cpu_ms_per_job for s in mine])
        shares = [s.share_per_process for s in mine]
        split = "/".join(
            f"{100 * sum(share[i] for share in shares) / max(sum(map(sum, shares)), 1):.0f}"
            for i in range(config.processes)
        )
        rows.append(
            [
                config.database,
                str(config.processes),
                config.settings,
                str(round(statistics.median([s.jobs for s in mine]))),
                f"{statistics.median([s.submit_seconds for s in mine]):.2f}",
                f"{total:.2f}" if total is not None else "-",
                f"{rate:.0f}" if rate is not None else "-",
                f"{min(rates):.0f}-{max(rates):.0f}" if len(rates) > 1 else "",
                f"{rate / base:.2f}" if rate is not None and base else "-",
                f"{statistics.median([s.service_cpu_ms_per_job for s in mine]):.2f}",
                f"{db_cpu:.2f}" if db_cpu is not None else "",
                split,
                str(sum(s.submissions_retried_after_503 for s in mine)),
                _verdict(mine),
            ]
        )
    return rows


def _verdict(samples: Sequence[Sample]) -> str:
    if not all(s.ok for s in samples):
        return "FAILED"
    return "ok, warnings" if any(s.warnings for s in samples) else "ok"


def format_table(rows: Sequence[Sequence[str]], baseline: str) -> str:
    header = [
        "target",
        "processes",
        "settings",
        "jobs",
        "submit s",
        "submit→all succeeded s",
        "jobs/s",
        "range",
        f"÷ {baseline}",
        "service CPU ms/job",
        "db CPU ms/job",
        "run by process %",
        "503s",
        "exactly once",
    ]
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if i in (0, 2) else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in table
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def print_findings(samples: Sequence[Sample]) -> None:
    for sample in samples:
        where = f"{sample.config}, round {sample.round}"
        for check in sample.checks:
            print(f"FAILED  {where}: {check}")
        for warning in sample.warnings:
            print(f"warning {where}: {warning}")


# --- the run -----------------------------------------------------------------------


def parse_env(texts: Sequence[str], option: str) -> dict[str, str]:
    env = {}
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise BenchError(f"{option} {text!r}: expected KEY=VALUE")
        env[key] = value
    return env


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXAMPLES,
    )
    parser.add_argument("--jobs", type=int, default=5000, help="jobs per measured run (5000)")
    parser.add_argument("--warmup-jobs", type=int, default=200, help="jobs per warm-up (200)")
    parser.add_argument(
        "--clients",
        type=int,
        default=DEFAULT_CLIENTS,
        help=f"concurrent submitters ({DEFAULT_CLIENTS}; see DEFAULT_CLIENTS)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="runs per configuration (1)")
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for the queue to drain"
    )
    parser.add_argument(
        "--database",
        action="append",
        choices=DATABASES,
        help="repeatable; default: sqlite then postgresql",
    )
    parser.add_argument(
        "--processes", action="append", type=int, help="repeatable; default: 1 then 2"
    )
    parser.add_argument(
        "--tuned",
        action="append",
        metavar="KEY=VALUE[,KEY=VALUE]",
        help="one set of settings for tuned rows; repeatable, one set of rows each"
        f" (default: {' '.join(DEFAULT_TUNED)}); every configuration is measured with the"
        " defaults and with each set",
    )
    parser.add_argument("--no-tuned", action="store_true", help="measure the defaults only")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an environment variable for every service process, repeatable",
    )
    parser.add_argument(
        "--postgres",
        default=DEFAULT_POSTGRES,
        help=f"where to create the databases (default {DEFAULT_POSTGRES}, trust auth)",
    )
    parser.add_argument(
        "--project",
        action="append",
        default=[],
        metavar="DATABASE=PATH",
        help="a rendered, installed project to use for that database instead of rendering",
    )
    parser.add_argument(
        "--ref",
        metavar="COMMIT",
        help="render this commit (HEAD for the last one) instead of the working tree,"
        " which includes uncommitted changes",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the samples here")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the scratch directory (each run's service logs as JSON lines) to read after",
    )
    return parser.parse_args(argv)


def resolve_ref(ref: str) -> str:
    """The commit ``ref`` names in this repository."""
    result = subprocess.run(
        ["git", "rev-parse", "--verify", f"{ref}^{{commit}}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BenchError(f"--ref {ref!r}: not a commit here ({result.stderr.strip()})")
    return result.stdout.strip()


def render_at(dest: Path, database: str, commit: str | None) -> Path:
    """The service rendered from the working tree (as the tests do), or from ``commit``."""
    if commit is None:
        return render(dest, database=database)
    run_copy(
        str(REPO_ROOT),
        dest,
        data={"database": database},
        defaults=True,
        unsafe=True,
        quiet=True,
        vcs_ref=commit,
    )
    return dest


def prepare_projects(
    databases: Sequence[str], given: Mapping[str, Path], workdir: Path, commit: str | None
) -> dict[str, Path]:
    projects = {}
    for database in databases:
        if database in given:
            project = given[database].resolve()
            if not (project / ".venv" / "bin" / "python").exists():
                raise BenchError(f"--project {database}={project}: not installed (uv sync)")
            if answers_of(project).get("database", "sqlite") != database:
                raise BenchError(f"--project {database}={project}: rendered for another database")
            projects[database] = project
            continue
        dest = workdir / f"project-{database}"
        source = f"commit {commit[:12]}" if commit else "the working tree"
        progress(f"rendering {source} (database={database}) and installing it in {dest}")
        try:
            install(render_at(dest, database, commit))
        except AssertionError as error:  # tests/support/project.py's failed command
            raise BenchError(
                f"the service (database={database}) does not install:\n{error}"
            ) from None
        projects[database] = dest
    return projects


@contextmanager
def _scratch(keep: bool) -> Iterator[Path]:
    """The renders, databases and logs of this run: removed at the end unless ``keep``."""
    if not keep:
        with tempfile.TemporaryDirectory(prefix="shipshape-bench-jobs-") as scratch:
            yield Path(scratch)
        return
    path = Path(tempfile.mkdtemp(prefix="shipshape-bench-jobs-"))
    try:
        yield path
    finally:
        progress(f"kept the renders, SQLite files and service logs in {path}")


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _arguments(argv)
    if min(arguments.jobs, arguments.clients, arguments.rounds) < 1 or arguments.warmup_jobs < 0:
        raise BenchError("--jobs, --clients and --rounds must be 1 or more")
    databases = list(dict.fromkeys(arguments.database or DATABASES))
    process_counts = list(dict.fromkeys(arguments.processes or (1, 2)))
    if min(process_counts) < 1:
        raise BenchError("--processes must be 1 or more")
    settings: list[dict[str, str]] = [{}]
    if not arguments.no_tuned:
        for text in arguments.tuned or DEFAULT_TUNED:
            settings.append(parse_env(text.split(","), "--tuned"))
    options = Options(
        jobs=arguments.jobs,
        warmup_jobs=arguments.warmup_jobs,
        clients=arguments.clients,
        timeout=arguments.timeout,
        env=parse_env(arguments.env, "--env"),
    )
    # A row's settings column shows everything it sets, --env included.
    configs = [
        Config(database, processes, {**options.env, **env})
        for env in settings
        for database in databases
        for processes in process_counts
    ]
    postgres = Postgres.parse(arguments.postgres) if "postgresql" in databases else None
    if postgres is not None:
        postgres.check()
    given = {}
    for text in arguments.project:
        database, sep, path = text.partition("=")
        if not sep or database not in DATABASES:
            raise BenchError(f"--project {text!r}: expected sqlite=PATH or postgresql=PATH")
        given[database] = Path(path)

    # Renders the working tree; Copier's user settings stay out (as in tests/conftest.py).
    os.environ["COPIER_SETTINGS_PATH"] = str(REPO_ROOT / "tests" / "copier-settings.yml")
    warnings.filterwarnings("ignore", category=DirtyLocalWarning)
    commit = resolve_ref(arguments.ref) if arguments.ref else None
    load_at_start = os.getloadavg()
    samples: list[Sample] = []
    with _scratch(arguments.keep) as workdir:
        projects = prepare_projects(databases, given, workdir, commit)
        serial = 0
        for round_number in range(1, arguments.rounds + 1):
            for config in configs:
                serial += 1
                sample = asyncio.run(
                    run_config(
                        config,
                        round_number,
                        projects[config.database],
                        options,
                        workdir,
                        postgres,
                        serial,
                    )
                )
                rate = sample.jobs_per_second
                shown = f"{rate:7.0f} jobs/s" if rate is not None else "    n/a jobs/s"
                progress(
                    f"round {round_number}/{arguments.rounds} {config.name:<40} {shown}"
                    f"  submit {sample.submit_seconds:5.2f} s"
                    f"  service CPU {sample.service_cpu_ms_per_job:5.2f} ms/job"
                    f"  (load average {sample.load_average:.1f})"
                    + "".join(f"\n    FAILED: {check}" for check in sample.checks)
                    + "".join(f"\n    warning: {warning}" for warning in sample.warnings)
                )
                samples.append(sample)
    load_at_end = os.getloadavg()

    print()
    load = ", ".join(f"{value:.2f}" for value in load_at_start)
    print(
        f"{os.cpu_count()} CPUs, load average {load} at start"
        f" ({', '.join(f'{v:.2f}' for v in load_at_end)} at end); {platform.node()}"
    )
    print(
        f"{arguments.jobs} jobs (kind sleep, 0 s) per run from {arguments.clients} keep-alive"
        f" connections, after {arguments.warmup_jobs} warm-up jobs; {arguments.rounds} round(s);"
        " every process WORKERS=1, LOG_LEVEL=info, logs to a file"
    )
    source = f"commit {commit}" if commit else "the working tree"
    for database, project in projects.items():
        made = "given" if database in given else f"rendered from {source}"
        print(f"{database}: {project} ({made})")
    if options.env:
        print(f"every process also: {' '.join(f'{k}={v}' for k, v in options.env.items())}")
    print()
    print(format_table(summary_rows(samples, configs), f"{configs[0].database} x1"))
    print()
    print(
        "jobs/s = jobs / (first submission to the last job's updated_at); medians over rounds."
        "\nCPU per job: the service processes (with SQLite's own work) and, for PostgreSQL,"
        " the backends\nserving this database. Exactly once: every job succeeded, attempts == 1,"
        " one 'job started'\nlog line (warnings: no 'job succeeded' line, service warnings)."
        f" The issue's goal: {GOAL_JOBS_PER_SECOND:,} jobs/s on one process."
    )
    client = statistics.median(s.client_cpu_ms_per_job for s in samples)
    print(f"This script's own CPU (submitting, polling): median {client:.2f} ms/job.")
    print_findings(samples)
    if arguments.json:
        document = {
            "arguments": {k: str(v) for k, v in vars(arguments).items()},
            "load_average": {"start": load_at_start, "end": load_at_end},
            "samples": [asdict(sample) for sample in samples],
        }
        arguments.json.write_text(json.dumps(document, indent=2) + "\n")
        progress(f"wrote {arguments.json}")
    return 0 if all(sample.ok for sample in samples) else 1


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        raise SystemExit(1) from None
