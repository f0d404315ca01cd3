"""The pipeline's trained parts on data whose answer is known."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from recommender.events import StoredEvent
from recommender.ids import product_point_id
from recommender.metrics import gini, intra_list_diversity, list_metrics
from recommender.models import EventType
from recommender.pipeline.artifacts import TrainedParts
from recommender.pipeline.attributes import AttributeEncoder
from recommender.pipeline.candidates import Candidate, Hit, merge
from recommender.pipeline.cooccurrence import CoOccurrence
from recommender.pipeline.features import FeatureBuilder
from recommender.pipeline.item_tower import (
    RIDGE,
    RIDGES,
    ItemTowerOutput,
    NextProducts,
    RidgeSystems,
    choose_tower,
    fit_and_predict,
    fit_prior_weight,
    set_reference_users,
)
from recommender.pipeline.pipeline import keep_new_products
from recommender.pipeline.rankers import FeatureFrame, FusionRanker
from recommender.pipeline.request import PipelineRequest
from recommender.pipeline.sources import NewArrivalsSource, SourceContext, top_indices, unit
from recommender.pipeline.stats import ItemStats
from recommender.pipeline.user_state import UserState
from recommender.settings import Settings
from recommender.store import CollectionSpec, PointToWrite
from recommender.store.edge import EdgeVectorStore
from recommender.training.held_out import held_out_next_events


def test_cooccurrence_finds_products_of_the_same_histories() -> None:
    sequences = [["a", "b", "c"], ["a", "b"], ["x", "y"], ["x", "y", "a"]]
    cooc = CoOccurrence.fit(sequences)

    def scores_for(recent: list[str]) -> dict[str, float]:
        return dict(cooc.top(recent, len(cooc.product_ids)))

    scores = scores_for(["a"])
    assert max(scores, key=lambda pid: scores[pid]) == "b"
    assert "a" not in scores and scores["b"] > scores["y"] > 0
    # Neighbours of several products add up; the list is best first, ties by product id, cut to count.
    both = scores_for(["a", "x"])
    assert both["y"] == pytest.approx(scores["y"] + scores_for(["x"])["y"])
    top = cooc.top(["a", "x"], 3)
    assert [pid for pid, _ in top] == sorted(both, key=lambda pid: (-both[pid], pid))[:3]
    assert [score for _, score in top] == pytest.approx([both[pid] for pid, _ in top])
    assert cooc.top(["unknown"], 3) == []


def test_item_tower_places_products_without_events_where_their_content_says() -> None:
    """Learned vectors that are a linear map of the text vectors: the tower recovers the map."""
    rng = np.random.default_rng(0)
    text = rng.normal(size=(300, 16))
    mapping = rng.normal(size=(16, 8))
    ids = [f"p{i}" for i in range(300)]
    learned = {pid: text[i] @ mapping for i, pid in enumerate(ids[:250])}
    output = next(
        fit_and_predict(
            ids, text, [{} for _ in ids], AttributeEncoder([]), learned, dict.fromkeys(ids[:250], 1.0)
        )
    )
    assert output.cold_ids == ids[250:]
    truth = text[250:] @ mapping
    cosine = np.sum(output.cold_vectors * truth, axis=1) / (
        np.linalg.norm(output.cold_vectors, axis=1) * np.linalg.norm(truth, axis=1)
    )
    assert cosine.mean() > 0.95


def test_out_of_fold_predictions_never_see_their_own_row() -> None:
    """A row's out-of-fold prediction comes from a map fitted without it: noise only that row carries
    is not reproduced, as an in-sample fit would."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 30))
    targets = x @ rng.normal(size=(30, 2))
    targets[7] += 50.0  # what no other row explains
    held = RidgeSystems(x, targets).out_of_fold(RIDGE)
    in_sample = x @ np.linalg.solve(x.T @ x + 10.0 * np.eye(30), x.T @ targets)
    assert abs(held[7] - targets[7]).min() > abs(in_sample[7] - targets[7]).max()
    others = np.delete(np.arange(200), 7)
    assert np.corrcoef(held[others, 0], targets[others, 0])[0, 1] > 0.9


@pytest.mark.parametrize("true_weight", [0.0, 2.0])
def test_prior_weight_is_the_one_the_next_products_were_chosen_with(true_weight: float) -> None:
    """Users pick their next product by state . vector + true_weight * prior (plus noise); the fitted
    weight recovers how much the prior counted."""
    rng = np.random.default_rng(5)
    ids = [f"p{index}" for index in range(300)]
    vectors, priors = rng.normal(size=(300, 8)), rng.normal(size=300)
    states = rng.normal(size=(400, 8))
    utility = states @ vectors.T + true_weight * priors + rng.gumbel(size=(400, 300))
    labels = [ids[index] for index in utility.argmax(axis=1)]
    tower = ItemTowerOutput(
        ids,
        priors.astype(np.float32),
        [],
        np.zeros((0, 8)),
        predicted=dict(zip(ids, vectors, strict=True)),
        predicted_prior=dict(zip(ids, priors.tolist(), strict=True)),
    )
    weight, _ = fit_prior_weight(NextProducts(states, labels, [set() for _ in labels]), tower, rng)
    if true_weight:
        assert 1.0 < weight < 4.0
    else:
        assert weight < 0.5


def test_the_tower_keeps_the_ridge_strength_that_ranks_next_products_best() -> None:
    """Content features on a small scale: the default ridge shrinks their map towards nothing, a weaker
    one recovers it. Users pick their next product by its learned vector; the choice, measured on
    predictions that never saw the product, is the weaker ridge, and it ranks the picks higher."""
    rng = np.random.default_rng(6)
    ids = [f"p{index}" for index in range(400)]
    text = rng.normal(size=(400, 12)) * 0.05
    mapping = rng.normal(size=(12, 6)) * 20
    learned = {pid: text[index] @ mapping for index, pid in enumerate(ids)}
    states = rng.normal(size=(300, 6))
    utility = states @ (text @ mapping).T + rng.gumbel(size=(300, 400)) * 0.5
    labels = [ids[index] for index in utility.argmax(axis=1)]
    picks = NextProducts(states, labels, [set() for _ in labels])
    payloads, encoder, popularity = [{} for _ in ids], AttributeEncoder([]), dict.fromkeys(ids, 1.0)
    chosen = choose_tower(
        fit_and_predict(ids, text, payloads, encoder, learned, popularity, RIDGES), picks, rng_seed=0
    )
    default = next(fit_and_predict(ids, text, payloads, encoder, learned, popularity))
    _, default_mrr = fit_prior_weight(picks, default, np.random.default_rng(0))
    assert chosen.ridge < RIDGE
    assert chosen.selection_mrr > default_mrr + 0.01
    assert chosen.summary()["ridge"] == chosen.ridge


def test_new_arrivals_add_the_prior_with_its_weight() -> None:
    rng = np.random.default_rng(4)
    cold_ids = [f"c{index}" for index in range(40)]
    vectors, priors = rng.normal(size=(40, 8)).astype(np.float32), rng.normal(size=40)
    tower = ItemTowerOutput(cold_ids, priors.astype(np.float32), cold_ids, vectors, prior_weight=1e6)
    user = UserState(collab=rng.normal(size=8).astype(np.float32))
    context = SourceContext(
        PipelineRequest(k=5, user_id="u"), user, [], [], None, TrainedParts(tower=tower), ItemStats()
    )

    def best(weight: float | None) -> list[str]:
        source = NewArrivalsSource(store=None, pool=100, prior_weight=weight)  # type: ignore[arg-type]
        return [hit.product_id for hit in source.candidates(context, 5)]

    assert best(None) == [cold_ids[index] for index in np.argsort(-priors)[:5]]  # the trained weight
    assert best(0.0) == [cold_ids[index] for index in np.argsort(-(vectors @ user.collab))[:5]]


def test_attribute_encoder_keeps_numbers_and_codes_names() -> None:
    payloads = [
        {"price": 10.0, "attributes": {"year": 1999, "colour": "red"}},
        {"price": 20.0, "attributes": {"year": "2001", "colour": "blue"}},
    ]
    encoder = AttributeEncoder.fit(["price", "year", "colour"], payloads)
    assert encoder.categorical_columns == ["attr_colour"]
    assert encoder.encode(payloads[1]) == [20.0, 2001.0, 0.0]  # blue sorts first
    unknown = encoder.encode({"attributes": {"colour": "green"}})
    assert math.isnan(unknown[0]) and math.isnan(unknown[1]) and unknown[2] == -1.0
    assert AttributeEncoder.from_dict(encoder.as_dict()).encode(payloads[0]) == encoder.encode(payloads[0])


def test_item_stats_count_recent_from_the_newest_event() -> None:
    newest = datetime(2001, 6, 1, tzinfo=UTC)
    events = [
        ("u1", "old", newest - timedelta(days=400)),
        ("u2", "old", newest - timedelta(days=300)),
        ("u1", "new", newest),
    ]
    stats = ItemStats.from_events(events, recent_days=30)
    assert stats.most_popular(1) == [("old", 2)] and stats.trending(5) == [("new", 1)]
    assert stats.age_days("old") == pytest.approx(400) and stats.age_days("unseen") == 0.0


def test_fusion_sums_weighted_reciprocal_ranks() -> None:
    merged = list(merge([("a", [Hit("x", 1.0, {}), Hit("y", 0.5, {})]), ("b", [Hit("y", 9.0, {})])]).values())
    scores = FusionRanker({"a": 1.0, "b": 2.0}).score(FeatureFrame([], np.zeros((2, 0)), merged))
    assert scores[0] == pytest.approx(1 / 61) and scores[1] == pytest.approx(1 / 62 + 2 / 61)


def test_item_features_follow_a_products_new_fields_and_new_statistics() -> None:
    """The builder keeps what it read of a product between requests: a product read again (a new payload)
    and new statistics must show in the next frame."""
    builder = FeatureBuilder(None, ["a"], [], {"a": 1.0})  # type: ignore[arg-type]  # history given below
    history = {"h": {"product_id": "h", "price": 10.0, "category": "A"}}
    user = UserState(positives=["h"], history_payloads=history)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    two_users = ItemStats.from_events([("u1", "x", now), ("u2", "x", now)], recent_days=30)

    def frame(payload: dict, stats: ItemStats) -> FeatureFrame:
        candidate = Candidate("x", payload, {"a": 0.5}, {"a": 0})
        request = PipelineRequest(k=1, user_id="u")
        return builder.frame(
            request, user, [candidate], None, TrainedParts(), stats, AttributeEncoder([]), 10
        )

    payload = {"product_id": "x", "price": 20.0, "category": "A"}
    first = frame(payload, two_users)
    assert first.column("relative_price")[0] == 2.0 and first.column("category_affinity")[0] == 1.0
    assert first.column("popularity")[0] == pytest.approx(math.log1p(2))
    assert first.column("fusion_score")[0] == pytest.approx(1 / 61)
    assert first.column("source_a_score")[0] == 0.5 and first.column("source_a_rank")[0] == 0
    read_again = frame({"product_id": "x", "price": 5.0, "category": "B"}, two_users)
    assert read_again.column("relative_price")[0] == 0.5 and read_again.column("category_affinity")[0] == 0.0
    three_users = ItemStats.from_events([(f"u{i}", "x", now) for i in range(3)], recent_days=30)
    assert frame(payload, three_users).column("popularity")[0] == pytest.approx(math.log1p(3))


def test_held_out_event_is_the_newest_product_new_to_the_user() -> None:
    start = datetime(2020, 1, 1, tzinfo=UTC)

    def event(product: str, minutes: int, kind: EventType = EventType.VIEW, value: float | None = None):
        return StoredEvent("u", product, kind, value, start + timedelta(minutes=minutes))

    events = [
        event("a", 0, EventType.PURCHASE),
        event("b", 1),
        event("c", 2, EventType.RATING, 1),
        event("a", 3),
    ]
    (held,) = held_out_next_events(events, Settings())
    assert held.label.product_id == "c"  # the repeat of "a" is not new
    assert [e.product_id for e in held.history] == ["b", "a"]  # newest first, before the label
    assert held_out_next_events([event("a", 0, EventType.RATING, 1), event("b", 1)], Settings()) == []


def test_exposure_metrics() -> None:
    assert gini(np.array([1, 1, 1, 1])) == pytest.approx(0.0)
    assert gini(np.array([0, 0, 0, 4])) == pytest.approx(0.75)
    vectors = {"a": np.array([1.0, 0.0]), "b": np.array([1.0, 0.0]), "c": np.array([0.0, 1.0])}
    assert intra_list_diversity([["a", "b"]], vectors) == pytest.approx(0.0, abs=1e-9)
    assert intra_list_diversity([["a", "c"]], vectors) == pytest.approx(1.0)
    metrics = list_metrics(
        [["a", "b"], ["c", "a"]], ["b", "x"], ["a", "b", "c", "d"], {"a": 5, "b": 1}, {"c"}, vectors
    )
    assert metrics["recall@10"] == 0.5 and metrics["ndcg@10"] == pytest.approx(0.5 / math.log2(3))
    assert metrics["coverage@10"] == 0.75 and metrics["cold_exposure@10"] == 0.25


def _candidates(ids: list[str]) -> list[Candidate]:
    return [Candidate(pid, {"product_id": pid}, ranks={"new": 99 - i}) for i, pid in enumerate(ids)]


def test_new_products_take_the_last_places_of_the_first_page() -> None:
    stats = ItemStats(users={f"w{i}": 5 for i in range(20)})
    ordered = _candidates([*(f"w{i}" for i in range(12)), "n1", "w12", "n2"])
    ids = [c.product_id for c in keep_new_products(ordered, stats, 2, 10)]
    # In the new-arrivals source's order: it ranks n2 first (rank 85 < 87).
    assert ids[:10] == [*(f"w{i}" for i in range(8)), "n2", "n1"]
    assert ids[10:] == ["w8", "w9", "w10", "w11", "w12"]  # nothing lost
    one = [c.product_id for c in keep_new_products(ordered, stats, 1, 10)]
    assert one[9] == "n2"
    # Only new products ranked within max_rank qualify: n2 is 15th, n1 13th.
    capped = [c.product_id for c in keep_new_products(ordered, stats, 2, 10, max_rank=14)]
    assert capped[8:10] == ["w8", "n1"] and "n2" not in capped[:10]
    assert keep_new_products(ordered, stats, 2, 10, max_rank=12) == ordered
    # A product without events the ranker put in the first page keeps its place and counts as one of
    # them: only products with events give up theirs.
    ranked_in = _candidates([*(f"w{i}" for i in range(9)), "n0", "w9", "n1", "n2"])
    three = [c.product_id for c in keep_new_products(ranked_in, stats, 3, 10)]
    assert three[:10] == [*(f"w{i}" for i in range(7)), "n0", "n2", "n1"]
    assert three[10:] == ["w7", "w8", "w9"]


@pytest.mark.parametrize("count", [0, 1, 7, 40, 200, 500])
def test_top_indices_is_a_stable_argsort_cut(count: int) -> None:
    rng = np.random.default_rng(count)
    scores = rng.integers(0, 12, size=300).astype(np.float64)  # many ties, at every cut
    scores[rng.choice(300, 20, replace=False)] = np.nan
    expected = np.argsort(-scores, kind="stable")[:count]
    assert top_indices(scores, count).tolist() == expected.tolist()


def test_new_arrivals_score_only_the_pool_with_the_highest_predicted_popularity() -> None:
    rng = np.random.default_rng(3)
    cold_ids = [f"c{index}" for index in range(50)]
    vectors = rng.normal(size=(50, 8)).astype(np.float32)
    priors = rng.normal(size=50)
    tower = ItemTowerOutput(cold_ids, priors.astype(np.float32), cold_ids, vectors)
    parts = TrainedParts(tower=tower)
    user = UserState(collab=rng.normal(size=8).astype(np.float32))
    stats = ItemStats(users={"c0": 3})  # c0 has events now: no longer new

    def best(pool: int) -> list[str]:
        source = NewArrivalsSource(store=None, pool=pool)  # type: ignore[arg-type]  # unfiltered: no reads
        context = SourceContext(PipelineRequest(k=5, user_id="u"), user, [], [], None, parts, stats)
        return [hit.product_id for hit in source.candidates(context, 5)]

    scores = vectors @ user.collab
    pool = [index for index in np.argsort(-priors) if index != 0][:10]
    assert best(10) == [cold_ids[i] for i in sorted(pool, key=lambda i: -scores[i])[:5]]
    everyone = [index for index in np.argsort(-scores) if index != 0][:5]
    assert best(100) == [cold_ids[i] for i in everyone]
    assert best(10) != best(100)  # the pool did change the answer


def _users_choosing_by_text(text_weight: float, seed: int) -> tuple[NextProducts, ItemTowerOutput]:
    """Users pick their next product by state . vector + prior + text_weight * profile . text (plus
    noise); every product as the tower would see it without events."""
    rng = np.random.default_rng(seed)
    ids = [f"p{index}" for index in range(300)]
    vectors, priors = rng.normal(size=(300, 8)), rng.normal(size=300)
    text = rng.normal(size=(300, 16))
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    states = rng.normal(size=(500, 8))
    profiles = rng.normal(size=(500, 16))
    profiles /= np.linalg.norm(profiles, axis=1, keepdims=True)
    utility = states @ vectors.T + priors + text_weight * profiles @ text.T + rng.gumbel(size=(500, 300))
    labels = [ids[index] for index in utility.argmax(axis=1)]
    picks = NextProducts(states, labels, [set() for _ in labels], profiles.astype(np.float32))
    tower = ItemTowerOutput(
        ids,
        priors.astype(np.float32),
        [],
        np.zeros((0, 8)),
        predicted=dict(zip(ids, vectors, strict=True)),
        predicted_prior=dict(zip(ids, priors.tolist(), strict=True)),
        text=dict(zip(ids, text.astype(np.float32), strict=True)),
    )
    return picks, tower


def test_the_text_weight_is_fitted_where_users_chose_by_the_products_text() -> None:
    """Where users' next products match their text profile, the new-arrivals score learns a weight for it
    and ranks those products higher than the prior and the predicted vector alone (also for users it was
    not fitted on); where they do not, the gain is noise and the weight stays 0."""
    picks, tower = _users_choosing_by_text(8.0, seed=7)
    chosen = choose_tower([tower], picks, rng_seed=0)
    assert chosen.text_weight > 1.0
    assert chosen.selection_mrr > chosen.selection_mrr_without_text + 0.02
    assert chosen.text_gain > 0.02 and chosen.text_gain > 2 * chosen.text_gain_se
    assert chosen.summary()["text_weight"] == chosen.text_weight
    assert chosen.summary()["text_gain_se"] == chosen.text_gain_se > 0
    set_reference_users(chosen, picks, seed=0)
    assert chosen.reference_profiles is not None and len(chosen.reference_profiles) == 500

    picks, tower = _users_choosing_by_text(0.0, seed=7)
    unrelated = choose_tower([tower], picks, rng_seed=0)
    assert unrelated.text_gain < 2 * unrelated.text_gain_se
    assert unrelated.text_weight == 0.0 and unrelated.selection_mrr == unrelated.selection_mrr_without_text
    without_profiles = NextProducts(picks.states, picks.labels, picks.seen)
    _, tower = _users_choosing_by_text(8.0, seed=7)
    assert choose_tower([tower], without_profiles, rng_seed=0).text_weight == 0.0
    picks, tower = _users_choosing_by_text(8.0, seed=7)
    not_fitted = choose_tower([tower], picks, rng_seed=0, fit_text=False)  # the setting off
    assert not_fitted.text_weight == 0.0 and not_fitted.selection_mrr == not_fitted.selection_mrr_without_text


class CountingStore(EdgeVectorStore):
    """The real embedded store, counting the points each ``retrieve`` asks for."""

    asked: list[int]

    def retrieve(self, point_ids, with_vectors=False, payload_keys=None, vector_name=None):  # type: ignore[no-untyped-def]
        self.asked.append(len(point_ids))
        return super().retrieve(point_ids, with_vectors, payload_keys, vector_name)


def test_new_arrivals_add_the_text_against_the_profile_with_its_weight(tmp_path: Path) -> None:
    """The served score reads the new products' stored text vectors: with a large text weight the
    products nearest the user's text profile come first, and the saved tower keeps the weight."""
    rng = np.random.default_rng(8)
    cold_ids = [f"c{index}" for index in range(40)]
    text = rng.normal(size=(40, 4)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    store = CountingStore(tmp_path / "store", CollectionSpec("new", "text", 4, "test-model"))
    store.upsert(
        [PointToWrite(product_point_id(pid), text[i], {"product_id": pid}) for i, pid in enumerate(cold_ids)]
    )
    vectors, priors = rng.normal(size=(40, 8)).astype(np.float32), rng.normal(size=40)
    tower = ItemTowerOutput(
        cold_ids,
        priors.astype(np.float32),
        cold_ids,
        vectors,
        text_weight=1e6,
        text_gain=0.03,
        text_gain_se=0.01,
    )
    profile = unit(rng.normal(size=4)).astype(np.float32)
    user = UserState(collab=rng.normal(size=8).astype(np.float32), profile=profile)
    context = SourceContext(
        PipelineRequest(k=5, user_id="u"), user, [], [], None, TrainedParts(tower=tower), ItemStats()
    )

    def best(weight: float | None, parts: TrainedParts) -> list[str]:
        source = NewArrivalsSource(store, pool=100, text_weight=weight)
        return [hit.product_id for hit in source.candidates(replace(context, parts=parts), 5)]

    by_text = [cold_ids[index] for index in np.argsort(-(text @ profile))[:5]]
    source = NewArrivalsSource(store, pool=100)
    store.asked = []
    assert [hit.product_id for hit in source.candidates(context, 5)] == by_text
    assert store.asked == [40]  # every new product's text, read once
    after_events = replace(context, stats=ItemStats(users={by_text[0]: 1}))
    assert [hit.product_id for hit in source.candidates(after_events, 5)][:4] == by_text[1:]
    assert store.asked == [40]  # new statistics, same tower: nothing read again
    assert best(None, context.parts) == by_text
    assert best(0.0, context.parts) == [cold_ids[index] for index in np.argsort(-(vectors @ user.collab))[:5]]
    TrainedParts(tower=tower).save(tmp_path)
    loaded = TrainedParts.load(tmp_path)
    assert loaded.tower is not None and loaded.tower.text_weight == 1e6
    assert loaded.tower.summary() == tower.summary()  # the choice's figures, as GET /models/sequence shows
    assert best(None, loaded) == best(None, context.parts)
    store.close()
