"""The gate for the pipeline's optional stages: each is measured on the shop's validation users (the
served ranking with and without it, as of the moment before each user's held-out next event) and is
served only where it does not lower validation NDCG@10 beyond noise."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from recommender.metrics import ndcg_at
from recommender.pipeline.pipeline import Pipeline
from recommender.pipeline.registry import PublishedModel
from recommender.pipeline.request import PipelineRequest
from recommender.pipeline.stats import ItemStats
from recommender.settings import PipelineConfig
from recommender.training.held_out import HeldOut

LIST_LENGTH = 10
# A stage is switched off when it lowers the mean by more than this many standard errors of the paired
# difference: less than that is noise on a few hundred users.
NOISE_STANDARD_ERRORS = 2.0


@dataclass(frozen=True)
class Stage:
    name: str
    present: Callable[[PipelineConfig], bool]  # whether the configuration has the stage at all
    without: dict  # the configuration change that leaves it out


STAGES = (
    Stage("new_product_places", lambda config: config.new_product_slots > 0, {"new_product_slots": 0}),
    Stage("diversity", lambda config: config.diversity != "none", {"diversity": "none"}),
)


def _label_ndcg(product_ids: list[str], label: str) -> float:
    rank = product_ids.index(label) if label in product_ids else LIST_LENGTH
    return ndcg_at(np.asarray([rank]), LIST_LENGTH)


def served_ndcgs(
    pipeline: Pipeline, model: PublishedModel, sample: list[HeldOut], stats: ItemStats
) -> list[float]:
    """Per held-out user: NDCG@10 of ``pipeline``'s list as of the moment before their next event."""
    scores = []
    for item in sample:
        request = PipelineRequest(
            k=LIST_LENGTH, user_id=item.user_id, history=item.history, time=item.label.occurred_at
        )
        ranked = pipeline.rank(request, LIST_LENGTH, model, stats=stats)
        scores.append(
            _label_ndcg([candidate.product_id for candidate in ranked.ordered], item.label.product_id)
        )
    return scores


@dataclass(frozen=True)
class PairedDifference:
    """Two arms measured on the same users: the mean difference and its standard error."""

    users: int
    first: float  # mean of the first arm
    second: float
    difference: float  # first - second
    standard_error: float

    @classmethod
    def of(
        cls, first: Sequence[float] | np.ndarray, second: Sequence[float] | np.ndarray
    ) -> PairedDifference:
        difference = np.asarray(first) - np.asarray(second)
        error = float(difference.std(ddof=1) / math.sqrt(len(difference))) if len(difference) > 1 else 0.0
        return cls(
            len(difference), float(np.mean(first)), float(np.mean(second)), float(difference.mean()), error
        )

    @property
    def first_lower(self) -> bool:
        """Whether the first arm is lower by more than noise."""
        return self.difference < -NOISE_STANDARD_ERRORS * self.standard_error


def gate_stages(
    pipeline: Pipeline,
    model: PublishedModel,
    sample: list[HeldOut],
    stats: ItemStats,
    gated: Sequence[str],
    users: int,
) -> dict[str, dict]:
    """Per configured stage: validation NDCG@10 with and without it on up to ``users`` held-out next
    events, the paired difference and its standard error, and whether the stage serves."""
    measured = sample[:users]
    results: dict[str, dict] = {}
    for stage in STAGES:
        if not stage.present(pipeline.config) or len(measured) < 2:
            continue
        without = pipeline.configured(**stage.without)
        paired = PairedDifference.of(
            served_ndcgs(pipeline, model, measured, stats), served_ndcgs(without, model, measured, stats)
        )
        results[stage.name] = {
            "users": paired.users,
            "with_ndcg_at_10": paired.first,
            "without_ndcg_at_10": paired.second,
            "difference": paired.difference,
            "standard_error": paired.standard_error,
            "lowers_validation": paired.first_lower,
            "gated": stage.name in gated,  # otherwise measured and reported only
            "served": bool(not paired.first_lower or stage.name not in gated),
        }
    return results
