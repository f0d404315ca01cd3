"""The learned ranker's trees as machine code: the same scores as LightGBM, or LightGBM itself."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import lightgbm
import numpy as np
import pytest

from recommender.pipeline.compiled_trees import compiled_scorer, probe_rows
from recommender.pipeline.rankers import RANKER_MODEL_FILE, FeatureFrame, LearnedRanker

COLUMNS = ["similarity", "popularity", "price", "channel"]


def features(rows: int, seed: int) -> np.ndarray:
    """Numbers with missing values, and a categorical column (codes 0-4)."""
    picker = np.random.default_rng(seed)
    matrix = np.column_stack(
        [picker.normal(size=rows), picker.exponential(size=rows), picker.uniform(1, 500, rows)]
    )
    matrix[picker.random(matrix.shape) < 0.2] = np.nan
    return np.column_stack([matrix, picker.integers(0, 5, rows).astype(np.float64)])


def train(directory: Path, objective: str, seed: int = 1) -> lightgbm.Booster:
    """A small forest on labels that depend on every column, saved as a published ranker is."""
    matrix = features(3000, seed)
    signal = np.nan_to_num(matrix[:, 0]) + 0.3 * np.nan_to_num(matrix[:, 1]) + (matrix[:, 3] == 2)
    labels = (signal + np.random.default_rng(seed).normal(0, 0.5, len(signal)) > 1).astype(int)
    data = lightgbm.Dataset(matrix, labels, feature_name=COLUMNS, categorical_feature=["channel"])
    params = {"objective": objective, "num_leaves": 7, "verbosity": -1, "seed": seed, "min_data_in_leaf": 20}
    if objective != "binary":
        data.set_group([30] * 100)
    booster = lightgbm.train(params, data, num_boost_round=60)
    directory.mkdir(parents=True, exist_ok=True)
    LearnedRanker(booster, COLUMNS, {}).save(directory)
    return booster


@pytest.mark.parametrize("objective", ["binary", "lambdarank"])
def test_compiled_trees_score_as_lightgbm_does(tmp_path: Path, objective: str) -> None:
    booster = train(tmp_path, objective)
    scorer = compiled_scorer(tmp_path / RANKER_MODEL_FILE, booster)
    assert scorer is not None
    unseen = features(400, seed=7)
    np.testing.assert_allclose(scorer(unseen), booster.predict(unseen), rtol=1e-12, atol=1e-12)
    assert len(set(scorer(unseen).round(6))) > 20  # the forest tells the rows apart


def test_a_loaded_ranker_serves_compiled_with_lightgbms_order(tmp_path: Path) -> None:
    booster = train(tmp_path, "binary")
    ranker = LearnedRanker.load(tmp_path)
    assert ranker is not None and ranker.compiled
    # The frame holds more columns than the ranker reads, in another order.
    matrix = features(300, seed=8)
    frame_columns = ["extra", *reversed(COLUMNS)]
    frame = FeatureFrame(frame_columns, np.column_stack([np.ones(300), matrix[:, ::-1]]), [])
    scores = ranker.score(frame)
    np.testing.assert_allclose(scores, booster.predict(matrix), rtol=1e-12)
    assert scores.dtype == np.float64


def test_a_forest_that_disagrees_with_lightgbm_does_not_serve(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Checked on probe rows before serving: another model's trees (as a miscompiled forest would) differ."""
    train(tmp_path / "a", "binary", seed=1)
    other = train(tmp_path / "b", "binary", seed=2)
    with caplog.at_level(logging.WARNING):
        assert compiled_scorer(tmp_path / "a" / RANKER_MODEL_FILE, other) is None
    assert "differs from LightGBM" in caplog.text


def test_a_model_lleaves_cannot_read_is_scored_by_lightgbm(tmp_path: Path) -> None:
    booster = train(tmp_path, "binary")
    (tmp_path / RANKER_MODEL_FILE).write_text("not a LightGBM model\n")
    assert compiled_scorer(tmp_path / RANKER_MODEL_FILE, booster) is None


def test_probe_rows_cover_each_features_range_and_categories(tmp_path: Path) -> None:
    booster = train(tmp_path, "binary")
    probe = probe_rows(booster)
    assert probe.shape[1] == len(COLUMNS)
    price = probe[:, 2][~np.isnan(probe[:, 2])]
    assert price.min() < 50 and price.max() > 450
    channels = set(probe[:, 3][~np.isnan(probe[:, 3])])
    # LightGBM lists a categorical feature's values with -1 (negative codes count as missing).
    assert channels <= {-1.0, 0.0, 1.0, 2.0, 3.0, 4.0} and len(channels) >= 4
    assert 0.05 < np.isnan(probe).mean() < 0.3


def test_without_lleaves_lightgbm_scores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    booster = train(tmp_path, "binary")
    monkeypatch.setitem(sys.modules, "lleaves", None)  # what an environment without the extra imports
    ranker = LearnedRanker.load(tmp_path)
    assert ranker is not None and not ranker.compiled
    matrix = features(50, seed=9)
    np.testing.assert_allclose(ranker.score(FeatureFrame(COLUMNS, matrix, [])), booster.predict(matrix))
