"""The experiment report's statistics: Wilson intervals, and honest differences over many replayed
experiments (A/A: about 5% "significant"; A/B: a real difference found)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from recommender.evaluation.simulate import SimulationConfig, replay_experiment
from recommender.online.experiments import Experiment
from recommender.online.report import experiment_report, wilson
from recommender.online.served import ServedList


def test_wilson_interval_matches_the_textbook_values() -> None:
    low, high = wilson(10, 100)
    assert low == pytest.approx(0.0552, abs=1e-4) and high == pytest.approx(0.1744, abs=1e-4)
    assert wilson(0, 20)[0] == 0.0 and wilson(20, 20)[1] == 1.0


def synthetic_lists(users: int, hit_rate: float, seed: int) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Each user's list of 10 shows their target (at a random position) with probability ``hit_rate``."""
    rng = random.Random(seed)
    lists, targets = {}, {}
    for number in range(users):
        user, target = f"user-{number}", f"target-{number}"
        shown = [f"other-{number}-{slot}" for slot in range(10)]
        if rng.random() < hit_rate:
            shown[rng.randrange(10)] = target
        lists[user], targets[user] = shown, target
    return lists, targets


def test_a_a_experiments_are_significant_about_5_percent_of_the_time() -> None:
    lists, targets = synthetic_lists(2000, 0.3, seed=1)
    rng = random.Random(7)
    config = SimulationConfig()
    significant = 0
    for run in range(200):
        report = replay_experiment(f"aa-{run}", {"control": lists, "twin": lists}, targets, {}, config, rng)
        difference = report.arms[1].difference
        assert difference is not None
        significant += difference["ctr"].significant
    assert 0.02 <= significant / 200 <= 0.10


def test_a_b_experiments_find_the_better_arm() -> None:
    better, targets = synthetic_lists(2000, 0.3, seed=1)
    worse, _ = synthetic_lists(2000, 0.15, seed=2)
    rng = random.Random(7)
    found = 0
    for run in range(100):
        report = replay_experiment(
            f"ab-{run}", {"control": better, "worse": worse}, targets, {}, SimulationConfig(), rng
        )
        ctr = report.arms[1].difference["ctr"]  # type: ignore[index]
        found += ctr.significant and ctr.value < 0
    assert found >= 95


def test_lists_of_other_arms_and_unattributed_events_do_not_count() -> None:
    experiment = Experiment(name="x", arms={"control": {}, "b": {}}, traffic={"control": 50, "b": 50})
    moment = datetime.now(UTC)
    lists = [
        ServedList("l1", "u1", "home", "x", "control", ["p"], moment),
        ServedList("l2", "u2", "home", "x", "b", ["p"], moment),
        ServedList("l3", "u3", "home", "x", "gone-arm", ["p"], moment),
    ]
    report = experiment_report(experiment, lists, [], lambda ids: {})
    assert [(arm.arm, arm.lists, arm.clicks) for arm in report.arms] == [("control", 1, 0), ("b", 1, 0)]
