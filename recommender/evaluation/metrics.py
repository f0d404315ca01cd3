"""Ranking metrics for one target per user, computed from the target's rank (0 = first)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

CUTOFFS = (5, 10, 20)


def target_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Rank of each row's target among that row's scores; ties count against the target (pessimistic)."""
    target_scores = scores[np.arange(len(targets)), targets][:, None]
    return (scores > target_scores).sum(axis=1) + (scores == target_scores).sum(axis=1) - 1


def ndcg_at(ranks: np.ndarray, k: int) -> float:
    gains = np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)
    return float(gains.mean()) if len(ranks) else 0.0


def recall_at(ranks: np.ndarray, k: int) -> float:
    return float((ranks < k).mean()) if len(ranks) else 0.0


def mrr_at(ranks: np.ndarray, k: int) -> float:
    reciprocal = np.where(ranks < k, 1.0 / (ranks + 1.0), 0.0)
    return float(reciprocal.mean()) if len(ranks) else 0.0


def ranking_metrics(ranks: np.ndarray, cutoffs: Sequence[int] = CUTOFFS) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for k in cutoffs:
        metrics[f"ndcg@{k}"] = ndcg_at(ranks, k)
        metrics[f"recall@{k}"] = recall_at(ranks, k)
        metrics[f"mrr@{k}"] = mrr_at(ranks, k)
    return metrics


def coverage(top_lists: np.ndarray, item_count: int) -> float:
    """Share of the catalogue that appears in at least one recommended list."""
    return float(len(np.unique(top_lists)) / item_count) if item_count else 0.0


def popularity_percentile(top_lists: np.ndarray, popularity: np.ndarray) -> float:
    """Mean popularity percentile (0 = least, 100 = most popular) of recommended items.

    ``popularity`` is indexed like the items (index 0, padding, is ignored); ``top_lists`` holds indices.
    """
    counts = popularity[1:]
    order = np.argsort(np.argsort(counts, kind="stable"), kind="stable")
    percentile = 100.0 * order / max(1, len(counts) - 1)
    return float(percentile[top_lists - 1].mean()) if top_lists.size else math.nan
