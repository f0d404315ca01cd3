"""The trained sequence model: start a training run (admin, one at a time), see which version serves."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from api.deps import READ, Queue, Service, TrainCaller
from api.errors import RATE_LIMITED
from recommender.errors import DependencyUnavailableError

router = APIRouter(prefix="/models", tags=["models"])


class TrainingAccepted(BaseModel):
    task_id: str


class TrainingConflict(BaseModel):
    detail: str
    running: str


class ServingModel(BaseModel):
    version: int | None
    slot: str | None
    items: int
    trained_at: str | None
    training_run: str | None = None
    ranker: str | None = Field(default=None, description="The learned ranker of this version, or why none.")
    ranker_importance: dict[str, float] = Field(
        default_factory=dict, description="Share of the ranker's gain per feature (top 10)."
    )
    ranker_validation: dict = Field(
        default_factory=dict,
        description="The ranker's gate: its cross-validated NDCG@10 (per objective tried) against rank "
        "fusion's on the same validation users, and whether it was published.",
    )
    stages: dict = Field(
        default_factory=dict,
        description="The optional stages' gate: per stage switched on, validation NDCG@10 with and without "
        "it, the paired difference and its standard error, and whether it serves.",
    )
    training: dict = Field(
        default_factory=dict,
        description="The sequence model's training: epochs run, the epoch whose weights serve, why it "
        "stopped (converged, epoch cap, time cap), its validation curve and the configurations compared.",
    )


@router.post(
    "/sequence/train",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TrainingAccepted,
    responses={
        409: {"model": TrainingConflict, "description": "A training run is in progress."},
        **RATE_LIMITED,
    },
)
def train(service: Service, queue: Queue, _caller: TrainCaller) -> TrainingAccepted:
    """Train on the stored events in the background; the current model serves until the new one is out.
    While a run is in progress (in any process), another request gets 409 with the running id."""
    run_id = service.training.begin()
    try:
        return TrainingAccepted(task_id=queue.train_sequence_model(run_id))
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
        training=published.training,
    )
