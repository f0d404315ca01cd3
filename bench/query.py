"""Recommendation latency through the HTTP API and through the bare store, at 10k and 100k products.

    python -m bench.query --sizes 10000 100000 --requests 200
    python -m bench.query --sizes 10000 --personal      # + personalised lists: fusion vs learned ranker
    python -m bench.query --sizes 100000 --hnsw --personal --clients 1 8   # HNSW, recall, 8 clients
    python -m bench.query --sizes 100000 --hnsw --personal --clients 1 8 --workers 2   # two API processes
    python -m bench.query --sizes 1000000 --vectors derived --hnsw --clients 1 8   # 1M, similar products

``--personal`` also records synthetic histories (2,000 users who each keep to two categories), trains
the sequence model and the ranker with the service's training job, and times
``GET /users/{id}/recommendations?k=10`` twice, in the same run: with the rank fusion
(``RECO_PIPELINE__RANKER=fusion``, the path before the learned ranker) and with the learned ranker, then
the learned ranker without the served-list log (``RECO_ONLINE__RECORD_SERVED_LISTS=false``: what logging
each list costs).

Vectors are random unit vectors by default (the worst case for HNSW recall), or with ``--vectors text``
synthetic product texts embedded once by the configured model and cached under ``data/bench/`` (see
``bench/text_catalog.py``; search cost per query does not depend on which), or with ``--vectors derived``
vectors drawn around those text vectors (a million texts would take hours to embed here);
payloads are real product payloads with categories, brands and prices, so filters do real
work. The HTTP numbers come from a real server process (``recommender serve``) on loopback, queried
sequentially; "query" requests include embedding the query text with the real model.
``--hnsw`` builds the HNSW index first (qdrant-edge ``optimize()``: minutes at 100k on 2 cores) and reports
its recall@10 against exact nearest neighbours computed in numpy; without it the embedded store answers by
exact search. ``--clients 1 8`` times similar products (and with ``--personal`` the learned ranker's lists)
under concurrent clients (threads, one connection each) and prints the throughput against one client.
``--workers 2`` serves with two API processes, which share the embedded store through a store host process
(``recommender serve --workers``).
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from recommender.catalog import product_payload
from recommender.ids import product_point_id
from recommender.models import Product, ProductFilter
from recommender.settings import Settings
from recommender.store import PointToWrite
from recommender.store.conditions import conditions_for
from recommender.store.edge import EdgeVectorStore
from recommender.store.opening import product_collection
from tests.live_service import free_port, running

CATEGORIES = [
    "Home > Kitchen",
    "Home > Garden",
    "Sports > Running",
    "Sports > Cycling",
    "Electronics > Audio",
    "Electronics > Computers",
    "Books > Fiction",
    "Beauty > Skincare",
]
BRANDS = [f"brand-{index}" for index in range(50)]
DIMENSION = 384
USERS = 2000
PROBES = 200


class _ModelInfo:
    model_name = "all-MiniLM-L6-v2"
    dimension = DIMENSION


@dataclass
class Catalog:
    """The benchmark's products: unit vectors, categories and brands, plus query vectors to probe with."""

    vectors: np.ndarray
    categories: list[str]
    brands: list[str]
    probes: np.ndarray


def random_catalog(size: int, probes: int, seed: int = 5) -> Catalog:
    rng = np.random.default_rng(seed)
    picker = random.Random(seed)
    vectors = _unit(rng.normal(size=(size, DIMENSION)))
    categories = [picker.choice(CATEGORIES) for _ in range(size)]
    brands = [picker.choice(BRANDS) for _ in range(size)]
    return Catalog(
        vectors, categories, brands, _unit(np.random.default_rng(9).normal(size=(probes, DIMENSION)))
    )


def text_catalog(size: int, probes: int) -> Catalog:
    """Synthetic product texts embedded by the configured model (cached under data/bench/)."""
    from text_catalog import cached_vectors, text_products, text_queries  # bench/, the script's folder

    from recommender.embedding import build_embedder

    settings = Settings()
    embedder = build_embedder(settings.embedding)
    products = text_products(size)
    stem = Path("data/bench") / f"{Path(settings.embedding.model).name}-{type(embedder).__name__}"
    started = time.perf_counter()
    vectors = cached_vectors([product.text for product in products], stem, embedder.encode_documents)
    queries = cached_vectors(text_queries(probes), stem, embedder.encode_queries)
    print(f"  text vectors ready in {time.perf_counter() - started:.0f} s ({stem}-*.npy)")
    return Catalog(vectors, [p.category for p in products], [p.brand for p in products], queries)


TEXT_PRODUCTS = 100_000  # the most product texts embedded; larger catalogs are derived from their vectors


def derived_catalog(size: int, probes: int, seed: int = 13) -> Catalog:
    """``size`` synthetic vectors around the real model's vectors of (at most) 100k product texts: each is a
    product's vector moved part of the way (0-50%) towards another product of its category, plus a little
    noise. They keep the clusters of real embeddings, which random unit vectors lack, without embedding a
    million texts; categories and brands are those of the product each one starts from."""
    texts = text_catalog(min(size, TEXT_PRODUCTS), probes)
    rng = np.random.default_rng(seed)
    origin = np.arange(size) % len(texts.vectors)
    categories = np.asarray(texts.categories)
    partner = np.empty(size, dtype=np.int64)
    for category in np.unique(categories):
        members = np.flatnonzero(categories == category)
        starting_here = np.flatnonzero(categories[origin] == category)
        partner[starting_here] = rng.choice(members, len(starting_here))
    vectors = np.empty((size, DIMENSION), dtype=np.float32)
    for start in range(0, size, 100_000):
        part = slice(start, min(start + 100_000, size))
        weight = rng.uniform(0, 0.5, (part.stop - start, 1)).astype(np.float32)
        noise = rng.normal(scale=0.01, size=(part.stop - start, DIMENSION)).astype(np.float32)
        mixed = (1 - weight) * texts.vectors[origin[part]] + weight * texts.vectors[partner[part]] + noise
        vectors[part] = _unit(mixed)
    return Catalog(
        vectors, [texts.categories[i] for i in origin], [texts.brands[i] for i in origin], texts.probes
    )


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = vectors.astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def fill_store(store: EdgeVectorStore, catalog: Catalog, seed: int = 5) -> None:
    """The catalog's vectors with real payloads (prices and stock drawn here)."""
    picker = random.Random(seed)
    for start in range(0, len(catalog.vectors), 2000):
        points = []
        for index in range(start, min(start + 2000, len(catalog.vectors))):
            product = Product(
                product_id=f"p{index}",
                title=f"Product {index}",
                category=catalog.categories[index],
                brand=catalog.brands[index],
                price=round(picker.uniform(1, 500), 2),
                in_stock=picker.random() > 0.1,
            )
            points.append(
                PointToWrite(
                    product_point_id(product.product_id),
                    catalog.vectors[index],
                    product_payload(product, "x"),
                )
            )
        store.upsert(points)


def hnsw_recall(store: EdgeVectorStore, catalog: Catalog, k: int = 10) -> float:
    """Recall@k of the store's (HNSW) answers against exact nearest neighbours computed here in numpy over
    the same vectors, for the catalog's probe queries."""
    found = 0
    for start in range(0, len(catalog.probes), 20):
        probes = catalog.probes[start : start + 20]
        scores = catalog.vectors @ probes.T  # (products, probes): one pass over the vectors for 20 probes
        nearest = np.argpartition(-scores, k, axis=0)[:k].T
        for probe, indexes in zip(probes, nearest, strict=True):
            exact = {product_point_id(f"p{index}") for index in indexes}
            found += len(exact & {hit.point_id for hit in store.search(probe, k)})
    return found / (len(catalog.probes) * k)


def record_histories(root: Path, categories: list[str], users: int = USERS, seed: int = 11) -> None:
    """Users who each keep to two categories, 20-40 events over 60 days."""
    from datetime import UTC, datetime, timedelta

    from recommender.database import Database
    from recommender.events import EventStore
    from recommender.models import InteractionEvent

    picker = random.Random(seed)
    by_category: dict[str, list[int]] = {}
    for index, category in enumerate(categories):
        by_category.setdefault(category, []).append(index)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    events = []
    for user in range(users):
        liked = picker.sample(sorted(by_category), 2)
        for step in range(picker.randint(20, 40)):
            product = picker.choice(by_category[picker.choice(liked)][:300])
            events.append(
                InteractionEvent(
                    user_id=f"u{user}",
                    product_id=f"p{product}",
                    type=picker.choice(["view", "view", "click", "purchase"]),
                    timestamp=start + timedelta(days=60 * step / 40, minutes=user),
                )
            )
    database = Database(f"sqlite:///{root / 'events.db'}")
    EventStore(database).add(events)
    database.close()


def train(root: Path) -> str:
    """The service's training job on the recorded histories (few epochs: latency, not quality)."""
    from recommender.service import build_service

    settings = Settings(
        qdrant={"path": root / "qdrant"},
        events={"url": f"sqlite:///{root / 'events.db'}"},
        collab={"epochs": 5, "models_path": root / "models"},
    )
    service = build_service(settings)
    try:
        # Events sent to the API refresh the senders' text profiles; these were written directly.
        service.profiles.refresh([f"u{user}" for user in range(USERS)])
        report = service.train()
    finally:
        service.close()
    return report.ranker


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    return f"p50 {p50:7.2f} ms   p99 {p99:7.2f} ms"


def timed(call: Callable[[], object], repeats: int) -> list[float]:
    call()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def bench_store(store: EdgeVectorStore, probes: np.ndarray, repeats: int) -> None:
    queries = itertools.cycle(probes)
    filtered = conditions_for(ProductFilter(category="Sports", price_max=200, in_stock=True))

    def plain() -> object:
        return store.search(next(queries), 10)

    def with_filter() -> object:
        return store.search(next(queries), 10, filtered)

    print(f"  store search k=10           {percentiles(timed(plain, repeats))}")
    print(f"  store search k=10 filtered  {percentiles(timed(with_filter, repeats))}")


QUERIES = [
    "running shoes",
    "coffee grinder",
    "garden hose",
    "noise cancelling headphones",
    "crime novel",
    "face cream",
    "bike light",
    "laptop stand",
]


def bench_http(
    root: Path,
    size: int,
    repeats: int,
    personal: bool = False,
    clients: tuple[int, ...] = (),
    warmup: int = 0,
    workers: int = 1,
) -> None:
    env = {
        **os.environ,
        "RECO_API__WORKERS": str(workers),
        "RECO_QDRANT__PATH": str(root / "qdrant"),
        "HF_HUB_OFFLINE": "1",
        "RECO_EVENTS__URL": f"sqlite:///{root / 'events.db'}",
        "RECO_COLLAB__MODELS_PATH": str(root / "models"),
    }
    if personal:
        for ranker in ("fusion", "learned"):
            concurrency = clients if ranker == "learned" else ()
            serve_and_time_personal(
                root, env | {"RECO_PIPELINE__RANKER": ranker}, ranker, repeats, concurrency, warmup, workers
            )
        # What logging each served list costs a request (the learned ranker, the same run).
        unlogged = env | {"RECO_ONLINE__RECORD_SERVED_LISTS": "false"}
        serve_and_time_personal(root, unlogged, "no log", repeats, (), warmup, workers)
        return
    server, port = served(env)
    picker = random.Random(3)
    with server:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:

            def similar() -> object:
                return client.get(f"/products/p{picker.randrange(size)}/similar", params={"k": 10})

            def similar_filtered() -> object:
                params = {"k": 10, "category": "Sports", "price_max": 200, "in_stock": "true"}
                return client.get(f"/products/p{picker.randrange(size)}/similar", params=params)

            def query() -> object:
                params = {"k": 10, "query": picker.choice(QUERIES)}
                return client.get("/users/visitor/recommendations", params=params)

            print(f"  HTTP GET similar k=10       {percentiles(timed(similar, repeats))}")
            print(f"  HTTP GET similar filtered   {percentiles(timed(similar_filtered, repeats))}")
            print(f"  HTTP GET query (embeds)     {percentiles(timed(query, repeats))}")
        print_concurrent(port, clients, repeats, lambda p: f"/products/p{p.randrange(size)}/similar?k=10")


def served(env: dict[str, str]):  # type: ignore[no-untyped-def]
    """``recommender serve`` with ``env`` on a free loopback port, until /health answers; yields the port."""
    port = free_port()
    command = [sys.executable, "-c", "from cli.main import main; main()", "serve", "--port", str(port)]
    return running(command, f"http://127.0.0.1:{port}/health", env=env, timeout=300), port


def serve_and_time_personal(
    root: Path,
    env: dict[str, str],
    ranker: str,
    repeats: int,
    clients: tuple[int, ...] = (),
    warmup: int = 0,
    workers: int = 1,
) -> None:
    """Times a fresh server, then (``warmup`` > 0) the same after that many more requests: a long-running
    process has read its products' fields and mapped their point ids, a fresh one pays that first. With
    several API processes the warm-up comes from as many connections as processes times two, so that each
    process takes its share (one connection stays with the process that accepted it)."""
    server, port = served(env)
    picker = random.Random(4)
    with server:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            notes: list[str] = []

            def personal() -> object:
                response = client.get(f"/users/u{picker.randrange(USERS)}/recommendations", params={"k": 10})
                notes[:] = response.json()["notes"]
                return response

            samples = timed(personal, repeats)
            print(f"  HTTP GET personal k=10, {ranker:<8} {percentiles(samples)}   ({'; '.join(notes)})")
            if warmup and workers > 1:
                concurrent_personal(port, 2 * workers, warmup // (2 * workers))
            elif warmup:
                for _ in range(warmup):
                    personal()
            if warmup:
                samples = timed(personal, repeats)
                print(f"    after {warmup} more requests   {percentiles(samples)}")
        print_concurrent(port, clients, repeats, personal_path)


def print_concurrent(
    port: int, clients: tuple[int, ...], repeats: int, path: Callable[[random.Random], str]
) -> None:
    """Throughput and latency for each number of concurrent clients, against the first."""
    single = None
    for count in clients:
        rate, samples = concurrent_requests(port, count, repeats, path)
        single = single or rate
        print(
            f"    {count} concurrent client(s): {rate:6.1f} req/s ({rate / single:.2f}x one client)   "
            f"{percentiles(samples)}"
        )


def personal_path(picker: random.Random) -> str:
    return f"/users/u{picker.randrange(USERS)}/recommendations?k=10"


def concurrent_personal(port: int, clients: int, repeats: int) -> tuple[float, list[float]]:
    """``clients`` threads, each with its own connection, sending ``repeats`` personalised requests."""
    return concurrent_requests(port, clients, repeats, personal_path)


def concurrent_requests(
    port: int, clients: int, repeats: int, path: Callable[[random.Random], str]
) -> tuple[float, list[float]]:
    """``clients`` threads, each with its own connection, sending ``repeats`` requests to ``path(picker)``;
    the requests per second and every request's seconds."""
    from concurrent.futures import ThreadPoolExecutor

    def one_client(index: int) -> list[float]:
        picker = random.Random(100 + index)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            return timed(lambda: client.get(path(picker)), repeats)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        samples = [sample for result in pool.map(one_client, range(clients)) for sample in result]
    return len(samples) / (time.perf_counter() - started), samples


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--vectors",
        choices=["random", "text", "derived"],
        default="random",
        help="random unit vectors; synthetic product texts embedded by the configured model (cached); or "
        "vectors derived from those of 100k such texts (for catalogs over 100k: a million texts would take "
        "hours to embed)",
    )
    parser.add_argument("--hnsw", action="store_true", help="build the HNSW index before measuring")
    parser.add_argument(
        "--personal", action="store_true", help="also time personalised lists, fusion vs learned ranker"
    )
    parser.add_argument(
        "--clients",
        type=int,
        nargs="*",
        default=[],
        help="also time the learned ranker (with --personal; similar products without) under these numbers "
        "of concurrent clients (e.g. 1 8), each sending --requests requests; throughput is compared with "
        "the first",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=0,
        help="with --personal: time each server again after this many more requests (e.g. 2000: every "
        "synthetic user about once), as a long-running server would be; concurrent clients come after it",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="API processes of the server (RECO_API__WORKERS); over the embedded store they share it through "
        "a store host process",
    )
    parser.add_argument(
        "--root",
        type=Path,
        help="keep the prepared store, events and models under this folder (one per size) and reuse them "
        "on the next run: only the timings run again (for profiling a change to the serving path)",
    )
    args = parser.parse_args()
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as directory:
            root = (
                args.root / f"{size}-{args.vectors}{'-hnsw' if args.hnsw else ''}"
                if args.root
                else Path(directory)
            )
            if (root / "ready").exists():
                print(f"{size} products, reusing {root}, {args.requests} requests each")
            else:
                shutil.rmtree(root, ignore_errors=True)  # a run stopped half-way
                root.mkdir(parents=True)
                prepare_and_time_store(root, size, args)
                (root / "ready").touch()
            bench_http(root, size, args.requests, clients=tuple(args.clients), workers=args.workers)
            if args.personal:
                time_personal(root, size, args)


def prepare_and_time_store(root: Path, size: int, args: argparse.Namespace) -> None:
    """Fill (and index) the store, then time it bare; only while the catalog's vectors are at hand."""
    settings = Settings(qdrant={"path": root / "qdrant"})
    store = EdgeVectorStore(root / "qdrant", product_collection(settings, _ModelInfo()))  # type: ignore[arg-type]
    catalogs = {"random": random_catalog, "text": text_catalog, "derived": derived_catalog}
    catalog = catalogs[args.vectors](size, PROBES)
    start = time.perf_counter()
    fill_store(store, catalog)
    fill_seconds = time.perf_counter() - start
    index_note = "exact search"
    recall = None
    if args.hnsw:
        start = time.perf_counter()
        store.optimize()
        index_note = f"HNSW built in {time.perf_counter() - start:.0f} s"
        recall = hnsw_recall(store, catalog)
    print(f"{size} products (loaded in {fill_seconds:.1f} s; {index_note}), {args.requests} requests each")
    bench_store(store, catalog.probes, args.requests)
    if recall is not None:
        print(f"  HNSW recall@10 against exact search: {recall:.3f}")
    store.close()
    (root / "categories.txt").write_text("\n".join(catalog.categories))


def time_personal(root: Path, size: int, args: argparse.Namespace) -> None:
    """Synthetic histories and training (once per kept folder), then the personalised timings."""
    if not (root / "trained").exists():
        record_histories(root, (root / "categories.txt").read_text().splitlines())
        print(f"  trained: {train(root)}")
        (root / "trained").touch()
    bench_http(
        root,
        size,
        args.requests,
        personal=True,
        clients=tuple(args.clients),
        warmup=args.warmup,
        workers=args.workers,
    )


if __name__ == "__main__":
    main()
