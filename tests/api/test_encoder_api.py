"""The shop's own encoder through the API: an admin starts the fine-tuning, the in-process worker trains
the real model with sentence-transformers' trainer, publishes it, re-embeds the catalog through the
rebuild path and serves it; products that this shop's shoppers take together become similar."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from recommender.service import RecommenderService, build_service
from tests.conftest import LOOPBACK, import_demo_catalog, make_settings
from tests.shop_histories import bundle_histories


@pytest.fixture
def encoder_service(tmp_path, embedder) -> Iterator[RecommenderService]:  # type: ignore[no-untyped-def]
    settings = make_settings(
        tmp_path,
        collab={"models_path": tmp_path / "models"},
        embedding={
            "backend": "torch",
            "fine_tune_max_steps": 30,
            "fine_tune_batch_size": 16,
            "fine_tune_learning_rate": 1e-4,
            # The search check has its own tests (test_query_check.py); this one follows the whole path.
            "fine_tune_query_tolerance": 1.0,
        },
    )
    service = build_service(settings, embedder=embedder)
    import_demo_catalog(service)
    service.events.add(bundle_histories(150))
    yield service
    service.close()


def similar(client: TestClient, product_id: str) -> list[str]:
    response = client.get(f"/products/{product_id}/similar", params={"k": 5})
    assert response.status_code == 200, response.text
    return [item["product_id"] for item in response.json()["items"]]


def test_the_shops_encoder_is_trained_published_and_served_through_the_api(encoder_service) -> None:  # type: ignore[no-untyped-def]
    with TestClient(create_app(encoder_service.settings, encoder_service), client=LOOPBACK) as client:
        before = client.get("/models/encoder").json()
        assert before["serving"] == "all-MiniLM-L6-v2" and before["version"] is None
        partners_before = sum(f"kit-{n:03d}" in similar(client, f"run-{n:03d}") for n in range(1, 11))

        accepted = client.post("/models/encoder/train")
        assert accepted.status_code == 202
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            state = client.get("/models/encoder").json()
            if state["training_run"] is None and state["latest"] is not None:
                break
            time.sleep(1)
        latest = state["latest"]
        assert latest["published"], latest["reason"]
        assert state["serving"] == "all-MiniLM-L6-v2@shop-v1" and state["version"] == 1
        assert state["pending"] is False
        assert latest["validation"]["after"] > latest["validation"]["before"]
        assert latest["pairs"]["validation_users"] >= 10 and latest["steps"] > 0
        # Search is checked on a fifth of the catalog (12 products here: too few for category queries).
        assert set(latest["search"]) == {"titles", "demo"}
        # No model was trained yet: there were no served lists to compare it on.
        assert latest["served_gate"]["note"].startswith("no trained model served before")
        assert all(figures["queries"] > 0 for figures in latest["search"].values())

        # The catalog now holds the shop's encoder's vectors: bundle partners became neighbours.
        partners_after = sum(f"kit-{n:03d}" in similar(client, f"run-{n:03d}") for n in range(1, 11))
        assert partners_after > partners_before + 2, (partners_before, partners_after)
        assert client.get("/products/run-001").status_code == 200  # every product is still there

        # Withdrawn, the configured model serves again (re-embedded the same way).
        withdrawn = client.delete("/models/encoder")
        assert withdrawn.status_code == 200 and withdrawn.json()["serving"] == "all-MiniLM-L6-v2"
        assert sum(f"kit-{n:03d}" in similar(client, f"run-{n:03d}") for n in range(1, 11)) == partners_before
