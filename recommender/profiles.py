"""User profile vectors: a recency- and event-type-weighted mean of the vectors of the user's history."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from recommender.catalog import Catalog
from recommender.events import EventStore, StoredEvent
from recommender.ids import user_point_id
from recommender.models import EventType
from recommender.settings import RecommendSettings
from recommender.store import PointToWrite, VectorStore


def event_weight(event: StoredEvent, settings: RecommendSettings, now: datetime) -> float:
    """Type weight x recency decay (half-life). A rating of 3 is neutral; below it pushes away."""
    base = settings.event_weights.get(event.event_type.value, 0.0)
    if event.event_type is EventType.RATING and event.value is not None:
        base *= (event.value - 3.0) / 2.0
    age_days = max(0.0, (now - event.occurred_at).total_seconds() / 86400.0)
    return base * 0.5 ** (age_days / settings.half_life_days)


def history_weights(
    events: Sequence[StoredEvent], settings: RecommendSettings, now: datetime
) -> dict[str, float]:
    weights: dict[str, float] = defaultdict(float)
    for event in events:
        weights[event.product_id] += event_weight(event, settings, now)
    return dict(weights)


def weighted_profile(weights: dict[str, float], vectors: dict[str, np.ndarray]) -> np.ndarray | None:
    """Unit-length weighted mean; None when no positive evidence has a vector."""
    usable = [(weights[pid], vectors[pid]) for pid in weights if pid in vectors]
    if not any(weight > 0 for weight, _ in usable):
        return None
    total = np.sum([weight * vector for weight, vector in usable], axis=0)
    norm = float(np.linalg.norm(total))
    if norm == 0.0:
        return None
    return (total / norm).astype(np.float32)


class ProfileService:
    def __init__(
        self, events: EventStore, catalog: Catalog, users: VectorStore, settings: RecommendSettings
    ) -> None:
        self._events = events
        self._catalog = catalog
        self._users = users
        self._settings = settings

    def compute(self, user_id: str, now: datetime | None = None) -> np.ndarray | None:
        history = self._events.history(user_id, self._settings.history_limit)
        if not history:
            return None
        weights = history_weights(history, self._settings, now or datetime.now(UTC))
        return weighted_profile(weights, self._catalog.vectors(list(weights)))

    def refresh(self, user_ids: Sequence[str]) -> int:
        """Recompute and store the profiles of these users; returns how many have a profile now."""
        points = []
        removed = []
        for user_id in dict.fromkeys(user_ids):
            vector = self.compute(user_id)
            if vector is None:
                removed.append(user_point_id(user_id))
                continue
            payload = {"user_id": user_id, "updated_at": datetime.now(UTC).isoformat()}
            points.append(PointToWrite(user_point_id(user_id), vector, payload))
        self._users.upsert(points)
        self._users.delete(removed)
        return len(points)

    def get(self, user_id: str) -> np.ndarray | None:
        """The stored profile, or one computed now when events arrived before the update task ran."""
        stored = self._users.retrieve([user_point_id(user_id)], with_vectors=True)
        if stored and stored[0].vector is not None:
            return stored[0].vector
        return self.compute(user_id)
