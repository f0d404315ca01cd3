"""Train the sequence model on the stored events and publish it: vectors first, then the pointer."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from recommender.catalog import Catalog
from recommender.errors import InvalidInputError
from recommender.events import EventStore
from recommender.ids import product_point_id
from recommender.metrics import ndcg_at, target_ranks
from recommender.pipeline.pipeline import Pipeline
from recommender.pipeline.registry import ModelRegistry, PublishedModel
from recommender.sequence.model import ModelConfig, Objective, SequenceModel
from recommender.settings import Settings
from recommender.store import VectorStore
from recommender.training.parts import train_parts
from recommender.training.selection import candidate_configs, select_and_train
from recommender.training.sequence import TrainConfig, next_item_scores
from recommender.training.user_split import choosing_rows

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingReport:
    version: int
    slot: str
    users: int
    items: int
    epochs: int
    seconds: float
    validation_ndcg_at_10: float
    ranker: str = ""
    ranker_details: dict = field(default_factory=dict)
    item_tower: dict = field(default_factory=dict)  # the ridge, prior and text weights training chose
    best_epoch: int = 0  # the sequence model's kept weights
    stopped: str = ""  # converged, epoch cap or time cap (see TrainResult)
    validation_curve: list = field(default_factory=list)  # (epoch, validation NDCG@10) pairs
    ranker_validation: dict = field(default_factory=dict)  # the ranker's gate (see train_ranker)
    chosen: str = ""  # the sequence-model configuration model selection chose
    candidates: list = field(default_factory=list)  # every configuration compared, with its figures
    stages: dict = field(default_factory=dict)  # the optional stages' gate (see training.stages)
    weights: str = "trained"  # the kept weights: the trained ones or their moving average ("averaged")
    averaged_curve: list = field(default_factory=list)  # (epoch, the moving average's validation NDCG@10)


def train_and_publish(
    events: EventStore,
    catalog: Catalog,
    store: VectorStore,
    registry: ModelRegistry,
    full_settings: Settings,
    pipeline: Pipeline,
    seed: int = 42,
    reuse_sequence: bool = False,
) -> TrainingReport:
    """Train the sequence model, then the pipeline's parts over it (co-occurrence, item tower, learned
    ranker), write everything into the slot and folder not in use, and only then switch the pointer.
    ``reuse_sequence``: keep the serving sequence model when it knows exactly these products (after the
    shop's encoder changed the text vectors) and train only the parts."""
    settings = full_settings.collab_config
    sequences_by_user = events.engagement_sequences()
    known = catalog.existing_ids(sorted({pid for sequence in sequences_by_user.values() for pid in sequence}))
    sequences = {user: [pid for pid in seq if pid in known] for user, seq in sequences_by_user.items()}
    sequences = {user: seq for user, seq in sequences.items() if len(seq) >= 3}
    if len(sequences) < settings.min_users:
        raise InvalidInputError(
            f"training needs at least {settings.min_users} users with 3 or more events on known products; "
            f"there are {len(sequences)}",
            field="events",
        )
    product_ids = sorted({pid for seq in sequences.values() for pid in seq})
    index_of = {pid: index + 1 for index, pid in enumerate(product_ids)}
    indexed = [[index_of[pid] for pid in seq] for seq in sequences.values()]
    config = ModelConfig(
        item_count=len(product_ids),
        objective=Objective(settings.objective),
        hidden=settings.hidden,
        layers=settings.layers,
        max_length=settings.max_length,
        dropout=settings.dropout,
    )
    # Each user's last product is held out (``held_out_events``: the last two); the published model is
    # trained without them. The epoch and the configuration are chosen on some users' held-out products only:
    # the others' judge the ranker.
    training, targets = held_out_split(indexed, settings.held_out_events)
    choosing, apart = choosing_rows(list(sequences), full_settings.pipeline_config.gate_user_share)
    choosing_histories, choosing_targets = [training[row] for row in choosing], targets[choosing]

    def validate(model: SequenceModel) -> float:
        scores = next_item_scores(model, choosing_histories)
        for row, history in enumerate(choosing_histories):
            seen = np.asarray(history)
            scores[row, seen[seen != choosing_targets[row]]] = -np.inf
        return ndcg_at(target_ranks(scores, choosing_targets), 10)

    current = registry.current() if reuse_sequence else None
    if current is not None and current.product_ids == product_ids:
        # The text space changed (the shop's encoder), the events did not: the sequence model stands, and
        # only the parts that read text vectors (item tower, ranker features, gates) learn again.
        model, training_summary = current.model, {**current.training, "reused_from_version": current.version}
        epochs_run = int(current.training.get("epochs_run", 0))
        best_epoch = int(current.training.get("best_epoch", 0))
        stopped = "reused"
        seconds = 0.0
        stored = current.training.get("validation_ndcg_at_10")
        best_validation = float(stored) if stored is not None else validate(model)
        curve = [tuple(point) for point in current.training.get("validation_curve", [])]
        weights = str(current.training.get("weights", "trained"))
        averaged_curve = [tuple(point) for point in current.training.get("averaged_curve", [])]
        chosen, candidates = (
            str(current.training.get("chosen", "")),
            list(current.training.get("candidates", [])),
        )
    else:
        overrides = settings.candidates if len(training) >= settings.selection_min_users else []
        selection = select_and_train(
            training,
            candidate_configs(config, settings.learning_rate, overrides),
            TrainConfig(
                epochs=settings.epochs,
                patience=settings.patience,
                max_minutes=settings.max_minutes,
                seed=seed,
                average_epochs=settings.average_epochs,
            ),
            validate,
            settings.selection_epochs,
        )
        result = selection.result
        model, epochs_run, best_epoch, stopped = (
            result.model,
            result.epochs_run,
            result.best_epoch,
            result.stopped,
        )
        seconds, best_validation = result.seconds, result.best_validation
        curve = [(epoch, round(score, 5)) for epoch, _, score in result.history]
        weights = result.weights
        averaged_curve = [(epoch, round(score, 5)) for epoch, score in result.averaged_history]
        chosen, candidates = selection.chosen, selection.candidates
        training_summary = {
            "epochs_run": epochs_run,
            "best_epoch": best_epoch,
            "stopped": stopped,
            "seconds": round(seconds, 1),
            "validation_ndcg_at_10": round(best_validation, 5),
            # Users whose held-out product chose the epoch and configuration; the others judge the ranker.
            "choosing_users": len(choosing),
            "choosing_users_apart": apart,
            "held_out_events": settings.held_out_events,
            "validation_curve": curve,
            # The kept weights: the trained ones, or their moving average where that scored higher.
            "weights": weights,
            "averaged_curve": averaged_curve,
            "config": model.config.as_dict(),
            "chosen": chosen,
            "candidates": candidates,
        }
    version, slot = registry.next_version()
    registry.save(version, slot, model, product_ids, training_summary)
    vectors = model.item_vectors().numpy().astype(np.float32)
    store.clear_vectors(slot)
    store.update_vectors(
        slot, {product_point_id(pid): vectors[index] for index, pid in enumerate(product_ids)}
    )
    unpublished = PublishedModel(version, slot, model, product_ids, "")
    parts = train_parts(pipeline, events, catalog, store, unpublished, full_settings, seed)
    parts.save(registry.directory(version))
    registry.activate(version, slot)
    logger.info(
        "published sequence model v%d in %s (%d users, %d items)",
        version,
        slot,
        len(indexed),
        len(product_ids),
    )
    return TrainingReport(
        version,
        slot,
        len(indexed),
        len(product_ids),
        epochs_run,
        seconds,
        best_validation,
        parts.ranker_note,
        parts.ranker.meta if parts.ranker is not None else {},
        parts.tower.summary() if parts.tower is not None else {},
        best_epoch,
        stopped,
        curve,
        parts.ranker_validation,
        chosen,
        candidates,
        parts.stage_gate,
        weights,
        averaged_curve,
    )


def held_out_split(indexed: list[list[int]], held_out: int) -> tuple[list[list[int]], np.ndarray]:
    """Each user's sequence without its ``held_out`` newest products (one where fewer than two would be
    left), and the oldest of those left out (the one right after the training sequence): what the model
    is chosen on."""
    training, targets = [], []
    for sequence in indexed:
        cut = held_out if len(sequence) - held_out >= 2 else 1
        training.append(sequence[:-cut])
        targets.append(sequence[-cut])
    return training, np.array(targets)


def restore_version(model: PublishedModel, store: VectorStore, registry: ModelRegistry) -> None:
    """Serve ``model`` (an earlier version) again: its vectors go back into its slot first, the item
    tower's predictions for products without events included (a switch of encoder drops the slots)."""
    vectors = model.model.item_vectors().numpy().astype(np.float32)
    store.clear_vectors(model.slot)
    store.update_vectors(
        model.slot, {product_point_id(pid): vectors[index] for index, pid in enumerate(model.product_ids)}
    )
    tower = model.parts.tower
    if tower is not None and tower.cold_ids:
        store.update_vectors(
            model.slot,
            {
                product_point_id(pid): vector
                for pid, vector in zip(tower.cold_ids, tower.cold_vectors, strict=True)
            },
        )
    registry.activate(model.version, model.slot)
    logger.info("serving sequence model v%d again", model.version)
