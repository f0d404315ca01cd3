"""Run the methods on one split, measure them, tune the hybrid on validation, and report."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from recommender.evaluation.methods import (
    EvalContext,
    Phase,
    item_knn_scores,
    metadata_prior_scores,
    popularity_scores,
    sequence_scores,
    text_profile_scores,
)
from recommender.evaluation.metrics import coverage, popularity_percentile, ranking_metrics, target_ranks
from recommender.sequence.model import Objective

logger = logging.getLogger(__name__)

ScoreFunction = Callable[[EvalContext, Phase], np.ndarray]
SEQUENCE_METHODS = {objective.value: objective for objective in Objective}
BASE_METHODS: dict[str, ScoreFunction] = {
    "popularity": popularity_scores,
    "itemknn": item_knn_scores,
    "text": text_profile_scores,
    **{name: sequence_scores(objective) for name, objective in SEQUENCE_METHODS.items()},
}
ALL_METHODS = [*BASE_METHODS, "hybrid", "served"]
COLD_METHODS = ["popularity", "text", "features", "sequence", "hybrid", "hybrid+features"]
TEXT_WEIGHTS = (0.0, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 2.0)
PRIOR_WEIGHTS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class EvalOptions:
    exclude_seen: bool = True
    top_k: int = 10


def masked(context: EvalContext, phase: Phase, scores: np.ndarray, exclude_seen: bool = True) -> np.ndarray:
    scores = np.array(scores, dtype=np.float64, copy=True)
    scores[:, 0] = -np.inf
    if exclude_seen:
        targets = context.targets(phase)
        for row, history in enumerate(context.histories(phase)):
            seen = np.asarray(history, dtype=np.int64)
            scores[row, seen[seen != targets[row]]] = -np.inf
    return scores


def rank_and_measure(
    context: EvalContext,
    phase: Phase,
    scores: np.ndarray,
    exclude_seen: bool = True,
    rows: np.ndarray | None = None,
    top_k: int = 10,
) -> dict[str, float]:
    scores = masked(context, phase, scores, exclude_seen)
    targets = context.targets(phase)
    if rows is not None:
        scores, targets = scores[rows], targets[rows]
    metrics = ranking_metrics(target_ranks(scores, targets))
    top = np.argsort(-scores, axis=1, kind="stable")[:, :top_k]
    metrics[f"coverage@{top_k}"] = coverage(top, context.split.item_count)
    metrics[f"popularity_percentile@{top_k}"] = popularity_percentile(top, context.popularity(phase))
    metrics["users"] = float(len(targets))
    return metrics


def zscore(scores: np.ndarray) -> np.ndarray:
    finite = np.where(np.isfinite(scores), scores, np.nan)
    mean = np.nanmean(finite, axis=1, keepdims=True)
    spread = np.nanstd(finite, axis=1, keepdims=True) + 1e-9
    return np.nan_to_num((finite - mean) / spread, nan=-1e9)


@dataclass
class Signals:
    sequence: np.ndarray
    text: np.ndarray
    popularity: np.ndarray
    prior: np.ndarray | None = None

    def fuse(self, text_weight: float, prior_weight: float) -> np.ndarray:
        """Sum of per-user z-scores. The popularity term is the observed log popularity, or, with item
        features, the observed one for items with events and the predicted one for items without."""
        popularity = np.log1p(self.popularity)
        if self.prior is not None:
            popularity = np.where(self.popularity > 0, popularity, self.prior)
        return zscore(self.sequence) + text_weight * zscore(self.text) + prior_weight * zscore(popularity)


def signals(context: EvalContext, phase: Phase, sequence_method: str, with_prior: bool) -> Signals:
    sequence = impute_cold_scores(BASE_METHODS[sequence_method](context, phase), context, phase)
    return Signals(
        sequence=sequence,
        text=text_profile_scores(context, phase),
        popularity=popularity_scores(context, phase),
        prior=metadata_prior_scores(context, phase) if with_prior else None,
    )


def impute_cold_scores(
    sequence: np.ndarray, context: EvalContext, phase: Phase, neighbours: int = 10
) -> np.ndarray:
    """Items without events have untrained embeddings, so their sequence score is noise. Give each the
    mean score of its nearest items by text that do have events: cold items stay reachable."""
    no_events = context.popularity(phase) == 0
    no_events[0] = False
    if not no_events.any():
        return sequence
    vectors = context.item_vectors()
    warm = np.flatnonzero(~no_events)
    warm = warm[warm != 0]
    cold = np.flatnonzero(no_events)
    similarity = vectors[cold] @ vectors[warm].T
    nearest = np.argsort(-similarity, axis=1)[:, :neighbours]
    imputed = sequence.copy()
    imputed[:, cold] = sequence[:, warm[nearest]].mean(axis=2)
    return imputed


def tune_hybrid(
    context: EvalContext,
    sequence_method: str,
    with_prior: bool,
    exclude_seen: bool,
    rows: np.ndarray | None = None,
) -> tuple[float, float]:
    """Pick the fusion weights by validation NDCG@10 (never by test)."""
    valid = signals(context, Phase.VALID, sequence_method, with_prior)
    best, best_weights = -1.0, (0.0, 0.0)
    for text_weight, prior_weight in itertools.product(TEXT_WEIGHTS, PRIOR_WEIGHTS):
        score = rank_and_measure(
            context, Phase.VALID, valid.fuse(text_weight, prior_weight), exclude_seen, rows
        )["ndcg@10"]
        if score > best:
            best, best_weights = score, (text_weight, prior_weight)
    return best_weights


def evaluate_methods(
    context: EvalContext,
    methods: list[str],
    options: EvalOptions,
    on_method: Callable[[str], None] | None = None,
) -> dict[str, dict[str, float]]:
    """Main split: every method on every user, test phase; the hybrid uses the best sequence model."""
    results: dict[str, dict[str, float]] = {}
    for name in methods:
        if name in ("hybrid", "served"):
            continue
        if on_method:
            on_method(name)
        started = time.monotonic()
        scores = BASE_METHODS[name](context, Phase.TEST)
        results[name] = rank_and_measure(
            context, Phase.TEST, scores, options.exclude_seen, top_k=options.top_k
        )
        results[name]["seconds"] = time.monotonic() - started
        if name in context.trained:
            trained = context.trained[name]
            results[name].update(
                train_seconds=trained.seconds,
                epochs=float(trained.epochs_run),
                validation_ndcg_at_10=trained.best_validation,
            )
    if "served" in methods:
        if on_method:
            on_method("served")
        served = served_scores(context, Phase.TEST, best_sequence_method(context, methods))
        results["served"] = rank_and_measure(
            context, Phase.TEST, served, options.exclude_seen, top_k=options.top_k
        )
    if "hybrid" in methods:
        if on_method:
            on_method("hybrid")
        sequence_method = best_sequence_method(context, methods)
        text_weight, prior_weight = tune_hybrid(context, sequence_method, False, options.exclude_seen)
        fused = signals(context, Phase.TEST, sequence_method, False).fuse(text_weight, prior_weight)
        context.hybrid_test_scores = fused
        results["hybrid"] = rank_and_measure(
            context, Phase.TEST, fused, options.exclude_seen, top_k=options.top_k
        )
        results["hybrid"].update(text_weight=text_weight, popularity_weight=prior_weight)
        results["hybrid"]["sequence_model"] = float(list(SEQUENCE_METHODS).index(sequence_method))
    return results


def served_scores(
    context: EvalContext,
    phase: Phase,
    sequence_method: str,
    depth: int = 50,
    collab_weight: float = 1.0,
    text_weight: float = 0.5,
    offset: int = 60,
) -> np.ndarray:
    """What the API serves: reciprocal-rank fusion of the model's top ``depth`` and the text profile's
    (the service's default weights), seen items removed from both lists first, as the service does."""
    lists = [
        (collab_weight, masked(context, phase, BASE_METHODS[sequence_method](context, phase))),
        (text_weight, masked(context, phase, text_profile_scores(context, phase))),
    ]
    fused = np.zeros_like(lists[0][1])
    rows = np.arange(len(fused))[:, None]
    for weight, scores in lists:
        top = np.argsort(-scores, axis=1, kind="stable")[:, :depth]
        fused[rows, top] += weight / (offset + 1 + np.arange(depth))[None, :]
    return fused


def best_sequence_method(context: EvalContext, methods: list[str]) -> str:
    """The served sequence model: the best by validation among those trained (SASRec if none yet)."""
    trained = {name: result.best_validation for name, result in context.trained.items() if name in methods}
    if not trained:
        BASE_METHODS[Objective.CAUSAL.value](context, Phase.VALID)
        trained = {Objective.CAUSAL.value: context.trained[Objective.CAUSAL.value].best_validation}
    return max(trained, key=lambda name: trained[name])


def evaluate_cold_start(
    context: EvalContext, sequence_method: str, options: EvalOptions
) -> dict[str, dict[str, float]]:
    """Users whose test item has no training events at all: what text and item features recover."""
    cold_items = context.split.cold_items
    targets = context.targets(Phase.TEST)
    rows = np.flatnonzero(np.isin(targets, list(cold_items)))
    valid_rows = np.flatnonzero(np.isin(context.targets(Phase.VALID), list(cold_items)))
    tuning_rows = valid_rows if len(valid_rows) >= 20 else None
    measure = lambda scores: rank_and_measure(  # noqa: E731
        context, Phase.TEST, scores, options.exclude_seen, rows, options.top_k
    )
    test_signals = signals(context, Phase.TEST, sequence_method, True)
    results = {
        "popularity": measure(test_signals.popularity),
        "text": measure(test_signals.text),
        "features": measure(metadata_prior_scores(context, Phase.TEST)),
        "sequence": measure(test_signals.sequence),
    }
    text_weight, prior_weight = tune_hybrid(
        context, sequence_method, False, options.exclude_seen, tuning_rows
    )
    no_prior = Signals(test_signals.sequence, test_signals.text, test_signals.popularity)
    results["hybrid"] = measure(no_prior.fuse(text_weight, prior_weight))
    text_weight, prior_weight = tune_hybrid(context, sequence_method, True, options.exclude_seen, tuning_rows)
    results["hybrid+features"] = measure(test_signals.fuse(text_weight, prior_weight))
    results["hybrid+features"].update(text_weight=text_weight, prior_weight=prior_weight)
    return results
