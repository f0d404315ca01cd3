"""No broker configured: the same tasks run on a worker thread in this process, asynchronously."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest import context
from ingest.celery_app import IN_PROCESS_BROKER, TaskQueue, create_celery_app
from ingest.in_process import InProcessWorker
from recommender.intake.jobs import JobState
from recommender.service import RecommenderService
from recommender.settings import CelerySettings
from tests.ingest.test_celery_broker import wait_for_job


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_import_returns_a_job_at_once_and_finishes_in_the_background(
    service: RecommenderService, tmp_path: Path, demo_products: list[dict]
) -> None:
    rows = [
        {**row, "product_id": f"{row['product_id']}-{copy}"} for copy in range(5) for row in demo_products
    ]
    path = tmp_path / "catalog.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    app = create_celery_app(CelerySettings())
    assert app.conf.broker_url == IN_PROCESS_BROKER
    context.use_service(service)
    worker = InProcessWorker(app)
    worker.start()
    try:
        job = service.jobs.create(str(path), "jsonl")
        TaskQueue(app).import_catalog(job.job_id, str(path), "jsonl")
        # 300 products take seconds to embed; the enqueue call must not wait for them.
        assert service.jobs.get(job.job_id).state in (JobState.PENDING, JobState.RUNNING)
        finished = wait_for_job(service, job.job_id, timeout=120)
    finally:
        worker.stop()
        context.use_service(None)
    assert (finished.state, finished.succeeded, finished.failed) == (JobState.SUCCEEDED, 300, 0)
    assert finished.rate_per_second and finished.rate_per_second > 0
    assert service.catalog.count() == 300


def test_the_worker_entry_point_registers_every_task_on_the_configured_broker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``celery -A ingest.worker worker`` loads this module: its app reads the settings' broker."""
    import importlib

    from ingest import celery_app

    monkeypatch.setenv("RECO_CELERY__BROKER_URL", "redis://127.0.0.1:6379/5")
    worker = importlib.reload(importlib.import_module("ingest.worker"))
    assert worker.app.conf.broker_url == "redis://127.0.0.1:6379/5"
    names = {celery_app.IMPORT_CATALOG, celery_app.REFRESH_PROFILES, celery_app.TRAIN_SEQUENCE_MODEL}
    assert names <= set(worker.app.tasks)
