"""The gate for the pipeline's optional stages: each is measured on the shop's validation users (the
served ranking with and without it, as of the moment before each user's held-out next event) and is
served only where it does not lower validation NDCG@10 beyond noise."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from recommender.metrics import ndcg_at
from recommender.pipeline.pipeline import LLM_RERANK, Pipeline
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


def judging_models(model: PublishedModel, sample: Sequence[HeldOut]) -> list[PublishedModel]:
    """Per held-out user, ``model`` as it judges their next event: its learned ranker replaced by the one
    the ranker's gate fitted without that event (``LearnedRanker.held_out_for``). The published ranker
    learned from every user's held-out event, so its lists would be judged on events it was trained on,
    and look better than fusion's or a source's order by that much. A user no fold held out (the ranker
    never saw them) or a version whose folds were not kept is judged by ``model`` as it is."""
    ranker = model.parts.ranker
    per_fold: dict[int, PublishedModel] = {}
    judging = []
    for item in sample:
        fold = ranker.held_out_for(item.user_id) if ranker is not None else None
        if fold is None:
            judging.append(model)
            continue
        if id(fold) not in per_fold:
            parts = dataclasses.replace(model.parts, ranker=fold)
            per_fold[id(fold)] = dataclasses.replace(model, parts=parts)
        judging.append(per_fold[id(fold)])
    return judging


def served_ndcgs(
    pipeline: Pipeline, model: PublishedModel, sample: list[HeldOut], stats: ItemStats
) -> list[float]:
    """Per held-out user: NDCG@10 of ``pipeline``'s list as of the moment before their next event, the
    learned ranker judged out of fold (``judging_models``)."""
    scores = []
    for item, judging in zip(sample, judging_models(model, sample), strict=True):
        request = PipelineRequest(
            k=LIST_LENGTH, user_id=item.user_id, history=item.history, time=item.label.occurred_at
        )
        ranked = pipeline.rank(request, LIST_LENGTH, judging, stats=stats)
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


def llm_rerank_ndcgs(
    pipeline: Pipeline, model: PublishedModel, sample: list[HeldOut], stats: ItemStats
) -> tuple[list[float], list[float], int]:
    """Per held-out user: NDCG@10 of the list the service answers with the LLM re-rank asked for and
    without it (``Pipeline.run``, the API's path: its over-fetch, prompt, time budget and fusion with the
    retrieval order), as of the moment before their next event, the learned ranker judged out of fold
    (``judging_models``); and how many re-ranks fell back."""
    with_llm, without, fell_back = [], [], 0
    for item, judging in zip(sample, judging_models(model, sample), strict=True):
        request = PipelineRequest(
            k=LIST_LENGTH, user_id=item.user_id, history=item.history, time=item.label.occurred_at
        )
        plain = pipeline.run(request, judging, stats)
        reranked = pipeline.run(dataclasses.replace(request, rerank=True), judging, stats)
        fell_back += not (reranked.reranking or {}).get("reranked")
        without.append(_label_ndcg([entry.product_id for entry in plain.items], item.label.product_id))
        with_llm.append(_label_ndcg([entry.product_id for entry in reranked.items], item.label.product_id))
    return with_llm, without, fell_back


def _figures(paired: PairedDifference, name: str, gated: Sequence[str]) -> dict:
    return {
        "users": paired.users,
        "with_ndcg_at_10": paired.first,
        "without_ndcg_at_10": paired.second,
        "difference": paired.difference,
        "standard_error": paired.standard_error,
        "lowers_validation": paired.first_lower,
        "gated": name in gated,  # otherwise measured and reported only
        "served": bool(not paired.first_lower or name not in gated),
    }


def gate_stages(
    pipeline: Pipeline,
    model: PublishedModel,
    sample: list[HeldOut],
    stats: ItemStats,
    gated: Sequence[str],
    users: int,
    llm_users: int,
) -> dict[str, dict]:
    """Per configured stage: validation NDCG@10 with and without it on up to ``users`` held-out next
    events (``llm_users`` for the LLM re-rank, one model call each), the paired difference and its standard
    error, and whether the stage serves."""
    measured = sample[:users]
    results: dict[str, dict] = {}
    for stage in STAGES:
        if not stage.present(pipeline.config) or len(measured) < 2:
            continue
        without = pipeline.configured(**stage.without)
        paired = PairedDifference.of(
            served_ndcgs(pipeline, model, measured, stats), served_ndcgs(without, model, measured, stats)
        )
        results[stage.name] = _figures(paired, stage.name, gated)
    llm_sample = sample[:llm_users]
    # Unlike the other stages, the re-rank is measured only where it is gated: each user costs a model call
    # (an endpoint's, perhaps a paid one).
    llm = pipeline.llm is not None and pipeline.llm.chat_model is not None
    if llm and LLM_RERANK in gated and len(llm_sample) >= 2:
        # The other stages as they will serve: the LLM re-ranks the list the gate's decisions leave.
        decided = dataclasses.replace(model.parts, stage_gate=dict(results))
        as_served = dataclasses.replace(model, parts=decided)
        started = time.monotonic()
        with_llm, without_llm, fell_back = llm_rerank_ndcgs(pipeline, as_served, llm_sample, stats)
        results[LLM_RERANK] = {
            **_figures(PairedDifference.of(with_llm, without_llm), LLM_RERANK, gated),
            "fell_back": fell_back,
            "seconds": round(time.monotonic() - started, 1),
        }
    return results
