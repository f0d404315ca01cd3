"""Rankers: score every candidate of one request. Fusion needs no training; the learned one is LightGBM."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from recommender.pipeline.candidates import Candidate
from recommender.pipeline.compiled_trees import Scorer, compiled_scorer

# Reciprocal-rank fusion's usual constant: ranks below it count nearly alike.
RRF_OFFSET = 60
RANKER_MODEL_FILE = "ranker.txt"
RANKER_META_FILE = "ranker.json"


@dataclass
class FeatureFrame:
    """One row per candidate; the column names are part of a trained ranker's version."""

    columns: list[str]
    matrix: np.ndarray  # [candidates, columns], NaN = missing
    candidates: list[Candidate]

    def column(self, name: str) -> np.ndarray:
        return self.matrix[:, self.columns.index(name)]


class Ranker(Protocol):
    name: str

    def score(self, frame: FeatureFrame) -> np.ndarray: ...


class FusionRanker:
    """Weighted reciprocal-rank fusion of the sources' lists."""

    name = "fusion"

    def __init__(self, weights: dict[str, float]) -> None:
        self.weights = weights

    def contribution(self, source: str, rank: int) -> float:
        """One source's share of a candidate's score, for the candidate at ``rank`` in its list."""
        return self.weights.get(source, 0.0) / (RRF_OFFSET + rank + 1)

    def score(self, frame: FeatureFrame) -> np.ndarray:
        return np.asarray(
            [
                sum(self.contribution(source, rank) for source, rank in candidate.ranks.items())
                for candidate in frame.candidates
            ],
            dtype=np.float64,
        )


class SourceRanker:
    """One source's own order (what training's gate serves when that source alone beats fusion and the
    learned ranker on the shop's validation users); rank fusion orders the candidates it did not return."""

    # Above any fusion score (a weight over the offset and rank), whatever the source's depth.
    OWN_ORDER = 1e6

    def __init__(self, source: str, weights: dict[str, float]) -> None:
        self.source = source
        self.name = source
        self._fusion = FusionRanker(weights)

    def score(self, frame: FeatureFrame) -> np.ndarray:
        fused = self._fusion.score(frame)
        own = [candidate.ranks.get(self.source) for candidate in frame.candidates]
        return np.asarray(
            [self.OWN_ORDER - rank if rank is not None else fused[index] for index, rank in enumerate(own)],
            dtype=np.float64,
        )


class LearnedRanker:
    """A LightGBM LambdaRank model over the feature columns it was trained with."""

    name = "learned"

    def __init__(
        self, booster: Any, columns: list[str], meta: dict[str, Any], compiled: Scorer | None = None
    ) -> None:
        self.booster = booster
        self.columns = columns
        self.meta = meta  # encoders, training figures, feature importance
        self._compiled = compiled  # the same trees as machine code (see ``compiled_trees``)

    @property
    def compiled(self) -> bool:
        return self._compiled is not None

    def score(self, frame: FeatureFrame) -> np.ndarray:
        index = [frame.columns.index(column) for column in self.columns]
        matrix = frame.matrix[:, index]
        if self._compiled is not None:
            return self._compiled(matrix)
        return np.asarray(self.booster.predict(matrix, num_threads=1), dtype=np.float64)

    def importance(self) -> dict[str, float]:
        gains = self.booster.feature_importance(importance_type="gain")
        total = float(gains.sum()) or 1.0
        return {column: float(gain) / total for column, gain in zip(self.columns, gains, strict=True)}

    def save(self, directory: Path) -> None:
        self.booster.save_model(str(directory / RANKER_MODEL_FILE))
        (directory / RANKER_META_FILE).write_text(json.dumps({"columns": self.columns, **self.meta}))

    @classmethod
    def load(cls, directory: Path) -> LearnedRanker | None:
        if not (directory / RANKER_MODEL_FILE).exists():
            return None
        import lightgbm

        meta = json.loads((directory / RANKER_META_FILE).read_text())
        columns = meta.pop("columns")
        booster = lightgbm.Booster(model_file=str(directory / RANKER_MODEL_FILE))
        return cls(booster, columns, meta, compiled_scorer(directory / RANKER_MODEL_FILE, booster))
