"""Re-embedding a catalog into a fresh collection when the configured embedding model changed."""

from __future__ import annotations

import logging
from typing import Any

from recommender.catalog import Catalog, public_payload
from recommender.embedding import Embedder
from recommender.models import Product
from recommender.settings import Settings
from recommender.store import CollectionSpec

logger = logging.getLogger(__name__)
SCROLL_PAGE = 512


def _stored_metadata(settings: Settings, spec: CollectionSpec) -> dict[str, Any] | None:
    if settings.qdrant.url:
        from recommender.store.server import connect

        api_key = settings.qdrant.api_key.get_secret_value() if settings.qdrant.api_key else None
        client = connect(settings.qdrant.url, api_key, settings.qdrant.timeout_seconds)
        if not client.collection_exists(spec.name):
            return None
        return client.get_collection(spec.name).config.metadata
    from recommender.store.edge import read_edge_metadata

    return read_edge_metadata(settings.qdrant.path, spec.name)


def rebuild_if_model_changed(settings: Settings, embedder: Embedder) -> int:
    """Re-embed every stored product with ``embedder`` if the collection holds another model's vectors.

    Returns how many products were re-embedded (0 when nothing changed). User profiles are dropped;
    they are recomputed from the event store on next use.
    """
    from recommender.service import open_vector_stores, product_collection

    new_spec = product_collection(settings, embedder)
    stored = _stored_metadata(settings, new_spec)
    if stored is None or (stored.get("embedding_model"), stored.get("dimension")) == (
        new_spec.embedding_model,
        new_spec.dimension,
    ):
        return 0

    stored_model, stored_dimension = str(stored["embedding_model"]), int(stored["dimension"])

    class _StoredModel:
        model_name = stored_model
        dimension = stored_dimension

    old_products, old_users, _ = open_vector_stores(settings, _StoredModel())  # type: ignore[arg-type]
    products: list[Product] = []
    offset = None
    while True:
        points, offset = old_products.scroll(SCROLL_PAGE, offset)
        products.extend(Product.model_validate(public_payload(point.payload)) for point in points)
        if offset is None:
            break
    logger.warning(
        "embedding model changed from %s to %s: re-embedding %d products",
        _StoredModel.model_name,
        embedder.model_name,
        len(products),
    )
    old_products.drop()
    old_users.drop()
    new_products, new_users, _ = open_vector_stores(settings, embedder)
    try:
        catalog = Catalog(new_products, embedder)
        for start in range(0, len(products), SCROLL_PAGE):
            catalog.upsert(products[start : start + SCROLL_PAGE])
    finally:
        new_products.close()
        new_users.close()
    return len(products)
