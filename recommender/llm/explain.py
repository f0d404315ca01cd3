"""Grounded explanations: evidence computed without the LLM, and a sentence written from it.

The LLM's sentence is kept only if it names no product, brand or category outside the evidence and
does not echo the instructions; otherwise, and with no LLM, a template sentence built from the evidence is
the text.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from recommender.events import StoredEvent
from recommender.llm.calls import LLMBusyError, LLMCalls, LLMTimeoutError
from recommender.llm.chat import ChatModel
from recommender.llm.gate import language_problem, quality_problem, ungrounded_sentence
from recommender.llm.prompting import as_data, leaks_system_prompt, render, system_prompt
from recommender.llm.templates import phrases
from recommender.models import AttributeValue, AttributeValues, Recommendation, Signal, attribute_text
from recommender.settings import LLMConfig

STOPWORDS = {
    "a",
    "an",
    "the",
    "and",
    "or",
    "for",
    "of",
    "to",
    "in",
    "on",
    "with",
    "my",
    "me",
    "i",
    "is",
    "it",
    "something",
    "some",
    "that",
    "this",
    "need",
    "want",
    "looking",
    "good",
    "best",
}


@dataclass
class HistoryMatch:
    product_id: str
    title: str
    event_type: str
    similarity: float


@dataclass
class Evidence:
    product_id: str
    title: str
    signal: str
    nearest_history: list[HistoryMatch] = field(default_factory=list)
    shared_category: str | None = None
    shared_brand: str | None = None
    shared_attributes: dict[str, AttributeValues] = field(default_factory=dict)
    query_terms: list[str] = field(default_factory=list)

    def allowed_names(self) -> set[str]:
        names = {self.title.lower(), *(match.title.lower() for match in self.nearest_history)}
        if self.shared_brand:
            names.add(self.shared_brand.lower())
        return names

    def facts(self) -> list[str]:
        """What a generated sentence may state (the gate wants one in every sentence)."""
        facts = [match.title for match in self.nearest_history]
        if self.shared_category:
            facts += [self.shared_category, *self.shared_category.split(" > ")]
        if self.shared_brand:
            facts.append(self.shared_brand)
        facts += [attribute_text(value) for value in self.shared_attributes.values()]
        facts += self.query_terms
        if self.signal == Signal.POPULAR.value:
            facts += ["popular", "bestseller", "best-seller", "热门", "畅销", "受欢迎"]
        return [fact for fact in facts if fact.strip()]

    def lines(self) -> str:
        lines = [f"signal: {self.signal}"]
        for match in self.nearest_history:
            lines.append(
                f"close to '{as_data(match.title, 100)}' ({match.event_type}), "
                f"similarity {match.similarity:.2f}"
            )
        if self.shared_category:
            lines.append(f"same category as the shopper's history: {as_data(self.shared_category, 80)}")
        if self.shared_brand:
            lines.append(f"same brand as the shopper's history: {as_data(self.shared_brand, 60)}")
        for name, value in self.shared_attributes.items():
            lines.append(f"shared attribute: {as_data(str(name), 40)} = {as_data(attribute_text(value), 40)}")
        if self.query_terms:
            lines.append(f"matches search terms: {', '.join(self.query_terms)}")
        return "\n".join(lines)


@dataclass
class Explanation:
    evidence: Evidence
    text: str
    source: str  # "llm" or "template"
    note: str = ""


def compute_evidence(
    item: Recommendation,
    item_vector: np.ndarray | None,
    history: Sequence[StoredEvent],
    history_products: dict[str, dict],
    history_vectors: dict[str, np.ndarray],
    query: str | None,
) -> Evidence:
    product = item.product
    evidence = Evidence(item.product_id, product["title"], item.signal.value)
    if item_vector is not None:
        matches = []
        for event in history:
            vector = history_vectors.get(event.product_id)
            if vector is None or event.product_id == item.product_id:
                continue
            matches.append(
                HistoryMatch(
                    event.product_id,
                    history_products[event.product_id]["title"],
                    event.event_type.value,
                    float(np.dot(item_vector, vector)),
                )
            )
        unique = {match.product_id: match for match in sorted(matches, key=lambda m: m.similarity)}
        evidence.nearest_history = sorted(unique.values(), key=lambda m: -m.similarity)[:2]
    # The item itself may be in the history (viewed, in the cart): it is no evidence for itself.
    historic = [
        history_products[e.product_id]
        for e in history
        if e.product_id in history_products and e.product_id != item.product_id
    ]
    categories = [p.get("category", "") for p in historic]
    if product.get("category"):
        shared = [c for c in categories if c and _common_prefix(c, product["category"])]
        if shared:
            evidence.shared_category = _common_prefix(shared[0], product["category"])
    if product.get("brand") and product["brand"] in {p.get("brand") for p in historic}:
        evidence.shared_brand = product["brand"]
    for name, value in (product.get("attributes") or {}).items():
        # A value in common (of several, for an attribute such as sizes) with a product the shopper chose.
        for past in historic:
            common = [
                item for item in _as_list(value) if item in _as_list((past.get("attributes") or {}).get(name))
            ]
            if common:
                evidence.shared_attributes[name] = common[0] if len(common) == 1 else common
                break
    if query:
        text = " ".join(
            str(product.get(key, "")) for key in ("title", "description", "category", "brand")
        ).lower()
        terms = [t for t in re.findall(r"[a-z0-9]+", query.lower()) if t not in STOPWORDS and len(t) > 2]
        evidence.query_terms = [t for t in dict.fromkeys(terms) if re.search(rf"\b{re.escape(t)}", text)]
    return evidence


def _common_prefix(first: str, second: str) -> str | None:
    parts = []
    for a, b in zip(first.split(" > "), second.split(" > "), strict=False):
        if a != b:
            break
        parts.append(a)
    return " > ".join(parts) or None


def template_sentence(evidence: Evidence, language: str = "en") -> str:
    say = phrases(language)
    reasons = []
    if evidence.nearest_history:
        match = evidence.nearest_history[0]
        verb = say["verbs"].get(match.event_type, say["verbs"]["view"])
        reasons.append(say["similar"].format(title=match.title, verb=verb))
    if evidence.query_terms:
        reasons.append(say["matches"].format(terms=say["separator"].join(evidence.query_terms)))
    if evidence.shared_brand:
        reasons.append(say["brand"].format(brand=evidence.shared_brand))
    elif evidence.shared_category:
        reasons.append(say["category"].format(category=evidence.shared_category))
    if not reasons:
        if evidence.signal == Signal.POPULAR.value:
            return str(say["popular"].format(title=evidence.title))
        return str(say["close"].format(title=evidence.title))
    return str(say["suggest"].format(title=evidence.title, reasons=say["and"].join(reasons[:2])))


def mentions_outside(text: str, grounding: str, allowed: set[str], known_names: set[str]) -> list[str]:
    """Names the text uses that the grounding does not hold: known product titles and brands, and any
    model-number-like token (letters with digits, e.g. XYZ-999) absent from the grounding text."""
    lowered = text.lower()
    outside = {name for name in known_names if name and name not in allowed and name in lowered}
    grounded = grounding.lower()
    for token in re.findall(r"\b[\w-]*\d[\w-]*\b", lowered):
        if token not in grounded and not token.isdigit():
            outside.add(token)
    return sorted(outside)


class Explainer:
    def __init__(
        self,
        chat: ChatModel | None,
        settings: LLMConfig,
        may_send_user_data: bool,
        calls: LLMCalls | None = None,
    ) -> None:
        self._chat = chat
        self._settings = settings
        self._may_send = may_send_user_data
        self._calls = calls or LLMCalls(1)

    def explain(
        self,
        evidence: Evidence,
        product: dict,
        known_names: set[str],
        language: str = "en",
        deadline: float | None = None,
    ) -> Explanation:
        """``deadline`` (time.monotonic) lets several explanations share one request's budget."""
        fallback = template_sentence(evidence, language)
        if self._chat is None:
            return Explanation(evidence, fallback, "template", "no LLM configured")
        if not self._may_send and (evidence.nearest_history or evidence.query_terms):
            return Explanation(evidence, fallback, "template", "user data may not go to a remote endpoint")
        remaining = self._settings.timeout_seconds
        if deadline is not None:
            remaining = min(remaining, deadline - time.monotonic())
        chat = self._chat
        try:
            prompt = render(
                "explain",
                product=as_data(f"{product['title']} ({product.get('category', '')})", 200),
                evidence=evidence.lines(),
                language=as_data(language, 20),
            )
            text = self._calls.run(
                lambda: chat.complete(
                    system_prompt(), prompt, self._settings.explanation_max_tokens, remaining
                ),
                remaining,
            ).strip()
        except (LLMBusyError, LLMTimeoutError) as error:
            return Explanation(evidence, fallback, "template", f"LLM {error}")
        except Exception as error:
            return Explanation(evidence, fallback, "template", f"LLM failed ({type(error).__name__})")
        problem = self._reject_reason(text, evidence, known_names, language)
        if problem:
            return Explanation(evidence, fallback, "template", f"LLM text rejected: {problem}")
        return Explanation(evidence, text, "llm")

    @staticmethod
    def _reject_reason(
        text: str, evidence: Evidence, known_names: set[str], language: str = "en"
    ) -> str | None:
        if not text or len(text) > 600:
            return "empty or too long"
        if leaks_system_prompt(text):
            return "repeats the instructions"
        problem = (
            quality_problem(text)
            or language_problem(text, language)
            or ungrounded_sentence(text, evidence.facts())
        )
        if problem:
            return problem
        grounding = f"{evidence.title}\n{evidence.lines()}"
        outside = mentions_outside(text, grounding, evidence.allowed_names(), known_names)
        if outside:
            return f"names products outside the evidence: {outside[:3]}"
        return None


def _as_list(value: AttributeValues | None) -> list[AttributeValue]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]
