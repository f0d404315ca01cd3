"""Re-embedding a catalog when the configured embedding model changed: replace, then drop.

1. Every product is re-embedded, page by page, into a separate collection (``<name>__rebuild``); the old
   collection is not touched.
2. Once that collection is complete, a marker says so (in the event store's database).
3. The products collection is recreated from the complete copy (vectors copied, nothing re-embedded),
   then the copy and the marker are removed.

A crash before step 2 leaves the old collection whole (the partial copy is discarded on the next start);
a crash after it is finished on the next start from the complete copy. No step holds the catalog in memory.

Over an embedded store shared by several API processes (``store_host``), every step goes through the host,
and step 3 is the host's own (``replace_collection``): the other processes' calls wait for it, and a
process still on the old model is told the store switched until it follows (``recommender.tenancy``).
"""

from __future__ import annotations

import dataclasses
import logging

from recommender.catalog import Catalog, public_payload
from recommender.database import Database
from recommender.embedding import CROSS_LINGUAL_VECTOR, Embedder
from recommender.embedding.versions import SHOP_MARK, base_model
from recommender.leases import Leases
from recommender.models import Product
from recommender.settings import Settings
from recommender.store import CollectionSpec, VectorStore
from recommender.store.copying import copy_points, pages
from recommender.store.opening import open_collection, product_collection, stored_metadata, user_collection
from recommender.store.shared import HostAddress, replace_collection, retire_collection

logger = logging.getLogger(__name__)
REBUILD_SUFFIX = "__rebuild"
# The marker never expires by itself: it is removed when the switch is done.
MARKER_TTL_SECONDS = 100 * 365 * 24 * 3600


class _StoredModel:
    def __init__(self, name: str, dimension: int) -> None:
        self.model_name = name
        self.dimension = dimension


def rebuild_if_model_changed(
    settings: Settings,
    embedder: Embedder,
    shop_encoders_only: bool = False,
    store_host: HostAddress | None = None,
) -> int:
    """Re-embed every stored product with ``embedder`` if the collection holds another model's vectors
    (``shop_encoders_only``: only when the change is to or from the shop's fine-tuned copy of the same
    base model, which publishing or withdrawing an encoder asked for).

    Returns how many products were re-embedded (0 when nothing changed). User profiles are dropped;
    they are recomputed from the event store on next use.
    """
    target = product_collection(settings, embedder)
    copy_spec = dataclasses.replace(target, name=target.name + REBUILD_SUFFIX)
    database = Database(settings.events.url, migrate=settings.events.migrate_on_start)
    leases = Leases(database)
    marker = f"rebuilt:{copy_spec.name}"
    try:
        if shop_encoders_only and not _shop_encoder_involved(settings, target, copy_spec):
            return 0
        if leases.holder(marker) == "complete":
            logger.warning(
                "switching to the re-embedded copy (a prepared switch, or one a restart interrupted)"
            )
            _switch(settings, copy_spec, target, user_collection(settings, embedder), store_host)
            leases.release(marker)
        elif stored_metadata(settings, copy_spec) is not None:
            logger.warning("discarding an incomplete model-change rebuild; the old collection is intact")
            _drop_unless(settings, copy_spec, keep_model=False, store_host=store_host)

        stored = stored_metadata(settings, target)
        if stored is None or (stored.get("embedding_model"), stored.get("dimension")) == (
            target.embedding_model,
            target.dimension,
        ):
            return 0
        if shop_encoders_only and base_model(str(stored.get("embedding_model"))) != base_model(
            target.embedding_model
        ):
            return 0  # another model altogether: RECO_QDRANT__ON_MODEL_CHANGE decides (refuse by default)
        old_model = _StoredModel(str(stored["embedding_model"]), int(stored["dimension"]))
        old_spec = product_collection(settings, old_model)  # type: ignore[arg-type]
        old_products = open_collection(settings, old_spec, store_host)
        try:
            rebuilt = _embed_copy(settings, embedder, copy_spec, old_products, store_host)
        finally:
            old_products.close()
        leases.acquire(marker, "complete", MARKER_TTL_SECONDS)
        _switch(settings, copy_spec, target, user_collection(settings, embedder), store_host)
        leases.release(marker)
        return rebuilt
    finally:
        database.close()


def collection_holds(settings: Settings, embedder: Embedder) -> bool:
    """Whether the products collection holds ``embedder``'s vectors already (another process switched it)
    with no switch left half done."""
    target = product_collection(settings, embedder)
    stored = stored_metadata(settings, target)
    copy_spec = dataclasses.replace(target, name=target.name + REBUILD_SUFFIX)
    return (
        stored is not None
        and (stored.get("embedding_model"), stored.get("dimension"))
        == (target.embedding_model, target.dimension)
        and stored_metadata(settings, copy_spec) is None
    )


def _shop_encoder_involved(settings: Settings, target: CollectionSpec, copy_spec: CollectionSpec) -> bool:
    """Whether the serving collection, a copy or the wanted model is the shop's encoder."""
    names = [target.embedding_model] + [
        str(stored.get("embedding_model"))
        for stored in (stored_metadata(settings, target), stored_metadata(settings, copy_spec))
        if stored is not None
    ]
    return any(SHOP_MARK in name for name in names)


def _embed_copy(
    settings: Settings,
    embedder: Embedder,
    copy_spec: CollectionSpec,
    source: VectorStore,
    store_host: HostAddress | None,
) -> int:
    """Every product of ``source`` embedded by ``embedder`` into the copy collection."""
    copy = open_collection(settings, copy_spec, store_host)
    rebuilt = 0
    try:
        logger.warning(
            "embedding model changed to %s: re-embedding %d products into %s",
            embedder.model_name,
            source.count(),
            copy_spec.name,
        )
        catalog = Catalog(copy, embedder, settings.embedding.max_text_chars)
        for points in pages(source, with_vectors=False):
            catalog.upsert([Product.model_validate(public_payload(point.payload)) for point in points])
            rebuilt += len(points)
    finally:
        copy.close()
    return rebuilt


def prepare_rebuild(
    settings: Settings, embedder: Embedder, serving: VectorStore, store_host: HostAddress | None = None
) -> int:
    """The long half of a switch, while the old collection serves: re-embed every product of ``serving``
    (the products collection a running service holds open) into the copy, and mark it complete. The next
    ``rebuild_if_model_changed`` (opening the service again) then only switches. Returns the products."""
    target = product_collection(settings, embedder)
    copy_spec = dataclasses.replace(target, name=target.name + REBUILD_SUFFIX)
    database = Database(settings.events.url, migrate=settings.events.migrate_on_start)
    try:
        _drop_unless(
            settings, copy_spec, keep_model=False, store_host=store_host
        )  # an earlier, incomplete copy
        rebuilt = _embed_copy(settings, embedder, copy_spec, serving, store_host)
        Leases(database).acquire(f"rebuilt:{copy_spec.name}", "complete", MARKER_TTL_SECONDS)
        return rebuilt
    finally:
        database.close()


def _drop_unless(
    settings: Settings,
    spec: CollectionSpec,
    keep_model: bool,
    store_host: HostAddress | None = None,
    retire: bool = False,
) -> None:
    """Drop the collection named by ``spec`` (only if it holds another model's vectors, with keep_model).
    ``retire``: the model it held is gone for good (a shared store refuses it until another is opened)."""
    stored = stored_metadata(settings, spec)
    if stored is None:
        return
    stored_spec = dataclasses.replace(
        spec, embedding_model=str(stored["embedding_model"]), dimension=int(stored["dimension"])
    )
    if keep_model and stored_spec == spec:
        return
    if retire and store_host is not None and not settings.qdrant.url:
        retire_collection(store_host, stored_spec)
        return
    open_collection(settings, stored_spec, store_host).drop()


def _switch(
    settings: Settings,
    copy_spec: CollectionSpec,
    target: CollectionSpec,
    users: CollectionSpec,
    store_host: HostAddress | None,
) -> None:
    """Recreate the products collection from the complete copy; safe to repeat after a crash."""
    extra = [name for name, _ in copy_spec.extra_vectors if name == CROSS_LINGUAL_VECTOR]
    if store_host is not None and not settings.qdrant.url:
        replace_collection(store_host, copy_spec, target, extra)
    else:
        _drop_unless(settings, target, keep_model=False)
        products = open_collection(settings, target)
        copy = open_collection(settings, copy_spec)
        try:
            copy_points(copy, products, extra)
        finally:
            products.close()
        copy.drop()
    # Profiles were vectors of the old model: they are recomputed from the events on next use.
    _drop_unless(settings, users, keep_model=True, store_host=store_host, retire=True)
