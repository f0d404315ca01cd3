"""The library entry point: evaluate every method on a data set and write the report."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from recommender.embedding import Embedder
from recommender.evaluation.data import ColumnMapping, load_dataset
from recommender.evaluation.methods import EvalContext
from recommender.evaluation.report import print_table, write_json, write_plot
from recommender.evaluation.runner import (
    ALL_METHODS,
    EvalOptions,
    best_sequence_method,
    evaluate_cold_start,
    evaluate_methods,
)
from recommender.evaluation.split import SplitOptions, leave_one_out
from recommender.sequence.training import TrainConfig
from recommender.settings import LLMSettings


@dataclass
class EvaluationConfig:
    data_path: Path
    out_dir: Path
    methods: list[str] = field(default_factory=lambda: list(ALL_METHODS))
    split: SplitOptions = field(default_factory=SplitOptions)
    options: EvalOptions = field(default_factory=EvalOptions)
    model: dict = field(default_factory=lambda: {"max_length": 50})
    training: TrainConfig = field(default_factory=TrainConfig)
    cold_item_share: float = 0.1  # 0 skips the cold-start split
    llm_sample: int = 0  # >0: re-rank the hybrid's top 20 with the configured LLM for this many users
    llm: LLMSettings | None = None
    items_path: Path | None = None
    columns: ColumnMapping = field(default_factory=ColumnMapping)


@dataclass
class EvaluationResult:
    main: dict[str, dict[str, float]]
    cold_start: dict[str, dict[str, float]]
    files: list[Path]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_evaluation(
    config: EvaluationConfig,
    embedder_factory: Callable[[], Embedder],
    console: Console | None = None,
    on_step: Callable[[str], None] | None = None,
    on_epoch: Callable[[str, int, int], None] | None = None,
) -> EvaluationResult:
    console = console or Console()
    unknown = sorted(set(config.methods) - set(ALL_METHODS))
    if unknown:
        from recommender.errors import InvalidInputError

        raise InvalidInputError(f"unknown methods {unknown}; choose from {ALL_METHODS}", field="methods")
    seed_everything(config.split.seed)
    dataset = load_dataset(config.data_path, config.columns, config.items_path)
    embedder: list[Embedder] = []

    def shared_embedder() -> Embedder:
        if not embedder:
            embedder.append(embedder_factory())
        return embedder[0]

    split = leave_one_out(dataset, replace(config.split, cold_item_share=0.0))
    context = EvalContext(
        split, dataset.items, shared_embedder, config.model, config.training, on_epoch=on_epoch
    )
    main = evaluate_methods(context, config.methods, config.options, on_step)
    if config.llm_sample > 0 and context.hybrid_test_scores is not None:
        from recommender.evaluation.llm_effect import llm_rerank_effect

        if on_step:
            on_step(f"LLM re-rank on {config.llm_sample} users")
        # Measured without the per-request budget: a fallback would hide what the model does.
        llm_settings = config.llm or LLMSettings(backend="local", timeout_seconds=60.0)
        main.update(
            llm_rerank_effect(
                context,
                context.hybrid_test_scores,
                llm_settings,
                config.llm_sample,
                config.split.seed,
            )
        )
    files = [config.out_dir / "metrics.json", config.out_dir / "metrics.png"]
    write_json(files[0], main)
    write_plot(files[1], main, f"{dataset.name}: leave-one-out, full ranking")
    print_table(
        f"{dataset.name} — {len(split.train)} users, {split.item_count} items, full ranking", main, console
    )

    cold: dict[str, dict[str, float]] = {}
    if config.cold_item_share > 0:
        if on_step:
            on_step("cold-start split")
        seed_everything(config.split.seed)
        sequence_method = best_sequence_method(context, config.methods)
        cold_split = leave_one_out(dataset, replace(config.split, cold_item_share=config.cold_item_share))
        cold_context = EvalContext(
            cold_split, dataset.items, shared_embedder, config.model, config.training, on_epoch=on_epoch
        )
        cold = evaluate_cold_start(cold_context, sequence_method, config.options)
        files += [config.out_dir / "metrics_cold_start.json", config.out_dir / "metrics_cold_start.png"]
        write_json(files[2], cold)
        write_plot(files[3], cold, f"{dataset.name}: users whose test item has no training events")
        print_table(
            f"cold-start split: {int(next(iter(cold.values()))['users'])} users whose test item "
            f"has no events ({len(cold_split.cold_items)} items held out)",
            cold,
            console,
        )
    return EvaluationResult(main, cold, files)
