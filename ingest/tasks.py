"""Task bodies. Each takes ids or small payloads, does its work through the core, and is idempotent."""

from __future__ import annotations

from pathlib import Path

from ingest.context import get_service
from recommender.intake.feeds.mapping import FieldMapping
from recommender.intake.files import CatalogFormat


def import_catalog(
    job_id: str, path: str, file_format: str, mapping: dict[str, str] | None = None
) -> dict[str, int]:
    summary = get_service().importer.run_job(
        job_id, Path(path), CatalogFormat(file_format), mapping=FieldMapping(mapping or {})
    )
    return dict(summary.__dict__)


def refresh_profiles(user_ids: list[str]) -> int:
    return get_service().profiles.refresh(user_ids)


def refresh_all_profiles() -> int:
    service = get_service()
    return service.profiles.refresh(service.events.all_user_ids())


def train_sequence_model(run_id: str | None = None) -> dict[str, float]:
    """Train on the stored events and publish, holding the training lease; the model in service keeps
    serving until this finishes."""
    report = get_service().train(run_id=run_id)
    return dict(report.__dict__)


def reembed_products(product_ids: list[str]) -> int:
    return get_service().catalog.reembed(product_ids)
