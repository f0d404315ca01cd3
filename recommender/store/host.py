"""The store host: the process that holds an embedded store for several API processes.

``recommender serve --workers N`` starts it before the API processes and stops it after them. It opens a
collection's shard at the first call for it, answers each call in the thread of the caller's connection
(a thread per connection), and closes its shards when it stops. Requests and answers are in
``recommender.store.wire``'s format, which carries data, never code. The API processes' side is
``recommender.store.shared``.

A switch of embedding model replaces a collection here, in one step that every other call waits for
(``replace``), and retires the specification it replaced: a process still on the old model is told that the
store switched (a 503 while it follows), and cannot create the collection again with the old model.
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
from multiprocessing import AuthenticationError
from multiprocessing.connection import Connection, Listener
from pathlib import Path
from typing import Any

from recommender.errors import (
    ConfigurationError,
    DependencyUnavailableError,
    InvalidInputError,
    RecommenderError,
)
from recommender.store.base import CollectionSpec
from recommender.store.copying import copy_points
from recommender.store.edge import EdgeVectorStore, load_stored_shards, remove_edge_collection
from recommender.store.shared import DEPENDENCY, METHODS, pack
from recommender.store.wire import WireError, decode, encode, error_message

logger = logging.getLogger(__name__)

# How long a stopping host may take to close its shards (an index build in progress ends first) before
# it is terminated; the API processes have stopped, and waited for their own builds, by then.
SHUTDOWN_SECONDS = 300.0
START_SECONDS = 60.0


class _Host:
    """The host's shards by collection name, opened when the first API process asks for one."""

    base_path: Path | None = None
    loaded: dict[str, Any] = {}  # stored shards opened at start, until a collection takes its own
    collections: dict[str, HostedEdgeStore] = {}
    claimed: set[str] = set()
    # The specification a switch of model replaced, by collection name, until another one is opened.
    retired: dict[str, CollectionSpec] = {}
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

    def shut_and_remove(self) -> None:
        """The drop of a caller that holds ``_Host.lock``."""
        self.shut()
        remove_edge_collection(self._base_path, self.spec.name)


def _switched(spec: CollectionSpec) -> DependencyUnavailableError:
    return DependencyUnavailableError(
        DEPENDENCY,
        f"collection {spec.name} now holds another embedding model's vectors; this process follows the "
        "switch within seconds",
    )


def _opened(spec: CollectionSpec) -> HostedEdgeStore:
    with _Host.lock:
        if _Host.retired.get(spec.name) == spec:
            raise _switched(spec)
        store = _Host.collections.get(spec.name)
        if store is None:
            _Host.retired.pop(spec.name, None)
            assert _Host.base_path is not None, "the host was started without its folder"
            shard = _Host.loaded.pop(spec.name, None)
            store = _Host.collections[spec.name] = HostedEdgeStore(_Host.base_path, spec, shard)
        elif store.spec != spec:
            raise ConfigurationError(
                f"collection {spec.name} is open in the store host with another configuration: every API "
                "process must run with the same settings"
            )
        return store


def _answer(data: bytes) -> list[Any]:
    """One request's answer: ``["ok", result]``, or the error as ``wire.error_message`` writes it."""
    try:
        request = decode(data)
        if isinstance(request, list) and request[:1] == ["call"] and len(request) == 4:
            _, spec, method, args = request
            if not isinstance(spec, CollectionSpec) or method not in METHODS or not isinstance(args, list):
                raise InvalidInputError(f"the store host has no method {method!r} for {type(spec).__name__}")
            # Opening happens inside a call so that its errors, such as another model's vectors, reach the
            # client as they were raised.
            return ["ok", pack(getattr(_opened(spec), method)(*args))]
        if isinstance(request, list) and request[:1] == ["claim"] and len(request) == 2:
            return ["ok", _claim(str(request[1]))]
        if isinstance(request, list) and request[:1] == ["retire"] and len(request) == 2:
            if not isinstance(request[1], CollectionSpec):
                raise InvalidInputError("retire needs a collection specification")
            _retire(request[1])
            return ["ok", None]
        if isinstance(request, list) and request[:1] == ["replace"] and len(request) == 4:
            _, copy, target, extra = request
            if not (isinstance(copy, CollectionSpec) and isinstance(target, CollectionSpec)):
                raise InvalidInputError("replace needs two collection specifications")
            return ["ok", _replace(copy, target, [str(name) for name in extra])]
        raise WireError("not a request the store host answers")
    except Exception as error:
        return error_message(error)


def _close_unlocked(name: str, spec: CollectionSpec | None = None) -> HostedEdgeStore | None:
    """Take collection ``name`` out of the host (a caller holds ``_Host.lock``): its open store (closed),
    or its stored shard (closed). Returns the store it had open."""
    store = _Host.collections.pop(name, None)
    if store is not None:
        store.shut()
    shard = _Host.loaded.pop(name, None)
    if shard is not None:
        shard.close()
    return store


def _retire(spec: CollectionSpec) -> None:
    """Drop collection ``spec.name`` and refuse ``spec`` (the model it held) until another is opened."""
    with _Host.lock:
        _close_unlocked(spec.name)
        assert _Host.base_path is not None
        remove_edge_collection(_Host.base_path, spec.name)
        _Host.retired[spec.name] = spec


def _replace(copy: CollectionSpec, target: CollectionSpec, extra_vectors: list[str]) -> int:
    """Collection ``target.name`` recreated as ``target`` from the complete ``copy`` (then dropped), while
    every other call waits; the model it held before is retired. Returns the points copied."""
    with _Host.lock:
        assert _Host.base_path is not None
        replaced = _close_unlocked(target.name)
        remove_edge_collection(_Host.base_path, target.name)
        if replaced is not None and replaced.spec != target:
            _Host.retired[target.name] = replaced.spec
        _close_unlocked(copy.name)
        source = EdgeVectorStore(_Host.base_path, copy)
        try:
            products = _Host.collections[target.name] = HostedEdgeStore(_Host.base_path, target)
            copied = copy_points(source, products, extra_vectors)
        except BaseException:
            source.close()  # the complete copy stays: the switch is finished from it on the next start
            raise
        source.drop()
        return copied


def _claim(duty: str) -> bool:
    """True for the first process that asks for ``duty``, False for every later one."""
    with _Host.lock:
        if duty in _Host.claimed:
            return False
        _Host.claimed.add(duty)
        return True


def _serve_connection(connection: Connection) -> None:
    with connection:
        while True:
            try:
                request = connection.recv_bytes()
            except (EOFError, OSError):
                return
            answer = _answer(request)
            try:
                reply = encode(answer)
            except TypeError as error:  # a result the wire cannot carry: the host's bug, said as one
                reply = encode(error_message(error))
            try:
                connection.send_bytes(reply)
            except OSError:
                return


def _serve_host(address: str, authkey: bytes, base_path: str, report: Connection) -> None:
    """The host process: open every stored shard (so that one another process holds is refused now, with
    its reason sent back on ``report``), then serve calls until SIGTERM and close the shards (atexit, after
    an index build in progress). Ctrl-C reaches the whole process group: the host ignores it and stops when
    the command that started it says so, after the API processes have stopped."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    _Host.base_path = Path(base_path)
    try:
        _Host.loaded = load_stored_shards(_Host.base_path)
    except RecommenderError as error:
        report.send(error)
        return
    atexit.register(_close_all)
    listener = Listener(address, family="AF_UNIX", authkey=authkey)
    report.send(None)  # listening: calls wait in the socket's backlog until it serves
    report.close()
    while True:
        try:
            connection = listener.accept()  # a caller without the key is refused here
        except (AuthenticationError, EOFError, OSError) as error:
            logger.warning("store host refused a connection: %s", type(error).__name__)
            continue
        threading.Thread(target=_serve_connection, args=(connection,), daemon=True).start()


def _close_all() -> None:
    with _Host.lock:
        opened = list(_Host.collections.values())
        unclaimed = list(_Host.loaded.values())
        _Host.collections.clear()
        _Host.loaded.clear()
    for store in opened:
        store.shut()
    for shard in unclaimed:
        shard.close()


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
        context = multiprocessing.get_context("spawn")
        report, host_end = context.Pipe(duplex=False)
        process = context.Process(
            target=_serve_host,
            args=(self.address, self.authkey, str(self.base_path), host_end),
            name="store-host",
        )
        process.start()
        host_end.close()
        try:
            refusal = report.recv() if report.poll(START_SECONDS) else TimeoutError("no answer")
        except EOFError:
            refusal = EOFError("it exited")
        finally:
            report.close()
        if isinstance(refusal, RecommenderError):
            process.join()
            raise refusal
        if refusal is not None:
            process.kill()
            process.join()
            raise ConfigurationError(f"the store host for {self.base_path} did not start: {refusal}")
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
    Its socket lives in a new folder only this user can enter, and every call must carry the key. A store
    that another process holds is refused here, before any API process starts."""
    return StoreHost(base_path)
