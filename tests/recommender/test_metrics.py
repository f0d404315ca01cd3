import math

import numpy as np
import pytest

from recommender.metrics import (
    coverage,
    mrr_at,
    ndcg_at,
    popularity_percentile,
    ranking_metrics,
    recall_at,
    target_ranks,
)


def test_metrics_match_hand_computed_values() -> None:
    ranks = np.array([0, 1, 2, 10])
    assert ndcg_at(ranks, 5) == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(4)) / 4)
    assert recall_at(ranks, 5) == pytest.approx(0.75)
    assert recall_at(ranks, 20) == pytest.approx(1.0)
    assert mrr_at(ranks, 5) == pytest.approx((1 + 1 / 2 + 1 / 3) / 4)
    assert ndcg_at(ranks, 1) == pytest.approx(0.25)
    assert set(ranking_metrics(ranks)) >= {"ndcg@10", "recall@20", "mrr@5"}


def test_target_rank_counts_higher_scores_and_ties_pessimistically() -> None:
    scores = np.array([[-np.inf, 0.9, 0.5, 0.7], [-np.inf, 0.1, 0.1, 0.1]])
    assert target_ranks(scores, np.array([2, 1])).tolist() == [2, 2]


def test_coverage_and_popularity_percentile() -> None:
    top = np.array([[1, 2], [1, 3]])
    assert coverage(top, item_count=6) == pytest.approx(0.5)
    popularity = np.array([0, 10, 5, 1])  # index 0 is padding
    assert popularity_percentile(np.array([[1]]), popularity) == pytest.approx(100.0)
    assert popularity_percentile(np.array([[3]]), popularity) == pytest.approx(0.0)
