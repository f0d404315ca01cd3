"""The trained sequence model: start a training run, see which version serves."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel

from api.deps import Queue, Service

router = APIRouter(prefix="/models", tags=["models"])


class TrainingAccepted(BaseModel):
    task_id: str


class ServingModel(BaseModel):
    version: int | None
    slot: str | None
    items: int
    trained_at: str | None


@router.post("/sequence/train", status_code=status.HTTP_202_ACCEPTED, response_model=TrainingAccepted)
def train(queue: Queue) -> TrainingAccepted:
    """Train on the stored events in the background; the current model serves until the new one is out."""
    return TrainingAccepted(task_id=queue.train_sequence_model())


@router.get("/sequence", response_model=ServingModel)
def current(service: Service) -> ServingModel:
    published = service.models.current()
    if published is None:
        return ServingModel(version=None, slot=None, items=0, trained_at=None)
    return ServingModel(
        version=published.version,
        slot=published.slot,
        items=len(published.product_ids),
        trained_at=published.trained_at,
    )
