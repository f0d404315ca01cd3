"""The learned ranker is published only where it beats rank fusion and each source's own order on users it
never saw; otherwise the best of those serves."""

from __future__ import annotations

from pathlib import Path

import lightgbm
import numpy as np
import pytest

from recommender.pipeline.rankers import FeatureFrame, LearnedRanker
from recommender.settings import Settings
from recommender.training.parts import (
    RANKER_FOLDS,
    ROUND_STEP,
    RankerFitter,
    RankerGroup,
    fit_gated_ranker,
    label_ndcg,
)
from recommender.training.user_split import judges
from tests.conftest import make_settings

COLUMNS = ["signal", "noise"]


def groups(
    signal_finds_label: bool, fusion_finds_label: bool, count: int = 120, source_finds_label: bool = False
) -> list[RankerGroup]:
    """Requests of 30 candidates with one positive. Where a side "finds" the label it scores the positive
    highest; otherwise its scores are noise. The "collab" source's own order is the third side."""
    rng = np.random.default_rng(7)
    made = []
    for index in range(count):
        labels = np.zeros(30)
        labels[rng.integers(30)] = 1.0

        def side(finds: bool, labels: np.ndarray = labels) -> np.ndarray:
            return labels + rng.normal(0, 0.1, 30) if finds else rng.normal(0, 1, 30)

        signal, fusion, collab = side(signal_finds_label), side(fusion_finds_label), side(source_finds_label)
        matrix = np.column_stack([signal, rng.normal(0, 1, 30)])
        made.append(RankerGroup(matrix, labels, fusion, {"collab": collab}, f"shopper-{index}"))
    return made


def test_label_ndcg_reads_the_positive_place() -> None:
    labels = np.array([0.0, 0.0, 1.0, 0.0])
    assert label_ndcg(np.array([4.0, 3.0, 2.0, 1.0]), labels) == 0.5  # third: 1 / log2(4)
    assert label_ndcg(np.array([0.0, 0.0, 9.0, 0.0]), labels) == 1.0
    # Ties keep the candidates' order, as the pipeline's stable sort does.
    assert label_ndcg(np.zeros(4), labels) == 0.5
    assert label_ndcg(np.array([4.0, 3.0, 2.0, 1.0]), labels, k=2) == 0.0


def test_a_ranker_that_beats_fusion_is_published_with_its_figures(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, pipeline={"ranker_min_users": 20})
    trained = fit_gated_ranker(groups(True, False), COLUMNS, [], settings, seed=1)
    assert trained.ranker is not None
    figures = trained.validation
    assert figures["published"] is True and figures["serves"] == "learned"
    # Trained on every user, judged on those the sequence model was not chosen on.
    assert figures["trained_users"] == 120 and figures["judges_apart"]
    assert figures["users"] == sum(judges(f"shopper-{index}", 0.5) for index in range(120))
    assert set(figures["objectives"]) == {"binary", "lambdarank"}
    assert figures["objective"] in figures["objectives"]
    assert figures["ranker_ndcg_at_10"] > 0.9 > 0.5 > figures["fusion_ndcg_at_10"]
    assert trained.note.startswith("learned ranker from 120 users")
    assert trained.ranker.meta["objective"] == figures["objective"]


def test_the_rounds_are_chosen_on_every_users_out_of_fold_score(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, pipeline={"ranker_min_users": 20}, experimental={"pipeline": {"ranker_objective": "binary"}}
    )
    trained = fit_gated_ranker(groups(True, False), COLUMNS, [], settings, seed=1)
    figures = trained.validation
    # Chosen among multiples of ROUND_STEP (the test below checks the choice); every fold ranker whose mean
    # is published has that many trees, far fewer than the 300 allowed where the signal is this plain.
    assert figures["rounds"] % ROUND_STEP == 0 and figures["rounds"] < 300
    assert trained.ranker is not None and trained.ranker.fold_mean
    saved = tmp_path / "saved"
    saved.mkdir()
    trained.ranker.save(saved)
    for index in range(RANKER_FOLDS):
        assert (
            lightgbm.Booster(model_file=str(saved / f"ranker-fold-{index}.txt")).num_trees()
            == figures["rounds"]
        )


def test_the_published_ranker_is_the_mean_of_the_fold_rankers_the_gate_judged(tmp_path: Path) -> None:
    """Served: the five fold rankers' mean, each of them judged on users it never saw; no ranker refitted on
    every user without a held-out check. Saved and read back (compiled), it scores the same."""
    settings = make_settings(tmp_path, pipeline={"ranker_min_users": 20})
    rng = np.random.default_rng(5)
    noisy = [
        RankerGroup(
            group.matrix + rng.normal(0, 0.3, group.matrix.shape),
            group.labels,
            group.fusion,
            {},
            group.user_id,
        )
        for group in groups(True, False)
    ]
    trained = fit_gated_ranker(noisy, COLUMNS, [], settings, seed=1)
    ranker = trained.ranker
    assert ranker is not None and ranker.fold_mean and ranker.booster is None
    assert len(ranker.fold_rankers) == RANKER_FOLDS == ranker.meta["fold_rankers"]
    frame = FeatureFrame(COLUMNS, np.random.default_rng(0).normal(0, 1, (30, len(COLUMNS))), [])
    each = np.asarray([fold.score(frame) for fold in ranker.fold_rankers])
    assert len({tuple(scores) for scores in each.round(9)}) == RANKER_FOLDS  # five different rankers
    np.testing.assert_allclose(ranker.score(frame), each.mean(axis=0))
    saved = tmp_path / "saved"
    saved.mkdir()
    ranker.save(saved)
    assert not (saved / "ranker.txt").exists()
    loaded = LearnedRanker.load(saved)
    assert loaded is not None and loaded.fold_mean and loaded.compiled and loaded.meta == ranker.meta
    np.testing.assert_allclose(loaded.score(frame), ranker.score(frame), rtol=1e-9)
    assert loaded.importance() == pytest.approx(ranker.importance())


def test_out_of_fold_scores_are_each_users_under_the_fold_ranker_at_the_best_rounds() -> None:
    rng = np.random.default_rng(5)
    noisy = [
        RankerGroup(group.matrix + rng.normal(0, 0.5, group.matrix.shape), group.labels, group.fusion)
        for group in groups(True, False)
    ]
    fitter = RankerFitter(noisy, COLUMNS, [])
    folds = [list(range(start, len(noisy), 3)) for start in range(3)]
    params = {"objective": "lambdarank", "num_leaves": 3, "min_data_in_leaf": 20, "verbosity": -1}
    fitted = fitter.out_of_fold(params, 40, folds)
    counts = list(range(ROUND_STEP, 41, ROUND_STEP))
    # Each group scored again by LightGBM's own predict at every count checked.
    by_count = np.zeros((len(counts), len(noisy)))
    for (_, booster), fold in zip(fitted.folds, folds, strict=True):
        for index in fold:
            for row, count in enumerate(counts):
                scores = booster.predict(noisy[index].matrix, num_iteration=count)
                by_count[row, index] = label_ndcg(np.asarray(scores), noisy[index].labels)
    means = by_count.mean(axis=1)
    chosen = fitted.rounds[0]
    assert set(fitted.rounds) == {chosen} and chosen in counts
    assert means[counts.index(chosen)] == means.max() > means.min()
    np.testing.assert_allclose(fitted.scores, by_count[counts.index(chosen)])


def test_a_ranker_is_judged_on_the_features_as_served_not_as_it_learned_them(tmp_path: Path) -> None:
    """Cold-start dropout shows the ranker some candidates without their events while it learns; it is
    judged on every candidate as the pipeline will score it."""
    settings = make_settings(tmp_path, pipeline={"ranker_min_users": 20})
    rng = np.random.default_rng(9)
    learned = groups(True, False)
    # As served, the signal column says nothing: the ranker learned from a signal it will not see.
    for group in learned:
        group.served = np.column_stack([rng.normal(0, 1, len(group.labels)), group.matrix[:, 1]])
    trained = fit_gated_ranker(learned, COLUMNS, [], settings, seed=1)
    assert trained.validation["ranker_ndcg_at_10"] < 0.5
    for group in learned:
        group.served = None
    assert fit_gated_ranker(learned, COLUMNS, [], settings, seed=1).validation["ranker_ndcg_at_10"] > 0.9


def test_a_ranker_that_loses_to_fusion_is_not_published_and_says_why(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, pipeline={"ranker_min_users": 20})
    trained = fit_gated_ranker(groups(False, True), COLUMNS, [], settings, seed=1)
    assert trained.ranker is None
    figures = trained.validation
    assert figures["published"] is False and figures["serves"] == "fusion"
    assert figures["fusion_ndcg_at_10"] > 0.9 > figures["ranker_ndcg_at_10"]
    assert figures["sources"]["collab"] < 0.5
    assert figures["difference"] < 0
    assert trained.note.startswith("rank fusion serves: the learned ranker scored validation NDCG@10")
    assert f"{figures['fusion_ndcg_at_10']:.4f}" in trained.note


def test_the_gate_can_be_switched_off_and_the_objective_fixed(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        pipeline={"ranker_min_users": 20, "ranker_gate": False},
        experimental={"pipeline": {"ranker_objective": "lambdarank"}},
    )
    trained = fit_gated_ranker(groups(False, True), COLUMNS, [], settings, seed=1)
    assert trained.ranker is not None
    assert trained.validation["objectives"].keys() == {"lambdarank"}
    assert trained.note.endswith("(published because ranker_gate is off)")


def test_each_parameter_set_competes_with_every_objective_and_the_best_is_published(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        pipeline={"ranker_min_users": 20},
        # Leaves of at least 5,000 rows: on 96 training users of 30 candidates no tree can split.
        experimental={"pipeline": {"ranker_parameters": [{"min_data_in_leaf": 5000, "num_leaves": 3}]}},
    )
    trained = fit_gated_ranker(groups(True, False), COLUMNS, [], settings, seed=1)
    figures = trained.validation
    assert list(figures["objectives"]) == [
        "binary",
        "lambdarank",
        "binary (min_data_in_leaf=5000, num_leaves=3)",
        "lambdarank (min_data_in_leaf=5000, num_leaves=3)",
    ]
    # The set that cannot split learns nothing, so the defaults win and the published ranker has theirs.
    starved = [score for name, score in figures["objectives"].items() if "min_data_in_leaf" in name]
    assert max(starved) < 0.5 < 0.9 < figures["ranker_ndcg_at_10"]
    assert figures["objective"] in ("binary", "lambdarank")
    assert trained.ranker is not None
    assert {fold.booster.params["min_data_in_leaf"] for fold in trained.ranker.fold_rankers} == {200}


def few_groups(count: int = 20) -> list[RankerGroup]:
    """Requests of 10 candidates where the signal finds the positive: with 20 users, a fold trains on
    fewer than 150 rows, too few for two leaves of the defaults' 200 rows each."""
    rng = np.random.default_rng(3)
    made = []
    for index in range(count):
        labels = np.zeros(10)
        labels[rng.integers(10)] = 1.0
        matrix = np.column_stack([labels + rng.normal(0, 0.1, 10), rng.normal(0, 1, 10)])
        made.append(RankerGroup(matrix, labels, rng.normal(0, 1, 10), {}, f"shopper-{index}"))
    return made


def test_a_parameter_set_that_learns_better_is_published_with_its_parameters(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        pipeline={"ranker_min_users": 20},
        experimental={
            "pipeline": {"ranker_objective": "binary", "ranker_parameters": [{"min_data_in_leaf": 10}]}
        },
    )
    trained = fit_gated_ranker(few_groups(), COLUMNS, [], settings, seed=1)
    figures = trained.validation
    assert figures["objectives"]["binary (min_data_in_leaf=10)"] > 0.9 > 0.6 > figures["objectives"]["binary"]
    assert figures["objective"] == "binary (min_data_in_leaf=10)"
    assert trained.ranker is not None
    assert {fold.booster.params["min_data_in_leaf"] for fold in trained.ranker.fold_rankers} == {10}
    assert trained.ranker.meta["objective"] == "binary (min_data_in_leaf=10)"


def test_an_unknown_ranker_parameter_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown keys \\['max_bin'\\]"):
        make_settings(tmp_path, experimental={"pipeline": {"ranker_parameters": [{"max_bin": 63}]}})


def gate_settings(tmp_path: Path, **experiments: object) -> Settings:
    """The defaults, where each source's own order competes too."""
    return make_settings(
        tmp_path,
        pipeline={"ranker_min_users": 20},
        experimental={"pipeline": experiments},
    )


def test_a_source_whose_own_order_beats_fusion_and_the_ranker_serves_and_says_why(tmp_path: Path) -> None:
    settings = gate_settings(tmp_path)
    trained = fit_gated_ranker(groups(False, False, source_finds_label=True), COLUMNS, [], settings, seed=1)
    assert trained.ranker is None
    figures = trained.validation
    assert figures["serves"] == "collab" and figures["best_alternative"] == "collab"
    assert figures["published"] is False
    assert (
        figures["sources"]["collab"]
        > 0.9
        > 0.5
        > max(figures["fusion_ndcg_at_10"], figures["ranker_ndcg_at_10"])
    )
    # The difference is the learned ranker's against the best ranking that needs no training.
    # (on the judging users, where a source's own order is measured)
    assert figures["difference"] == pytest.approx(figures["judged"]["learned"] - figures["sources"]["collab"])
    assert trained.note.startswith("the collab source's own order serves: the learned ranker scored")
    assert f"collab's own order {figures['sources']['collab']:.4f}" in trained.note


def test_a_ranker_that_learns_a_source_order_is_measured_against_it(tmp_path: Path) -> None:
    """The ranker's only signal is the source's own order: it cannot beat that order, so the source
    serves (the ranker is no better than what needs no training)."""
    settings = gate_settings(tmp_path)
    made = groups(True, False)
    for group in made:
        group.sources["collab"] = group.matrix[:, 0].copy()
    trained = fit_gated_ranker(made, COLUMNS, [], settings, seed=1)
    figures = trained.validation
    assert figures["sources"]["collab"] >= figures["ranker_ndcg_at_10"]
    assert figures["serves"] == "collab" and trained.ranker is None


def test_a_gain_within_the_margin_of_standard_errors_leaves_the_simpler_ranking_serving(
    tmp_path: Path,
) -> None:
    """The one-standard-error rule: the learned ranker must beat the best untrained ranking by more than
    the margin (in standard errors of the paired difference); the same gain passes a smaller margin."""
    made = groups(True, False, source_finds_label=False)
    for group in made[:40]:  # collab finds a third of the labels: the ranker still wins, by less
        group.sources["collab"] = group.labels.copy()
    figures = {}
    for margin in (0.0, 1.0, 100.0):
        settings = gate_settings(tmp_path, ranker_margin_standard_errors=margin)
        trained = fit_gated_ranker(made, COLUMNS, [], settings, seed=1)
        figures[margin] = trained.validation
        assert trained.validation["margin"] == pytest.approx(
            margin * trained.validation["difference_standard_error"]
        )
    gain, error = figures[0.0]["difference"], figures[0.0]["difference_standard_error"]
    assert figures[0.0]["best_alternative"] == "collab" and 1.0 * error < gain < 100.0 * error
    assert figures[0.0]["serves"] == figures[1.0]["serves"] == "learned"
    assert figures[100.0]["serves"] == "collab" and not figures[100.0]["published"]


def test_a_sources_own_order_can_be_kept_out_of_the_competition_and_is_still_reported(tmp_path: Path) -> None:
    """With ranker_source_orders off only fusion competes. Here the source's order finds every label, and
    the ranker still serves."""
    settings = make_settings(
        tmp_path,
        pipeline={"ranker_min_users": 20},
        experimental={"pipeline": {"ranker_source_orders": False}},
    )
    trained = fit_gated_ranker(groups(True, False, source_finds_label=True), COLUMNS, [], settings, seed=1)
    figures = trained.validation
    assert figures["sources"]["collab"] > 0.9 and figures["best_alternative"] == "fusion"
    assert figures["serves"] == "learned" and trained.ranker is not None
    assert f"collab's own order {figures['sources']['collab']:.4f}" in trained.note
    fusion = figures["fusion_ndcg_at_10"]
    assert f"against rank fusion's {fusion:.4f} on 120 users it never saw" in trained.note
    assert "more than 0.0000 needed)" in trained.note and "against collab's" not in trained.note


def test_the_gate_judges_only_users_the_sequence_model_was_not_chosen_on(tmp_path: Path) -> None:
    """The sequence model's own order finds the next product of exactly the users whose held-out events
    chose its epoch (as a model chosen there would look): judged on the other users it is noise, and the
    learned ranker serves. Judged on everyone (a share of 0), it would have served."""
    made = groups(True, False)
    for group in made:
        if not judges(group.user_id, 0.5):
            group.sources["collab"] = group.labels.copy()
    kept_apart = fit_gated_ranker(made, COLUMNS, [], gate_settings(tmp_path), seed=1)
    assert kept_apart.validation["judges_apart"]
    assert kept_apart.validation["sources"]["collab"] < 0.5 < kept_apart.validation["ranker_ndcg_at_10"]
    assert kept_apart.validation["serves"] == "learned"
    assert "those the sequence model was not chosen on" in kept_apart.note

    everyone = fit_gated_ranker(made, COLUMNS, [], gate_settings(tmp_path, gate_user_share=0.0), seed=1)
    assert not everyone.validation["judges_apart"] and everyone.validation["users"] == 120
    assert everyone.validation["sources"]["collab"] > kept_apart.validation["sources"]["collab"]
    assert "not chosen on" not in everyone.note


def test_the_learned_ranker_is_judged_against_fusion_on_every_user(tmp_path: Path) -> None:
    """The learned ranker and fusion both combine every source, so they are compared on every validation
    user (out of fold), not only the judging half: twice the users, half the variance. Here the ranker's
    signal finds the next product of the users that do not judge and fusion that of half the judges: on
    the judges alone fusion would win, on everyone the learned ranker does, and serves."""
    made = groups(True, False)
    rng = np.random.default_rng(3)
    judging = [group for group in made if judges(group.user_id, 0.5)]
    for group in judging:
        group.matrix[:, 0] = rng.normal(0, 1, len(group.labels))
    for group in judging[: len(judging) // 2]:
        group.fusion = group.labels.copy()
    trained = fit_gated_ranker(made, COLUMNS, [], gate_settings(tmp_path), seed=1)
    figures = trained.validation
    assert figures["judged"]["fusion"] > figures["judged"]["learned"]
    assert figures["ranker_ndcg_at_10"] > figures["fusion_ndcg_at_10"]
    assert figures["against_fusion"]["difference"] == pytest.approx(
        figures["ranker_ndcg_at_10"] - figures["fusion_ndcg_at_10"]
    )
    assert figures["best_alternative"] == "fusion" and figures["serves"] == "learned"
    assert trained.ranker is not None
    assert trained.note.startswith("learned ranker from 120 users: validation NDCG@10")
    assert f"on {figures['users']} of them, those the sequence model was not chosen on" in trained.note


def test_earlier_cut_points_are_learned_from_with_their_user_and_never_scored() -> None:
    scored = groups(True, False, count=10)
    extra = [
        RankerGroup(group.matrix[:20], group.labels[:20], group.fusion[:20], {}, group.user_id)
        for group in groups(True, False, count=12)  # shoppers 10 and 11 have no newest event: never left out
    ]
    fitter = RankerFitter(scored, COLUMNS, [], extra)
    kept = [0, 1, 2, 3, 4, 5, 6, 7]  # shoppers 8 and 9 left out: their earlier events with them
    dataset = fitter.dataset(kept).construct()
    assert dataset.num_data() == 30 * 8 + 20 * (12 - 2)
    assert RankerFitter(scored, COLUMNS, []).dataset(kept).construct().num_data() == 30 * 8


def test_earlier_cut_points_teach_the_ranker_what_the_newest_events_do_not() -> None:
    """The newest events teach nothing here (what the ranker learns from is noise; as served, the signal
    finds the label); their users' earlier events teach the signal. The scores are the newest events'."""
    rng = np.random.default_rng(3)
    newest = groups(True, False, count=40)
    for group in newest:
        group.served = group.matrix
        group.matrix = rng.normal(0, 1, group.matrix.shape)
    earlier = [
        RankerGroup(group.matrix, group.labels, group.fusion, {}, f"shopper-{index % 40}")
        for index, group in enumerate(groups(True, False, count=120)[40:])
    ]
    params = {"objective": "binary", "num_leaves": 3, "min_data_in_leaf": 20, "verbosity": -1}
    folds = [list(range(start, 40, 5)) for start in range(5)]
    alone = RankerFitter(newest, COLUMNS, []).out_of_fold(params, 20, folds)
    helped = RankerFitter(newest, COLUMNS, [], earlier).out_of_fold(params, 20, folds)
    assert len(helped.scores) == len(alone.scores) == 40
    assert helped.scores.mean() > 0.9 > 0.5 > alone.scores.mean()
