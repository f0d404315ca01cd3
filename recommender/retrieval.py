"""Candidate retrieval: profile, query, session, examples, similar items, and the popular fallback."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recommender.catalog import Catalog, public_payload
from recommender.collab.registry import ModelRegistry
from recommender.embedding import Embedder
from recommender.errors import InvalidInputError, NotFoundError
from recommender.events import EventStore
from recommender.ids import product_point_id
from recommender.models import EventType, ProductFilter, Recommendation, RecommendationList, Signal
from recommender.profiles import ProfileService
from recommender.settings import CollabSettings, RecommendSettings
from recommender.store import ScoredPoint, VectorStore
from recommender.store.conditions import Condition, HasIdCondition, conditions_for

# Reciprocal-rank fusion's usual constant: ranks below it count nearly alike.
RRF_OFFSET = 60
# How many of the most popular products the fallback considers before filters apply.
POPULAR_POOL_SIZE = 2000


class Retriever:
    def __init__(
        self,
        store: VectorStore,
        catalog: Catalog,
        embedder: Embedder,
        events: EventStore,
        profiles: ProfileService,
        settings: RecommendSettings,
        models: ModelRegistry | None = None,
        collab: CollabSettings | None = None,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._embedder = embedder
        self._events = events
        self._profiles = profiles
        self._settings = settings
        self._models = models
        self._collab = collab or CollabSettings()

    def for_user(
        self, user_id: str, k: int, product_filter: ProductFilter | None = None, query: str | None = None
    ) -> RecommendationList:
        """Personalised: the user's profile (blended with a query if one is given), history excluded.

        An unknown user or one without usable history gets the query, or the popular fallback.
        """
        excluded = self.excluded_products(user_id)
        profile = self._profiles.get(user_id)
        notes: list[str] = []
        if query:
            vector = self._embedder.encode_queries([query])[0]
            if profile is not None:
                blend = self._settings.query_profile_blend
                vector = _unit((1 - blend) * vector + blend * profile)
                notes.append(f"query blended with the user's profile (weight {blend})")
            return self._search(vector, Signal.QUERY, k, product_filter, excluded, notes)
        if profile is None:
            notes.append("no usable history for this user: popular products")
            return self.popular(k, product_filter, excluded, notes)
        hybrid = self._hybrid(user_id, profile, k, product_filter, excluded)
        if hybrid is not None:
            return hybrid
        return self._search(profile, Signal.PROFILE, k, product_filter, excluded, notes)

    def _hybrid(
        self,
        user_id: str,
        profile: np.ndarray,
        k: int,
        product_filter: ProductFilter | None,
        excluded: list[str],
    ) -> RecommendationList | None:
        """Reciprocal-rank fusion of the trained model's list and the text-profile list.

        Products the model has never seen (no learned vector) still come in through the text list.
        """
        published = self._models.current() if self._models is not None else None
        if published is None:
            return None
        history = self._events.history(user_id, published.model.config.max_length)
        state = published.user_vector([event.product_id for event in reversed(history)])
        if state is None:
            return None
        depth = max(50, 3 * k)
        conditions = conditions_for(product_filter)
        exclude_points = _point_ids(excluded)
        collab_hits = self._store.search(state, depth, conditions, exclude_points, using=published.slot)
        text_hits = self._store.search(profile, depth, conditions, exclude_points)
        fused: dict[str, float] = {}
        payloads: dict[str, dict] = {}
        for weight, hits in (
            (self._collab.collab_weight, collab_hits),
            (self._collab.text_weight, text_hits),
        ):
            for rank, hit in enumerate(hits):
                fused[hit.point_id] = fused.get(hit.point_id, 0.0) + weight / (RRF_OFFSET + rank + 1)
                payloads[hit.point_id] = hit.payload
        ranked = sorted(fused, key=lambda point_id: -fused[point_id])[:k]
        items = [
            Recommendation(
                product_id=payloads[point_id]["product_id"],
                score=fused[point_id],
                signal=Signal.HYBRID,
                product=public_payload(payloads[point_id]),
            )
            for point_id in ranked
        ]
        note = f"sequence model v{published.version} fused with the text profile"
        return RecommendationList(
            signal=Signal.HYBRID, items=items, excluded_count=len(set(excluded)), notes=[note]
        )

    def for_query(
        self, query: str, k: int, product_filter: ProductFilter | None = None, exclude: Sequence[str] = ()
    ) -> RecommendationList:
        if not query.strip():
            raise InvalidInputError("the query is empty", field="query")
        vector = self._embedder.encode_queries([query])[0]
        return self._search(vector, Signal.QUERY, k, product_filter, list(exclude), [])

    def for_session(
        self, product_ids: Sequence[str], k: int, product_filter: ProductFilter | None = None
    ) -> RecommendationList:
        """A visitor's clicks in order; later clicks weigh more. Unknown ids are noted and skipped."""
        vectors = self._catalog.vectors(product_ids)
        known = [pid for pid in product_ids if pid in vectors]
        notes = (
            [f"unknown product ids ignored: {sorted(set(product_ids) - set(known))}"]
            if len(known) < len(set(product_ids))
            else []
        )
        if not known:
            notes.append("no known session products: popular products")
            return self.popular(k, product_filter, list(product_ids), notes)
        weights = np.linspace(0.5, 1.0, num=len(known))
        profile = _unit(
            np.sum([weight * vectors[pid] for weight, pid in zip(weights, known, strict=True)], axis=0)
        )
        return self._search(profile, Signal.SESSION, k, product_filter, list(product_ids), notes)

    def for_examples(
        self,
        positive: Sequence[str],
        negative: Sequence[str],
        k: int,
        product_filter: ProductFilter | None = None,
    ) -> RecommendationList:
        if not positive:
            raise InvalidInputError("give at least one positive example", field="positive")
        vectors = self._catalog.vectors([*positive, *negative])
        missing = [pid for pid in [*positive, *negative] if pid not in vectors]
        if missing:
            raise NotFoundError("product", ", ".join(missing))
        hits = self._store.recommend(
            [vectors[pid] for pid in positive],
            [vectors[pid] for pid in negative],
            k,
            conditions_for(product_filter),
            _point_ids([*positive, *negative]),
        )
        return _as_list(hits, Signal.EXAMPLES)

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
        ranked = [
            (pid, users) for pid, users in self._events.most_popular(POPULAR_POOL_SIZE) if pid not in excluded
        ]
        items: list[Recommendation] = []
        if ranked:
            top = ranked[0][1]
            order = {pid: position for position, (pid, _) in enumerate(ranked)}
            pool = [*conditions, HasIdCondition(tuple(product_point_id(pid) for pid, _ in ranked))]
            points, _ = self._store.scroll(len(ranked), conditions=pool)
            points.sort(key=lambda point: order[point.payload["product_id"]])
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

    def excluded_products(self, user_id: str) -> list[str]:
        kinds = [EventType.PURCHASE]
        if self._settings.exclude_viewed:
            kinds += [EventType.VIEW, EventType.CLICK, EventType.ADD_TO_CART, EventType.RATING]
        return sorted(self._events.products_with_events(user_id, kinds))

    def _search(
        self,
        vector: np.ndarray,
        signal: Signal,
        k: int,
        product_filter: ProductFilter | None,
        exclude: Sequence[str],
        notes: list[str],
    ) -> RecommendationList:
        conditions: list[Condition] = conditions_for(product_filter)
        hits = self._store.search(vector, k, conditions, _point_ids(exclude))
        result = _as_list(hits, signal)
        result.excluded_count = len(set(exclude))
        result.notes = notes
        return result


def _point_ids(product_ids: Sequence[str]) -> list[str]:
    return [product_point_id(pid) for pid in dict.fromkeys(product_ids)]


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return (vector / norm).astype(np.float32) if norm else vector.astype(np.float32)


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
