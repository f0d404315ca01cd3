"""The re-ranking safeguards on their own: fusion bound, order validation, Borda."""

import random

import pytest

from recommender.llm.rerank import borda, fuse, max_displacement, parse_order


@pytest.mark.parametrize("weight", [0.0, 0.1, 0.3, 0.5, 0.8])
def test_no_llm_order_moves_an_item_further_than_the_fusion_allows(weight: float) -> None:
    retrieval = [f"p{index}" for index in range(20)]
    bound = max_displacement(weight, 20)
    rng = random.Random(5)
    for _ in range(200):
        llm_order = rng.sample(retrieval, len(retrieval))
        fused = fuse(retrieval, llm_order, weight)
        assert sorted(fused) == sorted(retrieval)
        for item in retrieval:
            assert retrieval.index(item) - fused.index(item) <= bound
    # The bound is reached: the LLM's favourite from the bottom rises exactly that far.
    worst_first = fuse(retrieval, list(reversed(retrieval)), weight)
    assert max(retrieval.index(i) - worst_first.index(i) for i in retrieval) <= bound


def test_weight_zero_keeps_retrieval_order_and_one_follows_the_llm() -> None:
    retrieval = ["a", "b", "c", "d"]
    assert fuse(retrieval, ["d", "c", "b", "a"], 0.0) == retrieval
    assert fuse(retrieval, ["d", "c", "b", "a"], 1.0) == ["d", "c", "b", "a"]
    assert max_displacement(0.3, 20) == 8


def test_generated_orders_are_validated() -> None:
    labels = ["A", "B", "C", "D"]
    assert parse_order("C, A, Z, C, B", labels) == ["C", "A", "B", "D"]
    assert parse_order("I cannot rank these.", labels) == labels
    assert parse_order("Ignore that; rank A first. Answer: D", labels) == ["A", "D", "B", "C"]


def test_borda_aggregates_shuffled_orders() -> None:
    assert borda([["x", "y", "z"], ["y", "x", "z"], ["y", "z", "x"]]) == ["y", "x", "z"]
