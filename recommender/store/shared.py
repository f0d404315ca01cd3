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
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
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
# How long a stopping host may take to close its shards (an index build in progress ends first) before
# it is terminated; the API processes have stopped, and waited for their own builds, by then.
SHUTDOWN_SECONDS = 300.0
START_SECONDS = 60.0
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
        return pack(getattr(_opened(self._spec), method)(*args, **kwargs))


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


def _serve_host(address: str, authkey: bytes, base_path: str) -> None:
    """The host process: serve calls until SIGTERM, then close the shards (atexit, after an index build in
    progress). Ctrl-C reaches the whole process group: the host ignores it and stops when the command
    that started it says so, after the API processes have stopped."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    _Host.base_path = Path(base_path)
    atexit.register(_close_all)
    _HostManager(address=address, authkey=authkey).get_server().serve_forever()  # type: ignore[no-untyped-call]


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


class StoreHost:
    """The host process, started by the command that starts the API processes, and started again (same
    socket, same key) if it dies: the API processes get 503s naming it meanwhile, and reconnect."""

    def __init__(self, base_path: Path) -> None:
        self.base_path = base_path
        folder = tempfile.mkdtemp(prefix="recommender-store-")  # only this user may enter it
        self.address = os.path.join(folder, "store.sock")
        self.authkey = secrets.token_bytes(32)
        self._stopping = threading.Event()
        self._process = self._start()
        self._watcher = threading.Thread(target=self._watch, name="store-host-watch", daemon=True)
        self._watcher.start()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def _start(self) -> multiprocessing.process.BaseProcess:
        Path(self.address).unlink(missing_ok=True)  # a dead host's socket
        process = multiprocessing.get_context("spawn").Process(
            target=_serve_host, args=(self.address, self.authkey, str(self.base_path)), name="store-host"
        )
        process.start()
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                _ClientManager(address=self.address, authkey=self.authkey).connect()
                break
            except OSError:
                if not process.is_alive() or time.monotonic() > deadline:
                    process.kill()
                    raise ConfigurationError(
                        f"the store host for {self.base_path} did not start (exit code {process.exitcode})"
                    ) from None
                time.sleep(0.05)
        logger.info("store host process %s serves %s", process.pid, self.base_path)
        return process

    def _watch(self) -> None:
        pause = 1.0
        while not self._stopping.is_set():
            self._process.join(timeout=0.5)
            if self._process.is_alive() or self._stopping.is_set():
                continue
            logger.error("the store host stopped (exit code %s); starting it again", self._process.exitcode)
            try:
                self._process = self._start()
                pause = 1.0
            except ConfigurationError as error:
                logger.error("%s; trying again in %.0f s", error, pause)
                self._stopping.wait(pause)
                pause = min(pause * 2, 60.0)

    def stop(self) -> None:
        """Closes the shards (after an index build in progress) and removes the socket's folder."""
        self._stopping.set()
        self._watcher.join()
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(SHUTDOWN_SECONDS)
            if self._process.is_alive():
                logger.error("the store host did not stop within %.0f s; killed", SHUTDOWN_SECONDS)
                self._process.kill()
                self._process.join()
        shutil.rmtree(Path(self.address).parent, ignore_errors=True)


def start_store_host(base_path: Path) -> StoreHost:
    """Start the host process for the embedded store under ``base_path``; returns once it accepts calls.
    Its socket lives in a new folder only this user can enter, and every call must carry the key."""
    return StoreHost(base_path)


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
