"""Item statistics the sources and features read: popularity overall and recent, first event time.

"Recent" and "now" are measured from the newest event in the store, not from the clock, so a shop's
years-old history and a live one are treated alike.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property

from recommender.events import EventStore

logger = logging.getLogger(__name__)
# Other processes (workers) also write events; their writes are seen after about this long.
STATS_TTL_SECONDS = 60.0
# A recomputation this fast runs in the request after this process's own write; a slower one in the
# background, while the previous statistics serve.
SYNC_COMPUTE_SECONDS = 0.05
# Background recomputations are spaced to take at most this share of one core.
REFRESH_SHARE = 0.1


@dataclass
class ItemStats:
    users: dict[str, int] = field(default_factory=dict)
    recent: dict[str, int] = field(default_factory=dict)
    first_seen: dict[str, datetime] = field(default_factory=dict)
    reference: datetime | None = None  # the newest event: "now" for ages and the recent window

    @classmethod
    def from_events(cls, events: Iterable[tuple[str, str, datetime]], recent_days: float) -> ItemStats:
        """From (user, product, time) triples; what training uses for an as-of cut of the events."""
        users: dict[str, set[str]] = {}
        first_seen: dict[str, datetime] = {}
        rows = list(events)
        reference = max((moment for _, _, moment in rows), default=None)
        recent: dict[str, set[str]] = {}
        since = reference - timedelta(days=recent_days) if reference else None
        for user_id, product_id, moment in rows:
            users.setdefault(product_id, set()).add(user_id)
            if product_id not in first_seen or moment < first_seen[product_id]:
                first_seen[product_id] = moment
            if since is not None and moment >= since:
                recent.setdefault(product_id, set()).add(user_id)
        return cls(
            {pid: len(ids) for pid, ids in users.items()},
            {pid: len(ids) for pid, ids in recent.items()},
            first_seen,
            reference,
        )

    def most_popular(self, limit: int) -> list[tuple[str, int]]:
        return self._by_users[:limit]

    def trending(self, limit: int) -> list[tuple[str, int]]:
        return self._by_recent_users[:limit]

    # Sorted once per statistics object (they are replaced, never changed in place).
    @cached_property
    def _by_users(self) -> list[tuple[str, int]]:
        return sorted(self.users.items(), key=lambda item: (-item[1], item[0]))

    @cached_property
    def _by_recent_users(self) -> list[tuple[str, int]]:
        return sorted(self.recent.items(), key=lambda item: (-item[1], item[0]))

    def log_users(self, product_id: str) -> float:
        return math.log1p(self.users.get(product_id, 0))

    def log_recent(self, product_id: str) -> float:
        return math.log1p(self.recent.get(product_id, 0))

    def age_days(self, product_id: str) -> float:
        """Days from the product's first event to the newest event; 0 for a product without events."""
        first = self.first_seen.get(product_id)
        if first is None or self.reference is None:
            return 0.0
        return max(0.0, (self.reference - first).total_seconds() / 86400.0)


class LiveItemStats:
    """ItemStats of the event store, recomputed when events were written, without making requests wait
    for a large store or spend a core on it under a live event stream.

    - This process's writes: the next read recomputes at once while that costs at most
      ``SYNC_COMPUTE_SECONDS`` (a small store reads its own writes); past that the previous statistics
      serve and one recomputation runs in the background (at 60k events one takes ~0.4 s).
    - Other processes' writes (workers) are seen after ``STATS_TTL_SECONDS``, also in the background.
    - Background recomputations are spaced so that they take at most ``REFRESH_SHARE`` of a core.
    - A background refresh first asks the event store whether any event was added or erased since (its
      ``fingerprint``, one small query): if none was, the statistics stand. A recomputation at 60k events
      held the interpreter ~0.4 s, a stall for every request in flight, once a minute with no events at all.
    - ``settle()`` recomputes at once: the training job calls it when it ends.
    """

    def __init__(self, events: EventStore, recent_days: float) -> None:
        self._events = events
        self._recent_days = recent_days
        self._lock = threading.Lock()
        self._cached: ItemStats | None = None
        self._generation = -1  # the event store's generation the cached statistics reflect
        self._computed_at = 0.0
        self._cost = 0.0  # seconds the last recomputation took
        self._refreshing = False
        self._fingerprint: tuple[int, int] | None = None  # the event store's, as of the cached statistics

    def get(self) -> ItemStats:
        with self._lock:
            now = time.monotonic()
            written = self._generation != self._events.generation
            if self._cached is None or (written and self._cost <= SYNC_COMPUTE_SECONDS):
                return self._recompute_locked()
            if (written or now - self._computed_at > STATS_TTL_SECONDS) and self._refresh_due(now):
                self._refreshing = True
                threading.Thread(target=self._refresh, name="item-stats", daemon=True).start()
            return self._cached

    def settle(self) -> ItemStats:
        """Recompute now if this process wrote events since: what a batch job wants once its writes are
        done (the training job's end, and so an evaluation), so that what follows does not depend on when
        a background recomputation happens to finish."""
        with self._lock:
            if self._cached is None or self._generation != self._events.generation:
                return self._recompute_locked()
            return self._cached

    def _recompute_locked(self) -> ItemStats:
        self._generation = self._events.generation
        self._cached = self._timed_compute()
        return self._cached

    def _refresh_due(self, now: float) -> bool:
        return not self._refreshing and now - self._computed_at >= self._cost / REFRESH_SHARE

    def _timed_compute(self) -> ItemStats:
        started = time.monotonic()
        try:
            fingerprint = self._events.fingerprint()  # before reading: a write meanwhile shows next time
            stats = self._compute()
            self._fingerprint = fingerprint
            return stats
        finally:
            self._computed_at = time.monotonic()
            self._cost = self._computed_at - started

    def _refresh(self) -> None:
        generation = self._events.generation
        try:
            if generation == self._generation and self._events.fingerprint() == self._fingerprint:
                fresh: ItemStats | None = None  # no event added or erased since: the statistics stand
                self._computed_at = time.monotonic()
            else:
                fresh = self._timed_compute()
        except Exception:  # the store is down: keep serving the previous statistics, try again later
            logger.warning("item statistics not refreshed", exc_info=True)
            fresh = None
        with self._lock:
            self._refreshing = False
            if fresh is not None and generation >= self._generation:  # else a newer one was computed
                self._cached, self._generation = fresh, generation

    def _compute(self) -> ItemStats:
        activity = self._events.item_activity()
        reference = max((row.last_seen for row in activity), default=None)
        recent = self._events.recent_users(reference - timedelta(days=self._recent_days)) if reference else {}
        return ItemStats(
            {row.product_id: row.users for row in activity},
            recent,
            {row.product_id: row.first_seen for row in activity},
            reference,
        )
