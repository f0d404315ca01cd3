"""The learned ranker is published only where it beats rank fusion on users it never saw."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recommender.training.parts import RankerGroup, fit_gated_ranker, label_ndcg
from tests.conftest import make_settings

COLUMNS = ["signal", "noise"]


def groups(signal_finds_label: bool, fusion_finds_label: bool, count: int = 120) -> list[RankerGroup]:
    """Requests of 30 candidates with one positive. Where a side "finds" the label it scores the positive
    highest; otherwise its scores are noise."""
    rng = np.random.default_rng(7)
    made = []
    for _ in range(count):
        labels = np.zeros(30)
        labels[rng.integers(30)] = 1.0
        signal = labels + rng.normal(0, 0.1, 30) if signal_finds_label else rng.normal(0, 1, 30)
        fusion = labels + rng.normal(0, 0.1, 30) if fusion_finds_label else rng.normal(0, 1, 30)
        matrix = np.column_stack([signal, rng.normal(0, 1, 30)])
        made.append(RankerGroup(matrix, labels, fusion))
    return made


def test_label_ndcg_reads_the_positive_place() -> None:
    labels = np.array([0.0, 0.0, 1.0, 0.0])
    assert label_ndcg(np.array([4.0, 3.0, 2.0, 1.0]), labels) == 0.5  # third: 1 / log2(4)
    assert label_ndcg(np.array([0.0, 0.0, 9.0, 0.0]), labels) == 1.0
    # Ties keep the candidates' order, as the pipeline's stable sort does.
    assert label_ndcg(np.zeros(4), labels) == 0.5
    assert label_ndcg(np.array([4.0, 3.0, 2.0, 1.0]), labels, k=2) == 0.0


def test_a_ranker_that_beats_fusion_is_published_with_its_figures(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, pipeline={"ranker_min_users": 20})
    trained = fit_gated_ranker(groups(True, False), COLUMNS, [], settings, seed=1)
    assert trained.ranker is not None
    figures = trained.validation
    assert figures["published"] is True and figures["users"] == 120
    assert set(figures["objectives"]) == {"binary", "lambdarank"}
    assert figures["objective"] in figures["objectives"]
    assert figures["ranker_ndcg_at_10"] > 0.9 > 0.5 > figures["fusion_ndcg_at_10"]
    assert trained.note.startswith("learned ranker from 120 users")
    assert trained.ranker.meta["objective"] == figures["objective"]


def test_a_ranker_that_loses_to_fusion_is_not_published_and_says_why(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, pipeline={"ranker_min_users": 20})
    trained = fit_gated_ranker(groups(False, True), COLUMNS, [], settings, seed=1)
    assert trained.ranker is None
    figures = trained.validation
    assert figures["published"] is False
    assert figures["fusion_ndcg_at_10"] > 0.9 > figures["ranker_ndcg_at_10"]
    assert figures["difference"] < 0
    assert trained.note.startswith("rank fusion serves: the learned ranker scored validation NDCG@10")
    assert f"{figures['fusion_ndcg_at_10']:.4f}" in trained.note


def test_the_gate_can_be_switched_off_and_the_objective_fixed(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        pipeline={"ranker_min_users": 20, "ranker_gate": False},
        experimental={"pipeline": {"ranker_objective": "lambdarank"}},
    )
    trained = fit_gated_ranker(groups(False, True), COLUMNS, [], settings, seed=1)
    assert trained.ranker is not None
    assert trained.validation["objectives"].keys() == {"lambdarank"}
    assert trained.note.endswith("(published because ranker_gate is off)")
