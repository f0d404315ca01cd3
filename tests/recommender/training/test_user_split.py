"""The users whose held-out events choose the sequence model and those that judge the ranker."""

from __future__ import annotations

from recommender.training.user_split import MIN_USERS_APART, choosing_rows, judges, judging_rows


def test_the_split_is_a_fixed_share_of_users_by_their_id() -> None:
    users = [f"user-{index}" for index in range(2000)]
    judging, apart = judging_rows(users, 0.5)
    assert apart and 900 < len(judging) < 1100
    assert judging_rows(users, 0.5) == (judging, True)  # the same split on every run
    assert judging_rows(list(reversed(users)), 0.5)[0] == sorted(len(users) - 1 - row for row in judging)
    assert 150 < len(judging_rows(users, 0.1)[0]) < 250


def test_choosing_and_judging_users_are_disjoint_and_cover_everyone() -> None:
    users = [f"user-{index}" for index in range(300)]
    judging, _ = judging_rows(users, 0.5)
    choosing, apart = choosing_rows(users, 0.5)
    assert apart and not set(judging) & set(choosing)
    assert sorted(judging + choosing) == list(range(300))
    assert all(judges(users[row], 0.5) for row in judging)
    assert not any(judges(users[row], 0.5) for row in choosing)


def test_too_few_users_on_either_side_and_everyone_does_both() -> None:
    few = [f"user-{index}" for index in range(MIN_USERS_APART)]
    assert judging_rows(few, 0.5) == (list(range(len(few))), False)
    assert choosing_rows(few, 0.5) == (list(range(len(few))), False)
    many = [f"user-{index}" for index in range(500)]
    assert choosing_rows(many, 0.0) == (list(range(500)), False)
    assert judging_rows(many, 1.0) == (list(range(500)), False)
