"""A switch of the shop's encoder under ``recommender serve --workers 2``: the API process that withdraws the
encoder re-embeds the catalog and switches the shared collection; the other one notices on its next check
(every 30 s) and serves the same model, without embedding the catalog a second time or taking the collection
away from the process that switched it.

The version published is the configured model saved under the shop's name (real weights, as in
``tests/recommender/test_encoder_switch.py``), so that the lists before and after are the same and any
difference is the switch's doing."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from recommender.embedding.engines import SentenceTransformerEmbedder
from recommender.embedding.versions import EncoderVersions, shop_model_name
from recommender.settings import EmbeddingSettings
from tests.live_service import free_port, live_service

# Outside the fast tier: two API processes and a store host, started for real, and a 30 s encoder check.
pytestmark = pytest.mark.slow

PRODUCTS = [
    {"product_id": f"p{index}", "title": title, "category": category}
    for index, (title, category) in enumerate(
        [
            ("Trail running shoe", "Sports > Running"),
            ("Running socks", "Sports > Running"),
            ("Road running shoe", "Sports > Running"),
            ("Espresso machine", "Kitchen > Coffee"),
            ("Coffee grinder", "Kitchen > Coffee"),
            ("Milk frother", "Kitchen > Coffee"),
        ]
    )
]


def serving_models(base: str, requests: int) -> set[tuple[str, bool]]:
    """(serving model, pending) as answered on ``requests`` new connections, which both processes accept."""
    answers = set()
    for _ in range(requests):
        with httpx.Client(base_url=base, timeout=120) as client:
            encoder = client.get("/models/encoder")
            assert encoder.status_code == 200, encoder.text
            answers.add((encoder.json()["serving"], encoder.json()["pending"]))
    return answers


def similar(base: str) -> list[str]:
    with httpx.Client(base_url=base, timeout=120) as client:
        found = client.get("/products/p0/similar", params={"k": 3})
        assert found.status_code == 200, found.text
        return [item["product_id"] for item in found.json()["items"]]


def test_the_other_api_process_follows_a_switch_without_embedding_the_catalog_again(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    configured = EmbeddingSettings().model
    versions = EncoderVersions(tmp_path / "models")
    embedder._model.save(str(versions.folder(1)))
    versions.write_meta(1, {"base_model": configured})
    versions.publish(1)
    shop_model = shop_model_name(configured, 1)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / f"server-{port}.log"
    with live_service(tmp_path, port, RECO_API__WORKERS="2", RECO_EMBEDDING__BACKEND="torch"):
        for product in PRODUCTS:
            assert httpx.post(f"{base}/products", json=product, timeout=120).status_code == 201
        assert serving_models(base, 8) == {(shop_model, False)}
        before = similar(base)
        assert before[:2] == ["p2", "p1"]

        # Requests on new connections all through the switch: a process still on the old model while the
        # collection is replaced answers a 503 that says so, never a 500.
        during: list[httpx.Response] = []
        switched = threading.Event()

        def ask_meanwhile() -> None:
            while not switched.is_set():
                with httpx.Client(base_url=base, timeout=120) as client:
                    during.append(client.get("/products/p0/similar", params={"k": 3}))

        asking = threading.Thread(target=ask_meanwhile)
        asking.start()
        try:
            withdrawn = httpx.delete(f"{base}/models/encoder", timeout=300)
        finally:
            switched.set()
            asking.join(120)
        assert withdrawn.status_code == 200, withdrawn.text
        assert withdrawn.json()["serving"] == configured
        assert during and all(answer.status_code in (200, 503) for answer in during), [
            (answer.status_code, answer.text[:200]) for answer in during if answer.status_code != 200
        ]
        assert all("another embedding model" in answer.text for answer in during if answer.status_code == 503)
        assert all(
            [item["product_id"] for item in answer.json()["items"]] == before
            for answer in during
            if answer.status_code == 200
        )
        # Until the other process's check comes due it may serve the shop's copy (the same weights here):
        # every list in the meantime is whole, whichever process answers.
        deadline = time.monotonic() + 150
        while True:
            assert similar(base) == before
            answers = serving_models(base, 6)
            if answers == {(configured, False)} or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert answers == {(configured, False)}
        assert serving_models(base, 8) == {(configured, False)}
        assert similar(base) == before
    log = log_path.read_text()
    assert log.count("Application startup complete") == 2
    # One process re-embedded the catalog; the other found it done and only opened its service again.
    assert log.count(f"embedding model changed to {configured}") == 1, log[-4000:]
    assert "Traceback" not in log, log[-4000:]
