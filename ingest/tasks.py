"""Task bodies. Each takes ids or small payloads (and the tenant whose data it is), does its work through
that tenant's core service, and is idempotent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ingest.context import get_service, switch_encoder
from recommender.intake.feeds.mapping import FieldMapping
from recommender.intake.files import CatalogFormat
from recommender.settings import DEFAULT_TENANT
from recommender.training_job import JobOutcome, run_training_job


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


def train_sequence_model(run_id: str | None = None, tenant: str = DEFAULT_TENANT) -> dict[str, Any]:
    """Train on the stored events and publish, holding the training lease; the model in service keeps
    serving until this finishes. With RECO_EMBEDDING__FINE_TUNE, the shop's encoder first."""
    return _outcome(run_training_job(get_service(tenant), lambda _: switch_encoder(tenant), run_id=run_id))


def fine_tune_encoder(run_id: str | None = None, tenant: str = DEFAULT_TENANT) -> dict[str, Any]:
    """Fine-tune the shop's encoder; where it is published, serve it and train the parts over it."""
    return _outcome(
        run_training_job(
            get_service(tenant), lambda _: switch_encoder(tenant), run_id=run_id, encoder_only=True
        )
    )


def _outcome(outcome: JobOutcome) -> dict[str, Any]:
    return {
        "encoder": outcome.encoder.as_dict() if outcome.encoder is not None else None,
        "training": dict(outcome.training.__dict__) if outcome.training is not None else None,
    }


def reembed_products(product_ids: list[str], tenant: str = DEFAULT_TENANT) -> int:
    return get_service(tenant).catalog.reembed(product_ids)
