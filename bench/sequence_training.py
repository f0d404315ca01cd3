"""What one epoch of the sequence model's training costs, against torch's standard layers.

    python -m bench.sequence_training ../shared/data/ml-100k
    python -m bench.sequence_training ../shared/data/ml-100k --epochs 5 --objective bert4rec

Each user's events in time order are one training sequence, as the training job builds them. The same
model (the default configuration, ``RECO_EXPERIMENTAL__COLLAB__*``) trains in two copies with the same
weights and the same seed, epoch after epoch, alternating so that both see the same machine load:

- **standard**: ``nn.TransformerEncoderLayer`` and ``nn.Dropout``, whose masks come from ``bernoulli_``;
- **shipped**: ``recommender.sequence.dropout.EncoderLayer``, the same parameters and arithmetic, with
  masks drawn from uniform numbers.

It prints each copy's median seconds per epoch, the ratio, and each copy's training loss after the last
epoch (the two draw different masks, so the losses differ a little and should stay close).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from recommender.evaluation.data import ColumnMapping, load_dataset
from recommender.sequence.model import ModelConfig, Objective, SequenceModel
from recommender.settings import Settings
from recommender.training.sequence import SequenceTrainer, TrainConfig


def user_sequences(path: Path) -> tuple[list[list[int]], int]:
    """Item indices (1..N) of each user's events in time order, and N."""
    dataset = load_dataset(path, ColumnMapping(), None)
    index_of: dict[str, int] = {}
    by_user: dict[str, list[tuple[float, int, int]]] = {}
    for event in dataset.interactions:
        item = index_of.setdefault(event.item_id, len(index_of) + 1)
        by_user.setdefault(event.user_id, []).append((event.timestamp, event.row, item))
    return [[item for *_, item in sorted(events)] for events in by_user.values()], len(index_of)


def with_standard_layers(model: SequenceModel) -> SequenceModel:
    """The model with torch's own encoder layers and dropout, holding the same weights."""
    config = model.config
    for index in range(len(model.encoder.layers)):
        standard = nn.TransformerEncoderLayer(
            config.hidden,
            config.heads,
            config.hidden * 4,
            config.dropout,
            batch_first=True,
            norm_first=True,
            activation="gelu",
        )
        standard.load_state_dict(model.encoder.layers[index].state_dict())
        model.encoder.layers[index] = standard
    model.dropout = nn.Dropout(config.dropout)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", type=Path, help="a data set recommender eval reads (RecBole or CSV)")
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs per copy, after one warm-up")
    parser.add_argument("--objective", choices=[objective.value for objective in Objective], default=None)
    args = parser.parse_args()
    collab = Settings().collab_config
    sequences, items = user_sequences(args.data)
    config = ModelConfig(
        item_count=items,
        objective=Objective(args.objective or collab.objective),
        hidden=collab.hidden,
        layers=collab.layers,
        max_length=collab.max_length,
        dropout=collab.dropout,
    )
    train = TrainConfig(learning_rate=collab.learning_rate, seed=42)
    shipped = SequenceTrainer(sequences, config, train)
    standard_model = with_standard_layers(SequenceModel(config))
    standard_model.load_state_dict(shipped.model.state_dict())
    standard = SequenceTrainer(sequences, config, train, model=standard_model)
    seconds: dict[str, list[float]] = {"standard": [], "shipped": []}
    losses: dict[str, float] = {}
    trainers = {"standard": standard, "shipped": shipped}
    print(
        f"{args.data}: {len(sequences)} sequences, {items} items, {config.objective.value}, "
        f"hidden {config.hidden}, {config.layers} layers, length {config.max_length}, "
        f"{torch.get_num_threads()} threads"
    )
    for epoch in range(args.epochs + 1):
        for name, trainer in trainers.items():
            started = time.perf_counter()
            losses[name] = trainer.train_epoch()
            if epoch > 0:  # the first epoch of each is a warm-up
                seconds[name].append(time.perf_counter() - started)
    baseline = statistics.median(seconds["standard"])
    for name in trainers:
        median = statistics.median(seconds[name])
        print(
            f"{name:9s} {median:6.2f} s/epoch  {baseline / median:4.2f}x  "
            f"loss after {args.epochs + 1} epochs {losses[name]:.4f}"
        )


if __name__ == "__main__":
    main()
