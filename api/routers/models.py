"""The trained models: start a training run of the sequence model or of the shop's encoder (admin, one at
a time), see which versions serve."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from api.deps import READ, Queue, Service, State, TrainCaller
from api.errors import RATE_LIMITED
from recommender.errors import DependencyUnavailableError
from recommender.service import RecommenderService

router = APIRouter(prefix="/models", tags=["models"])


class TrainingAccepted(BaseModel):
    task_id: str


class TrainingConflict(BaseModel):
    detail: str
    running: str


# Both training routes: accepted in the background, or 409 while any training run holds the lease.
TRAINING_STARTED: dict[str, Any] = {
    "status_code": status.HTTP_202_ACCEPTED,
    "response_model": TrainingAccepted,
    "responses": {
        409: {"model": TrainingConflict, "description": "A training run is in progress."},
        **RATE_LIMITED,
    },
}


class ServingModel(BaseModel):
    version: int | None
    slot: str | None
    items: int
    trained_at: str | None
    training_run: str | None = None
    ranker: str | None = Field(
        default=None, description="The learned ranker of this version, or why none and what ranks instead."
    )
    ranker_importance: dict[str, float] = Field(
        default_factory=dict, description="Share of the ranker's gain per feature (top 10)."
    )
    ranker_validation: dict = Field(
        default_factory=dict,
        description="The ranker's gate: the learned ranker's cross-validated NDCG@10 (per objective and "
        "parameter set tried, `objectives`; the number of rounds chosen on it, `rounds`), rank fusion's and "
        "each source's own order's (`sources`) on the same validation users, and which "
        "of them serves (`serves`: `learned`, the mean of its five fold rankers; `fusion` or a source's "
        "name).",
    )
    stages: dict = Field(
        default_factory=dict,
        description="The optional stages' gate: per stage switched on, validation NDCG@10 with and without "
        "it, the paired difference and its standard error, and whether it serves.",
    )
    new_arrivals: dict = Field(
        default_factory=dict,
        description="The new-arrivals score training chose for products without events (the item tower): "
        "its ridge, the popularity prior's and the text's weights, the held-out next products' mean "
        "reciprocal rank with and without the text (`selection_mrr`, `selection_mrr_without_text`), and the "
        "text's cross-fitted gain in it with its standard error (`text_gain`, `text_gain_se`; the weight "
        "serves beyond two). Empty: no tower (too few products with events).",
    )
    training: dict = Field(
        default_factory=dict,
        description="The sequence model's training: epochs run, the epoch whose weights serve, why it "
        "stopped (converged, epoch cap, time cap), its validation curve, which weights serve (`weights`: "
        "the trained ones, or `averaged`, their moving average, with its own `averaged_curve`) and the "
        "configurations compared.",
    )


@router.post("/sequence/train", **TRAINING_STARTED)
def train(service: Service, queue: Queue, _caller: TrainCaller) -> TrainingAccepted:
    """Train on the stored events in the background; the current model serves until the new one is out.
    While a run is in progress (in any process), another request gets 409 with the running id."""
    return _start_training(service, queue.train_sequence_model)


def _start_training(service: RecommenderService, send: Callable[[str], str]) -> TrainingAccepted:
    """Claim the training lease (409 while a run holds it), then queue the task that runs under it."""
    run_id = service.training.begin()
    try:
        return TrainingAccepted(task_id=send(run_id))
    except DependencyUnavailableError:
        service.training.end(run_id)
        raise


@router.get("/sequence", response_model=ServingModel, dependencies=[READ])
def current(service: Service) -> ServingModel:
    published = service.models.current()
    running = service.training.running()
    if published is None:
        return ServingModel(version=None, slot=None, items=0, trained_at=None, training_run=running)
    learned = published.parts.ranker
    importance = dict(sorted(learned.importance().items(), key=lambda item: -item[1])) if learned else {}
    return ServingModel(
        version=published.version,
        slot=published.slot,
        items=len(published.product_ids),
        trained_at=published.trained_at,
        training_run=running,
        ranker=published.parts.ranker_note,
        ranker_importance=dict(list(importance.items())[:10]),
        ranker_validation=published.parts.ranker_validation,
        stages=published.parts.stage_gate,
        new_arrivals=published.parts.tower.summary() if published.parts.tower is not None else {},
        training=published.training,
    )


class ServingEncoder(BaseModel):
    serving: str = Field(description="The embedding model whose vectors the catalog holds now.")
    base_model: str = Field(description="The configured model (RECO_EMBEDDING__MODEL).")
    version: int | None = Field(default=None, description="The shop's encoder version that serves, if any.")
    pending: bool = Field(
        default=False,
        description="A published (or withdrawn) encoder that the catalog is not re-embedded with yet.",
    )
    published: dict | None = Field(
        default=None,
        description="The published version's figures: pairs, steps, why it stopped, held-out NDCG@10 before "
        "and after (with the curve), search precision@5 before and after per query set, and the served "
        "lists' NDCG@10 on validation users with and without it (served_gate).",
    )
    latest: dict | None = Field(
        default=None, description="The newest fine-tuning run's figures, published or not (and why not)."
    )
    training_run: str | None = None


@router.post("/encoder/train", **TRAINING_STARTED)
def train_encoder(service: Service, queue: Queue, _caller: TrainCaller) -> TrainingAccepted:
    """Fine-tune the embedding model on the stored events in the background (the shop's encoder). Where
    held-out users gain and search keeps its precision, it is published: the catalog is re-embedded into a
    copy while the current vectors serve, then switched, and the learned parts retrain over it. Where the
    served lists then fall on validation users, it is withdrawn and what served before serves again. Shares
    the training lease: 409 while any training run is in progress."""
    return _start_training(service, queue.fine_tune_encoder)


@router.get("/encoder", response_model=ServingEncoder, dependencies=[READ])
def encoder(service: Service) -> ServingEncoder:
    published = service.encoders.current(service.settings.embedding.model)
    latest = service.encoders.latest()
    return ServingEncoder(
        serving=service.embedder.model_name,
        base_model=service.settings.embedding.model,
        version=published.version if published is not None else None,
        pending=service.encoder_pending(),
        published=published.meta if published is not None else None,
        latest=latest.meta if latest is not None else None,
        training_run=service.training.running(),
    )


@router.delete("/encoder", response_model=ServingEncoder, responses={**RATE_LIMITED})
def withdraw_encoder(service: Service, state: State, caller: TrainCaller) -> ServingEncoder:
    """Serve the configured model again: the catalog is re-embedded with it (the shop's encoder serves
    until then), synchronously. The versions stay on disk."""
    service.encoders.withdraw()
    return encoder(state.tenants.switch_encoder(caller.tenant))
