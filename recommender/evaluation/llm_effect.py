"""The hybrid with and without LLM re-ranking, on a sample of users: what the LLM adds, measured honestly.

The LLM sees each sampled user's recent items and the hybrid's top 20 (titles and genres), exactly as the
service would show them, and the fusion with retrieval order applies as in the service.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

import numpy as np

from recommender.evaluation.data import ItemInfo
from recommender.evaluation.methods import EvalContext, Phase
from recommender.evaluation.metrics import ranking_metrics
from recommender.evaluation.runner import masked
from recommender.events import StoredEvent
from recommender.llm.calls import LLMCalls
from recommender.llm.chat import build_chat_model
from recommender.llm.rerank import Reranker
from recommender.models import EventType, Recommendation, Signal
from recommender.settings import LLMSettings

CANDIDATES = 20


def _product(context: EvalContext, item: int) -> dict:
    item_id = context.split.item_ids[item]
    info = context.items.get(item_id) or ItemInfo(item_id, title=item_id)
    category = " > ".join(["Movies", *info.genres[:1]])
    description = f"{info.year or ''} {', '.join(info.genres)}".strip()
    return {
        "product_id": str(item),
        "title": info.title,
        "category": category,
        "brand": "",
        "price": None,
        "description": description,
    }


def llm_rerank_effect(
    context: EvalContext,
    fused_test_scores: np.ndarray,
    settings: LLMSettings,
    sample_size: int,
    seed: int = 42,
) -> dict[str, dict[str, float]]:
    chat = build_chat_model(settings)
    if chat is None:
        raise ValueError("an LLM backend is needed (RECO_LLM__BACKEND=local or openai)")
    reranker = Reranker(chat, settings, LLMCalls(1))
    scores = masked(context, Phase.TEST, fused_test_scores)
    targets = context.targets(Phase.TEST)
    histories = context.histories(Phase.TEST)
    rows = random.Random(seed).sample(range(len(targets)), min(sample_size, len(targets)))
    before, after, fell_back = [], [], 0
    now = datetime.now(UTC)
    for row in rows:
        order = np.argsort(-scores[row], kind="stable")
        rank = int(np.flatnonzero(order == targets[row])[0])
        before.append(rank)
        top = [int(item) for item in order[:CANDIDATES]]
        items = [
            Recommendation(
                product_id=str(item),
                score=float(scores[row, item]),
                signal=Signal.HYBRID,
                product=_product(context, item),
            )
            for item in top
        ]
        recent = histories[row][-10:][::-1]
        history = [StoredEvent("user", str(item), EventType.VIEW, None, now) for item in recent]
        history_products = {str(item): _product(context, item) for item in recent}
        reranked, outcome = reranker.rerank(items, history, history_products, None, seed=row)
        if not outcome.reranked:
            fell_back += 1
        new_order = [int(item.product_id) for item in reranked]
        after.append(new_order.index(targets[row]) if rank < CANDIDATES else rank)
    with_llm = ranking_metrics(np.array(after))
    with_llm["fell_back_share"] = fell_back / len(rows)
    return {
        "hybrid@sample": {**ranking_metrics(np.array(before)), "users": float(len(rows))},
        "hybrid+llm@sample": {**with_llm, "users": float(len(rows))},
    }
