"""Faults: the serving process and a Celery worker are killed (SIGKILL) in the middle of an import.
Afterwards every row is there once: 0 lost, 0 duplicated, and the embedded store opens."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from ingest.celery_app import TaskQueue, create_celery_app
from recommender.intake.jobs import JobState
from recommender.service import build_service
from tests.conftest import make_settings
from tests.live_service import ROOT, free_port, live_service, service_environment

# Outside the fast tier: services and workers killed mid-import (about 35 s).
pytestmark = pytest.mark.slow

ROWS = int(os.environ.get("RECO_FAULT_ROWS", "3000"))


def write_catalog(path: Path, rows: int) -> None:
    with path.open("w") as handle:
        for index in range(rows):
            handle.write(
                json.dumps({"product_id": f"p{index:06d}", "title": f"Item {index} trail tent"}) + "\n"
            )


def wait_until(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except httpx.TimeoutException:
            # A service busy embedding a large import can answer a poll slowly; that is not a fault.
            continue
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_killing_the_service_mid_import_loses_and_duplicates_nothing(tmp_path: Path, embedder) -> None:
    catalog = tmp_path / "catalog.jsonl"
    write_catalog(catalog, ROWS)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with live_service(tmp_path, port) as process:
        with catalog.open("rb") as handle:
            job_id = httpx.post(f"{base}/imports", files={"file": ("c.jsonl", handle)}, timeout=60).json()[
                "job_id"
            ]
        wait_until(
            lambda: httpx.get(f"{base}/imports/{job_id}").json()["processed"] >= 512, 300, "rows to go in"
        )
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    # Restarted: the store opens, the job is not left "running", and it resumes from its upload.
    with live_service(tmp_path, port):
        job = wait_until(
            lambda: (body := httpx.get(f"{base}/imports/{job_id}").json())["state"] == "succeeded" and body,
            600,
            "the interrupted job to be resumed",
        )
        assert job["message"].startswith("resumed after an interruption")
        assert job["ok"] == ROWS and job["failed"] == 0
        # Re-running the import: every row is already there, unchanged.
        with catalog.open("rb") as handle:
            again = httpx.post(f"{base}/imports", files={"file": ("c.jsonl", handle)}, timeout=60).json()[
                "job_id"
            ]
        rerun = wait_until(
            lambda: (body := httpx.get(f"{base}/imports/{again}").json())["state"] == "succeeded" and body,
            600,
            "the re-run",
        )
        assert rerun["unchanged"] == ROWS and rerun["embedded"] == 0
        assert httpx.get(f"{base}/health/ready").json()["products"] == ROWS
    service = build_service(make_settings(tmp_path), embedder=embedder)
    try:
        assert service.catalog.count() == ROWS
        assert service.catalog.existing_ids([f"p{index:06d}" for index in range(ROWS)]) == {
            f"p{index:06d}" for index in range(ROWS)
        }
        assert list((tmp_path / "uploads").iterdir()) == []
    finally:
        service.close()


def test_killing_a_celery_worker_mid_import_hands_the_task_to_the_next(
    tmp_path: Path, redis_url: str, embedder
) -> None:
    catalog = tmp_path / "catalog.jsonl"
    write_catalog(catalog, ROWS)
    queue_name = f"reco-fault-{uuid.uuid4().hex[:8]}"
    extra = {"RECO_CELERY__BROKER_URL": redis_url, "RECO_CELERY__VISIBILITY_TIMEOUT_SECONDS": "5"}
    settings = make_settings(tmp_path, celery={"broker_url": redis_url, "visibility_timeout_seconds": 5})
    app = create_celery_app(settings.celery)
    app.conf.task_default_queue = queue_name

    from recommender.database import Database
    from recommender.intake.jobs import JobStore

    jobs = JobStore(Database(settings.events.url))
    job = jobs.create("catalog.jsonl", "jsonl", path=str(catalog))
    TaskQueue(app).import_catalog(job.job_id, str(catalog), "jsonl")

    def worker() -> subprocess.Popen:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "ingest.worker",
                "worker",
                "--pool",
                "solo",
                "-Q",
                queue_name,
                "--without-heartbeat",
                "--without-mingle",
                "--without-gossip",
                "--loglevel",
                "WARNING",
            ],
            env=service_environment(tmp_path, **extra),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    first = worker()
    try:
        wait_until(lambda: jobs.get(job.job_id).processed >= 512, 300, "the first worker to import rows")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert jobs.get(job.job_id).state is JobState.RUNNING
    second = worker()
    try:
        finished = wait_until(
            lambda: (current := jobs.get(job.job_id)).state is JobState.SUCCEEDED and current,
            600,
            "the task to be redelivered and finish",
        )
        assert finished.succeeded == ROWS and finished.failed == 0
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(60)
    service = build_service(settings, embedder=embedder)
    try:
        assert service.catalog.count() == ROWS
    finally:
        service.close()
