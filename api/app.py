"""App factory and lifespan: the model, the stores and the task runner are built once per process."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from api.connection_balance import ConnectionBalance, ConnectionTable, NoFreeSlotError
from api.errors import ERROR_RESPONSES, install_error_handlers
from api.metrics import RequestMetrics
from api.metrics import router as metrics_router
from api.rankings import Rankings
from api.routers import (
    chat,
    evaluation,
    events,
    experiments,
    health,
    imports,
    models,
    products,
    recommendations,
    rules,
    users,
)
from api.security import KeyRing, RateLimiter
from api.state import AppState
from api.ui_files import router as ui_router
from api.ui_files import ui_files
from api.upload_limit import UploadSizeLimit
from ingest import context
from ingest.celery_app import TaskQueue, create_celery_app
from ingest.in_process import InProcessWorker
from recommender.errors import DependencyUnavailableError
from recommender.service import RecommenderService, build_service
from recommender.settings import Settings, get_settings
from recommender.store.shared import HostAddress, claim_once
from recommender.tenancy import TenantServices, configured_tenants

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    service: RecommenderService | None = None,
    store_host: HostAddress | None = None,
    connection_table: Path | None = None,
) -> FastAPI:
    """Build the app. ``service`` lets tests and the CLI share an already built core. ``store_host`` and
    ``connection_table``: one of the API processes of `recommender serve --workers N` (see
    ``create_worker_app``)."""
    resolved = settings or (service.settings if service is not None else get_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        core = service or build_service(resolved, store_host=store_host)
        tenants = TenantServices(resolved, default=core, store_host=store_host)
        # Every tenant that a key or an override names starts now: its crashed jobs are resumed at once,
        # and a tenant whose stores cannot open stops the start with the reason, not its first request.
        for tenant in configured_tenants(resolved):
            tenants.get(tenant)
        context.use_tenants(tenants)
        celery_app = create_celery_app(resolved.celery)
        queue = TaskQueue(celery_app)
        worker = None
        if not resolved.celery.broker_url:
            # No broker: the same tasks run on a worker thread here, so requests still return at once.
            worker = InProcessWorker(celery_app)
            worker.start()
        try:
            # Several API processes over one store host: the first to start recovers for all of them.
            recovers = worker is not None and claim_once(store_host, "start-up recovery")
            for tenant, tenant_service in tenants.started().items():
                if recovers:
                    _recover(tenant_service, queue.for_tenant(tenant))
                tenant_service.importer.delete_expired_uploads()
                _settle_heap(tenant_service)
        except DependencyUnavailableError as error:
            # The service still starts: requests get 503s naming the store until it is back.
            logger.warning("start-up recovery skipped: %s", error)
        app.state.recommender = AppState(
            started_with=core,
            tenants=tenants,
            queue=queue,
            worker=worker,
            rankings=Rankings(core.pipeline.config.concurrency),
        )
        logger.info("recommender ready: %s vector store, %s", core.backend, app.state.recommender.task_runner)
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            context.use_tenants(None)
            tenants.close(keep=service)

    app = FastAPI(
        title="Semantic product recommender",
        version="0.1.0",
        description="Catalog in, recommendations out: sentence-transformers embeddings in Qdrant, "
        "personalised, similar-item and cold-start retrieval with filters. Every operation but /health "
        "needs an API key (X-API-Key or Authorization: Bearer) once RECO_API__KEYS is set.",
        lifespan=lifespan,
    )
    # Checked at start-up: a malformed keys file stops the service here, with the reason.
    app.state.keys = KeyRing(resolved.api.resolved_keys())
    app.state.limiter = RateLimiter(resolved.api)
    install_error_handlers(app)
    for router in (
        products.router,
        imports.router,
        events.router,
        recommendations.router,
        chat.router,
        models.router,
        users.router,
        rules.router,
        experiments.router,
        evaluation.router,
        metrics_router,
    ):
        app.include_router(router, responses=ERROR_RESPONSES)
    app.include_router(health.router)
    app.include_router(ui_router)
    app.mount("/ui", ui_files(), name="ui")
    app.add_middleware(
        UploadSizeLimit,
        max_bytes=int(resolved.api.max_upload_megabytes * 1024 * 1024),
        paths=frozenset({"/imports"}),
    )
    app.add_middleware(RequestMetrics)
    if connection_table is not None:
        _balance_connections(app, connection_table)
    return app


# Set by `recommender serve --workers N` for its API processes (wiring, not settings).
CONNECTION_TABLE_VARIABLE = "RECOMMENDER_CONNECTION_TABLE"


def create_worker_app() -> FastAPI:
    """The app of one of the API processes that `recommender serve --workers N` starts through uvicorn: the
    command hands the store host's address and the connection table over in the environment."""
    table = os.environ.get(CONNECTION_TABLE_VARIABLE)
    return create_app(
        store_host=HostAddress.from_environment(os.environ), connection_table=Path(table) if table else None
    )


def _balance_connections(app: FastAPI, table_path: Path) -> None:
    """One of several API processes: its client connections kept level with the others'."""
    try:
        table = ConnectionTable(table_path)
    except (OSError, ValueError, NoFreeSlotError) as error:
        logger.warning("connections are not balanced between the API processes: %s", error)
        return
    app.add_middleware(ConnectionBalance, table=table)


def _settle_heap(core: RecommenderService) -> None:
    """Load the published model and the item statistics before the first request, then move every object
    alive into the collector's permanent generation (``gc.freeze``): full collections stop walking the
    model's and the statistics' hundreds of thousands of objects, which at 100k products cost ~1 ms a
    request on average (measured in-process, ``bench/query.py --personal`` data)."""
    core.pipeline.model()
    core.pipeline.item_stats()
    gc.freeze()


def _recover(core: RecommenderService, queue: TaskQueue) -> None:
    """Work a crashed process left behind, for the process that runs its tasks itself (no broker).

    Jobs left running are marked interrupted and resumed where their file is still there (rows are
    idempotent); a training lease left behind belongs to the dead process."""
    core.training.clear_stale()
    for job in core.jobs.mark_interrupted():
        if job.path and Path(job.path).is_file():
            logger.warning("resuming import job %s interrupted by a restart", job.job_id)
            queue.import_catalog(job.job_id, job.path, job.file_format, job.mapping)
        else:
            logger.warning("import job %s was interrupted and its file is gone", job.job_id)
