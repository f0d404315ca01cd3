"""Candidates from every source, merged by product: each keeps every source's score and rank."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class Hit(NamedTuple):
    """One source's answer for one product (rank 0 = the source's best). A tuple: a request makes ~400,
    and a frozen dataclass costs several times as much to build."""

    product_id: str
    score: float
    payload: dict[str, Any] | None  # None: a source that scores ids only; the pipeline reads it once


@dataclass(slots=True)
class Candidate:
    product_id: str
    payload: dict[str, Any]  # empty until read (a stored payload always holds the product id)
    scores: dict[str, float] = field(default_factory=dict)
    ranks: dict[str, int] = field(default_factory=dict)
    text_similarity: float | None = None  # cosine with the user's text profile, when there is one


def merge(lists: Iterable[tuple[str, list[Hit]]]) -> dict[str, Candidate]:
    """Union by product id, in first-seen order."""
    merged: dict[str, Candidate] = {}
    for source, hits in lists:
        for rank, (product_id, score, payload) in enumerate(hits):
            candidate = merged.get(product_id)
            if candidate is None:
                merged[product_id] = Candidate(product_id, payload or {}, {source: score}, {source: rank})
                continue
            if not candidate.payload and payload:
                candidate.payload = payload
            candidate.scores[source] = score
            candidate.ranks[source] = rank
    return merged
