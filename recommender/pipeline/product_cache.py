"""What ranking reads of a product (a few payload fields and the text vector), kept between requests.

Reading ~300 candidates from the store costs ~10 ms a request (payload decoding per point); from here
it costs a dictionary lookup. Entries are dropped when this process writes the catalog (the catalog's
``generation``) and after ``max_age_seconds`` otherwise, so writes by another process (a Celery worker
against a Qdrant server) are seen within that time, as with the item statistics.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

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
        self._max_items = max_items
        self._max_age = max_age_seconds
        self._entries: OrderedDict[str, RankingFields] = OrderedDict()
        self._lock = threading.Lock()
        self._seen_generation = -1
        self._started = 0.0

    def get_many(self, product_ids: Sequence[str]) -> dict[str, RankingFields]:
        """The products that exist, read from the store only when not held."""
        found: dict[str, RankingFields] = {}
        with self._lock:
            self._drop_if_stale()
            for pid in product_ids:
                entry = self._entries.get(pid)
                if entry is not None:
                    self._entries.move_to_end(pid)
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
                if generation == self._seen_generation and self._max_items > 0:
                    self._entries.update(read)
                    while len(self._entries) > self._max_items:
                        self._entries.popitem(last=False)
        return found

    def _drop_if_stale(self) -> None:
        generation = self._generation()
        now = time.monotonic()
        if generation != self._seen_generation or now - self._started > self._max_age:
            self._entries.clear()
            self._seen_generation = generation
            self._started = now
