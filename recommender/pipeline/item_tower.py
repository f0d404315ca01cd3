"""Content to collaborative space: a ridge map from a product's text vector and declared attributes to
its learned sequence-model vector and its log popularity, fitted on products with events.

It places products without events among the trained ones (the item tower of a two-tower model, here
linear), and gives every product a popularity prior from its content.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recommender.pipeline.attributes import AttributeEncoder

RIDGE = 10.0


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
    predicted: dict[str, np.ndarray] | None = None  # every product's predicted vector (training only)


def fit_and_predict(
    product_ids: list[str],
    text_vectors: np.ndarray,
    payloads: list[dict],
    encoder: AttributeEncoder,
    learned: dict[str, np.ndarray],
    log_users: dict[str, float],
) -> ItemTowerOutput:
    attributes = np.asarray([encoder.encode(payload) for payload in payloads], dtype=np.float64).reshape(
        len(payloads), len(encoder.names)
    )
    categorical = [index for index, name in enumerate(encoder.names) if name in encoder.vocabularies]
    design = content_matrix(text_vectors, attributes, categorical)
    warm = np.array([pid in learned for pid in product_ids])
    hidden = len(next(iter(learned.values()))) if learned else 0
    if warm.sum() < 10 or hidden == 0:
        return ItemTowerOutput(product_ids, np.zeros(len(product_ids)), [], np.zeros((0, hidden)))
    targets = np.hstack(
        [
            np.asarray([learned[pid] for pid in np.asarray(product_ids)[warm]], dtype=np.float64),
            np.asarray([[log_users.get(pid, 0.0)] for pid in np.asarray(product_ids)[warm]]),
        ]
    )
    x = design[warm]
    weights = np.linalg.solve(x.T @ x + RIDGE * np.eye(x.shape[1]), x.T @ targets)
    predicted = design @ weights
    cold = ~warm
    return ItemTowerOutput(
        product_ids,
        predicted[:, -1].astype(np.float32),
        [pid for pid, is_cold in zip(product_ids, cold, strict=True) if is_cold],
        predicted[cold, :hidden].astype(np.float32),
        dict(zip(product_ids, predicted[:, :hidden].astype(np.float32), strict=True)),
    )
