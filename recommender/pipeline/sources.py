"""Candidate sources. Each returns its best products for a request, filters and exclusions applied."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from recommender.catalog import Catalog
from recommender.embedding import Embedder, query_vector
from recommender.ids import product_point_id
from recommender.pipeline.artifacts import TrainedParts
from recommender.pipeline.candidates import Hit
from recommender.pipeline.item_tower import ItemTowerOutput
from recommender.pipeline.product_cache import ProductCache
from recommender.pipeline.registry import PublishedModel
from recommender.pipeline.request import PipelineRequest
from recommender.pipeline.stats import ItemStats
from recommender.pipeline.user_state import UserState
from recommender.settings import RecommendSettings
from recommender.store import ScoredPoint, VectorStore
from recommender.store.conditions import Condition, HasIdCondition, conditions_for

# Co-occurrence reads the products of the user's most recent events.
COOCCURRENCE_RECENT = 20


@dataclass
class SourceContext:
    request: PipelineRequest
    user: UserState
    conditions: list[Condition]
    exclude_points: list[str]
    model: PublishedModel | None
    parts: TrainedParts
    stats: ItemStats


class Source(Protocol):
    name: str

    def candidates(self, context: SourceContext, depth: int) -> list[Hit]: ...


def _hits(points: Sequence[ScoredPoint]) -> list[Hit]:
    return [Hit(point.payload["product_id"], point.score, point.payload) for point in points]


def _bare_hits(points: Sequence[ScoredPoint], products: ProductCache) -> list[Hit]:
    """Hits searched without a payload, their product ids from the product cache (the pipeline reads the
    fields it needs once, after the merge)."""
    product_ids = products.product_ids([point.point_id for point in points])
    return [
        Hit(pid, point.score, None) for pid, point in zip(product_ids, points, strict=True) if pid is not None
    ]


NO_PAYLOAD = ()


def top_indices(scores: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` highest scores, best first and ties by index (a stable argsort's order, NaN
    last), without sorting the whole array: the new-arrivals pool can be most of a 100k catalog."""
    count = min(count, len(scores))
    if count <= 0:
        return np.zeros(0, dtype=np.int64)
    scores = np.where(np.isnan(scores), -np.inf, scores)
    kth = np.partition(-scores, count - 1)[count - 1]  # the count-th highest score, negated
    above = np.flatnonzero(-scores < kth)
    tied = np.flatnonzero(-scores == kth)[: count - len(above)]
    chosen = np.concatenate([above, tied])
    return chosen[np.lexsort((chosen, -scores[chosen]))]


def unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return (vector / norm).astype(np.float32) if norm else vector.astype(np.float32)


class TextProfileSource:
    """Nearest products to the user's text profile."""

    name = "text"

    def __init__(self, store: VectorStore, products: ProductCache) -> None:
        self._store = store
        self._products = products

    def candidates(self, context: SourceContext, depth: int) -> list[Hit]:
        if context.user.profile is None:
            return []
        points = self._store.search(
            context.user.profile, depth, context.conditions, context.exclude_points, payload_keys=NO_PAYLOAD
        )
        return _bare_hits(points, self._products)


class CollabSource:
    """Nearest products to the sequence model's state after the user's history (learned vectors)."""

    name = "collab"

    def __init__(self, store: VectorStore, products: ProductCache) -> None:
        self._store = store
        self._products = products

    def candidates(self, context: SourceContext, depth: int) -> list[Hit]:
        if context.user.collab is None or context.model is None:
            return []
        points = self._store.search(
            context.user.collab,
            depth,
            context.conditions,
            context.exclude_points,
            using=context.model.slot,
            payload_keys=NO_PAYLOAD,
        )
        return _bare_hits(points, self._products)


class _RankedIdsSource:
    """A source that scores product ids itself, then keeps those the filters allow. Without filters it
    reads nothing from the store: the pipeline reads every candidate's payload once, after the merge."""

    name = ""

    def __init__(self, store: VectorStore) -> None:
        self._store = store

    def scored_ids(self, context: SourceContext, depth: int) -> list[tuple[str, float]]:
        raise NotImplementedError

    def candidates(self, context: SourceContext, depth: int) -> list[Hit]:
        excluded = context.user.excluded
        ranked = [(pid, score) for pid, score in self.scored_ids(context, depth) if pid not in excluded]
        ranked = ranked[: depth * 2]
        if not ranked:
            return []
        if not context.conditions:
            return [Hit(pid, score, None) for pid, score in ranked[:depth]]
        pool = [*context.conditions, HasIdCondition(tuple(product_point_id(pid) for pid, _ in ranked))]
        points, _ = self._store.scroll(len(ranked), conditions=pool)
        allowed = {point.payload["product_id"] for point in points}
        return [Hit(pid, score, None) for pid, score in ranked if pid in allowed][:depth]


class CoOccurrenceSource(_RankedIdsSource):
    """Products most often in the same histories as the user's recent products."""

    name = "cooccurrence"

    def scored_ids(self, context: SourceContext, depth: int) -> list[tuple[str, float]]:
        if context.parts.cooccurrence is None or not context.user.positives:
            return []
        return context.parts.cooccurrence.top(context.user.engaged[-COOCCURRENCE_RECENT:], depth * 3)


class PopularSource(_RankedIdsSource):
    """Most users overall."""

    name = "popular"

    def scored_ids(self, context: SourceContext, depth: int) -> list[tuple[str, float]]:
        pool = depth * 2 + len(context.user.excluded)
        return [(pid, float(users)) for pid, users in context.stats.most_popular(pool)]


class TrendingSource(_RankedIdsSource):
    """Most users within the recent window (measured back from the newest event)."""

    name = "trending"

    def scored_ids(self, context: SourceContext, depth: int) -> list[tuple[str, float]]:
        pool = depth * 2 + len(context.user.excluded)
        return [(pid, float(users)) for pid, users in context.stats.trending(pool)]


TEXT_READ_PAGE = 1000  # text vectors of new products read from the store at a time


class NewArrivalsSource(_RankedIdsSource):
    """Products without events, nearest first to the user's sequence-model state through the item
    tower's predicted vectors, plus the trained weights of the content-based popularity prior and of the
    product's text against the user's text profile (by the prior alone for a user without a state). Only
    the ``pool`` with the highest priors are scored."""

    name = "new"

    def __init__(
        self,
        store: VectorStore,
        pool: int,
        prior_weight: float | None = None,
        text_weight: float | None = None,
    ) -> None:
        super().__init__(store)
        self._pool = pool
        self._prior_weight = prior_weight  # None: the weight training fitted
        self._text_weight = text_weight  # None: the weight training fitted
        # The products still without events, their predicted vectors and priors; recomputed when the
        # tower or the statistics object is replaced (a new model, new events).
        self._still_new: _StillNew | None = None
        self._text_of: tuple[ItemTowerOutput | None, dict[str, np.ndarray]] = (None, {})

    def scored_ids(self, context: SourceContext, depth: int) -> list[tuple[str, float]]:
        tower = context.parts.tower
        if tower is None or not tower.cold_ids:
            return []
        still_new = self._memo(context)
        if not still_new.ids:
            return []
        user = context.user
        if user.collab is None:
            scores = still_new.priors
        else:
            scores = self._scores(context, user.collab[None, :], user.profile)[0]
        return [(still_new.ids[i], float(scores[i])) for i in top_indices(scores, depth * 2)]

    def still_new_count(self, context: SourceContext) -> int:
        """How many of the products the tower predicted for still have no events (the pool aside)."""
        return self._memo(context).count

    def reference_best(self, context: SourceContext) -> np.ndarray | None:
        """Each training user's best new-arrivals score over the scored products still without events
        (None without the tower's reference states): the scale a user's own best score is read on."""
        memo = self._memo(context)
        tower = memo.tower
        if memo.reference_best is None and tower.reference_states is not None and memo.ids:
            scores = self._scores(context, tower.reference_states, tower.reference_profiles)
            memo.reference_best = scores.max(axis=1)
        return memo.reference_best

    def _scores(self, context: SourceContext, states: np.ndarray, profiles: np.ndarray | None) -> np.ndarray:
        """[users, products still new]: predicted vector . state + prior weight * prior (+ text weight *
        text vector . text profile, where the user has a profile in the products' text space)."""
        memo = self._memo(context)
        tower = memo.tower
        scores = states @ memo.vectors.T + self._weight(tower) * memo.priors
        text_weight = tower.text_weight if self._text_weight is None else self._text_weight
        if text_weight and profiles is not None:
            text = self._text_vectors(memo)
            if text.shape[1] == profiles.shape[-1]:
                scores = scores + text_weight * (np.atleast_2d(profiles) @ text.T)
        return scores

    def _text_vectors(self, memo: _StillNew) -> np.ndarray:
        """[products, text dimension]: the stored text vectors of the products still new (zeros for one
        without). Each is read from the store once per tower: after new events a request reads only the
        products that joined the pool, if any (a product's new text shows after the next training)."""
        if memo.text is None:
            tower, known = self._text_of
            if tower is not memo.tower:
                known = {}
            missing = [pid for pid in memo.ids if pid not in known]
            for start in range(0, len(missing), TEXT_READ_PAGE):
                points = self._store.retrieve(
                    [product_point_id(pid) for pid in missing[start : start + TEXT_READ_PAGE]],
                    with_vectors=True,
                    payload_keys=["product_id"],
                )
                known.update((p.payload["product_id"], p.vector) for p in points if p.vector is not None)
            self._text_of = (memo.tower, known)
            dimension = len(next(iter(known.values()))) if known else 0
            memo.text = np.asarray(
                [known.get(pid, np.zeros(dimension)) for pid in memo.ids], dtype=np.float32
            ).reshape(len(memo.ids), dimension)
        return memo.text

    def _weight(self, tower: ItemTowerOutput) -> float:
        return tower.prior_weight if self._prior_weight is None else self._prior_weight

    def _memo(self, context: SourceContext) -> _StillNew:
        tower, stats = context.parts.tower, context.stats
        memo = self._still_new
        if memo is None or memo.tower is not tower or memo.stats is not stats:
            assert tower is not None
            users, priors = stats.users, context.parts.cold_priors
            rows = np.flatnonzero(np.fromiter((pid not in users for pid in tower.cold_ids), bool))
            count = len(rows)
            if len(rows) > self._pool:
                rows = np.sort(rows[top_indices(priors[rows], self._pool)])
            ids = [tower.cold_ids[row] for row in rows.tolist()]
            memo = _StillNew(tower, stats, ids, tower.cold_vectors[rows], priors[rows], count)
            self._still_new = memo
        return memo


@dataclass
class _StillNew:
    """The products the tower predicted for that still have no events, as of one (tower, statistics)."""

    tower: ItemTowerOutput
    stats: ItemStats
    ids: list[str]
    vectors: np.ndarray
    priors: np.ndarray
    count: int  # before the pool
    reference_best: np.ndarray | None = None
    text: np.ndarray | None = None  # their text vectors, read when a text weight asks for them


class QuerySource:
    """A free-text query, blended with the user's profile when there is one."""

    name = "query"

    def __init__(self, store: VectorStore, embedder: Embedder, settings: RecommendSettings) -> None:
        self._store = store
        self._embedder = embedder
        self._settings = settings

    def candidates(self, context: SourceContext, depth: int) -> list[Hit]:
        vector, using = query_vector(self._embedder, str(context.request.query))
        if context.user.profile is not None and using is None:  # the profile is in the main model's space
            blend = self._settings.query_profile_blend
            vector = unit((1 - blend) * vector + blend * context.user.profile)
        return _hits(
            self._store.search(vector, depth, context.conditions, context.exclude_points, using=using)
        )


class SessionSource:
    """A visitor's clicks in order; later clicks weigh more."""

    name = "session"

    def __init__(self, store: VectorStore, catalog: Catalog) -> None:
        self._store = store
        self._catalog = catalog

    def candidates(self, context: SourceContext, depth: int) -> list[Hit]:
        session = list(context.request.session)
        vectors = self._catalog.vectors(session)
        known = [pid for pid in session if pid in vectors]
        if not known:
            return []
        weights = np.linspace(0.5, 1.0, num=len(known))
        profile = unit(np.sum([w * vectors[pid] for w, pid in zip(weights, known, strict=True)], axis=0))
        exclude = [*context.exclude_points, *(product_point_id(pid) for pid in session)]
        return _hits(self._store.search(profile, depth, context.conditions, exclude))


class ExamplesSource:
    """Qdrant's recommend query over positive and negative example products."""

    name = "examples"

    def __init__(self, store: VectorStore, catalog: Catalog) -> None:
        self._store = store
        self._catalog = catalog

    def candidates(self, context: SourceContext, depth: int) -> list[Hit]:
        request = context.request
        vectors = self._catalog.vectors([*request.positive, *request.negative])
        exclude = [*context.exclude_points, *(product_point_id(pid) for pid in vectors)]
        points = self._store.recommend(
            [vectors[pid] for pid in request.positive if pid in vectors],
            [vectors[pid] for pid in request.negative if pid in vectors],
            depth,
            context.conditions,
            exclude,
        )
        return _hits(points)


def build_sources(
    store: VectorStore,
    catalog: Catalog,
    embedder: Embedder,
    settings: RecommendSettings,
    products: ProductCache,
    new_arrivals_pool: int,
    new_arrivals_prior_weight: float | None = None,
    new_arrivals_text_weight: float | None = None,
) -> dict[str, Source]:
    sources: list[Source] = [
        TextProfileSource(store, products),
        CollabSource(store, products),
        CoOccurrenceSource(store),
        PopularSource(store),
        TrendingSource(store),
        NewArrivalsSource(store, new_arrivals_pool, new_arrivals_prior_weight, new_arrivals_text_weight),
        QuerySource(store, embedder, settings),
        SessionSource(store, catalog),
        ExamplesSource(store, catalog),
    ]
    return {source.name: source for source in sources}


def filter_conditions(request: PipelineRequest) -> list[Condition]:
    return conditions_for(request.filters)
