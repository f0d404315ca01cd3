"""The evaluation says when a row beats the served configuration, and runs the rows a shop needs by
default."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from cli.main import _variants
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
    quiet = io.StringIO()
    _print_better_rows(rank_served(main), main, Console(file=quiet, width=200))
    assert quiet.getvalue() == "" and main["served"]["served_rank_ndcg@10"] == 1.0


def test_the_default_rows_are_served_fusion_and_each_source() -> None:
    assert EvaluationConfig(data_path=Path("data"), out_dir=Path("out")).variants == list(DEFAULT_VARIANTS)
    assert _variants(None) == list(DEFAULT_VARIANTS) and _variants("all") == list(VARIANTS)
    assert _variants("served, fusion") == ["served", "fusion"]
    assert set(DEFAULT_VARIANTS) <= set(VARIANTS) and len(DEFAULT_VARIANTS) < len(VARIANTS)
