"""Rankers: score every candidate of one request. Fusion needs no training; the learned one is LightGBM."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
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
# The cross-fitting folds: which users each fold held out, and each fold's trees (``ranker-fold-N.txt``).
RANKER_FOLDS_FILE = "ranker_folds.json"


def _fold_model_file(index: int) -> str:
    return f"ranker-fold-{index}.txt"


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
    """LightGBM trees over the feature columns they were trained with: one booster, or (``booster`` None)
    the mean of the gate's cross-fitted fold rankers, each of them judged on the users it never saw."""

    name = "learned"

    def __init__(
        self,
        booster: Any | None,
        columns: list[str],
        meta: dict[str, Any],
        compiled: Scorer | None = None,
        folds: Sequence[tuple[Iterable[str], Any] | tuple[Iterable[str], Any, Scorer | None]] = (),
    ) -> None:
        self.booster = booster  # None: the fold rankers' mean serves
        self.columns = columns
        self.meta = meta  # encoders, training figures, feature importance
        self._compiled = compiled  # the same trees as machine code (see ``compiled_trees``)
        # The gate's cross-fitted rankers, per fold the users it held out and its booster (None: not kept,
        # or not read yet).
        self._folds = [
            RankerFold.of(fold_booster, held_out, self, *fold_compiled)
            for held_out, fold_booster, *fold_compiled in folds
        ] or None
        self._folds_directory: Path | None = None  # where they are read from on first use
        if booster is None and not self._folds:
            raise ValueError("a learned ranker needs a booster or the fold rankers whose mean serves")

    @property
    def fold_mean(self) -> bool:
        """Whether the mean of the fold rankers serves (rather than one booster trained on every user)."""
        return self.booster is None

    @property
    def cross_fitted(self) -> bool:
        """Whether the rankers the gate fitted without each fold of users were kept (``held_out_for``)."""
        return self._folds is not None or self._folds_directory is not None

    def held_out_for(self, user_id: str) -> LearnedRanker | None:
        """The ranker the gate fitted without ``user_id``'s held-out next event (same columns, same
        encoders), so that a list it orders can be judged on that event; None where no fold held the user
        out (the ranker never trained on them) or the folds were not kept (a version saved before)."""
        for fold in self._loaded_folds():
            if user_id in fold.users:
                return fold.ranker
        return None

    @property
    def fold_rankers(self) -> list[LearnedRanker]:
        """The gate's cross-fitted rankers (empty where they were not kept)."""
        return [fold.ranker for fold in self._loaded_folds()]

    def _loaded_folds(self) -> list[RankerFold]:
        if self._folds is None and self._folds_directory is not None:
            self._folds = [
                RankerFold.of(booster, users, self)
                for users, booster, _ in _saved_folds(self._folds_directory, compile_trees=False)
            ]
        return self._folds or []

    @property
    def compiled(self) -> bool:
        if self.booster is None:
            return all(ranker.compiled for ranker in self.fold_rankers)
        return self._compiled is not None

    def score(self, frame: FeatureFrame) -> np.ndarray:
        if self.booster is None:
            return np.mean([ranker.score(frame) for ranker in self.fold_rankers], axis=0)
        index = [frame.columns.index(column) for column in self.columns]
        matrix = frame.matrix[:, index]
        if self._compiled is not None:
            return self._compiled(matrix)
        return np.asarray(self.booster.predict(matrix, num_threads=1), dtype=np.float64)

    def importance(self) -> dict[str, float]:
        """Each column's share of the trees' gain (over every fold ranker, where their mean serves)."""
        boosters: list[Any] = [self.booster] if self.booster is not None else self._fold_boosters()
        gains = np.sum([booster.feature_importance(importance_type="gain") for booster in boosters], axis=0)
        total = float(gains.sum()) or 1.0
        return {column: float(gain) / total for column, gain in zip(self.columns, gains, strict=True)}

    def _fold_boosters(self) -> list[Any]:
        return [fold.ranker.booster for fold in self._loaded_folds()]  # a fold ranker is one booster

    def save(self, directory: Path) -> None:
        if self.booster is not None:
            self.booster.save_model(str(directory / RANKER_MODEL_FILE))
        (directory / RANKER_META_FILE).write_text(json.dumps({"columns": self.columns, **self.meta}))
        folds = self._loaded_folds()
        for index, booster in enumerate(self._fold_boosters()):
            booster.save_model(str(directory / _fold_model_file(index)))
        if folds:
            held = [sorted(fold.users) for fold in folds]
            (directory / RANKER_FOLDS_FILE).write_text(json.dumps({"users": held}))

    @classmethod
    def load(cls, directory: Path) -> LearnedRanker | None:
        """The ranker saved in ``directory``: its booster (the fold rankers read when a gate first judges
        with them), or the fold rankers whose mean serves, read and compiled now; None where none was."""
        single = (directory / RANKER_MODEL_FILE).exists()
        if not single and not (directory / RANKER_FOLDS_FILE).exists():
            return None
        meta = json.loads((directory / RANKER_META_FILE).read_text())
        columns = meta.pop("columns")
        if not single:
            ranker = cls(None, columns, meta, folds=_saved_folds(directory))
            ranker._folds_directory = directory
            return ranker
        import lightgbm

        booster = lightgbm.Booster(model_file=str(directory / RANKER_MODEL_FILE))
        ranker = cls(booster, columns, meta, compiled_scorer(directory / RANKER_MODEL_FILE, booster))
        if (directory / RANKER_FOLDS_FILE).exists():
            ranker._folds_directory = directory  # read when a gate first judges with them, not to serve
        return ranker


def _saved_folds(directory: Path, compile_trees: bool = True) -> list[tuple[list[str], Any, Scorer | None]]:
    """The fold rankers saved in ``directory``: per fold the users it held out, its booster and (where
    they serve) its trees compiled to machine code."""
    import lightgbm

    folds = []
    for index, held in enumerate(json.loads((directory / RANKER_FOLDS_FILE).read_text())["users"]):
        model_file = directory / _fold_model_file(index)
        booster = lightgbm.Booster(model_file=str(model_file))
        folds.append((held, booster, compiled_scorer(model_file, booster) if compile_trees else None))
    return folds


@dataclass(frozen=True)
class RankerFold:
    """One fold of the gate's cross-fitting: the users it held out and the ranker fitted without them."""

    users: frozenset[str]
    ranker: LearnedRanker

    @classmethod
    def of(
        cls, booster: Any, users: Iterable[str], published: LearnedRanker, compiled: Scorer | None = None
    ) -> RankerFold:
        return cls(frozenset(users), LearnedRanker(booster, published.columns, published.meta, compiled))
