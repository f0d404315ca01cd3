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
    )
    profile = weighted_profile(weights, vectors)
    assert profile is not None
    np.testing.assert_allclose(profile, np.array([8.0, 1.0]) / np.hypot(8.0, 1.0), rtol=1e-6)


def test_no_positive_evidence_gives_no_profile() -> None:
    vectors = {"a": np.array([1.0, 0.0], dtype=np.float32)}
    assert weighted_profile({"a": -4.0}, vectors) is None
    assert weighted_profile({"unknown": 8.0}, vectors) is None


def test_recency_counts_from_the_users_newest_event_not_from_today() -> None:
    """Ratings from 20 years ago weigh as if they were recent: the newest one has full weight."""
    old = [stored("a", EventType.RATING, 7305, 5), stored("b", EventType.RATING, 7315, 5)]
    weights = history_weights(old, SETTINGS)
    assert weights["a"] == pytest.approx(4.0)
    assert weights["b"] == pytest.approx(2.0)


def test_a_twenty_year_history_with_a_default_half_life_still_has_a_profile() -> None:
    """Ten thousand ratings over twenty years at the default 30-day half-life: the oldest weights are
    thousands of half-lives down, but accumulated in float64 the profile exists and points to the recent."""
    rng = np.random.default_rng(0)
    settings = RecommendSettings()
    vectors = {f"p{i}": rng.normal(size=384).astype(np.float32) for i in range(10_000)}
    history = [stored(f"p{i}", EventType.RATING, 7300 * (1 - i / 10_000), 4) for i in range(10_000)]
    profile = weighted_profile(history_weights(history, settings), vectors)
    assert profile is not None and np.isfinite(profile).all()
    assert np.linalg.norm(profile) == pytest.approx(1.0, rel=1e-5)

    def mean_cosine(names: list[str]) -> float:
        return float(np.mean([profile @ vectors[name] / np.linalg.norm(vectors[name]) for name in names]))

    # The last month's events shape the profile; those of twenty years ago are noise-level.
    assert mean_cosine([f"p{i}" for i in range(9960, 10_000)]) > 0.08
    assert abs(mean_cosine([f"p{i}" for i in range(40)])) < 0.01


def test_float32_vectors_far_apart_in_time_do_not_underflow() -> None:
    """The weight of an event 200 half-lives before the newest is below float32's range; the sum is
    float64, so a lone positive event that old still sets the direction when nothing newer is positive."""
    vectors = {"a": np.array([1.0, 0.0], dtype=np.float32), "b": np.array([0.0, 1.0], dtype=np.float32)}
    history = [stored("a", EventType.PURCHASE, 2000), stored("b", EventType.RATING, 0, 3)]
    profile = weighted_profile(history_weights(history, SETTINGS), vectors)
    assert profile is not None
    np.testing.assert_allclose(profile, [1.0, 0.0], atol=1e-6)


def test_an_all_negative_history_has_no_profile() -> None:
    vectors = {"a": np.array([1.0, 0.0], dtype=np.float32), "b": np.array([0.0, 1.0], dtype=np.float32)}
    history = [stored("a", EventType.RATING, 0, 1), stored("b", EventType.RATING, 5, 2)]
    assert weighted_profile(history_weights(history, SETTINGS), vectors) is None


def test_negative_evidence_that_cancels_the_positive_leaves_the_positive_direction() -> None:
    vectors = {"a": np.array([1.0, 0.0], dtype=np.float32), "b": np.array([1.0, 0.0], dtype=np.float32)}
    profile = weighted_profile({"a": 4.0, "b": -4.0}, vectors)
    assert profile is not None
    np.testing.assert_allclose(profile, [1.0, 0.0], atol=1e-6)
