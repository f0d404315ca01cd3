"""Each user's held-out next event: what training learns the ranker and measures the stages on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from recommender.events import StoredEvent
from recommender.profiles import is_positive
from recommender.settings import Settings


@dataclass
class HeldOut:
    user_id: str
    label: StoredEvent
    history: list[StoredEvent]  # before the label, newest first


def held_out_next_events(events: Sequence[StoredEvent], settings: Settings) -> list[HeldOut]:
    """Per user: the newest event on a product the user had no event for before (what a list should
    have shown next, liked or not), and every earlier event as the history; users need an earlier
    positive event, or there is nothing to personalise from."""
    by_user: dict[str, list[StoredEvent]] = {}
    for event in events:
        by_user.setdefault(event.user_id, []).append(event)
    held = []
    for user_id, user_events in by_user.items():
        first_index: dict[str, int] = {}
        for index, event in enumerate(user_events):
            first_index.setdefault(event.product_id, index)
        label_index = max(first_index.values())
        history = user_events[:label_index]
        if not any(is_positive(event, settings.recommend) for event in history):
            continue
        held.append(
            HeldOut(user_id, user_events[label_index], history[::-1][: settings.recommend.history_limit])
        )
    return held
