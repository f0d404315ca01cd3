"""What one measurement gives: the table's rows, and each measured user's NDCG@10 per row, kept so that two
rows measured on the same users can be compared by their paired difference (``decisions``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recommender.metrics import ndcg_gains
from recommender.training.stages import LIST_LENGTH  # the gate's list length: the same NDCG@10


@dataclass
class Measured:
    rows: dict[str, dict[str, float]] = field(default_factory=dict)
    user_ndcgs: dict[str, list[float]] = field(default_factory=dict)  # per row, in the users' order

    def add(self, name: str, metrics: dict[str, float], ranks: np.ndarray) -> None:
        """A row, with each user's target rank (0 = first) in the row's lists."""
        self.rows[name] = metrics
        self.user_ndcgs[name] = [float(gain) for gain in ndcg_gains(ranks, LIST_LENGTH)]

    def update(self, other: Measured, suffix: str = "") -> None:
        self.rows.update({f"{name}{suffix}": row for name, row in other.rows.items()})
        self.user_ndcgs.update({f"{name}{suffix}": ndcgs for name, ndcgs in other.user_ndcgs.items()})

    def extend(self, other: Measured) -> None:
        """Another seed's users after this one's (its rows go in ``mean_and_spread`` separately)."""
        for name, ndcgs in other.user_ndcgs.items():
            self.user_ndcgs.setdefault(name, []).extend(ndcgs)
