"""Model selection on the shop's own validation users: several sequence-model configurations train a
few epochs each, and only the best one trains on to convergence (one round of successive halving)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from recommender.sequence.model import ModelConfig, Objective, SequenceModel
from recommender.training.sequence import SequenceTrainer, TrainConfig, TrainResult

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    name: str
    config: ModelConfig
    learning_rate: float


@dataclass
class Selection:
    result: TrainResult
    chosen: str
    candidates: list[dict]  # name, validation NDCG@10 after the probe (alone: after training), epochs, chosen


def candidate_configs(base: ModelConfig, learning_rate: float, overrides: Sequence[dict]) -> list[Candidate]:
    """The configured model first, then each override of it (duplicates dropped)."""
    candidates = [Candidate("configured", base, learning_rate)]
    for override in overrides:
        changes = {key: value for key, value in override.items() if key != "learning_rate"}
        if "objective" in changes:
            changes["objective"] = Objective(changes["objective"])
        config = dataclasses.replace(base, **changes)
        rate = float(override.get("learning_rate", learning_rate))
        name = ", ".join(f"{key}={value}" for key, value in sorted(override.items())) or "configured"
        if all((config, rate) != (known.config, known.learning_rate) for known in candidates):
            candidates.append(Candidate(name, config, rate))
    return candidates


def select_and_train(
    sequences: Sequence[Sequence[int]],
    candidates: list[Candidate],
    train_config: TrainConfig,
    validate: Callable[[SequenceModel], float],
    probe_epochs: int,
) -> Selection:
    """Each candidate trains ``probe_epochs`` epochs and is validated; the best by validation NDCG@10
    trains on to convergence or the epoch cap. One candidate: it simply trains."""
    trainers = [
        SequenceTrainer(
            sequences,
            candidate.config,
            dataclasses.replace(train_config, learning_rate=candidate.learning_rate),
            validate,
        )
        for candidate in candidates
    ]
    if len(trainers) > 1:
        for candidate, trainer in zip(candidates, trainers, strict=True):
            trainer.run(probe_epochs)
            logger.info(
                "model selection: %s scored %.4f after %d epochs",
                candidate.name,
                trainer.best_score,
                trainer.epoch,
            )
    best = max(range(len(trainers)), key=lambda index: trainers[index].best_score)
    probe_scores = [trainer.best_score for trainer in trainers]
    trainers[best].run()
    if len(trainers) == 1:  # nothing was probed: the figure is the trained model's
        probe_scores = [trainers[0].best_score]
    report = [
        {
            "name": candidate.name,
            "validation_ndcg_at_10": round(probe_scores[index], 5),
            "epochs_run": trainers[index].epoch,
            "seconds": round(trainers[index].seconds, 1),
            "chosen": index == best,
        }
        for index, candidate in enumerate(candidates)
    ]
    return Selection(trainers[best].result(), candidates[best].name, report)
