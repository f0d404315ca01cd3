"""Which of each user's newest products the sequence model is trained without, and chosen on."""

from __future__ import annotations

from recommender.training.job import held_out_split


def test_one_held_out_event_trains_on_all_but_the_newest_and_chooses_on_it() -> None:
    training, targets = held_out_split([[1, 2, 3, 4, 5], [6, 7, 8]], 1)
    assert training == [[1, 2, 3, 4], [6, 7]]
    assert targets.tolist() == [5, 8]


def test_two_held_out_events_leave_the_newest_out_and_choose_on_the_one_before() -> None:
    training, targets = held_out_split([[1, 2, 3, 4, 5], [6, 7, 8, 9], [10, 11, 12]], 2)
    # A user with three products would be left one to train on: that user keeps one held out.
    assert training == [[1, 2, 3], [6, 7], [10, 11]]
    assert targets.tolist() == [4, 8, 12]
