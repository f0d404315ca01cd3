"""Pairs for the shop's encoder: validation users held out whole, a window, a budget, search pairs from the
catalog and from the shop's own searches."""

from __future__ import annotations

from recommender.events import SearchChoice
from recommender.models import Product
from recommender.training.encoder_pairs import (
    VALIDATION_TRANSITIONS,
    mine_pairs,
    search_pairs,
    split_search_choices,
)


def histories(users: int) -> dict[str, list[str]]:
    return {f"u{user}": [f"p{(user + step) % 30}" for step in range(8)] for user in range(users)}


def test_validation_users_are_held_out_whole_and_score_their_last_transitions() -> None:
    # Every user has products of their own, so that a pair says whose history it came from.
    sequences = {f"u{user}": [f"u{user}-p{step}" for step in range(8)] for user in range(100)}
    pairs = mine_pairs(sequences, window=2, max_pairs=10_000, seed=1)
    assert pairs.validation_users == 15 and pairs.training_users == 85
    validation_users = {pair[0].split("-")[0] for pair in pairs.validation}
    assert len(validation_users) == 15 and len(pairs.validation) == 15 * VALIDATION_TRANSITIONS
    for user in validation_users:
        last = sequences[user][-VALIDATION_TRANSITIONS - 1 :]
        assert [pair for pair in pairs.validation if pair[0].startswith(f"{user}-")] == list(
            zip(last[:-1], last[1:], strict=True)
        )
    assert not {pair[0].split("-")[0] for pair in pairs.train} & validation_users
    # Window 2: each product pairs with the next two of its history, the held-out last product cut (6 + 5
    # pairs per 8-product history).
    assert pairs.mined == len(pairs.train) == 85 * 11


def test_each_users_held_out_next_product_is_never_trained_on() -> None:
    """The training job measures its ranker and the served-lists gate on each user's newest first-seen
    product (``held_out_next_events``): no training pair holds it, or anything after it."""
    sequences = {f"u{user}": [f"u{user}-p{step}" for step in range(6)] for user in range(100)}
    # A shopper who comes back to earlier products after the newest new one: that one is still held out.
    sequences["u0"] = ["u0-a", "u0-b", "u0-c", "u0-a", "u0-b"]
    pairs = mine_pairs(sequences, window=3, max_pairs=10_000, seed=1)
    trained = {product for pair in pairs.train for product in pair}
    for user, sequence in sequences.items():
        if any(pair[0].startswith(f"{user}-") for pair in pairs.validation):
            continue
        held = "u0-c" if user == "u0" else sequence[-1]
        assert held not in trained, user
    # u0 trains (seed 1 draws other validation users): only what came before its held-out product.
    assert [pair for pair in pairs.train if pair[0].startswith("u0-")] == [("u0-a", "u0-b")]


def test_pairs_are_sampled_down_to_the_budget_and_never_pair_a_product_with_itself() -> None:
    sequences = {"a": ["x", "y", "x", "z"], **histories(60)}
    pairs = mine_pairs(sequences, window=3, max_pairs=50, seed=2)
    assert len(pairs.train) == 50 and pairs.mined > 50
    assert all(first != second for first, second in pairs.train)


def test_search_pairs_name_the_product_by_its_title_and_its_category() -> None:
    products = [
        Product(product_id="a", title="Trail shoe", category="Sports > Running"),
        Product(product_id="b", title="Chef knife", category="Home > Kitchen"),
    ]
    pairs = search_pairs(products, 4, seed=3)
    assert set(pairs) == {("Trail shoe", "a"), ("Running", "a"), ("Chef knife", "b"), ("Kitchen", "b")}
    assert len(search_pairs(products, 9, seed=3)) == 9  # drawn with repeats beyond the catalog's own


def test_the_shops_searches_are_split_by_shopper_and_keep_only_catalog_products() -> None:
    choices = [
        SearchChoice(f"s{user}", query, product)
        for user in range(50)
        for query, product in [
            ("trail shoes", "a"),
            ("Chef knife", "b"),
            ("gone", "not-in-catalog"),
            (" ", "a"),
        ]
    ]
    split = split_search_choices(choices, {"a", "b"}, checked_share=0.2, seed=4)
    checked_users = {choice.user_id for choice in split.checked}
    assert len(checked_users) == 10
    # Two usable searches per shopper: the unknown product and the blank query go.
    assert len(split.checked) == 20 and len(split.train) == 80
    assert set(split.train) == {("trail shoes", "a"), ("Chef knife", "b")}
    trained_users = {choice.user_id for choice in choices} - checked_users
    assert len(trained_users) == 40  # no shopper is on both sides
