"""Products in the vector store: batch upsert with change detection, partial update, delete, lookup."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from recommender.embedding import CROSS_LINGUAL_VECTOR, Embedder, cross_lingual_part
from recommender.errors import InvalidInputError, NotFoundError
from recommender.ids import product_point_id
from recommender.models import Product
from recommender.store import PointToWrite, StoredPoint, VectorStore
from recommender.store.conditions import (
    ATTRIBUTES_KEY,
    BRAND_KEY,
    CATEGORY_PATH_KEY,
    IN_STOCK_KEY,
    filterable_values,
)
from recommender.text import compose_product_text, text_hash

TEXT_HASH_KEY = "_text_hash"
PAYLOAD_HASH_KEY = "_payload_hash"
UPDATED_AT_KEY = "_updated_at"
# Below this many points exact search is fast enough that building an HNSW graph is not worth it.
OPTIMIZE_THRESHOLD_POINTS = 20_000


@dataclass(frozen=True)
class UpsertResult:
    written: int
    embedded: int
    unchanged: int


def product_payload(product: Product, embedded_text_hash: str) -> dict[str, Any]:
    payload: dict[str, Any] = product.model_dump()
    payload.update(
        {
            CATEGORY_PATH_KEY: [prefix.casefold() for prefix in product.category_prefixes()],
            BRAND_KEY: product.brand.casefold(),
            IN_STOCK_KEY: int(product.in_stock),
            ATTRIBUTES_KEY: {name: filterable_values(value) for name, value in product.attributes.items()},
            TEXT_HASH_KEY: embedded_text_hash,
            PAYLOAD_HASH_KEY: _product_hash(product),
            UPDATED_AT_KEY: datetime.now(UTC).isoformat(),
        }
    )
    return payload


def public_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """The product as the client gave it: the filterable copies and hashes are internal."""
    return Product.model_validate(
        {key: value for key, value in payload.items() if not key.startswith("_")}
    ).model_dump()


def _product_hash(product: Product) -> str:
    return hashlib.sha256(product.model_dump_json().encode()).hexdigest()[:32]


class Catalog:
    def __init__(self, store: VectorStore, embedder: Embedder, max_text_chars: int | None = None) -> None:
        self._store = store
        self._embedder = embedder
        self._max_text_chars = max_text_chars  # the embedded text's length (models read less still)
        self.generation = 0  # counts this process's catalog writes (caches of product fields compare it)
        self._optimizer: threading.Thread | None = None

    def upsert(self, products: Sequence[Product]) -> UpsertResult:
        """Write products; embed only those whose text changed, skip those that did not change at all."""
        if not products:
            return UpsertResult(0, 0, 0)
        point_ids = [product_point_id(product.product_id) for product in products]
        existing = {point.point_id: point.payload for point in self._store.retrieve(point_ids)}
        texts = [compose_product_text(product, self._max_text_chars) for product in products]
        hashes = [text_hash(text, self._embedder.model_name) for text in texts]

        to_embed: list[int] = []
        payload_only: list[int] = []
        unchanged = 0
        for index, (product, point_id) in enumerate(zip(products, point_ids, strict=True)):
            previous = existing.get(point_id)
            if previous is None or previous.get(TEXT_HASH_KEY) != hashes[index]:
                to_embed.append(index)
            elif previous.get(PAYLOAD_HASH_KEY) != _product_hash(product):
                payload_only.append(index)
            else:
                unchanged += 1

        if to_embed:
            self._write(
                [point_ids[index] for index in to_embed],
                [texts[index] for index in to_embed],
                [product_payload(products[index], hashes[index]) for index in to_embed],
            )
        for index in payload_only:
            self._store.overwrite_payload(point_ids[index], product_payload(products[index], hashes[index]))
        if to_embed or payload_only:
            self.generation += 1
        return UpsertResult(len(to_embed) + len(payload_only), len(to_embed), unchanged)

    def reembed(self, product_ids: Sequence[str]) -> int:
        """Embed stored products again whatever their hash says; unknown ids are skipped."""
        points = self._store.retrieve([product_point_id(pid) for pid in product_ids])
        products = [Product.model_validate(public_payload(point.payload)) for point in points]
        texts = [compose_product_text(product, self._max_text_chars) for product in products]
        self._write(
            [point.point_id for point in points],
            texts,
            [
                product_payload(product, text_hash(text, self._embedder.model_name))
                for product, text in zip(products, texts, strict=True)
            ],
        )
        self.generation += 1
        return len(products)

    def _write(self, point_ids: list[str], texts: list[str], payloads: list[dict[str, Any]]) -> None:
        """Embed and store; with a cross-lingual model, its vectors go beside the main ones."""
        vectors = self._embedder.encode_documents(texts)
        self._store.upsert(
            [
                PointToWrite(point_id, vector, payload)
                for point_id, vector, payload in zip(point_ids, vectors, payloads, strict=True)
            ]
        )
        second = cross_lingual_part(self._embedder)
        if second is not None:
            translated = second.encode_documents(texts)
            self._store.update_vectors(CROSS_LINGUAL_VECTOR, dict(zip(point_ids, translated, strict=True)))

    def products(self, page: int = 512) -> Iterator[Product]:
        """Every stored product, page by page (the catalog is never held in memory whole)."""
        offset = None
        while True:
            points, offset = self._store.scroll(page, offset)
            for point in points:
                yield Product.model_validate(public_payload(point.payload))
            if offset is None:
                return

    def get(self, product_id: str) -> Product:
        return Product.model_validate(public_payload(self._get_point(product_id).payload))

    def patch(self, product_id: str, changes: dict[str, Any]) -> Product:
        if "product_id" in changes and changes["product_id"] != product_id:
            raise InvalidInputError(
                "product_id cannot be changed; delete and create instead", field="product_id"
            )
        current = self.get(product_id).model_dump()
        if isinstance(changes.get("attributes"), dict):
            # Attributes merge key by key; a null value removes the attribute.
            merged = {**current["attributes"], **changes["attributes"]}
            changes = {**changes, "attributes": {k: v for k, v in merged.items() if v is not None}}
        product = Product.model_validate({**current, **changes})
        self.upsert([product])
        return product

    def delete(self, product_ids: Sequence[str]) -> list[str]:
        """Delete products; returns the ids that did not exist."""
        point_ids = [product_point_id(product_id) for product_id in product_ids]
        found = {point.point_id for point in self._store.retrieve(point_ids)}
        self._store.delete([point_id for point_id in point_ids if point_id in found])
        self.generation += 1
        return [pid for pid, point_id in zip(product_ids, point_ids, strict=True) if point_id not in found]

    def vectors(self, product_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors by product id; unknown ids are absent from the result."""
        points = self._store.retrieve([product_point_id(pid) for pid in product_ids], with_vectors=True)
        return {point.payload["product_id"]: point.vector for point in points if point.vector is not None}

    def existing_ids(self, product_ids: Sequence[str]) -> set[str]:
        points = self._store.retrieve([product_point_id(pid) for pid in set(product_ids)])
        return {point.payload["product_id"] for point in points}

    def count(self) -> int:
        return self._store.count()

    def optimize_in_background(self) -> None:
        """Build the HNSW index off the request path once the catalog is large enough to need it."""
        if self._optimizer is not None and self._optimizer.is_alive():
            return
        if self._store.count() < OPTIMIZE_THRESHOLD_POINTS:
            return
        self._optimizer = threading.Thread(target=self._store.optimize, name="vector-index", daemon=True)
        self._optimizer.start()

    def wait_for_index(self) -> None:
        """Until a running index build is done."""
        if self._optimizer is not None:
            self._optimizer.join()

    def _get_point(self, product_id: str) -> StoredPoint:
        points = self._store.retrieve([product_point_id(product_id)])
        if not points:
            raise NotFoundError("product", product_id)
        return points[0]
