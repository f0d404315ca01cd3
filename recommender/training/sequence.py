"""One training loop for every objective: full softmax cross-entropy over all items, early stopping, and an
exponential moving average of the weights that competes with the trained weights on validation."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from recommender.sequence.model import (
    ModelConfig,
    Objective,
    SequenceModel,
    training_batch,
    without_shared_padding,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 300
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    validate_every: int = 5
    patience: int = 6  # validations without improvement before stopping
    max_minutes: float = 15.0
    seed: int = 42
    # Epochs an exponential moving average of the weights spans (0: none). At each validation the average
    # is scored beside the trained weights, and whichever scores higher competes for the best.
    average_epochs: float = 0.0


@dataclass
class TrainResult:
    model: SequenceModel
    best_validation: float
    epochs_run: int
    seconds: float
    history: list[tuple[int, float, float]] = field(default_factory=list)  # (epoch, loss, validation)
    stopped_by_time: bool = False  # the max_minutes safety cap fired: the run is not reproducible
    best_epoch: int = 0  # the epoch whose weights are kept
    # Why training ended: "converged" (``patience`` validations without improvement), "epoch cap" (the
    # epochs ran out, validation may still have been rising), "time cap" (the safety cap fired).
    stopped: str = "epoch cap"
    weights: str = "trained"  # which weights are kept: "trained", or "averaged" (the moving average)
    averaged_history: list[tuple[int, float]] = field(default_factory=list)  # (epoch, validation)


def left_pad(sequences: Sequence[Sequence[int]], length: int) -> torch.Tensor:
    padded = np.zeros((len(sequences), length), dtype=np.int64)
    for row, sequence in enumerate(sequences):
        tail = list(sequence)[-length:]
        if tail:
            padded[row, length - len(tail) :] = tail
    return torch.from_numpy(padded)


class SequenceTrainer:
    """One model's training, resumable: ``run(until_epoch)`` trains up to that epoch (or until it
    converges, or the time cap fires), so model selection can train several configurations a little
    and continue only the best. The same schedule of runs with the same seed reproduces the same model
    (dropout draws from torch's global stream, which other trainers also advance)."""

    def __init__(
        self,
        sequences: Sequence[Sequence[int]],
        model_config: ModelConfig,
        train_config: TrainConfig,
        validate: Callable[[SequenceModel], float] | None = None,
        on_epoch: Callable[[int], None] | None = None,
        model: SequenceModel | None = None,
    ) -> None:
        """``model``: one of ``model_config`` to train instead of a new one (its initial weights)."""
        self.config = train_config
        self._validate = validate
        self._on_epoch = on_epoch
        torch.manual_seed(train_config.seed)
        self._generator = torch.Generator().manual_seed(train_config.seed)
        self.model = model if model is not None else SequenceModel(model_config)
        self._optimiser = torch.optim.AdamW(
            self.model.parameters(), lr=train_config.learning_rate, weight_decay=train_config.weight_decay
        )
        self._loss = nn.CrossEntropyLoss(ignore_index=0)
        # Causal training predicts item t+1 from items <= t, so it reads one item more than the model length.
        extra = 1 if model_config.objective is Objective.CAUSAL else 0
        self._data = left_pad([s for s in sequences if len(s) >= 2], model_config.max_length + extra)
        self._best_state = copy.deepcopy(self.model.state_dict())
        self.best_score, self.best_epoch, self._stale = -1.0, 0, 0
        self.best_weights = "trained"
        self.epoch = 0
        self.seconds = 0.0
        self.history: list[tuple[int, float, float]] = []  # (epoch, loss, validation of the trained weights)
        self.averaged_history: list[tuple[int, float]] = []  # (epoch, validation of the moving average)
        self.stopped = ""  # set once training can go no further: converged or time cap
        self._averaged = self._moving_average(len(self._data))

    def _moving_average(self, rows: int) -> AveragedModel | None:
        """The weights' exponential moving average over ``average_epochs`` epochs of optimiser steps (it
        reads no random numbers, so the trained weights follow the same path with or without it)."""
        if self.config.average_epochs <= 0 or self._validate is None:
            return None
        steps_per_epoch = max(1, -(-rows // self.config.batch_size))
        decay = 1.0 - 1.0 / max(1.0, self.config.average_epochs * steps_per_epoch)
        return AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(decay))

    @property
    def finished(self) -> bool:
        return bool(self.stopped) or self.epoch >= self.config.epochs

    def train_epoch(self) -> float:
        """One pass over every sequence in a random order; the mean training loss (``run`` counts epochs)."""
        self.model.train()
        data = self._data
        total_loss = 0.0
        order = torch.randperm(len(data), generator=self._generator)
        for start in range(0, len(data), self.config.batch_size):
            # Padding columns every history of the batch has are cut (their positions keep their embeddings).
            batch, first = without_shared_padding(data[order[start : start + self.config.batch_size]])
            inputs, targets, blocked = training_batch(self.model, batch, self._generator)
            hidden = self.model.encode(inputs, blocked, first_position=first)
            predicted = targets != 0  # scores only where there is an item to predict
            logits = self.model.item_scores(hidden[predicted])
            loss = self._loss(logits, targets[predicted])
            self._optimiser.zero_grad()
            loss.backward()
            self._optimiser.step()
            if self._averaged is not None:
                self._averaged.update_parameters(self.model)
            total_loss += loss.item() * len(batch)
        return total_loss / max(1, len(data))

    def run(self, until_epoch: int | None = None) -> None:
        """Train on every position of every sequence up to ``until_epoch`` (default: the epoch cap)."""
        last = min(until_epoch or self.config.epochs, self.config.epochs)
        started = time.monotonic()
        while not self.stopped and self.epoch < last:
            self.epoch += 1
            loss = self.train_epoch()
            if self._on_epoch is not None:
                self._on_epoch(self.epoch)
            out_of_time = self.seconds + time.monotonic() - started > self.config.max_minutes * 60
            due = self.epoch % self.config.validate_every == 0 or self.epoch == last
            if self._validate is not None and (due or out_of_time):
                self._check(loss)
            if out_of_time:
                logger.warning(
                    "training stopped by the %.1f-minute safety cap after epoch %d of %d: the result "
                    "depends on machine load; set fewer epochs to reproduce a run exactly",
                    self.config.max_minutes,
                    self.epoch,
                    self.config.epochs,
                )
                self.stopped = "time cap"
        self.seconds += time.monotonic() - started

    def _check(self, loss: float) -> None:
        assert self._validate is not None
        self.model.eval()
        score = self._validate(self.model)
        self.history.append((self.epoch, loss, score))
        logged = f"epoch {self.epoch} loss {loss:.4f} validation {score:.4f}"
        weights, kept = "trained", self.model
        if self._averaged is not None:
            averaged = self._averaged.module
            assert isinstance(averaged, SequenceModel)  # AveragedModel holds a copy of the trained module
            averaged.eval()
            averaged_score = self._validate(averaged)
            self.averaged_history.append((self.epoch, averaged_score))
            logged += f" (moving average {averaged_score:.4f})"
            if averaged_score > score:  # on a tie the trained weights, what training alone would keep
                weights, kept, score = "averaged", averaged, averaged_score
        logger.info(logged)
        if score >= self.best_score:  # on a tie the later, longer-trained weights win
            self._best_state = copy.deepcopy(kept.state_dict())
            self.best_score, self.best_epoch, self._stale = score, self.epoch, 0
            self.best_weights = weights
        else:
            self._stale += 1
            if self._stale >= self.config.patience:
                self.stopped = "converged"

    def result(self) -> TrainResult:
        """The best validated weights (the last ones without validation)."""
        if self._validate is None:
            self.best_epoch = self.epoch
        else:
            self.model.load_state_dict(self._best_state)
        self.model.eval()
        return TrainResult(
            self.model,
            self.best_score,
            self.epoch,
            self.seconds,
            list(self.history),
            self.stopped == "time cap",
            self.best_epoch,
            self.stopped or "epoch cap",
            self.best_weights,
            list(self.averaged_history),
        )


def train_sequence_model(
    sequences: Sequence[Sequence[int]],
    model_config: ModelConfig,
    train_config: TrainConfig,
    validate: Callable[[SequenceModel], float] | None = None,
    on_epoch: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train on every position of every sequence; keep the weights with the best validation score."""
    trainer = SequenceTrainer(sequences, model_config, train_config, validate, on_epoch)
    trainer.run()
    return trainer.result()


@torch.no_grad()
def next_item_scores(
    model: SequenceModel, histories: Sequence[Sequence[int]], batch_size: int = 256
) -> np.ndarray:
    """Scores [U, N+1] over item indices for each history (index 0 is padding: -inf)."""
    model.eval()
    rows = []
    for start in range(0, len(histories), batch_size):
        batch = left_pad(histories[start : start + batch_size], model.config.max_length)
        scores = model.item_scores(model.next_item_state(batch))
        scores[:, 0] = -torch.inf
        rows.append(scores.numpy())
    return np.concatenate(rows) if rows else np.zeros((0, model.config.item_count + 1), dtype=np.float32)
