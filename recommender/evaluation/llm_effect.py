"""The served list with and without the LLM re-rank stage, on a sample of users: what the LLM adds.

Both lists come from the same pipeline; the second asks for the re-rank the API applies by default, so
the prompt, the candidates, the budget and the fusion with retrieval order are the service's. The second
asks for it whether or not the training job's gate let it serve: the test split's verdict on the gate's
decision needs both arms (``stage_decisions``).
"""

from __future__ import annotations

import dataclasses
import random

import numpy as np

from recommender.evaluation.rows import Measured
from recommender.evaluation.split import Split, request_at_test_event
from recommender.metrics import ranking_metrics
from recommender.pipeline.pipeline import LLM_RERANK
from recommender.service import RecommenderService

CANDIDATES = 20
SAMPLE_ROW = "served@sample"  # the sampled users' served lists (variants.STAGE_WITHOUT names it too)
LLM_SAMPLE_ROW = "served+llm@sample"  # the same users' lists re-ranked by the LLM


def llm_rerank_effect(
    service: RecommenderService, split: Split, users: list[int], sample_size: int, seed: int = 42
) -> Measured:
    if service.pipeline.llm is None or service.pipeline.llm.chat_model is None:
        raise ValueError("an LLM backend is needed (RECO_LLM__BACKEND=local or openai)")
    sample = sorted(random.Random(seed).sample(users, min(sample_size, len(users))))
    gated = service.pipeline.config.gated_stages
    forced = service.pipeline.configured(gated_stages=[stage for stage in gated if stage != LLM_RERANK])
    before, after, fell_back = [], [], 0
    for user in sample:
        target = split.item_ids[split.test[user]]
        request = request_at_test_event(split, user, CANDIDATES)
        plain = [item.product_id for item in service.pipeline.run(request).items]
        reranked = forced.run(dataclasses.replace(request, rerank=True))
        if not (reranked.reranking or {}).get("reranked"):
            fell_back += 1
        ids = [item.product_id for item in reranked.items]
        before.append(plain.index(target) if target in plain else CANDIDATES)
        after.append(ids.index(target) if target in ids else CANDIDATES)
    with_llm = ranking_metrics(np.array(after))
    with_llm["fell_back_share"] = fell_back / max(1, len(sample))
    rows = Measured()
    rows.add(SAMPLE_ROW, {**ranking_metrics(np.array(before)), "users": float(len(sample))}, np.array(before))
    rows.add(LLM_SAMPLE_ROW, {**with_llm, "users": float(len(sample))}, np.array(after))
    return rows
