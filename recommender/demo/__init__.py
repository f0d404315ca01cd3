"""A small demo catalog (60 products in 6 categories), a few demo shoppers, and shopper queries over the
catalog (English and Chinese, each with the category path of its right answers), shipped with the package."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path

from recommender.models import EventType, InteractionEvent

# Three shoppers with clear tastes, so that the demo shows personalisation at a glance.
DEMO_HISTORIES: dict[str, list[tuple[str, EventType]]] = {
    "demo-runner": [
        ("run-001", EventType.PURCHASE),
        ("run-004", EventType.VIEW),
        ("run-010", EventType.CLICK),
    ],
    "demo-cook": [
        ("kit-001", EventType.PURCHASE),
        ("kit-005", EventType.ADD_TO_CART),
        ("boo-001", EventType.VIEW),
    ],
    "demo-gardener": [
        ("gar-001", EventType.PURCHASE),
        ("gar-006", EventType.VIEW),
        ("boo-008", EventType.CLICK),
    ],
}


def demo_catalog_path() -> Path:
    return Path(str(files("recommender.demo").joinpath("catalog.jsonl")))


@dataclass(frozen=True)
class DemoQuery:
    english: str
    chinese: str
    category: str  # the category path the right answers belong to


def demo_queries() -> list[DemoQuery]:
    """Written for the demo catalog (none is a product title): bench/multilingual.py scores them, and the
    encoder fine-tuning checks that English search keeps its precision."""
    text = files("recommender.demo").joinpath("queries.jsonl").read_text(encoding="utf-8")
    return [DemoQuery(**json.loads(line)) for line in text.splitlines() if line.strip()]


def demo_events(now: datetime | None = None) -> list[InteractionEvent]:
    now = now or datetime.now(UTC)
    events = []
    for user_id, history in DEMO_HISTORIES.items():
        for position, (product_id, event_type) in enumerate(history):
            events.append(
                InteractionEvent.model_validate(
                    {
                        "user_id": user_id,
                        "product_id": product_id,
                        "type": event_type,
                        "timestamp": now - timedelta(hours=len(history) - position),
                    }
                )
            )
    return events
