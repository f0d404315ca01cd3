"""Direct lookups outside the ranked pipeline: similar products, a plain query, and the popular list that
fills a short page. Personal lists come from :mod:`recommender.pipeline`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from recommender.catalog import Catalog, public_payload
from recommender.embedding import Embedder, query_vector
from recommender.errors import InvalidInputError, NotFoundError
from recommender.ids import product_point_id
from recommender.models import ProductFilter, Recommendation, RecommendationList, Signal
from recommender.settings import RecommendSettings
from recommender.store import ScoredPoint, StoredPoint, VectorStore
from recommender.store.conditions import Condition, HasIdCondition, conditions_for

# How many of the most popular products the fallback considers before filters apply.
POPULAR_POOL_SIZE = 2000
# The pool is read from the store in popularity order, a chunk at a time, until the page is full: without
# filters the first chunk fills it; the whole pool was 1,600 points a request on ML-100k.
FIRST_POPULAR_CHUNK = 64

MostPopular = Callable[[int], list[tuple[str, int]]]  # (product id, distinct users), most first


class Retriever:
    def __init__(
        self,
        store: VectorStore,
        catalog: Catalog,
        embedder: Embedder,
        settings: RecommendSettings,
        most_popular: MostPopular,
    ) -> None:
        """``most_popular``: the popularity the pipeline's sources read (its cached item statistics)."""
        self._store = store
        self._catalog = catalog
        self._embedder = embedder
        self._settings = settings
        self._most_popular = most_popular

    def for_query(
        self, query: str, k: int, product_filter: ProductFilter | None = None, exclude: Sequence[str] = ()
    ) -> RecommendationList:
        if not query.strip():
            raise InvalidInputError("the query is empty", field="query")
        vector, using = query_vector(self._embedder, query)
        return self._search(vector, Signal.QUERY, k, product_filter, list(exclude), [], using)

    def similar(
        self,
        product_id: str,
        k: int,
        product_filter: ProductFilter | None = None,
        exclude: Sequence[str] = (),
    ) -> RecommendationList:
        vectors = self._catalog.vectors([product_id])
        if product_id not in vectors:
            raise NotFoundError("product", product_id)
        return self._search(
            vectors[product_id], Signal.SIMILAR, k, product_filter, [product_id, *exclude], []
        )

    def popular(
        self,
        k: int,
        product_filter: ProductFilter | None = None,
        exclude: Sequence[str] = (),
        notes: list[str] | None = None,
    ) -> RecommendationList:
        """Most users first; with no events at all (a new shop) any products that match the filters."""
        notes = list(notes or [])
        conditions = conditions_for(product_filter)
        excluded = set(exclude)
        ranked = [(pid, users) for pid, users in self._most_popular(POPULAR_POOL_SIZE) if pid not in excluded]
        items: list[Recommendation] = []
        if ranked:
            top = ranked[0][1]
            points = self._popular_points([pid for pid, _ in ranked], conditions, k)
            users_of = dict(ranked)
            items = [
                Recommendation(
                    product_id=point.payload["product_id"],
                    score=users_of[point.payload["product_id"]] / top,
                    signal=Signal.POPULAR,
                    product=public_payload(point.payload),
                )
                for point in points[:k]
            ]
        if len(items) < k:
            seen = excluded | {item.product_id for item in items}
            # Scroll order is arbitrary but stable; enough to fill a page in a catalog without events.
            points, _ = self._store.scroll(k + len(seen), conditions=conditions)
            for point in points:
                if len(items) >= k:
                    break
                if point.payload["product_id"] not in seen:
                    items.append(
                        Recommendation(
                            product_id=point.payload["product_id"],
                            score=0.0,
                            signal=Signal.POPULAR,
                            product=public_payload(point.payload),
                        )
                    )
            if not ranked:
                notes.append("no interaction events yet: catalog order")
        return RecommendationList(
            signal=Signal.POPULAR, items=items, excluded_count=len(excluded), notes=notes
        )

    def _popular_points(self, ranked: list[str], conditions: list[Condition], k: int) -> list[StoredPoint]:
        """The first ``k`` of ``ranked`` (most popular first) that exist and match ``conditions``."""
        order = {pid: position for position, pid in enumerate(ranked)}
        points: list[StoredPoint] = []
        start, chunk = 0, max(FIRST_POPULAR_CHUNK, 4 * k)
        while start < len(ranked) and len(points) < k:
            ids = ranked[start : start + chunk]
            pool = [*conditions, HasIdCondition(tuple(product_point_id(pid) for pid in ids))]
            found, _ = self._store.scroll(len(ids), conditions=pool)
            points.extend(sorted(found, key=lambda point: order[point.payload["product_id"]]))
            start, chunk = start + len(ids), chunk * 2
        return points

    def _search(
        self,
        vector: np.ndarray,
        signal: Signal,
        k: int,
        product_filter: ProductFilter | None,
        exclude: Sequence[str],
        notes: list[str],
        using: str | None = None,
    ) -> RecommendationList:
        conditions: list[Condition] = conditions_for(product_filter)
        hits = self._store.search(vector, k, conditions, _point_ids(exclude), using=using)
        result = _as_list(hits, signal)
        result.excluded_count = len(set(exclude))
        result.notes = notes
        return result


def _point_ids(product_ids: Sequence[str]) -> list[str]:
    return [product_point_id(pid) for pid in dict.fromkeys(product_ids)]


def _as_list(hits: list[ScoredPoint], signal: Signal) -> RecommendationList:
    items = [
        Recommendation(
            product_id=hit.payload["product_id"],
            score=hit.score,
            signal=signal,
            product=public_payload(hit.payload),
        )
        for hit in hits
    ]
    return RecommendationList(signal=signal, items=items)
