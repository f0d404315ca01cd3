"""Where the vector stores are opened, in one place: the collections' specifications, and the backend the
settings name (a Qdrant server, the embedded store through a store host, or the embedded store itself).
Each backend module is imported only when it is the one configured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recommender.embedding import CROSS_LINGUAL_VECTOR, Embedder, cross_lingual_part
from recommender.settings import Settings
from recommender.store.base import CollectionSpec, VectorStore
from recommender.store.conditions import BRAND_KEY, CATEGORY_PATH_KEY, IN_STOCK_KEY, PRICE_KEY
from recommender.store.shared import HostAddress, SharedVectorStore

PRODUCT_VECTOR = "text"
# The two named vectors that hold the learned item vectors: a new model version writes the one not serving.
SLOTS = ("collab_a", "collab_b")
PROFILE_VECTOR = "profile"


def product_collection(settings: Settings, embedder: Embedder) -> CollectionSpec:
    return CollectionSpec(
        name=f"{settings.qdrant.collection_prefix}_products",
        vector_name=PRODUCT_VECTOR,
        dimension=embedder.dimension,
        embedding_model=embedder.model_name,
        keyword_indexes=("product_id", CATEGORY_PATH_KEY, BRAND_KEY),
        float_indexes=(PRICE_KEY,),
        integer_indexes=(IN_STOCK_KEY,),
        extra_vectors=tuple((slot, settings.collab_config.hidden) for slot in SLOTS)
        + cross_lingual_vectors(embedder),
    )


def cross_lingual_vectors(embedder: Embedder) -> tuple[tuple[str, int], ...]:
    second = cross_lingual_part(embedder)
    return ((CROSS_LINGUAL_VECTOR, second.dimension),) if second is not None else ()


def user_collection(settings: Settings, embedder: Embedder) -> CollectionSpec:
    return CollectionSpec(
        name=f"{settings.qdrant.collection_prefix}_users",
        vector_name=PROFILE_VECTOR,
        dimension=embedder.dimension,
        embedding_model=embedder.model_name,
        keyword_indexes=("user_id",),
    )


def open_vector_stores(
    settings: Settings, embedder: Embedder, store_host: HostAddress | None = None
) -> tuple[VectorStore, VectorStore, str]:
    """``store_host``: the host through which this process reaches the embedded store (one of the API
    processes of `recommender serve --workers N`); None opens the configured store itself."""
    specs = (product_collection(settings, embedder), user_collection(settings, embedder))
    if settings.qdrant.url:
        from recommender.store.server import ServerVectorStore, connect

        api_key = settings.qdrant.api_key.get_secret_value() if settings.qdrant.api_key else None
        client = connect(settings.qdrant.url, api_key, settings.qdrant.timeout_seconds)
        return ServerVectorStore(client, specs[0]), ServerVectorStore(client, specs[1]), "server"
    if store_host is not None:
        address, key = store_host.address, store_host.authkey
        return (
            SharedVectorStore(address, key, specs[0]),
            SharedVectorStore(address, key, specs[1]),
            "embedded, shared through the store host",
        )
    from recommender.store.edge import EdgeVectorStore

    base_path = Path(settings.qdrant.path)
    products = EdgeVectorStore(base_path, specs[0])
    try:
        users = EdgeVectorStore(base_path, specs[1])
    except Exception:
        products.close()
        raise
    return products, users, "embedded"


def stored_metadata(settings: Settings, spec: CollectionSpec) -> dict[str, Any] | None:
    if settings.qdrant.url:
        from recommender.store.server import connect

        api_key = settings.qdrant.api_key.get_secret_value() if settings.qdrant.api_key else None
        client = connect(settings.qdrant.url, api_key, settings.qdrant.timeout_seconds)
        if not client.collection_exists(spec.name):
            return None
        return client.get_collection(spec.name).config.metadata
    from recommender.store.edge import read_edge_metadata

    return read_edge_metadata(settings.qdrant.path, spec.name)


def open_collection(
    settings: Settings, spec: CollectionSpec, store_host: HostAddress | None = None
) -> VectorStore:
    """One collection of the configured store (through ``store_host`` where this process shares it)."""
    if settings.qdrant.url:
        from recommender.store.server import ServerVectorStore, connect

        api_key = settings.qdrant.api_key.get_secret_value() if settings.qdrant.api_key else None
        return ServerVectorStore(connect(settings.qdrant.url, api_key, settings.qdrant.timeout_seconds), spec)
    if store_host is not None:
        return SharedVectorStore(store_host.address, store_host.authkey, spec)
    from recommender.store.edge import EdgeVectorStore

    return EdgeVectorStore(Path(settings.qdrant.path), spec)
