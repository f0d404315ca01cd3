"""The checks every generated text passes before a shopper sees it (texts the tiny model really wrote)."""

from __future__ import annotations

import pytest

from recommender.llm.explain import Evidence, HistoryMatch
from recommender.llm.gate import (
    fact_stated,
    language_problem,
    quality_problem,
    repeated_trigram_share,
    ungrounded_sentence,
)

REJECTED = {
    "I'm sorry for any confusion, but as a chatbot, I'm designed to help.": "refusal or self-talk",
    "I'm not a chatbot that can suggest products. I'm a chatbot that helps you.": "refusal or self-talk",
    "I'm sure you'll find something better in the future too. I'm sure you'll find something better in the "
    "future too. I'm sure you'll find something better in the future too.": "repeats itself",
    '<data kind="evidence for the recommendation"> Notion </data>': "carries prompt markup",
    "user: I'm so glad to hear that.": "carries prompt markup",
    "The shopper's history is a product of the shop's recommendations. The shopper's history is a product "
    "of the shop's recommendations.": "repeats itself",
}


@pytest.mark.parametrize(("text", "reason"), REJECTED.items())
def test_garbage_is_rejected_with_its_reason(text: str, reason: str) -> None:
    assert quality_problem(text) == reason


@pytest.mark.parametrize(
    "text",
    [
        "We suggest the Brewmaster kettle because it is similar to the espresso machine you bought.",
        "It costs 45.00, less than the 99.00 Dutch oven, and it is also from Ferro & Co.",
        "这款水壶和您买过的咖啡机属于同一品牌。",
    ],
)
def test_a_plain_grounded_sentence_passes(text: str) -> None:
    assert quality_problem(text) is None


def test_repetition_share_counts_repeated_trigrams() -> None:
    assert repeated_trigram_share("a b c d e f g") == 0.0
    assert repeated_trigram_share("a b c a b c a b c a b c") > 0.5


# --- language -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "language", "ok"),
    [
        ("It is from the same brand as the kettle you bought.", "en", True),
        ("这款水壶和您买过的咖啡机属于同一品牌。", "zh", True),
        ("这款 Brewmaster 水壶和您买过的 Ferro 咖啡机属于同一品牌。", "zh", True),
        ("It is from the same brand as the kettle you bought.", "zh", False),
        ("这款水壶和您买过的咖啡机属于同一品牌。", "en", False),
        ("OK 好", "zh", True),  # too short to tell
    ],
)
def test_the_text_must_be_in_the_requests_language(text: str, language: str, ok: bool) -> None:
    assert (language_problem(text, language) is None) is ok


# --- grounding ----------------------------------------------------------------------------------------
FACTS = ["Espresso Machine Pro", "Kitchen", "Coffee", "Ferro & Co", "45.00"]


@pytest.mark.parametrize(
    "sentence",
    [
        "It goes well with the Espresso Machine Pro you bought.",
        "Like your espresso machine, it is made to last.",  # a title written a little differently
        "It is another coffee product.",
        "It costs 45.00.",
        "它和您买过的 Ferro & Co 产品是同一品牌。",
    ],
)
def test_a_sentence_stating_a_fact_passes(sentence: str) -> None:
    assert fact_stated(sentence, FACTS) is not None
    assert ungrounded_sentence(sentence, FACTS) is None


@pytest.mark.parametrize(
    "text",
    [
        "I'm sure you'll find something better in the future too.",
        "This is a great product that many people love.",
        # The first sentence is grounded, the second is not: the second is the one named.
        "It goes well with the Espresso Machine Pro you bought. You will love it.",
    ],
)
def test_a_sentence_without_a_fact_is_rejected_and_named(text: str) -> None:
    reason = ungrounded_sentence(text, FACTS)
    assert reason is not None and reason.startswith("states no fact from the evidence")
    assert text.split(". ")[-1][:20] in reason


def test_without_facts_nothing_generated_can_pass() -> None:
    assert ungrounded_sentence("It goes well with your espresso machine.", []) == "no facts to state"


def test_evidence_lists_its_facts() -> None:
    evidence = Evidence(
        "p1",
        "Brewmaster Kettle",
        "hybrid",
        nearest_history=[HistoryMatch("p0", "Espresso Machine Pro", "purchase", 0.8)],
        shared_category="Home > Kitchen",
        shared_brand="Ferro",
        shared_attributes={"color": "red"},
    )
    facts = evidence.facts()
    assert {"Espresso Machine Pro", "Home > Kitchen", "Kitchen", "Ferro", "red"} <= set(facts)
    assert "Brewmaster Kettle" not in facts  # the product itself is no evidence for itself
    assert "popular" in Evidence("p2", "Mug", "popular").facts()


def test_names_may_repeat_and_stay_in_latin_letters() -> None:
    names = ["Stridex Trail Blaze trail running shoes", "Stridex Road Runner 3 running shoes", "Stridex"]
    text = (
        "Stridex Trail Blaze trail running shoes compared with Stridex Road Runner 3 running shoes: "
        "Stridex Trail Blaze trail running shoes costs 139.00 and Stridex Road Runner 3 running shoes costs "
        "119.00; both are from Stridex."
    )
    assert quality_problem(text) == "repeats itself"
    assert quality_problem(text, names) is None
    chinese = "我们推荐" + names[0] + "，因为它与您购买过的" + names[1] + "相似。"
    assert language_problem(chinese, "zh") is not None
    assert language_problem(chinese, "zh", names) is None


def test_an_answer_reading_its_prompt_back_is_rejected() -> None:
    assert quality_problem('The shopper\'s message: "Why did you suggest this?"') == "carries prompt markup"
    assert quality_problem("Based on the facts above, it is a kettle.") == "carries prompt markup"
