"""The Celery application, and the queue the API and CLI use to hand work to it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Celery, Task

from ingest import tasks
from recommender.errors import DependencyUnavailableError, unavailable
from recommender.openmp import release_openmp_threads
from recommender.settings import DEFAULT_TENANT, CelerySettings

logger = logging.getLogger(__name__)

IMPORT_CATALOG = "recommender.import_catalog"
REFRESH_PROFILES = "recommender.refresh_profiles"
REFRESH_ALL_PROFILES = "recommender.refresh_all_profiles"
REEMBED_PRODUCTS = "recommender.reembed_products"
TRAIN_SEQUENCE_MODEL = "recommender.train_sequence_model"
FINE_TUNE_ENCODER = "recommender.fine_tune_encoder"
IN_PROCESS_BROKER = "memory://localhost/"


def create_celery_app(settings: CelerySettings) -> Celery:
    """Tasks go to ``broker_url``; with none, to kombu's in-memory transport for an in-process worker."""
    broker_url = settings.broker_url or IN_PROCESS_BROKER
    result_backend = settings.result_backend
    if result_backend is None:
        result_backend = broker_url if broker_url.startswith(("redis://", "rediss://")) else "cache+memory://"
    app = Celery("recommender", broker=broker_url, backend=result_backend, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_expires=24 * 3600,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        # A broker that is down must give a 503 quickly, not hang the request.
        task_publish_retry=True,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
        worker_hijack_root_logger=False,
    )
    if broker_url.startswith(("redis://", "rediss://", "redis+socket://")):
        app.conf.broker_transport_options = {"visibility_timeout": settings.visibility_timeout_seconds}
    if broker_url == IN_PROCESS_BROKER:
        # The in-memory queue is polled; its default second of latency would delay every profile refresh.
        app.conf.broker_transport_options = {"polling_interval": 0.05}
    retry_options: dict[str, Any] = {
        "bind": True,
        "autoretry_for": (DependencyUnavailableError,),
        "retry_backoff": True,
        "retry_backoff_max": settings.retry_backoff_max_seconds,
        "retry_jitter": True,
        "max_retries": settings.max_retries,
        "acks_late": True,
    }
    _register(app, IMPORT_CATALOG, tasks.import_catalog, retry_options)
    _register(app, REFRESH_PROFILES, tasks.refresh_profiles, retry_options)
    _register(app, REFRESH_ALL_PROFILES, tasks.refresh_all_profiles, retry_options)
    _register(app, REEMBED_PRODUCTS, tasks.reembed_products, retry_options)
    _register(app, TRAIN_SEQUENCE_MODEL, tasks.train_sequence_model, retry_options)
    _register(app, FINE_TUNE_ENCODER, tasks.fine_tune_encoder, retry_options)
    return app


def _register(app: Celery, name: str, body: Callable[..., Any], options: dict[str, Any]) -> None:
    def run(self: Task, *args: Any, **kwargs: Any) -> Any:
        try:
            return body(*args, **kwargs)
        finally:
            # A worker's threads outlive their tasks: the OpenMP threads a task started would slow every
            # later training in the process (recommender/openmp.py).
            release_openmp_threads()

    run.__name__ = body.__name__
    run.__doc__ = body.__doc__
    app.task(name=name, shared=False, **options)(run)


class TaskQueue:
    """Enqueues one tenant's tasks (each task names its tenant); a broker that cannot take them raises
    DependencyUnavailableError."""

    def __init__(self, app: Celery, tenant: str = DEFAULT_TENANT) -> None:
        self.app = app
        self.tenant = tenant

    def for_tenant(self, tenant: str) -> TaskQueue:
        return self if tenant == self.tenant else TaskQueue(self.app, tenant)

    def import_catalog(
        self, job_id: str, path: str, file_format: str, mapping: dict[str, str] | None = None
    ) -> str:
        return self._send(IMPORT_CATALOG, job_id, path, file_format, mapping or {})

    def refresh_profiles(self, user_ids: list[str]) -> str:
        return self._send(REFRESH_PROFILES, sorted(set(user_ids)))

    def refresh_all_profiles(self) -> str:
        return self._send(REFRESH_ALL_PROFILES)

    def reembed_products(self, product_ids: list[str]) -> str:
        return self._send(REEMBED_PRODUCTS, product_ids)

    def train_sequence_model(self, run_id: str) -> str:
        return self._send(TRAIN_SEQUENCE_MODEL, run_id, task_id=run_id)

    def fine_tune_encoder(self, run_id: str) -> str:
        return self._send(FINE_TUNE_ENCODER, run_id, task_id=run_id)

    def _send(self, name: str, *args: Any, task_id: str | None = None) -> str:
        try:
            # The implicit tenant's messages stay as they were, so workers of the previous release take them.
            kwargs = {} if self.tenant == DEFAULT_TENANT else {"tenant": self.tenant}
            return str(self.app.tasks[name].apply_async(args=args, kwargs=kwargs, task_id=task_id).id)
        except Exception as error:
            raise unavailable("task broker", error) from error

    def depth(self) -> float:
        """Messages waiting in the default queue (-1 when the broker cannot say)."""
        try:
            with self.app.connection_for_read() as connection:
                queue_name = self.app.conf.task_default_queue
                _, waiting, _ = connection.default_channel.queue_declare(queue=queue_name, passive=True)
                return float(waiting)
        except Exception:
            return -1.0

    def ping(self) -> None:
        try:
            with self.app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
        except Exception as error:
            raise unavailable("task broker", error) from error
