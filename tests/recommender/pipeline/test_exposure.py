"""Which personal lists get the new-product places: a share per new product, best matched first."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.pipeline.artifacts import TrainedParts
from recommender.pipeline.exposure import NewProductExposure, drawn, place_count, place_share
from recommender.pipeline.item_tower import ItemTowerOutput, NextProducts, set_reference_users
from recommender.pipeline.request import PipelineRequest
from recommender.pipeline.sources import NewArrivalsSource, SourceContext
from recommender.pipeline.stats import ItemStats
from recommender.pipeline.user_state import UserState


def test_the_share_of_lists_grows_with_the_number_of_new_products() -> None:
    assert place_share(3, per_product=0.05, places=1) == pytest.approx(0.15)
    assert place_share(3, per_product=0.05, places=2) == pytest.approx(0.075)  # two to a list
    assert place_share(19, per_product=0.05, places=1) == pytest.approx(0.95)
    assert place_share(55, per_product=0.05, places=1) == 1.0  # every list, no more
    assert place_share(0, per_product=0.05, places=1) == 0.0
    assert place_share(3, per_product=0.05, places=0) == 0.0


def test_the_places_in_a_list_grow_once_every_list_has_one() -> None:
    # A handful of new products share one place in some of the lists.
    assert place_count(3, per_product=0.05, slots=1, slots_max=3) == 1
    assert place_count(20, per_product=0.05, slots=1, slots_max=3) == 1  # every list, one place each
    # More than 20 at 5% each: more places, so that each still takes a place in about 5% of the lists.
    assert place_count(21, per_product=0.05, slots=1, slots_max=3) == 2
    assert place_count(55, per_product=0.05, slots=1, slots_max=3) == 3
    assert place_share(55, per_product=0.05, places=3) == pytest.approx(55 * 0.05 / 3)
    assert place_count(500, per_product=0.05, slots=1, slots_max=3) == 3  # bounded
    assert place_count(55, per_product=0.05, slots=1, slots_max=1) == 1  # the places never grow
    assert place_count(3, per_product=0.05, slots=2, slots_max=3) == 2  # at least the configured places
    assert place_count(0, per_product=0.05, slots=1, slots_max=3) == 0
    assert place_count(55, per_product=0.05, slots=0, slots_max=3) == 0  # 0 slots: none
    assert place_count(55, per_product=0.05, slots=4, slots_max=3) == 4  # never fewer than the slots


def test_an_admitted_list_gets_the_exposures_places() -> None:
    reference = np.arange(100, dtype=float)
    exposure = NewProductExposure.from_reference(0.5, reference, places=3)
    assert exposure.places_for("u", 99.0) == 3 and exposure.places_for("u", 1.0) == 0
    assert NewProductExposure.every_list(2).places_for("u", None) == 2


def test_the_best_matched_users_get_the_places() -> None:
    reference = np.random.default_rng(0).normal(size=400)
    exposure = NewProductExposure.from_reference(0.25, reference)
    admitted = [exposure.admits(f"u{i}", float(score)) for i, score in enumerate(reference)]
    assert np.mean(admitted) == pytest.approx(0.25, abs=0.01)
    cut = min(score for score, taken in zip(reference, admitted, strict=True) if taken)
    assert all(score < cut for score, taken in zip(reference, admitted, strict=True) if not taken)
    assert exposure.admits("anyone", float(reference.max() + 1))
    assert not exposure.admits("anyone", float(reference.min() - 1))


def test_without_a_score_the_lists_are_drawn_by_user_id() -> None:
    exposure = NewProductExposure.from_reference(0.3, None)
    assert exposure.threshold is None
    users = [f"user-{index}" for index in range(5000)]
    share = np.mean([exposure.admits(user, None) for user in users])
    assert share == pytest.approx(0.3, abs=0.02)
    assert [exposure.admits(user, None) for user in users[:50]] == [drawn(u) < 0.3 for u in users[:50]]
    assert NewProductExposure.every_list().admits("u", None)
    assert not NewProductExposure.from_reference(0.0, np.ones(5)).admits("u", 10.0)


def test_the_reference_is_the_training_users_best_score_over_products_still_without_events() -> None:
    rng = np.random.default_rng(5)
    cold_ids = [f"c{index}" for index in range(30)]
    vectors = rng.normal(size=(30, 8)).astype(np.float32)
    priors = rng.normal(size=30).astype(np.float32)
    states = rng.normal(size=(700, 8)).astype(np.float32)
    picks = NextProducts(states, ["c0"] * 700, [set() for _ in range(700)])
    tower = ItemTowerOutput(cold_ids, priors, cold_ids, vectors, prior_weight=0.5)
    set_reference_users(tower, picks, seed=1)
    references = tower.reference_states
    assert references is not None and tower.reference_profiles is None  # no text weight, no profiles kept
    assert len(references) == 500 and {tuple(row) for row in references} <= {tuple(row) for row in states}
    stats = ItemStats(users={"c0": 2, "c1": 1})  # two have had events since training
    context = SourceContext(
        PipelineRequest(k=5, user_id="u"),
        UserState(collab=states[0]),
        [],
        [],
        None,
        TrainedParts(tower=tower),
        stats,
    )
    source = NewArrivalsSource(store=None, pool=100)  # type: ignore[arg-type]
    assert source.still_new_count(context) == 28
    expected = (references @ vectors[2:].T + 0.5 * priors[2:]).max(axis=1)
    assert np.allclose(source.reference_best(context), expected, atol=1e-5)
    # The user's own best score is on the same scale: the first hit of the source.
    best = source.candidates(context, 1)[0].score
    assert best == pytest.approx(float((vectors[2:] @ states[0] + 0.5 * priors[2:]).max()), abs=1e-5)
