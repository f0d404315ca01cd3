"""The pipeline object every caller shares.

request -> sources -> merge -> features -> ranker -> rules (diversity, merchandising, top-up) -> LLM
re-rank, explain (pins hold their places after it)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from recommender.catalog import Catalog, public_payload
from recommender.embedding import Embedder
from recommender.errors import InvalidInputError, NotFoundError
from recommender.events import EventStore
from recommender.ids import product_point_id
from recommender.llm.features import LLMFeatures
from recommender.models import ProductFilter, Recommendation, RecommendationList, Signal
from recommender.pipeline.artifacts import TrainedParts
from recommender.pipeline.attributes import AttributeEncoder
from recommender.pipeline.candidates import Candidate, merge
from recommender.pipeline.exposure import NewProductExposure, place_count, place_share
from recommender.pipeline.features import FeatureBuilder, ItemRowsCache, ranking_payload_keys
from recommender.pipeline.merchandising import ActiveRules, RuleBook
from recommender.pipeline.product_cache import ProductCache
from recommender.pipeline.rankers import FeatureFrame, FusionRanker, LearnedRanker, Ranker, SourceRanker
from recommender.pipeline.registry import ModelRegistry, PublishedModel
from recommender.pipeline.request import PipelineRequest
from recommender.pipeline.rules import category_cap, mmr
from recommender.pipeline.sources import (
    NewArrivalsSource,
    Source,
    SourceContext,
    build_sources,
    filter_conditions,
)
from recommender.pipeline.stats import ItemStats, LiveItemStats
from recommender.pipeline.threads import one_blas_thread
from recommender.pipeline.user_state import UserState, UserStates
from recommender.profiles import ProfileService
from recommender.retrieval import Retriever
from recommender.settings import PipelineConfig, Settings
from recommender.store import VectorStore
from recommender.store.conditions import HasIdCondition

NON_PERSONAL = ("popular", "trending", "new")
LLM_RERANK = "llm_rerank"  # the optional stage's name in the stage gate
SIGNAL_OF = {
    "text": Signal.PROFILE,
    "collab": Signal.HYBRID,
    "cooccurrence": Signal.HYBRID,
    "popular": Signal.POPULAR,
    "trending": Signal.POPULAR,
    "new": Signal.POPULAR,
    "query": Signal.QUERY,
    "session": Signal.SESSION,
    "examples": Signal.EXAMPLES,
}


@dataclass
class RankedCandidates:
    """What ranking produced for one request, before it becomes a response (training reads this)."""

    user: UserState
    frame: FeatureFrame | None
    ordered: list[Candidate]
    scores: list[float]
    ranker: str
    contributors: list[str]


class Pipeline:
    def __init__(
        self,
        store: VectorStore,
        catalog: Catalog,
        embedder: Embedder,
        events: EventStore,
        profiles: ProfileService,
        retriever: Retriever,
        models: ModelRegistry | None,
        settings: Settings,
        llm: LLMFeatures | None = None,
        config: PipelineConfig | None = None,
        stats: LiveItemStats | None = None,
        products: ProductCache | None = None,
        rules: RuleBook | None = None,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._embedder = embedder
        self._events = events
        self._profiles = profiles
        self._retriever = retriever
        self._models = models
        self._settings = settings
        self.llm = llm
        self.rules = rules
        self.config = config or settings.pipeline_config
        self._stats = stats or LiveItemStats(events, self.config.recent_days)
        self._cache = products or ProductCache(
            store,
            ranking_payload_keys(self.config.item_features),
            lambda: catalog.generation,
            self.config.product_cache_size,
        )
        self._users = UserStates(events, profiles, settings.recommend)
        self._item_rows = ItemRowsCache(self.config.product_cache_size)
        self._turns = threading.BoundedSemaphore(self.config.concurrency)
        self._sources: dict[str, Source] = build_sources(
            store,
            catalog,
            embedder,
            settings.recommend,
            self._cache,
            self.config.new_arrivals_pool,
            self.config.new_arrivals_prior_weight,
            self.config.new_arrivals_text_weight,
        )

    def configured(self, **changes: object) -> Pipeline:
        """A variant over the same parts (other sources, the fusion ranker, diversity): what
        ``recommender eval`` compares against the served configuration."""
        config = self.config.model_copy(update=changes)
        return Pipeline(
            self._store,
            self._catalog,
            self._embedder,
            self._events,
            self._profiles,
            self._retriever,
            self._models,
            self._settings,
            self.llm,
            config,
            self._stats,
            self._cache,
            self.rules,
        )

    # --- the whole request -------------------------------------------------------------------------
    def run(
        self,
        request: PipelineRequest,
        model: PublishedModel | None = None,
        stats: ItemStats | None = None,
    ) -> RecommendationList:
        """Rank, then (when an LLM stage is configured) re-rank and explain; cut to ``request.k``.

        ``model`` and ``stats``: a version that is not serving yet and the statistics as of a moment in
        the past (the training job's gate asks what a version would serve); by default, what serves now.
        """
        self._validate(request)
        model = model or self.model()
        if self.llm is None:
            result = self.recommend(request, request.k, model, stats)
            result.reranking = {"reranked": False, "reason": "no LLM stage in this pipeline"}
            return result
        gate_note = self._rerank_gated_off(model) if request.rerank else None
        result = self.llm.recommend(
            lambda depth: self.recommend(request, depth, model, stats),
            request.k,
            user_id=request.user_id,
            query=request.query,
            rerank=request.rerank and gate_note is None,
            explain=request.explain,
            language=request.language,
            history=request.history,
        )
        if gate_note is not None:
            result.reranking = {"reranked": False, "reason": gate_note}
            result.notes.append(gate_note)
        # The LLM may have moved a pinned product: pins hold their places whatever it says.
        active = self._active_rules(request)
        if active.pins:
            result.items = self._pin(result.items, active, request, request.k)
        return _finished(result)

    def _rerank_gated_off(self, model: PublishedModel | None) -> str | None:
        """Why the LLM re-rank does not serve with this model version, or None when it may."""
        if model is None or self._stage_serves(LLM_RERANK, model.parts):
            return None
        gate = model.parts.stage_gate[LLM_RERANK]
        return (
            f"LLM re-rank off: validation NDCG@10 {gate['with_ndcg_at_10']:.4f} with it against "
            f"{gate['without_ndcg_at_10']:.4f} without on {gate['users']} users "
            f"(training of v{model.version})"
        )

    def similar(
        self, product_id: str, k: int, product_filter: ProductFilter | None, exclude: list[str]
    ) -> RecommendationList:
        return self._retriever.similar(product_id, k, product_filter, exclude)

    def calls_a_model(self, request: PipelineRequest) -> bool:
        """Whether ``run`` will call a language model for this request (slow: seconds, not milliseconds)."""
        if self.llm is None:
            return False
        rerank = request.rerank and self._rerank_gated_off(self.model()) is None
        return self.llm.calls_a_model(rerank, request.explain)

    def for_user(
        self, user_id: str, k: int, filters: ProductFilter | None = None, query: str | None = None
    ) -> RecommendationList:
        """The user's ranked list of ``k`` (no LLM stage): a shorthand for scripts and benchmarks."""
        return self.recommend(PipelineRequest(k=k, user_id=user_id, filters=filters, query=query), k)

    def recommend(
        self,
        request: PipelineRequest,
        depth: int,
        model: PublishedModel | None = None,
        stats: ItemStats | None = None,
    ) -> RecommendationList:
        """The ranked list of ``depth`` items (no LLM stage), ``config.concurrency`` at a time; ``model``
        and ``stats`` as in ``run``."""
        with self._turns, one_blas_thread():
            return self._recommend(request, depth, model or self.model(), stats)

    def _recommend(
        self, request: PipelineRequest, depth: int, model: PublishedModel | None, stats: ItemStats | None
    ) -> RecommendationList:
        ranked = self.rank(request, depth, model, stats)
        notes = self._notes(request, ranked, model)
        active = self._active_rules(request)
        ordered, scores, moved = _merchandised(ranked, active)
        chosen = ordered[:depth]
        products = self._products([candidate.product_id for candidate in chosen])
        items = [
            Recommendation(
                product_id=candidate.product_id,
                score=score,
                signal=self._item_signal(candidate, request),
                product=public_payload(products[candidate.product_id]),
                rule=moved.get(candidate.product_id),
            )
            for candidate, score in zip(chosen, scores, strict=False)
            if candidate.product_id in products
        ]
        signal = self._list_signal(request, ranked.contributors)
        if len(items) < depth:
            items, signal = self._top_up(request, ranked, items, depth, signal, notes, active.blocked)
        if active.pins:
            items = self._pin(items, active, request, depth)
        return _finished(
            RecommendationList(
                signal=signal, items=items, excluded_count=len(ranked.user.excluded), notes=notes
            )
        )

    def _active_rules(self, request: PipelineRequest) -> ActiveRules:
        return self.rules.active(request.placement) if self.rules is not None else ActiveRules()

    def _pin(
        self, items: list[Recommendation], active: ActiveRules, request: PipelineRequest, depth: int
    ) -> list[Recommendation]:
        """Each pinned product at its position (1-based), if it matches the request's filters."""
        for position, product_id, label in active.pins:
            held = next((item for item in items if item.product_id == product_id), None)
            items = [item for item in items if item.product_id != product_id]
            if held is None:
                conditions = [*filter_conditions(request), HasIdCondition((product_point_id(product_id),))]
                found, _ = self._store.scroll(1, None, conditions)
                if not found:
                    continue  # outside the request's filters, or gone from the catalog
                held = Recommendation(
                    product_id=product_id,
                    score=0.0,
                    signal=Signal.PINNED,
                    product=public_payload(found[0].payload),
                )
            held = held.model_copy(update={"signal": Signal.PINNED, "rule": label})
            items.insert(min(position - 1, len(items)), held)
        return items[:depth]

    # --- the stages ---------------------------------------------------------------------------------
    def item_stats(self) -> ItemStats:
        return self._stats.get()

    def settle_statistics(self) -> None:
        """The item statistics with every event this process wrote (see ``LiveItemStats.settle``)."""
        self._stats.settle()

    def model(self) -> PublishedModel | None:
        if self._models is None or not self._settings.collab.enabled:
            return None
        return self._models.current()

    def user_state(self, request: PipelineRequest, model: PublishedModel | None) -> UserState:
        """What ranking knows of the request's user (training reads the states it learns from)."""
        return self._users.build(request, model)

    def rank(
        self,
        request: PipelineRequest,
        depth: int,
        model: PublishedModel | None,
        stats: ItemStats | None = None,
        ranker: Ranker | None = None,
        encoder: AttributeEncoder | None = None,
    ) -> RankedCandidates:
        """Sources -> merge -> features -> ranker -> diversity. Training passes ``stats`` (as of its
        cut-off), a fusion ranker and the ``encoder`` it fitted, and reads the feature frame."""
        parts = model.parts if model is not None else TrainedParts()
        stats = stats or self._stats.get()
        user = self.user_state(request, model)
        names = self.source_names(request)
        context = SourceContext(
            request,
            user,
            filter_conditions(request),
            [product_point_id(pid) for pid in sorted(user.excluded)],
            model,
            parts,
            stats,
        )
        per_source = max(self.config.depth, depth)
        lists = [
            (name, self._sources[name].candidates(context, self._source_depth(name, depth))) for name in names
        ]
        contributors = [name for name, hits in lists if hits]
        if ranker is None:
            ranker = self._ranker(request, parts)
        featured = isinstance(ranker, LearnedRanker) or encoder is not None
        merged = self._read_candidates(list(merge(lists).values()), user, featured)
        frame = None
        if merged:
            if featured:
                learned = ranker if isinstance(ranker, LearnedRanker) else None
                frame = self.features(learned).frame(
                    request, user, merged, model, parts, stats, encoder or self.encoder(learned), per_source
                )
            else:
                frame = FeatureFrame([], np.zeros((len(merged), 0)), merged)
            scores = ranker.score(frame)
        else:
            scores = np.zeros(0)
        order = sorted(range(len(merged)), key=lambda index: -scores[index])
        ordered = [merged[index] for index in order]
        if self._stage_serves("diversity", parts):
            ordered = self._diversify(ordered, user, depth)
        if request.personal and self._stage_serves("new_product_places", parts):
            page = min(depth, request.k, self.config.new_product_page)
            places = self._new_product_exposure(context).places_for(
                request.user_id or "", _best_new_score(merged) if user.collab is not None else None
            )
            ordered = keep_new_products(
                ordered,
                stats,
                places,
                page,
                self.config.new_product_max_rank,
            )
        score_of = {
            candidate.product_id: float(score) for candidate, score in zip(merged, scores, strict=True)
        }
        return RankedCandidates(
            user,
            frame,
            ordered,
            [score_of[candidate.product_id] for candidate in ordered],
            ranker.name,
            contributors,
        )

    def _new_product_exposure(self, context: SourceContext) -> NewProductExposure:
        config, tower = self.config, context.parts.tower
        source = self._sources.get("new")
        if config.new_product_exposure == "every_list" or tower is None or not tower.cold_ids:
            return NewProductExposure.every_list(config.new_product_slots)
        assert isinstance(source, NewArrivalsSource)
        still_new = source.still_new_count(context)
        places = place_count(
            still_new,
            config.new_product_list_share,
            config.new_product_slots,
            config.new_product_slots_max,
        )
        share = place_share(still_new, config.new_product_list_share, places)
        matched = config.new_product_lists == "best_matched" and 0.0 < share < 1.0
        reference = source.reference_best(context) if matched else None
        return NewProductExposure.from_reference(share, reference, places)

    def _products(self, product_ids: list[str]) -> dict[str, dict]:
        """The whole stored payloads of the products a response returns (ranking read only a few fields)."""
        points = self._store.retrieve([product_point_id(pid) for pid in product_ids])
        return {point.payload["product_id"]: point.payload for point in points}

    def _read_candidates(self, merged: list[Candidate], user: UserState, featured: bool) -> list[Candidate]:
        """What the sources left out: the ranking fields of candidates that came as bare ids and (for
        the features) every candidate's cosine with the user's text profile. Candidates whose product
        is gone from the catalog are dropped."""
        fields = self._cache.get_many([candidate.product_id for candidate in merged])
        for candidate in merged:
            held = fields.get(candidate.product_id)
            if held is not None and not candidate.payload:
                candidate.payload = held.payload
            if "text" in candidate.scores:
                candidate.text_similarity = candidate.scores["text"]
        if featured and user.profile is not None:
            unknown = [
                (candidate, vector)
                for candidate in merged
                if candidate.text_similarity is None
                and (vector := getattr(fields.get(candidate.product_id), "vector", None)) is not None
            ]
            if unknown:
                similarities = np.asarray([vector for _, vector in unknown]) @ user.profile
                for (candidate, _), similarity in zip(unknown, similarities.tolist(), strict=True):
                    candidate.text_similarity = similarity
        return [candidate for candidate in merged if candidate.payload]

    def _source_depth(self, name: str, depth: int) -> int:
        """Candidates asked of one source: its configured depth, raised only by a list deeper than the
        pipeline's depth. A re-rank's over-fetch (50) must not change the candidates, or the list a client
        gets would depend on whether an LLM stage asked for more."""
        wanted = self.config.source_depths.get(name, self.config.depth)
        return max(wanted, depth) if depth > self.config.depth else wanted

    def source_names(self, request: PipelineRequest) -> list[str]:
        if request.positive or request.negative:
            return ["examples"]
        if request.session:
            return ["session"]
        if request.query:
            return ["query"]
        if request.user_id or request.history is not None:
            return list(self.config.sources)
        return ["popular"]

    def features(self, ranker: LearnedRanker | None = None) -> FeatureBuilder:
        sources = ranker.meta["sources"] if ranker is not None else self.config.sources
        keys = ranker.meta["context_keys"] if ranker is not None else self.config.context_features
        weights = ranker.meta["fusion_weights"] if ranker is not None else self.config.fusion_weights
        return FeatureBuilder(self._cache, sources, keys, weights, self._item_rows)

    def encoder(self, ranker: LearnedRanker | None = None) -> AttributeEncoder:
        if ranker is not None:
            return AttributeEncoder.from_dict(ranker.meta["attributes"])
        return AttributeEncoder(self.config.item_features)

    def _ranker(self, request: PipelineRequest, parts: TrainedParts) -> Ranker:
        learned = parts.ranker
        if (
            self.config.ranker == "learned"
            and learned is not None
            and request.personal
            and list(learned.meta["sources"]) == list(self.config.sources)
            and learned.meta["attributes"]["names"] == list(self.config.item_features)
        ):
            return learned
        source = parts.served_source
        if self.config.ranker == "learned" and request.personal and source in self.config.sources:
            return SourceRanker(source, self.config.fusion_weights)
        return FusionRanker(self.config.fusion_weights)

    def _stage_serves(self, stage: str, parts: TrainedParts) -> bool:
        """An optional stage serves unless the version's stage gate switched it off (and the gate is on)."""
        return stage not in self.config.gated_stages or parts.serves(stage)

    def _diversify(self, ordered: list[Candidate], user: UserState, depth: int) -> list[Candidate]:
        if self.config.diversity == "category_cap":
            return category_cap(ordered, self.config.category_cap, depth)
        if self.config.diversity == "mmr":
            # The pool does not shrink with the list: a list of k is the top of the list an LLM would
            # over-fetch to re-rank (MMR picks greedily, so a longer list only adds picks at the end).
            head = ordered[: max(depth, self._settings.llm_config.overfetch) * 3]
            vectors = self._catalog.vectors([candidate.product_id for candidate in head])
            return mmr(head, np.zeros(len(head)), vectors, self.config.mmr_lambda, depth)
        return ordered

    def _top_up(
        self,
        request: PipelineRequest,
        ranked: RankedCandidates,
        items: list[Recommendation],
        depth: int,
        signal: Signal,
        notes: list[str],
        blocked: set[str],
    ) -> tuple[list[Recommendation], Signal]:
        """Fewer than asked (strict filters, a new user, a new shop): popular products that match fill up."""
        taken = [item.product_id for item in items]
        extra = self._retriever.popular(
            depth - len(items), request.filters, [*ranked.user.excluded, *taken, *request.session, *blocked]
        )
        if extra.items and items:
            notes.append(f"{len(extra.items)} popular products added to fill the list")
        notes.extend(note for note in extra.notes if note not in notes)
        return [*items, *extra.items], signal if items else Signal.POPULAR

    def _validate(self, request: PipelineRequest) -> None:
        if request.query and not request.query.strip() and not request.user_id:
            raise InvalidInputError("the query is empty", field="query")
        if request.negative and not request.positive:
            raise InvalidInputError("give at least one positive example", field="positive")
        if request.positive or request.negative:
            wanted = [*request.positive, *request.negative]
            known = self._catalog.existing_ids(wanted)
            missing = [pid for pid in wanted if pid not in known]
            if missing:
                raise NotFoundError("product", ", ".join(missing))

    def _notes(
        self, request: PipelineRequest, ranked: RankedCandidates, model: PublishedModel | None
    ) -> list[str]:
        notes: list[str] = []
        personal = [name for name in ranked.contributors if name not in NON_PERSONAL]
        if request.session:
            known = self._catalog.existing_ids(list(request.session))
            unknown = sorted(set(request.session) - known)
            if unknown:
                notes.append(f"unknown product ids ignored: {unknown}")
            if not known:
                notes.append("no known session products: popular products")
            return notes
        if request.query and ranked.user.profile is not None:
            blend = self._settings.recommend.query_profile_blend
            notes.append(f"query blended with the user's profile (weight {blend})")
        if not request.personal:
            return notes
        if not personal:
            notes.append("no usable history for this user: popular products")
            return notes
        if model is not None and "collab" in personal:
            notes.append(
                f"sequence model v{model.version} with {', '.join(n for n in personal if n != 'collab')}"
            )
        if ranked.ranker == "learned":
            notes.append(f"ranked by the learned ranker of v{model.version if model else '?'}")
        elif ranked.ranker != FusionRanker.name and model is not None:
            notes.append(f"ranked by the {ranked.ranker} source's own order: {model.parts.ranker_note}")
        elif self.config.ranker == "learned" and len(ranked.contributors) > 1:
            reason = model.parts.ranker_note if model is not None else "no model trained yet"
            notes.append(f"rank fusion: {reason}")
        if model is not None:
            for stage, gate in model.parts.stage_gate.items():
                # The LLM re-rank's note comes with a request that asks for one (see ``run``).
                if stage != LLM_RERANK and stage in self.config.gated_stages and not gate.get("served", True):
                    notes.append(
                        f"{stage.replace('_', ' ')} off: validation NDCG@10 "
                        f"{gate['with_ndcg_at_10']:.4f} with them against {gate['without_ndcg_at_10']:.4f} "
                        f"without (training of v{model.version})"
                    )
        return notes

    def _list_signal(self, request: PipelineRequest, contributors: list[str]) -> Signal:
        if not request.personal:
            return SIGNAL_OF[self.source_names(request)[0]]
        personal = [name for name in contributors if name not in NON_PERSONAL]
        if not personal:
            return Signal.POPULAR
        if len(personal) == 1:
            return SIGNAL_OF[personal[0]]
        return Signal.HYBRID

    def _item_signal(self, candidate: Candidate, request: PipelineRequest) -> Signal:
        if not request.personal:
            return self._list_signal(request, [])
        best = min(candidate.ranks, key=lambda source: candidate.ranks[source])
        personal = [s for s in candidate.ranks if s not in NON_PERSONAL]
        return SIGNAL_OF[best] if len(personal) <= 1 else Signal.HYBRID


def _merchandised(
    ranked: RankedCandidates, active: ActiveRules
) -> tuple[list[Candidate], list[float], dict[str, str]]:
    """The ranked candidates without blocked products, boosted and buried products moved; the moved
    products' rule labels."""
    ordered, scores = ranked.ordered, ranked.scores
    if not active:
        return ordered, scores, {}
    kept = [index for index, candidate in enumerate(ordered) if candidate.product_id not in active.blocked]
    ordered, scores = [ordered[index] for index in kept], [scores[index] for index in kept]
    if not active.moves:
        return ordered, scores, {}
    order, moved = active.reorder([candidate.product_id for candidate in ordered])
    return [ordered[index] for index in order], [scores[index] for index in order], moved


def _finished(result: RecommendationList) -> RecommendationList:
    """Positions as served (1-based), and a rule's part in an item's explanation."""
    for position, item in enumerate(result.items, start=1):
        item.position = position
        if item.rule and item.explanation is not None and item.explanation.get("rule") != item.rule:
            text = item.explanation.get("text", "")
            item.explanation = {
                **item.explanation,
                "rule": item.rule,
                "text": f"Placed by a merchandising rule ({item.rule}). {text}".strip(),
            }
    return result


def _best_new_score(candidates: list[Candidate]) -> float | None:
    scores = [candidate.scores["new"] for candidate in candidates if "new" in candidate.scores]
    return max(scores) if scores else None


def keep_new_products(
    ordered: list[Candidate],
    stats: ItemStats,
    slots: int,
    k: int,
    max_rank: int | None = None,
) -> list[Candidate]:
    """Make sure the first ``k`` hold up to ``slots`` products without events: the best ones below the
    cut in the new-arrivals source's order (only those ranked within ``max_rank`` when given) move up to its
    last places (a new product has no history to earn one with). The ranker's order instead measured worse
    for new products (cold Recall@10 0.037 against 0.056) and is no longer offered."""
    if slots <= 0 or len(ordered) <= k:
        return ordered
    head, tail = ordered[:k], ordered[k : max_rank if max_rank is not None else len(ordered)]
    with_events = [index for index, candidate in enumerate(head) if candidate.product_id in stats.users]
    missing = slots - (len(head) - len(with_events))  # the head's own products without events count
    new = [candidate for candidate in tail if candidate.product_id not in stats.users]
    new.sort(key=lambda candidate: candidate.ranks.get("new", len(ordered)))
    promoted = new[: max(0, min(missing, len(with_events)))]
    if not promoted:
        return ordered
    # The last products with events give up their places; a product without events the ranker put in
    # the head keeps its own.
    out = set(with_events[len(with_events) - len(promoted) :])
    kept = [candidate for index, candidate in enumerate(head) if index not in out]
    demoted = [head[index] for index in sorted(out)]
    moved = {id(candidate) for candidate in promoted}
    rest = [candidate for candidate in ordered[k:] if id(candidate) not in moved]
    return [*kept, *promoted, *demoted, *rest]
