"""Reading back a report that `recommender eval` wrote: metrics tables and the names of its plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recommender.errors import NotFoundError

REPORT_FILES = {"all users": "metrics.json", "cold-start split": "metrics_cold_start.json"}


def load_report(report_dir: Path | None) -> dict[str, Any]:
    """The report's tables ({split: {method: {metric: value}}}) and plot file names; 404 when none."""
    if report_dir is None or not Path(report_dir).is_dir():
        raise NotFoundError(
            "evaluation report", "(set RECO_EVAL__REPORT_DIR to a recommender eval --out folder)"
        )
    folder = Path(report_dir)
    tables: dict[str, Any] = {}
    for split, name in REPORT_FILES.items():
        path = folder / name
        if path.is_file():
            try:
                tables[split] = json.loads(path.read_text())
            except json.JSONDecodeError:
                continue
    if not tables:
        raise NotFoundError("evaluation report", f"(no metrics.json in {folder.name})")
    plots = sorted(path.name for path in folder.glob("*.png"))
    return {"tables": tables, "plots": plots}


def plot_path(report_dir: Path | None, name: str) -> Path:
    """A plot of the report by file name: only PNG files directly in the report folder."""
    if report_dir is None:
        raise NotFoundError("plot", name[:100])
    folder = Path(report_dir).resolve()
    candidate = (folder / name).resolve()
    if candidate.parent != folder or candidate.suffix.lower() != ".png" or not candidate.is_file():
        raise NotFoundError("plot", name[:100])
    return candidate
