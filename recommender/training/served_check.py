"""The served lists judged on the shop's validation users: NDCG@10 of what the whole pipeline serves, as of
the moment before each held-out next event. A change that touches every stage at once (the shop's encoder)
is kept only where these figures do not fall beyond noise. A learned ranker is judged out of fold (see
``stages.judging_models``): otherwise an arm whose ranker learned from these very events would look better
than one served by rank fusion."""

from __future__ import annotations

from recommender.events import EventStore
from recommender.pipeline.pipeline import Pipeline
from recommender.pipeline.registry import PublishedModel
from recommender.settings import Settings
from recommender.training.parts import HeldOutView
from recommender.training.stages import PairedDifference, served_ndcgs


def served_validation(
    pipeline: Pipeline, model: PublishedModel, events: EventStore, settings: Settings, seed: int
) -> dict[str, float]:
    """Per validation user (at most ``stage_gate_users``): NDCG@10 of the served list."""
    view = HeldOutView.of(events.all_events(), settings, seed)
    sample = view.sample[: settings.pipeline_config.stage_gate_users]
    scores = served_ndcgs(pipeline, view.as_of(model), sample, view.stats_as_of)
    return {item.user_id: score for item, score in zip(sample, scores, strict=True)}


def compare_served(candidate: dict[str, float], serving: dict[str, float]) -> dict:
    """The candidate's served figures against the serving ones, on the users both were measured on."""
    users = sorted(set(candidate) & set(serving))
    if len(users) < 2:
        return {
            "users": len(users),
            "lowers_validation": False,
            "note": "too few validation users to compare",
        }
    paired = PairedDifference.of([candidate[user] for user in users], [serving[user] for user in users])
    return {
        "users": paired.users,
        "with_ndcg_at_10": round(paired.first, 5),
        "without_ndcg_at_10": round(paired.second, 5),
        "difference": round(paired.difference, 5),
        "standard_error": round(paired.standard_error, 5),
        "lowers_validation": paired.first_lower,
    }


def ranking_judged(model: PublishedModel | None) -> str:
    """How ``served_validation`` judged the ranking ``model`` serves, for the gate's report."""
    parts = model.parts if model is not None else None
    if parts is None:
        return "no trained model"
    if parts.ranker is not None:
        if parts.ranker.cross_fitted:
            return "learned ranker, out of fold"
        return "learned ranker, in sample (a version saved before its folds were kept)"
    if parts.served_source is not None:
        return f"the {parts.served_source} source's own order"
    return "rank fusion"
