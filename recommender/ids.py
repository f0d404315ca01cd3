"""Deterministic point ids: the same product id always maps to the same Qdrant point."""

from __future__ import annotations

import uuid
from functools import lru_cache

_PRODUCT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "semantic-recommender/product")
_USER_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "semantic-recommender/user")


# Every request maps hundreds of candidate ids; uuid5 is a SHA-1 each, and the mapping never changes.
@lru_cache(maxsize=1 << 20)
def product_point_id(product_id: str) -> str:
    return str(uuid.uuid5(_PRODUCT_NAMESPACE, product_id))


def user_point_id(user_id: str) -> str:
    return str(uuid.uuid5(_USER_NAMESPACE, user_id))
