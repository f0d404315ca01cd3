"""A real service in a temporary folder, given a data set through the service's own import, event and
training code: embedded Qdrant and SQLite, exactly what ``recommender serve`` runs on."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from recommender.embedding import Embedder
from recommender.errors import InvalidInputError
from recommender.evaluation.data import Interaction, ItemInfo
from recommender.intake.files import CatalogFormat
from recommender.models import EventType, InteractionEvent
from recommender.service import RecommenderService, build_service, switch_encoder
from recommender.settings import Settings

EVENT_BATCH = 5000


class TemporaryService:
    """The service open now; ``switch_encoder`` opens it again with the shop's published encoder."""

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self.settings = settings
        self.service = build_service(settings, embedder)

    def switch_encoder(self) -> RecommenderService:
        self.service = switch_encoder(self.service, self.settings)
        return self.service


@contextmanager
def temporary_service(settings: Settings, embedder: Embedder) -> Iterator[TemporaryService]:
    """``settings`` with every path moved into a temporary folder (no Qdrant server, no broker)."""
    with tempfile.TemporaryDirectory(prefix="reco-eval-") as root:
        local = settings.model_copy(
            update={
                "qdrant": settings.qdrant.model_copy(update={"url": None, "path": Path(root) / "qdrant"}),
                "events": settings.events.model_copy(update={"url": f"sqlite:///{root}/events.db"}),
                "collab": settings.collab.model_copy(update={"models_path": Path(root) / "models"}),
                "celery": settings.celery.model_copy(update={"broker_url": None}),
            }
        )
        opened = TemporaryService(local, embedder)
        try:
            yield opened
        finally:
            opened.service.close()


def import_items(service: RecommenderService, items: Sequence[ItemInfo], folder: Path) -> None:
    """Through the catalog importer, from a JSONL file, as `recommender import` does."""
    path = folder / "items.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for item in items:
            handle.write(json.dumps(item.product().model_dump(mode="json")) + "\n")
    job = service.jobs.create(str(path), CatalogFormat.JSONL.value, path=str(path))
    summary = service.importer.run_job(job.job_id, path, CatalogFormat.JSONL)
    if summary.failed:
        errors = service.jobs.get(job.job_id).errors[:3]
        shown = "; ".join(f"item {error.product_id}: {error.field}: {error.reason}" for error in errors)
        raise InvalidInputError(f"{summary.failed} items could not be imported ({shown})", field="items")


def as_event(interaction: Interaction) -> InteractionEvent:
    """A rating when the data has one (1-5, its meaning in the service), otherwise a purchase."""
    moment = datetime.fromtimestamp(interaction.timestamp, UTC)
    if interaction.rating is not None and 1 <= interaction.rating <= 5:
        return InteractionEvent(
            user_id=interaction.user_id,
            product_id=interaction.item_id,
            type=EventType.RATING,
            value=interaction.rating,
            timestamp=moment,
        )
    return InteractionEvent(
        user_id=interaction.user_id, product_id=interaction.item_id, type=EventType.PURCHASE, timestamp=moment
    )


def record_events(service: RecommenderService, interactions: Sequence[Interaction]) -> None:
    """What POST /events and its profile-refresh task do, in batches."""
    for start in range(0, len(interactions), EVENT_BATCH):
        service.events.add(
            [as_event(interaction) for interaction in interactions[start : start + EVENT_BATCH]]
        )
    service.profiles.refresh(sorted({interaction.user_id for interaction in interactions}))
