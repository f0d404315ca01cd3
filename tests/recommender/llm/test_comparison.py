""" "Different from X": the name resolved to a catalog product, the differences computed from data."""

from __future__ import annotations

from pathlib import Path

import pytest

from recommender.database import Database
from recommender.llm.comparison import compare, differences, named_other, resolve
from recommender.llm.conversation import ChatContext, ChatQuestion, ConversationService, chat_facts
from recommender.llm.conversation_store import ConversationStore
from recommender.llm.explain import Evidence
from recommender.settings import LLMConfig

CATALOG = [
    {"product_id": "notion", "title": "Notion", "category": "Software > Notes", "brand": "Notion Labs",
     "price": 10.0, "attributes": {"seats": "unlimited", "offline": "yes"}},
    {"product_id": "asana-b", "title": "Asana Business", "category": "Software > Projects", "brand": "Asana",
     "price": 24.99, "attributes": {"seats": "500"}},
    {"product_id": "asana-s", "title": "Asana Starter", "category": "Software > Projects", "brand": "Asana",
     "price": 10.99},
    {"product_id": "trello", "title": "Trello", "category": "Software > Projects", "brand": "Atlassian",
     "price": 5.0},
]  # fmt: skip
CLICKUP = {"product_id": "clickup", "title": "ClickUp", "category": "Software > Projects", "brand": "ClickUp",
           "price": 7.0, "attributes": {"seats": "unlimited"}}  # fmt: skip


def search(name: str, k: int) -> list[dict]:
    return CATALOG[:k]


@pytest.mark.parametrize(
    ("message", "name"),
    [
        ("How is it different from Asana?", "Asana"),
        ("how does this compare with the Trello Business plan", "Trello Business plan"),
        ("Is it better than Notion?", "Notion"),
        ("它和Asana有什么区别？", "Asana"),
        ("这个与Notion相比怎么样", "Notion"),
        ("Why did you suggest this?", None),
    ],
)
def test_the_other_products_name_is_found_in_the_question(message: str, name: str | None) -> None:
    assert named_other(message) == name


def test_a_name_resolves_to_one_product_or_lists_the_candidates() -> None:
    assert resolve("notion", CATALOG, "clickup")[0]["product_id"] == "notion"
    assert resolve("Asana Business", CATALOG, "clickup")[0]["product_id"] == "asana-b"
    assert resolve("the Trello Business plan", CATALOG, "clickup")[0]["product_id"] == "trello"
    other, ambiguous = resolve("Asana", CATALOG, "clickup")
    assert other is None and {p["product_id"] for p in ambiguous} == {"asana-b", "asana-s"}
    assert resolve("Monday.com", CATALOG, "clickup") == (None, [])
    assert resolve("Notion", CATALOG, "notion") == (None, [])  # never the product itself


def test_differences_are_computed_from_the_data() -> None:
    facts = differences(CLICKUP, CATALOG[1])
    assert (
        "ClickUp costs 7.00 and Asana Business costs 24.99: ClickUp is 17.99 cheaper than Asana Business"
        in facts
    )
    assert "both are in Software > Projects" in facts
    assert "ClickUp is from ClickUp, Asana Business from Asana" in facts
    assert "seats: unlimited for ClickUp, 500 for Asana Business" in facts
    assert (
        differences(CLICKUP, CATALOG[0], "zh")[0]
        == "ClickUp的价格是7.00，Notion的价格是10.00：ClickUp比Notion便宜3.00"
    )


def _context() -> ChatContext:
    return ChatContext(
        CLICKUP,
        Evidence("clickup", "ClickUp", "profile"),
        [],
        set(),
        lambda intent: [],
        lambda message, language: compare(message, CLICKUP, search, language),
    )


def test_the_answer_states_the_computed_differences_without_a_model(tmp_path: Path) -> None:
    conversations = ConversationStore(Database(f"sqlite:///{tmp_path / 'chat.db'}"), 600)
    service = ConversationService(None, LLMConfig(), True, conversations)
    answer = service.answer(ChatQuestion("clickup", "How is it different from Trello?"), _context())
    assert answer.intent == "difference" and answer.source == "template"
    assert "Trello costs 5.00" in answer.answer and "Atlassian" in answer.answer
    ambiguous = service.answer(ChatQuestion("clickup", "How is it different from Asana?"), _context())
    assert "Asana Business" in ambiguous.answer and "Asana Starter" in ambiguous.answer
    unknown = service.answer(ChatQuestion("clickup", "How is it different from Monday.com?"), _context())
    assert "Monday.com" in unknown.answer


def test_a_model_may_state_the_differences_and_nothing_else() -> None:
    context = _context()
    comparison = context.compare("How is it different from Trello?", "en")
    facts = chat_facts(context, [], comparison)
    checker = ConversationService._reject_reason
    assert checker("Trello costs 5.00, which is less than ClickUp.", context, facts) is None
    assert checker("It is loved by millions of teams.", context, facts) is not None
    assert checker("Trello costs 5.00. It is loved by millions of teams.", context, facts) is not None
