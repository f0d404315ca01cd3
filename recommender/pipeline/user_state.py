"""Everything the sources and features need to know about the user of one request, read once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recommender.events import EventStore, StoredEvent
from recommender.models import EventType
from recommender.pipeline.registry import PublishedModel
from recommender.pipeline.request import PipelineRequest
from recommender.profiles import ProfileService, is_positive
from recommender.settings import RecommendSettings

VIEW_LIKE = ("view", "click", "add_to_cart")


@dataclass
class UserState:
    history: list[StoredEvent] = field(default_factory=list)  # newest first
    excluded: set[str] = field(default_factory=set)
    profile: np.ndarray | None = None
    positives: list[str] = field(default_factory=list)  # liked products, oldest first, no immediate repeats
    engaged: list[str] = field(default_factory=list)  # every event's product, oldest first, no repeats
    collab: np.ndarray | None = None
    history_payloads: dict[str, dict[str, Any]] = field(default_factory=dict)  # filled when features need it


class UserStates:
    def __init__(self, events: EventStore, profiles: ProfileService, settings: RecommendSettings) -> None:
        self._events = events
        self._profiles = profiles
        self._settings = settings

    def excluded_types(self) -> set[str]:
        kinds: set[str] = set(self._settings.exclude_event_types)
        if self._settings.exclude_viewed:
            kinds |= set(VIEW_LIKE)
        return kinds

    def build(self, request: PipelineRequest, model: PublishedModel | None) -> UserState:
        if not request.user_id and request.history is None:
            return UserState(excluded=set(request.exclude))
        history = (
            request.history
            if request.history is not None
            else self._events.history(str(request.user_id), self._settings.history_limit)
        )
        kinds = self.excluded_types()
        excluded = {event.product_id for event in history if event.event_type.value in kinds}
        if request.history is None and request.user_id and len(history) >= self._settings.history_limit:
            # The history read was capped; exclusions must cover the user's whole past.
            excluded |= self._events.products_with_events(
                request.user_id, [EventType(kind) for kind in sorted(kinds)]
            )
        excluded |= set(request.exclude)
        profile = (
            self._profiles.from_history(history)
            if request.history is not None
            else self._profiles.get(str(request.user_id), history)
        )
        positives: list[str] = []
        engaged: list[str] = []
        for event in reversed(history):
            if is_positive(event, self._settings) and (not positives or positives[-1] != event.product_id):
                positives.append(event.product_id)
            if not engaged or engaged[-1] != event.product_id:
                engaged.append(event.product_id)
        collab = None
        if model is not None and positives:
            collab = model.user_vector(engaged[-model.model.config.max_length :])
        return UserState(history, excluded, profile, positives, engaged, collab)
