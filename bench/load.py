"""Concurrent load on a real server process (``recommender demo`` on loopback, with API keys): mixed
read and write routes, one client against N clients, in the same run.

    python -m bench.load --clients 16 --seconds 60

Route mix per request: 45% personalised list (GET /users/{id}/recommendations), 15% query
(POST /recommendations), 15% similar products, 10% product GET, 15% event batches (POST /events, write).
Every answer other than 2xx counts as an error; the script exits 1 if there was any.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from tests.live_service import running, service_environment

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-admin-key-0123456789abcdef"
SHOPPERS = ["demo-runner", "demo-cook", "demo-gardener", "demo-reader"]
QUERIES = ["running shoes", "espresso machine", "garden hose", "a thriller novel", "warm jacket"]


def demo_server(root: Path, port: int, workers: int = 1):  # type: ignore[no-untyped-def]
    """The demo on the embedded defaults, with an admin key, until /health/ready answers."""
    settings = {
        "RECO_API__KEYS": f'{{"{KEY}": ["read", "write", "admin"]}}',
        "RECO_API__WORKERS": str(workers),
    }
    return running(
        [sys.executable, "-c", "from cli.main import main; main()", "demo", "--port", str(port)],
        f"http://127.0.0.1:{port}/health/ready",
        env=service_environment(root, **settings),
        timeout=300,
    )


def one_request(client: httpx.Client, picker: random.Random, products: list[str]) -> httpx.Response:
    roll = picker.random()
    if roll < 0.45:
        return client.get(f"/users/{picker.choice(SHOPPERS)}/recommendations", params={"k": 10})
    if roll < 0.60:
        return client.post("/recommendations", json={"query": picker.choice(QUERIES), "k": 10})
    if roll < 0.75:
        return client.get(f"/products/{picker.choice(products)}/similar", params={"k": 10})
    if roll < 0.85:
        return client.get(f"/products/{picker.choice(products)}")
    events = [
        {"user_id": f"load-{picker.randrange(500)}", "product_id": picker.choice(products), "type": "view"}
        for _ in range(5)
    ]
    return client.post("/events", json={"events": events})


def run_phase(base: str, clients: int, seconds: float, products: list[str]) -> dict[str, float]:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker(seed: int) -> None:
        picker = random.Random(seed)
        own: list[float] = []
        with httpx.Client(base_url=base, headers={"X-API-Key": KEY}, timeout=30) as client:
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                try:
                    response = one_request(client, picker, products)
                    ok = 200 <= response.status_code < 300
                    reason = f"{response.status_code} {response.request.method} {response.request.url.path}"
                except httpx.HTTPError as error:
                    ok, reason = False, type(error).__name__
                own.append(time.perf_counter() - started)
                if not ok:
                    with lock:
                        errors.append(reason)
        with lock:
            latencies.extend(own)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    ordered = sorted(latencies)
    return {
        "clients": clients,
        "requests": len(latencies),
        "errors": len(errors),
        "first_errors": errors[:5],  # type: ignore[dict-item]
        "throughput": len(latencies) / elapsed,
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--workers", type=int, default=1, help="API processes (`recommender demo --workers N`)"
    )
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        with demo_server(Path(folder), arguments.port, arguments.workers):
            base = f"http://127.0.0.1:{arguments.port}"
            from recommender.demo import demo_catalog_path

            products = [
                line.split('"product_id": "')[1].split('"')[0]
                for line in demo_catalog_path().read_text().splitlines()
            ]
            run_phase(base, 1, 3, products)  # warm-up
            single = run_phase(base, 1, arguments.seconds, products)
            many = run_phase(base, arguments.clients, arguments.seconds, products)
    print(f"{'clients':>8} {'requests':>9} {'errors':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for phase in (single, many):
        print(
            f"{phase['clients']:>8} {phase['requests']:>9} {phase['errors']:>7} {phase['throughput']:>8.1f} "
            f"{phase['p50_ms']:>8.1f} {phase['p99_ms']:>8.1f}"
        )
    print(
        f"throughput {arguments.clients} clients vs 1 client: "
        f"{many['throughput'] / single['throughput']:.2f}x"
    )
    for phase in (single, many):
        if phase["errors"]:
            print(f"errors with {phase['clients']} clients, first: {phase['first_errors']}")
    if single["errors"] or many["errors"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
