"""Import is idempotent; only changed rows are re-embedded; single-product changes; deletes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from recommender.catalog import TEXT_HASH_KEY
from recommender.errors import InvalidInputError, NotFoundError
from recommender.ids import product_point_id
from recommender.intake.files import CatalogFormat
from recommender.intake.jobs import JobState
from recommender.models import Product
from recommender.service import RecommenderService
from recommender.text import compose_product_text, text_hash
from tests.conftest import import_demo_catalog


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def run_import(service: RecommenderService, path: Path):
    job = service.jobs.create(str(path), "jsonl")
    service.importer.run_job(job.job_id, path, CatalogFormat.JSONL)
    return service.jobs.get(job.job_id)


def test_reimporting_the_same_file_changes_nothing(
    service: RecommenderService, tmp_path: Path, demo_products: list[dict]
) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", demo_products)
    first = run_import(service, path)
    assert (first.state, first.succeeded, first.embedded) == (JobState.SUCCEEDED, 60, 60)
    before = service.catalog.vectors(["run-001"])["run-001"]
    second = run_import(service, path)
    assert (second.succeeded, second.embedded, second.unchanged) == (60, 0, 60)
    assert service.catalog.count() == 60
    np.testing.assert_array_equal(before, service.catalog.vectors(["run-001"])["run-001"])


def test_reimport_reembeds_only_rows_whose_text_changed(
    service: RecommenderService, tmp_path: Path, demo_products: list[dict]
) -> None:
    run_import(service, write_jsonl(tmp_path / "a.jsonl", demo_products))
    changed = [dict(row) for row in demo_products]
    changed[0]["description"] = "Now with a completely different description about espresso."
    changed[1]["price"] = 1.0  # payload only: no new vector needed
    job = run_import(service, write_jsonl(tmp_path / "b.jsonl", changed))
    assert (job.embedded, job.unchanged, job.succeeded) == (1, 58, 60)
    assert service.catalog.get(changed[1]["product_id"]).price == 1.0


def test_duplicate_ids_in_one_file_are_reported_and_the_first_kept(
    service: RecommenderService, tmp_path: Path
) -> None:
    rows = [
        {"product_id": "x", "title": "First"},
        {"product_id": "y", "title": "Other"},
        {"product_id": "x", "title": "Second"},
    ]
    job = run_import(service, write_jsonl(tmp_path / "d.jsonl", rows))
    assert (job.succeeded, job.failed) == (2, 1)
    assert job.errors[0].line == 3 and "line 1" in job.errors[0].reason
    assert service.catalog.get("x").title == "First"


def test_a_new_product_is_recommendable_at_once_by_text_alone(service: RecommenderService) -> None:
    service.catalog.upsert([Product(product_id="new-1", title="Handmade ceramic teapot for loose-leaf tea")])
    hits = service.retriever.for_query("teapot", 3)
    assert hits.items[0].product_id == "new-1"


def test_patch_merges_fields_and_reembeds_only_on_text_change(demo_service: RecommenderService) -> None:
    catalog = demo_service.catalog
    before = catalog.vectors(["kit-001"])["kit-001"]
    assert catalog.patch("kit-001", {"price": 45.0, "in_stock": False}).price == 45.0
    np.testing.assert_array_equal(before, catalog.vectors(["kit-001"])["kit-001"])  # price is not in the text
    patched = catalog.patch("kit-001", {"attributes": {"colour": "black"}})
    assert patched.attributes == {"material": "cast iron", "colour": "black"} and patched.price == 45.0
    assert not np.allclose(before, catalog.vectors(["kit-001"])["kit-001"])  # attributes are
    catalog.patch("kit-001", {"attributes": {"colour": None}})
    assert catalog.get("kit-001").attributes == {"material": "cast iron"}
    np.testing.assert_allclose(before, catalog.vectors(["kit-001"])["kit-001"], atol=1e-6)
    with pytest.raises(InvalidInputError):
        catalog.patch("kit-001", {"product_id": "other"})
    with pytest.raises(NotFoundError):
        catalog.patch("missing", {"price": 1})


def test_delete_removes_from_results_and_reports_unknown_ids(demo_service: RecommenderService) -> None:
    assert demo_service.catalog.delete(["run-002", "nope"]) == ["nope"]
    with pytest.raises(NotFoundError):
        demo_service.catalog.get("run-002")
    hits = demo_service.retriever.for_query("trail running shoes", 10)
    assert "run-002" not in [item.product_id for item in hits.items]


def test_reembed_task_body_rewrites_vectors(demo_service: RecommenderService) -> None:
    assert demo_service.catalog.reembed(["run-001", "missing"]) == 1


def test_demo_import_is_shared_fixture_sanity(service: RecommenderService) -> None:
    import_demo_catalog(service)
    assert service.catalog.count() == 60


def test_a_long_description_is_stored_whole_and_embedded_cut(
    service: RecommenderService, tmp_path: Path
) -> None:
    description = "A kettle that boils water quickly and quietly. " * 200  # 9,400 characters
    job = run_import(
        service,
        write_jsonl(
            tmp_path / "long.jsonl", [{"product_id": "k1", "title": "Kettle", "description": description}]
        ),
    )
    assert (job.state, job.succeeded, job.failed) == (JobState.SUCCEEDED, 1, 0)
    assert service.catalog.get("k1").description == description.strip()
    limit = service.settings.embedding.max_text_chars
    stored = service.products.retrieve([product_point_id("k1")])[0].payload
    embedded = compose_product_text(service.catalog.get("k1"), limit)
    assert len(embedded) <= limit and stored[TEXT_HASH_KEY] == text_hash(
        embedded, service.embedder.model_name
    )
