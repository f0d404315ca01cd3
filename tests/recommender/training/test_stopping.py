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


def _next_item_accuracy(model) -> float:
    """A real validation figure: how often the model's best next item is the one that followed."""
    import torch

    from recommender.training.sequence import next_item_scores

    histories = [sequence[:-1] for sequence in SEQUENCES]
    targets = torch.tensor([sequence[-1] for sequence in SEQUENCES])
    best = torch.from_numpy(next_item_scores(model, histories)).argmax(dim=1)
    return float((best == targets).float().mean())


def test_the_moving_average_leaves_the_trained_weights_path_unchanged() -> None:
    dropout = ModelConfig(item_count=9, hidden=16, layers=1, heads=1, max_length=8, dropout=0.3)
    plain = train_sequence_model(
        SEQUENCES, dropout, TrainConfig(epochs=6, validate_every=2, patience=9), _next_item_accuracy
    )
    averaged = train_sequence_model(
        SEQUENCES,
        dropout,
        TrainConfig(epochs=6, validate_every=2, patience=9, average_epochs=2),
        _next_item_accuracy,
    )
    assert averaged.history == plain.history  # same draws, same trained weights at every check
    assert [epoch for epoch, _ in averaged.averaged_history] == [2, 4, 6]
    assert plain.averaged_history == [] and plain.weights == "trained"
    best_trained = max(score for _, _, score in averaged.history)
    best_average = max(score for _, score in averaged.averaged_history)
    assert averaged.best_validation == max(best_trained, best_average)


def test_the_moving_average_is_kept_where_it_validates_higher() -> None:
    import torch

    from recommender.training.sequence import SequenceTrainer

    trainer: SequenceTrainer

    def prefers_the_average(model) -> float:
        return 0.1 if model is trainer.model else 0.2

    trainer = SequenceTrainer(
        SEQUENCES,
        MODEL,
        TrainConfig(epochs=4, validate_every=2, patience=3, average_epochs=3),
        prefers_the_average,
    )
    trainer.run()
    average = {name: value.clone() for name, value in trainer._averaged.module.state_dict().items()}
    trained = {name: value.clone() for name, value in trainer.model.state_dict().items()}
    result = trainer.result()
    assert (result.weights, result.best_epoch, result.best_validation) == ("averaged", 4, 0.2)
    kept = result.model.state_dict()
    assert all(torch.equal(kept[name], average[name]) for name in average)
    assert not all(torch.equal(average[name], trained[name]) for name in average)
