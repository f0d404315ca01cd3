"""App factory and lifespan: the model, the stores and the task runner are built once per process."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.routers import chat, events, health, imports, models, products, recommendations
from api.state import AppState
from ingest import context
from ingest.celery_app import TaskQueue, create_celery_app
from ingest.in_process import InProcessWorker
from recommender.service import RecommenderService, build_service
from recommender.settings import Settings, get_settings

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, service: RecommenderService | None = None) -> FastAPI:
    """Build the app. ``service`` lets tests and the CLI share an already built core."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = settings or get_settings()
        core = service or build_service(resolved)
        context.use_service(core)
        celery_app = create_celery_app(resolved.celery)
        worker = None
        if not resolved.celery.broker_url:
            # No broker: the same tasks run on a worker thread here, so requests still return at once.
            worker = InProcessWorker(celery_app)
            worker.start()
        app.state.recommender = AppState(service=core, queue=TaskQueue(celery_app), worker=worker)
        logger.info("recommender ready: %s vector store, %s", core.backend, app.state.recommender.task_runner)
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            context.use_service(None)
            if service is None:
                core.close()

    app = FastAPI(
        title="Semantic product recommender",
        version="0.1.0",
        description="Catalog in, recommendations out: sentence-transformers embeddings in Qdrant, "
        "personalised, similar-item and cold-start retrieval with filters.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for router in (
        products.router,
        imports.router,
        events.router,
        recommendations.router,
        chat.router,
        models.router,
        health.router,
    ):
        app.include_router(router)
    return app
