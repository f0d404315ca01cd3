"""The broker path: a real Redis, a real Celery worker (in this process, sharing the embedded store)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery
from celery.contrib.testing.worker import start_worker
from celery.signals import task_retry

from ingest import context
from ingest.celery_app import IMPORT_CATALOG, TaskQueue, create_celery_app
from recommender.demo import demo_catalog_path
from recommender.errors import DependencyUnavailableError
from recommender.intake.jobs import JobState
from recommender.models import InteractionEvent
from recommender.service import RecommenderService, build_service
from recommender.settings import CelerySettings
from recommender.tenancy import TenantServices
from tests.conftest import make_settings


@pytest.fixture
def redis_app(redis_url: str) -> Iterator[Celery]:
    app = create_celery_app(CelerySettings(broker_url=redis_url, max_retries=2, retry_backoff_max_seconds=1))
    # A queue of its own, so that nothing left in the machine's Redis reaches this worker.
    app.conf.task_default_queue = f"reco-test-{uuid.uuid4().hex[:8]}"
    with start_worker(app, perform_ping_check=False, pool="solo", shutdown_timeout=30):
        yield app
    context.use_service(None)


def wait_for_job(service: RecommenderService, job_id: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = service.jobs.get(job_id)
        if job.state in (JobState.SUCCEEDED, JobState.FAILED):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {service.jobs.get(job_id)}")


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_bulk_import_runs_on_the_worker_through_redis(
    redis_app: Celery, redis_url: str, service: RecommenderService
) -> None:
    context.use_service(service)
    queue = TaskQueue(redis_app)
    job = service.jobs.create("demo", "jsonl")
    task_id = queue.import_catalog(job.job_id, str(demo_catalog_path()), "jsonl")
    result = redis_app.AsyncResult(task_id).get(timeout=60)
    assert result["succeeded"] == 60
    assert wait_for_job(service, job.job_id).state is JobState.SUCCEEDED
    assert service.catalog.count() == 60
    # The result came back through Redis, not through memory.
    client = redis.Redis.from_url(redis_url.replace("redis+socket://", "unix://"))
    assert client.exists(f"celery-task-meta-{task_id}")


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_a_tenant_s_task_works_on_that_tenant_s_service(
    redis_app: Celery, tmp_path: Path, embedder, backend: str
) -> None:
    settings = make_settings(tmp_path, backend)
    tenants = TenantServices(settings)
    shop = tenants.get("shop-b")
    context.use_tenants(tenants)
    try:
        job = shop.jobs.create("demo", "jsonl")
        task_id = (
            TaskQueue(redis_app)
            .for_tenant("shop-b")
            .import_catalog(job.job_id, str(demo_catalog_path()), "jsonl")
        )
        assert redis_app.AsyncResult(task_id).get(timeout=60)["succeeded"] == 60
        assert shop.catalog.count() == 60
        assert tenants.get().catalog.count() == 0  # the implicit tenant's collection got nothing
    finally:
        context.use_tenants(None)
        tenants.close()


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_profiles_are_refreshed_by_the_worker(redis_app: Celery, demo_service: RecommenderService) -> None:
    context.use_service(demo_service)
    demo_service.events.add([InteractionEvent(user_id="u1", product_id="gar-001", type="purchase")])
    assert not demo_service.users.retrieve([_user_point("u1")])
    task_id = TaskQueue(redis_app).refresh_profiles(["u1"])
    assert redis_app.AsyncResult(task_id).get(timeout=60) == 1
    assert demo_service.users.retrieve([_user_point("u1")], with_vectors=True)[0].vector is not None


def test_a_dependency_failure_is_retried_with_backoff_then_recorded(
    redis_app: Celery, tmp_path: Path, embedder
) -> None:
    broken = build_service(
        make_settings(tmp_path, events={"url": "postgresql+psycopg://postgres@127.0.0.1:1/none"}),
        embedder=embedder,
    )
    context.use_service(broken)
    retries: list[str] = []

    def count_retry(sender=None, request=None, **_: object) -> None:
        retries.append(request.id)

    task_retry.connect(count_retry)
    try:
        task_id = (
            redis_app.tasks[IMPORT_CATALOG].apply_async(args=("job", str(demo_catalog_path()), "jsonl")).id
        )
        with pytest.raises(DependencyUnavailableError):
            redis_app.AsyncResult(task_id).get(timeout=60, propagate=True)
    finally:
        task_retry.disconnect(count_retry)
        broken.close()
    assert retries.count(task_id) == 2


def test_tasks_are_registered_idempotent_and_late_acknowledged(redis_app: Celery) -> None:
    task = redis_app.tasks[IMPORT_CATALOG]
    assert task.acks_late is True
    assert DependencyUnavailableError in task.autoretry_for
    assert task.retry_backoff


def _user_point(user_id: str) -> str:
    from recommender.ids import user_point_id

    return user_point_id(user_id)
