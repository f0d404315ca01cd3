"""Listwise LLM re-ranking with the safeguards that keep a weak or hostile model from hurting results.

- The model sees candidates under short labels; catalog text and history enter only as delimited data.
- A local model scores the labels from one forward pass; an endpoint generates an order, which is
  validated (unknown labels dropped, missing ones appended in retrieval order).
- Optional bootstrapping: several shuffled candidate orders, aggregated by Borda count.
- The final score fuses the LLM rank with the retrieval rank (``fusion_weight``): an item moves up at most
  ``max_displacement`` places, whatever the model says.
- A time budget per request: past it, retrieval order comes back, flagged with the reason.
- Results are cached by (prompt, model).
"""

from __future__ import annotations

import hashlib
import random
import re
import string
import time
from collections.abc import Sequence
from dataclasses import dataclass

from cachetools import TTLCache

from recommender.events import StoredEvent
from recommender.llm.calls import LLMBusyError, LLMCalls, LLMTimeoutError
from recommender.llm.chat import ChatModel
from recommender.llm.prompting import as_data, render, system_prompt
from recommender.models import CATEGORY_SEPARATOR, Recommendation
from recommender.settings import LLMConfig

LABELS = string.ascii_uppercase


@dataclass(frozen=True)
class RerankOutcome:
    reranked: bool
    reason: str
    method: str | None = None  # "label-logits" or "generated-order"
    model: str | None = None
    latency_ms: float = 0.0
    cached: bool = False


def max_displacement(fusion_weight: float, candidates: int) -> int:
    """How many places the fusion lets the LLM lift an item: i - j < w (n - 1) / (1 - w)."""
    if fusion_weight >= 1:
        return candidates - 1
    bound = fusion_weight * (candidates - 1) / (1 - fusion_weight)
    return max(0, min(candidates - 1, int(bound) if bound != int(bound) else int(bound) - 1))


def fuse(retrieval_order: Sequence[str], llm_order: Sequence[str], fusion_weight: float) -> list[str]:
    """Blend positions: (1 - w) * retrieval + w * LLM, both scaled to 1 (first) .. 0 (last)."""
    count = len(retrieval_order)
    if count < 2:
        return list(retrieval_order)
    llm_position = {item: index for index, item in enumerate(llm_order)}

    def score(index_item: tuple[int, str]) -> tuple[float, int]:
        index, item = index_item
        retrieval = 1 - index / (count - 1)
        llm = 1 - llm_position.get(item, index) / (count - 1)
        return (-((1 - fusion_weight) * retrieval + fusion_weight * llm), index)

    return [item for _, item in sorted(enumerate(retrieval_order), key=score)]


def parse_order(text: str, labels: Sequence[str]) -> list[str]:
    """Labels in the order the model named them; unknown ones dropped, missing ones appended in order."""
    known = set(labels)
    named = [label for label in re.findall(r"\b([A-Z])\b", text) if label in known]
    seen: list[str] = list(dict.fromkeys(named))
    return seen + [label for label in labels if label not in seen]


def borda(orders: Sequence[Sequence[str]]) -> list[str]:
    points: dict[str, float] = {}
    for order in orders:
        for position, label in enumerate(order):
            points[label] = points.get(label, 0.0) + len(order) - position
    first_seen = {label: index for index, label in enumerate(orders[0])}
    return sorted(points, key=lambda label: (-points[label], first_seen[label]))


def category_leaf(product: dict) -> str:
    """The last level of the product's category path ("Running" of "Sports > Running")."""
    return (product.get("category") or "").split(CATEGORY_SEPARATOR)[-1]


def history_lines(history: Sequence[StoredEvent], titles: dict[str, dict]) -> str:
    """The newest ten events, one short line each (title, last category level, event type)."""
    lines = []
    for event in history[:10]:
        product = titles.get(event.product_id)
        if product is None:
            continue
        leaf = category_leaf(product)
        lines.append(f"- {as_data(product['title'], 60)} ({as_data(leaf, 20)}): {event.event_type.value}")
    return "\n".join(lines) or "(none)"


def query_block(query: str | None) -> str:
    """The shopper's query as a data block, or nothing (every token costs time on a CPU)."""
    return f'<data kind="query">{as_data(query, 200)}</data>\n' if query else ""


def candidate_lines(items: Sequence[Recommendation], labels: Sequence[str]) -> str:
    """One short line per candidate: title, last category level, price. Prompt length is the latency of a
    small model on a CPU (about 280 tokens/s here), so descriptions stay out of the ranking prompt."""
    lines = []
    for label, item in zip(labels, items, strict=True):
        product = item.product
        leaf = category_leaf(product)
        price = f", {product['price']:.0f}" if product.get("price") is not None else ""
        lines.append(f"{label}. {as_data(product['title'], 60)} ({as_data(leaf, 20)}{price})")
    return "\n".join(lines)


class Reranker:
    def __init__(self, chat: ChatModel | None, settings: LLMConfig, calls: LLMCalls) -> None:
        self._chat = chat
        self._calls = calls
        self._settings = settings
        self._cache: TTLCache[str, list[str]] = TTLCache(
            maxsize=max(1, settings.cache_size), ttl=settings.cache_ttl_seconds
        )

    @property
    def may_send_user_data(self) -> bool:
        if self._chat is None:
            return False
        if self._settings.send_user_history is not None:
            return self._settings.send_user_history
        return not self._chat.remote

    def forget_cached(self) -> int:
        """Drop every cached order: prompts hold shoppers' histories (used when a user is erased)."""
        cached = len(self._cache)
        self._cache.clear()
        return cached

    def rerank(
        self,
        items: list[Recommendation],
        history: Sequence[StoredEvent],
        history_products: dict[str, dict],
        query: str | None,
        seed: int = 0,
    ) -> tuple[list[Recommendation], RerankOutcome]:
        """Re-rank the top ``rerank_top_n`` items; the rest keep their place below them."""
        if self._chat is None:
            return items, RerankOutcome(False, "no LLM configured (llm.backend = none)")
        if not self.may_send_user_data:
            return items, RerankOutcome(
                False,
                "user data may not go to a remote endpoint "
                "(set RECO_LLM__SEND_USER_HISTORY=true to allow it)",
            )
        top = items[: self._settings.rerank_top_n]
        if len(top) < 2:
            return items, RerankOutcome(False, "fewer than two candidates")
        started = time.monotonic()
        try:
            llm_order, method, cached = self._calls.run(
                lambda: self._llm_order(top, history, history_products, query, seed),
                self._settings.timeout_seconds,
            )
        except (LLMBusyError, LLMTimeoutError) as error:
            return items, RerankOutcome(
                False,
                f"LLM {error}: retrieval order",
                model=self._chat.name,
                latency_ms=(time.monotonic() - started) * 1000,
            )
        except Exception as error:  # a failing LLM must never fail the request
            return items, RerankOutcome(
                False,
                f"LLM failed ({type(error).__name__}: {str(error)[:200]}): retrieval order",
                model=self._chat.name,
                latency_ms=(time.monotonic() - started) * 1000,
            )
        by_id = {item.product_id: item for item in top}
        order = fuse([item.product_id for item in top], llm_order, self._settings.fusion_weight)
        reranked = [by_id[product_id] for product_id in order] + items[len(top) :]
        return reranked, RerankOutcome(
            True,
            f"fused with retrieval (LLM weight {self._settings.fusion_weight:g})",
            method,
            self._chat.name,
            (time.monotonic() - started) * 1000,
            cached,
        )

    def _llm_order(
        self,
        top: list[Recommendation],
        history: Sequence[StoredEvent],
        history_products: dict[str, dict],
        query: str | None,
        seed: int,
    ) -> tuple[list[str], str, bool]:
        assert self._chat is not None
        rng = random.Random(seed)
        orders: list[list[str]] = []
        method = "generated-order"
        cached_all = True
        for round_index in range(self._settings.bootstrap_orders):
            shuffled = list(top) if round_index == 0 else rng.sample(top, len(top))
            labels = list(LABELS[: len(shuffled)])
            prompt_fields = {
                "history": history_lines(history, history_products),
                "query": query_block(query),
                "candidates": candidate_lines(shuffled, labels),
            }
            order, method, cached = self._one_order(prompt_fields, labels)
            cached_all &= cached
            label_to_id = {label: item.product_id for label, item in zip(labels, shuffled, strict=True)}
            orders.append([label_to_id[label] for label in order])
        return (borda(orders) if len(orders) > 1 else orders[0]), method, cached_all

    def _one_order(self, fields: dict[str, str], labels: list[str]) -> tuple[list[str], str, bool]:
        assert self._chat is not None
        scored = render("rerank", **fields, answer_instruction="Answer with one letter.")
        key = hashlib.sha256(f"{self._chat.name}\x00{scored}".encode()).hexdigest()
        if key in self._cache:
            return self._cache[key], "cached", True
        logits = self._chat.label_scores(system_prompt(), scored, labels)
        if logits is not None:
            order = [
                label for _, label in sorted(zip(logits, labels, strict=True), key=lambda pair: -pair[0])
            ]
            method = "label-logits"
        else:
            generated = render(
                "rerank",
                **fields,
                answer_instruction=(
                    "Answer with all the letters from best to worst, separated by commas, e.g. C, A, B."
                ),
            )
            text = self._chat.complete(
                system_prompt(),
                generated,
                max_tokens=3 * len(labels) + 8,
                timeout_seconds=self._settings.timeout_seconds,
            )
            order, method = parse_order(text, labels), "generated-order"
        self._cache[key] = order
        return order, method, False
