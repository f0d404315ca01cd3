"""Cross-lingual retrieval: English and Chinese shopper queries over the English demo catalog, through the
query path the API serves (``Retriever.for_query``), for each embedding model.

    python -m bench.multilingual --models all-MiniLM-L6-v2 multilingual-e5-small \
        all-MiniLM-L6-v2+multilingual-e5-small

``MAIN+SECOND`` is the main model with a cross-lingual one beside it (``RECO_EMBEDDING__MODEL=MAIN``,
``RECO_EMBEDDING__CROSS_LINGUAL_MODEL=SECOND``): queries outside the Latin script search the second's vectors.

The queries are written for this benchmark (none is a product title); each names the category path its
answers belong to. The score is category precision@5: the share of the top 5 results inside that path.
Small categories cap it below 1 (Electronics > Audio has 4 products): the "ceiling" line says how far.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from recommender.demo import demo_catalog_path, demo_queries
from recommender.embedding import build_embedder
from recommender.intake.files import CatalogFormat
from recommender.service import build_service
from recommender.settings import Settings

# (English query, Chinese query, category path of the right answers), shipped with the package.
QUERIES = [(query.english, query.chinese, query.category) for query in demo_queries()]


def precision_at_5(service, query: str, target: str) -> float:  # type: ignore[no-untyped-def]
    items = service.retriever.for_query(query, 5).items
    return sum(1 for item in items if str(item.product.get("category", "")).startswith(target)) / 5


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=["all-MiniLM-L6-v2", "multilingual-e5-small", "all-MiniLM-L6-v2+multilingual-e5-small"],
    )
    arguments = parser.parse_args()
    rows = []
    for model in arguments.models:
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            settings = Settings(
                qdrant={"path": root / "qdrant"},
                events={"url": f"sqlite:///{root / 'events.db'}"},
                embedding=dict(zip(("model", "cross_lingual_model"), model.split("+"), strict=False)),
                collab={"models_path": root / "models"},
            )
            service = build_service(settings, embedder=build_embedder(settings.embedding))
            try:
                job = service.jobs.create("demo", "jsonl")
                service.importer.run_job(job.job_id, demo_catalog_path(), CatalogFormat.JSONL)
                english = [precision_at_5(service, en, target) for en, _, target in QUERIES]
                chinese = [precision_at_5(service, zh, target) for _, zh, target in QUERIES]
            finally:
                service.close()
        rows.append((model, sum(english) / len(english), sum(chinese) / len(chinese)))
    import json

    categories = [json.loads(line)["category"] for line in demo_catalog_path().read_text().splitlines()]
    ceiling = sum(min(5, sum(c.startswith(t) for c in categories)) / 5 for _, _, t in QUERIES) / len(QUERIES)
    print(f"{len(QUERIES)} query pairs; ceiling of precision@5 on this catalog: {ceiling:.3f}")
    print(f"{'model':<40} {'English P@5':>12} {'Chinese P@5':>12}")
    for model, english_score, chinese_score in rows:
        print(f"{model:<40} {english_score:>12.3f} {chinese_score:>12.3f}")


if __name__ == "__main__":
    main()
