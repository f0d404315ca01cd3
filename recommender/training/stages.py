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
        scores: dict[str, list[float]] = {"with": [], "without": []}
        for item in measured:
            request = PipelineRequest(
                k=LIST_LENGTH, user_id=item.user_id, history=item.history, time=item.label.occurred_at
            )
            for arm, variant in (("with", pipeline), ("without", without)):
                ranked = variant.rank(request, LIST_LENGTH, model, stats=stats)
                ids = [candidate.product_id for candidate in ranked.ordered]
                scores[arm].append(_label_ndcg(ids, item.label.product_id))
        difference = np.asarray(scores["with"]) - np.asarray(scores["without"])
        error = float(difference.std(ddof=1) / math.sqrt(len(difference)))
        lowers = float(difference.mean()) < -NOISE_STANDARD_ERRORS * error and difference.mean() < 0
        results[stage.name] = {
            "users": len(difference),
            "with_ndcg_at_10": float(np.mean(scores["with"])),
            "without_ndcg_at_10": float(np.mean(scores["without"])),
            "difference": float(difference.mean()),
            "standard_error": error,
            "lowers_validation": bool(lowers),
            "gated": stage.name in gated,  # otherwise measured and reported only
            "served": bool(not lowers or stage.name not in gated),
        }
    return results
