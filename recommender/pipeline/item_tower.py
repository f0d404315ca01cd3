"""Content to collaborative space: a ridge map from a product's text vector and declared attributes to
its learned sequence-model vector and its log popularity, fitted on products with events.

It places products without events among the trained ones (the item tower of a two-tower model, here
linear), and gives every product a popularity prior from its content. The ridge strength and the prior's
weight in the new-arrivals score are chosen together on the training users' held-out next products; then
the weight of the product's text against the user's text profile (zero where it does not help them).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from recommender.pipeline.attributes import AttributeEncoder

RIDGE = 10.0  # the strength when nothing can be measured to choose one
# The candidates, the default first: it wins ties (and is kept when there is nothing to measure on).
RIDGES = (RIDGE, 31.6, 100.0, 3.16, 1.0, 0.316, 0.1)
FOLDS = 5  # products with events are predicted, for training, by a map fitted without them
REFERENCE_USERS = 500
TEXT_GAIN_ERRORS = 2.0  # the text weight serves where its cross-fitted gain exceeds this many standard errors


def content_matrix(text_vectors: np.ndarray, attributes: np.ndarray, categorical: list[int]) -> np.ndarray:
    """Text vector, standardised numeric attributes (missing -> 0 plus a flag), one-hot categories."""
    columns = [text_vectors.astype(np.float64), np.ones((len(text_vectors), 1))]
    for column in range(attributes.shape[1]):
        values = attributes[:, column]
        if column in categorical:
            codes = values.astype(np.int64)
            top = min(int(codes.max(initial=-1)) + 1, 64)
            columns.append(np.stack([codes == code for code in range(top)], axis=1).astype(np.float64))
            continue
        known = np.isfinite(values)
        mean = values[known].mean() if known.any() else 0.0
        spread = values[known].std() + 1e-9 if known.any() else 1.0
        columns.append(np.where(known, (values - mean) / spread, 0.0)[:, None])
        columns.append((~known).astype(np.float64)[:, None])
    return np.hstack(columns)


@dataclass
class ItemTowerOutput:
    product_ids: list[str]
    popularity_prior: np.ndarray  # [N] predicted log(1 + users), every product
    cold_ids: list[str]  # products without a learned vector
    cold_vectors: np.ndarray  # [M, hidden] their predicted vectors
    # The new-arrivals score: predicted vector . user state + prior_weight * popularity prior
    # + text_weight * the product's text vector . the user's text profile.
    prior_weight: float = 0.0
    text_weight: float = 0.0
    ridge: float = RIDGE
    selection_mrr: float = float("nan")  # the held-out next products' mean reciprocal rank it was chosen by
    # Some training users' sequence-model states: the scale a user's best new-arrivals score is read on
    # when deciding which lists get the new-product places (recommender.pipeline.exposure).
    reference_states: np.ndarray | None = None
    reference_profiles: np.ndarray | None = None  # the same users' text profiles (zeros: none)
    selection_mrr_without_text: float = float("nan")  # the same MRR with text_weight 0
    # The text's gain in each training user's reciprocal rank, its weights fitted on the other half of
    # the users, and that mean's standard error: the weight serves only where the gain is beyond noise.
    text_gain: float = float("nan")
    text_gain_se: float = float("nan")
    # Training only: every product as it would be predicted without events (out of fold for the others),
    # and its text vector (which a new product has from the start).
    predicted: dict[str, np.ndarray] | None = None
    predicted_prior: dict[str, float] | None = None
    text: dict[str, np.ndarray] | None = None

    def summary(self) -> dict[str, float | None]:
        """What training chose and why, as the report and GET /models/sequence show it (None: not
        measured, e.g. the text's gain where no user had a text profile)."""
        return {
            **{name: _measured(getattr(self, name)) for name in CHOICE_FIELDS},
            "products_without_events": len(self.cold_ids),
        }


# The choice's figures, saved with the tower (see recommender.pipeline.artifacts).
CHOICE_FIELDS = (
    "ridge",
    "prior_weight",
    "text_weight",
    "selection_mrr",
    "selection_mrr_without_text",
    "text_gain",
    "text_gain_se",
)


def _measured(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


@dataclass
class NextProducts:
    """Training users' sequence-model states before their held-out next event, that event's product and
    the products they had before (left out of their ranking, as in serving), and their text profiles then
    (a row of zeros for a user without one; None: not read)."""

    states: np.ndarray  # [users, hidden]
    labels: list[str]
    seen: list[set[str]]
    profiles: np.ndarray | None = None  # [users, text dimension]


def fit_and_predict(
    product_ids: list[str],
    text_vectors: np.ndarray,
    payloads: list[dict],
    encoder: AttributeEncoder,
    learned: dict[str, np.ndarray],
    log_users: dict[str, float],
    ridges: Sequence[float] = (RIDGE,),
) -> Iterator[ItemTowerOutput]:
    """The tower fitted with each ridge strength in turn (the content matrix is built once)."""
    attributes = np.asarray([encoder.encode(payload) for payload in payloads], dtype=np.float64).reshape(
        len(payloads), len(encoder.names)
    )
    categorical = [index for index, name in enumerate(encoder.names) if name in encoder.vocabularies]
    design = content_matrix(text_vectors, attributes, categorical)
    warm = np.array([pid in learned for pid in product_ids])
    hidden = len(next(iter(learned.values()))) if learned else 0
    if warm.sum() < 10 or hidden == 0:
        yield ItemTowerOutput(product_ids, np.zeros(len(product_ids)), [], np.zeros((0, hidden)))
        return
    targets = np.hstack(
        [
            np.asarray([learned[pid] for pid in np.asarray(product_ids)[warm]], dtype=np.float64),
            np.asarray([[log_users.get(pid, 0.0)] for pid in np.asarray(product_ids)[warm]]),
        ]
    )
    x = design[warm]
    systems = RidgeSystems(x, targets)
    cold = ~warm
    cold_ids = [pid for pid, is_cold in zip(product_ids, cold, strict=True) if is_cold]
    text = dict(zip(product_ids, np.asarray(text_vectors, dtype=np.float32), strict=True))
    for ridge in ridges:
        predicted = design @ systems.coefficients(ridge)
        as_if_new = predicted.copy()
        as_if_new[warm] = systems.out_of_fold(ridge)
        yield ItemTowerOutput(
            product_ids,
            predicted[:, -1].astype(np.float32),
            cold_ids,
            predicted[cold, :hidden].astype(np.float32),
            ridge=ridge,
            predicted=dict(zip(product_ids, as_if_new[:, :hidden].astype(np.float32), strict=True)),
            predicted_prior=dict(zip(product_ids, as_if_new[:, -1].tolist(), strict=True)),
            text=text,
        )


def choose_tower(
    towers: Iterable[ItemTowerOutput], next_products: NextProducts, rng_seed: int, fit_text: bool = True
) -> ItemTowerOutput:
    """Of towers fitted with several ridge strengths (``fit_and_predict``), the one whose new-arrivals
    score, with its best prior weight, ranks the training users' held-out next products highest (mean
    reciprocal rank), every product scored through predictions fitted without it (out of fold): the
    choice is measured on what the tower did not see. With ``fit_text``, the text's weight is fitted
    after, and kept only where it raises the users' reciprocal ranks by more than TEXT_GAIN_ERRORS
    standard errors, each user measured with weights fitted on the other half (``text_gain``)."""
    best: tuple[ItemTowerOutput, NewArrivalsRanking | None] | None = None
    for tower in towers:
        ranking = NewArrivalsRanking.of(next_products, tower, np.random.default_rng(rng_seed))
        weight, mrr = ranking.best_prior_weight(0.0) if ranking is not None else (0.0, -1.0)
        if best is None or mrr > best[0].selection_mrr + 1e-9:
            tower.prior_weight, tower.selection_mrr = weight, mrr
            best = (tower, ranking)
    assert best is not None
    chosen, ranking = best
    chosen.selection_mrr_without_text = chosen.selection_mrr
    text = ranking.with_text(next_products, chosen) if ranking is not None and fit_text else None
    if text is not None:
        chosen.text_gain, chosen.text_gain_se = text.text_gain(rng_seed)
        if chosen.text_gain > TEXT_GAIN_ERRORS * chosen.text_gain_se:  # else the weights are not fitted
            prior, text_weight, mrr = text.best_weights(chosen.prior_weight)
            if mrr > chosen.selection_mrr + 1e-9:
                chosen.prior_weight, chosen.text_weight, chosen.selection_mrr = prior, text_weight, mrr
    return chosen


def set_reference_users(
    tower: ItemTowerOutput, next_products: NextProducts, seed: int, count: int = REFERENCE_USERS
) -> None:
    """Up to ``count`` of the training users' states (and text profiles), drawn with the run's seed (None:
    no user had one)."""
    states = next_products.states
    if len(states) == 0:
        return
    rows = np.arange(len(states))
    if len(states) > count:
        rows = np.sort(np.random.default_rng(seed).choice(len(states), count, replace=False))
    tower.reference_states = states[rows].astype(np.float32)
    if next_products.profiles is not None and tower.text_weight:
        tower.reference_profiles = next_products.profiles[rows].astype(np.float32)


class RidgeSystems:
    """The normal equations of the map, whole and without each fold, built once and solved for any
    ridge strength (at 100,000 products the products' Gram matrix costs far more than a solve)."""

    def __init__(self, x: np.ndarray, targets: np.ndarray, folds: int = FOLDS) -> None:
        self._x = x
        self._fold_of = np.arange(len(x)) % folds
        self._folds = folds
        self._gram, self._cross = x.T @ x, x.T @ targets
        rows = [self._fold_of == fold for fold in range(folds)]
        self._fold_grams = [x[held].T @ x[held] for held in rows]
        self._fold_crosses = [x[held].T @ targets[held] for held in rows]
        self._shape = targets.shape

    def coefficients(self, ridge: float) -> np.ndarray:
        return _solve(self._gram, self._cross, ridge)

    def out_of_fold(self, ridge: float) -> np.ndarray:
        """Each row predicted by the map fitted on the other folds: how the tower sees a product it has
        no events for, and what training should show the ranker and the prior's weight (an in-sample
        fit flatters the predicted vectors)."""
        result = np.empty(self._shape)
        for fold in range(self._folds):
            rows = self._fold_of == fold
            coefficients = _solve(
                self._gram - self._fold_grams[fold], self._cross - self._fold_crosses[fold], ridge
            )
            result[rows] = self._x[rows] @ coefficients
        return result


def _solve(gram: np.ndarray, cross: np.ndarray, ridge: float) -> np.ndarray:
    return np.linalg.solve(gram + ridge * np.eye(len(gram)), cross)


def fit_prior_weight(
    next_products: NextProducts, tower: ItemTowerOutput, rng: np.random.Generator, sample: int = 2000
) -> tuple[float, float]:
    """The weight of the popularity prior next to the predicted vector's score, chosen so that users'
    held-out next products rank highest (mean reciprocal rank) among products scored as if none had
    events; the user's own products are left out as in serving. Returns (weight, that MRR); (0, -1)
    when nothing can be measured."""
    ranking = NewArrivalsRanking.of(next_products, tower, rng, sample)
    if ranking is None:
        return 0.0, -1.0
    return ranking.best_prior_weight(0.0)


@dataclass
class NewArrivalsRanking:
    """Training users' held-out next products among a sample of others, every one scored as if it had
    no events: the parts of the new-arrivals score, and the mean reciprocal rank of a blend of them."""

    scores: np.ndarray  # [users, products]: predicted vector . state; -inf for the user's own products
    prior: np.ndarray  # [products]
    text: np.ndarray | None  # [users, products]: text vector . text profile (None: not read)
    target: np.ndarray  # [users]: the column of each user's next product
    users: list[int]  # their rows in the NextProducts
    columns: list[str]  # the products' ids

    @classmethod
    def of(
        cls, next_products: NextProducts, tower: ItemTowerOutput, rng: np.random.Generator, sample: int = 2000
    ) -> NewArrivalsRanking | None:
        states, labels, seen = next_products.states, next_products.labels, next_products.seen
        predicted, priors = tower.predicted or {}, tower.predicted_prior or {}
        users = [index for index, label in enumerate(labels) if label in predicted]
        if len(users) < 10:
            return None
        chosen = {labels[index] for index in users}
        others = [pid for pid in predicted if pid not in chosen]
        drawn = rng.choice(len(others), min(sample, len(others)), replace=False).tolist() if others else []
        columns = sorted(chosen) + [others[index] for index in sorted(drawn)]
        column_of = {pid: index for index, pid in enumerate(columns)}
        # float32: up to 5,000 users x 7,000 products, scored again for each weight tried
        scores = states[users].astype(np.float32) @ np.asarray([predicted[pid] for pid in columns]).T
        prior = np.asarray([priors[pid] for pid in columns], dtype=np.float32)
        for row, index in enumerate(users):
            mask = [column_of[pid] for pid in seen[index] if pid in column_of and pid != labels[index]]
            scores[row, mask] = -np.inf
        target = np.asarray([column_of[labels[index]] for index in users])
        return cls(scores, prior, None, target, users, columns)

    def with_text(self, next_products: NextProducts, tower: ItemTowerOutput) -> NewArrivalsRanking | None:
        """The same ranking with text vector . text profile for every pair (None: no profiles or text)."""
        profiles, vectors = next_products.profiles, tower.text
        if profiles is None or vectors is None or not np.any(profiles[self.users]):
            return None
        text = profiles[self.users].astype(np.float32) @ np.asarray([vectors[pid] for pid in self.columns]).T
        return dataclasses.replace(self, text=text)

    def mrr(self, prior_weight: float, text_weight: float = 0.0) -> float:
        return float(np.mean(self.reciprocal_ranks(prior_weight, text_weight)))

    def reciprocal_ranks(self, prior_weight: float, text_weight: float = 0.0) -> np.ndarray:
        """[users]: 1 / the rank of each user's next product under the blend."""
        blended: np.ndarray = self.scores + np.float32(prior_weight) * self.prior
        if text_weight and self.text is not None:
            blended = blended + np.float32(text_weight) * self.text
        label_score = blended[np.arange(len(self.target)), self.target]
        return 1.0 / (1 + (blended > label_score[:, None]).sum(axis=1))

    def text_gain(self, seed: int) -> tuple[float, float]:
        """(mean, standard error) of the text's gain in each user's reciprocal rank, cross-fitted: the
        users split in two halves at random; each half measured with the prior's weight alone and with
        both weights as fitted on the other half (a weight fitted and measured on the same users would
        always look like a gain)."""
        assert self.text is not None
        half = np.random.default_rng(seed).permutation(len(self.target)) % 2
        gains = np.zeros(len(self.target))
        for held in (0, 1):
            fitted, measured = self._rows(half != held), self._rows(half == held)
            prior_alone, _ = fitted.best_prior_weight(0.0)
            prior, text_weight, _ = fitted.best_weights(prior_alone)
            gains[half == held] = measured.reciprocal_ranks(prior, text_weight) - measured.reciprocal_ranks(
                prior_alone
            )
        return float(np.mean(gains)), float(np.std(gains, ddof=1) / np.sqrt(len(gains)))

    def _rows(self, rows: np.ndarray) -> NewArrivalsRanking:
        return dataclasses.replace(
            self,
            scores=self.scores[rows],
            text=None if self.text is None else self.text[rows],
            target=self.target[rows],
            users=[user for user, keep in zip(self.users, rows, strict=True) if keep],
        )

    def best_prior_weight(self, text_weight: float) -> tuple[float, float]:
        """(weight, MRR): the best of 0 and 33 weights around the scale of the vectors' scores."""
        return self._best(lambda weight: self.mrr(weight, text_weight), self._grid(self.prior))

    def best_text_weight(self, prior_weight: float) -> tuple[float, float]:
        assert self.text is not None
        return self._best(lambda weight: self.mrr(prior_weight, weight), self._grid(self.text))

    def best_weights(self, prior_weight: float) -> tuple[float, float, float]:
        """(prior weight, text weight, MRR): the text's weight given the prior's, then the prior's again."""
        text_weight, _ = self.best_text_weight(prior_weight)
        prior_weight, mrr = self.best_prior_weight(text_weight)
        return prior_weight, text_weight, mrr

    def _grid(self, values: np.ndarray) -> list[float]:
        spread = float(np.std(self.scores[np.isfinite(self.scores)])) / (float(np.std(values)) + 1e-12)
        return [0.0, *(spread * np.geomspace(1e-2, 1e2, 33)).tolist()]

    @staticmethod
    def _best(mrr_of: Callable[[float], float], weights: list[float]) -> tuple[float, float]:
        best_weight, best_mrr = 0.0, -1.0
        for weight in weights:
            mrr = mrr_of(weight)
            if mrr > best_mrr + 1e-9:
                best_weight, best_mrr = float(weight), mrr
        return best_weight, best_mrr
