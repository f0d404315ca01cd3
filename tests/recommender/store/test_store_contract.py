"""One contract, run against the embedded store, the embedded store through a store host process (what
``recommender serve --workers N`` uses) and qdrant-client (``:memory:``, the server API).

The same calls go to all three and the results are compared, as qdrant-client tests its local and remote
modes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from recommender.errors import DependencyUnavailableError, StoreLockedError
from recommender.ids import product_point_id
from recommender.models import ProductFilter
from recommender.store import CollectionSpec, PointToWrite, VectorStore
from recommender.store.base import ModelMismatchError
from recommender.store.conditions import conditions_for
from recommender.store.edge import EdgeVectorStore
from recommender.store.host import StoreHost, start_store_host
from recommender.store.server import ServerVectorStore, connect
from recommender.store.shared import SharedVectorStore

SPEC = CollectionSpec(
    name="contract",
    vector_name="text",
    dimension=8,
    embedding_model="test-model",
    keyword_indexes=("product_id", "_category_path", "_brand"),
    float_indexes=("price",),
    integer_indexes=("_in_stock",),
)


KINDS = ("embedded", "server", "shared")


@pytest.fixture(scope="module")
def store_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreHost]:
    """A real host process (spawned) over its own folder; each test drops what it opened there."""
    host = start_store_host(tmp_path_factory.mktemp("store-host"))
    yield host
    host.stop()


def open_store(
    kind: str, root: Path, spec: CollectionSpec = SPEC, host: StoreHost | None = None
) -> VectorStore:
    if kind == "embedded":
        return EdgeVectorStore(root, spec)
    if kind == "shared":
        assert host is not None
        return SharedVectorStore(host.address, host.authkey, spec)
    return ServerVectorStore(connect(":memory:", None, 5), spec)


def close_store(kind: str, store: VectorStore) -> None:
    """The host keeps its shards open for every process: a test removes what it wrote there."""
    if kind == "shared":
        store.drop()
    store.close()


def points(count: int = 40) -> list[PointToWrite]:
    rng = np.random.default_rng(7)
    written = []
    for index in range(count):
        vector = rng.normal(size=SPEC.dimension).astype(np.float32)
        vector /= np.linalg.norm(vector)
        category = ["home", "home > kitchen"] if index % 2 else ["sports", "sports > running"]
        payload = {
            "product_id": f"p{index}",
            "price": float(index),
            "_category_path": category,
            "_brand": "acme" if index % 3 == 0 else "other",
            "_in_stock": int(index % 4 != 0),
            "_attributes": {"colour": "red" if index % 5 == 0 else "blue", "size": index % 3},
        }
        written.append(PointToWrite(product_point_id(f"p{index}"), vector, payload))
    return written


@pytest.fixture
def stores(tmp_path: Path, store_host: StoreHost) -> Iterator[dict[str, VectorStore]]:
    opened = {kind: open_store(kind, tmp_path, host=store_host) for kind in KINDS}
    data = points()
    for store in opened.values():
        store.upsert(data)
    yield opened
    for kind, store in opened.items():
        close_store(kind, store)


def ids(hits: list) -> list[str]:
    return [hit.payload["product_id"] for hit in hits]


FILTERS = [
    None,
    ProductFilter(category="Home > Kitchen"),
    ProductFilter(brands=["ACME"]),
    ProductFilter(price_min=10, price_max=20),
    ProductFilter(in_stock=False),
    ProductFilter(attributes={"colour": "red"}),
    ProductFilter(attributes={"size": [0, 2]}),
    ProductFilter(category="sports", price_max=30, in_stock=True, attributes={"colour": "blue"}),
]


@pytest.mark.parametrize("product_filter", FILTERS)
def test_search_gives_the_same_results_on_both_backends(
    stores: dict[str, VectorStore], product_filter: ProductFilter | None
) -> None:
    query = points()[3].vector
    exclude = [product_point_id("p3")]
    results = {
        kind: store.search(query, 10, conditions_for(product_filter), exclude)
        for kind, store in stores.items()
    }
    assert ids(results["embedded"]) == ids(results["server"]) == ids(results["shared"])
    assert "p3" not in ids(results["embedded"])
    embedded_scores = [hit.score for hit in results["embedded"]]
    assert embedded_scores == pytest.approx([hit.score for hit in results["server"]], abs=1e-5)
    assert embedded_scores == [hit.score for hit in results["shared"]]
    assert embedded_scores == sorted(embedded_scores, reverse=True)


def test_filters_select_exactly_the_matching_points(stores: dict[str, VectorStore]) -> None:
    product_filter = ProductFilter(category="home", price_min=10, price_max=30, in_stock=True)
    for store in stores.values():
        hits = store.search(points()[0].vector, 100, conditions_for(product_filter))
        expected = {f"p{i}" for i in range(10, 31) if i % 2 == 1 and i % 4 != 0}
        assert set(ids(hits)) == expected


def test_recommend_query_agrees_across_backends(stores: dict[str, VectorStore]) -> None:
    data = points()
    examples = [data[1].point_id, data[2].point_id, data[5].point_id]
    results = {
        kind: store.recommend([data[1].vector, data[2].vector], [data[5].vector], 8, exclude_ids=examples)
        for kind, store in stores.items()
    }
    assert ids(results["embedded"]) == ids(results["server"]) == ids(results["shared"])
    assert not {"p1", "p2", "p5"} & set(ids(results["embedded"]))


def test_retrieve_scroll_count_payload_and_delete(stores: dict[str, VectorStore]) -> None:
    for store in stores.values():
        assert store.count() == 40
        found = store.retrieve([product_point_id("p1"), product_point_id("missing")], with_vectors=True)
        assert len(found) == 1 and found[0].vector is not None and found[0].vector.shape == (8,)
        store.overwrite_payload(product_point_id("p1"), {"product_id": "p1", "price": 99.0})
        assert store.retrieve([product_point_id("p1")])[0].payload == {"product_id": "p1", "price": 99.0}
        collected, offset = [], None
        while True:
            page, offset = store.scroll(15, offset)
            collected += ids(page)
            if offset is None:
                break
        assert sorted(collected) == sorted(f"p{i}" for i in range(40))
        store.delete([product_point_id("p1"), product_point_id("p2")])
        assert store.count() == 38


@pytest.mark.parametrize("kind", KINDS)
def test_a_named_vector_is_read_back_where_a_point_has_one(
    tmp_path: Path, kind: str, store_host: StoreHost
) -> None:
    """What the rebuild path copies: a second model's vectors beside the main ones."""
    spec = CollectionSpec("named", "text", 8, "test-model", ("product_id",), extra_vectors=(("text_xl", 4),))
    store = open_store(kind, tmp_path, spec, store_host)
    try:
        store.upsert(points(3))
        second = np.asarray([0.5, 0.5, 0.5, 0.5], dtype=np.float32)
        store.update_vectors("text_xl", {product_point_id("p0"): second})
        found = store.retrieve(
            [product_point_id("p0"), product_point_id("p1")], with_vectors=True, vector_name="text_xl"
        )
        vectors = {point.payload["product_id"]: point.vector for point in found}
        assert vectors["p1"] is None and vectors["p0"] is not None
        assert vectors["p0"].tolist() == pytest.approx(second.tolist())
        main = store.retrieve([product_point_id("p0")], with_vectors=True)[0].vector
        assert main is not None and main.shape == (8,)  # the main vector is still the default
    finally:
        close_store(kind, store)


def test_upsert_with_the_same_id_replaces(stores: dict[str, VectorStore]) -> None:
    for store in stores.values():
        store.upsert(points()[:5])
        assert store.count() == 40


def test_embedded_store_reopens_with_its_data(tmp_path: Path) -> None:
    store = open_store("embedded", tmp_path)
    store.upsert(points(5))
    store.close()
    reopened = open_store("embedded", tmp_path)
    assert reopened.count() == 5
    reopened.close()


def test_second_open_of_an_embedded_store_says_why(tmp_path: Path) -> None:
    store = open_store("embedded", tmp_path)
    try:
        with pytest.raises(StoreLockedError, match="belongs to one process.*RECO_QDRANT__URL"):
            open_store("embedded", tmp_path)
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["embedded", "server"])
def test_another_embedding_model_is_refused(tmp_path: Path, kind: str) -> None:
    if kind == "embedded":
        open_store(kind, tmp_path).close()
        with pytest.raises(ModelMismatchError, match="other-model"):
            open_store(kind, tmp_path, CollectionSpec("contract", "text", 8, "other-model"))
    else:
        client = connect(":memory:", None, 5)
        ServerVectorStore(client, SPEC).count()
        other = ServerVectorStore(client, CollectionSpec("contract", "text", 16, "test-model"))
        with pytest.raises(ModelMismatchError, match="dimension 16"):
            other.count()


def test_a_bad_call_is_a_bug_not_an_outage(stores: dict[str, VectorStore]) -> None:
    """A vector of the wrong size is refused by every backend, and not as "unavailable": that would be a 503
    and a Celery retry of a programming error."""
    wrong = PointToWrite(product_point_id("wrong"), np.ones(SPEC.dimension + 3, dtype=np.float32), {})
    for kind, store in stores.items():
        with pytest.raises(Exception) as raised:  # noqa: B017 - each backend raises its own error type
            store.upsert([wrong])
        assert not isinstance(raised.value, DependencyUnavailableError), (kind, raised.value)
        assert store.count() == 40, kind


def test_equal_scores_come_back_in_point_id_order_on_every_backend(stores: dict[str, VectorStore]) -> None:
    """Exact ties (the same vector under several products) are ordered by point id, not by where the
    engine happens to hold them, so that two builds of the same catalog give the same lists."""
    twin = points()[5].vector
    names = [f"twin-{index}" for index in (4, 0, 3, 1, 2)]
    twins = [PointToWrite(product_point_id(name), twin, {"product_id": name}) for name in names]
    expected = sorted([*twins, points()[5]], key=lambda point: point.point_id)
    for kind, store in stores.items():
        store.upsert(twins)
        for hits in (store.search(twin, 6), store.recommend([twin], [], 6)):
            assert len({hit.score for hit in hits}) == 1, kind  # six exact ties
            assert [hit.point_id for hit in hits] == [point.point_id for point in expected], kind


def test_a_run_of_equal_scores_across_the_limit_is_cut_after_ordering(stores: dict[str, VectorStore]) -> None:
    """Where more products tie than the limit lets through (longer than the margin asked for beyond it),
    the ones that come back are the first by point id, not the first the engine happens to reach."""
    twin = points()[5].vector
    names = [f"tied-{index}" for index in range(30)]
    twins = [PointToWrite(product_point_id(name), twin, {"product_id": name}) for name in names]
    written_last_first = sorted(twins, key=lambda point: point.point_id, reverse=True)
    expected = sorted([*twins, points()[5]], key=lambda point: point.point_id)[:3]
    for kind, store in stores.items():
        store.upsert(written_last_first)
        for hits in (store.search(twin, 3), store.recommend([twin], [], 3)):
            assert [hit.point_id for hit in hits] == [point.point_id for point in expected], kind


def write_one_by_one(store: VectorStore, written: list[PointToWrite]) -> None:
    for point in written:
        store.upsert([point])


@pytest.mark.parametrize("kind", ["embedded", "server"])
def test_reads_while_another_thread_writes(tmp_path: Path, kind: str) -> None:
    """The API serves requests in threads while a profile refresh writes: every read must succeed (the
    in-process qdrant-client failed a read that met the write of a collection's first point, unless calls
    take turns)."""
    written = points(300)
    failures: list[BaseException] = []
    for round_number in range(30):
        store = open_store(kind, tmp_path / str(round_number))
        store.count()  # the collection exists, empty
        writer = threading.Thread(target=write_one_by_one, args=(store, written))
        writer.start()
        while writer.is_alive():
            try:
                store.retrieve([point.point_id for point in written[:50]], with_vectors=True)
            except Exception as error:  # what a request would have turned into a 500
                failures.append(error)
        writer.join()
        store.close()
    assert failures == []
