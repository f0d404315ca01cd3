"""``recommender serve --workers N`` over the embedded store: N API processes and one store host."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from recommender.ids import product_point_id
from recommender.store import CollectionSpec
from recommender.store.edge import EdgeVectorStore, read_edge_metadata
from tests.live_service import ROOT, free_port, live_service, service_environment

# Outside the fast tier: several API processes and a store host, started for real (about 45 s).
pytestmark = pytest.mark.slow


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


LISTEN, ESTABLISHED = "0A", "01"


def sockets_on(port: int, state: str) -> set[str]:
    """Inodes of this machine's IPv4 TCP sockets whose local port is ``port``, in ``state``."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == state:
            inodes.add(fields[9])
    return inodes


def holding(pid: int, inodes: set[str]) -> int:
    """How many of these sockets the process holds."""
    held = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        held += target.startswith("socket:[") and target[8:-1] in inodes
    return held


@contextmanager
def only_running(running: int, api_processes: list[int]) -> Iterator[None]:
    """The other API processes stopped (SIGSTOP) for the block: ``running`` accepts every connection."""
    stopped = [pid for pid in api_processes if pid != running]
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)


def test_two_api_processes_serve_one_embedded_store(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    metrics_folder = tmp_path / "metrics"
    metrics_folder.mkdir()
    with live_service(
        tmp_path, port, RECO_API__WORKERS="2", PROMETHEUS_MULTIPROC_DIR=str(metrics_folder)
    ) as process:
        # uvicorn's two API processes and the store host (multiprocessing may add its resource tracker).
        assert len(children(process.pid)) >= 3
        api_processes = [pid for pid in children(process.pid) if holding(pid, sockets_on(port, LISTEN))]
        assert len(api_processes) == 2
        writer, reader = api_processes
        shoe = {"product_id": "shoe", "title": "Trail running shoe", "category": "Sports > Running"}
        sock = {"product_id": "sock", "title": "Running socks", "category": "Sports > Running"}
        # One process writes while the other is stopped (the running one accepts every connection); then the
        # other reads what it wrote, four clients at once, a new connection for each request.
        with only_running(writer, api_processes):
            for product in (shoe, sock):
                assert httpx.post(f"{base}/products", json=product, timeout=60).status_code == 201

        def similar(_: int) -> list[str]:
            found = httpx.get(f"{base}/products/shoe/similar", params={"k": 5}, timeout=60)
            assert found.status_code == 200, found.text
            return [item["product_id"] for item in found.json()["items"]]

        with only_running(reader, api_processes), ThreadPoolExecutor(4) as clients:
            assert list(clients.map(similar, range(12))) == [["sock"]] * 12

        # A conversation lives in the shared event store: one process starts it, the other takes its turns.
        with only_running(writer, api_processes):
            first_turn = {"product_id": "shoe", "message": "why this?", "user_id": "ann"}
            started = httpx.post(f"{base}/chat", json=first_turn, timeout=60).json()

        def follow_up(_: int) -> int:
            body = {
                "product_id": "shoe",
                "message": "anything similar?",
                "user_id": "ann",
                "conversation_id": started["conversation_id"],
            }
            return httpx.post(f"{base}/chat", json=body, timeout=60).status_code

        with only_running(reader, api_processes), ThreadPoolExecutor(4) as clients:
            assert list(clients.map(follow_up, range(12))) == [200] * 12
        held = httpx.get(f"{base}/users/ann/data", timeout=60).json()["conversations"]
        # The latest 20 turns are kept; concurrent turns of one conversation may overwrite each other.
        assert 4 <= len(held[started["conversation_id"]]) <= 20
        served_by = {int(path.stem.split("_")[1]) for path in metrics_folder.glob("histogram_*.db")}
        assert served_by == set(api_processes), (served_by, api_processes)
        # /metrics sums every process's counts, whichever process answers it.
        scraped = httpx.get(f"{base}/metrics", timeout=60).text
        route = re.escape('route="/products/{product_id}/similar"')
        counted = re.search(
            r"recommender_http_request_seconds_count\{[^}]*" + route + r"[^}]*\} (\S+)", scraped
        )
        assert counted is not None and float(counted.group(1)) == 12, scraped[-2000:]
        assert "recommender_task_queue_depth 0.0" in scraped
        events = [{"user_id": "u1", "product_id": "shoe", "type": "view"}]
        assert httpx.post(f"{base}/events", json={"events": events}, timeout=60).status_code == 202
        listed = httpx.get(f"{base}/users/u1/recommendations", params={"k": 5}, timeout=60)
        assert listed.status_code == 200 and "sock" in [item["product_id"] for item in listed.json()["items"]]
    assert process.wait(60) == 0
    log = (tmp_path / f"server-{port}.log").read_text()
    assert log.count("Application startup complete") == 2
    # The host closed the shard when the service stopped: the store opens again, with both products.
    metadata = read_edge_metadata(tmp_path / "qdrant", "reco_products")
    assert metadata is not None
    spec = CollectionSpec("reco_products", "text", metadata["dimension"], metadata["embedding_model"])
    store = EdgeVectorStore(tmp_path / "qdrant", spec)
    try:
        assert len(store.retrieve([product_point_id("shoe"), product_point_id("sock")])) == 2
    finally:
        store.close()


def test_the_demo_loads_its_catalog_then_serves_it_from_two_processes(tmp_path: Path) -> None:
    port = free_port()
    with live_service(tmp_path, port, command="demo", RECO_API__WORKERS="2") as process:
        assert len(children(process.pid)) >= 3
        for _ in range(4):
            listed = httpx.get(f"http://127.0.0.1:{port}/users/demo-runner/recommendations", timeout=60)
            assert listed.status_code == 200, listed.text
            assert len(listed.json()["items"]) == 10
        api_processes = [pid for pid in children(process.pid) if holding(pid, sockets_on(port, LISTEN))]
        assert len(api_processes) == 2
        connections_spread_evenly(port, api_processes)
    assert (tmp_path / f"server-{port}.log").read_text().count("Application startup complete") == 2


def connections_spread_evenly(port: int, api_processes: list[int]) -> None:
    """Eight keep-alive clients connect while one API process is stopped, so the other accepts them all
    (it already closes one now and then: the stopped one has served nobody lately, and the client connects
    to it again); once both run, the busy one closes connections until each holds four."""
    base = f"http://127.0.0.1:{port}"
    clients = [httpx.Client(base_url=base, timeout=60) for _ in range(8)]
    awake, asleep = api_processes
    with only_running(awake, api_processes):
        for client in clients:
            assert client.get("/health").status_code == 200
        established = sockets_on(port, ESTABLISHED)
        assert holding(asleep, established) == 0 and holding(awake, established) >= 6
    stop, answers = threading.Event(), []

    def keep_asking(client: httpx.Client) -> None:
        while not stop.is_set():
            answers.append(client.get("/users/demo-runner/recommendations").status_code)

    held: list[int] = []
    with ThreadPoolExecutor(8) as pool:
        asking = [pool.submit(keep_asking, client) for client in clients]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and held != [4, 4]:
            time.sleep(0.5)
            established = sockets_on(port, ESTABLISHED)
            held = [holding(pid, established) for pid in api_processes]
        time.sleep(2)  # and it stays so
        established = sockets_on(port, ESTABLISHED)
        still = [holding(pid, established) for pid in api_processes]
        stop.set()
        for each in asking:
            each.result()  # no client failed
    for client in clients:
        client.close()
    assert held == [4, 4] and still == [4, 4], (held, still)
    assert len(answers) > 50 and set(answers) == {200}


def test_a_store_another_process_holds_is_refused_before_any_api_process_starts(tmp_path: Path) -> None:
    port = free_port()
    with live_service(tmp_path, port):  # one process holds the store
        refused = subprocess.run(
            [sys.executable, "-c", "from cli.main import main; main()", "serve", "--workers", "2"],
            env=service_environment(tmp_path, RECO_API__PORT=str(free_port())),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "already open in another process" in " ".join(refused.stderr.split())  # rich wraps lines
    assert "Started parent process" not in refused.stdout + refused.stderr
