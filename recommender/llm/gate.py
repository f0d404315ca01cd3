"""Checks every generated text shares, whatever it is for: no prompt markup, no repetition, no refusal
or self-talk. (Grounding in the evidence is checked by each caller, which knows its evidence.)"""

from __future__ import annotations

import re

MARKUP = re.compile(
    r"<\s*/?\s*data\b|\bkind\s*=|<\|[a-z_]+\|>|^\s*(user|assistant|system|shopper)\s*:",
    re.IGNORECASE | re.MULTILINE,
)
SELF_TALK = re.compile(
    r"\b(chatbot|language model|as an ai|i'?m sorry|i am sorry|i'?m not able|i am not able|i'?m unable|"
    r"i am unable|i cannot|i can'?t)\b",
    re.IGNORECASE,
)
# Share of word 3-grams that repeat an earlier one; looping output scores far above this.
MAX_REPEATED_TRIGRAM_SHARE = 0.25


def repeated_trigram_share(text: str) -> float:
    words = re.findall(r"\w+", text.lower())
    trigrams = [tuple(words[index : index + 3]) for index in range(len(words) - 2)]
    if len(trigrams) < 4:
        return 0.0
    return 1 - len(set(trigrams)) / len(trigrams)


def quality_problem(text: str) -> str | None:
    """Why the text must not reach a shopper, or None."""
    if MARKUP.search(text):
        return "carries prompt markup"
    if SELF_TALK.search(text):
        return "refusal or self-talk"
    if repeated_trigram_share(text) > MAX_REPEATED_TRIGRAM_SHARE:
        return "repeats itself"
    return None
