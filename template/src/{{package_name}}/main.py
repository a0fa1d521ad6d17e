"""The composition root: the application factory and its lifespan.

Here, and only here, adapters meet ports: the lifespan creates the engine, the
SQL job repository, the job service and the worker, enters every integration
(integrations/__init__.py), hands routes their typed state (api/dependencies.py)
and takes everything down in reverse order on shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from . import SERVICE_NAME, __version__
from .adapters.database import DatabaseCheck, create_engine, display_url
from .adapters.engine import DatabaseUsage
from .adapters.migrations import upgrade_to_head
from .adapters.sql_jobs import SqlJobRepository
from .api.dependencies import ApiState
from .api.errors import install_error_handlers
from .api.health import add_operations_routes
from .api.jobs import add_job_routes
from .api.limits import RequestBodyLimitMiddleware
from .api.openapi import document_job_kinds
from .config import Settings
from .domain.handlers import DEFAULT_KINDS
from .domain.job_service import JobService
from .domain.kinds import JobKinds
from .domain.ports import LivenessCheck, ReadinessCheck
from .housekeeping import Housekeeper, HousekeepingOptions
from .integrations import installed
from .integrations.base import Integration
from .lifecycle import Lifecycle
from .observability.hooks import ObservabilityHooks
from .observability.logs import configure_logging, get_logger
from .observability.metrics import declare_job_kinds
from .observability.middleware import RequestObservabilityMiddleware
from .worker import Worker, WorkerOptions

# Past the grace period the worker has already cancelled and re-queued its jobs;
# this only bounds a database that stops answering during shutdown.
_WORKER_STOP_MARGIN_SECONDS = 10.0


def _worker_options(settings: Settings) -> WorkerOptions:
    return WorkerOptions(
        concurrency=settings.job_concurrency,
        lease_seconds=settings.job_lease_seconds,
        poll_interval_seconds=settings.job_poll_interval_seconds,
        retry_backoff_seconds=settings.job_retry_backoff_seconds,
        shutdown_grace_seconds=settings.shutdown_grace_seconds,
        job_timeout_seconds=settings.job_timeout_seconds,
    )


def _lifespan(
    settings: Settings,
    kinds: JobKinds,
    integrations: Sequence[Integration],
    hooks: ObservabilityHooks,
) -> Callable[[FastAPI], AbstractAsyncContextManager[dict[str, ApiState]]]:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, ApiState]]:
        log = get_logger("lifecycle")
        async with AsyncExitStack() as stack:
            readiness: list[ReadinessCheck] = []
            liveness: list[LivenessCheck] = []
            for integration in integrations:
                readiness.extend(await stack.enter_async_context(integration.running()))
                liveness.extend(integration.liveness_checks())
            engine = create_engine(settings.database_url.get_secret_value())
            stack.push_async_callback(engine.dispose)
            hooks.instrument_engine(engine)
            await upgrade_to_head(engine)
            declare_job_kinds(kinds.names)
            repository = SqlJobRepository(engine)
            worker = Worker(repository, kinds, _worker_options(settings), hooks)
            jobs = JobService(
                repository,
                kinds,
                max_attempts=settings.job_max_attempts,
                on_submitted=lambda _job: worker.notify(),
                trace_context=hooks.job_trace_context,
            )
            housekeeper = Housekeeper(
                repository,
                DatabaseUsage(engine),
                HousekeepingOptions(retention_seconds=settings.job_retention_seconds),
            )
            lifecycle = Lifecycle(delay_seconds=settings.shutdown_delay_seconds)
            lifecycle.on_shutdown(worker.stop)
            lifecycle.on_shutdown(housekeeper.stop)
            state = ApiState(
                jobs=jobs,
                readiness=[DatabaseCheck(engine, writes=repository), *readiness],
                lifecycle=lifecycle,
                liveness=liveness,
            )
            with lifecycle.shutdown_on_signals():
                worker_task = asyncio.create_task(worker.run(), name="job-worker")
                housekeeping_task = asyncio.create_task(housekeeper.run(), name="housekeeping")
                log.info("service started", database=display_url(engine.url), version=__version__)
                try:
                    yield {"api": state}
                finally:
                    lifecycle.begin_shutdown()
                    timeout = settings.shutdown_grace_seconds + _WORKER_STOP_MARGIN_SECONDS
                    async with asyncio.timeout(timeout):
                        await asyncio.gather(worker_task, housekeeping_task)
        log.info("service stopped")

    return lifespan


def _observability_hooks(integrations: Sequence[Integration]) -> ObservabilityHooks:
    """The first integration's hooks (tracing), or the no-op ones."""
    for integration in integrations:
        hooks = integration.observability_hooks()
        if hooks is not None:
            return hooks
    return ObservabilityHooks()


def create_app(
    settings: Settings | None = None,
    kinds: JobKinds = DEFAULT_KINDS,
    integrations: Sequence[Integration] | None = None,
) -> FastAPI:
    """Build the application; settings come from the environment unless given.

    ``integrations`` defaults to every one this service was rendered with.
    """
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_format)
    integrations = installed() if integrations is None else integrations
    hooks = _observability_hooks(integrations)
    app = FastAPI(
        title=SERVICE_NAME,
        version=__version__,
        lifespan=_lifespan(settings, kinds, integrations, hooks),
        # FastAPI's built-in OpenTelemetry stays off: the request middleware opens the
        # one server span per request (cheaper, and probes untraced; docs/design.md).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(app)
    add_operations_routes(app)
    add_job_routes(app)
    document_job_kinds(app, kinds)
    app.add_middleware(
        RequestBodyLimitMiddleware,
        max_bytes=settings.max_request_body_bytes,
        timeout_seconds=settings.request_body_timeout_seconds,
    )
    app.add_middleware(RequestObservabilityMiddleware, hooks=hooks)
    return app
