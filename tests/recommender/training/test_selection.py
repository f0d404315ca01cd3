"""Model selection: candidate configurations probed on validation users, the best trained on."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.metrics import ndcg_at, target_ranks
from recommender.sequence.model import ModelConfig
from recommender.training.selection import candidate_configs, select_and_train
from recommender.training.sequence import TrainConfig, next_item_scores
from tests.conftest import make_settings

# Each user walks a cycle of 8 products from a different start; the next product is predictable.
HISTORIES = [[1 + (user + step) % 8 for step in range(7)] for user in range(40)]
TARGETS = np.array([1 + (user + 7) % 8 for user in range(40)])
BASE = ModelConfig(item_count=9, hidden=16, layers=1, heads=1, max_length=8, dropout=0.0)


def validate(model) -> float:  # noqa: ANN001
    return ndcg_at(target_ranks(next_item_scores(model, HISTORIES), TARGETS), 10)


def test_the_candidate_that_validates_best_is_chosen_and_trained_on() -> None:
    # A learning rate too small to learn anything in a few epochs, against one that learns the cycle.
    candidates = candidate_configs(BASE, 1e-7, [{"learning_rate": 0.01}, {"learning_rate": 1e-7}])
    assert [candidate.name for candidate in candidates] == ["configured", "learning_rate=0.01"]
    selection = select_and_train(
        HISTORIES, candidates, TrainConfig(epochs=40, validate_every=2, patience=2), validate, probe_epochs=4
    )
    assert selection.chosen == "learning_rate=0.01"
    report = {candidate["name"]: candidate for candidate in selection.candidates}
    assert report["learning_rate=0.01"]["chosen"] and not report["configured"]["chosen"]
    assert (
        report["learning_rate=0.01"]["validation_ndcg_at_10"] > report["configured"]["validation_ndcg_at_10"]
    )
    assert report["configured"]["epochs_run"] == 4  # probed only
    assert selection.result.epochs_run > 4  # the chosen one trained on
    assert selection.result.best_validation >= report["learning_rate=0.01"]["validation_ndcg_at_10"]


def test_a_candidate_overrides_the_architecture() -> None:
    candidates = candidate_configs(BASE, 1e-3, [{"max_length": 4, "objective": "bert4rec"}])
    assert candidates[1].config.max_length == 4 and candidates[1].config.objective.value == "bert4rec"
    assert candidates[1].config.hidden == BASE.hidden


def test_unknown_candidate_keys_are_refused(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="unknown keys"):
        make_settings(tmp_path, experimental={"collab": {"candidates": [{"depth": 3}]}})
    with pytest.raises(ValueError, match="unknown objective"):
        make_settings(tmp_path, experimental={"collab": {"candidates": [{"objective": "gru4rec"}]}})


def test_a_single_candidate_trains_and_reports_its_own_figure() -> None:
    selection = select_and_train(
        HISTORIES,
        candidate_configs(BASE, 0.01, []),
        TrainConfig(epochs=6, validate_every=2, patience=2),
        validate,
        probe_epochs=2,
    )
    (only,) = selection.candidates
    assert only["chosen"] and only["epochs_run"] == 6
    assert only["validation_ndcg_at_10"] == round(selection.result.best_validation, 5) > 0
