"""The ranking fields kept between requests: read once, dropped on a catalog write, re-read when old,
the oldest dropped first when full."""

from __future__ import annotations

import gc
import time
from pathlib import Path

import numpy as np

from recommender.ids import product_point_id
from recommender.pipeline.artifacts import TrainedParts
from recommender.pipeline.candidates import Candidate
from recommender.pipeline.features import ItemRows
from recommender.pipeline.product_cache import ProductCache
from recommender.pipeline.stats import ItemStats
from recommender.store import CollectionSpec, PointToWrite
from recommender.store.edge import EdgeVectorStore

SPEC = CollectionSpec(name="cache", vector_name="text", dimension=4, embedding_model="test-model")


class CountingStore(EdgeVectorStore):
    """The real embedded store, counting the points each ``retrieve`` asks for."""

    asked: list[int]

    def retrieve(self, point_ids, with_vectors=False, payload_keys=None):  # type: ignore[no-untyped-def]
        self.asked.append(len(point_ids))
        return super().retrieve(point_ids, with_vectors=with_vectors, payload_keys=payload_keys)


def write(store: EdgeVectorStore, pid: str, price: float) -> None:
    vector = np.asarray([1.0, 0.0, 0.0, 0.0], dtype=np.float32)
    store.upsert([PointToWrite(product_point_id(pid), vector, {"product_id": pid, "price": price, "x": 1})])


def test_fields_are_read_once_then_again_after_a_catalog_write_or_when_old(tmp_path: Path) -> None:
    store = CountingStore(tmp_path, SPEC)
    store.asked = []
    for index in range(5):
        write(store, f"p{index}", float(index))
    generation = [0]
    cache = ProductCache(store, ["product_id", "price"], lambda: generation[0], 4, max_age_seconds=1.0)

    first = cache.get_many(["p0", "p1", "gone"])
    assert sorted(first) == ["p0", "p1"]  # a product that does not exist is simply absent
    assert first["p1"].payload == {"product_id": "p1", "price": 1.0}  # only the asked-for fields
    assert first["p1"].vector is not None and np.isclose(np.linalg.norm(first["p1"].vector), 1.0)
    assert cache.get_many(["p0", "p1", "p2"])["p2"].payload["price"] == 2.0
    assert store.asked == [3, 1]  # the second call read only what it did not hold

    write(store, "p0", 9.0)  # another process's write: seen once the entry is old
    assert cache.get_many(["p0"])["p0"].payload["price"] == 0.0
    time.sleep(1.1)
    assert cache.get_many(["p0"])["p0"].payload["price"] == 9.0

    write(store, "p1", 7.0)
    generation[0] += 1  # this process wrote the catalog: everything is read again at once
    assert cache.get_many(["p1"])["p1"].payload["price"] == 7.0

    store.asked.clear()
    cache.get_many([f"p{index}" for index in range(5)])
    cache.get_many(["p4"])
    assert store.asked == [4]  # at most 4 held: the one read longest ago (p1) went, p4 stayed
    assert store.asked == [4] and cache.get_many(["p1"]) and store.asked == [4, 1]
    store.close()


def test_point_ids_map_to_product_ids_read_once_and_the_fields_come_along(tmp_path: Path) -> None:
    store = CountingStore(tmp_path, SPEC)
    store.asked = []
    for index in range(3):
        write(store, f"p{index}", float(index))
    cache = ProductCache(store, ["product_id", "price"], lambda: 0, 10)
    points = [product_point_id("p2"), product_point_id("gone"), product_point_id("p0")]
    assert cache.product_ids(points) == ["p2", None, "p0"]
    assert cache.product_ids(points[::-1]) == ["p0", None, "p2"]
    assert store.asked == [3, 1]  # the second call asked only for the point that is not there
    assert cache.get_many(["p0", "p2"])["p2"].payload["price"] == 2.0
    assert store.asked == [3, 1]  # their fields were kept on the way
    store.close()


def test_held_products_and_their_feature_rows_stay_out_of_the_cycle_collector(tmp_path: Path) -> None:
    """Held as objects, 42k products made each full collection 85 ms long: a stall for every request in
    flight. Payloads of plain values and rows of plain values are not tracked by the collector."""
    store = EdgeVectorStore(tmp_path, SPEC)
    ids = [f"p{index}" for index in range(200)]
    for index, pid in enumerate(ids):
        write(store, pid, float(index))
    cache = ProductCache(store, ["product_id", "price"], lambda: 0, 500)
    item_rows = ItemRows(ItemStats(), TrainedParts(), {}, max_items=500)
    candidates = [
        Candidate(pid, fields.payload, {"a": 1.0}, {"a": 0}) for pid, fields in cache.get_many(ids).items()
    ]
    rows = item_rows.rows(candidates)
    del candidates
    gc.collect()
    # What the cache holds (a second call hands out the held payloads) and the rows ItemRows holds: not one
    # tracked. Counting all of the collector's objects instead was at the mercy of other tests' threads.
    held = [fields.payload for fields in cache.get_many(ids).values()]
    assert len(held) == 200 and len(rows) == 200
    assert [value for value in [*held, *rows] if gc.is_tracked(value)] == []
    assert rows[3][7] == 3.0 and cache.get_many(["p3"])["p3"].payload["price"] == 3.0
    store.close()


def test_feature_rows_are_bounded_like_the_product_cache() -> None:
    item_rows = ItemRows(ItemStats(), TrainedParts(), {}, max_items=2)
    candidates = [Candidate(pid, {"product_id": pid, "price": index + 1}) for index, pid in enumerate("abc")]
    assert [row[7] for row in item_rows.rows(candidates)] == [1.0, 2.0, 3.0]
    assert sorted(item_rows._rows) == ["b", "c"]  # the first computed went first
