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


def ndcg_gains(ranks: np.ndarray, k: int) -> np.ndarray:
    """Each user's NDCG@k (one target: 1 / log2(rank + 2) inside the top k, 0 outside)."""
    return np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)


def ndcg_at(ranks: np.ndarray, k: int) -> float:
    return float(ndcg_gains(ranks, k).mean()) if len(ranks) else 0.0


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


def gini(exposure: np.ndarray) -> float:
    """Gini coefficient of how often each catalogue item is recommended (0 = even, 1 = one item)."""
    values = np.sort(np.asarray(exposure, dtype=np.float64))
    if values.sum() == 0 or len(values) == 0:
        return 0.0
    index = np.arange(1, len(values) + 1)
    return float((2 * index - len(values) - 1) @ values / (len(values) * values.sum()))


def intra_list_diversity(lists: Sequence[Sequence[str]], vectors: dict[str, np.ndarray]) -> float:
    """Mean over lists of 1 - the mean pairwise cosine of the items' text vectors."""
    scores = []
    for items in lists:
        known = [vectors[item] for item in items if item in vectors]
        if len(known) < 2:
            continue
        matrix = np.asarray(known, dtype=np.float64)
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True) + 1e-12
        similarity = matrix @ matrix.T
        pairs = len(known) * (len(known) - 1)
        scores.append(1.0 - (similarity.sum() - np.trace(similarity)) / pairs)
    return float(np.mean(scores)) if scores else math.nan


def list_ranks(lists: Sequence[Sequence[str]], targets: Sequence[str]) -> np.ndarray:
    """Each list's position of its target (0 = first); a target past the deepest cut-off counts as there."""
    depth = max(CUTOFFS)
    return np.asarray(
        [
            list(items).index(target) if target in items else depth
            for items, target in zip(lists, targets, strict=True)
        ]
    )


def list_metrics(
    lists: Sequence[Sequence[str]],
    targets: Sequence[str],
    catalogue: Sequence[str],
    popularity: dict[str, int],
    cold: set[str],
    vectors: dict[str, np.ndarray],
    top_k: int = 10,
) -> dict[str, float]:
    """Accuracy from each list's position of its target, and what the top ``top_k`` exposes overall."""
    metrics = ranking_metrics(list_ranks(lists, targets))
    tops = [list(items)[:top_k] for items in lists]
    index_of = {item: index for index, item in enumerate(catalogue)}
    exposure = np.zeros(len(catalogue))
    for items in tops:
        for item in items:
            if item in index_of:
                exposure[index_of[item]] += 1
    counts = np.asarray([popularity.get(item, 0) for item in catalogue], dtype=np.float64)
    order = np.argsort(np.argsort(counts, kind="stable"), kind="stable")
    percentile = 100.0 * order / max(1, len(catalogue) - 1)
    shown = [index_of[item] for items in tops for item in items if item in index_of]
    metrics.update(
        {
            f"coverage@{top_k}": float((exposure > 0).mean()) if len(catalogue) else 0.0,
            f"gini@{top_k}": gini(exposure),
            f"popularity_percentile@{top_k}": float(percentile[shown].mean()) if shown else math.nan,
            f"cold_exposure@{top_k}": float(np.mean([item in cold for items in tops for item in items]))
            if shown
            else 0.0,
            f"intra_list_diversity@{top_k}": intra_list_diversity(tops, vectors),
            "users": float(len(lists)),
        }
    )
    return metrics
