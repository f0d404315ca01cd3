"""The pipeline on real text: the demo catalog (60 products, 6 categories) and the real model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from recommender.errors import InvalidInputError, NotFoundError
from recommender.models import InteractionEvent, ProductFilter, RecommendationList, Signal
from recommender.pipeline.pipeline import Pipeline
from recommender.pipeline.request import PipelineRequest
from recommender.service import RecommenderService


def recommend(service: RecommenderService, k: int, **request: object) -> RecommendationList:
    return service.pipeline.run(PipelineRequest(k=k, **request))  # type: ignore[arg-type]


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
    result = recommend(demo_service, 10, user_id="runner")
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
    result = recommend(demo_service, 5, user_id="cook")
    assert top_categories(result, 3) == ["Home"] * 3


def test_exclude_viewed_setting_removes_viewed_products(demo_service: RecommenderService) -> None:
    add_events(demo_service, "runner", [("run-001", "purchase"), ("run-004", "view")])
    settings = demo_service.settings.model_copy(
        update={"recommend": demo_service.settings.recommend.model_copy(update={"exclude_viewed": True})}
    )
    pipeline = Pipeline(
        demo_service.products,
        demo_service.catalog,
        demo_service.embedder,
        demo_service.events,
        demo_service.profiles,
        demo_service.retriever,
        demo_service.models,
        settings,
    )
    ids = [item.product_id for item in pipeline.run(PipelineRequest(k=20, user_id="runner")).items]
    assert "run-004" not in ids and "run-001" not in ids


def test_unknown_user_gets_popular_products_not_an_error(demo_service: RecommenderService) -> None:
    add_events(demo_service, "a", [("gar-001", "view")])
    add_events(demo_service, "b", [("gar-001", "view"), ("bea-002", "view")])
    result = recommend(demo_service, 5, user_id="never-seen")
    assert result.signal is Signal.POPULAR
    assert any("no usable history" in note for note in result.notes)
    assert [item.product_id for item in result.items[:2]] == ["gar-001", "bea-002"]
    assert result.items[0].score > result.items[1].score and len(result.items) == 5


def test_popular_fallback_respects_filters_and_works_without_events(demo_service: RecommenderService) -> None:
    result = demo_service.retriever.popular(4, ProductFilter(category="Beauty"))
    assert len(result.items) == 4 and top_categories(result, 4) == ["Beauty"] * 4
    assert any("no interaction events" in note for note in result.notes)


def test_the_popular_list_walks_the_pool_in_popularity_order_until_the_page_is_full(
    demo_service: RecommenderService, demo_products: list[dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool is read a chunk at a time (here 16 products, as if the catalog were large): a filter
    that only the least popular products match still gets them, most popular first, and each page is the
    head of the whole pool's order, with the popularity the pipeline's sources read."""
    import recommender.retrieval as retrieval

    monkeypatch.setattr(retrieval, "FIRST_POPULAR_CHUNK", 2)
    ids = sorted(product["product_id"] for product in demo_products)
    # Product i has i + 1 users: the last ids are the most popular.
    for user in range(len(ids)):
        add_events(demo_service, f"fan-{user}", [(pid, "view") for pid in ids[user:]])
    category = {product["product_id"]: product["category"].split(" >")[0] for product in demo_products}
    by_popularity = sorted(ids, key=lambda pid: -ids.index(pid))
    assert demo_service.pipeline.item_stats().most_popular(3) == [
        (pid, 60 - n) for n, pid in enumerate(by_popularity[:3])
    ]
    for wanted, k in (("Beauty", 4), ("Sports", 10), ("Books", 3), (None, 25)):
        product_filter = ProductFilter(category=wanted) if wanted else None
        expected = [pid for pid in by_popularity if wanted is None or category[pid] == wanted][:k]
        result = demo_service.retriever.popular(k, product_filter)
        assert [item.product_id for item in result.items] == expected, wanted
    # The least popular category sits past the first chunks: still found, in order, and excluded ones skipped.
    least = next(category[pid] for pid in reversed(by_popularity))
    expected = [pid for pid in by_popularity if category[pid] == least]
    result = demo_service.retriever.popular(5, ProductFilter(category=least), exclude=expected[:2])
    assert [item.product_id for item in result.items] == expected[2:7]


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
    result = recommend(demo_service, 5, session=["gar-002", "gar-007", "missing"])
    assert result.signal is Signal.SESSION
    assert {"gar-002", "gar-007"}.isdisjoint(item.product_id for item in result.items)
    assert top_categories(result, 3).count("Garden") >= 2
    assert any("missing" in note for note in result.notes)


def test_positive_and_negative_examples(demo_service: RecommenderService) -> None:
    result = recommend(demo_service, 5, positive=["ele-006"], negative=["ele-008"])
    assert result.signal is Signal.EXAMPLES
    assert {"ele-006", "ele-008"}.isdisjoint(item.product_id for item in result.items)
    assert top_categories(result, 3) == ["Electronics"] * 3
    with pytest.raises(NotFoundError):
        recommend(demo_service, 5, positive=["nope"])
    with pytest.raises(InvalidInputError):
        recommend(demo_service, 5, negative=["ele-006"])


def test_similar_products(demo_service: RecommenderService) -> None:
    result = demo_service.retriever.similar("bea-001", 3)
    assert result.signal is Signal.SIMILAR
    assert "bea-001" not in [item.product_id for item in result.items]
    assert top_categories(result, 3) == ["Beauty"] * 3
    with pytest.raises(NotFoundError, match="nope"):
        demo_service.retriever.similar("nope", 3)


def test_query_blends_with_a_known_users_profile(demo_service: RecommenderService) -> None:
    add_events(demo_service, "runner", [("run-001", "purchase")])
    result = recommend(demo_service, 5, user_id="runner", query="book")
    assert result.signal is Signal.QUERY and any("blended" in note for note in result.notes)
    assert result.items[0].product_id in {"boo-006", "boo-007"}  # running books


def test_a_filtered_list_is_topped_up_to_k_when_enough_products_match(
    demo_service: RecommenderService,
) -> None:
    """A runner asking within Beauty: the profile's own neighbours are mostly Sports, yet the list is
    k long and every item matches the filter."""
    add_events(demo_service, "runner", [("run-001", "purchase"), ("run-004", "purchase")])
    demo_service.profiles.refresh(["runner"])
    beauty = ProductFilter(category="Beauty")
    result = recommend(demo_service, 8, user_id="runner", filters=beauty)
    assert len(result.items) == 8
    assert top_categories(result, 8) == ["Beauty"] * 8
    # Only one product matches: the list is that one, not padded with products outside the filter.
    only_one = ProductFilter(brands=["stridex"], attributes={"waterproof": True})
    filtered = recommend(demo_service, 8, user_id="runner", filters=only_one)
    assert [item.product_id for item in filtered.items] == ["run-002"]


def test_category_cap_spreads_the_top_of_the_list(demo_service: RecommenderService) -> None:
    add_events(demo_service, "runner", [("run-001", "purchase"), ("run-004", "view")])
    demo_service.profiles.refresh(["runner"])
    plain = recommend(demo_service, 6, user_id="runner")
    assert top_categories(plain, 6).count("Sports") > 2
    capped = demo_service.pipeline.configured(diversity="category_cap", category_cap=2)
    result = capped.run(PipelineRequest(k=6, user_id="runner"))
    categories = top_categories(result, 6)
    assert len(result.items) == 6 and max(categories.count(name) for name in set(categories)) <= 2


def test_mmr_trades_relevance_for_novelty(demo_service: RecommenderService) -> None:
    add_events(demo_service, "runner", [("run-001", "purchase")])
    demo_service.profiles.refresh(["runner"])
    plain = recommend(demo_service, 6, user_id="runner")
    diverse = demo_service.pipeline.configured(diversity="mmr", mmr_lambda=0.3).run(
        PipelineRequest(k=6, user_id="runner")
    )
    assert len(set(top_categories(diverse, 6))) > len(set(top_categories(plain, 6)))


def test_a_user_with_only_old_events_still_gets_a_personal_list(demo_service: RecommenderService) -> None:
    """Twenty-year-old events: recency counts from the user's newest event, so the profile survives."""
    long_ago = datetime(2005, 3, 1, tzinfo=UTC)
    demo_service.events.add(
        [
            InteractionEvent(user_id="returning", product_id=pid, type="rating", value=5, timestamp=long_ago)
            for pid in ("kit-001", "kit-005")
        ]
    )
    demo_service.profiles.refresh(["returning"])
    result = recommend(demo_service, 5, user_id="returning")
    assert result.signal is Signal.PROFILE
    assert top_categories(result, 3) == ["Home"] * 3
    assert {"kit-001", "kit-005"}.isdisjoint(item.product_id for item in result.items)  # rated: excluded


def test_an_all_negative_history_gets_popular_products(demo_service: RecommenderService) -> None:
    demo_service.events.add(
        [InteractionEvent(user_id="grumpy", product_id="kit-001", type="rating", value=1)]
    )
    demo_service.profiles.refresh(["grumpy"])
    result = recommend(demo_service, 5, user_id="grumpy")
    assert result.signal is Signal.POPULAR and "kit-001" not in [i.product_id for i in result.items]


def test_rankings_take_turns_up_to_the_configured_concurrency(demo_service: RecommenderService) -> None:
    """Threads asking at once are let in ``concurrency`` at a time; the rest wait, then all get answers."""
    import threading
    import time

    add_events(demo_service, "runner", [("run-001", "purchase")])
    inside, most, lock = [0], [0], threading.Lock()

    class WatchedPipeline(Pipeline):
        def _recommend(self, request: PipelineRequest, depth: int, *args: object) -> RecommendationList:
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.05)  # long enough for every thread to be waiting
            try:
                return super()._recommend(request, depth, *args)
            finally:
                with lock:
                    inside[0] -= 1

    def most_at_once(concurrency: int) -> int:
        # The service's own pipeline, configured, with the watched ranking step.
        pipeline = WatchedPipeline.__new__(WatchedPipeline)
        pipeline.__dict__.update(demo_service.pipeline.configured(concurrency=concurrency).__dict__)
        most[0] = 0
        results: list[RecommendationList] = []

        def ask() -> None:
            results.append(pipeline.for_user("runner", 3))

        threads = [threading.Thread(target=ask) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert len(results) == 6 and all(len(result.items) == 3 for result in results)
        return most[0]

    assert most_at_once(1) == 1
    assert most_at_once(3) == 3


@pytest.mark.parametrize("diversity", ["none", "category_cap", "mmr"])
def test_without_an_llm_the_list_is_the_top_of_the_deeper_one_an_llm_would_rerank(
    demo_service: RecommenderService, diversity: str
) -> None:
    """No chat model: the service ranks k items instead of over-fetching 50 to cut them to k, and the k
    are the same, with each diversity rule and with a filter strict enough to need the top-up."""
    assert demo_service.llm.chat_model is None
    add_events(demo_service, "runner", [("run-001", "purchase"), ("run-004", "view"), ("kit-002", "view")])
    demo_service.profiles.refresh(["runner"])
    pipeline = demo_service.pipeline.configured(diversity=diversity, category_cap=2)
    overfetch = demo_service.settings.llm_config.overfetch
    for filters in (None, ProductFilter(price_max=40)):
        request = PipelineRequest(k=6, user_id="runner", filters=filters)
        served = pipeline.run(request)
        assert served.reranking["reranked"] is False
        deeper = pipeline.recommend(request, overfetch)
        assert len(deeper.items) > 6
        assert [item.product_id for item in served.items] == [item.product_id for item in deeper.items[:6]]
