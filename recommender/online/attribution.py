"""Which served list a shopper's action came from.

- "explicit": the event names its list (``recommendation_id``, from the response that showed the product);
- "last_touch": a purchase without one goes to the latest list that showed the product to the same user
  within the attribution window before the purchase.

Other events without an id are not attributed. An id that names no list of this tenant is reported back,
and the event is kept without attribution. An event attributed to a list that answered a search carries
that search's query (unless it came with its own): the pairs the shop's encoder learns search from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from recommender.models import EventType, InteractionEvent
from recommender.online.served import ServedList, ServedLists

EXPLICIT = "explicit"
LAST_TOUCH = "last_touch"


@dataclass
class Attribution:
    # Per event, in order: (recommendation id, rule), or (None, None).
    links: list[tuple[str | None, str | None]] = field(default_factory=list)
    unknown_ids: list[str] = field(default_factory=list)
    # Per event, in order: the search it came from (its own query, else its list's), or None.
    queries: list[str | None] = field(default_factory=list)


def attribute(events: Sequence[InteractionEvent], served: ServedLists, window: timedelta) -> Attribution:
    result = Attribution()
    named = sorted({event.recommendation_id for event in events if event.recommendation_id})
    known = {
        recommendation_id: shown
        for recommendation_id in named
        if (shown := served.get(recommendation_id)) is not None
    }
    result.unknown_ids = [recommendation_id for recommendation_id in named if recommendation_id not in known]
    lists_of: dict[str, list[ServedList]] = {}
    for event in events:
        touch = None
        if event.recommendation_id:
            touch = known.get(event.recommendation_id)
            result.links.append((event.recommendation_id, EXPLICIT) if touch else (None, None))
        elif event.event_type is EventType.PURCHASE:
            if event.user_id not in lists_of:
                lists_of[event.user_id] = served.of_user(event.user_id)
            touch = next(
                (
                    shown
                    for shown in lists_of[event.user_id]
                    if event.timestamp - window <= shown.served_at <= event.timestamp
                    and event.product_id in shown.product_ids
                ),
                None,
            )
            result.links.append((touch.recommendation_id, LAST_TOUCH) if touch else (None, None))
        else:
            result.links.append((None, None))
        result.queries.append(event.query or (touch.query if touch is not None else None))
    return result
