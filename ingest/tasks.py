"""Task bodies. Each takes ids or small payloads (and the tenant whose data it is), does its work through
that tenant's core service, and is idempotent."""

from __future__ import annotations

from pathlib import Path

from ingest.context import get_service
from recommender.intake.feeds.mapping import FieldMapping
from recommender.intake.files import CatalogFormat
from recommender.settings import DEFAULT_TENANT


def import_catalog(
    job_id: str,
    path: str,
    file_format: str,
    mapping: dict[str, str] | None = None,
    tenant: str = DEFAULT_TENANT,
) -> dict[str, int]:
    summary = get_service(tenant).importer.run_job(
        job_id, Path(path), CatalogFormat(file_format), mapping=FieldMapping(mapping or {})
    )
    return dict(summary.__dict__)


def refresh_profiles(user_ids: list[str], tenant: str = DEFAULT_TENANT) -> int:
    return get_service(tenant).profiles.refresh(user_ids)


def refresh_all_profiles(tenant: str = DEFAULT_TENANT) -> int:
    service = get_service(tenant)
    return service.profiles.refresh(service.events.all_user_ids())


def train_sequence_model(run_id: str | None = None, tenant: str = DEFAULT_TENANT) -> dict[str, float]:
    """Train on the stored events and publish, holding the training lease; the model in service keeps
    serving until this finishes."""
    report = get_service(tenant).train(run_id=run_id)
    return dict(report.__dict__)


def reembed_products(product_ids: list[str], tenant: str = DEFAULT_TENANT) -> int:
    return get_service(tenant).catalog.reembed(product_ids)
