"""Imports read nothing outside their root, echo nothing of a file that is not a catalog, and cap uploads."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from recommender.service import build_service
from tests.api.conftest import wait_for_job
from tests.conftest import LOOPBACK, make_settings


@pytest.fixture
def confined(tmp_path: Path, embedder):
    root = tmp_path / "imports"
    root.mkdir()
    settings = make_settings(
        tmp_path,
        api={
            "allow_server_paths": True,
            "import_root": root,
            "max_upload_megabytes": 1,
            "max_parquet_uncompressed_megabytes": 1,
        },
    )
    service = build_service(settings, embedder=embedder)
    with TestClient(create_app(settings, service), client=LOOPBACK) as client:
        yield client, root, settings
    service.close()


def test_server_path_imports_are_off_by_default(client: TestClient, tmp_path: Path) -> None:
    catalog = tmp_path / "c.jsonl"
    catalog.write_text('{"product_id": "a", "title": "A"}\n')
    response = client.post("/imports/from-path", json={"path": str(catalog)})
    assert response.status_code == 403 and "off" in response.json()["detail"]


def test_paths_outside_the_root_get_the_same_answer_as_missing_ones(confined, tmp_path: Path) -> None:
    client, root, _ = confined
    secret = tmp_path / "secret.csv"
    secret.write_text("product_id,title\ns1,Secret\n")
    (root / "escape.csv").symlink_to(secret)
    (root / "sub").mkdir()
    answers = [
        client.post("/imports/from-path", json={"path": path})
        for path in (
            "missing.csv",
            str(root / "missing.csv"),
            "../secret.csv",
            "sub/../../secret.csv",
            str(secret),
            "escape.csv",
            "/etc/passwd",
            "/proc/self/environ",
            "sub",
            "bad\x00name.csv",
        )
    ]
    assert {answer.status_code for answer in answers} == {404}
    assert len({answer.text for answer in answers}) == 1, "every refusal must read the same"
    assert "secret" not in answers[0].text.lower()


def test_a_file_inside_the_root_is_imported(confined) -> None:
    client, root, _ = confined
    (root / "ok.jsonl").write_text('{"product_id": "a", "title": "Alpine tent"}\n')
    response = client.post("/imports/from-path", json={"path": "ok.jsonl"})
    assert response.status_code == 202
    assert wait_for_job(client, response.json()["job_id"])["ok"] == 1


@pytest.mark.parametrize("file_format", ["csv", "jsonl"])
def test_a_file_that_is_not_a_catalog_fails_once_and_echoes_nothing(confined, file_format: str) -> None:
    client, root, _ = confined
    shutil.copy("/etc/passwd", root / f"passwd.{file_format}")
    response = client.post("/imports/from-path", json={"path": f"passwd.{file_format}"})
    job = wait_for_job(client, response.json()["job_id"])
    assert job["state"] == "failed" and job["ok"] == 0
    assert "not a" in job["message"] and "catalog" in job["message"]
    assert "root" not in str(job) and "/bin/" not in str(job)
    assert len(job["errors"]) == 0


def test_row_errors_and_left_out_columns_quote_bounded_snippets(confined) -> None:
    client, root, _ = confined
    long_name = "x" * 5000
    (root / "wide.csv").write_text(
        f"product_id,title,{long_name},attr.{long_name}\na,Alpine tent,1,\nb,Bivvy,1,2\n"
    )
    job = wait_for_job(client, client.post("/imports/from-path", json={"path": "wide.csv"}).json()["job_id"])
    assert (job["ok"], job["failed"]) == (1, 1)
    assert len(job["errors"][0]["reason"]) <= 500 and len(job["errors"][0]["field"] or "") <= 64
    assert "left out" in job["message"] and "x" * 65 not in job["message"]


def test_an_oversized_upload_gets_413_and_leaves_no_file(confined, tmp_path: Path) -> None:
    client, _, settings = confined
    oversized = b'{"product_id": "a", "title": "A"}\n' * 40_000  # 1.4 MB, over the 1 MB cap
    response = client.post("/imports", files={"file": ("big.jsonl", io.BytesIO(oversized))})
    assert response.status_code == 413 and "larger than 1 MB" in response.json()["detail"]
    upload_dir = Path(settings.api.upload_dir)
    assert not upload_dir.exists() or not any(upload_dir.iterdir())


def test_an_upload_is_deleted_when_its_job_ends(confined) -> None:
    client, _, settings = confined
    body = b'{"product_id": "a", "title": "Alpine tent"}\n{"product_id": "b"}\n'
    response = client.post("/imports", files={"file": ("c.jsonl", io.BytesIO(body))})
    job = wait_for_job(client, response.json()["job_id"])
    assert (job["ok"], job["failed"]) == (1, 1)
    assert list(Path(settings.api.upload_dir).iterdir()) == []


def test_a_parquet_file_that_claims_huge_sizes_is_refused_before_reading(confined) -> None:
    client, root, _ = confined
    # A few KB on disk that decompress to 20 MB: the footer says so, and that is checked first.
    table = pa.table({"product_id": ["a"] * 20_000, "title": ["t" * 1000] * 20_000})
    pq.write_table(table, root / "bomb.parquet", compression="zstd", use_dictionary=False)
    assert os.path.getsize(root / "bomb.parquet") < 200_000
    job = wait_for_job(
        client, client.post("/imports/from-path", json={"path": "bomb.parquet"}).json()["job_id"]
    )
    assert job["state"] == "failed" and "declares" in job["message"] and job["ok"] == 0
