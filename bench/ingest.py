"""Bulk-import throughput against the bare embedder on the same texts, in the same run.

    python -m bench.ingest --products 2000          # import vs bare encode of the served embedder
    python -m bench.ingest --products 2000 --onnx   # + int8 ONNX vs torch: speed-up and agreement

The bare torch ``model.encode`` is timed too: it is the baseline of the int8 backend's speed-up.

The catalog is synthetic: the demo products with varied titles and attributes, so that the texts have
realistic lengths and are all different. The import runs the real pipeline (read JSONL, validate,
compose text, hash, embed, write to the embedded Qdrant store, record job progress).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from recommender.demo import demo_catalog_path
from recommender.embedding import SentenceTransformerEmbedder, build_embedder
from recommender.intake.files import CatalogFormat
from recommender.models import Product
from recommender.service import build_service
from recommender.settings import EmbeddingSettings, Settings
from recommender.text import compose_product_text

ADJECTIVES = [
    "compact",
    "premium",
    "classic",
    "lightweight",
    "durable",
    "eco",
    "deluxe",
    "travel",
    "pro",
    "mini",
]
COLOURS = ["red", "blue", "green", "black", "white", "grey", "orange", "purple"]


def synthetic_catalog(count: int, seed: int = 13) -> list[dict]:
    rng = random.Random(seed)
    base = [json.loads(line) for line in demo_catalog_path().read_text().splitlines()]
    rows = []
    for index in range(count):
        row = dict(base[index % len(base)])
        row["product_id"] = f"bench-{index}"
        row["title"] = (
            f"{rng.choice(ADJECTIVES).title()} {row['title']} {rng.choice(COLOURS)} edition {index}"
        )
        row["attributes"] = {**row["attributes"], "colour": rng.choice(COLOURS), "batch": index // 100}
        row["price"] = round(rng.uniform(5, 500), 2)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--onnx", action="store_true", help="Also the int8 ONNX backend: speed and agreement with torch."
    )
    args = parser.parse_args()

    rows = synthetic_catalog(args.products)
    texts = [compose_product_text(Product.model_validate(row)) for row in rows]
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        catalog_path = root / "catalog.jsonl"
        catalog_path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        settings = Settings(
            qdrant={"path": root / "qdrant"},
            events={"url": f"sqlite:///{root / 'events.db'}"},
            embedding={"batch_size": args.batch_size},
        )
        embedder = build_embedder(settings.embedding)  # what the service runs (int8 ONNX on a CPU)
        torch_embedder = SentenceTransformerEmbedder(EmbeddingSettings(batch_size=args.batch_size))
        model = torch_embedder._model
        model.encode(texts[:64], batch_size=args.batch_size)  # warm-up
        embedder.encode_documents(texts[:64])

        start = time.perf_counter()
        model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True)
        torch_seconds = time.perf_counter() - start
        start = time.perf_counter()
        embedder.encode_documents(texts)
        encode_seconds = time.perf_counter() - start

        service = build_service(settings, embedder=embedder)
        job = service.jobs.create(str(catalog_path), "jsonl")
        start = time.perf_counter()
        summary = service.importer.run_job(job.job_id, catalog_path, CatalogFormat.JSONL)
        import_seconds = time.perf_counter() - start

        start = time.perf_counter()
        again = service.importer.run_job(
            service.jobs.create("again", "jsonl").job_id, catalog_path, CatalogFormat.JSONL
        )
        reimport_seconds = time.perf_counter() - start
        service.close()

    encode_rate = len(texts) / encode_seconds
    torch_rate = len(texts) / torch_seconds
    import_rate = summary.succeeded / import_seconds
    print(
        f"products: {len(texts)}  batch size: {args.batch_size}  served embedder: {type(embedder).__name__}"
    )
    print(f"bare torch model.encode: {torch_rate:7.1f} products/s  ({torch_seconds:.1f} s)")
    print(f"bare served encode:     {encode_rate:8.1f} products/s  ({encode_seconds:.1f} s)")
    print(
        f"bulk import (pipeline): {import_rate:8.1f} products/s  ({import_seconds:.1f} s, "
        f"{summary.embedded} embedded)"
    )
    print(f"ratio import / encode:  {import_rate / encode_rate:8.3f}  (goal >= 0.9)")
    print(
        f"re-import unchanged:    {again.succeeded / reimport_seconds:8.1f} products/s  "
        f"({again.unchanged} unchanged, {again.embedded} embedded)"
    )
    if args.onnx:
        compare_onnx(torch_embedder, texts, args.batch_size, torch_rate)


def agreement(reference: np.ndarray, candidate: np.ndarray, k: int = 10) -> tuple[float, float, float]:
    """Mean and minimum cosine between the two models' vectors of each text, and the mean overlap of each
    text's k nearest neighbours among the others."""
    cosines = (reference * candidate).sum(axis=1)
    near_reference = np.argsort(-(reference @ reference.T), axis=1)[:, 1 : k + 1]
    near_candidate = np.argsort(-(candidate @ candidate.T), axis=1)[:, 1 : k + 1]
    overlap = np.mean([len(set(a) & set(b)) / k for a, b in zip(near_reference, near_candidate, strict=True)])
    return float(cosines.mean()), float(cosines.min()), float(overlap)


def compare_onnx(torch_embedder, texts: list[str], batch_size: int, torch_rate: float) -> None:  # type: ignore[no-untyped-def]
    onnx_embedder = build_embedder(EmbeddingSettings(backend="onnx-int8", batch_size=batch_size))
    onnx_embedder.encode_documents(texts[:64])  # warm-up
    start = time.perf_counter()
    onnx_vectors = onnx_embedder.encode_documents(texts)
    onnx_rate = len(texts) / (time.perf_counter() - start)
    print(f"int8 ONNX encode:       {onnx_rate:8.1f} products/s")
    print(f"speedup vs torch encode: {onnx_rate / torch_rate:.2f}")
    sets = {"benchmark catalog": texts[:2000]}
    demo = [Product.model_validate(json.loads(line)) for line in demo_catalog_path().read_text().splitlines()]
    sets["demo catalog"] = [compose_product_text(product) for product in demo]
    # MovieLens 100K as laid out beside the repository (RecBole atomic files), when it is there.
    movies = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k" / "ml-100k.item"
    if movies.exists():
        lines = movies.read_text(encoding="utf-8", errors="replace").splitlines()[1:]
        sets["ML-100k titles"] = [line.split("\t")[1] for line in lines if "\t" in line]
    for name, sample in sets.items():
        reference = torch_embedder.encode_documents(sample)
        candidate = (
            onnx_vectors[: len(sample)]
            if name == "benchmark catalog"
            else onnx_embedder.encode_documents(sample)
        )
        mean, minimum, overlap = agreement(reference, candidate)
        print(
            f"{name:<18} ({len(sample)} texts): cosine mean {mean:.4f} min {minimum:.4f}, "
            f"top-10 overlap {overlap:.3f}"
        )


if __name__ == "__main__":
    main()
