"""Embedded backend: qdrant-edge-py, Qdrant's engine in-process. One shard directory per collection.

An embedded shard belongs to one process (its WAL is locked); background work therefore runs inside
the same process. Several API processes reach it through a store host (``shared.py``); separate worker
processes need the server backend.

An embedded store has no connection to lose: its errors are bugs or a broken disk, raised as they are (a 500
with an error id), never reported as the store being unavailable.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as edge

from recommender.errors import ConfigurationError, StoreLockedError
from recommender.store.base import (
    CollectionSpec,
    PointToWrite,
    ScoredPoint,
    StoredPoint,
    best_in_score_order,
    ensure_compatible,
    payload_selection,
)
from recommender.store.conditions import (
    Condition,
    HasIdCondition,
    MatchAnyCondition,
    MatchCondition,
    RangeCondition,
)

META_FILE_SUFFIX = ".meta.json"
EDGE_CONFIG = "edge_config.json"


def read_edge_metadata(base_path: Path, name: str) -> dict[str, Any] | None:
    meta_path = base_path / f"{name}{META_FILE_SUFFIX}"
    if not meta_path.exists():
        return None
    return dict(json.loads(meta_path.read_text()))


def remove_edge_collection(base_path: Path, name: str) -> None:
    """A closed collection's shard and metadata, deleted."""
    shutil.rmtree(base_path / name, ignore_errors=True)
    (base_path / f"{name}{META_FILE_SUFFIX}").unlink(missing_ok=True)


def load_shard(shard_path: Path) -> edge.EdgeShard:
    """Open a stored shard; one that another process holds is a ``StoreLockedError`` saying what to do."""
    try:
        return edge.EdgeShard.load(str(shard_path))
    except Exception as error:
        if "WAL" in str(error) or "WouldBlock" in str(error):
            raise StoreLockedError(
                f"The embedded vector store at {shard_path} is already open in another "
                "process. An embedded store belongs to one process: stop the other process, or "
                "run a Qdrant server and set RECO_QDRANT__URL (QDRANT_URL) so that the API and "
                "separate Celery workers can share it. (Several API processes share an embedded "
                "store with `recommender serve --workers N`.)"
            ) from error
        raise ConfigurationError(f"cannot open embedded store {shard_path}: {error}") from error


def load_stored_shards(base_path: Path) -> dict[str, edge.EdgeShard]:
    """Every stored shard under ``base_path`` by collection name (a ``StoreLockedError`` if another process
    holds one; those opened before it are closed)."""
    loaded: dict[str, edge.EdgeShard] = {}
    try:
        for config in sorted(base_path.glob(f"*/{EDGE_CONFIG}")):
            loaded[config.parent.name] = load_shard(config.parent)
    except Exception:
        for shard in loaded.values():
            shard.close()
        raise
    return loaded


class EdgeVectorStore:
    def __init__(self, base_path: Path, spec: CollectionSpec, loaded: edge.EdgeShard | None = None) -> None:
        """``loaded``: the collection's stored shard, already opened (the store host opens them all first)."""
        self.spec = spec
        self._base_path = base_path
        self._shard_path = base_path / spec.name
        self._meta_path = base_path / f"{spec.name}{META_FILE_SUFFIX}"
        self._optimize_lock = threading.Lock()
        base_path.mkdir(parents=True, exist_ok=True)
        self._shard = self._open(loaded)

    def _open(self, loaded: edge.EdgeShard | None) -> edge.EdgeShard:
        if (self._shard_path / EDGE_CONFIG).exists():
            ensure_compatible(
                self.spec, read_edge_metadata(self._base_path, self.spec.name), str(self._shard_path)
            )
            shard = loaded or load_shard(self._shard_path)
            self._add_missing_vectors(shard)
            return shard
        vectors = {
            self.spec.vector_name: edge.EdgeVectorParams(
                size=self.spec.dimension, distance=edge.Distance.Cosine
            )
        }
        for name, size in self.spec.extra_vectors:
            vectors[name] = edge.EdgeVectorParams(size=size, distance=edge.Distance.Dot)
        config = edge.EdgeConfig(vectors=vectors)
        shard = edge.EdgeShard.create(str(self._shard_path), config)
        for key in self.spec.keyword_indexes:
            shard.update(edge.UpdateOperation.create_field_index(key, edge.PayloadSchemaType.Keyword))
        for key in self.spec.float_indexes:
            shard.update(edge.UpdateOperation.create_field_index(key, edge.PayloadSchemaType.Float))
        for key in self.spec.integer_indexes:
            shard.update(edge.UpdateOperation.create_field_index(key, edge.PayloadSchemaType.Integer))
        self._meta_path.write_text(json.dumps(self.spec.metadata()))
        return shard

    def _add_missing_vectors(self, shard: edge.EdgeShard) -> None:
        """A store created before an extra vector was configured gets it now (empty on every point)."""
        present = json.loads((self._shard_path / EDGE_CONFIG).read_text()).get("vectors", {})
        for name, size in self.spec.extra_vectors:
            if name not in present:
                shard.update(edge.UpdateOperation.create_dense_vector(name, size, edge.Distance.Dot))

    def upsert(self, points: Sequence[PointToWrite]) -> None:
        if not points:
            return
        edge_points = [
            edge.Point(point.point_id, {self.spec.vector_name: point.vector.tolist()}, point.payload)
            for point in points
        ]
        self._shard.update(edge.UpdateOperation.upsert_points(edge_points))

    def overwrite_payload(self, point_id: str, payload: dict[str, Any]) -> None:
        self._shard.update(edge.UpdateOperation.overwrite_payload([point_id], payload))

    def delete(self, point_ids: Sequence[str]) -> None:
        if point_ids:
            self._shard.update(edge.UpdateOperation.delete_points(list(point_ids)))

    def retrieve(
        self,
        point_ids: Sequence[str],
        with_vectors: bool = False,
        payload_keys: Sequence[str] | None = None,
        vector_name: str | None = None,
    ) -> list[StoredPoint]:
        if not point_ids:
            return []
        name = vector_name or self.spec.vector_name
        records = self._shard.retrieve(
            list(point_ids),
            with_payload=payload_selection(payload_keys),
            # The text vector only: decoding the learned vectors too would double the work.
            with_vector=[name] if with_vectors else False,
        )
        return [self._stored(record, name if with_vectors else None) for record in records]

    def search(
        self,
        vector: np.ndarray,
        limit: int,
        conditions: Sequence[Condition] = (),
        exclude_ids: Sequence[str] = (),
        using: str | None = None,
        payload_keys: Sequence[str] | None = None,
    ) -> list[ScoredPoint]:
        query = edge.Query.Nearest(vector.tolist(), using=using or self.spec.vector_name)
        return self._query(query, limit, conditions, exclude_ids, payload_keys)

    def update_vectors(self, vector_name: str, vectors: dict[str, np.ndarray]) -> None:
        if not vectors:
            return
        updates = [
            edge.PointVectors(point_id, {vector_name: vector.tolist()})
            for point_id, vector in vectors.items()
        ]
        self._shard.update(edge.UpdateOperation.update_vectors(updates))

    def clear_vectors(self, vector_name: str) -> None:
        clear = edge.UpdateOperation.delete_vectors_by_filter(edge.Filter(), [vector_name])
        self._shard.update(clear)

    def recommend(
        self,
        positive: Sequence[np.ndarray],
        negative: Sequence[np.ndarray],
        limit: int,
        conditions: Sequence[Condition] = (),
        exclude_ids: Sequence[str] = (),
    ) -> list[ScoredPoint]:
        recommend_query = edge.RecommendQuery(
            [vector.tolist() for vector in positive], [vector.tolist() for vector in negative]
        )
        query = edge.Query.RecommendBestScore(recommend_query, using=self.spec.vector_name)
        return self._query(query, limit, conditions, exclude_ids)

    def _query(
        self,
        query: Any,
        limit: int,
        conditions: Sequence[Condition],
        exclude_ids: Sequence[str],
        payload_keys: Sequence[str] | None = None,
    ) -> list[ScoredPoint]:
        def fetch(asked: int) -> list[ScoredPoint]:
            request = edge.QueryRequest(
                limit=asked,
                query=query,
                with_payload=payload_selection(payload_keys),
                filter=_edge_filter(conditions, exclude_ids),
            )
            results = self._shard.query(request)
            return [ScoredPoint(str(hit.id), float(hit.score), dict(hit.payload or {})) for hit in results]

        return best_in_score_order(fetch, limit)

    def scroll(
        self, limit: int, offset: str | None = None, conditions: Sequence[Condition] = ()
    ) -> tuple[list[StoredPoint], str | None]:
        request = edge.ScrollRequest(
            offset=offset, limit=limit, filter=_edge_filter(conditions, ()), with_payload=True
        )
        records, next_offset = self._shard.scroll(request)
        return [self._stored(record, None) for record in records], (
            str(next_offset) if next_offset is not None else None
        )

    def count(self) -> int:
        return int(self._shard.count(edge.CountRequest(exact=True)))

    def optimize(self) -> None:
        # One optimisation at a time; exact search keeps serving while the HNSW graph is built.
        if not self._optimize_lock.acquire(blocking=False):
            return
        try:
            self._shard.optimize()
        finally:
            self._optimize_lock.release()

    def drop(self) -> None:
        self._shard.close()
        remove_edge_collection(self._base_path, self.spec.name)

    def close(self) -> None:
        self._shard.close()

    def _stored(self, record: Any, vector_name: str | None) -> StoredPoint:
        vector = None
        if vector_name is not None and record.vector is not None and vector_name in record.vector:
            vector = np.asarray(record.vector[vector_name], dtype=np.float32)
        return StoredPoint(str(record.id), dict(record.payload or {}), vector)


def _edge_filter(conditions: Sequence[Condition], exclude_ids: Sequence[str]) -> edge.Filter | None:
    must = [_edge_condition(condition) for condition in conditions]
    must_not: list[Any] = [edge.HasIdCondition(set(exclude_ids))] if exclude_ids else []
    if not must and not must_not:
        return None
    return edge.Filter(must=must or None, must_not=must_not or None)


def _edge_condition(condition: Condition) -> Any:
    match condition:
        case MatchCondition(key=key, value=value):
            return edge.FieldCondition(key, match=edge.MatchValue(value))
        case MatchAnyCondition(key=key, values=values):
            return edge.FieldCondition(key, match=edge.MatchAny(list(values)))  # type: ignore[arg-type]
        case RangeCondition(key=key, gte=gte, lte=lte):
            return edge.FieldCondition(key, range=edge.RangeFloat(gte=gte, lte=lte))
        case HasIdCondition(point_ids=point_ids):
            return edge.HasIdCondition(set(point_ids))
    raise TypeError(f"unsupported condition {condition!r}")
