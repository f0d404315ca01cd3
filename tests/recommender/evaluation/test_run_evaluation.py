"""End to end on a slice of MovieLens 100K (read from ../shared/data, never copied): the report files,
their shape, and that a fixed seed gives the same numbers twice."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from recommender.embedding import SentenceTransformerEmbedder
from recommender.evaluation.run import EvaluationConfig, run_evaluation
from recommender.sequence.training import TrainConfig

DATA = (
    Path(os.environ.get("RECO_TEST_DATA", Path(__file__).resolve().parents[4] / "shared" / "data"))
    / "ml-100k"
)


class CachingEmbedder:
    """The real model, remembering texts it has already embedded (the runs below embed the same items)."""

    def __init__(self, inner: SentenceTransformerEmbedder) -> None:
        self.model_name, self.dimension, self._inner, self._cache = (
            inner.model_name,
            inner.dimension,
            inner,
            {},
        )

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        missing = [text for text in dict.fromkeys(texts) if text not in self._cache]
        for text, vector in zip(missing, self._inner.encode_documents(missing), strict=True):
            self._cache[text] = vector
        return np.stack([self._cache[text] for text in texts])

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._inner.encode_queries(texts)


@pytest.fixture(scope="module")
def small_movielens(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interactions of the first 120 users, as RecBole atomic files in a temporary folder."""
    if not DATA.exists():
        # CI and development machines have it beside the repository; a user's clone may not.
        message = f"MovieLens 100K is not at {DATA} (set RECO_TEST_DATA to its folder)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI has it beside the repository: missing there is a failure
        pytest.skip(message)
    target = tmp_path_factory.mktemp("ml-small") / "ml-small"
    target.mkdir()
    lines = (DATA / "ml-100k.inter").read_text().splitlines()
    keep = {str(user) for user in range(1, 121)}
    (target / "ml-small.inter").write_text(
        "\n".join([lines[0], *(line for line in lines[1:] if line.split("\t")[0] in keep)]) + "\n"
    )
    (target / "ml-small.item").write_text((DATA / "ml-100k.item").read_text())
    return target


def evaluate(data: Path, out: Path, embedder) -> dict:
    config = EvaluationConfig(
        data_path=data,
        out_dir=out,
        methods=["popularity", "itemknn", "text", "sasrec", "hybrid", "served"],
        model={"max_length": 20, "hidden": 32},
        training=TrainConfig(epochs=4, validate_every=2, seed=7),
        cold_item_share=0.1,
    )
    return run_evaluation(config, lambda: embedder)


def test_report_files_and_same_numbers_with_the_same_seed(
    small_movielens: Path, tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    cached = CachingEmbedder(embedder)
    first = evaluate(small_movielens, tmp_path / "a", cached)
    second = evaluate(small_movielens, tmp_path / "b", cached)
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert set(metrics) == {"popularity", "itemknn", "text", "sasrec", "hybrid", "served"}
    assert {"ndcg@5", "ndcg@10", "ndcg@20", "recall@10", "mrr@10", "coverage@10"} <= set(metrics["sasrec"])
    assert all(key == key.lower() for key in metrics["hybrid"])
    assert (tmp_path / "a" / "metrics.png").read_bytes()[:4] == b"\x89PNG"
    assert set(first.cold_start) == {
        "popularity",
        "text",
        "features",
        "sequence",
        "hybrid",
        "hybrid+features",
    }
    assert first.cold_start["popularity"]["recall@20"] == 0.0  # cold items have no events to count
    for method in metrics:
        for name in ("ndcg@10", "recall@10"):
            assert first.main[method][name] == second.main[method][name], (method, name)
    assert first.cold_start["hybrid+features"]["ndcg@10"] == second.cold_start["hybrid+features"]["ndcg@10"]
    # Some signal even after four epochs on 120 users.
    assert metrics["itemknn"]["recall@20"] > 0


def test_unknown_method_is_refused(small_movielens: Path, tmp_path: Path) -> None:
    from recommender.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="bogus"):
        run_evaluation(EvaluationConfig(small_movielens, tmp_path, methods=["bogus"]), lambda: None)


def test_llm_rerank_effect_on_a_sample(small_movielens: Path, tmp_path: Path, embedder) -> None:
    from recommender.llm.chat import default_gguf_path
    from recommender.settings import LLMSettings

    config = EvaluationConfig(
        data_path=small_movielens,
        out_dir=tmp_path,
        methods=["sasrec", "hybrid"],
        model={"max_length": 20, "hidden": 32},
        training=TrainConfig(epochs=2, validate_every=1, seed=7),
        cold_item_share=0.0,
        llm_sample=4,
        llm=LLMSettings(backend="local", model=str(default_gguf_path()), timeout_seconds=60.0),
    )
    result = run_evaluation(config, lambda: CachingEmbedder(embedder))
    assert result.main["hybrid@sample"]["users"] == 4 == result.main["hybrid+llm@sample"]["users"]
    assert result.main["hybrid+llm@sample"]["fell_back_share"] == 0.0
    assert "ndcg@10" in json.loads((tmp_path / "metrics.json").read_text())["hybrid+llm@sample"]
