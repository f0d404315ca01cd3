"""One embedded store served to several processes: a host process owns the shards, the others call it.

An embedded qdrant-edge shard belongs to one process (its write-ahead log is locked) and holds the
interpreter lock while it searches, so one API process serves one ranking at a time. With
``recommender serve --workers N`` a store host process opens the shards, and N API processes reach them
through ``SharedVectorStore``: the searches take turns in the host (a few milliseconds of a ranking),
everything else (features, the sequence model, the ranker, HTTP) runs in the API processes side by side.

The transport is a Unix socket in a private folder (``multiprocessing.connection``, which checks a random
key with HMAC before anything else is read), carrying one request and one answer per call in the format
of ``recommender.store.wire`` (MessagePack: data only, never code). This module is the API processes'
side; ``recommender.store.host`` is the host's.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection
from typing import Any

import numpy as np

from recommender.errors import ConfigurationError, unavailable
from recommender.store.base import CollectionSpec, PointToWrite, ScoredPoint, StoredPoint
from recommender.store.conditions import Condition
from recommender.store.wire import decode, encode, raise_answer

DEPENDENCY = "vector store host"
# What a call raises when the host is gone or refuses the key; the store's own errors (another model's
# vectors, a bug) come back from the host and are raised as such.
_UNREACHABLE = (OSError, EOFError, AuthenticationError)
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
    """A store answer in plain lists for the wire: 300 ``ScoredPoint`` records one by one cost more than
    the same ids, scores and payloads as three lists."""
    if isinstance(result, list) and result and isinstance(result[0], ScoredPoint):
        return ["scored", [hit.point_id for hit in result], [hit.score for hit in result], _payloads(result)]
    if isinstance(result, list) and result and isinstance(result[0], StoredPoint):
        vectors: Any = [point.vector for point in result]
        if all(vector is not None for vector in vectors):
            vectors = np.stack(vectors)
        return ["stored", [point.point_id for point in result], _payloads(result), vectors]
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], list):  # a scroll page
        return ["page", pack(result[0]), result[1]]
    return result


def unpack(answer: Any) -> Any:
    if isinstance(answer, list) and answer and answer[0] == "scored":
        _, point_ids, scores, payloads = answer
        return [ScoredPoint(*fields) for fields in zip(point_ids, scores, payloads, strict=True)]
    if isinstance(answer, list) and answer and answer[0] == "stored":
        _, point_ids, payloads, vectors = answer
        return [StoredPoint(*fields) for fields in zip(point_ids, payloads, vectors, strict=True)]
    if isinstance(answer, list) and answer and answer[0] == "page":
        return unpack(answer[1]), answer[2]
    return answer


def _payloads(points: Sequence[ScoredPoint | StoredPoint]) -> list[dict[str, Any]]:
    return [point.payload for point in points]


class HostConnections:
    """One connection to the host per thread, made at the thread's first call and again after a failure."""

    def __init__(self, address: str, authkey: bytes) -> None:
        self._address = address
        self._authkey = authkey
        self._local = threading.local()

    def ask(self, request: list[Any]) -> Any:
        try:
            connection: Connection | None = getattr(self._local, "connection", None)
            if connection is None:
                connection = self._local.connection = Client(
                    self._address, family="AF_UNIX", authkey=self._authkey
                )
            connection.send_bytes(encode(request))
            answer = decode(connection.recv_bytes())
        except _UNREACHABLE as error:
            self.forget()
            raise unavailable(DEPENDENCY, error) from error
        return raise_answer(answer)

    def forget(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            connection.close()


class SharedVectorStore:
    """A ``VectorStore`` whose calls run in the store host (one connection per thread). A host that cannot
    be reached is a 503 naming it; the next call connects again."""

    def __init__(self, address: str, authkey: bytes, spec: CollectionSpec) -> None:
        self.spec = spec
        self._host = HostConnections(address, authkey)

    def _call(self, method: str, *args: Any) -> Any:
        return unpack(self._host.ask(["call", self.spec, method, list(args)]))

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

    def close(self) -> None:
        """The shard stays open in the host for the other processes."""
        self._host.forget()


def _plain(keys: Sequence[str] | None) -> list[str] | None:
    return None if keys is None else list(keys)


# How `recommender serve --workers N` tells its API processes where the host is: wiring between the processes
# of one command, not settings (uvicorn starts the processes, so the environment is the only way in).
ADDRESS_VARIABLE = "RECOMMENDER_STORE_HOST"
KEY_VARIABLE = "RECOMMENDER_STORE_HOST_KEY"


@dataclass(frozen=True)
class HostAddress:
    address: str
    authkey: bytes

    def environment(self) -> dict[str, str]:
        """What the API processes need in their environment to reach the host."""
        return {ADDRESS_VARIABLE: self.address, KEY_VARIABLE: self.authkey.hex()}

    @classmethod
    def from_environment(cls, environment: Mapping[str, str]) -> HostAddress | None:
        """The host this process was started to use, or None (this process opens the store itself)."""
        address = environment.get(ADDRESS_VARIABLE)
        if not address:
            return None
        key = environment.get(KEY_VARIABLE)
        if not key:
            raise ConfigurationError(f"{ADDRESS_VARIABLE} is set without {KEY_VARIABLE}")
        return cls(address, bytes.fromhex(key))


def claim_once(host: HostAddress | None, duty: str) -> bool:
    """Whether this process is the first of those sharing the host to claim ``duty`` (e.g. the start-up
    recovery of interrupted jobs, which must run once, not once per API process); True without a host."""
    if host is None:
        return True
    connections = HostConnections(host.address, host.authkey)
    try:
        return bool(connections.ask(["claim", duty]))
    finally:
        connections.forget()


def _ask_once(host: HostAddress, request: list[Any]) -> Any:
    connections = HostConnections(host.address, host.authkey)
    try:
        return connections.ask(request)
    finally:
        connections.forget()


def replace_collection(
    host: HostAddress, copy: CollectionSpec, target: CollectionSpec, extra: Sequence[str]
) -> int:
    """Recreate ``target`` in the host from the complete ``copy`` (dropped after), in one step the other
    processes' calls wait for; a process still on the model it held gets a 503 until it follows."""
    return int(_ask_once(host, ["replace", copy, target, list(extra)]))


def retire_collection(host: HostAddress, spec: CollectionSpec) -> None:
    """Drop ``spec``'s collection in the host and refuse that model there until another is opened."""
    _ask_once(host, ["retire", spec])
