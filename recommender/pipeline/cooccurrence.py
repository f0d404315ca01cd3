"""Item-to-item co-occurrence: for each product, the products most often in the same users' histories."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

NEIGHBOURS = 50
# Only each user's most recent products count, so one very long history cannot dominate.
RECENT_PER_USER = 100


@dataclass
class CoOccurrence:
    product_ids: list[str]
    neighbours: np.ndarray  # [N, NEIGHBOURS] indices into product_ids, -1 = none
    scores: np.ndarray  # [N, NEIGHBOURS] cosine of co-occurrence counts

    def __post_init__(self) -> None:
        self._index_of = {pid: index for index, pid in enumerate(self.product_ids)}

    @classmethod
    def fit(cls, sequences: Sequence[Sequence[str]], neighbours: int = NEIGHBOURS) -> CoOccurrence:
        product_ids = sorted({pid for sequence in sequences for pid in sequence})
        index_of = {pid: index for index, pid in enumerate(product_ids)}
        rows, columns = [], []
        for row, sequence in enumerate(sequences):
            for pid in dict.fromkeys(sequence[-RECENT_PER_USER:]):
                rows.append(row)
                columns.append(index_of[pid])
        users_by_item = sparse.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, columns)), shape=(len(sequences), len(product_ids))
        )
        counts = (users_by_item.T @ users_by_item).tocsr()
        norms = np.sqrt(np.asarray(counts.diagonal(), dtype=np.float64)) + 1e-9
        size = len(product_ids)
        top = np.full((size, neighbours), -1, dtype=np.int32)
        top_scores = np.zeros((size, neighbours), dtype=np.float32)
        for item in range(size):
            start, end = counts.indptr[item], counts.indptr[item + 1]
            others, values = counts.indices[start:end], counts.data[start:end]
            keep = others != item
            others, values = others[keep], values[keep] / norms[item] / norms[others[keep]]
            order = np.argsort(-values, kind="stable")[:neighbours]
            top[item, : len(order)] = others[order]
            top_scores[item, : len(order)] = values[order]
        return cls(product_ids, top, top_scores)

    def top(self, recent_product_ids: Sequence[str], count: int) -> list[tuple[str, float]]:
        """The ``count`` best neighbours by summed similarity, ties by product id."""
        items, totals = self._totals(recent_product_ids)
        order = np.lexsort((items, -totals))[:count]  # product_ids are sorted: index order is id order
        return [(self.product_ids[items[i]], float(totals[i])) for i in order]

    def _totals(self, recent_product_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        rows = [item for pid in recent_product_ids if (item := self._index_of.get(pid)) is not None]
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        neighbours, scores = self.neighbours[rows].ravel(), self.scores[rows].ravel()
        known = neighbours >= 0
        items, slots = np.unique(neighbours[known], return_inverse=True)
        totals = np.bincount(slots, weights=scores[known].astype(np.float64), minlength=len(items))
        return items.astype(np.int64), totals

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path, product_ids=np.asarray(self.product_ids), neighbours=self.neighbours, scores=self.scores
        )

    @classmethod
    def load(cls, path: Path) -> CoOccurrence:
        with np.load(path) as data:
            return cls([str(pid) for pid in data["product_ids"]], data["neighbours"], data["scores"])
