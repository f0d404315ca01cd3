"""One training loop for every objective: full softmax cross-entropy over all items, early stopping."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from recommender.sequence.model import ModelConfig, Objective, SequenceModel, training_batch

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 200
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    validate_every: int = 5
    patience: int = 6  # validations without improvement before stopping
    max_minutes: float = 15.0
    seed: int = 42


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


def left_pad(sequences: Sequence[Sequence[int]], length: int) -> torch.Tensor:
    padded = np.zeros((len(sequences), length), dtype=np.int64)
    for row, sequence in enumerate(sequences):
        tail = list(sequence)[-length:]
        if tail:
            padded[row, length - len(tail) :] = tail
    return torch.from_numpy(padded)


def train_sequence_model(
    sequences: Sequence[Sequence[int]],
    model_config: ModelConfig,
    train_config: TrainConfig,
    validate: Callable[[SequenceModel], float] | None = None,
    on_epoch: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train on every position of every sequence; keep the weights with the best validation score."""
    torch.manual_seed(train_config.seed)
    generator = torch.Generator().manual_seed(train_config.seed)
    model = SequenceModel(model_config)
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=train_config.learning_rate, weight_decay=train_config.weight_decay
    )
    loss_function = nn.CrossEntropyLoss(ignore_index=0)
    # Causal training predicts item t+1 from items <= t, so it reads one item more than the model length.
    extra = 1 if model_config.objective is Objective.CAUSAL else 0
    data = left_pad([s for s in sequences if len(s) >= 2], model_config.max_length + extra)
    best_state, best_score, stale, best_epoch = copy.deepcopy(model.state_dict()), -1.0, 0, 0
    stopped = "epoch cap"
    history: list[tuple[int, float, float]] = []
    started = time.monotonic()
    epoch = 0
    for epoch in range(1, train_config.epochs + 1):
        model.train()
        order = torch.randperm(len(data), generator=generator)
        total_loss = 0.0
        for start in range(0, len(data), train_config.batch_size):
            batch = data[order[start : start + train_config.batch_size]]
            inputs, targets, blocked = training_batch(model, batch, generator)
            logits = model.item_scores(model.encode(inputs, blocked))
            loss = loss_function(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total_loss += loss.item() * len(batch)
        if on_epoch is not None:
            on_epoch(epoch)
        out_of_time = time.monotonic() - started > train_config.max_minutes * 60
        if validate is not None and (epoch % train_config.validate_every == 0 or out_of_time):
            model.eval()
            score = validate(model)
            history.append((epoch, total_loss / len(data), score))
            logger.info("epoch %d loss %.4f validation %.4f", epoch, total_loss / len(data), score)
            if score >= best_score:  # on a tie the later, longer-trained weights win
                best_state, best_score, stale, best_epoch = copy.deepcopy(model.state_dict()), score, 0, epoch
            else:
                stale += 1
                if stale >= train_config.patience:
                    stopped = "converged"
                    break
        if out_of_time:
            logger.warning(
                "training stopped by the %.1f-minute safety cap after epoch %d of %d: the result depends "
                "on machine load; set fewer epochs to reproduce a run exactly",
                train_config.max_minutes,
                epoch,
                train_config.epochs,
            )
            stopped = "time cap"
            break
    if validate is None:
        best_state, best_epoch = model.state_dict(), epoch
    model.load_state_dict(best_state)
    model.eval()
    seconds = time.monotonic() - started
    return TrainResult(model, best_score, epoch, seconds, history, out_of_time, best_epoch, stopped)


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
