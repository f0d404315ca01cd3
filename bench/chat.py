"""The fixed chat evaluation set (61 turns, demo and software catalogs, English and Chinese) through the
service's chat, with the local model and with ``llm = none``, in the same run.

    python -m bench.chat                      # local SmolLM2 (llama.cpp) and none
    python -m bench.chat --backend openai --base-url http://127.0.0.1:8080/v1 --model NAME   # + any endpoint

Prints, per backend: grounded-fact rate (answers that state a fact computed from the data), LLM answers,
the gate's rejection rate, garbage that reached the client (must be 0) and latency p50/p95.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from contextlib import ExitStack
from pathlib import Path

from bench.chat_set import ChatScores, prepare_software_catalog, run_chat_set
from recommender.demo import demo_catalog_path, demo_events
from recommender.embedding import build_embedder
from recommender.intake.files import CatalogFormat
from recommender.service import RecommenderService, build_service
from recommender.settings import Settings


def service_for(root: Path, catalog: str, llm: dict, embedder: object) -> RecommenderService:
    settings = Settings(
        qdrant={"path": root / catalog / "qdrant"},
        events={"url": f"sqlite:///{root / catalog / 'events.db'}"},
        api={"upload_dir": root / catalog / "uploads"},
        llm=llm,
    )
    service = build_service(settings, embedder=embedder)  # type: ignore[arg-type]
    if catalog == "demo":
        job = service.jobs.create("demo", "jsonl")
        service.importer.run_job(job.job_id, demo_catalog_path(), CatalogFormat.JSONL)
        service.events.add(demo_events())
    else:
        prepare_software_catalog(service)
    return service


def run(llm: dict, embedder: object) -> ChatScores:
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        services = {}
        for catalog in ("demo", "software"):
            service = service_for(Path(folder), catalog, llm, embedder)
            stack.callback(service.close)
            services[catalog] = service
        return run_chat_set(services)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["local", "openai"], default="local")
    parser.add_argument("--base-url")
    parser.add_argument("--model", default="")
    parser.add_argument("--json", type=Path, help="also write every answer here")
    args = parser.parse_args()
    embedder = build_embedder(Settings().embedding)
    llm = {"backend": args.backend, "model": args.model, "timeout_seconds": 30.0}
    if args.base_url:
        llm["base_url"] = args.base_url
    results = {"none": run({"backend": "none"}, embedder), args.backend: run(llm, embedder)}
    header = f"{'backend':<8} {'turns':>5} {'grounded':>8} {'llm answers':>11} {'gate rejects':>12} "
    print(header + f"{'garbage':>7} {'p50 s':>6} {'p95 s':>6}")
    for name, scores in results.items():
        s = scores.summary()
        print(
            f"{name:<8} {int(s['turns']):>5} {s['grounded_fact_rate']:>8.2f} {int(s['llm_answers']):>11} "
            f"{s['gate_rejection_rate']:>12.2f} {int(s['garbage_reaching_client']):>7} "
            f"{s['latency_p50_s']:>6.2f} {s['latency_p95_s']:>6.2f}"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    name: [
                        {"case": vars(o.case), "answer": o.answer, "source": o.source, "note": o.note,
                         "seconds": o.seconds, "garbage": o.garbage, "grounded": o.grounded}
                        for o in scores.outcomes
                    ]
                    for name, scores in results.items()
                },
                ensure_ascii=False,
                indent=1,
            )
        )  # fmt: skip


if __name__ == "__main__":
    main()
