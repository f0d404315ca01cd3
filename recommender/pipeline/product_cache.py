"""What ranking reads of a product (a few payload fields and the text vector), kept between requests.

Reading ~300 candidates from the store costs ~10 ms a request (payload decoding per point); from here
it costs a dictionary lookup. All entries are dropped when this process writes the catalog (the catalog's
``generation``); otherwise each entry is read again once it is ``max_age_seconds`` old, so writes by another
process (a Celery worker against a Qdrant server) are seen within that time, as with the item statistics.
Entries expire one by one, as they were read: a busy service re-reads a few products per request instead
of the whole catalog at once every minute.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from cachetools import TTLCache

from recommender.ids import product_point_id
from recommender.store import VectorStore


@dataclass(frozen=True)
class RankingFields:
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
        self._enabled = max_items > 0
        # Least recently used out first when full; each entry expires max_age_seconds after it was read.
        self._entries: TTLCache[str, RankingFields] = TTLCache(maxsize=max(1, max_items), ttl=max_age_seconds)
        self._lock = threading.Lock()
        self._seen_generation = -1

    def get_many(self, product_ids: Sequence[str]) -> dict[str, RankingFields]:
        """The products that exist, read from the store only when not held."""
        found: dict[str, RankingFields] = {}
        with self._lock:
            self._drop_if_catalog_written()
            for pid in product_ids:
                entry = self._entries.get(pid)
                if entry is not None:
                    found[pid] = entry
        missing = [pid for pid in product_ids if pid not in found]
        if missing:
            generation = self._generation()
            points = self._store.retrieve(
                [product_point_id(pid) for pid in missing], with_vectors=True, payload_keys=self._keys
            )
            read = {
                point.payload["product_id"]: RankingFields(point.payload, point.vector) for point in points
            }
            found.update(read)
            with self._lock:
                if generation == self._seen_generation and self._enabled:
                    self._entries.update(read)
        return found

    def _drop_if_catalog_written(self) -> None:
        generation = self._generation()
        if generation != self._seen_generation:
            self._entries.clear()
            self._seen_generation = generation
