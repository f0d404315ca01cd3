"""The search check that keeps a fine-tuned encoder from making free-text search worse."""

from __future__ import annotations

import numpy as np

from recommender.demo import demo_catalog_path
from recommender.events import SearchChoice
from recommender.models import Product
from recommender.training.query_check import (
    compare_search,
    demo_query_set,
    precision_at_5,
    search_query_set,
    shop_query_sets,
)


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


def test_the_shops_own_searches_are_a_query_set_answered_by_what_shoppers_chose(embedder) -> None:
    """Held-out shoppers searched each product's title (in other cases) and chose it; a second shopper
    chose another product after the same query: both answer it."""
    products = demo_products()
    choices = [SearchChoice("s1", product.title.upper(), product.product_id) for product in products[:20]]
    choices.append(SearchChoice("s2", products[0].title.lower(), products[1].product_id))
    query_set = search_query_set(choices, products, seed=5)
    assert query_set is not None and query_set.name == "searches"
    assert len(query_set.queries) == 20  # one per query, case aside
    first = query_set.queries.index(products[0].title.upper())
    answers = {query_set.documents[index] for index in query_set.relevant[first]}
    assert len(answers) == 2 and len(query_set.documents) == len(products)
    assert precision_at_5(embedder, query_set) > 0.18  # each title finds its product (at most 1/5 + 1/20)
    _, losses = compare_search(embedder, ShuffledDocumentsEmbedderFake(embedder), [query_set], 0.02)
    assert losses and losses[0].startswith("searches search precision@5 fell from")
    assert search_query_set([], products) is None
