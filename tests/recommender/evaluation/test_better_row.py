"""The evaluation says when a row beats the served configuration, and runs the rows a shop needs by
default."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from cli.main import _variants
from recommender.evaluation.decisions import print_decisions, stage_decisions
from recommender.evaluation.run import EvaluationConfig, _print_better_rows, rank_served
from recommender.pipeline.variants import DEFAULT_VARIANTS, VARIANTS


def test_a_row_that_beats_served_is_named_and_served_s_rank_recorded() -> None:
    main = {
        "served": {"ndcg@10": 0.0695, "recall@10": 0.1326},
        "fusion": {"ndcg@10": 0.0719, "recall@10": 0.1431},
        "collab": {"ndcg@10": 0.0612, "recall@10": 0.1162},
    }
    output = io.StringIO()
    _print_better_rows(rank_served(main), main, Console(file=output, width=200))
    assert "not the best row on ndcg@10: fusion 0.0719 against served 0.0695" in output.getvalue()
    assert main["served"]["served_rank_ndcg@10"] == 2.0 and main["served"]["served_rank_recall@10"] == 2.0
    main["served"].update({"ndcg@10": 0.08, "recall@10": 0.15})
    # Rows of a sample of the users (the LLM re-rank's) are measured on other users: not comparable.
    main["served@sample"] = {"ndcg@10": 0.1270, "recall@10": 0.2150}
    main["served+llm@sample"] = {"ndcg@10": 0.1267, "recall@10": 0.2150}
    quiet = io.StringIO()
    _print_better_rows(rank_served(main), main, Console(file=quiet, width=200))
    assert quiet.getvalue() == "" and main["served"]["served_rank_ndcg@10"] == 1.0


def test_the_default_rows_are_served_fusion_and_each_source() -> None:
    assert EvaluationConfig(data_path=Path("data"), out_dir=Path("out")).variants == list(DEFAULT_VARIANTS)
    assert _variants(None) == list(DEFAULT_VARIANTS) and _variants("all") == list(VARIANTS)
    assert _variants("served, fusion") == ["served", "fusion"]
    assert set(DEFAULT_VARIANTS) <= set(VARIANTS) and len(DEFAULT_VARIANTS) < len(VARIANTS)


def test_each_gated_stage_reports_what_validation_decided_and_what_the_test_split_says() -> None:
    trainings = [
        {
            "ranker_gate": {"ranker_ndcg_at_10": 0.30, "fusion_ndcg_at_10": 0.28, "published": True},
            "stage_gate": {
                "new_product_places": {"with_ndcg_at_10": 0.20, "without_ndcg_at_10": 0.25, "served": False},
            },
        }
    ]
    # Per user's NDCG@10 on the test split, the same 200 users in each row.
    served = [1.0, 0.5, 0.0, 0.0] * 50
    user_ndcgs = {
        "served": served,
        "fusion": [1.0, 1.0, 0.0, 0.0] * 50,  # above served on every second user: far beyond noise
        "served-no-new-slot": served,
        "served-ungated": [1.0, 0.5, 0.0, 0.0] * 49 + [0.0] * 4,  # lower on 2 users of 200: within noise
    }
    decisions = {decision["stage"]: decision for decision in stage_decisions(trainings, user_ndcgs)}
    assert set(decisions) == {"ranker", "new_product_places"}  # diversity was not switched on
    ranker = decisions["ranker"]
    assert ranker["serves"] and ranker["validation"] == [
        {
            "with": 0.30,
            "without": 0.28,
            "serves": True,
            "ranking": "learned",
            "runner_up": "fusion",
            "runner_up_ndcg_at_10": 0.28,
            "judged_with": 0.30,
        }
    ]
    # Validation published the ranker; the test split says fusion is better, beyond noise.
    assert ranker["test"]["with_variant"] == "served" and ranker["test"]["without_variant"] == "fusion"
    assert ranker["test"]["users"] == 200 and ranker["test"]["difference"] == -0.125
    assert ranker["test"]["lowers_test"] and ranker["test"]["agrees"] is False
    places = decisions["new_product_places"]
    # Switched off: served is the row without the places, the ungated row the one with them. The test
    # split finds them lower by 0.0075, within noise: the gate's rule would have let them serve there.
    assert not places["serves"]
    assert (places["test"]["with_variant"], places["test"]["without_variant"]) == ("served-ungated", "served")
    assert places["test"]["difference"] == pytest.approx(-0.0075)
    assert not places["test"]["lowers_test"] and places["test"]["agrees"] is False
    output = io.StringIO()
    print_decisions(list(decisions.values()), Console(file=output, width=300))
    text = output.getvalue()
    assert "ranker: validation NDCG@10 0.3000 with (learned), 0.2800 without -> serves in 1 of 1" in text
    assert "0.3750 served, 0.5000 fusion, difference -0.1250 ± 0.0153 on 200 users (disagrees)" in text
    assert "new product places: validation NDCG@10 0.2000 with, 0.2500 without -> serves in 0 of 1" in text


def test_a_difference_within_noise_agrees_with_a_stage_that_serves() -> None:
    """A stage that validation let serve, a little lower on the test split: the sign alone would say
    "disagrees"; the gate's own rule says the gap is noise."""
    trainings = [
        {"stage_gate": {"diversity": {"with_ndcg_at_10": 0.2, "without_ndcg_at_10": 0.2, "served": True}}}
    ]
    without = [1.0, 0.5, 0.0, 0.0] * 50
    user_ndcgs = {"served": [0.0] + without[1:], "served-no-diversity": without}
    (diversity,) = stage_decisions(trainings, user_ndcgs)
    assert diversity["test"]["difference"] == pytest.approx(-0.005)
    assert not diversity["test"]["lowers_test"] and diversity["test"]["agrees"] is True


def test_a_rejected_ranker_has_no_test_row() -> None:
    trainings = [{"ranker_gate": {"ranker_ndcg_at_10": 0.2, "fusion_ndcg_at_10": 0.3, "published": False}}]
    user_ndcgs = {"served": [0.1, 0.2], "fusion": [0.1, 0.2]}
    (ranker,) = stage_decisions(trainings, user_ndcgs)
    assert not ranker["serves"] and ranker["test"] is None


def test_a_sources_own_order_that_serves_is_judged_against_fusion_and_one_rejected_by_its_row() -> None:
    """The gate chose the collab source's own order: served (which ranks by it) against fusion. Where
    fusion won instead, the best rejected ranking is a source: that source's row is its test side."""
    gate = {
        "ranker_ndcg_at_10": 0.2,
        "fusion_ndcg_at_10": 0.25,
        "sources": {"collab": 0.3, "text": 0.01},
        "serves": "collab",
        "published": False,
    }
    served = [1.0, 0.5, 0.0, 0.0] * 50
    user_ndcgs = {"served": served, "fusion": [0.5] * 200, "collab": served}
    (chosen,) = stage_decisions([{"ranker_gate": gate}], user_ndcgs)
    assert chosen["serves"] and chosen["validation"][0] == {
        "with": 0.3,
        "without": 0.25,
        "serves": True,
        "ranking": "collab",
        "runner_up": "fusion",
        "runner_up_ndcg_at_10": 0.25,
        "judged_with": 0.3,
    }
    assert chosen["test"]["with_variant"] == "served" and chosen["test"]["without_variant"] == "fusion"
    assert chosen["test"]["difference"] == pytest.approx(-0.125) and chosen["test"]["agrees"] is False
    rejected = {**gate, "sources": {"collab": 0.24, "text": 0.01}, "serves": "fusion"}
    # Fusion serves, so the served row is fusion's.
    fusion_served = {"served": [0.5] * 200, "fusion": [0.5] * 200, "collab": served}
    (fusion,) = stage_decisions([{"ranker_gate": rejected}], fusion_served)
    assert not fusion["serves"] and fusion["validation"][0]["ranking"] == "collab"
    assert fusion["test"]["with_variant"] == "collab" and fusion["test"]["without_variant"] == "served"
    assert fusion["test"]["agrees"] is True  # collab's row is lower than fusion's beyond noise


def test_a_ranking_that_beat_a_sources_own_order_by_a_hair_is_checked_against_that_order() -> None:
    """The learned ranker served, and the runner-up on validation was the collab source's own order (not
    fusion): the test split compares served with collab's row too, so a choice made inside the noise shows."""
    gate = {
        "ranker_ndcg_at_10": 0.1653,
        "fusion_ndcg_at_10": 0.1560,
        "sources": {"collab": 0.1625, "text": 0.0061},
        "serves": "learned",
        "published": True,
    }
    collab = [1.0, 1.0, 0.0, 0.0] * 50
    served = [1.0, 0.5, 0.0, 0.0] * 50  # below collab's row on every second user: beyond noise
    user_ndcgs = {"served": served, "fusion": [0.5, 0.5, 0.0, 0.0] * 50, "collab": collab}
    ranker, runner_up = stage_decisions([{"ranker_gate": gate}], user_ndcgs)
    assert ranker["stage"] == "ranker" and ranker["test"]["agrees"] is True
    assert runner_up["stage"] == "ranking_over_collab" and runner_up["serves"]
    assert runner_up["validation"] == [
        {"with": 0.1653, "without": 0.1625, "serves": True, "ranking": "learned"}
    ]
    assert (runner_up["test"]["with_variant"], runner_up["test"]["without_variant"]) == ("served", "collab")
    assert runner_up["test"]["difference"] == pytest.approx(-0.125) and runner_up["test"]["agrees"] is False
    output = io.StringIO()
    print_decisions([runner_up], Console(file=output, width=300))
    assert output.getvalue().startswith(
        "ranking over collab: validation NDCG@10 0.1653 with (learned), 0.1625 without -> serves in 1 of 1"
    )
    assert "0.3750 served, 0.5000 collab, difference -0.1250" in output.getvalue()
    assert "(disagrees)" in output.getvalue()
    # Where fusion was the runner-up, the ranker stage's own comparison is the whole story.
    closer = {**gate, "sources": {"collab": 0.10}}
    assert [decision["stage"] for decision in stage_decisions([{"ranker_gate": closer}], user_ndcgs)] == [
        "ranker"
    ]


def test_the_ranker_is_reported_against_fusion_on_everyone_and_against_a_source_on_the_judges() -> None:
    """The gate compares the learned ranker with fusion on every validation user and with a source's own
    order on the judging users only (``judged``): each decision row pairs figures from the same users."""
    gate = {
        "ranker_ndcg_at_10": 0.1620,  # every user, out of fold
        "fusion_ndcg_at_10": 0.1540,
        "judged": {"learned": 0.1610, "fusion": 0.1600},
        "sources": {"collab": 0.1605, "text": 0.0061},
        "serves": "learned",
        "published": True,
    }
    served = [1.0, 0.5, 0.0, 0.0] * 50
    user_ndcgs = {"served": served, "fusion": [0.5, 0.5, 0.0, 0.0] * 50, "collab": served}
    ranker, runner_up = stage_decisions([{"ranker_gate": gate}], user_ndcgs)
    assert (ranker["validation"][0]["with"], ranker["validation"][0]["without"]) == (0.1620, 0.1540)
    assert runner_up["stage"] == "ranking_over_collab"
    assert (runner_up["validation"][0]["with"], runner_up["validation"][0]["without"]) == (0.1610, 0.1605)
