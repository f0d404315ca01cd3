"""`recommender simulate` on a slice of MovieLens 100K: the live experiment goes through the service's own
experiment, served-list log, attribution and report, and the replayed experiments are counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from recommender.evaluation.data import load_dataset
from recommender.evaluation.simulate import SimulationConfig, run_simulation
from tests.recommender.evaluation.test_run_evaluation import quick_settings, small_movielens  # noqa: F401


@pytest.mark.slow  # trains on 120 users, then replays (about 20 s)
def test_a_simulation_runs_one_experiment_live_and_replays_the_rest(
    small_movielens: Path,  # noqa: F811
    tmp_path: Path,
    embedder,
) -> None:
    config = SimulationConfig(settings=quick_settings(tmp_path), experiments=10, max_users=80)
    result = run_simulation(config, load_dataset(small_movielens), embedder)
    live = result.live_report
    assert result.users == 80 and sum(arm.lists for arm in live.arms) == 80
    assert [arm.arm for arm in live.arms] == ["control", "popular"] and live.arms[0].difference is None
    # Every click and purchase the shoppers made went through POST-/events-style attribution, by id.
    actions = sum(arm.clicks + arm.conversions for arm in live.arms)
    assert live.attribution == ({"explicit": actions} if actions else {})
    assert set(result.offline_ndcg_at_10) == {"served", "popular"}
    assert result.aa_runs == result.ab_runs == 10
    assert 0.0 <= result.aa_false_positive_rate <= 1.0 and 0.0 <= result.ab_detection_rate <= 1.0


@pytest.mark.slow  # one short evaluation (about 15 s)
def test_eval_prices_merchandising_rules_on_the_served_lists(
    small_movielens: Path,  # noqa: F811
    tmp_path: Path,
    embedder,
) -> None:
    import json

    from recommender.evaluation.run import EvaluationConfig, run_evaluation
    from recommender.pipeline.merchandising import MerchRule, RuleAction

    # Block the most watched film (Star Wars, item 50): it is in many served lists.
    config = EvaluationConfig(
        data_path=small_movielens,
        out_dir=tmp_path / "out",
        settings=quick_settings(tmp_path),
        variants=["served"],
        cold_item_share=0.0,
        rules=[MerchRule(action=RuleAction.BLOCK, product_id="50", placement="home")],
    )
    result = run_evaluation(config, lambda: embedder)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert set(metrics) == {"served", "served+rules"}
    assert metrics["served+rules"]["users"] == metrics["served"]["users"] == 120
    # The film was in served top-10s; blocked, it left them, and the lists exposed less popular films
    # (coverage may stay the same when its replacements are already shown elsewhere).
    assert any("50" in items[:10] for items in result.lists.values())
    popularity = "popularity_percentile@10"
    assert metrics["served+rules"][popularity] < metrics["served"][popularity]
