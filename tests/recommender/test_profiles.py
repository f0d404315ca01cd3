from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from recommender.events import StoredEvent
from recommender.models import EventType
from recommender.profiles import event_weight, history_weights, weighted_profile
from recommender.settings import RecommendSettings

NOW = datetime(2026, 1, 31, tzinfo=UTC)
SETTINGS = RecommendSettings(half_life_days=10)


def stored(product: str, kind: EventType, days_ago: float, value: float | None = None) -> StoredEvent:
    return StoredEvent("u", product, kind, value, NOW - timedelta(days=days_ago))


def test_weight_halves_every_half_life_and_follows_event_type() -> None:
    fresh = event_weight(stored("a", EventType.PURCHASE, 0), SETTINGS, NOW)
    assert fresh == pytest.approx(8.0)
    assert event_weight(stored("a", EventType.PURCHASE, 10), SETTINGS, NOW) == pytest.approx(4.0)
    assert event_weight(stored("a", EventType.VIEW, 0), SETTINGS, NOW) == pytest.approx(1.0)


def test_ratings_above_three_attract_and_below_repel() -> None:
    assert event_weight(stored("a", EventType.RATING, 0, 5), SETTINGS, NOW) == pytest.approx(4.0)
    assert event_weight(stored("a", EventType.RATING, 0, 3), SETTINGS, NOW) == 0.0
    assert event_weight(stored("a", EventType.RATING, 0, 1), SETTINGS, NOW) == pytest.approx(-4.0)


def test_profile_is_the_unit_weighted_mean_of_known_products() -> None:
    vectors = {"a": np.array([1.0, 0.0], dtype=np.float32), "b": np.array([0.0, 1.0], dtype=np.float32)}
    weights = history_weights(
        [
            stored("a", EventType.PURCHASE, 0),
            stored("b", EventType.VIEW, 0),
            stored("unknown", EventType.PURCHASE, 0),
        ],
        SETTINGS,
        NOW,
    )
    profile = weighted_profile(weights, vectors)
    assert profile is not None
    np.testing.assert_allclose(profile, np.array([8.0, 1.0]) / np.hypot(8.0, 1.0), rtol=1e-6)


def test_no_positive_evidence_gives_no_profile() -> None:
    vectors = {"a": np.array([1.0, 0.0], dtype=np.float32)}
    assert weighted_profile({"a": -4.0}, vectors) is None
    assert weighted_profile({"unknown": 8.0}, vectors) is None
