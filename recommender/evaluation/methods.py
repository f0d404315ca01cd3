"""The methods compared: each turns a split into scores [users, items + 1] for validation or test.

Index 0 of every score row is padding. Scores need not be comparable across methods; only the order
within a row matters, except for the hybrid, which normalises what it fuses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from recommender.embedding import Embedder
from recommender.evaluation.data import ItemInfo
from recommender.evaluation.split import Split
from recommender.sequence.model import ModelConfig, Objective, SequenceModel
from recommender.sequence.training import TrainConfig, TrainResult, next_item_scores, train_sequence_model


class Phase(StrEnum):
    VALID = "valid"
    TEST = "test"


@dataclass
class EvalContext:
    split: Split
    items: dict[str, ItemInfo]
    embedder_factory: Callable[[], Embedder]
    model_config: dict = field(default_factory=dict)
    train_config: TrainConfig = field(default_factory=TrainConfig)
    trained: dict[str, TrainResult] = field(default_factory=dict)
    on_epoch: Callable[[str, int, int], None] | None = None  # (model, epoch, most epochs), for progress bars
    hybrid_test_scores: np.ndarray | None = None
    _item_vectors: np.ndarray | None = None

    @property
    def users(self) -> list[int]:
        return sorted(self.split.train)

    def histories(self, phase: Phase) -> list[list[int]]:
        if phase is Phase.VALID:
            return [self.split.train[user] for user in self.users]
        return [self.split.history_for_test(user) for user in self.users]

    def targets(self, phase: Phase) -> np.ndarray:
        source = self.split.valid if phase is Phase.VALID else self.split.test
        return np.array([source[user] for user in self.users])

    def popularity(self, phase: Phase) -> np.ndarray:
        counts = self.split.popularity(include_valid=phase is Phase.TEST)
        vector = np.zeros(self.split.item_count + 1, dtype=np.float64)
        for item, count in counts.items():
            vector[item] = count
        return vector

    def item_vectors(self) -> np.ndarray:
        """Text vectors of every item (row 0, padding, is zero), embedded once per run."""
        if self._item_vectors is None:
            texts = [
                self.items.get(item_id, ItemInfo(item_id, title=item_id)).text()
                for item_id in self.split.item_ids[1:]
            ]
            vectors = self.embedder_factory().encode_documents(texts)
            self._item_vectors = np.vstack([np.zeros((1, vectors.shape[1]), dtype=np.float32), vectors])
        return self._item_vectors


def popularity_scores(context: EvalContext, phase: Phase) -> np.ndarray:
    return np.tile(context.popularity(phase), (len(context.users), 1))


def item_knn_scores(context: EvalContext, phase: Phase, recent: int = 50) -> np.ndarray:
    """Cosine similarity of items' co-occurrence across users, summed over the user's recent items."""
    histories = context.histories(phase)
    size = context.split.item_count + 1
    matrix = np.zeros((len(histories), size), dtype=np.float32)
    for row, history in enumerate(histories):
        matrix[row, history] = 1.0
    co_occurrence = matrix.T @ matrix
    norms = np.sqrt(np.diag(co_occurrence)) + 1e-9
    similarity = co_occurrence / norms[:, None] / norms[None, :]
    np.fill_diagonal(similarity, 0.0)
    scores = np.zeros((len(histories), size), dtype=np.float32)
    for row, history in enumerate(histories):
        scores[row] = similarity[history[-recent:]].sum(axis=0)
    return scores


def text_profile_scores(
    context: EvalContext, phase: Phase, recent: int = 50, half_life: float = 20.0
) -> np.ndarray:
    """The service's text signal: cosine to a recency-weighted mean of the history's text vectors."""
    vectors = context.item_vectors()
    profiles = []
    for history in context.histories(phase):
        tail = history[-recent:]
        weights = 0.5 ** (np.arange(len(tail))[::-1] / half_life)
        profile = (weights[:, None] * vectors[tail]).sum(axis=0)
        profiles.append(profile / (np.linalg.norm(profile) + 1e-9))
    return np.asarray(profiles) @ vectors.T


def sequence_scores(objective: Objective) -> Callable[[EvalContext, Phase], np.ndarray]:
    def scores(context: EvalContext, phase: Phase) -> np.ndarray:
        model = trained_model(context, objective)
        return next_item_scores(model, context.histories(phase))

    scores.__name__ = f"{objective.value}_scores"
    return scores


def trained_model(context: EvalContext, objective: Objective) -> SequenceModel:
    """Train once per run (on training sequences, early-stopped on validation NDCG@10)."""
    if objective.value not in context.trained:
        from recommender.evaluation.runner import rank_and_measure

        config = ModelConfig(item_count=context.split.item_count, objective=objective, **context.model_config)
        sequences = [context.split.train[user] for user in context.users]

        def validate(model: SequenceModel) -> float:
            scores = next_item_scores(model, context.histories(Phase.VALID))
            return rank_and_measure(context, Phase.VALID, scores)["ndcg@10"]

        report = context.on_epoch

        def on_epoch(epoch: int) -> None:
            if report is not None:
                report(objective.value, epoch, context.train_config.epochs)

        context.trained[objective.value] = train_sequence_model(
            sequences, config, context.train_config, validate, on_epoch
        )
    return context.trained[objective.value].model


def metadata_prior_scores(context: EvalContext, phase: Phase) -> np.ndarray:
    """Item features -> popularity: a ridge regression from release year and genres to log popularity,
    fitted on items with events, applied to every item (so items without events get a prior too)."""
    features = _item_features(context)
    popularity = context.popularity(phase)
    warm = popularity > 0
    warm[0] = False
    target = np.log1p(popularity[warm])
    design = features[warm]
    regularised = design.T @ design + 1.0 * np.eye(design.shape[1])
    weights = np.linalg.solve(regularised, design.T @ target)
    prior = features @ weights
    prior[0] = -np.inf
    return np.tile(prior, (len(context.users), 1))


def _item_features(context: EvalContext) -> np.ndarray:
    infos = [context.items.get(item_id, ItemInfo(item_id)) for item_id in context.split.item_ids]
    genres = sorted({genre for info in infos for genre in info.genres})
    years = np.array([info.year or 0 for info in infos], dtype=np.float64)
    known_years = years[years > 0]
    reference = np.median(known_years) if len(known_years) else 0.0
    columns = [np.ones(len(infos)), (years > 0).astype(float)]
    for low, high in [(0, 1970), (1970, 1990), (1990, 1995), (1995, 1997), (1997, 3000)]:
        columns.append(((years >= low) & (years < high) & (years > 0)).astype(float))
    columns.append(np.where(years > 0, (years - reference) / 10.0, 0.0))
    for genre in genres:
        columns.append(np.array([genre in info.genres for info in infos], dtype=float))
    return np.column_stack(columns)
