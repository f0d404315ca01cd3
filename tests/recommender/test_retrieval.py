"""Relevance on real text: the demo catalog (60 products, 6 categories) and the real model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from recommender.errors import InvalidInputError, NotFoundError
from recommender.models import InteractionEvent, ProductFilter, Signal
from recommender.service import RecommenderService


def add_events(service: RecommenderService, user: str, history: list[tuple[str, str]]) -> None:
    now = datetime.now(UTC)
    service.events.add(
        [
            InteractionEvent(
                user_id=user,
                product_id=product,
                type=kind,
                timestamp=now - timedelta(minutes=len(history) - i),
            )
            for i, (product, kind) in enumerate(history)
        ]
    )


def top_categories(result, n: int) -> list[str]:
    return [item.product["category"].split(" > ")[0] for item in result.items[:n]]


def test_a_runner_gets_running_gear_before_kitchenware(demo_service: RecommenderService) -> None:
    add_events(demo_service, "runner", [("run-001", "purchase"), ("run-004", "view")])
    demo_service.profiles.refresh(["runner"])
    result = demo_service.retriever.for_user("runner", 10)
    assert result.signal is Signal.PROFILE
    ids = [item.product_id for item in result.items]
    assert "run-001" not in ids  # bought: excluded
    assert "run-004" in ids  # only viewed: kept by default
    assert top_categories(result, 5) == ["Sports"] * 5
    first_kitchen = next(
        (i for i, item in enumerate(result.items) if item.product["category"].startswith("Home")), 99
    )
    last_running = max(
        i for i, item in enumerate(result.items) if item.product["category"].startswith("Sports")
    )
    assert last_running < first_kitchen


def test_a_cook_gets_kitchen_products(demo_service: RecommenderService) -> None:
    add_events(demo_service, "cook", [("kit-001", "purchase"), ("kit-005", "add_to_cart")])
    result = demo_service.retriever.for_user("cook", 5)
    assert top_categories(result, 3) == ["Home"] * 3


def test_exclude_viewed_setting_removes_viewed_products(demo_service: RecommenderService) -> None:
    add_events(demo_service, "runner", [("run-001", "purchase"), ("run-004", "view")])
    retriever = demo_service.retriever
    retriever._settings = retriever._settings.model_copy(update={"exclude_viewed": True})
    ids = [item.product_id for item in retriever.for_user("runner", 20).items]
    assert "run-004" not in ids and "run-001" not in ids


def test_unknown_user_gets_popular_products_not_an_error(demo_service: RecommenderService) -> None:
    add_events(demo_service, "a", [("gar-001", "view")])
    add_events(demo_service, "b", [("gar-001", "view"), ("bea-002", "view")])
    result = demo_service.retriever.for_user("never-seen", 5)
    assert result.signal is Signal.POPULAR
    assert [item.product_id for item in result.items[:2]] == ["gar-001", "bea-002"]
    assert result.items[0].score == 1.0 and len(result.items) == 5


def test_popular_fallback_respects_filters_and_works_without_events(demo_service: RecommenderService) -> None:
    result = demo_service.retriever.popular(4, ProductFilter(category="Beauty"))
    assert len(result.items) == 4 and top_categories(result, 4) == ["Beauty"] * 4
    assert any("no interaction events" in note for note in result.notes)


def test_visitor_query_finds_the_right_category(demo_service: RecommenderService) -> None:
    result = demo_service.retriever.for_query("I need something to make coffee in the morning", 3)
    assert result.signal is Signal.QUERY
    assert result.items[0].product_id == "kit-008"
    assert demo_service.retriever.for_query("grow tomatoes", 3).items[0].product_id == "gar-006"


def test_query_with_filters(demo_service: RecommenderService) -> None:
    result = demo_service.retriever.for_query(
        "headphones", 10, ProductFilter(category="Electronics > Audio", in_stock=True, price_max=200)
    )
    ids = [item.product_id for item in result.items]
    assert "ele-001" not in ids  # out of stock
    assert ids and all(item.product["price"] <= 200 for item in result.items)
    assert all(item.product["category"] == "Electronics > Audio" for item in result.items)


def test_filters_on_brand_and_attributes(demo_service: RecommenderService) -> None:
    result = demo_service.retriever.for_query(
        "shoes", 10, ProductFilter(brands=["stridex"], attributes={"waterproof": True})
    )
    assert [item.product_id for item in result.items] == ["run-002"]


def test_session_clicks_steer_a_visitor(demo_service: RecommenderService) -> None:
    result = demo_service.retriever.for_session(["gar-002", "gar-007", "missing"], 5)
    assert result.signal is Signal.SESSION
    assert {"gar-002", "gar-007"}.isdisjoint(item.product_id for item in result.items)
    assert top_categories(result, 3).count("Garden") >= 2
    assert any("missing" in note for note in result.notes)


def test_positive_and_negative_examples(demo_service: RecommenderService) -> None:
    result = demo_service.retriever.for_examples(["ele-006"], ["ele-008"], 5)
    assert result.signal is Signal.EXAMPLES
    assert {"ele-006", "ele-008"}.isdisjoint(item.product_id for item in result.items)
    assert top_categories(result, 3) == ["Electronics"] * 3
    with pytest.raises(NotFoundError):
        demo_service.retriever.for_examples(["nope"], [], 5)
    with pytest.raises(InvalidInputError):
        demo_service.retriever.for_examples([], ["ele-006"], 5)


def test_similar_products(demo_service: RecommenderService) -> None:
    result = demo_service.retriever.similar("bea-001", 3)
    assert result.signal is Signal.SIMILAR
    assert "bea-001" not in [item.product_id for item in result.items]
    assert top_categories(result, 3) == ["Beauty"] * 3
    with pytest.raises(NotFoundError, match="nope"):
        demo_service.retriever.similar("nope", 3)


def test_query_blends_with_a_known_users_profile(demo_service: RecommenderService) -> None:
    add_events(demo_service, "runner", [("run-001", "purchase")])
    result = demo_service.retriever.for_user("runner", 5, query="book")
    assert result.signal is Signal.QUERY and any("blended" in note for note in result.notes)
    assert result.items[0].product_id in {"boo-006", "boo-007"}  # running books
