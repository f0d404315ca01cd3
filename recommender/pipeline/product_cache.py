"""What ranking reads of a product (a few payload fields and the text vector), kept between requests.

Reading ~300 candidates from the store costs several ms a request (payload decoding per point: ~10 µs, and
~40-80 µs the first time a process reads a point of the embedded store); from here it costs a dictionary
lookup. All entries are dropped when this process writes the catalog (the catalog's
``generation``); otherwise each entry is read again once it is ``max_age_seconds`` old, so writes by another
process (a Celery worker against a Qdrant server) are seen within that time, as with the item statistics.
Entries expire one by one, as they were read: a busy service re-reads a few products per request instead
of the whole catalog at once every minute.

The entries live in plain dicts in the order they were read, so the oldest (the first to expire, and the
first to go when full) is always at the front. cachetools' TTLCache did the same with a linked list and a
timer per access: ~10 µs per lookup, 3 ms a request at 300 candidates.

Expiry times, payloads and vectors are kept in three dicts of plain values, not one dict of objects: a
payload holding only strings and numbers is not tracked by Python's cycle collector, so the held products
add nothing to its full collections. Held as objects (~4 tracked a product) they did: a full collection at
42k held products took 85 ms, a stall for every request in flight (the slowest 1-5% under 8 clients).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from recommender.ids import product_point_id
from recommender.store import VectorStore

# The point-to-product map is bounded (one entry is ~150 bytes); past this it starts again.
MAX_POINT_IDS = 1 << 21


class RankingFields(NamedTuple):
    payload: dict[str, Any]  # only the fields ranking reads
    vector: np.ndarray | None  # the text vector (unit length)


class ProductCache:
    def __init__(
        self,
        store: VectorStore,
        payload_keys: Sequence[str],
        generation: Callable[[], int],
        max_items: int,
        max_age_seconds: float = 60.0,
    ) -> None:
        self._store = store
        self._keys = list(payload_keys)
        self._generation = generation
        self._max_items = max_items
        self._max_age = max_age_seconds
        # product id -> the monotonic time it expires, oldest first; its payload; its vector.
        self._expires: dict[str, float] = {}
        self._payloads: dict[str, dict[str, Any]] = {}
        self._vectors: dict[str, np.ndarray | None] = {}
        # point id -> product id: fixed for ever (the point id is a hash of the product id), so searches can
        # skip the payload (see ``product_ids``).
        self._product_of: dict[str, str] = {}
        self._lock = threading.Lock()
        self._seen_generation = -1

    def get_many(self, product_ids: Sequence[str]) -> dict[str, RankingFields]:
        """The products that exist, read from the store only when not held."""
        found: dict[str, RankingFields] = {}
        now = time.monotonic()
        with self._lock:
            self._drop_if_catalog_written()
            expires, payloads, vectors = self._expires, self._payloads, self._vectors
            for pid in product_ids:
                expiry = expires.get(pid)
                if expiry is not None and expiry > now:
                    found[pid] = RankingFields(payloads[pid], vectors[pid])
        missing = [pid for pid in product_ids if pid not in found]
        if missing:
            found.update(self._read([product_point_id(pid) for pid in missing], now))
        return found

    def product_ids(self, point_ids: Sequence[str]) -> list[str | None]:
        """The product id of each point (None: not in the store). A search that asks the embedded store for
        a payload field pays ~10-80 µs a point to decode it; one that asks for none, then maps its point ids
        here, pays that once per product and process (the fields read on the way are kept)."""
        with self._lock:
            self._drop_if_catalog_written()
            known = self._product_of
            unknown = [point for point in point_ids if point not in known]
        if unknown:
            self._read(unknown, time.monotonic())
        with self._lock:
            return [self._product_of.get(point) for point in point_ids]

    def _read(self, point_ids: list[str], now: float) -> dict[str, RankingFields]:
        generation = self._generation()
        points = self._store.retrieve(point_ids, with_vectors=True, payload_keys=self._keys)
        read = {point.payload["product_id"]: RankingFields(point.payload, point.vector) for point in points}
        with self._lock:
            if len(self._product_of) > MAX_POINT_IDS:
                self._product_of.clear()
            self._product_of.update((point.point_id, point.payload["product_id"]) for point in points)
            if generation == self._seen_generation and self._max_items > 0:
                self._keep(read, now + self._max_age)
        return read

    def _keep(self, read: dict[str, RankingFields], expiry: float) -> None:
        expires, payloads, vectors = self._expires, self._payloads, self._vectors
        for pid, fields in read.items():
            expires.pop(pid, None)  # re-read: it moves to the back
            expires[pid] = expiry
            payloads[pid] = fields.payload
            vectors[pid] = fields.vector
        while len(expires) > self._max_items:
            oldest = next(iter(expires))
            del expires[oldest], payloads[oldest], vectors[oldest]

    def _drop_if_catalog_written(self) -> None:
        generation = self._generation()
        if generation != self._seen_generation:
            self._expires.clear()
            self._payloads.clear()
            self._vectors.clear()
            self._seen_generation = generation
