"""The search check that keeps a fine-tuned encoder from making free-text search worse."""

from __future__ import annotations

import numpy as np

from recommender.demo import demo_catalog_path
from recommender.models import Product
from recommender.training.query_check import compare_search, demo_query_set, precision_at_5, shop_query_sets


class ShuffledDocumentsEmbedderFake:
    """A named fake: the real model's query vectors, but every document vector moved to another product
    (an encoder that forgot what products are), to prove the check refuses what loses search."""

    def __init__(self, real) -> None:  # type: ignore[no-untyped-def]
        self._real = real
        self.model_name = "shuffled"
        self.dimension = real.dimension

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        vectors = self._real.encode_documents(texts)
        return np.roll(vectors, 7, axis=0)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._real.encode_queries(texts)


def demo_products() -> list[Product]:
    return [Product.model_validate_json(line) for line in demo_catalog_path().read_text().splitlines()]


def test_the_real_model_finds_the_demo_queries_and_the_shops_own_titles_and_categories(embedder) -> None:
    sets = {query_set.name: query_set for query_set in shop_query_sets(demo_products())}
    assert precision_at_5(embedder, demo_query_set()) > 0.6
    # A title finds its product in the top 5 (one right answer: at most 1/5).
    assert precision_at_5(embedder, sets["titles"]) > 0.18
    assert precision_at_5(embedder, sets["categories"]) > 0.5


def test_an_encoder_that_loses_search_is_named_with_its_figures(embedder) -> None:
    query_sets = [*shop_query_sets(demo_products()), demo_query_set()]
    figures, losses = compare_search(embedder, ShuffledDocumentsEmbedderFake(embedder), query_sets, 0.02)
    assert set(figures) == {"titles", "categories", "demo"}
    assert any(loss.startswith("demo search precision@5 fell from") for loss in losses)
    assert figures["demo"]["after"] < figures["demo"]["before"] - 0.02
    same, none_lost = compare_search(embedder, embedder, query_sets, 0.02)
    assert none_lost == [] and same["demo"]["before"] == same["demo"]["after"]
