"""Free-text search before and after fine-tuning: a fine-tuned encoder must not make search worse.

Three query sets, each scored as precision@5 by the encoder's own query and document vectors:
- ``titles``: a sample of the shop's product titles, each answered by its product;
- ``categories``: each category's last name (``Running`` for ``Sports > Running``), answered by the products
  under that path;
- ``demo``: the English shopper queries over the demo catalog (``recommender.demo.demo_queries``, the ones
  ``bench/multilingual.py`` scores): search in general, outside this shop's vocabulary;
- ``searches``: the shop's own searches (held-out shoppers' queries, each answered by the products they
  clicked or bought after it), where the shop has recorded any.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import numpy as np

from recommender.demo import demo_catalog_path, demo_queries
from recommender.embedding import Embedder
from recommender.events import SearchChoice
from recommender.models import Product
from recommender.text import compose_product_text

MAX_CORPUS = 2000
MAX_TITLE_QUERIES = 200
MAX_CATEGORY_QUERIES = 50
MIN_CATEGORY_PRODUCTS = 5


@dataclass(frozen=True)
class QuerySet:
    name: str
    queries: list[str]
    documents: list[str]
    relevant: list[set[int]]  # per query, the indexes of its right answers in ``documents``


def shop_query_sets(products: list[Product], seed: int = 42) -> list[QuerySet]:
    """Title and category queries over a sample of the shop's catalog."""
    rng = random.Random(seed)
    corpus = rng.sample(products, MAX_CORPUS) if len(products) > MAX_CORPUS else list(products)
    documents = [compose_product_text(product) for product in corpus]
    sets = []
    titled = [index for index, product in enumerate(corpus) if product.title]
    chosen = sorted(rng.sample(titled, min(MAX_TITLE_QUERIES, len(titled))))
    by_title: dict[str, set[int]] = {}
    for index, product in enumerate(corpus):
        by_title.setdefault(product.title.casefold(), set()).add(index)
    if chosen:
        sets.append(
            QuerySet(
                "titles",
                [corpus[index].title for index in chosen],
                documents,
                [by_title[corpus[index].title.casefold()] for index in chosen],
            )
        )
    paths = Counter(product.category for product in corpus if product.category)
    common = [
        path for path, count in paths.most_common(MAX_CATEGORY_QUERIES) if count >= MIN_CATEGORY_PRODUCTS
    ]
    if common:
        sets.append(
            QuerySet(
                "categories",
                [path.split(">")[-1].strip() for path in common],
                documents,
                [
                    {index for index, product in enumerate(corpus) if product.category.startswith(path)}
                    for path in common
                ],
            )
        )
    return sets


def search_query_set(checked: list[SearchChoice], products: list[Product], seed: int = 42) -> QuerySet | None:
    """Each distinct query (case aside) of the held-out shoppers, answered by every product chosen after
    it, among those products and a sample of the rest of the catalog (up to ``MAX_CORPUS`` in all)."""
    if not checked:
        return None
    by_id = {product.product_id: product for product in products}
    chosen_after: dict[str, set[str]] = {}
    wording: dict[str, str] = {}
    for choice in checked:
        key = choice.query.strip().casefold()
        wording.setdefault(key, choice.query.strip())
        chosen_after.setdefault(key, set()).add(choice.product_id)
    keys = sorted(chosen_after)
    rng = random.Random(seed)
    if len(keys) > MAX_TITLE_QUERIES:
        keys = sorted(rng.sample(keys, MAX_TITLE_QUERIES))
    answers = sorted({pid for key in keys for pid in chosen_after[key] if pid in by_id})
    rest = sorted(set(by_id) - set(answers))
    corpus = answers + rng.sample(rest, max(0, min(len(rest), MAX_CORPUS - len(answers))))
    index = {pid: position for position, pid in enumerate(corpus)}
    return QuerySet(
        "searches",
        [wording[key] for key in keys],
        [compose_product_text(by_id[pid]) for pid in corpus],
        [{index[pid] for pid in chosen_after[key] if pid in index} for key in keys],
    )


def demo_query_set() -> QuerySet:
    products = [
        Product.model_validate_json(line) for line in demo_catalog_path().read_text().splitlines() if line
    ]
    queries = demo_queries()
    return QuerySet(
        "demo",
        [query.english for query in queries],
        [compose_product_text(product) for product in products],
        [
            {index for index, product in enumerate(products) if product.category.startswith(query.category)}
            for query in queries
        ],
    )


def precision_at_5(embedder: Embedder, query_set: QuerySet) -> float:
    documents = embedder.encode_documents(query_set.documents)
    queries = embedder.encode_queries(query_set.queries)
    top = np.argsort(-(queries @ documents.T), axis=1, kind="stable")[:, :5]
    hits = [
        len(set(row.tolist()) & relevant) / 5 for row, relevant in zip(top, query_set.relevant, strict=True)
    ]
    return float(np.mean(hits)) if hits else 0.0


def compare_search(
    before: Embedder, after: Embedder, query_sets: list[QuerySet], tolerance: float
) -> tuple[dict[str, dict[str, float]], list[str]]:
    """Per query set, precision@5 before and after; and the sets that lost more than ``tolerance``."""
    figures: dict[str, dict[str, float]] = {}
    losses = []
    for query_set in query_sets:
        base, tuned = precision_at_5(before, query_set), precision_at_5(after, query_set)
        figures[query_set.name] = {
            "before": round(base, 4),
            "after": round(tuned, 4),
            "queries": len(query_set.queries),
        }
        if tuned < base - tolerance:
            losses.append(f"{query_set.name} search precision@5 fell from {base:.3f} to {tuned:.3f}")
    return figures, losses
