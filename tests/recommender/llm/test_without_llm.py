"""llm = none: re-ranking says so, explanations are template sentences from evidence, chat still answers."""

from __future__ import annotations

from pathlib import Path

from recommender.llm.conversation import ChatQuestion
from recommender.models import InteractionEvent
from tests.recommender.llm.conftest import llm_service


def test_recommendations_say_they_were_not_reranked_and_explain_from_evidence(
    tmp_path: Path, embedder
) -> None:
    service = llm_service(tmp_path, embedder, backend="none")
    service.events.add([InteractionEvent(user_id="u", product_id="run-001", type="purchase")])
    result = service.llm.recommend(
        lambda depth: service.pipeline.for_user("u", depth), 3, user_id="u", explain=True
    )
    assert result.reranking["reranked"] is False and "no LLM" in result.reranking["reason"]
    assert len(result.items) == 3
    for item in result.items:
        explanation = item.explanation
        assert explanation["source"] == "template"
        nearest = explanation["evidence"]["nearest_history"]
        assert nearest and nearest[0]["product_id"] == "run-001" and 0 < nearest[0]["similarity"] <= 1
        assert "Stridex Road Runner 3 running shoes" in explanation["text"]
    assert result.items[0].explanation["evidence"]["shared_category"].startswith("Sports")
    service.close()


def test_query_terms_are_evidence_for_a_visitor(tmp_path: Path, embedder) -> None:
    service = llm_service(tmp_path, embedder, backend="none")
    result = service.llm.recommend(
        lambda depth: service.retriever.for_query("espresso machine", depth),
        1,
        query="espresso machine",
        explain=True,
    )
    evidence = result.items[0].explanation["evidence"]
    assert result.items[0].product_id == "kit-008" and evidence["query_terms"] == ["espresso", "machine"]
    assert "matches your search" in result.items[0].explanation["text"]
    service.close()


def test_chat_answers_from_templates_and_finds_real_cheaper_alternatives(tmp_path: Path, embedder) -> None:
    service = llm_service(tmp_path, embedder, backend="none")
    service.events.add([InteractionEvent(user_id="u", product_id="kit-001", type="purchase")])
    answer = service.llm.chat(ChatQuestion("kit-004", "Is there something cheaper like it?", "u"))
    assert answer.intent == "cheaper" and answer.alternatives
    price = service.catalog.get("kit-004").price
    for item in answer.alternatives:
        assert item.product["price"] < price and service.catalog.get(item.product_id)
    assert all(item.product_id in answer.answer for item in answer.alternatives[:3])
    why = service.llm.chat(ChatQuestion("kit-004", "Why did you suggest this?", "u", answer.conversation_id))
    assert why.intent == "why" and why.conversation_id == answer.conversation_id
    assert "Ferro & Co cast iron skillet 26 cm" in why.answer
    service.close()


def test_an_item_is_no_evidence_for_itself(tmp_path: Path, embedder) -> None:
    service = llm_service(tmp_path, embedder, backend="none")
    service.events.add(
        [
            InteractionEvent(user_id="u", product_id="kit-001", type="purchase"),
            InteractionEvent(user_id="u", product_id="kit-005", type="add_to_cart"),
        ]
    )
    result = service.llm.recommend(
        lambda depth: service.pipeline.for_user("u", depth), 10, user_id="u", explain=True
    )
    knife = next(item for item in result.items if item.product_id == "kit-005")
    evidence = knife.explanation["evidence"]
    assert evidence["shared_brand"] is None  # Kirika appears in the history only through the knife itself
    assert all(match["product_id"] != "kit-005" for match in evidence["nearest_history"])
    service.close()


def test_cheaper_alternatives_skip_purchases_and_keep_the_category_path_first(
    tmp_path: Path, embedder
) -> None:
    service = llm_service(tmp_path, embedder, backend="none")
    try:
        service.events.add([InteractionEvent(user_id="u", product_id="kit-001", type="purchase")])
        product = service.catalog.get("kit-004")
        answer = service.llm.chat(ChatQuestion("kit-004", "anything cheaper?", "u"))
        ids = [item.product_id for item in answer.alternatives]
        assert ids and "kit-004" not in ids and "kit-001" not in ids
        assert all(item.product["price"] < product.price for item in answer.alternatives)
        paths = [item.product["category"] for item in answer.alternatives]
        same = [path == product.category for path in paths]
        assert same[0] and same == sorted(same, reverse=True)  # the product's own path first, then wider
    finally:
        service.close()
