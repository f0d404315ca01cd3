"""The sequence model's training says why it stopped and which epoch's weights it kept."""

from __future__ import annotations

from recommender.sequence.model import ModelConfig
from recommender.training.sequence import TrainConfig, train_sequence_model

SEQUENCES = [[1 + (user + step) % 8 for step in range(6)] for user in range(24)]
MODEL = ModelConfig(item_count=9, hidden=16, layers=1, heads=1, max_length=8, dropout=0.0)


def test_a_validation_that_stops_improving_is_convergence_and_the_best_epoch_is_kept() -> None:
    scores = iter([0.10, 0.30, 0.20, 0.25, 0.10, 0.05, 0.05, 0.05])
    result = train_sequence_model(
        SEQUENCES,
        MODEL,
        TrainConfig(epochs=100, validate_every=1, patience=3),
        validate=lambda model: next(scores),
    )
    assert (result.stopped, result.best_epoch, result.epochs_run) == ("converged", 2, 5)
    assert result.best_validation == 0.30
    assert [epoch for epoch, _, _ in result.history] == [1, 2, 3, 4, 5]


def test_a_validation_still_rising_at_the_last_epoch_is_the_epoch_cap() -> None:
    scores = iter([0.1, 0.2, 0.3, 0.4])
    result = train_sequence_model(
        SEQUENCES,
        MODEL,
        TrainConfig(epochs=4, validate_every=1, patience=3),
        validate=lambda model: next(scores),
    )
    assert (result.stopped, result.best_epoch, result.epochs_run) == ("epoch cap", 4, 4)
