"""Training what the pipeline publishes beside the sequence model: co-occurrence, the item tower and
the learned ranker. Every user's features are built as of the moment before their held-out event."""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from recommender.catalog import Catalog
from recommender.events import EventStore, StoredEvent
from recommender.ids import product_point_id
from recommender.metrics import ndcg_at
from recommender.pipeline.artifacts import TrainedParts
from recommender.pipeline.attributes import AttributeEncoder
from recommender.pipeline.cooccurrence import CoOccurrence
from recommender.pipeline.item_tower import (
    RIDGES,
    ItemTowerOutput,
    NextProducts,
    choose_tower,
    fit_and_predict,
    set_reference_users,
)
from recommender.pipeline.pipeline import Pipeline
from recommender.pipeline.rankers import FeatureFrame, FusionRanker, LearnedRanker, SourceRanker
from recommender.pipeline.registry import PublishedModel
from recommender.pipeline.request import PipelineRequest
from recommender.pipeline.stats import ItemStats
from recommender.settings import Settings
from recommender.store import VectorStore
from recommender.training.held_out import HeldOut, held_out_next_events
from recommender.training.stages import PairedDifference, gate_stages
from recommender.training.user_split import judging_rows

logger = logging.getLogger(__name__)
SCROLL_PAGE = 1000


def catalog_content(store: VectorStore, catalog: Catalog) -> tuple[list[str], np.ndarray, list[dict]]:
    """Every product's id, text vector and payload, page by page."""
    ids: list[str] = []
    payloads: list[dict] = []
    offset = None
    while True:
        points, offset = store.scroll(SCROLL_PAGE, offset)
        ids += [point.payload["product_id"] for point in points]
        payloads += [point.payload for point in points]
        if offset is None or not points:
            break
    vectors: dict[str, np.ndarray] = {}
    for start in range(0, len(ids), SCROLL_PAGE):
        vectors.update(catalog.vectors(ids[start : start + SCROLL_PAGE]))
    keep = [index for index, pid in enumerate(ids) if pid in vectors]
    matrix = np.asarray([vectors[ids[index]] for index in keep], dtype=np.float32)
    return [ids[index] for index in keep], matrix, [payloads[index] for index in keep]


def train_item_tower(
    store: VectorStore,
    catalog: Catalog,
    model: PublishedModel,
    encoder_names: Sequence[str],
    stats: ItemStats,
    next_products: NextProducts,
    seed: int,
    fit_text: bool = False,
) -> tuple[ItemTowerOutput, AttributeEncoder]:
    ids, vectors, payloads = catalog_content(store, catalog)
    encoder = AttributeEncoder.fit(encoder_names, payloads)
    learned = model.vectors_by_id()
    log_users = {pid: stats.log_users(pid) for pid in ids}
    towers = fit_and_predict(ids, vectors, payloads, encoder, learned, log_users, RIDGES)
    output = choose_tower(towers, next_products, seed, fit_text)
    set_reference_users(output, next_products, seed)
    if output.cold_ids:
        # Products without events join the trained ones in the model's slot, at their predicted place.
        store.update_vectors(
            model.slot,
            {
                product_point_id(pid): vector
                for pid, vector in zip(output.cold_ids, output.cold_vectors, strict=True)
            },
        )
    return output, encoder


def next_products_before(pipeline: Pipeline, model: PublishedModel, sample: list[HeldOut]) -> NextProducts:
    """Each sampled user's sequence-model state and text profile as of the moment before the held-out
    event (the pipeline's own user state), that event's product and the user's earlier products."""
    states, labels, seen, profiles = [], [], [], []
    for item in sample:
        request = PipelineRequest(
            k=1, user_id=item.user_id, history=item.history, time=item.label.occurred_at
        )
        user = pipeline.user_state(request, model)
        if user.collab is not None:
            states.append(user.collab)
            labels.append(item.label.product_id)
            seen.append({event.product_id for event in item.history})
            profiles.append(user.profile)
    dimension = next((len(profile) for profile in profiles if profile is not None), 0)
    matrix = np.asarray(
        [profile if profile is not None else np.zeros(dimension) for profile in profiles], dtype=np.float32
    ).reshape(len(profiles), dimension)
    return NextProducts(np.asarray(states, dtype=np.float32), labels, seen, matrix if dimension else None)


def ranker_sample(held: list[HeldOut], settings: Settings, seed: int) -> list[HeldOut]:
    """The users training learns from: every one, or a fixed random share of them at scale."""
    sample = sorted(held, key=lambda item: item.user_id)
    limit = settings.pipeline_config.ranker_max_users
    return random.Random(seed).sample(sample, limit) if len(sample) > limit else sample


@dataclass(frozen=True)
class HeldOutView:
    """The sampled users' held-out next events, and what was known just before them: item statistics and
    co-occurrence without any held-out event or anything after it.

    ``sample`` holds each user's newest held-out event: what the ranker is judged on and the stages are
    measured on. Where the sequence model is trained without more than one event a user
    (``held_out_events``), ``earlier`` holds the same users' earlier cut points: more events for the
    ranker to learn from, each as new to the sequence model as a served request's newest product."""

    sample: list[HeldOut]
    stats_as_of: ItemStats
    cooccurrence_as_of: CoOccurrence
    earlier: list[HeldOut] = dataclasses.field(default_factory=list)

    @classmethod
    def of(cls, all_events: Sequence[StoredEvent], settings: Settings, seed: int) -> HeldOutView:
        held = held_out_next_events(all_events, settings, settings.collab_config.held_out_events)
        label_events = {id(item.label) for item in held}
        # Known before every held-out event of the user: before the oldest one.
        cut_by_user: dict[str, datetime] = {}
        for item in held:
            cut_by_user[item.user_id] = min(
                item.label.occurred_at, cut_by_user.get(item.user_id, item.label.occurred_at)
            )
        as_of = [
            event
            for event in all_events
            if id(event) not in label_events
            and event.occurred_at <= cut_by_user.get(event.user_id, event.occurred_at)
        ]
        stats = ItemStats.from_events(
            ((e.user_id, e.product_id, e.occurred_at) for e in as_of), settings.pipeline_config.recent_days
        )
        sample = ranker_sample([item for item in held if item.cut == 0], settings, seed)
        sampled = {item.user_id for item in sample}
        earlier = [item for item in held if item.cut > 0 and item.user_id in sampled]
        return cls(sample, stats, CoOccurrence.fit(_sequences(as_of)), earlier)

    def as_of(self, model: PublishedModel) -> PublishedModel:
        """``model`` with the co-occurrence known before the held-out events (its lists are judged on it)."""
        return _with_parts(model, dataclasses.replace(model.parts, cooccurrence=self.cooccurrence_as_of))


class ColdStartDropout:
    """Shows the ranker, during training, some candidates as a product without events would look: no
    popularity, no age, absent from the event-based sources, and its sequence-model vector replaced by
    the item tower's prediction from its content. A product without events can then be judged on its
    content (DropoutNet's idea); otherwise the ranker would learn that such products are never chosen,
    as no training label can be a product without events."""

    WARM_ONLY = ("popularity", "popularity_recent", "age_days")
    EVENT_SOURCES = ("cooccurrence", "popular", "trending")
    # Present in the sources a product without events can come from: the new-arrivals source.

    def __init__(self, columns: list[str], depth: int, share: float, rng: random.Random) -> None:
        self._index = {name: index for index, name in enumerate(columns)}
        self._depth = depth
        self._share = share
        self._salt = rng.randrange(2**32)

    def _draw(self, key: str, product_id: str) -> float:
        return zlib.crc32(f"{self._salt}\x00{key}\x00{product_id}".encode()) / 2**32

    def apply(
        self, key: str, frame: FeatureFrame, collab: np.ndarray | None, tower: ItemTowerOutput | None
    ) -> np.ndarray:
        matrix = frame.matrix.copy()
        if self._share <= 0:
            return matrix
        # Chosen by a hash of (run, request, product), not by position, so that a run reproduces whatever
        # order the candidates arrive in.
        rows = np.flatnonzero(
            [self._draw(key, candidate.product_id) < self._share for candidate in frame.candidates]
        )
        index = self._index
        for name in self.WARM_ONLY:
            if name in index:
                matrix[rows, index[name]] = 0.0
        for source in self.EVENT_SOURCES:
            if f"source_{source}_score" in index:
                matrix[rows, index[f"source_{source}_score"]] = np.nan
                matrix[rows, index[f"source_{source}_rank"]] = self._depth
        predicted = tower.predicted if tower is not None else None
        for row in rows:
            vector = predicted.get(frame.candidates[row].product_id) if predicted else None
            similarity = float(vector @ collab) if vector is not None and collab is not None else np.nan
            if "collab_similarity" in index:
                matrix[row, index["collab_similarity"]] = similarity
            if "source_collab_score" in index and not np.isnan(matrix[row, index["source_collab_score"]]):
                matrix[row, index["source_collab_score"]] = similarity
        return matrix


@dataclass
class RankerTraining:
    ranker: LearnedRanker | None
    note: str
    # The gate's figures: each objective's and fusion's NDCG@10 on users the ranker never saw, and the
    # decision (empty when no ranker was trained).
    validation: dict = dataclasses.field(default_factory=dict)


@dataclass
class RankerGroup:
    """One held-out next event: its candidates' features, which one it was, fusion's scores and each
    source's own order (``SourceRanker``), the rankings the learned one must beat."""

    matrix: np.ndarray
    labels: np.ndarray
    fusion: np.ndarray
    sources: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    user_id: str = ""  # whose event it is: some users judge the gate, the others chose the sequence model
    # The candidates' features as served, where ``matrix`` (what the ranker learns from) shows some of them
    # as products without events (``ColdStartDropout``): a ranker is judged on what it will score.
    served: np.ndarray | None = None

    @property
    def judged_matrix(self) -> np.ndarray:
        return self.matrix if self.served is None else self.served


RANKER_FOLDS = 5
ROUND_STEP = 5  # the ranker's number of rounds is chosen among multiples of this
RANKER_OBJECTIVES = ("binary", "lambdarank")


def label_ndcg(scores: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """NDCG@k of one request's single positive under ``scores`` (ties keep the candidates' order, as the
    pipeline's stable sort does)."""
    order = np.argsort(-scores, kind="stable")
    return ndcg_at(np.flatnonzero(labels[order] > 0)[:1], k)


def candidate_name(objective: str, overrides: dict) -> str:
    """A ranker candidate's name in the gate's figures: its objective, and the parameters it overrides."""
    if not overrides:
        return objective
    return f"{objective} ({', '.join(f'{key}={value}' for key, value in sorted(overrides.items()))})"


def _ranker_params(objective: str, settings: Settings, seed: int) -> dict:
    return {
        "objective": objective,
        # One positive per request and only as many requests as users: small, regularised trees.
        "learning_rate": 0.05,
        "num_leaves": 7,
        "min_data_in_leaf": 200,
        "lambda_l2": 10.0,
        "num_threads": settings.collab.threads or os.cpu_count() or 1,
        "deterministic": True,
        "force_row_wise": True,
        "seed": seed,
        "verbosity": -1,
    }


class RankerFitter:
    """LightGBM fits over a fixed set of groups, with the pipeline's feature columns. ``extra`` groups
    (the users' earlier cut points) are learned from with their user's groups, never scored."""

    def __init__(
        self,
        groups: list[RankerGroup],
        columns: list[str],
        categorical: list[str],
        extra: Sequence[RankerGroup] = (),
    ) -> None:
        self.groups = groups
        self.columns = columns
        self.categorical = categorical
        self.extra = list(extra)

    def dataset(self, indices: list[int], reference=None):  # noqa: ANN001, ANN201 (lightgbm is lazy)
        """The groups at ``indices``, and the extra groups of every user without a group elsewhere (a user
        whose newest event is left out is left out whole)."""
        import lightgbm

        kept = set(indices)
        left_out = {group.user_id for index, group in enumerate(self.groups) if index not in kept}
        chosen = [self.groups[index] for index in indices]
        chosen += [group for group in self.extra if group.user_id not in left_out]
        return lightgbm.Dataset(
            np.vstack([group.matrix for group in chosen]),
            np.concatenate([group.labels for group in chosen]),
            group=[len(group.labels) for group in chosen],
            feature_name=self.columns,
            categorical_feature=self.categorical,
            reference=reference,
            free_raw_data=False,
        )

    def out_of_fold(self, params: dict, trees: int, folds: list[list[int]]) -> CrossFitted:
        """Each fold's ranker trained on the other folds; every group's NDCG@10 under the ranker that never
        saw it, at the number of rounds where the mean of those scores over every group is highest.

        The rounds are chosen on every user's out-of-fold score, checked every ``ROUND_STEP`` rounds: an
        early stop on a tenth of a fold's users (a few dozen held-out events) chose them by noise, and
        the published ranker's rounds with them."""
        import lightgbm

        counts = list(range(ROUND_STEP, trees, ROUND_STEP)) + [trees]
        by_count = np.zeros((len(counts), len(self.groups)))
        boosters = []
        for fold in folds:
            held = set(fold)
            booster = lightgbm.train(
                params,
                self.dataset([index for index in range(len(self.groups)) if index not in held]),
                num_boost_round=trees,
            )
            boosters.append(booster)
            matrix = np.vstack([self.groups[index].judged_matrix for index in fold])
            ends = np.cumsum([len(self.groups[index].labels) for index in fold])[:-1]
            scores = np.zeros(len(matrix))
            done = 0
            # Raw scores summed tree block by tree block: one pass over the trees for every count.
            for row, count in enumerate(counts):
                scores += booster.predict(
                    matrix, start_iteration=done, num_iteration=count - done, raw_score=True, num_threads=1
                )
                done = count
                for index, group_scores in zip(fold, np.split(scores, ends), strict=True):
                    by_count[row, index] = label_ndcg(group_scores, self.groups[index].labels)
        best = int(np.argmax(by_count.mean(axis=1)))  # on a tie the fewest rounds
        for booster in boosters:
            # What ``predict`` uses, and what ``save_model`` keeps.
            booster.best_iteration = counts[best]
        held_users = [[self.groups[index].user_id for index in fold] for fold in folds]
        return CrossFitted(by_count[best], list(zip(held_users, boosters, strict=True)))


@dataclass(frozen=True)
class CrossFitted:
    """One objective's cross-fitting: each group's out-of-fold NDCG@10, and per fold the users it held out
    with the ranker fitted without them (kept with the published ranker: the gates judge lists with them)."""

    scores: np.ndarray
    folds: list[tuple[list[str], Any]]

    @property
    def rounds(self) -> list[int]:
        return [booster.best_iteration for _, booster in self.folds]


def train_ranker(
    pipeline: Pipeline,
    model: PublishedModel,
    sample: list[HeldOut],
    stats: ItemStats,
    encoder: AttributeEncoder,
    settings: Settings,
    seed: int,
    earlier: Sequence[HeldOut] = (),
) -> RankerTraining:
    """A LightGBM ranker on the candidates the served sources return for each held-out next event.

    The objective is chosen by cross-validation on these users, and the ranker is published only if
    its out-of-fold NDCG@10 beats rank fusion's on the same users (``ranker_gate``). ``earlier``: the
    same users' earlier cut points, which the ranker also learns from (never in the fold that judges
    their user) but is not judged on."""
    config = settings.pipeline_config
    if len(sample) < config.ranker_min_users:
        return RankerTraining(
            None,
            f"too few users to train a ranker ({len(sample)} with a held-out next event, "
            f"{config.ranker_min_users} needed)",
        )
    rng = random.Random(seed)
    fusion = FusionRanker(config.fusion_weights)
    # A single source is an alternative only beside others (alone, its order is fusion's).
    alone = (
        [SourceRanker(name, config.fusion_weights) for name in config.sources]
        if len(config.sources) > 1
        else []
    )
    started = time.monotonic()
    columns: list[str] = []
    tower = model.parts.tower
    coldifier = None

    def group_of(item: HeldOut) -> RankerGroup | None:
        nonlocal columns, coldifier
        request = PipelineRequest(
            k=config.depth, user_id=item.user_id, history=item.history, time=item.label.occurred_at
        )
        ranked = pipeline.rank(request, config.depth, model, stats=stats, ranker=fusion, encoder=encoder)
        if ranked.frame is None:
            return None
        labels = np.asarray(
            [candidate.product_id == item.label.product_id for candidate in ranked.frame.candidates],
            dtype=np.float64,
        )
        if labels.sum() == 0:
            return None
        columns = ranked.frame.columns
        if coldifier is None:
            coldifier = ColdStartDropout(columns, config.depth, config.ranker_cold_dropout, rng)
        # The newest cut keeps the user's key, so that one cut point draws what it always drew.
        key = item.user_id if item.cut == 0 else f"{item.user_id}\x00{item.cut}"
        matrix = coldifier.apply(key, ranked.frame, ranked.user.collab, tower)
        own_orders = {ranker.source: ranker.score(ranked.frame) for ranker in alone}
        return RankerGroup(
            matrix, labels, fusion.score(ranked.frame), own_orders, item.user_id, ranked.frame.matrix
        )

    groups = [group for group in map(group_of, sample) if group is not None]
    extra = [group for group in map(group_of, earlier) if group is not None]
    if len(groups) < config.ranker_min_users:
        return RankerTraining(None, f"too few users whose next event the sources found ({len(groups)})")
    trained = fit_gated_ranker(
        groups, columns, list(pipeline.features().categorical_columns(encoder)), settings, seed, extra
    )
    if trained.ranker is not None:
        trained.ranker.meta.update(
            {
                "sources": list(config.sources),
                "context_keys": list(config.context_features),
                "fusion_weights": dict(config.fusion_weights),
                "attributes": encoder.as_dict(),
                "sampled_users": len(sample),
                "earlier_events": len(extra),  # earlier cut points learned from (never judged)
                # Users whose next product the served sources returned, over every sampled user.
                "candidate_recall": len(groups) / len(sample),
                "seconds": time.monotonic() - started,
            }
        )
    return trained


def fit_gated_ranker(
    groups: list[RankerGroup],
    columns: list[str],
    categorical: list[str],
    settings: Settings,
    seed: int,
    extra: Sequence[RankerGroup] = (),
) -> RankerTraining:
    """Cross-validate each objective and keep the best; then serve whichever ranking scores highest on
    validation users: the learned ranker (out of fold, each user scored by a ranker that never saw them),
    rank fusion or (with ``ranker_source_orders``) one source's own order.

    Two comparisons, each on the users that can judge it fairly (``user_split``):
    - the learned ranker against rank fusion on every user. Both combine every source, and the paired
      difference on all of them is about half as noisy as on half of them;
    - each source's own order against fusion and the learned ranker on the judging users only, those the
      sequence model was not chosen on (on the others its own order looks better than it is).

    The learned ranker must win both by more than ``ranker_margin_standard_errors`` standard errors. With
    the gate off it serves whatever they say. ``extra``: more events of the same users that the rankers
    learn from (earlier cut points), each left out with its user's fold and never scored."""
    config = settings.pipeline_config
    rng = random.Random(seed)
    fitter = RankerFitter(groups, columns, categorical, extra)
    order = list(range(len(groups)))
    rng.shuffle(order)
    folds = [order[start::RANKER_FOLDS] for start in range(RANKER_FOLDS)]
    objectives = RANKER_OBJECTIVES if config.ranker_objective == "auto" else (config.ranker_objective,)
    judging, apart = judging_rows([group.user_id for group in groups], config.gate_user_share)
    fusion = np.asarray([label_ndcg(group.fusion, group.labels) for group in groups])
    # The sources' own orders are measured always (on the judging users), and compete only where the
    # settings let them.
    own_orders = {
        source: np.asarray([label_ndcg(groups[row].sources[source], groups[row].labels) for row in judging])
        for source in (groups[0].sources if groups else ())
    }
    # Every objective with the default parameters, then with each configured set, all on the same folds.
    candidates: dict[str, CrossFitted] = {}
    parameters: dict[str, dict] = {}
    for overrides in [{}, *(dict(extra) for extra in config.ranker_parameters if extra)]:
        for objective in objectives:
            name = candidate_name(objective, overrides)
            if name in candidates:
                continue
            parameters[name] = {**_ranker_params(objective, settings, seed), **overrides}
            candidates[name] = fitter.out_of_fold(parameters[name], config.ranker_trees, folds)
    chosen = max(candidates, key=lambda name: float(candidates[name].scores.mean()))
    # Every fold's ranker has the rounds chosen on every user's out-of-fold NDCG@10.
    chosen_scores, chosen_rounds = candidates[chosen].scores, candidates[chosen].rounds[0]
    # The best ranking that needs no training, on the judging users: fusion first, as a source's own order
    # must beat it, not tie it.
    untrained = {"fusion": fusion[judging]} | (own_orders if config.ranker_source_orders else {})
    best_alternative = max(untrained, key=lambda name: float(untrained[name].mean()))
    against_fusion = PairedDifference.of(chosen_scores, fusion)
    fusion_margin = config.ranker_margin_standard_errors * against_fusion.standard_error
    # With a margin of 1, the one-standard-error rule: where validation cannot tell the learned ranker from
    # the best ranking that needs no training, the simpler one serves.
    if best_alternative == "fusion":
        paired, margin = against_fusion, fusion_margin
    else:
        paired = PairedDifference.of(chosen_scores[judging], untrained[best_alternative])
        margin = config.ranker_margin_standard_errors * paired.standard_error
    beats = paired.difference > margin and against_fusion.difference > fusion_margin
    serves = "learned" if beats or not config.ranker_gate else best_alternative
    validation = {
        "users": len(judging),  # the judging users: the sources' own orders are measured on them
        "trained_users": len(groups),  # every user: the learned ranker against fusion is judged on all
        # Whether they were kept apart from the sequence model's choice (too few users: everyone does both).
        "judges_apart": apart,
        "folds": RANKER_FOLDS,
        # On every user, out of fold: the learned ranker's objectives and rank fusion.
        "fusion_ndcg_at_10": against_fusion.second,
        "objectives": {objective: float(fitted.scores.mean()) for objective, fitted in candidates.items()},
        "objective": chosen,
        "rounds": chosen_rounds,
        "ranker_ndcg_at_10": against_fusion.first,
        "against_fusion": {
            "difference": against_fusion.difference,
            "standard_error": against_fusion.standard_error,
            "margin": fusion_margin,
        },
        # On the judging users: every ranking that competes with a source's own order.
        "judged": {"learned": float(chosen_scores[judging].mean()), "fusion": float(fusion[judging].mean())},
        "sources": {name: float(scores.mean()) for name, scores in own_orders.items()},
        # Against the best ranking that needs no training and may serve (fusion, or a source's own order).
        "best_alternative": best_alternative,
        "difference": paired.difference,
        "difference_standard_error": paired.standard_error,
        "margin": margin,  # the difference the learned ranker had to exceed
        "serves": serves,
        "published": serves == "learned",
    }
    figures = _gate_figures(validation)
    if serves == "fusion":
        return RankerTraining(None, f"rank fusion serves: the learned ranker scored {figures}", validation)
    if serves != "learned":
        note = f"the {serves} source's own order serves: the learned ranker scored {figures}"
        return RankerTraining(None, note, validation)

    # The published ranker is the mean of the chosen candidate's fold rankers, each at the rounds chosen on
    # every user: the models the gate judged, not one refitted on every user without a held-out check (the
    # mean of five also varies less than one model; see docs/pipeline.md).
    meta = {
        "users": len(groups),
        "best_iteration": chosen_rounds,
        "fold_rankers": len(candidates[chosen].folds),
        "objective": chosen,
        "validation_ndcg_at_10": validation["ranker_ndcg_at_10"],
        "fusion_validation_ndcg_at_10": validation["fusion_ndcg_at_10"],
    }
    ranker = LearnedRanker(None, columns, meta, folds=candidates[chosen].folds)
    ranker.meta["importance"] = ranker.importance()
    note = f"learned ranker from {len(groups)} users: {figures}"
    if not beats:
        note += " (published because ranker_gate is off)"
    return RankerTraining(ranker, note, validation)


def _gate_figures(validation: dict) -> str:
    """The gate's figures in words, for the training note."""
    users, judges, apart = validation["trained_users"], validation["users"], validation["judges_apart"]
    versus = validation["against_fusion"]
    figures = (
        f"validation NDCG@10 {validation['ranker_ndcg_at_10']:.4f} ({validation['objective']}) against rank "
        f"fusion's {validation['fusion_ndcg_at_10']:.4f} on {users} users it never saw (difference "
        f"{versus['difference']:+.4f} ± {versus['standard_error']:.4f}, more than {versus['margin']:.4f} "
        "needed)"
    )
    others = "".join(f", {name}'s own order {score:.4f}" for name, score in validation["sources"].items())
    best = validation["best_alternative"]
    if others or apart:
        kept_apart = ", those the sequence model was not chosen on" if apart else ""
        judged = validation["judged"]
        figures += (
            f"; on {judges} of them{kept_apart}: the learned ranker {judged['learned']:.4f}, fusion "
            f"{judged['fusion']:.4f}{others}"
        )
    if best != "fusion":
        figures += (
            f" (difference {validation['difference']:+.4f} ± {validation['difference_standard_error']:.4f} "
            f"against {best}'s, more than {validation['margin']:.4f} needed)"
        )
    return figures


def train_parts(
    pipeline: Pipeline,
    events: EventStore,
    catalog: Catalog,
    store: VectorStore,
    model: PublishedModel,
    settings: Settings,
    seed: int,
) -> TrainedParts:
    """Fit co-occurrence, the item tower and the ranker for a sequence model that is not serving yet."""
    all_events = events.all_events()
    view = HeldOutView.of(all_events, settings, seed)
    stats_as_of, cooc_as_of, sample = view.stats_as_of, view.cooccurrence_as_of, view.sample
    stats_now = ItemStats.from_events(
        ((e.user_id, e.product_id, e.occurred_at) for e in all_events), settings.pipeline_config.recent_days
    )
    cooc_now = CoOccurrence.fit(_sequences(all_events))
    next_products = next_products_before(pipeline, model, sample)
    tower, encoder = train_item_tower(
        store,
        catalog,
        model,
        settings.pipeline.item_features,
        stats_now,
        next_products,
        seed,
        settings.pipeline_config.new_arrivals_fit_text,
    )
    training_model = _with_parts(model, TrainedParts(cooc_as_of, tower))
    trained = train_ranker(
        pipeline, training_model, sample, stats_as_of, encoder, settings, seed, view.earlier
    )
    gated_model = _with_parts(
        model, TrainedParts(cooc_as_of, tower, trained.ranker, trained.note, trained.validation)
    )
    config = settings.pipeline_config
    stages = gate_stages(
        pipeline,
        gated_model,
        sample,
        stats_as_of,
        config.gated_stages,
        config.stage_gate_users,
        config.llm_gate_users,
    )
    logger.info(
        "pipeline parts trained: %s; item tower ridge %.3g, new-arrivals prior weight %.3g, "
        "text weight %.3g; stages %s",
        trained.note,
        tower.ridge,
        tower.prior_weight,
        tower.text_weight,
        {name: figures["served"] for name, figures in stages.items()},
    )
    return TrainedParts(cooc_now, tower, trained.ranker, trained.note, trained.validation, stages)


def _sequences(events: Sequence[StoredEvent]) -> list[list[str]]:
    by_user: dict[str, list[str]] = {}
    for event in events:
        by_user.setdefault(event.user_id, []).append(event.product_id)
    return list(by_user.values())


def _with_parts(model: PublishedModel, parts: TrainedParts) -> PublishedModel:
    return dataclasses.replace(model, parts=parts)
