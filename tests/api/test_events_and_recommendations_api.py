from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from recommender.ids import user_point_id
from recommender.service import RecommenderService
from tests.api.conftest import ids


def test_events_are_stored_and_bad_ones_reported_by_index(
    demo_client: TestClient, demo_service: RecommenderService
) -> None:
    response = demo_client.post(
        "/events",
        json={
            "events": [
                {
                    "user_id": "u1",
                    "product_id": "run-002",
                    "type": "purchase",
                    "timestamp": "2026-11-01T10:00:00Z",
                },
                {"user_id": "u1", "product_id": "ghost", "type": "view"},
                {"user_id": "u1", "product_id": "run-005", "type": "rating"},
                {"user_id": "u1", "product_id": "run-005", "type": "like"},
            ]
        },
    )
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 2 and body["unknown_product_ids"] == ["ghost"]
    assert [(item["index"], item["field"]) for item in body["rejected"]] == [(2, None), (3, "type")]
    assert demo_service.events.count() == 2


def test_events_update_the_profile_in_the_background(
    demo_client: TestClient, demo_service: RecommenderService
) -> None:
    demo_client.post(
        "/events", json={"events": [{"user_id": "gardener", "product_id": "gar-004", "type": "purchase"}]}
    )
    deadline = time.monotonic() + 30
    while not demo_service.users.retrieve([user_point_id("gardener")]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert demo_service.users.retrieve([user_point_id("gardener")])
    response = demo_client.get("/users/gardener/recommendations", params={"k": 5})
    assert response.json()["signal"] == "profile"
    assert "gar-004" not in ids(response)
    assert sum(item["product"]["category"].startswith("Garden") for item in response.json()["items"]) >= 3


def test_unknown_user_gets_a_cold_start_answer_not_404(demo_client: TestClient) -> None:
    response = demo_client.get("/users/stranger/recommendations")
    assert response.status_code == 200 and response.json()["signal"] == "popular"
    assert len(response.json()["items"]) == 10
    with_query = demo_client.get(
        "/users/stranger/recommendations", params={"query": "moisturiser for dry skin"}
    )
    assert with_query.json()["signal"] == "query" and ids(with_query)[0] == "bea-001"


def test_filters_as_query_parameters(demo_client: TestClient) -> None:
    response = demo_client.get(
        "/users/stranger/recommendations",
        params=[
            ("category", "Electronics"),
            ("brand", "Sonique"),
            ("brand", "Lumen"),
            ("price_max", "150"),
            ("in_stock", "true"),
            ("attribute", "wireless:true"),
            ("k", "20"),
        ],
    )
    assert response.status_code == 200
    assert sorted(ids(response)) == ["ele-002", "ele-007"]
    assert demo_client.get("/users/x/recommendations", params={"attribute": "novalue"}).status_code == 422
    assert (
        demo_client.get("/users/x/recommendations", params={"price_min": 5, "price_max": 1}).status_code
        == 422
    )


def test_post_recommendations_for_each_visitor_signal(demo_client: TestClient) -> None:
    query = demo_client.post(
        "/recommendations", json={"query": "hedge", "k": 2, "filters": {"category": "Garden"}}
    )
    assert query.json()["signal"] == "query" and ids(query)[0] == "gar-004"
    session = demo_client.post(
        "/recommendations", json={"session_product_ids": ["bea-006", "bea-007"], "k": 3}
    )
    assert session.json()["signal"] == "session"
    assert all(item["product"]["category"].startswith("Beauty") for item in session.json()["items"])
    examples = demo_client.post(
        "/recommendations", json={"positive": ["boo-003"], "negative": ["boo-010"], "k": 3}
    )
    assert examples.json()["signal"] == "examples"
    assert demo_client.post("/recommendations", json={"positive": ["nope"]}).status_code == 404
    popular = demo_client.post("/recommendations", json={})
    assert popular.json()["signal"] == "popular"
    bad = demo_client.post("/recommendations", json={"query": "x", "filters": {"colour": "red"}})
    assert bad.status_code == 422


def test_request_context_is_accepted_and_checked(demo_client: TestClient) -> None:
    demo_client.post(
        "/events", json={"events": [{"user_id": "ctx", "product_id": "run-001", "type": "purchase"}]}
    )
    body = {
        "user_id": "ctx",
        "k": 3,
        "context": {"channel": "app", "device": "mobile", "hour": 9, "weekday": 5},
    }
    response = demo_client.post("/recommendations", json=body)
    assert response.status_code == 200 and len(response.json()["items"]) == 3
    by_query = demo_client.get("/users/ctx/recommendations", params={"k": 3, "channel": "web"})
    assert by_query.status_code == 200
    nested = demo_client.post("/recommendations", json={"user_id": "ctx", "context": {"channel": {"a": 1}}})
    assert nested.status_code == 422


def test_events_dated_too_far_ahead_are_rejected_with_a_reason(
    demo_client: TestClient, demo_service: RecommenderService
) -> None:
    soon = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    events = [
        {"user_id": "u9", "product_id": "run-002", "type": "view", "timestamp": soon},
        {"user_id": "u9", "product_id": "run-003", "type": "view", "timestamp": "2199-01-01T00:00:00Z"},
    ]
    body = demo_client.post("/events", json={"events": events}).json()
    assert body["accepted"] == 1
    assert [(item["index"], item["field"]) for item in body["rejected"]] == [(1, "timestamp")]
    assert "10 minutes in the future" in body["rejected"][0]["reason"]
    assert [event.product_id for event in demo_service.events.history("u9", 10)] == ["run-002"]
