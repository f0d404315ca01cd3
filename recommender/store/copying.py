"""Copying one collection's points into another: the last step of a switch of embedding model (see
``recommender.rebuild``), run by the process that switches or, over a shared embedded store, by the store
host itself."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from recommender.store.base import PointToWrite, StoredPoint, VectorStore

PAGE = 512


def pages(store: VectorStore, with_vectors: bool) -> Iterator[list[StoredPoint]]:
    """Every point of ``store``, a page at a time (with the main vector when asked)."""
    offset = None
    while True:
        points, offset = store.scroll(PAGE, offset)
        if with_vectors and points:
            points = store.retrieve([point.point_id for point in points], with_vectors=True)
        yield points
        if offset is None:
            return


def copy_points(source: VectorStore, target: VectorStore, extra_vectors: Sequence[str] = ()) -> int:
    """Every point of ``source`` (payload, main vector and the named ``extra_vectors``) into ``target``;
    returns how many were copied."""
    copied = 0
    for points in pages(source, with_vectors=True):
        target.upsert(
            [
                PointToWrite(point.point_id, point.vector, point.payload)
                for point in points
                if point.vector is not None
            ]
        )
        ids = [point.point_id for point in points]
        for name in extra_vectors:
            stored = source.retrieve(ids, with_vectors=True, vector_name=name)
            target.update_vectors(
                name, {point.point_id: point.vector for point in stored if point.vector is not None}
            )
        copied += len(points)
    return copied
