"""Feature assembly: one row per candidate (user x item x context), the same for training and serving."""

from __future__ import annotations

import math
import statistics
import zlib
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from recommender.pipeline.artifacts import TrainedParts
from recommender.pipeline.attributes import AttributeEncoder
from recommender.pipeline.candidates import Candidate
from recommender.pipeline.product_cache import ProductCache
from recommender.pipeline.rankers import FeatureFrame, FusionRanker
from recommender.pipeline.registry import PublishedModel
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
# The payload fields ranking reads (features, the category cap); the rest of a product is read for the
# returned items only. "attributes" is read too when the ranker uses catalog attributes.
RANKING_PAYLOAD_KEYS = ("product_id", "category", "brand", "price")


def ranking_payload_keys(item_features: Sequence[str]) -> tuple[str, ...]:
    """Without attribute features the held payloads have no nested dict: they stay plain values, out of
    Python's cycle collector (see ``ProductCache``)."""
    return (*RANKING_PAYLOAD_KEYS, "attributes") if item_features else RANKING_PAYLOAD_KEYS


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


def _price(price: object) -> float | None:
    """A payload's price as a number (None: none, zero or not a number)."""
    if not price:
        return None
    try:
        return float(price)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _top_category(path: str) -> str:
    return path.split(" > ")[0] if path else ""


# What the features read of one product apart from the user: log users, log users in the recent window,
# popularity prior, age in days, the collab score's vector (the sequence model's, or the tower's prediction),
# category, brand, price. A plain tuple: the cycle collector stops tracking a tuple of plain values (not a
# subclass's instances, such as a NamedTuple's).
ItemRow = tuple[float, float, float, float, "np.ndarray | None", str, str, "float | None"]
ITEM_ROW_FIELDS = 8


class ItemRows:
    """What the features read of a product that does not depend on the user, for one (statistics, trained
    parts, model): popularity overall and recent, popularity prior, age, the collab vector, and the category,
    brand and price of its ranking fields.

    Computed on a product's first request and looked up after: one dictionary lookup a candidate instead of
    nine across the statistics, the priors, the vectors and the payload (lookups in dictionaries of 100k
    products, most of the features' time). A product whose ranking fields were read again (another payload
    object: a catalog write, or the product cache's expiry) is computed again; new statistics or a new model
    replace the whole object. Rows hold plain values only (the payload each came from is kept beside them),
    so that Python's cycle collector does not track them (see ``ProductCache``). At most ``max_items`` are
    kept (the product cache's size), the first computed going first."""

    def __init__(
        self, stats: ItemStats, parts: TrainedParts, learned: dict[str, np.ndarray], max_items: int
    ) -> None:
        self.stats = stats
        self.parts = parts
        self.learned = learned
        self._max_items = max_items
        self._rows: dict[str, ItemRow] = {}
        self._read_from: dict[str, dict[str, Any]] = {}

    def serves(self, stats: ItemStats, parts: TrainedParts, learned: dict[str, np.ndarray]) -> bool:
        return self.stats is stats and self.parts is parts and self.learned is learned

    def rows(self, candidates: Sequence[Candidate]) -> list[ItemRow]:
        known, read_from = self._rows, self._read_from
        rows = []
        for candidate in candidates:
            pid, payload = candidate.product_id, candidate.payload
            row = known.get(pid)
            if row is None or read_from.get(pid) is not payload:
                row = known[pid] = self._row(pid, payload)
                read_from[pid] = payload
            rows.append(row)
        while len(known) > self._max_items:
            first = next(iter(known))
            known.pop(first, None)
            read_from.pop(first, None)
        return rows

    def _row(self, pid: str, payload: dict[str, Any]) -> ItemRow:
        stats, parts = self.stats, self.parts
        vector = self.learned.get(pid)
        if vector is None:
            vector = parts.predicted_vector(pid)
        return (
            stats.log_users(pid),
            stats.log_recent(pid),
            parts.popularity_prior(pid),
            stats.age_days(pid),
            vector,
            str(payload.get("category") or ""),
            str(payload.get("brand") or ""),
            _price(payload.get("price")),
        )


class ItemRowsCache:
    """The ``ItemRows`` of the statistics and model serving now (a pipeline keeps one between requests)."""

    def __init__(self, max_items: int = 50_000) -> None:
        self._max_items = max_items
        self._current: ItemRows | None = None

    def get(self, stats: ItemStats, parts: TrainedParts, learned: dict[str, np.ndarray]) -> ItemRows:
        current = self._current
        if current is None or not current.serves(stats, parts, learned):
            current = self._current = ItemRows(stats, parts, learned, self._max_items)
        return current


class FeatureBuilder:
    def __init__(
        self,
        products: ProductCache,
        sources: Sequence[str],
        context_keys: Sequence[str],
        fusion_weights: dict[str, float],
        item_rows: ItemRowsCache | None = None,
    ) -> None:
        self._products = products
        self._item_rows = item_rows or ItemRowsCache()
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
        payloads = [candidate.payload for candidate in candidates]
        rows = self._item_rows.get(stats, parts, learned).rows(candidates)
        popularity, recent, prior, age, vectors, item_categories, item_brands, item_prices = (
            zip(*rows, strict=True) if rows else ([],) * ITEM_ROW_FIELDS
        )
        # Shares of the user's history, once per distinct value (a list holds few categories and brands).
        category_share = {c: categories[c] / size if c and history else nan for c in set(item_categories)}
        top_share = {c: tops[_top_category(c)] / size if c and history else nan for c in category_share}
        brand_share = {b: brands[b] / size if b and history else nan for b in set(item_brands)}
        by_source, fusion = self._source_columns(candidates, depth)
        columns: list[Sequence[float] | np.ndarray] = list(by_source)
        columns += [
            [nan if c.text_similarity is None else float(c.text_similarity) for c in candidates],
            self._collab_similarity(vectors, user),
            popularity,
            recent,
            prior,
            age,
            [category_share[c] for c in item_categories],
            [top_share[c] for c in item_categories],
            [brand_share[b] for b in item_brands],
            [nan if price is None or not typical_price else price / typical_price for price in item_prices],
            [math.log1p(len(user.positives))] * len(candidates),
            [float(len(candidate.ranks)) for candidate in candidates],
            fusion,
        ]
        item_part = np.asarray(columns, dtype=np.float64).reshape(len(columns), len(candidates)).T
        attributes = np.asarray([encoder.encode(payload) for payload in payloads], dtype=np.float64)
        context = np.tile(
            np.asarray(context_values(request, self.context_keys), dtype=np.float64), (len(candidates), 1)
        )
        matrix = np.hstack(
            [
                item_part,
                attributes.reshape(len(candidates), len(encoder.columns)),
                context.reshape(len(candidates), len(self.context_keys)),
            ]
        )
        return FeatureFrame(self.columns(encoder), matrix, candidates)

    def _source_columns(self, candidates: list[Candidate], depth: int) -> tuple[np.ndarray, list[float]]:
        """Each source's score and rank (NaN and ``depth`` where it did not return the candidate), one
        row per column, and the rank fusion's score (the fusion ranker's, summed in the same order): filled
        per (candidate, source) pair found, ~1.5 a candidate, instead of looked up for every source."""
        columns = np.empty((2 * len(self.sources), len(candidates)))
        columns[0::2] = math.nan
        columns[1::2] = depth
        position = {source: 2 * index for index, source in enumerate(self.sources)}
        contribution = self._fusion.contribution
        fusion = []
        for row, candidate in enumerate(candidates):
            ranks = candidate.ranks
            total = 0.0
            for source, score in candidate.scores.items():
                rank = ranks[source]
                total += contribution(source, rank)
                column = position.get(source)
                if column is not None:
                    columns[column, row] = score
                    columns[column + 1, row] = rank
            fusion.append(total)
        return columns, fusion

    @staticmethod
    def _collab_similarity(vectors: Sequence[np.ndarray | None], user: UserState) -> np.ndarray:
        """The sequence model's score: its item vector, or the item tower's prediction for a new product."""
        scores = np.full(len(vectors), math.nan)
        if user.collab is None:
            return scores
        rows = [row for row, vector in enumerate(vectors) if vector is not None]
        if rows:
            scores[rows] = np.asarray([vectors[row] for row in rows], dtype=np.float32) @ user.collab
        return scores

    def _history_payloads(self, user: UserState) -> list[dict]:
        """Payloads of the user's positive products (read once per request)."""
        if not user.history_payloads and user.positives:
            wanted = list(dict.fromkeys(user.positives[-200:]))
            held = self._products.get_many(wanted)
            user.history_payloads = {pid: fields.payload for pid, fields in held.items()}
        return list(user.history_payloads.values())
