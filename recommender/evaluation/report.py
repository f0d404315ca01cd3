"""Evaluation output: a terminal table, metrics JSON, and a PNG comparing the methods."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

SHOWN = (
    "ndcg@10",
    "ndcg@20",
    "recall@10",
    "recall@20",
    "mrr@10",
    "coverage@10",
    "gini@10",
    "popularity_percentile@10",
    "intra_list_diversity@10",
    "cold_exposure@10",
)


def print_table(title: str, results: dict[str, dict[str, float]], console: Console) -> None:
    table = Table(title=title)
    table.add_column("method")
    for metric in SHOWN:
        table.add_column(metric, justify="right")
    for method, metrics in results.items():
        table.add_row(method, *(_cell(metrics, metric) for metric in SHOWN))
    # Wide enough for every column, even when the terminal is narrow (CI logs, pipes).
    Console(width=max(console.width, 200), file=console.file).print(table)


def _cell(metrics: dict[str, float], metric: str) -> str:
    if metric not in metrics:
        return ""
    spread = metrics.get(f"{metric}_std")
    return f"{metrics[metric]:.4f}" + (f" ±{spread:.4f}" if spread is not None else "")


def write_json(path: Path, results: dict[str, dict[str, float]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=True))


def write_plot(path: Path, results: dict[str, dict[str, float]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(results)
    metrics = ["ndcg@10", "recall@10", "ndcg@20", "recall@20"]
    figure, axis = plt.subplots(figsize=(max(6, 1.3 * len(methods)), 4))
    width = 0.8 / len(metrics)
    for offset, metric in enumerate(metrics):
        positions = [index + offset * width for index in range(len(methods))]
        axis.bar(positions, [results[method].get(metric, 0.0) for method in methods], width, label=metric)
    axis.set_xticks([index + 0.4 - width / 2 for index in range(len(methods))])
    axis.set_xticklabels(methods, rotation=20)
    axis.set_title(title)
    axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
