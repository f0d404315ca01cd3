"""Rules after ranking: optional diversity (MMR over text vectors, or a per-category cap)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from recommender.pipeline.candidates import Candidate


def category_cap(ordered: list[Candidate], cap: int, k: int) -> list[Candidate]:
    """At most ``cap`` per top-level category while the list fills; the rest follow in order."""
    counts: Counter[str] = Counter()
    kept, held = [], []
    for candidate in ordered:
        top = str(candidate.payload.get("category", "")).split(" > ")[0]
        if counts[top] < cap or not top:
            counts[top] += 1
            kept.append(candidate)
        else:
            held.append(candidate)
        if len(kept) >= k:
            break
    return [*kept, *held][: max(k, len(kept))]


def mmr(
    ordered: list[Candidate], scores: np.ndarray, vectors: dict[str, np.ndarray], weight: float, k: int
) -> list[Candidate]:
    """Maximal marginal relevance: each pick trades its (rank-normalised) relevance for novelty."""
    if not ordered:
        return ordered
    relevance = np.linspace(1.0, 0.0, num=len(ordered)) if len(ordered) > 1 else np.ones(1)
    chosen: list[int] = []
    remaining = list(range(len(ordered)))
    while remaining and len(chosen) < k:
        best, best_value = remaining[0], -np.inf
        for index in remaining:
            vector = vectors.get(ordered[index].product_id)
            redundancy = max(
                (
                    float(vector @ vectors[ordered[other].product_id])
                    for other in chosen
                    if vector is not None and ordered[other].product_id in vectors
                ),
                default=0.0,
            )
            value = weight * relevance[index] - (1 - weight) * redundancy
            if value > best_value:
                best, best_value = index, value
        chosen.append(best)
        remaining.remove(best)
    return [ordered[index] for index in chosen]
