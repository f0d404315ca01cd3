"""What one request costs on each of the pipeline's paths, with a real shop's histories.

    python -m bench.request_paths ../shared/data/ml-100k
    python -m bench.request_paths ../shared/data/ml-100k --users 300 --epochs 5

Replays the data into a temporary service (``recommender eval``'s replay: the catalog importer, the event
store, the training job, here with a short training) and times ``Pipeline.run``, the code
``POST /recommendations`` runs, at each user's held-out moment, in the same run:

- **typical user**: a user whose events fit in the history limit (``RECO_RECOMMEND__HISTORY_LIMIT``);
- **heavy user**: more events than that, so the exclusions read every product they rated or bought;
- **new visitor**: no history, the popular page;
- **short list**: the new-arrivals source alone, whose few products are topped up with popular ones (what
  a strict filter or a new shop gets).

Each row prints the median and 95th percentile and the ratio of its median to the typical user's. A path
well above 1x costs more than ranking itself: on ML-100k, in the build before this benchmark, the heavy
user's p50 was 16.2x the typical user's (the exclusions scanned every event) and the short list's 22.3x
(a GROUP BY over every event and 1,600 points read from the store on each request); 1.5x and 0.6x since.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from recommender.embedding import build_embedder
from recommender.evaluation.data import ColumnMapping, load_dataset
from recommender.evaluation.replay import import_items, record_events, temporary_service
from recommender.evaluation.run import catalogue_items, seed_everything
from recommender.evaluation.split import (
    SplitOptions,
    leave_one_out,
    replayed_interactions,
    request_at_test_event,
)
from recommender.pipeline.pipeline import Pipeline
from recommender.pipeline.request import PipelineRequest
from recommender.pipeline.variants import VARIANTS
from recommender.settings import Settings


def timed(run: Callable[[PipelineRequest], object], requests: list[PipelineRequest]) -> list[float]:
    run(requests[0])  # warm-up
    samples = []
    for request in requests:
        started = time.perf_counter()
        run(request)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "data", type=Path, help="a data set recommender eval reads (e.g. ../shared/data/ml-100k)"
    )
    parser.add_argument("--users", type=int, default=200, help="requests per path")
    parser.add_argument("--epochs", type=int, default=5, help="sequence-model epochs (cost, not quality)")
    args = parser.parse_args()

    settings = Settings()
    settings.collab = settings.collab.model_copy(update={"epochs": args.epochs})
    limit = settings.recommend.history_limit
    seed_everything(42)
    dataset = load_dataset(args.data, ColumnMapping(), None)
    split = leave_one_out(dataset, SplitOptions(seed=42))
    with (
        temporary_service(settings, build_embedder(settings.embedding)) as opened,
        tempfile.TemporaryDirectory() as folder,
    ):
        service = opened.service
        import_items(service, catalogue_items(dataset, split), Path(folder))
        record_events(service, replayed_interactions(split))
        service.train(42)
        users = split.user_ids_in_order()
        # Events before the held-out one: the history the service has at that moment.
        heavy = [user for user in users if len(split.ordered[user]) - 1 > limit][: args.users]
        typical = [user for user in users if len(split.ordered[user]) - 1 <= limit][: args.users]
        served = service.pipeline
        short: Pipeline = served.configured(**VARIANTS["new"])
        paths = {
            f"typical user (<= {limit} events)": (
                served.run,
                [request_at_test_event(split, u) for u in typical],
            ),
            f"heavy user (> {limit} events)": (served.run, [request_at_test_event(split, u) for u in heavy]),
            "new visitor (popular page)": (
                served.run,
                [replace(request_at_test_event(split, u), user_id=f"visitor-{u}") for u in typical],
            ),
            "short list topped up (new arrivals)": (
                short.run,
                [request_at_test_event(split, u) for u in typical],
            ),
        }
        baseline = None
        print(f"{args.data.name}: {len(dataset.items)} products, Pipeline.run per request, ms")
        for name, (run, requests) in paths.items():
            if not requests:
                print(f"  {name:<38} no such users in this data")
                continue
            samples = timed(run, requests)
            median = statistics.median(samples)
            baseline = baseline or median
            p95 = statistics.quantiles(samples, n=20)[-1]
            print(
                f"  {name:<38} p50 {median:6.1f}  p95 {p95:6.1f}  {median / baseline:4.1f}x the typical user"
                f"  ({len(requests)} requests)"
            )


if __name__ == "__main__":
    main()
