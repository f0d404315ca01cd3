"""Each user's held-out next events: what training learns the ranker and measures the stages on."""

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
    cut: int = 0  # 0: the user's newest held-out event; 1: the one before it, …


def held_out_next_events(
    events: Sequence[StoredEvent], settings: Settings, cut_points: int = 1
) -> list[HeldOut]:
    """Per user: the newest event on a product the user had no event for before (what a list should
    have shown next, liked or not), and every earlier event as the history; with ``cut_points`` above 1,
    also the ones before it, each with the events before it as its history (``cut`` counts back from the
    newest; an earlier cut only where at least two products come before it, as ``held_out_split`` leaves
    the sequence model). A cut needs an earlier positive event, or there is nothing to personalise from."""
    by_user: dict[str, list[StoredEvent]] = {}
    for event in events:
        by_user.setdefault(event.user_id, []).append(event)
    held = []
    for user_id, user_events in by_user.items():
        first_index: dict[str, int] = {}
        for index, event in enumerate(user_events):
            first_index.setdefault(event.product_id, index)
        newest_first = sorted(first_index.values(), reverse=True)[:cut_points]
        for cut, label_index in enumerate(newest_first):
            # As the sequence model's split: an earlier cut only where two products are left before it.
            if cut > 0 and len(first_index) < cut + 3:
                break
            history = user_events[:label_index]
            if not any(is_positive(event, settings.recommend) for event in history):
                break
            held.append(
                HeldOut(
                    user_id,
                    user_events[label_index],
                    history[::-1][: settings.recommend.history_limit],
                    cut,
                )
            )
    return held
