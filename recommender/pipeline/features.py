"""Feature assembly: one row per candidate (user x item x context), the same for training and serving."""

from __future__ import annotations

import math
import statistics
import zlib
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

import numpy as np

from recommender.catalog import Catalog
from recommender.collab.registry import PublishedModel
from recommender.ids import product_point_id
from recommender.pipeline.artifacts import TrainedParts
from recommender.pipeline.attributes import AttributeEncoder
from recommender.pipeline.candidates import Candidate
from recommender.pipeline.rankers import FeatureFrame, FusionRanker
from recommender.pipeline.request import PipelineRequest
from recommender.pipeline.stats import ItemStats
from recommender.pipeline.user_state import UserState
from recommender.store import VectorStore

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


def _top_category(path: str) -> str:
    return path.split(" > ")[0] if path else ""


class FeatureBuilder:
    def __init__(
        self,
        store: VectorStore,
        catalog: Catalog,
        sources: Sequence[str],
        context_keys: Sequence[str],
        fusion_weights: dict[str, float],
    ) -> None:
        self._store = store
        self._catalog = catalog
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
        ids = [candidate.product_id for candidate in candidates]
        text_vectors = self._text_vectors(ids) if user.profile is not None else {}
        learned = model.vectors_by_id() if model is not None else {}
        history = self._history_payloads(user)
        categories = Counter(payload.get("category", "") for payload in history)
        tops = Counter(_top_category(payload.get("category", "")) for payload in history)
        brands = Counter(payload.get("brand", "") for payload in history if payload.get("brand"))
        prices = [float(p["price"]) for p in history if p.get("price")]
        typical_price = statistics.median(prices) if prices else None
        size = max(1, len(history))
        context = context_values(request, self.context_keys)
        history_length = math.log1p(len(user.positives))
        fusion = self._fusion.score(FeatureFrame([], np.zeros((len(candidates), 0)), candidates))
        rows: list[list[float]] = []
        for candidate in candidates:
            payload = candidate.payload
            pid = candidate.product_id
            row: list[float] = []
            for source in self.sources:
                row.append(candidate.scores.get(source, math.nan))
                row.append(float(candidate.ranks.get(source, depth)))
            vector = text_vectors.get(pid)
            collab_vector = learned.get(pid)
            if collab_vector is None:
                collab_vector = parts.predicted_vector(pid)
            category = payload.get("category", "")
            price = payload.get("price")
            row += [
                float(vector @ user.profile) if vector is not None and user.profile is not None else math.nan,
                float(collab_vector @ user.collab)
                if collab_vector is not None and user.collab is not None
                else math.nan,
                stats.log_users(pid),
                stats.log_recent(pid),
                parts.popularity_prior(pid),
                stats.age_days(pid),
                categories[category] / size if category and history else math.nan,
                tops[_top_category(category)] / size if category and history else math.nan,
                brands[payload.get("brand", "")] / size if payload.get("brand") and history else math.nan,
                float(price) / typical_price if price and typical_price else math.nan,
                history_length,
                float(len(candidate.ranks)),
                fusion[len(rows)],
            ]
            row += encoder.encode(payload)
            row += context
            rows.append(row)
        matrix = np.asarray(rows, dtype=np.float64).reshape(len(candidates), len(self.columns(encoder)))
        return FeatureFrame(self.columns(encoder), matrix, candidates)

    def _text_vectors(self, product_ids: list[str]) -> dict[str, np.ndarray]:
        points = self._store.retrieve([product_point_id(pid) for pid in product_ids], with_vectors=True)
        return {point.payload["product_id"]: point.vector for point in points if point.vector is not None}

    def _history_payloads(self, user: UserState) -> list[dict]:
        """Payloads of the user's positive products (read once per request)."""
        if not user.history_payloads and user.positives:
            wanted = list(dict.fromkeys(user.positives[-200:]))
            points = self._store.retrieve([product_point_id(pid) for pid in wanted])
            user.history_payloads = {point.payload["product_id"]: point.payload for point in points}
        return list(user.history_payloads.values())
