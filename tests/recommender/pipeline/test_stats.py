"""The item statistics the pipeline reads: fresh after this process's writes, refreshed off the request
path once they are older than the TTL."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from recommender.database import Database
from recommender.events import EventStore
from recommender.models import InteractionEvent
from recommender.pipeline import stats as stats_module
from recommender.pipeline.stats import LiveItemStats


def test_stale_statistics_refresh_in_the_background_while_the_old_ones_serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = Database(f"sqlite:///{tmp_path / 'events.db'}")
    try:
        events = EventStore(database)
        events.add([InteractionEvent(user_id="a", product_id="p1", type="view")])
        live = LiveItemStats(events, recent_days=7)
        first = live.get()
        assert first.users == {"p1": 1}

        # Another process (a worker) writes: this process's generation does not move.
        EventStore(database).add([InteractionEvent(user_id="b", product_id="p1", type="view")])
        monkeypatch.setattr(stats_module, "STATS_TTL_SECONDS", 0.0)
        release = threading.Event()
        compute = live._compute

        def slow_compute():  # type: ignore[no-untyped-def]
            release.wait(10)
            return compute()

        monkeypatch.setattr(live, "_compute", slow_compute)
        started = time.monotonic()
        assert live.get() is first and live.get() is first  # served at once, one refresh running
        assert time.monotonic() - started < 1
        release.set()
        deadline = time.monotonic() + 10
        while live.get().users != {"p1": 2} and time.monotonic() < deadline:
            time.sleep(0.05)
        assert live.get().users == {"p1": 2}

        # This process's own write: the next read has it, without waiting for a TTL.
        monkeypatch.setattr(stats_module, "STATS_TTL_SECONDS", 3600.0)
        events.add([InteractionEvent(user_id="c", product_id="p2", type="purchase")])
        assert live.get().users == {"p1": 2, "p2": 1}
    finally:
        database.close()


def test_a_slow_recomputation_never_holds_a_request_under_a_live_event_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past SYNC_COMPUTE_SECONDS, this process's own writes are counted in the background, one
    recomputation at a time and spaced to REFRESH_SHARE of a core, the previous statistics serving."""
    database = Database(f"sqlite:///{tmp_path / 'events.db'}")
    try:
        events = EventStore(database)
        events.add([InteractionEvent(user_id="a", product_id="p1", type="view")])
        live = LiveItemStats(events, recent_days=7)
        compute = live._compute
        computed = []

        def slow_compute():  # type: ignore[no-untyped-def]
            time.sleep(0.1)  # a large store: twice SYNC_COMPUTE_SECONDS
            computed.append(time.monotonic())
            return compute()

        monkeypatch.setattr(live, "_compute", slow_compute)
        monkeypatch.setattr(stats_module, "REFRESH_SHARE", 0.5)  # spaced by 0.2 s, to keep the test short
        first = live.get()  # nothing to serve yet: computed in the request
        assert first.users == {"p1": 1}

        waits = []
        started = time.monotonic()
        for index in range(40):  # a write before every request, for about a second
            events.add([InteractionEvent(user_id=f"u{index}", product_id="p1", type="view")])
            before = time.monotonic()
            live.get()
            waits.append(time.monotonic() - before)
            time.sleep(0.025)
        elapsed = time.monotonic() - started
        assert max(waits) < 0.08  # no request recomputed (a recomputation in it takes 0.1 s)
        background = computed[1:]
        assert 2 <= len(background) <= elapsed / 0.3 + 2  # each took 0.1 s, then 0.2 s of rest
        deadline = time.monotonic() + 10
        while live.get().users != {"p1": 41} and time.monotonic() < deadline:
            time.sleep(0.05)
        assert live.get().users == {"p1": 41}  # the last write is counted in the end

        # A batch job's end (training, then an evaluation ranks): counted at once, however slow.
        events.add([InteractionEvent(user_id="last", product_id="p2", type="view")])
        assert live.settle().users == {"p1": 41, "p2": 1}
        assert live.get().users == {"p1": 41, "p2": 1}
    finally:
        database.close()


def test_a_refresh_recomputes_only_when_events_were_added_or_erased(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recomputation holds the interpreter (~0.4 s at 60k events): once a minute with no new events it
    was a stall for every request in flight, for statistics that could not have changed."""
    database = Database(f"sqlite:///{tmp_path / 'events.db'}")
    try:
        events = EventStore(database)
        events.add([InteractionEvent(user_id=user, product_id="p1", type="view") for user in ("a", "b")])
        live = LiveItemStats(events, recent_days=7)
        assert live.get().users == {"p1": 2}
        monkeypatch.setattr(stats_module, "STATS_TTL_SECONDS", 0.0)
        monkeypatch.setattr(stats_module, "REFRESH_SHARE", 1e9)  # no spacing between refreshes
        computed = []
        compute = live._compute

        def counted_compute():  # type: ignore[no-untyped-def]
            computed.append(1)
            return compute()

        monkeypatch.setattr(live, "_compute", counted_compute)

        def settled() -> None:
            deadline = time.monotonic() + 10
            while live._refreshing and time.monotonic() < deadline:
                time.sleep(0.01)

        def refreshed() -> dict[str, int]:
            settled()
            live.get()  # due: starts a refresh in the background
            settled()
            assert live._cached is not None
            return live._cached.users

        assert refreshed() == {"p1": 2} and computed == []  # nothing changed: nothing recomputed
        other_process = EventStore(database)
        other_process.add([InteractionEvent(user_id="c", product_id="p1", type="view")])
        assert refreshed() == {"p1": 3} and computed == [1]
        other_process.delete_user("c")  # erased by another process: the count tells
        assert refreshed() == {"p1": 2} and computed == [1, 1]
    finally:
        database.close()
