"""The learned ranker's trees compiled to machine code (lleaves, over LLVM), when the `compiled-ranker`
extra is installed.

LightGBM's ``predict`` walks ~300 trees for each of a request's ~365 candidates: 1.4-1.9 ms a request on
this project's benchmark catalog, the largest single step of a personalised list in an API process. The
same trees compiled take ~0.07 ms and give the same scores (the same comparisons; sums that differ by
~1e-16, rounding). Compiling takes ~0.7 s per 300 trees, once per model version and process, when the
model loads.

Before a compiled forest serves, it scores rows drawn over every feature's range (missing values
included) beside LightGBM; a difference beyond rounding and LightGBM keeps serving, saying why in the log.
So does a model lleaves cannot read, or a machine without lleaves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

Scorer = Callable[[np.ndarray], np.ndarray]
PROBE_ROWS = 512
MISSING_SHARE = 0.15


def compiled_scorer(model_file: Path, booster: Any) -> Scorer | None:
    """The compiled forest's scoring function, checked against ``booster``; None where it cannot serve."""
    try:
        import lleaves
    except ImportError:
        logger.info("lleaves is not installed (the compiled-ranker extra): LightGBM scores the ranker")
        return None
    started = time.perf_counter()
    try:
        model = lleaves.Model(model_file=str(model_file))
        model.compile()
    except Exception as error:  # an unsupported model or LLVM failing: LightGBM still can
        logger.warning("the ranker %s could not be compiled (%s): LightGBM scores it", model_file, error)
        return None
    probe = probe_rows(booster)
    expected = booster.predict(probe, num_threads=1)
    got = model.predict(probe, n_jobs=1)
    if not np.allclose(got, expected, rtol=1e-9, atol=1e-12):
        worst = float(np.max(np.abs(got - expected)))
        logger.warning(
            "the compiled ranker %s differs from LightGBM by up to %.3g on probe rows: LightGBM scores it",
            model_file,
            worst,
        )
        return None
    logger.info(
        "ranker %s: %d trees compiled in %.2f s", model_file, model.num_trees(), time.perf_counter() - started
    )
    return lambda matrix: model.predict(matrix, n_jobs=1)


def probe_rows(booster: Any, rows: int = PROBE_ROWS, seed: int = 0) -> np.ndarray:
    """Rows over each feature's training range (its categories, for a categorical one), some missing."""
    picker = np.random.default_rng(seed)
    infos = booster.dump_model(num_iteration=1)["feature_infos"]
    columns = []
    for name in booster.feature_name():
        info = infos.get(name, {})
        if info.get("values"):
            column = picker.choice(np.asarray(info["values"], dtype=np.float64), rows)
        else:
            low, high = float(info.get("min_value", -1.0)), float(info.get("max_value", 1.0))
            column = picker.uniform(low, high, rows) if high > low else np.full(rows, low)
        column[picker.random(rows) < MISSING_SHARE] = np.nan
        columns.append(column)
    return np.column_stack(columns)
