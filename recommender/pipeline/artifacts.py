"""What training publishes beside the sequence model, in the same version folder and switched with it:
co-occurrence neighbours, the item tower's predictions and the learned ranker."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recommender.pipeline.cooccurrence import CoOccurrence
from recommender.pipeline.item_tower import CHOICE_FIELDS, RIDGE, ItemTowerOutput
from recommender.pipeline.rankers import LearnedRanker

COOCCURRENCE_FILE = "cooccurrence.npz"
ITEM_TOWER_FILE = "item_tower.npz"


@dataclass
class TrainedParts:
    cooccurrence: CoOccurrence | None = None
    tower: ItemTowerOutput | None = None
    ranker: LearnedRanker | None = None
    ranker_note: str = "no learned ranker trained"
    # The ranker's gate: the learned ranker's, rank fusion's and each source's validation NDCG@10, and
    # which of them serves.
    ranker_validation: dict = field(default_factory=dict)
    # The optional stages' gate (see recommender.training.stages): per stage, its validation figures and
    # whether it serves. A stage absent here serves as configured.
    stage_gate: dict = field(default_factory=dict)
    _prior: dict[str, float] = field(default_factory=dict, repr=False)
    _cold_vectors: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    cold_priors: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)  # of tower.cold_ids

    def __post_init__(self) -> None:
        if self.tower is not None:
            self._prior = dict(zip(self.tower.product_ids, self.tower.popularity_prior.tolist(), strict=True))
            self._cold_vectors = dict(zip(self.tower.cold_ids, self.tower.cold_vectors, strict=True))
            self.cold_priors = np.asarray([self.popularity_prior(pid) for pid in self.tower.cold_ids])

    @property
    def served_source(self) -> str | None:
        """The source whose own order the ranker's gate chose over fusion and the learned ranker."""
        serves = self.ranker_validation.get("serves")
        return serves if serves not in (None, "learned", "fusion") else None

    def serves(self, stage: str) -> bool:
        """Whether the stage gate let this optional stage serve (``stage_gate`` off: the caller's call)."""
        return bool(self.stage_gate.get(stage, {}).get("served", True))

    def popularity_prior(self, product_id: str) -> float:
        return self._prior.get(product_id, float("nan"))

    def predicted_vector(self, product_id: str) -> np.ndarray | None:
        return self._cold_vectors.get(product_id)

    def save(self, directory: Path) -> None:
        if self.cooccurrence is not None:
            self.cooccurrence.save(directory / COOCCURRENCE_FILE)
        if self.tower is not None:
            arrays: dict[str, np.ndarray] = {
                "product_ids": np.asarray(self.tower.product_ids),
                "popularity_prior": self.tower.popularity_prior,
                "cold_ids": np.asarray(self.tower.cold_ids),
                "cold_vectors": self.tower.cold_vectors,
                "reference_states": _or_empty(self.tower.reference_states),
                "reference_profiles": _or_empty(self.tower.reference_profiles),
            }
            for name in CHOICE_FIELDS:
                arrays[name] = np.asarray(getattr(self.tower, name), dtype=np.float64)
            np.savez_compressed(directory / ITEM_TOWER_FILE, **arrays)  # type: ignore[arg-type]  # the stub reads **arrays as allow_pickle
        if self.ranker is not None:
            self.ranker.save(directory)
        (directory / "ranker_note.json").write_text(
            json.dumps(
                {"note": self.ranker_note, "validation": self.ranker_validation, "stages": self.stage_gate}
            )
        )

    @classmethod
    def load(cls, directory: Path) -> TrainedParts:
        cooccurrence = (
            CoOccurrence.load(directory / COOCCURRENCE_FILE)
            if (directory / COOCCURRENCE_FILE).exists()
            else None
        )
        tower = None
        if (directory / ITEM_TOWER_FILE).exists():
            with np.load(directory / ITEM_TOWER_FILE) as data:
                tower = ItemTowerOutput(
                    [str(pid) for pid in data["product_ids"]],
                    data["popularity_prior"],
                    [str(pid) for pid in data["cold_ids"]],
                    data["cold_vectors"],
                    reference_states=_saved_matrix(data, "reference_states"),
                    reference_profiles=_saved_matrix(data, "reference_profiles"),
                )
                for name in CHOICE_FIELDS:  # versions saved before a figure was kept: no weight, unmeasured
                    setattr(
                        tower, name, float(data[name]) if name in data.files else _UNSAVED.get(name, math.nan)
                    )
        note_file = directory / "ranker_note.json"
        saved = json.loads(note_file.read_text()) if note_file.exists() else {}
        note = saved.get("note", "no learned ranker trained")
        return cls(
            cooccurrence,
            tower,
            LearnedRanker.load(directory),
            note,
            saved.get("validation", {}),
            saved.get("stages", {}),
        )


_UNSAVED = {"prior_weight": 0.0, "text_weight": 0.0, "ridge": RIDGE}


def _saved_matrix(data: np.lib.npyio.NpzFile, name: str) -> np.ndarray | None:
    """Absent (a version saved before it was kept) or empty (nothing to keep): None."""
    if name not in data.files or data[name].size == 0:
        return None
    return np.asarray(data[name])


def _or_empty(matrix: np.ndarray | None) -> np.ndarray:
    return matrix if matrix is not None else np.zeros((0, 0), np.float32)
