"""Server backend: a Qdrant server through qdrant-client (also its in-process ``:memory:`` mode in tests).

The only module that imports qdrant_client.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

import httpx
import numpy as np
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from recommender.errors import unavailable
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

ResultT = TypeVar("ResultT")
IN_PROCESS_LOCK = threading.RLock()
# A server answering these is overloaded or restarting behind a proxy: worth a retry, as a refused
# connection is.
UNAVAILABLE_STATUSES = frozenset({502, 503, 504})


def unreachable(error: BaseException) -> bool:
    """Only a connection that failed or timed out (or a gateway's 502-504) is the server being unavailable;
    a 400 from Qdrant or a TypeError is a bug, which must not be retried or reported as an outage."""
    if isinstance(error, ResponseHandlingException):
        return unreachable(error.source)
    if isinstance(error, UnexpectedResponse):
        return error.status_code in UNAVAILABLE_STATUSES
    return isinstance(error, httpx.TransportError | ConnectionError | TimeoutError)


def connect(url: str, api_key: str | None, timeout_seconds: float) -> QdrantClient:
    if url == ":memory:":
        return QdrantClient(location=":memory:")
    return QdrantClient(url=url, api_key=api_key, timeout=int(max(1, timeout_seconds)))


class ServerVectorStore:
    def __init__(self, client: QdrantClient, spec: CollectionSpec) -> None:
        self.spec = spec
        self._client = client
        # Checked on first use, so that a server that is down at start-up gives 503s, not a dead service.
        self._collection_ready = False
        # qdrant-client's in-process mode is not thread-safe (a read while a write grows its arrays fails
        # with an IndexError), and the API runs requests and profile refreshes in threads: one at a time.
        in_process = client.init_options.get("location") == ":memory:"
        self._serialised: AbstractContextManager[Any] = IN_PROCESS_LOCK if in_process else nullcontext()

    def _call(self, operation: Callable[[], ResultT]) -> ResultT:
        try:
            with self._serialised:
                if not self._collection_ready:
                    self._ensure_collection()
                    self._collection_ready = True
                return operation()
        except Exception as error:
            if unreachable(error):
                raise unavailable("vector store", error) from error
            raise

    def _ensure_collection(self) -> None:
        name = self.spec.name
        if self._client.collection_exists(name):
            info = self._client.get_collection(name)
            ensure_compatible(self.spec, info.config.metadata, f"{name!r} on the Qdrant server")
            return
        self._client.create_collection(
            name,
            vectors_config={
                self.spec.vector_name: models.VectorParams(
                    size=self.spec.dimension, distance=models.Distance.COSINE
                ),
                **{
                    name: models.VectorParams(size=size, distance=models.Distance.DOT)
                    for name, size in self.spec.extra_vectors
                },
            },
            metadata=self.spec.metadata(),
        )
        for key, schema in [
            *[(key, models.PayloadSchemaType.KEYWORD) for key in self.spec.keyword_indexes],
            *[(key, models.PayloadSchemaType.FLOAT) for key in self.spec.float_indexes],
            *[(key, models.PayloadSchemaType.INTEGER) for key in self.spec.integer_indexes],
        ]:
            self._client.create_payload_index(name, key, field_schema=schema)

    def upsert(self, points: Sequence[PointToWrite]) -> None:
        if not points:
            return
        structs = [
            models.PointStruct(
                id=point.point_id,
                vector={self.spec.vector_name: point.vector.tolist()},
                payload=point.payload,
            )
            for point in points
        ]
        self._call(lambda: self._client.upsert(self.spec.name, structs, wait=True))

    def overwrite_payload(self, point_id: str, payload: dict[str, Any]) -> None:
        self._call(
            lambda: self._client.overwrite_payload(self.spec.name, payload, points=[point_id], wait=True)
        )

    def delete(self, point_ids: Sequence[str]) -> None:
        if point_ids:
            selector = models.PointIdsList(points=list(point_ids))
            self._call(lambda: self._client.delete(self.spec.name, selector, wait=True))

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
        records = self._call(
            lambda: self._client.retrieve(
                self.spec.name,
                list(point_ids),
                with_payload=payload_selection(payload_keys),
                with_vectors=[name] if with_vectors else False,
            )
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
        return self._query(vector.tolist(), limit, conditions, exclude_ids, using, payload_keys)

    def update_vectors(self, vector_name: str, vectors: dict[str, np.ndarray]) -> None:
        if not vectors:
            return
        points = [
            models.PointVectors(id=point_id, vector={vector_name: vector.tolist()})
            for point_id, vector in vectors.items()
        ]
        self._call(lambda: self._client.update_vectors(self.spec.name, points, wait=True))

    def clear_vectors(self, vector_name: str) -> None:
        selector = models.FilterSelector(filter=models.Filter())
        self._call(lambda: self._client.delete_vectors(self.spec.name, [vector_name], selector, wait=True))

    def recommend(
        self,
        positive: Sequence[np.ndarray],
        negative: Sequence[np.ndarray],
        limit: int,
        conditions: Sequence[Condition] = (),
        exclude_ids: Sequence[str] = (),
    ) -> list[ScoredPoint]:
        query = models.RecommendQuery(
            recommend=models.RecommendInput(
                positive=[vector.tolist() for vector in positive],
                negative=[vector.tolist() for vector in negative],
                strategy=models.RecommendStrategy.BEST_SCORE,
            )
        )
        return self._query(query, limit, conditions, exclude_ids)

    def _query(
        self,
        query: Any,
        limit: int,
        conditions: Sequence[Condition],
        exclude_ids: Sequence[str],
        using: str | None = None,
        payload_keys: Sequence[str] | None = None,
    ) -> list[ScoredPoint]:
        def fetch(asked: int) -> list[ScoredPoint]:
            response = self._call(
                lambda: self._client.query_points(
                    self.spec.name,
                    query=query,
                    using=using or self.spec.vector_name,
                    query_filter=_server_filter(conditions, exclude_ids),
                    limit=asked,
                    with_payload=payload_selection(payload_keys),
                )
            )
            return [
                ScoredPoint(str(hit.id), float(hit.score), dict(hit.payload or {})) for hit in response.points
            ]

        return best_in_score_order(fetch, limit)

    def scroll(
        self, limit: int, offset: str | None = None, conditions: Sequence[Condition] = ()
    ) -> tuple[list[StoredPoint], str | None]:
        records, next_offset = self._call(
            lambda: self._client.scroll(
                self.spec.name,
                scroll_filter=_server_filter(conditions, ()),
                limit=limit,
                offset=offset,
                with_payload=True,
            )
        )
        return [self._stored(record, None) for record in records], (
            str(next_offset) if next_offset is not None else None
        )

    def count(self) -> int:
        return int(self._call(lambda: self._client.count(self.spec.name, exact=True).count))

    def optimize(self) -> None:
        """A server builds its indexes by itself."""

    def drop(self) -> None:
        self._call(lambda: self._client.delete_collection(self.spec.name))
        self._collection_ready = False

    def close(self) -> None:
        """The client is shared by every collection; the service closes it."""

    def _stored(self, record: Any, vector_name: str | None) -> StoredPoint:
        vector = None
        if vector_name is not None and record.vector is not None and vector_name in record.vector:
            vector = np.asarray(record.vector[vector_name], dtype=np.float32)
        return StoredPoint(str(record.id), dict(record.payload or {}), vector)


def _server_filter(conditions: Sequence[Condition], exclude_ids: Sequence[str]) -> models.Filter | None:
    must = [_server_condition(condition) for condition in conditions]
    must_not: list[Any] = [models.HasIdCondition(has_id=list(exclude_ids))] if exclude_ids else []
    if not must and not must_not:
        return None
    return models.Filter(must=must or None, must_not=must_not or None)


def _server_condition(condition: Condition) -> Any:
    match condition:
        case MatchCondition(key=key, value=value):
            return models.FieldCondition(key=key, match=models.MatchValue(value=value))
        case MatchAnyCondition(key=key, values=values):
            return models.FieldCondition(key=key, match=models.MatchAny(any=list(values)))  # type: ignore[arg-type]
        case RangeCondition(key=key, gte=gte, lte=lte):
            return models.FieldCondition(key=key, range=models.Range(gte=gte, lte=lte))
        case HasIdCondition(point_ids=point_ids):
            return models.HasIdCondition(has_id=list(point_ids))
    raise TypeError(f"unsupported condition {condition!r}")
