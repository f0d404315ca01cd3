"""One embedded store served to several processes: a host process owns the shards, the others call it.

An embedded qdrant-edge shard belongs to one process (its write-ahead log is locked) and holds the
interpreter lock while it searches, so one API process serves one ranking at a time. With
``recommender serve --workers N`` a store host process opens the shards, and N API processes reach them
through ``SharedVectorStore``: the searches take turns in the host (a few milliseconds of a ranking),
everything else (features, the sequence model, the ranker, HTTP) runs in the API processes side by side.

The transport is the standard library's ``multiprocessing.managers`` over a Unix socket in a private
folder, with a random key: a method call is one pickled request and one pickled answer. This module is the
API processes' side (and the wire format); ``recommender.store.host`` is the host's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from multiprocessing import AuthenticationError
from multiprocessing.managers import BaseManager, BaseProxy, RemoteError
from typing import Any

import numpy as np

from recommender.errors import ConfigurationError, unavailable
from recommender.settings import QdrantSettings
from recommender.store.base import CollectionSpec, PointToWrite, ScoredPoint, StoredPoint
from recommender.store.conditions import Condition

DEPENDENCY = "vector store host"
# What a call raises when the host is gone, refuses the key or fails outside the store itself; the store's
# own errors (a 503 of its own, another model's vectors) come back as they were raised in the host.
_UNREACHABLE = (OSError, EOFError, RemoteError, AuthenticationError)
METHODS = (
    "upsert",
    "overwrite_payload",
    "delete",
    "retrieve",
    "search",
    "update_vectors",
    "clear_vectors",
    "recommend",
    "scroll",
    "count",
    "optimize",
    "drop",
)


def pack(result: Any) -> Any:
    """A store answer in plain lists for the wire: pickling 300 ``ScoredPoint`` objects one by one cost
    ~4 ms a search, the same ids, scores and payloads as three lists a fraction of it."""
    if isinstance(result, list) and result and isinstance(result[0], ScoredPoint):
        return ("scored", [hit.point_id for hit in result], [hit.score for hit in result], _payloads(result))
    if isinstance(result, list) and result and isinstance(result[0], StoredPoint):
        vectors = [point.vector for point in result]
        if all(vector is not None for vector in vectors):
            vectors = np.stack(vectors)  # type: ignore[arg-type, assignment]
        return ("stored", [point.point_id for point in result], _payloads(result), vectors)
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], list):  # a scroll page
        return ("page", pack(result[0]), result[1])
    return result


def unpack(answer: Any) -> Any:
    if isinstance(answer, tuple) and answer and answer[0] == "scored":
        _, point_ids, scores, payloads = answer
        return [ScoredPoint(*fields) for fields in zip(point_ids, scores, payloads, strict=True)]
    if isinstance(answer, tuple) and answer and answer[0] == "stored":
        _, point_ids, payloads, vectors = answer
        return [StoredPoint(*fields) for fields in zip(point_ids, payloads, vectors, strict=True)]
    if isinstance(answer, tuple) and answer and answer[0] == "page":
        return unpack(answer[1]), answer[2]
    return answer


def _payloads(points: Sequence[ScoredPoint | StoredPoint]) -> list[dict[str, Any]]:
    return [point.payload for point in points]


class ClientManager(BaseManager):
    pass


ClientManager.register("collection", exposed=("call",))
ClientManager.register("claims", exposed=("claim",))


class SharedVectorStore:
    """A ``VectorStore`` whose calls run in the store host (one connection per thread). A host that cannot
    be reached is a 503 naming it; the next call connects again."""

    def __init__(self, address: str, authkey: bytes, spec: CollectionSpec) -> None:
        self.spec = spec
        self._address = address
        self._authkey = authkey
        self._proxy: BaseProxy | None = None
        self._connect_lock = threading.Lock()

    def _collection(self) -> BaseProxy:
        with self._connect_lock:
            if self._proxy is None:
                manager = ClientManager(address=self._address, authkey=self._authkey)
                manager.connect()
                self._proxy = manager.collection(self.spec)  # type: ignore[attr-defined]
            return self._proxy

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            send: Callable[..., Any] = self._collection()._callmethod
            answer = send("call", (method, args, kwargs))
        except _UNREACHABLE as error:
            self._proxy = None
            raise unavailable(DEPENDENCY, error) from error
        return unpack(answer)

    def upsert(self, points: Sequence[PointToWrite]) -> None:
        if points:
            self._call("upsert", list(points))

    def overwrite_payload(self, point_id: str, payload: dict[str, Any]) -> None:
        self._call("overwrite_payload", point_id, payload)

    def delete(self, point_ids: Sequence[str]) -> None:
        if point_ids:
            self._call("delete", list(point_ids))

    def retrieve(
        self,
        point_ids: Sequence[str],
        with_vectors: bool = False,
        payload_keys: Sequence[str] | None = None,
        vector_name: str | None = None,
    ) -> list[StoredPoint]:
        if not point_ids:
            return []
        result: list[StoredPoint] = self._call(
            "retrieve", list(point_ids), with_vectors, _plain(payload_keys), vector_name
        )
        return result

    def search(
        self,
        vector: np.ndarray,
        limit: int,
        conditions: Sequence[Condition] = (),
        exclude_ids: Sequence[str] = (),
        using: str | None = None,
        payload_keys: Sequence[str] | None = None,
    ) -> list[ScoredPoint]:
        result: list[ScoredPoint] = self._call(
            "search", vector, limit, tuple(conditions), list(exclude_ids), using, _plain(payload_keys)
        )
        return result

    def update_vectors(self, vector_name: str, vectors: dict[str, np.ndarray]) -> None:
        if vectors:
            self._call("update_vectors", vector_name, dict(vectors))

    def clear_vectors(self, vector_name: str) -> None:
        self._call("clear_vectors", vector_name)

    def recommend(
        self,
        positive: Sequence[np.ndarray],
        negative: Sequence[np.ndarray],
        limit: int,
        conditions: Sequence[Condition] = (),
        exclude_ids: Sequence[str] = (),
    ) -> list[ScoredPoint]:
        result: list[ScoredPoint] = self._call(
            "recommend", list(positive), list(negative), limit, tuple(conditions), list(exclude_ids)
        )
        return result

    def scroll(
        self, limit: int, offset: str | None = None, conditions: Sequence[Condition] = ()
    ) -> tuple[list[StoredPoint], str | None]:
        result: tuple[list[StoredPoint], str | None] = self._call("scroll", limit, offset, tuple(conditions))
        return result

    def count(self) -> int:
        return int(self._call("count"))

    def optimize(self) -> None:
        self._call("optimize")

    def drop(self) -> None:
        self._call("drop")
        self._proxy = None

    def close(self) -> None:
        """The shard stays open in the host for the other processes."""
        self._proxy = None


def _plain(keys: Sequence[str] | None) -> list[str] | None:
    return None if keys is None else list(keys)


def host_key(settings: QdrantSettings) -> bytes:
    if settings.store_host_key is None:
        raise ConfigurationError("RECO_QDRANT__STORE_HOST is set without RECO_QDRANT__STORE_HOST_KEY")
    return bytes.fromhex(settings.store_host_key.get_secret_value())


def host_environment(address: str, authkey: bytes) -> dict[str, str]:
    """What the API processes need in their environment to reach the host."""
    return {"RECO_QDRANT__STORE_HOST": address, "RECO_QDRANT__STORE_HOST_KEY": authkey.hex()}


def claim_once(settings: QdrantSettings, duty: str) -> bool:
    """Whether this process is the first of those sharing the host to claim ``duty`` (e.g. the start-up
    recovery of interrupted jobs, which must run once, not once per API process); True without a host."""
    if not settings.store_host:
        return True
    manager = ClientManager(address=settings.store_host, authkey=host_key(settings))
    try:
        manager.connect()
        return bool(manager.claims().claim(duty))  # type: ignore[attr-defined]
    except _UNREACHABLE as error:
        raise unavailable(DEPENDENCY, error) from error
