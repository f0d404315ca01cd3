"""Checks every generated text passes before a shopper reads it: no prompt markup, no repetition, no
refusal or self-talk, the request's language, and every sentence stating a fact from the data it was
generated from (each caller passes its facts: the evidence, the alternatives, the computed differences)."""

from __future__ import annotations

import re
from collections.abc import Iterable

MARKUP = re.compile(
    r"<\s*/?\s*data\b|\bkind\s*=|<\|[a-z_]+\|>|^\s*(user|assistant|system|shopper)\s*:",
    re.IGNORECASE | re.MULTILINE,
)
# The names of the prompt's data blocks and its instructions: a model that echoes them is reading its
# prompt back, not answering.
PROMPT_ECHO = re.compile(
    r"\b(shopper'?s message|shopper history|conversation so far|computed differences|alternatives found|"
    r"evidence for the recommendation|product under discussion|recommended product|the facts above|"
    r"the data above)\b",
    re.IGNORECASE,
)
SELF_TALK = re.compile(
    r"\b(chatbot|language model|as an ai|i'?m sorry|i am sorry|i'?m not able|i am not able|i'?m unable|"
    r"i am unable|i cannot|i can'?t)\b",
    re.IGNORECASE,
)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])")
# Share of word 3-grams that repeat an earlier one; looping output scores far above this.
MAX_REPEATED_TRIGRAM_SHARE = 0.25


def without_names(text: str, names: Iterable[str]) -> str:
    """The text with the given names (titles, brands, categories) taken out: a long product name said
    twice is not a loop, and a Latin name inside a Chinese sentence is not English."""
    for name in sorted({name for name in names if len(name) > 2}, key=len, reverse=True):
        text = re.sub(re.escape(name), " ", text, flags=re.IGNORECASE)
    return text


def repeated_trigram_share(text: str) -> float:
    words = re.findall(r"\w+", text.lower())
    trigrams = [tuple(words[index : index + 3]) for index in range(len(words) - 2)]
    if len(trigrams) < 4:
        return 0.0
    return 1 - len(set(trigrams)) / len(trigrams)


def quality_problem(text: str, names: Iterable[str] = ()) -> str | None:
    """Why the text must not reach a shopper, or None. ``names``: product titles and brands the text may
    repeat."""
    if MARKUP.search(text) or PROMPT_ECHO.search(text):
        return "carries prompt markup"
    if SELF_TALK.search(text):
        return "refusal or self-talk"
    if repeated_trigram_share(without_names(text, names)) > MAX_REPEATED_TRIGRAM_SHARE:
        return "repeats itself"
    return None


# --- grounding and language: checks that need what the text was generated from -----------------------
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Below this many letters a text is too short to tell its language (a product name, "OK").
MIN_LETTERS_FOR_LANGUAGE = 8


def language_problem(text: str, language: str, names: Iterable[str] = ()) -> str | None:
    """Chinese requests need mostly Chinese text; others must not be mostly Chinese. ``names`` (product
    titles, brands, categories) are not counted: a Latin name inside a Chinese sentence is fine."""
    letters = [char for char in without_names(text, names) if char.isalpha()]
    if len(letters) < MIN_LETTERS_FOR_LANGUAGE:
        return None
    cjk_share = sum(1 for char in letters if CJK.match(char)) / len(letters)
    if language.lower().startswith("zh"):
        return None if cjk_share >= 0.3 else "not in the request's language (zh)"
    return None if cjk_share <= 0.2 else f"not in the request's language ({language})"


def _words(text: str) -> list[str]:
    """Content words: Latin words of 3+ letters and digits, single CJK characters."""
    lowered = text.casefold()
    latin = [word for word in re.findall(r"[^\W\d_]{3,}|\d+(?:[.,]\d+)?", lowered) if not CJK.search(word)]
    return latin + CJK.findall(lowered)


def fact_stated(sentence: str, facts: list[str]) -> str | None:
    """The first fact the sentence states: the fact's text itself, or (for a title, a category or an
    attribute written a little differently) at least 60 % of its content words. None if it states none."""
    lowered = sentence.casefold()
    words = set(_words(sentence))
    for fact in facts:
        wanted = fact.casefold().strip()
        if not wanted:
            continue
        if wanted in lowered:
            return fact
        content = set(_words(fact))
        if content and len(content & words) >= max(1, -(-len(content) * 3 // 5)):
            return fact
    return None


def ungrounded_sentence(text: str, facts: list[str]) -> str | None:
    """Why the text fails grounding: a sentence that states none of the facts (each sentence a shopper
    reads must say something the data supports), or None."""
    if not facts:
        return "no facts to state"
    for sentence in SENTENCE_END.split(text):
        if sentence.strip() and fact_stated(sentence, facts) is None:
            return f"states no fact from the evidence: {sentence.strip()[:60]!r}"
    return None
