"""One embedded store served to several processes: a host process owns the shards, the others call it.

An embedded qdrant-edge shard belongs to one process (its write-ahead log is locked) and holds the
interpreter lock while it searches, so one API process serves one ranking at a time. With
``recommender serve --workers N`` a store host process opens the shards, and N API processes reach them
through ``SharedVectorStore``: the searches take turns in the host (a few milliseconds of a ranking),
everything else (features, the sequence model, the ranker, HTTP) runs in the API processes side by side.

The transport is the standard library's ``multiprocessing.managers`` over a Unix socket in a private
folder, with a random key: a method call is one pickled request and one pickled answer.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import secrets
import signal
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing import AuthenticationError
from multiprocessing.managers import BaseManager, BaseProxy, RemoteError
from pathlib import Path
from typing import Any

import numpy as np

from recommender.errors import ConfigurationError, unavailable
from recommender.settings import QdrantSettings
from recommender.store.base import CollectionSpec, PointToWrite, ScoredPoint, StoredPoint
from recommender.store.conditions import Condition
from recommender.store.edge import EdgeVectorStore

logger = logging.getLogger(__name__)

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


# --- In the host process -------------------------------------------------------------------------------


class _Host:
    """The host's shards by collection name, opened when the first API process asks for one."""

    base_path: Path | None = None
    collections: dict[str, HostedEdgeStore] = {}
    claimed: set[str] = set()
    lock = threading.Lock()


class HostedEdgeStore(EdgeVectorStore):
    """A shard the host keeps open for every process: a client's close leaves it open, a drop forgets it."""

    def close(self) -> None:
        """The host closes its shards when it stops."""

    def drop(self) -> None:
        with _Host.lock:
            _Host.collections.pop(self.spec.name, None)
        super().drop()

    def shut(self) -> None:
        with self._optimize_lock:  # an index build in progress ends first
            super().close()


def _opened(spec: CollectionSpec) -> HostedEdgeStore:
    with _Host.lock:
        store = _Host.collections.get(spec.name)
        if store is None:
            assert _Host.base_path is not None, "the host was started without its folder"
            store = _Host.collections[spec.name] = HostedEdgeStore(_Host.base_path, spec)
        elif store.spec != spec:
            raise ConfigurationError(
                f"collection {spec.name} is open in the store host with another configuration: every API "
                "process must run with the same settings"
            )
        return store


class _HostedCollection:
    """What a client's proxy calls: one method of the collection's shard, opened at the first call. Opening
    happens inside a call (not when the proxy is made) so that its errors, such as another model's vectors,
    reach the client as they were raised."""

    def __init__(self, spec: CollectionSpec) -> None:
        self._spec = spec

    def call(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if method not in METHODS:
            raise AttributeError(f"the store host has no method {method!r}")
        return getattr(_opened(self._spec), method)(*args, **kwargs)


class _Claims:
    def claim(self, duty: str) -> bool:
        """True for the first process that asks for ``duty``, False for every later one."""
        with _Host.lock:
            if duty in _Host.claimed:
                return False
            _Host.claimed.add(duty)
            return True


def _claims() -> _Claims:
    return _Claims()


def _start_host(base_path: str) -> None:
    """In the host process, before it serves: the folder it owns, and its shards closed when it stops.
    Ctrl-C reaches the whole process group; the host stops when the command that started it says so,
    after the API processes have stopped."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _Host.base_path = Path(base_path)
    atexit.register(_close_all)


def _close_all() -> None:
    with _Host.lock:
        opened = list(_Host.collections.values())
        _Host.collections.clear()
    for store in opened:
        store.shut()


class _HostManager(BaseManager):
    pass


_HostManager.register("collection", callable=_HostedCollection, exposed=("call",))
_HostManager.register("claims", callable=_claims, exposed=("claim",))


@dataclass
class StoreHost:
    """A running host process, started by the command that starts the API processes."""

    address: str
    authkey: bytes
    manager: BaseManager

    def stop(self) -> None:
        self.manager.shutdown()  # type: ignore[attr-defined]


def start_store_host(base_path: Path) -> StoreHost:
    """Start the host process for the embedded store under ``base_path``; returns once it accepts calls.
    Its socket lives in a new folder only this user can enter, and every call must carry the key."""
    folder = tempfile.mkdtemp(prefix="recommender-store-")
    address = os.path.join(folder, "store.sock")
    authkey = secrets.token_bytes(32)
    manager = _HostManager(address=address, authkey=authkey, ctx=multiprocessing.get_context("spawn"))
    manager.start(initializer=_start_host, initargs=(str(base_path),))
    logger.info("store host process %s serves %s", manager._process.pid, base_path)  # type: ignore[attr-defined]
    return StoreHost(address, authkey, manager)


# --- In the API processes ------------------------------------------------------------------------------


class _ClientManager(BaseManager):
    pass


_ClientManager.register("collection", exposed=("call",))
_ClientManager.register("claims", exposed=("claim",))


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
                manager = _ClientManager(address=self._address, authkey=self._authkey)
                manager.connect()
                self._proxy = manager.collection(self.spec)  # type: ignore[attr-defined]
            return self._proxy

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._collection()._callmethod("call", (method, args, kwargs))
        except _UNREACHABLE as error:
            self._proxy = None
            raise unavailable(DEPENDENCY, error) from error

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


def host_environment(host: StoreHost) -> dict[str, str]:
    """What the API processes need in their environment to reach the host."""
    return {"RECO_QDRANT__STORE_HOST": host.address, "RECO_QDRANT__STORE_HOST_KEY": host.authkey.hex()}


def claim_once(settings: QdrantSettings, duty: str) -> bool:
    """Whether this process is the first of those sharing the host to claim ``duty`` (e.g. the start-up
    recovery of interrupted jobs, which must run once, not once per API process); True without a host."""
    if not settings.store_host:
        return True
    manager = _ClientManager(address=settings.store_host, authkey=host_key(settings))
    try:
        manager.connect()
        return bool(manager.claims().claim(duty))  # type: ignore[attr-defined]
    except _UNREACHABLE as error:
        raise unavailable(DEPENDENCY, error) from error
