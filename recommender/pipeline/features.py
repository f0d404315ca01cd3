"""Feature assembly: one row per candidate (user x item x context), the same for training and serving."""

from __future__ import annotations

import math
import statistics
import zlib
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

import numpy as np

from recommender.collab.registry import PublishedModel
from recommender.pipeline.artifacts import TrainedParts
from recommender.pipeline.attributes import AttributeEncoder
from recommender.pipeline.candidates import Candidate
from recommender.pipeline.product_cache import ProductCache
from recommender.pipeline.rankers import FeatureFrame, FusionRanker
from recommender.pipeline.request import PipelineRequest
from recommender.pipeline.stats import ItemStats
from recommender.pipeline.user_state import UserState

ITEM_COLUMNS = [
    "text_similarity",
    "collab_similarity",
    "popularity",
    "popularity_recent",
    "popularity_prior",
    "age_days",
    "category_affinity",
    "top_category_affinity",
    "brand_affinity",
    "relative_price",
    "history_length",
    "sources_count",
    "fusion_score",
]
NUMERIC_CONTEXT = {"hour", "weekday"}
# The payload fields ranking reads (features, attribute features, the category cap); the rest of a
# product is read for the returned items only.
RANKING_PAYLOAD_KEYS = ("product_id", "category", "brand", "price", "attributes")


def context_values(request: PipelineRequest, keys: Sequence[str]) -> list[float]:
    """Numbers for numeric context (hour, weekday), stable codes for names (channel, device)."""
    context = dict(request.context)
    moment: datetime | None = request.time
    if moment is not None:
        context.setdefault("hour", moment.hour)
        context.setdefault("weekday", moment.weekday())
    values = []
    for key in keys:
        value = context.get(key)
        if value is None or value == "":
            values.append(math.nan)
        elif key in NUMERIC_CONTEXT or isinstance(value, int | float):
            try:
                values.append(float(value))
            except ValueError:
                values.append(math.nan)
        else:
            values.append(float(zlib.crc32(str(value).casefold().encode()) % 10007))
    return values


def _relative_price(price: object, typical_price: float | None) -> float:
    if not price or not typical_price:
        return math.nan
    try:
        return float(price) / typical_price  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _top_category(path: str) -> str:
    return path.split(" > ")[0] if path else ""


class FeatureBuilder:
    def __init__(
        self,
        products: ProductCache,
        sources: Sequence[str],
        context_keys: Sequence[str],
        fusion_weights: dict[str, float],
    ) -> None:
        self._products = products
        self.sources = list(sources)
        self.context_keys = list(context_keys)
        self._fusion = FusionRanker(fusion_weights)

    def columns(self, encoder: AttributeEncoder) -> list[str]:
        source_columns = [f"source_{source}_{kind}" for source in self.sources for kind in ("score", "rank")]
        context_columns = [f"context_{key}" for key in self.context_keys]
        return [*source_columns, *ITEM_COLUMNS, *encoder.columns, *context_columns]

    def categorical_columns(self, encoder: AttributeEncoder) -> list[str]:
        named = [f"context_{key}" for key in self.context_keys if key not in NUMERIC_CONTEXT]
        return [*encoder.categorical_columns, *named]

    def frame(
        self,
        request: PipelineRequest,
        user: UserState,
        candidates: list[Candidate],
        model: PublishedModel | None,
        parts: TrainedParts,
        stats: ItemStats,
        encoder: AttributeEncoder,
        depth: int,
    ) -> FeatureFrame:
        learned = model.vectors_by_id() if model is not None else {}
        history = self._history_payloads(user)
        categories = Counter(payload.get("category", "") for payload in history)
        tops = Counter(_top_category(payload.get("category", "")) for payload in history)
        brands = Counter(payload.get("brand", "") for payload in history if payload.get("brand"))
        prices = [float(p["price"]) for p in history if p.get("price")]
        typical_price = statistics.median(prices) if prices else None
        size = max(1, len(history))
        nan = math.nan
        ids = [candidate.product_id for candidate in candidates]
        payloads = [candidate.payload for candidate in candidates]
        item_categories = [str(payload.get("category") or "") for payload in payloads]
        item_brands = [str(payload.get("brand") or "") for payload in payloads]
        columns: list[list[float] | np.ndarray] = list(self._source_columns(candidates, depth))
        columns += [
            [nan if c.text_similarity is None else float(c.text_similarity) for c in candidates],
            self._collab_similarity(ids, learned, parts, user),
            [stats.log_users(pid) for pid in ids],
            [stats.log_recent(pid) for pid in ids],
            [parts.popularity_prior(pid) for pid in ids],
            [stats.age_days(pid) for pid in ids],
            [categories[c] / size if c and history else nan for c in item_categories],
            [tops[_top_category(c)] / size if c and history else nan for c in item_categories],
            [brands[b] / size if b and history else nan for b in item_brands],
            [_relative_price(payload.get("price"), typical_price) for payload in payloads],
            [math.log1p(len(user.positives))] * len(candidates),
            [float(len(candidate.ranks)) for candidate in candidates],
            self._fusion.score(FeatureFrame([], np.zeros((len(candidates), 0)), candidates)),
        ]
        item_part = np.asarray(columns, dtype=np.float64).reshape(len(columns), len(candidates)).T
        attributes = np.asarray([encoder.encode(payload) for payload in payloads], dtype=np.float64)
        context = np.tile(
            np.asarray(context_values(request, self.context_keys), dtype=np.float64), (len(ids), 1)
        )
        matrix = np.hstack(
            [
                item_part,
                attributes.reshape(len(ids), len(encoder.columns)),
                context.reshape(len(ids), len(self.context_keys)),
            ]
        )
        return FeatureFrame(self.columns(encoder), matrix, candidates)

    def _source_columns(self, candidates: list[Candidate], depth: int) -> np.ndarray:
        """Each source's score and rank (NaN and ``depth`` where it did not return the candidate), one
        row per column: filled per (candidate, source) pair found, ~1.5 a candidate, instead of looked up
        for every source."""
        columns = np.empty((2 * len(self.sources), len(candidates)))
        columns[0::2] = math.nan
        columns[1::2] = depth
        position = {source: 2 * index for index, source in enumerate(self.sources)}
        for row, candidate in enumerate(candidates):
            for source, score in candidate.scores.items():
                column = position.get(source)
                if column is not None:
                    columns[column, row] = score
                    columns[column + 1, row] = candidate.ranks[source]
        return columns

    @staticmethod
    def _collab_similarity(
        ids: list[str], learned: dict[str, np.ndarray], parts: TrainedParts, user: UserState
    ) -> np.ndarray:
        """The sequence model's score: its item vector, or the item tower's prediction for a new product."""
        scores = np.full(len(ids), math.nan)
        if user.collab is None:
            return scores
        rows, vectors = [], []
        for row, pid in enumerate(ids):
            vector = learned.get(pid)
            if vector is None:
                vector = parts.predicted_vector(pid)
            if vector is not None:
                rows.append(row)
                vectors.append(vector)
        if rows:
            scores[rows] = np.asarray(vectors, dtype=np.float32) @ user.collab
        return scores

    def _history_payloads(self, user: UserState) -> list[dict]:
        """Payloads of the user's positive products (read once per request)."""
        if not user.history_payloads and user.positives:
            wanted = list(dict.fromkeys(user.positives[-200:]))
            held = self._products.get_many(wanted)
            user.history_payloads = {pid: fields.payload for pid, fields in held.items()}
        return list(user.history_payloads.values())
