""" "How is it different from X?": X resolved to a catalog product by name, the differences computed.

The facts come from the data (price, category, brand, attributes); a model may only word them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

from recommender.models import attribute_text

NAMED_OTHER = [
    re.compile(
        r"\b(?:different from|differs? from|difference (?:from|with|between (?:it|this|them) and)|"
        r"compared? (?:it |this )?(?:to|with)|versus|vs\.?|better than|than)\s+(?:the |a |an )?(?P<name>.+)$",
        re.IGNORECASE,
    ),
    re.compile(
        r"(?:和|与|跟|同|比)(?P<name>.+?)(?:相比|比较|对比|有什么|有何|的区别|的不同|的差别|区别|不同|差别|差异)"
    ),
]
# A name matches a title this well or better to count; a second title within the margin is ambiguous.
MATCH_THRESHOLD = 0.6
AMBIGUITY_MARGIN = 0.05


@dataclass
class Comparison:
    name: str | None  # what the shopper called the other product
    other: dict[str, Any] | None = None  # the product it resolved to
    ambiguous: list[dict[str, Any]] = field(default_factory=list)  # the products it could be
    facts: list[str] = field(default_factory=list)  # the computed differences, one sentence each


def named_other(message: str) -> str | None:
    """The other product's name in a comparison question, or None."""
    text = message.strip()
    for pattern in NAMED_OTHER:
        found = pattern.search(text)
        if found:
            name = re.sub(r"[\s?？.!！。]+$", "", found.group("name")).strip(" \"'“”「」")
            return name or None
    return None


def name_match(name: str, title: str) -> float:
    """How well a shopper's name for a product matches a title (0-1): the sequence ratio, or nearly 1
    when every word of the name is in the title ("Asana" and "Asana Business")."""
    wanted, have = name.casefold().strip(), title.casefold().strip()
    ratio = SequenceMatcher(None, wanted, have).ratio()
    words = re.findall(r"\w+", wanted)
    if words and all(re.search(rf"\b{re.escape(word)}\b", have) for word in words):
        ratio = max(ratio, 0.9 + 0.1 * len(wanted) / max(len(have), 1))
    title_words = re.findall(r"\w+", have)
    if title_words and all(re.search(rf"\b{re.escape(word)}\b", wanted) for word in title_words):
        ratio = max(ratio, 0.85 + 0.1 * len(have) / max(len(wanted), 1))  # "the Trello Business plan"
    return ratio


def resolve(name: str, candidates: Sequence[dict[str, Any]], exclude: str) -> tuple[dict | None, list[dict]]:
    """(the product the name means, or None; the products it could be when it is ambiguous)."""
    scored = sorted(
        (
            (name_match(name, str(c.get("title", ""))), c)
            for c in candidates
            if c.get("product_id") != exclude
        ),
        key=lambda pair: -pair[0],
    )
    good = [(score, c) for score, c in scored if score >= MATCH_THRESHOLD]
    if not good:
        return None, []
    best_score = good[0][0]
    close = [c for score, c in good if best_score - score <= AMBIGUITY_MARGIN]
    distinct_titles = {str(c.get("title", "")).casefold() for c in close}
    if len(distinct_titles) > 1:
        return None, close[:4]
    return good[0][1], []


SAY: dict[str, dict[str, str]] = {
    "en": {
        "same_price": "{a} and {b} both cost {price}",
        "price": "{a} costs {pa} and {b} costs {pb}: {cheaper} is {gap} cheaper than {dearer}",
        "same_category": "both are in {value}",
        "category": "{a} is in {va}, {b} in {vb}",
        "same_brand": "both are from {value}",
        "brand": "{a} is from {va}, {b} from {vb}",
        "attribute": "{key}: {va} for {a}, {vb} for {b}",
    },
    "zh": {
        "same_price": "{a}和{b}的价格都是{price}",
        "price": "{a}的价格是{pa}，{b}的价格是{pb}：{cheaper}比{dearer}便宜{gap}",
        "same_category": "两者都属于{value}",
        "category": "{a}属于{va}，{b}属于{vb}",
        "same_brand": "两者都来自{value}",
        "brand": "{a}来自{va}，{b}来自{vb}",
        "attribute": "{key}：{a}为{va}，{b}为{vb}",
    },
}


def differences(product: dict[str, Any], other: dict[str, Any], language: str = "en") -> list[str]:
    """What the data shows about the two products (price, category, brand, shared attributes)."""
    say = SAY["zh"] if language.lower().startswith("zh") else SAY["en"]
    a, b = product["title"], other["title"]
    facts = []
    price, other_price = product.get("price"), other.get("price")
    if isinstance(price, int | float) and isinstance(other_price, int | float):
        if price == other_price:
            facts.append(say["same_price"].format(a=a, b=b, price=f"{price:.2f}"))
        else:
            cheaper, dearer = (a, b) if price < other_price else (b, a)
            gap = f"{abs(price - other_price):.2f}"
            facts.append(
                say["price"].format(
                    a=a,
                    b=b,
                    pa=f"{price:.2f}",
                    pb=f"{other_price:.2f}",
                    cheaper=cheaper,
                    dearer=dearer,
                    gap=gap,
                )
            )
    for name in ("category", "brand"):
        mine, theirs = product.get(name) or "", other.get(name) or ""
        if mine and theirs:
            key = f"same_{name}" if mine == theirs else name
            facts.append(say[key].format(a=a, b=b, value=mine, va=mine, vb=theirs))
    attributes, other_attributes = product.get("attributes") or {}, other.get("attributes") or {}
    for key in sorted(set(attributes) & set(other_attributes)):
        if attributes[key] != other_attributes[key]:
            facts.append(
                say["attribute"].format(
                    key=key,
                    a=a,
                    b=b,
                    va=attribute_text(attributes[key]),
                    vb=attribute_text(other_attributes[key]),
                )
            )
    return facts


def compare(
    message: str,
    product: dict[str, Any],
    search: Callable[[str, int], Sequence[dict[str, Any]]],
    language: str = "en",
    candidates_wanted: int = 10,
) -> Comparison | None:
    """``search(name, k)``: product payloads from the catalog's text search. None when the message names
    no other product."""
    name = named_other(message)
    if name is None:
        return None
    other, ambiguous = resolve(name, search(name, candidates_wanted), product["product_id"])
    if other is None:
        return Comparison(name, None, ambiguous)
    return Comparison(name, other, [], differences(product, other, language))
