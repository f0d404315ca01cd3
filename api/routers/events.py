"""Interaction events in batches."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, status
from pydantic import ValidationError

from api.deps import WRITE, Queue, Service
from api.schemas import EventBatch, EventBatchResult, RejectedEvent, first_problem
from recommender.models import FUTURE_TOLERANCE, InteractionEvent

router = APIRouter(prefix="/events", tags=["events"], dependencies=[WRITE])


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=EventBatchResult)
def add_events(batch: EventBatch, service: Service, queue: Queue) -> EventBatchResult:
    """Store the valid events durably and refresh the users' profiles in the background.

    Invalid events are rejected one by one (with their index); the rest are kept.
    """
    events: list[InteractionEvent] = []
    rejected: list[RejectedEvent] = []
    context = {FUTURE_TOLERANCE: timedelta(minutes=service.settings.events.future_tolerance_minutes)}
    for index, raw in enumerate(batch.events):
        try:
            events.append(InteractionEvent.model_validate(raw, context=context))
        except ValidationError as error:
            field, reason = first_problem(error)
            rejected.append(RejectedEvent(index=index, field=field, reason=reason))
    if not events:
        return EventBatchResult(
            accepted=0, rejected=rejected, unknown_product_ids=[], profile_refresh_task_id=None
        )
    attribution = service.loop.record_events(events)
    product_ids = {event.product_id for event in events}
    unknown = sorted(product_ids - service.catalog.existing_ids(list(product_ids)))
    task_id = queue.refresh_profiles([event.user_id for event in events])
    attributed: dict[str, int] = {}
    for _, rule in attribution.links:
        if rule is not None:
            attributed[rule] = attributed.get(rule, 0) + 1
    return EventBatchResult(
        accepted=len(events),
        rejected=rejected,
        unknown_product_ids=unknown,
        profile_refresh_task_id=task_id,
        attributed=attributed,
        unknown_recommendation_ids=attribution.unknown_ids,
    )
