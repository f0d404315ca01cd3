"""Explanations and chat answers in the request's language: `language`, else Accept-Language."""

from __future__ import annotations

from fastapi.testclient import TestClient

from recommender.llm.conversation import detect_intent


def test_chinese_messages_get_their_intent() -> None:
    assert detect_intent("有没有更便宜的？") == "cheaper"
    assert detect_intent("它和水壶有什么区别？") == "difference"
    assert detect_intent("有类似的吗？") == "alternatives"
    assert detect_intent("为什么推荐这个？") == "why"


def test_templates_answer_in_chinese(demo_client: TestClient) -> None:
    events = [{"user_id": "li", "product_id": "kit-001", "type": "purchase"}]
    assert demo_client.post("/events", json={"events": events}).status_code == 202
    chinese = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}
    listed = demo_client.get(
        "/users/li/recommendations", params={"explain": True, "k": 3}, headers=chinese
    ).json()
    text = listed["items"][0]["explanation"]["text"]
    assert text.startswith("我们推荐") and "购买过" in text
    english = demo_client.get("/users/li/recommendations", params={"explain": True, "k": 3, "language": "en"})
    assert english.json()["items"][0]["explanation"]["text"].startswith("We suggest")
    answer = demo_client.post(
        "/chat",
        json={"product_id": "kit-004", "message": "有没有更便宜的？", "user_id": "li", "language": "zh"},
    ).json()
    assert answer["intent"] == "cheaper" and answer["answer"].startswith("比") and answer["alternatives"]
