"""The store host: one embedded store reached from several processes (`recommender serve --workers N`).

The contract suite runs the shared store beside the other backends; these tests cover what only it has:
other processes' writes, the key, a host that is gone, and the shards closed when the host stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from recommender.errors import DependencyUnavailableError
from recommender.ids import product_point_id
from recommender.store import CollectionSpec, PointToWrite
from recommender.store.base import ModelMismatchError
from recommender.store.edge import EdgeVectorStore
from recommender.store.host import start_store_host
from recommender.store.shared import (
    HostAddress,
    SharedVectorStore,
    claim_once,
    replace_collection,
    retire_collection,
)

SPEC = CollectionSpec("shared", "text", 4, "test-model", ("product_id",))
ROOT = Path(__file__).resolve().parents[3]

WRITER = """
import numpy as np
from recommender.ids import product_point_id
import os
from recommender.store import CollectionSpec, PointToWrite
from recommender.store.shared import HostAddress, SharedVectorStore

host = HostAddress.from_environment(os.environ)
spec = CollectionSpec("shared", "text", 4, "test-model", ("product_id",))
store = SharedVectorStore(host.address, host.authkey, spec)
vector = np.ones(4, dtype=np.float32)
store.upsert([PointToWrite(product_point_id("from-elsewhere"), vector, {"product_id": "from-elsewhere"})])
print(store.count())
"""


def point(product_id: str, vector: list[float]) -> PointToWrite:
    return PointToWrite(
        product_point_id(product_id), np.asarray(vector, dtype=np.float32), {"product_id": product_id}
    )


def test_another_process_writes_and_this_one_reads_through_the_host(tmp_path: Path) -> None:
    host = start_store_host(tmp_path)
    try:
        here = SharedVectorStore(host.address, host.authkey, SPEC)
        here.upsert([point("local", [1, 0, 0, 0])])
        environment = {"PATH": "/usr/bin:/bin", **HostAddress(host.address, host.authkey).environment()}
        written = subprocess.run(
            [sys.executable, "-c", WRITER],
            env=environment,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert written.returncode == 0, written.stderr
        assert written.stdout.strip() == "2"  # it saw this process's point too
        hits = here.search(np.ones(4, dtype=np.float32), 2, payload_keys=["product_id"])
        assert [hit.payload["product_id"] for hit in hits] == ["from-elsewhere", "local"]
    finally:
        host.stop()
    # The host closed its shard when it stopped: the folder opens again, with both points.
    reopened = EdgeVectorStore(tmp_path, SPEC)
    try:
        assert reopened.count() == 2
    finally:
        reopened.close()


def test_a_wrong_key_and_a_stopped_host_are_503s_naming_the_host(tmp_path: Path) -> None:
    host = start_store_host(tmp_path)
    try:
        intruder = SharedVectorStore(host.address, b"not the key", SPEC)
        with pytest.raises(DependencyUnavailableError, match="vector store host"):
            intruder.count()
        store = SharedVectorStore(host.address, host.authkey, SPEC)
        assert store.count() == 0
    finally:
        host.stop()
    with pytest.raises(DependencyUnavailableError, match="vector store host unavailable"):
        store.count()


def test_another_models_vectors_are_refused_through_the_host(tmp_path: Path) -> None:
    EdgeVectorStore(tmp_path, SPEC).close()
    host = start_store_host(tmp_path)
    try:
        other = CollectionSpec("shared", "text", 4, "other-model", ("product_id",))
        with pytest.raises(ModelMismatchError, match="other-model"):
            SharedVectorStore(host.address, host.authkey, other).count()
    finally:
        host.stop()


def test_a_switch_of_model_replaces_the_collection_in_the_host_and_retires_the_old_model(
    tmp_path: Path,
) -> None:
    host = start_store_host(tmp_path)
    address = HostAddress(host.address, host.authkey)
    new = CollectionSpec("shared", "text", 4, "new-model", ("product_id",))
    copy = CollectionSpec("shared__rebuild", "text", 4, "new-model", ("product_id",))
    try:
        old_store = SharedVectorStore(host.address, host.authkey, SPEC)  # a process still on the old model
        old_store.upsert([point("a", [1, 0, 0, 0]), point("b", [0, 1, 0, 0])])
        SharedVectorStore(host.address, host.authkey, copy).upsert(
            [point("a", [0, 0, 1, 0]), point("b", [0, 0, 0, 1])]
        )
        assert replace_collection(address, copy, new, []) == 2
        switched = SharedVectorStore(host.address, host.authkey, new)
        found = switched.retrieve([product_point_id("a")], with_vectors=True)
        assert np.allclose(found[0].vector, [0, 0, 1, 0])  # the copy's vectors, not the old ones
        # The old model's process is told the store switched (a 503), and cannot create it again.
        with pytest.raises(DependencyUnavailableError, match="another embedding model"):
            old_store.count()
        assert switched.count() == 2
        assert not (tmp_path / "shared__rebuild").exists()
        # A retired collection is refused to its model until another one is opened.
        retire_collection(address, new)
        with pytest.raises(DependencyUnavailableError, match="another embedding model"):
            switched.count()
        assert SharedVectorStore(host.address, host.authkey, SPEC).count() == 0  # another model: created
    finally:
        host.stop()


def test_a_start_up_duty_goes_to_the_first_process_only(tmp_path: Path) -> None:
    assert claim_once(None, "start-up recovery")  # one process, no host: always its own
    host = start_store_host(tmp_path)
    try:
        address = HostAddress(host.address, host.authkey)
        assert claim_once(address, "start-up recovery")
        assert not claim_once(address, "start-up recovery")
        assert claim_once(address, "another duty")
    finally:
        host.stop()


def test_a_host_that_dies_is_started_again_and_the_clients_reconnect(tmp_path: Path) -> None:
    host = start_store_host(tmp_path)
    try:
        store = SharedVectorStore(host.address, host.authkey, SPEC)
        store.upsert([point("kept", [0, 1, 0, 0])])
        first = host.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        with pytest.raises(DependencyUnavailableError, match="vector store host"):
            store.count()  # the call that finds it gone is a 503 naming it
        deadline = time.monotonic() + 60
        while True:
            try:
                assert store.count() == 1  # the same socket and key, and the point written before
                break
            except DependencyUnavailableError:
                assert time.monotonic() < deadline, "the host was not started again"
                time.sleep(0.2)
        assert host.pid not in (None, first)
    finally:
        host.stop()


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.marker,))


def test_the_host_reads_data_never_code(tmp_path: Path) -> None:
    """Even a caller with the key cannot make the host run code: a pickle is not a message it reads, and a
    message naming any type but the store's own records is refused."""
    import pickle
    from multiprocessing.connection import Client

    import msgpack

    from recommender.store.wire import RECORD, decode, encode

    host = start_store_host(tmp_path / "store")
    marker = tmp_path / "ran"
    try:
        connection = Client(host.address, family="AF_UNIX", authkey=host.authkey)
        connection.send_bytes(pickle.dumps(_RunsCode(marker)))
        assert decode(connection.recv_bytes())[:2] == ["bug", "WireError"]
        foreign = msgpack.ExtType(RECORD, encode(["Popen", [["touch", str(marker)]]]))
        connection.send_bytes(msgpack.packb(["call", foreign, "count", []]))
        assert decode(connection.recv_bytes())[:2] == ["bug", "WireError"]
        connection.send_bytes(encode(["call", SPEC, "__init__", []]))
        assert decode(connection.recv_bytes())[:2] == ["error", "InvalidInputError"]
        connection.close()
        assert not marker.exists()
        assert SharedVectorStore(host.address, host.authkey, SPEC).count() == 0  # still serving
    finally:
        host.stop()
