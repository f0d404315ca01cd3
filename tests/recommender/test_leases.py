"""One training run at a time across processes (two Database objects on one file stand for two)."""

from __future__ import annotations

from pathlib import Path

import pytest

from recommender.database import Database
from recommender.errors import ConflictError
from recommender.leases import Leases
from recommender.settings import CollabConfig
from recommender.training.runs import TrainingRuns


def test_a_second_process_cannot_take_a_held_lease(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    first, second = Leases(Database(url)), Leases(Database(url))
    first.acquire("training", "run-1", 60)
    with pytest.raises(ConflictError) as refused:
        second.acquire("training", "run-2", 60)
    assert refused.value.holder == "run-1"
    first.acquire("training", "run-1", 60)  # the holder may extend it
    first.release("training", "run-1")
    second.acquire("training", "run-2", 60)
    assert first.holder("training") == "run-2"


def test_an_expired_lease_is_taken_over(tmp_path: Path) -> None:
    leases = Leases(Database(f"sqlite:///{tmp_path / 'events.db'}"))
    leases.acquire("training", "dead-run", -1)
    leases.acquire("training", "next-run", 60)
    assert leases.holder("training") == "next-run"


def test_training_runs_release_the_lease_even_when_training_fails(tmp_path: Path) -> None:
    runs = TrainingRuns(Leases(Database(f"sqlite:///{tmp_path / 'events.db'}")), CollabConfig())

    def failing() -> None:
        raise ValueError("no events")

    with pytest.raises(ValueError):
        runs.run(failing)
    assert runs.running() is None
