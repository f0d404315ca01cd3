"""The vector-store interface and the types that cross it. No backend SDK type leaks past a backend."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from recommender.errors import ConfigurationError
from recommender.store.conditions import Condition


@dataclass(frozen=True)
class CollectionSpec:
    """A collection: its name, its one named dense vector, and what built the vectors."""

    name: str
    vector_name: str
    dimension: int
    embedding_model: str
    keyword_indexes: tuple[str, ...] = ()
    float_indexes: tuple[str, ...] = ()
    integer_indexes: tuple[str, ...] = ()
    # Further named vectors (name, dimension), scored by dot product: learned item embeddings.
    extra_vectors: tuple[tuple[str, int], ...] = ()

    def metadata(self) -> dict[str, Any]:
        return {"embedding_model": self.embedding_model, "dimension": self.dimension}


@dataclass(frozen=True)
class PointToWrite:
    point_id: str
    vector: np.ndarray
    payload: dict[str, Any]


@dataclass(frozen=True)
class StoredPoint:
    point_id: str
    payload: dict[str, Any]
    vector: np.ndarray | None = None


@dataclass(frozen=True)
class ScoredPoint:
    point_id: str
    score: float
    payload: dict[str, Any] = field(default_factory=dict)


# Hits asked for beyond the limit once equal scores are seen to run across it, so that the run is seen whole.
TIE_MARGIN = 16
# How many times the request widens while a run of equal scores fills all it got back.
MAX_TIE_WIDENINGS = 4


def in_score_order(hits: Iterable[ScoredPoint]) -> list[ScoredPoint]:
    """Best score first, equal scores by point id: the engine returns exact ties in whatever order its
    segments hold them, which changes from one build of the same collection to the next."""
    return sorted(hits, key=lambda hit: (-hit.score, hit.point_id))


def best_in_score_order(fetch: Callable[[int], Iterable[ScoredPoint]], limit: int) -> list[ScoredPoint]:
    """The best ``limit`` hits in score order, the same ones on every build of a collection also where
    equal scores run across the limit: the engine cuts such a run wherever its segments put it. This
    asks ``fetch`` for one hit more than the limit, which shows whether a run crosses it (almost never:
    one extra hit is all it costs then); where one does, it asks for a margin more, widening while the
    run fills the answer, and cuts after ordering."""
    if limit <= 0:
        return []
    asked = limit + 1
    for _ in range(MAX_TIE_WIDENINGS + 1):
        hits = in_score_order(fetch(asked))
        if len(hits) < asked or hits[limit - 1].score != hits[-1].score:
            break
        asked = max(asked * 2, limit + TIE_MARGIN)
    return hits[:limit]


class VectorStore(Protocol):
    """One collection of points with one dense vector each. A store that cannot be reached (a refused
    connection, a timeout) raises DependencyUnavailableError; any other error is raised as it is (a bug)."""

    spec: CollectionSpec

    def upsert(self, points: Sequence[PointToWrite]) -> None: ...

    def overwrite_payload(self, point_id: str, payload: dict[str, Any]) -> None: ...

    def delete(self, point_ids: Sequence[str]) -> None: ...

    def retrieve(
        self,
        point_ids: Sequence[str],
        with_vectors: bool = False,
        payload_keys: Sequence[str] | None = None,
        vector_name: str | None = None,
    ) -> list[StoredPoint]:
        """The points that exist; ``payload_keys`` reads only those payload fields (None: all), and
        ``with_vectors`` the main vector or the named one (``vector_name``; None where a point has none)."""
        ...

    def search(
        self,
        vector: np.ndarray,
        limit: int,
        conditions: Sequence[Condition] = (),
        exclude_ids: Sequence[str] = (),
        using: str | None = None,
        payload_keys: Sequence[str] | None = None,
    ) -> list[ScoredPoint]:
        """Nearest points that satisfy every condition: cosine on the main vector, or dot product on a
        named extra vector (``using``); points without that vector are not candidates. ``payload_keys``
        reads only those payload fields (None: all)."""
        ...

    def update_vectors(self, vector_name: str, vectors: dict[str, np.ndarray]) -> None:
        """Set one named extra vector on existing points (point id -> vector)."""
        ...

    def clear_vectors(self, vector_name: str) -> None:
        """Remove one named extra vector from every point."""
        ...

    def recommend(
        self,
        positive: Sequence[np.ndarray],
        negative: Sequence[np.ndarray],
        limit: int,
        conditions: Sequence[Condition] = (),
        exclude_ids: Sequence[str] = (),
    ) -> list[ScoredPoint]:
        """Qdrant's recommend query (best-score strategy) over example vectors."""
        ...

    def scroll(
        self, limit: int, offset: str | None = None, conditions: Sequence[Condition] = ()
    ) -> tuple[list[StoredPoint], str | None]: ...

    def count(self) -> int: ...

    def optimize(self) -> None:
        """Build indexes now if the backend needs to be told (embedded); a server does it by itself."""
        ...

    def drop(self) -> None:
        """Delete the whole collection."""
        ...

    def close(self) -> None: ...


def payload_selection(payload_keys: Sequence[str] | None) -> bool | list[str]:
    """``with_payload`` for both backends: None reads the whole payload, keys only those fields, and no keys
    none at all (qdrant-edge still reads every payload for an empty list, ~7x slower)."""
    return True if payload_keys is None else list(payload_keys) or False


class ModelMismatchError(ConfigurationError):
    """The collection holds vectors from another embedding model or of another dimension."""


def ensure_compatible(spec: CollectionSpec, stored: dict[str, Any] | None, location: str) -> None:
    if stored is None:
        return
    stored_model = stored.get("embedding_model")
    stored_dimension = stored.get("dimension")
    if stored_model != spec.embedding_model or stored_dimension != spec.dimension:
        raise ModelMismatchError(
            f"collection {location} was built with embedding model {stored_model!r} "
            f"(dimension {stored_dimension}), but the configured model is {spec.embedding_model!r} "
            f"(dimension {spec.dimension}). Vectors of different models must not be mixed: configure the "
            "original model, or set RECO_QDRANT__ON_MODEL_CHANGE=rebuild to re-embed the catalog."
        )
