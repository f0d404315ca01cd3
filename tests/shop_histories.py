"""Shopping histories for the encoder's tests."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from recommender.models import EventType, InteractionEvent

# Bundles that cross categories: shoppers who take a running product take the kitchen product of the
# same number next, and so on. The base model, which reads text, has no reason to put them together.
BUNDLES = [("run", "kit"), ("ele", "gar"), ("boo", "bea")]


def bundle_histories(users: int, seed: int = 7) -> list[InteractionEvent]:
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=30)
    events = []
    for user in range(users):
        moment = start + timedelta(minutes=user)
        for _ in range(3):
            first, second = rng.choice(BUNDLES)
            number = rng.randint(1, 10)
            for prefix in (first, second):
                moment += timedelta(hours=1)
                events.append(
                    InteractionEvent(
                        user_id=f"shopper-{user}",
                        product_id=f"{prefix}-{number:03d}",
                        type=EventType.PURCHASE,
                        timestamp=moment,
                    )
                )
    return events
