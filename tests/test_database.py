"""The postgresql variant against the machine's real PostgreSQL server, as replicas.

Several service processes share one database the way replicas do: a backlog is
run exactly once between them, a replica killed with -9 has its running jobs
finished by a survivor once their leases end, replicas starting together migrate
once, a database lost while running turns readiness (not liveness) off and work
resumes when it returns, and the password never shows in anything printed.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from .support import postgres
from .support.jobs import job, submit, wait_for_job
from .support.polling import wait_until
from .support.project import install
from .support.renders import RenderCache
from .support.service import Service
from .support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.xdist_group("postgresql")

# Short leases so a dead replica's jobs come back within seconds.
REPLICA_ENV = {
    "JOB_CONCURRENCY": "4",
    "JOB_POLL_INTERVAL_SECONDS": "0.1",
    "JOB_LEASE_SECONDS": "3",
    "SHUTDOWN_GRACE_SECONDS": "5",
}


@pytest.fixture(scope="module")
def project(render_cache: RenderCache) -> Path:
    """The postgresql variant (tracing off: no collector here), installed once."""
    rendered = render_cache.get(database="postgresql", tracing_exporter="none")
    install(rendered)
    return rendered


@pytest.fixture
def database() -> Iterator[str]:
    with postgres.temporary_database() as name:
        yield name


def replica(project: Path, database_url: str, **env: str) -> Service:
    return Service(project, {**REPLICA_ENV, "DATABASE_URL": database_url, **env})


def exit_status(service: Service, timeout: float = 60) -> int:
    """Start ``service`` and wait for it to exit on its own; its status."""
    service.start(wait=False)
    process = service.process
    assert process is not None
    wait_until(lambda: process.poll() is not None, message="the service to exit", timeout=timeout)
    return service.stop()


def started_jobs(*services: Service) -> Counter[str]:
    """How many times each job id was started, over every given process."""
    return Counter(
        line["job_id"] for service in services for line in service.logs_where(event="job started")
    )


def test_two_replicas_run_a_backlog_each_job_exactly_once(project: Path, database: str) -> None:
    url = postgres.url(database)
    with (
        replica(project, url) as first,
        replica(project, url) as second,
        first.client() as one,
        second.client() as two,
    ):
        clients = [one, two]
        with ThreadPoolExecutor(max_workers=4) as pool:
            ids = list(pool.map(lambda n: submit(clients[n % 2], 0.02), range(160)))
        for job_id in ids:
            wait_for_job(one, job_id, timeout=120)
        finished = [job(two, job_id) for job_id in ids]
    assert {entry["status"] for entry in finished} == {"succeeded"}
    assert {entry["attempts"] for entry in finished} == {1}
    runs = started_jobs(first, second)
    assert set(runs) == set(ids)
    assert set(runs.values()) == {1}, "a job started more than once"
    per_replica = [
        len(list(service.logs_where(event="job started"))) for service in (first, second)
    ]
    assert sum(per_replica) == 160
    assert min(per_replica) > 0, f"one replica ran nothing: {per_replica}"


def test_a_replica_killed_mid_job_has_its_jobs_finished_by_a_survivor(
    project: Path, database: str
) -> None:
    """No restart of the dead one: the survivor recovers the jobs once their leases end."""
    url = postgres.url(database)
    # The survivor claims only when woken (a long poll): by its own recovery of the
    # dead replica's leases, not by racing it for the jobs at submission.
    with replica(project, url, JOB_POLL_INTERVAL_SECONDS="600") as survivor:
        doomed = replica(project, url).start()
        try:
            with doomed.client() as client:
                ids = [submit(client, 8.0) for _ in range(4)]
                wait_until(
                    lambda: (
                        {line["job_id"] for line in doomed.logs_where(event="job started")}
                        == set(ids)
                    ),
                    message="the doomed replica running all four jobs",
                    timeout=60,
                )
            doomed.kill_group()  # SIGKILL: no drain, no release, leases left behind
        finally:
            doomed.stop(signal.SIGKILL)
        with survivor.client() as client:
            finished = [wait_for_job(client, job_id, timeout=90) for job_id in ids]
        recovered = {
            line["job_id"] for line in survivor.logs_where(event="job lease expired; re-queued")
        }
    assert {entry["attempts"] for entry in finished} == {2}, survivor.output() + doomed.output()
    assert recovered == set(ids)
    assert set(started_jobs(survivor).values()) == {1}


def test_replicas_starting_together_migrate_once(project: Path, database: str) -> None:
    url = postgres.url(database)
    services = [replica(project, url) for _ in range(3)]
    try:
        for service in services:
            service.start(wait=False)
        for service in services:
            service.wait_healthy(timeout=90)
            with service.client() as client:
                assert client.get("/readyz").json()["checks"] == {"database": "ok"}
    finally:
        for service in services:
            service.stop()
    assert postgres.psql("SELECT count(*) FROM alembic_version", database=database) == "1"
    for service in services:
        assert any(service.logs_where(event="service started")), service.output()


def test_a_database_lost_while_running_turns_readiness_off_and_work_resumes(
    project: Path, database: str
) -> None:
    with TcpProxy(postgres.PORT) as proxy:
        url = postgres.url(database).replace(f":{postgres.PORT}/", f":{proxy.port}/")
        with replica(project, url) as service, service.client() as client:
            assert client.get("/readyz").status_code == 200
            proxy.cut()
            lost = wait_until(
                lambda: (r := client.get("/readyz")).status_code == 503 and r.json(),
                message="readiness to turn 503 with the database gone",
                timeout=30,
            )
            assert lost["checks"] == {"database": "failing"}
            assert client.get("/healthz").status_code == 200  # liveness stays on
            refused = client.post("/api/v1/jobs", json={"kind": "sleep", "payload": {"seconds": 0}})
            assert refused.status_code == 503
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.headers["retry-after"] == "1"
            proxy.restore()
            wait_until(
                lambda: client.get("/readyz").status_code == 200,
                message="readiness back once the database returns",
                timeout=60,
            )
            job_id = submit(client, 0)
            assert wait_for_job(client, job_id, timeout=60)["attempts"] == 1
            assert service.process is not None
            assert service.process.poll() is None


def test_the_database_password_never_appears_in_output(project: Path) -> None:
    password = "pg-Secret-7f3a9c"  # made up, to look for
    with postgres.temporary_role(password) as role, postgres.temporary_database(role) as name:
        url = postgres.url(name, user=role, password=password)
        with replica(project, url) as service, service.client() as client:
            job_id = submit(client, 0)
            wait_for_job(client, job_id)
            texts = [
                client.get("/metrics").text,
                client.get("/readyz").text,
                client.get(f"/api/v1/jobs/{job_id}").text,
                client.post("/api/v1/jobs", json={"kind": "nope"}).text,
            ]
        started = next(service.logs_where(event="service started"))["database"]
        assert started.startswith(f"postgresql+asyncpg://{role}:")
        assert started.endswith(f"@127.0.0.1:{postgres.PORT}/{name}")  # the password masked
        unreachable = replica(
            project,
            url.replace(f":{postgres.PORT}/", ":9/"),  # nothing listens on the discard port
            DATABASE_CONNECT_TIMEOUT_SECONDS="1",
        )
        code = exit_status(unreachable)
    assert code == 3
    (line,) = unreachable.stderr
    assert line.startswith(f"database unreachable at postgresql+asyncpg://{role}:***@127.0.0.1:9/")
    for output in (service.output(), unreachable.output(), *texts):
        assert password not in output


def test_the_variant_refuses_a_sqlite_url_in_one_line(project: Path) -> None:
    service = Service(project, {"DATABASE_URL": "sqlite+aiosqlite:///./app.db"})
    assert exit_status(service) == 2
    assert service.stderr == [
        "invalid setting DATABASE_URL: must be a postgresql+asyncpg:// URL, for example"
        " postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    ]


def test_jobs_survive_between_replica_generations(project: Path, database: str) -> None:
    """A rolling update: the old replica drains, the new one finds every job it left."""
    url = postgres.url(database)
    with replica(project, url) as old, old.client() as client:
        ids = [submit(client, 0) for _ in range(10)]
        for job_id in ids:
            wait_for_job(client, job_id)
    with replica(project, url) as new, new.client() as client:
        listed = client.get("/api/v1/jobs", params={"status": "succeeded", "limit": 100}).json()
        assert {entry["id"] for entry in listed["items"]} == set(ids)
        with httpx.Client(base_url=new.url) as plain:
            assert plain.get("/readyz").status_code == 200
