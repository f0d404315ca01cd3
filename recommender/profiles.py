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


def type_weight(event: StoredEvent, settings: RecommendSettings) -> float:
    """The event type's weight; a rating scales it by (value - 3) / 2: 5 attracts, 3 is neutral, 1 repels."""
    base = settings.event_weights.get(event.event_type.value, 0.0)
    if event.event_type is EventType.RATING and event.value is not None:
        base *= (event.value - 3.0) / 2.0
    return base


def is_positive(event: StoredEvent, settings: RecommendSettings) -> bool:
    return type_weight(event, settings) > 0


def event_weight(event: StoredEvent, settings: RecommendSettings, newest: datetime) -> float:
    """Type weight x recency decay, with age counted from the user's newest event (not from today), so
    a history from years ago weighs its own recent end most and never decays to nothing."""
    age_days = max(0.0, (newest - event.occurred_at).total_seconds() / 86400.0)
    # Floored so that even an event thousands of half-lives older than the newest one keeps its sign.
    return type_weight(event, settings) * max(0.5 ** (age_days / settings.half_life_days), 1e-300)


def history_weights(events: Sequence[StoredEvent], settings: RecommendSettings) -> dict[str, float]:
    """Summed weight per product; recency is measured from the newest event in ``events``."""
    if not events:
        return {}
    newest = max(event.occurred_at for event in events)
    weights: dict[str, float] = defaultdict(float)
    for event in events:
        weights[event.product_id] += event_weight(event, settings, newest)
    return dict(weights)


def weighted_profile(weights: dict[str, float], vectors: dict[str, np.ndarray]) -> np.ndarray | None:
    """Unit-length weighted mean, accumulated in float64; None when no positive evidence has a vector.

    Weights are rescaled by the largest one first, so tiny recency weights cannot underflow. When the
    negative evidence cancels the positive exactly, the positive evidence alone gives the direction.
    """
    usable = [(weights[pid], vectors[pid]) for pid in weights if pid in vectors]
    if not any(weight > 0 for weight, _ in usable):
        return None
    scale = max(abs(weight) for weight, _ in usable)
    matrix = np.asarray([vector for _, vector in usable], dtype=np.float64)
    scaled = np.asarray([weight / scale for weight, _ in usable], dtype=np.float64)
    total = scaled @ matrix
    norm = float(np.linalg.norm(total))
    if norm < 1e-12:
        total = np.clip(scaled, 0.0, None) @ matrix
        norm = float(np.linalg.norm(total))
        if norm < 1e-12:
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

    def compute(self, user_id: str) -> np.ndarray | None:
        return self.from_history(self._events.history(user_id, self._settings.history_limit))

    def from_history(self, history: Sequence[StoredEvent]) -> np.ndarray | None:
        """The profile of these events (any order); what ``compute`` stores, for a given history."""
        if not history:
            return None
        weights = history_weights(history, self._settings)
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

    def get(self, user_id: str, history: Sequence[StoredEvent] | None = None) -> np.ndarray | None:
        """The stored profile, or one computed now when events arrived before the update task ran
        (from ``history`` when the caller has already read it)."""
        stored = self._users.retrieve([user_point_id(user_id)], with_vectors=True)
        if stored and stored[0].vector is not None:
            return stored[0].vector
        return self.compute(user_id) if history is None else self.from_history(history)
