"""The composition root: the application factory and its lifespan.

The lifespan builds every resource (engine, store, worker), hands them to routes
as typed state, and takes them down in order on shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI

from . import SERVICE_NAME, __version__
from .adapters.database import create_engine, display_url
from .adapters.job_store import JobStore
from .adapters.migrations import upgrade_to_head
from .api.errors import install_error_handlers
from .api.health import add_operations_routes
from .api.jobs import add_job_routes
from .config import Settings
from .domain.kinds import DEFAULT_KINDS, JobKinds
from .lifecycle import Lifecycle
from .observability.hooks import ObservabilityHooks
from .observability.instrumentation import create_hooks
from .observability.logs import configure_logging, get_logger
from .observability.metrics import declare_job_kinds
from .observability.middleware import RequestObservabilityMiddleware
from .resources import Resources
from .worker import Worker, WorkerOptions

# Past the grace period the worker has already cancelled and re-queued its jobs;
# this only bounds a database that stops answering during shutdown.
_WORKER_STOP_MARGIN_SECONDS = 10.0


def _lifespan(
    settings: Settings, kinds: JobKinds, hooks: ObservabilityHooks
) -> Callable[[FastAPI], AbstractAsyncContextManager[dict[str, Resources]]]:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, Resources]]:
        log = get_logger("lifecycle")
        hooks.start()
        engine = create_engine(settings.database_url.get_secret_value())
        hooks.instrument_engine(engine)
        try:
            await upgrade_to_head(engine)
            declare_job_kinds(kinds.names)
            store = JobStore(engine, hooks.job_trace_context)
            worker = Worker(
                store,
                kinds,
                WorkerOptions(
                    concurrency=settings.job_concurrency,
                    lease_seconds=settings.job_lease_seconds,
                    poll_interval_seconds=settings.job_poll_interval_seconds,
                    retry_backoff_seconds=settings.job_retry_backoff_seconds,
                    shutdown_grace_seconds=settings.shutdown_grace_seconds,
                ),
                hooks,
            )
            lifecycle = Lifecycle()
            lifecycle.on_shutdown(worker.stop)
            with lifecycle.shutdown_on_signals():
                worker_task = asyncio.create_task(worker.run(), name="job-worker")
                log.info("service started", database=display_url(engine.url), version=__version__)
                try:
                    yield {
                        "resources": Resources(
                            settings=settings,
                            engine=engine,
                            store=store,
                            kinds=kinds,
                            worker=worker,
                            lifecycle=lifecycle,
                        )
                    }
                finally:
                    lifecycle.begin_shutdown()
                    timeout = settings.shutdown_grace_seconds + _WORKER_STOP_MARGIN_SECONDS
                    async with asyncio.timeout(timeout):
                        await worker_task
        finally:
            await engine.dispose()
            await hooks.stop()
            log.info("service stopped")

    return lifespan


def create_app(
    settings: Settings | None = None,
    kinds: JobKinds = DEFAULT_KINDS,
    hooks: ObservabilityHooks | None = None,
) -> FastAPI:
    """Build the application; settings come from the environment unless given."""
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_format)
    hooks = hooks or create_hooks()
    app = FastAPI(
        title=SERVICE_NAME,
        version=__version__,
        lifespan=_lifespan(settings, kinds, hooks),
        # FastAPI's built-in OpenTelemetry stays off: the request middleware opens the
        # one server span per request (cheaper, and probes untraced; docs/design.md).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(app)
    add_operations_routes(app)
    add_job_routes(app)
    app.add_middleware(RequestObservabilityMiddleware, hooks=hooks)
    return app
