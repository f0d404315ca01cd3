from recommender.evaluation.data import Dataset, Interaction
from recommender.evaluation.split import SplitOptions, TieOrder, k_core, leave_one_out


def dataset(rows: list[tuple[str, str, float]]) -> Dataset:
    return Dataset("toy", [Interaction(u, i, t, None, row) for row, (u, i, t) in enumerate(rows)], {})


ROWS = [
    ("u1", "b", 1),
    ("u1", "a", 1),
    ("u1", "c", 2),
    ("u1", "d", 3),
    ("u1", "e", 4),
    ("u2", "a", 5),
    ("u2", "c", 6),
    ("u2", "d", 7),
]


def names(split, indices):
    return [split.item_ids[index] for index in indices]


def test_last_item_is_test_second_last_validation_rest_training() -> None:
    split = leave_one_out(dataset(ROWS), SplitOptions())
    user = split.user_ids.index("u1")
    assert names(split, split.train[user]) == ["b", "a", "c"]  # tie at t=1 kept in file order
    assert split.item_ids[split.valid[user]] == "d" and split.item_ids[split.test[user]] == "e"
    assert names(split, split.history_for_test(user)) == ["b", "a", "c", "d"]


def test_no_test_item_leaks_into_its_users_training_or_validation() -> None:
    split = leave_one_out(dataset(ROWS), SplitOptions())
    for user, target in split.test.items():
        assert target not in split.train[user] and target != split.valid[user]


def test_ties_by_item_id_on_request_and_max_length() -> None:
    split = leave_one_out(dataset(ROWS), SplitOptions(tie_order=TieOrder.ITEM, max_length=2))
    user = split.user_ids.index("u1")
    assert names(split, split.train[user]) == ["b", "c"]  # a, b, c ordered by id, then the last two kept


def test_k_core_drops_rare_items_and_users_until_stable() -> None:
    kept = k_core(dataset(ROWS).interactions, min_user=3, min_item=2)
    assert {(i.user_id, i.item_id) for i in kept} == {
        ("u1", "a"),
        ("u1", "c"),
        ("u1", "d"),
        ("u2", "a"),
        ("u2", "c"),
        ("u2", "d"),
    }


def test_cold_items_vanish_from_every_training_sequence() -> None:
    rows = [(f"u{u}", f"i{(u * 3 + k) % 12}", float(k)) for u in range(12) for k in range(6)]
    split = leave_one_out(dataset(rows), SplitOptions(cold_item_share=0.3, seed=1))
    assert split.cold_items
    for sequence in split.train.values():
        assert not split.cold_items & set(sequence)
    assert split.popularity(include_valid=True).keys().isdisjoint(split.cold_items)


def test_the_test_request_excludes_held_out_products_the_user_rated_earlier() -> None:
    """The service has no event for a held-out product, so the evaluation's request excludes those the
    user rated before the test event (the protocol ranks only unrated products); nothing else."""
    from recommender.evaluation.split import request_at_test_event

    rows = [(f"u{u}", f"i{(u * 3 + k) % 12}", float(k)) for u in range(12) for k in range(6)]
    cold_split = leave_one_out(dataset(rows), SplitOptions(cold_item_share=0.3, seed=1))
    held_out = {cold_split.item_ids[item] for item in cold_split.cold_items}
    excluded_any = False
    for user in cold_split.user_ids_in_order():
        earlier = {event.item_id for event in cold_split.ordered[user][:-1]}
        request = request_at_test_event(cold_split, user)
        assert set(request.exclude) == earlier & held_out
        assert cold_split.item_ids[cold_split.test[user]] not in request.exclude
        excluded_any |= bool(request.exclude)
    assert excluded_any
    warm_split = leave_one_out(dataset(rows), SplitOptions(seed=1))
    assert all(not request_at_test_event(warm_split, user).exclude for user in warm_split.user_ids_in_order())
