"""Which of each user's newest products the sequence model is trained without, and chosen on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from recommender.events import StoredEvent
from recommender.models import EventType
from recommender.settings import Settings
from recommender.training.held_out import held_out_next_events
from recommender.training.job import held_out_split
from recommender.training.parts import HeldOutView
from tests.conftest import make_settings


def test_one_held_out_event_trains_on_all_but_the_newest_and_chooses_on_it() -> None:
    training, targets = held_out_split([[1, 2, 3, 4, 5], [6, 7, 8]], 1)
    assert training == [[1, 2, 3, 4], [6, 7]]
    assert targets.tolist() == [5, 8]


def test_two_held_out_events_leave_the_newest_out_and_choose_on_the_one_before() -> None:
    training, targets = held_out_split([[1, 2, 3, 4, 5], [6, 7, 8, 9], [10, 11, 12]], 2)
    # A user with three products would be left one to train on: that user keeps one held out.
    assert training == [[1, 2, 3], [6, 7], [10, 11]]
    assert targets.tolist() == [4, 8, 12]


START = datetime(2020, 1, 1, tzinfo=UTC)


def rated(user: str, product: str, minutes: int) -> StoredEvent:
    return StoredEvent(user, product, EventType.PURCHASE, None, START + timedelta(minutes=minutes))


def test_two_cut_points_give_each_user_the_newest_new_product_and_the_one_before() -> None:
    events = [rated("u", pid, minute) for minute, pid in enumerate("abcda")]
    newest, before = held_out_next_events(events, Settings(), cut_points=2)
    # The repeat of "a" is not new: the newest cut is "d", the one before it "c", each with its own past.
    assert (newest.label.product_id, newest.cut) == ("d", 0)
    assert [event.product_id for event in newest.history] == ["c", "b", "a"]
    assert (before.label.product_id, before.cut) == ("c", 1)
    assert [event.product_id for event in before.history] == ["b", "a"]
    # One cut point is the newest alone; a user with three products keeps one, as the sequence model does.
    assert held_out_next_events(events, Settings()) == [newest]
    assert [item.cut for item in held_out_next_events(events[:3], Settings(), cut_points=2)] == [0]


def test_the_ranker_learns_from_earlier_cut_points_known_as_of_before_them(tmp_path: Path) -> None:
    """With two events held out, the view keeps each sampled user's earlier cut apart from the newest, and
    its statistics know neither held-out event (nor anything after them)."""
    events = [rated(user, pid, minute) for user in ("u", "v") for minute, pid in enumerate("abcde")]
    events.append(rated("w", "e", 9))  # someone else, after the cuts
    one = HeldOutView.of(events, make_settings(tmp_path), seed=1)
    two = HeldOutView.of(
        events, make_settings(tmp_path, experimental={"collab": {"held_out_events": 2}}), seed=1
    )
    assert [(item.user_id, item.label.product_id) for item in one.sample] == [("u", "e"), ("v", "e")]
    assert one.earlier == []
    assert two.sample == one.sample
    assert [(item.user_id, item.label.product_id, item.cut) for item in two.earlier] == [
        ("u", "d", 1),
        ("v", "d", 1),
    ]
    # One cut point knows "d" from both users; with two, "d" is held out for both and no one else had it.
    assert one.stats_as_of.log_users("d") > 0
    assert two.stats_as_of.log_users("d") == 0
    assert two.stats_as_of.log_users("c") == one.stats_as_of.log_users("c") > 0
