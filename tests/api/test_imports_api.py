from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from recommender.demo import demo_catalog_path
from tests.api.conftest import wait_for_job
from tests.conftest import LOOPBACK

CSV = (
    "product_id,title,price,category,attr.colour\n"
    "c1,Blue running shoe,80,Sports > Running,blue\n"
    "c2,,10,Sports,red\n"
    "c3,Kitchen scale,not-a-price,Home > Kitchen,\n"
    "c4,Digital kitchen scale,25,Home > Kitchen,white\n"
)


def test_upload_returns_a_job_and_reports_bad_rows(client: TestClient) -> None:
    response = client.post("/imports", files={"file": ("catalog.csv", io.BytesIO(CSV.encode()), "text/csv")})
    assert response.status_code == 202
    job = wait_for_job(client, response.json()["job_id"])
    assert (job["state"], job["processed"], job["ok"], job["failed"]) == ("succeeded", 4, 2, 2)
    assert [(error["line"], error["field"]) for error in job["errors"]] == [(3, "title"), (4, "price")]
    assert job["rate_per_second"] > 0
    assert client.get("/products/c4").json()["product"]["attributes"] == {"colour": "white"}


def test_reimport_of_the_same_upload_changes_nothing(client: TestClient) -> None:
    for expected_embedded in (2, 0):
        response = client.post("/imports", files={"file": ("c.csv", io.BytesIO(CSV.encode()), "text/csv")})
        job = wait_for_job(client, response.json()["job_id"])
        assert job["embedded"] == expected_embedded


def test_import_of_an_upload_and_a_parquet_upload(client: TestClient, tmp_path: Path) -> None:
    with demo_catalog_path().open("rb") as handle:
        response = client.post("/imports", files={"file": ("catalog.jsonl", handle)})
    assert wait_for_job(client, response.json()["job_id"])["ok"] == 60
    parquet_path = tmp_path / "extra.parquet"
    pq.write_table(pa.table({"product_id": ["pq1"], "title": ["Parquet thermos flask"]}), parquet_path)
    with parquet_path.open("rb") as handle:
        response = client.post("/imports", files={"file": ("extra.parquet", handle)})
    assert wait_for_job(client, response.json()["job_id"])["ok"] == 1
    assert client.get("/products/pq1").status_code == 200


def test_bad_import_requests(client: TestClient) -> None:
    assert client.post("/imports", files={"file": ("c.xlsx", io.BytesIO(b"x"))}).status_code == 422
    off = client.post("/imports/from-path", json={"path": "/no/such/file.csv"})
    assert off.status_code == 403  # server paths are off unless configured (see test_import_confinement)
    assert client.get("/imports/unknown-job").status_code == 404


def test_jobs_left_running_by_a_crash_are_interrupted_and_resumed_at_start_up(service, tmp_path) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app

    catalog = tmp_path / "left.jsonl"
    catalog.write_text('{"product_id": "a", "title": "Alpine tent"}\n{"product_id": "b", "title": "Bivvy"}\n')
    resumable = service.jobs.create("left.jsonl", "jsonl", path=str(catalog))
    service.jobs.start(resumable.job_id)  # as if the process died while running it
    orphan = service.jobs.create("gone.jsonl", "jsonl", path=str(tmp_path / "gone.jsonl"))
    service.jobs.start(orphan.job_id)
    with TestClient(create_app(service.settings, service), client=LOOPBACK) as client:
        resumed = wait_for_job(client, resumable.job_id)
        assert resumed["state"] == "succeeded" and resumed["ok"] == 2
        assert resumed["message"].startswith("resumed after an interruption")
        lost = client.get(f"/imports/{orphan.job_id}").json()
        assert lost["state"] == "interrupted" and "interrupted" in lost["message"]


def test_an_upload_whose_job_cannot_be_recorded_leaves_no_file(tmp_path: Path, embedder) -> None:
    from api.app import create_app
    from recommender.service import build_service
    from tests.conftest import make_settings
    from tests.live_service import free_port

    settings = make_settings(
        tmp_path, events={"url": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x"}
    )
    service = build_service(settings, embedder=embedder)
    try:
        with TestClient(create_app(settings, service), client=LOOPBACK) as client:
            response = client.post(
                "/imports", files={"file": ("c.csv", io.BytesIO(CSV.encode()), "text/csv")}
            )
            assert response.status_code == 503 and response.json()["dependency"] == "event store"
        assert list(Path(settings.api.upload_dir).iterdir()) == []
    finally:
        service.close()


def test_uploads_no_job_reads_are_removed_at_start_up(service, tmp_path: Path) -> None:
    import os
    import time

    from api.app import create_app

    upload_dir = Path(service.settings.api.upload_dir)
    upload_dir.mkdir(parents=True, exist_ok=True)
    orphan, recent, in_use = (upload_dir / name for name in ("orphan.csv", "recent.csv", "in-use.csv"))
    for path in (orphan, recent, in_use):
        path.write_text(CSV)
    hour_ago = time.time() - 3600
    for path in (orphan, in_use):
        os.utime(path, (hour_ago, hour_ago))
    job = service.jobs.create("in-use.csv", "csv", path=str(in_use), owns_file=True)
    service.jobs.start(job.job_id)  # a crash left it running; recovery resumes it and then deletes its upload
    with TestClient(create_app(service.settings, service), client=LOOPBACK) as client:
        assert not orphan.exists()  # no job, older than the grace period
        assert recent.exists()  # may still be waiting for its job row
        assert wait_for_job(client, job.job_id)["state"] == "succeeded"
