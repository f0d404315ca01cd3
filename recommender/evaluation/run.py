"""The library entry point of `recommender eval`: replay a data set into a real service, train it with
the service's training job, and measure the lists the service's pipeline returns.

There is no second implementation here: the profile, the sources, the fusion, the ranker and the
exclusions are the pipeline's. Variants are other pipeline configurations over the same trained parts.
"""

from __future__ import annotations

import random
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.markup import escape

from recommender.embedding import Embedder
from recommender.errors import InvalidInputError
from recommender.evaluation.data import ColumnMapping, Dataset, ItemInfo, load_dataset
from recommender.evaluation.decisions import (
    ENCODER_SUFFIX,
    print_decisions,
    print_text_weight,
    stage_decisions,
)
from recommender.evaluation.llm_effect import llm_rerank_effect
from recommender.evaluation.replay import TemporaryService, import_items, record_events, temporary_service
from recommender.evaluation.report import print_table, write_json, write_plot
from recommender.evaluation.rows import Measured
from recommender.evaluation.split import (
    Split,
    SplitOptions,
    leave_one_out,
    replayed_interactions,
    request_at_test_event,
)
from recommender.metrics import list_metrics, list_ranks
from recommender.pipeline.merchandising import MerchRule
from recommender.pipeline.pipeline import Pipeline
from recommender.pipeline.variants import DEFAULT_VARIANTS, VARIANTS
from recommender.service import RecommenderService
from recommender.settings import Settings
from recommender.training_job import serve_shop_encoder

# Pipeline configurations compared with what is served (the settings' own configuration).
SKIPPED_ROWS_FILE = "skipped_rows.txt"
SKIPPED_SHOWN = 10  # rows that could not be read, shown on the console (all of them go to the file)
SINGLE_SOURCES = ("collab", "text", "cooccurrence", "popular", "trending", "new")
COLD_VARIANTS = (
    "served",
    "served-no-new-slot",
    "served-2-new-slots",
    "served-one-new-slot",
    "served-2-new-within-100",
    "served-new-every-list",
    "served-new-drawn",
    "served-new-share-2pc",
    "fusion",
    "collab",
    "text",
    "new",
    "new-no-prior",
    "served-new-no-prior",
    "new-no-text",
    "served-new-no-text",
    "popular",
)


@dataclass
class EvaluationConfig:
    data_path: Path
    out_dir: Path
    settings: Settings = field(default_factory=Settings)
    variants: list[str] = field(default_factory=lambda: list(DEFAULT_VARIANTS))
    split: SplitOptions = field(default_factory=SplitOptions)
    seeds: int = 1
    epochs: int | None = None  # None: the settings' own
    max_minutes: float | None = None
    cold_item_share: float = 0.1  # 0 skips the cold-start split
    warm_split: bool = True  # False: only the cold-start split (its users, its training runs)
    llm_sample: int = 0  # >0: the served list re-ranked by the configured LLM, for this many users
    max_users: int | None = None  # rank only this many test users (a quick look; the protocol uses all)
    items_path: Path | None = None
    columns: ColumnMapping = field(default_factory=ColumnMapping)
    # Merchandising rules to price: the served lists are measured again with them ("served+rules"); their
    # placement is ignored (each applies to every evaluated list).
    rules: list[MerchRule] = field(default_factory=list)


@dataclass
class EvaluationResult:
    main: dict[str, dict[str, float]]
    cold_start: dict[str, dict[str, float]]
    importance: dict[str, float]
    files: list[Path]
    lists: dict[str, list[str]] = field(default_factory=dict)  # served lists of the first seed, by user


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def served_settings(config: EvaluationConfig) -> Settings:
    collab = config.settings.collab.model_copy(
        update={
            key: value
            for key, value in {"epochs": config.epochs, "max_minutes": config.max_minutes}.items()
            if value is not None
        }
    )
    return config.settings.model_copy(update={"collab": collab})


def catalogue_items(dataset: Dataset, split: Split) -> list[ItemInfo]:
    return [dataset.items.get(item_id) or ItemInfo(item_id, title=item_id) for item_id in split.item_ids[1:]]


def ranked_lists(pipeline: Pipeline, split: Split, users: list[int]) -> list[list[str]]:
    return [
        [item.product_id for item in pipeline.run(request_at_test_event(split, user)).items] for user in users
    ]


def measure(
    service: RecommenderService,
    split: Split,
    users: list[int],
    variants: list[str],
    on_step: Callable[[str], None] | None,
) -> tuple[Measured, dict[str, list[str]]]:
    catalogue = split.item_ids[1:]
    popularity = service.pipeline.item_stats().users
    cold = {item for item in catalogue if popularity.get(item, 0) == 0}
    vectors = service.catalog.vectors(catalogue)
    targets = [split.item_ids[split.test[user]] for user in users]
    measured = Measured()
    served_lists: dict[str, list[str]] = {}
    for name in variants:
        if on_step:
            on_step(name)
        pipeline = service.pipeline.configured(**VARIANTS[name]) if VARIANTS[name] else service.pipeline
        lists = ranked_lists(pipeline, split, users)
        if name == "served":
            served_lists = {split.user_ids[user]: items for user, items in zip(users, lists, strict=True)}
        measured.add(
            name,
            list_metrics(lists, targets, catalogue, popularity, cold, vectors),
            list_ranks(lists, targets),
        )
    return measured, served_lists


def one_seed(
    config: EvaluationConfig,
    dataset: Dataset,
    embedder: Embedder,
    seed: int,
    cold_share: float,
    variants: list[str],
    on_step: Callable[[str], None] | None,
) -> tuple[Measured, dict[str, Any], dict[str, list[str]]]:
    """One seed's rows, its training report and its served lists by user."""
    seed_everything(seed)
    split = leave_one_out(dataset, replace(config.split, cold_item_share=cold_share, seed=seed))
    settings = served_settings(config)
    with temporary_service(settings, embedder) as opened, tempfile.TemporaryDirectory() as folder:
        service = opened.service
        if on_step:
            on_step(f"seed {seed}: importing {split.item_count} items")
        import_items(service, catalogue_items(dataset, split), Path(folder))
        interactions = replayed_interactions(split)
        if on_step:
            on_step(f"seed {seed}: recording {len(interactions)} events")
        record_events(service, interactions)
        if on_step:
            on_step(f"seed {seed}: training")
        report = service.train(seed)
        users = split.user_ids_in_order()
        others: list[int] = []
        if cold_share > 0:
            cold_targets = {split.item_ids[item] for item in split.cold_items}
            others = [user for user in users if split.item_ids[split.test[user]] not in cold_targets]
            users = [user for user in users if split.item_ids[split.test[user]] in cold_targets]
        if config.max_users is not None and len(users) > config.max_users:
            users = sorted(random.Random(seed).sample(users, config.max_users))
        results, lists = measure(service, split, users, variants, on_step)
        if others:
            results.update(_other_users(service, split, others, variants, seed, on_step), OTHERS_SUFFIX)
        encoder: dict[str, Any] = {}
        if settings.embedding.fine_tune:  # before the rules below, which would stay in the database
            results.update(
                _with_shop_encoder(opened, split, users, variants, seed, encoder, on_step), ENCODER_SUFFIX
            )
            service = opened.service
        if config.rules and "served" in variants:
            if on_step:
                on_step(f"served with {len(config.rules)} merchandising rules")
            for rule in config.rules:
                service.loop.add_rule(rule.model_copy(update={"placement": None}))
            with_rules, _ = measure(service, split, users, ["served"], None)
            results.update(with_rules, "+rules")
        training = {
            "epochs": report.epochs,
            "best_epoch": report.best_epoch,
            "stopped": report.stopped,
            "validation_curve": report.validation_curve,
            "weights": report.weights,
            "averaged_curve": report.averaged_curve,
            "model_chosen": report.chosen,
            "model_candidates": report.candidates,
            "ranker_gate": report.ranker_validation,
            "stage_gate": report.stages,
            "train_seconds": report.seconds,
            "validation_ndcg_at_10": report.validation_ndcg_at_10,
            "ranker": report.ranker,
            **{f"ranker_{key}": value for key, value in report.ranker_details.items() if key != "importance"},
            "importance": report.ranker_details.get("importance", {}),
            "item_tower": report.item_tower,
            **encoder,
        }
        if config.llm_sample > 0 and cold_share == 0:
            if on_step:
                on_step(f"LLM re-rank on {config.llm_sample} users")
            results.update(llm_rerank_effect(service, split, users, config.llm_sample, seed))
    return results, training, lists


# The cold split's users whose test product has events: what the new-product places cost them, on a sample.
OTHERS_SUFFIX = "@others"
OTHERS_VARIANTS = ("served", "served-no-new-slot", "served-one-new-slot")
OTHERS_SAMPLE = 300


def _other_users(
    service: RecommenderService,
    split: Split,
    others: list[int],
    variants: list[str],
    seed: int,
    on_step: Callable[[str], None] | None,
) -> Measured:
    """The same trainings' lists for a sample of the users whose test product has events (the shop's
    other shoppers while its new products are many): the places the new products take cost them."""
    if len(others) > OTHERS_SAMPLE:
        others = sorted(random.Random(seed).sample(others, OTHERS_SAMPLE))
    names = [name for name in OTHERS_VARIANTS if name in variants]
    if on_step and names:
        on_step(f"{len(others)} users whose test product has events")
    measured, _ = measure(service, split, others, names, on_step)
    return measured


# The rows measured again once the shop's fine-tuned encoder serves (suffixed ENCODER_SUFFIX).
ENCODER_VARIANTS = ("served", "served-one-new-slot", "fusion", "text", "new")
SAMPLE_SUFFIX = "@sample"  # rows measured on a sample of the test users (see llm_rerank_effect)


def _with_shop_encoder(
    opened: TemporaryService,
    split: Split,
    users: list[int],
    variants: list[str],
    seed: int,
    training: dict[str, Any],
    on_step: Callable[[str], None] | None,
) -> Measured:
    """What the training job does with RECO_EMBEDDING__FINE_TUNE: fine-tune the encoder on the replayed
    events, and where it is published, serve it through the rebuild path and train the parts again over
    the same sequence model; then the same users are measured again, before the job's served-lists gate
    decides whether it keeps serving (``decisions`` say what it decided and what the test split says)."""
    rows = Measured()  # the caller names them with ENCODER_SUFFIX

    def measure_candidate(service: RecommenderService) -> None:
        measured, _ = measure(
            service, split, users, [name for name in ENCODER_VARIANTS if name in variants], on_step
        )
        rows.update(measured)
        published = service.models.current()
        tower = published.parts.tower if published is not None else None
        training["encoder_item_tower"] = tower.summary() if tower is not None else {}  # the parts' again

    if on_step:
        on_step(f"seed {seed}: fine-tuning the encoder, re-embedding the catalog, training the parts")
    # The temporary service is this process's alone: the training lease has nobody to keep out.
    step = serve_shop_encoder(opened.service, lambda _: opened.switch_encoder(), seed, measure_candidate)
    training["encoder"] = step.report.as_dict()
    return rows


def mean_and_spread(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Per variant and metric: the mean over seeds, and ``<metric>_std`` when there are several."""
    combined: dict[str, dict[str, float]] = {}
    for name in runs[0]:
        combined[name] = {}
        for metric in runs[0][name]:
            values = [run[name][metric] for run in runs if name in run and metric in run[name]]
            combined[name][metric] = float(statistics.fmean(values))
            if len(values) > 1 and metric != "users":
                combined[name][f"{metric}_std"] = float(statistics.stdev(values))
    return combined


def run_evaluation(
    config: EvaluationConfig,
    embedder_factory: Callable[[], Embedder],
    console: Console | None = None,
    on_step: Callable[[str], None] | None = None,
) -> EvaluationResult:
    console = console or Console()
    unknown = sorted(set(config.variants) - set(VARIANTS))
    if unknown:
        raise InvalidInputError(f"unknown variants {unknown}; choose from {list(VARIANTS)}", field="methods")
    if not config.warm_split and config.cold_item_share <= 0:
        raise InvalidInputError(
            "no split to measure: the cold-start split alone needs a cold share above 0", field="cold_share"
        )
    dataset = load_dataset(config.data_path, config.columns, config.items_path)
    skipped_file = report_skipped(dataset, config.out_dir, console)
    embedder = embedder_factory()
    seeds = [config.split.seed + offset for offset in range(config.seeds)]
    result = EvaluationResult({}, {}, {}, [])
    if config.warm_split:
        result = _warm_split(config, dataset, embedder, seeds, console, on_step)
    if config.cold_item_share > 0:
        result.cold_start, cold_files = _cold_split(config, dataset, embedder, seeds, console, on_step)
        result.files += cold_files
    if skipped_file is not None:
        result.files.append(skipped_file)
    return result


def report_skipped(dataset: Dataset, out_dir: Path, console: Console) -> Path | None:
    """The rows the data's files had that could not be read: the first few on the console, all of them
    in ``skipped_rows.txt``."""
    if not dataset.skipped:
        return None
    path = out_dir / SKIPPED_ROWS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(dataset.skipped) + "\n", encoding="utf-8")
    console.print(
        f"[yellow]{len(dataset.skipped)} rows could not be read and are left out[/yellow] "
        f"(all of them in {path}):"
    )
    for line in dataset.skipped[:SKIPPED_SHOWN]:
        console.print(f"  {escape(line)}")
    return path


def _cold_split(
    config: EvaluationConfig,
    dataset: Dataset,
    embedder: Embedder,
    seeds: list[int],
    console: Console,
    on_step: Callable[[str], None] | None,
) -> tuple[dict[str, dict[str, float]], list[Path]]:
    """A share of the test products held out of every training event: the users whose test product is
    one of them, measured on trainings of their own."""
    variants = [name for name in COLD_VARIANTS if name in config.variants]
    runs, trainings = [], []
    share = config.cold_item_share
    for seed in seeds:
        results, training, _ = one_seed(config, dataset, embedder, seed, share, variants, on_step)
        runs.append(results.rows)
        trainings.append(training)
    cold = mean_and_spread(runs)
    files = [
        config.out_dir / "metrics_cold_start.json",
        config.out_dir / "metrics_cold_start.png",
        config.out_dir / "ranker_cold_start.json",
    ]
    write_json(files[0], cold)
    write_plot(files[1], cold, f"{dataset.name}: users whose test item has no training events")
    write_json(files[2], {"training": trainings})  # type: ignore[dict-item]
    users = int(cold["served"]["users"])
    print_table(f"cold-start split: {users} users whose test item has no events", cold, console)
    print_text_weight(trainings, console)
    return cold, files


def _warm_split(
    config: EvaluationConfig,
    dataset: Dataset,
    embedder: Embedder,
    seeds: list[int],
    console: Console,
    on_step: Callable[[str], None] | None,
) -> EvaluationResult:
    """The leave-one-out split every user is measured on: its rows, the training's decisions against
    what the test split says, and the ranker's feature importance."""
    main_runs, trainings = [], []
    every_seed = Measured()  # each row's per-user NDCG@10, seed after seed, for the paired differences
    served_lists: dict[str, list[str]] = {}
    for seed in seeds:
        results, training, lists = one_seed(config, dataset, embedder, seed, 0.0, config.variants, on_step)
        main_runs.append(results.rows)
        every_seed.extend(results)
        trainings.append(training)
        served_lists = served_lists or lists
    main = mean_and_spread(main_runs)
    _add_training(main, trainings)
    better_rows = rank_served(main)
    importance = _mean_importance(trainings)
    decisions = stage_decisions(trainings, every_seed.user_ndcgs)
    files = [config.out_dir / "metrics.json", config.out_dir / "metrics.png", config.out_dir / "ranker.json"]
    write_json(files[0], main)
    write_plot(files[1], main, f"{dataset.name}: leave-one-out, full ranking, the served pipeline")
    write_json(files[2], {"importance": importance, "decisions": decisions, "training": trainings})  # type: ignore[dict-item]
    print_table(
        f"{dataset.name}: {int(main['served']['users'])} users, mean of {len(seeds)} seed(s)", main, console
    )
    _print_better_rows(better_rows, main, console)
    print_decisions(decisions, console)
    print_text_weight(trainings, console)
    _print_importance(importance, console)
    return EvaluationResult(main, {}, importance, files, served_lists)


def rank_served(main: dict[str, dict[str, float]]) -> dict[str, list[str]]:
    """The rows that beat the served configuration on NDCG@10 and on Recall@10, best first; metrics.json
    records served's rank on each (``served_rank_ndcg@10``: 1 is the best row). Rows measured on a sample
    of the users (``@sample``: the LLM re-rank's) are not comparable with it and are left out."""
    if "served" not in main:
        return {}
    served = main["served"]
    comparable = [name for name in main if name != "served" and not name.endswith(SAMPLE_SUFFIX)]
    better = {}
    for metric in ("ndcg@10", "recall@10"):
        better[metric] = sorted(
            (name for name in comparable if main[name].get(metric, 0.0) > served[metric]),
            key=lambda name: -main[name][metric],
        )
        served[f"served_rank_{metric}"] = float(1 + len(better[metric]))
    return better


def _print_better_rows(
    better: dict[str, list[str]], main: dict[str, dict[str, float]], console: Console
) -> None:
    """A stage that costs the shop what it should earn is said out loud."""
    for metric, names in better.items():
        if names:
            console.print(
                f"[yellow]the served configuration is not the best row on {metric}: "
                + ", ".join(f"{name} {main[name][metric]:.4f}" for name in names)
                + f" against served {main['served'][metric]:.4f}[/yellow]"
            )


def _add_training(main: dict[str, dict[str, float]], trainings: list[dict[str, Any]]) -> None:
    for key in ("epochs", "train_seconds", "validation_ndcg_at_10", "ranker_validation_ndcg_at_10"):
        values = [float(training[key]) for training in trainings if key in training]
        if values and "served" in main:
            main["served"][key] = float(statistics.fmean(values))
    singles = {name: main[name]["ndcg@10"] for name in SINGLE_SOURCES if name in main}
    if singles and "served" in main:
        best = max(singles, key=lambda name: singles[name])
        main["served"]["best_single_source_ndcg@10"] = singles[best]
        main["served"]["beats_best_single_source"] = float(main["served"]["ndcg@10"] > singles[best])


def _mean_importance(trainings: list[dict[str, Any]]) -> dict[str, float]:
    names = sorted({name for training in trainings for name in training.get("importance", {})})
    values = {
        name: statistics.fmean(t.get("importance", {}).get(name, 0.0) for t in trainings) for name in names
    }
    return dict(sorted(values.items(), key=lambda item: -item[1]))


def _print_importance(importance: dict[str, float], console: Console) -> None:
    if not importance:
        console.print("no learned ranker serves: the ranker's decision below says what ranks the served list")
        return
    shown = ", ".join(f"{name} {share:.3f}" for name, share in list(importance.items())[:12])
    console.print(f"learned ranker, feature importance (share of gain): {shown}")
