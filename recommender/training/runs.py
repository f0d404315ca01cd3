"""One training run at a time, across processes: a lease in the event store's database."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TypeVar

from recommender.leases import TRAINING, Leases
from recommender.settings import CollabConfig

ResultT = TypeVar("ResultT")
# Time for the run to wait in a queue and to publish, beyond its own training limit.
LEASE_MARGIN_SECONDS = 600


class TrainingRuns:
    def __init__(self, leases: Leases, settings: CollabConfig) -> None:
        self._leases = leases
        self._ttl_seconds = settings.max_minutes * 60 + LEASE_MARGIN_SECONDS

    def begin(self, run_id: str | None = None) -> str:
        """Claim the training lease for a run (a new id unless given); ConflictError while another runs."""
        run_id = run_id or uuid.uuid4().hex
        self._leases.acquire(TRAINING, run_id, self._ttl_seconds)
        return run_id

    def end(self, run_id: str) -> None:
        self._leases.release(TRAINING, run_id)

    def running(self) -> str | None:
        return self._leases.holder(TRAINING)

    def clear_stale(self) -> None:
        """For a process that runs training itself: a lease left at start-up belongs to a dead process."""
        self._leases.release(TRAINING)

    def run(self, train: Callable[[], ResultT], run_id: str | None = None) -> ResultT:
        run_id = self.begin(run_id)
        try:
            return train()
        finally:
            self.end(run_id)
