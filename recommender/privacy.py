"""What is held about one shopper: export it whole, or erase it from every store that holds it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from recommender.events import EventStore
from recommender.ids import user_point_id
from recommender.llm.features import LLMFeatures
from recommender.online.served import ServedLists, as_export
from recommender.store import VectorStore

EXPORT_EVENT_LIMIT = 1_000_000


@dataclass(frozen=True)
class ErasureReport:
    user_id: str
    events: int
    profile: bool
    conversations: int
    cached_llm_outputs: int
    served_lists: int = 0


class UserData:
    def __init__(self, events: EventStore, users: VectorStore, llm: LLMFeatures, served: ServedLists) -> None:
        self._events = events
        self._users = users
        self._llm = llm
        self._served = served

    def export(self, user_id: str) -> dict[str, Any]:
        """Everything held about the user: events (and the searches they came from), the stored profile
        vector, live conversations, the lists served to them."""
        events = [
            {**dataclasses.asdict(event), "event_type": event.event_type.value}
            for event in self._events.history(user_id, EXPORT_EVENT_LIMIT)
        ]
        stored = self._users.retrieve([user_point_id(user_id)], with_vectors=True)
        profile = None
        if stored:
            profile = {
                "updated_at": stored[0].payload.get("updated_at"),
                "vector": [float(value) for value in stored[0].vector]
                if stored[0].vector is not None
                else None,
            }
        conversations = {
            conversation_id: [dataclasses.asdict(turn) for turn in turns]
            for conversation_id, turns in self._llm.conversations.of_user(user_id).items()
        }
        served = [as_export(shown) for shown in self._served.of_user(user_id)]
        return {
            "user_id": user_id,
            "events": events,
            "searches": self._events.searches_of(user_id),
            "profile": profile,
            "conversations": conversations,
            "served_lists": served,
        }

    def erase(self, user_id: str) -> ErasureReport:
        """Erase the user's events (so the next model never trains on them), profile, conversations and
        the cached LLM outputs built from shoppers' histories. Idempotent."""
        point_id = user_point_id(user_id)
        had_profile = bool(self._users.retrieve([point_id]))
        self._users.delete([point_id])
        events = self._events.delete_user(user_id)
        conversations = self._llm.conversations.forget_user(user_id)
        cached = self._llm.reranker.forget_cached()
        served = self._served.forget_user(user_id)
        return ErasureReport(user_id, events, had_profile, conversations, cached, served)
