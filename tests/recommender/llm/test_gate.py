"""The checks every generated text passes before a shopper sees it (texts the tiny model really wrote)."""

from __future__ import annotations

import pytest

from recommender.llm.gate import quality_problem, repeated_trigram_share

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
