"""Deterministic point ids: the same product id always maps to the same Qdrant point."""

from __future__ import annotations

import uuid

_PRODUCT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "semantic-recommender/product")
_USER_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "semantic-recommender/user")


def product_point_id(product_id: str) -> str:
    return str(uuid.uuid5(_PRODUCT_NAMESPACE, product_id))


def user_point_id(user_id: str) -> str:
    return str(uuid.uuid5(_USER_NAMESPACE, user_id))
